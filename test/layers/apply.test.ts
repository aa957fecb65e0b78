// Applying layer tars to a tree: what lands on disk, whiteouts through a real overlay mount, and hostile
// entries refused with nothing written outside the root.
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { mountAll, unmountAll } from '../../api/mounting.ts';
import { applyLayer, DamagedLayerError } from '../../daemon/unpack/apply-layer.ts';
import { applyToMounts } from '../../daemon/unpack/apply-mounts.ts';
import '../../snapshotters/index.ts';
import { openSnapshotter } from '../../snapshotters/registry.ts';
import { tarEntries, type TarEntry } from '../helpers/image.ts';
import { tempDir } from '../helpers/tmp.ts';

/** root = <tmp>/outer/root, with a sentinel file beside it to prove nothing was written outside. */
function scratch(t: ExecutionContext) {
  const outer = join(tempDir(t, 'apply-'), 'outer');
  const root = join(outer, 'root');
  mkdirSync(root, { recursive: true });
  writeFileSync(join(outer, 'sentinel'), 'untouched');
  return { outer, root };
}

const apply = async (root: string, entries: TarEntry[]) => applyLayer(Readable.from(await tarEntries(entries)), root);

test('files, dirs, symlinks, hardlinks, devices, fifos with owners, modes, times and xattrs', async (t) => {
  const { root } = scratch(t);
  const when = new Date('2021-03-04T05:06:07Z');
  const tarData = await tarEntries([
    { name: 'etc/', type: 'directory', mode: 0o750, uid: 10, gid: 20, mtime: when },
    { name: 'etc/conf', data: 'hello', mode: 0o4755, uid: 1000, gid: 1001, mtime: when, xattrs: { 'user.berth': 'yes' } },
    { name: 'etc/link', type: 'symlink', linkname: '../etc/conf' },
    { name: 'etc/hard', type: 'link', linkname: 'etc/conf' },
    { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
    { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0, mode: 0o660 },
    { name: 'run/pipe', type: 'fifo', mode: 0o600 },
    { name: 'tmp/', type: 'directory', mode: 0o1777 },
  ]);
  const res = await applyLayer(Readable.from(tarData), root);
  t.is(res.size, tarData.length);
  t.is(res.diffId, 'sha256:' + createHash('sha256').update(tarData).digest('hex'));
  const conf = statSync(join(root, 'etc/conf'));
  t.is(conf.mode & 0o7777, 0o4755);
  t.is(conf.uid, 1000);
  t.is(conf.gid, 1001);
  t.is(conf.mtime.getTime(), when.getTime());
  t.is(readFileSync(join(root, 'etc/conf'), 'utf8'), 'hello');
  t.is(execFileSync('getfattr', ['--only-values', '-n', 'user.berth', join(root, 'etc/conf')]).toString(), 'yes');
  const etc = statSync(join(root, 'etc'));
  t.is(etc.mode & 0o7777, 0o750);
  t.is(etc.uid, 10);
  t.is(etc.mtime.getTime(), when.getTime(), 'directory times are set after their contents');
  t.is(readlinkSync(join(root, 'etc/link')), '../etc/conf');
  t.is(statSync(join(root, 'etc/hard')).ino, conf.ino);
  const nul = lstatSync(join(root, 'dev/null'));
  t.true(nul.isCharacterDevice());
  t.is(nul.rdev, (1 << 8) | 3);
  t.true(lstatSync(join(root, 'dev/sda')).isBlockDevice());
  t.true(lstatSync(join(root, 'run/pipe')).isFIFO());
  t.is(statSync(join(root, 'tmp')).mode & 0o7777, 0o1777);
});

test('whiteouts and opaque directories delete what lower layers had, seen through a real overlay', async (t) => {
  const dir = tempDir(t, 'ovl-');
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((n) => join(dir, n));
  for (const d of [lower, upper, work, merged]) mkdirSync(d!);
  await apply(lower!, [
    { name: 'keep', data: 'k' }, { name: 'gone', data: 'g' },
    { name: 'opq/', type: 'directory' }, { name: 'opq/old1', data: '1' }, { name: 'opq/old2', data: '2' },
    { name: 'subdir/', type: 'directory' }, { name: 'subdir/x', data: 'x' },
  ]);
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged!]);
  try {
    await apply(merged!, [
      { name: '.wh.gone', data: '' }, { name: '.wh.subdir', data: '' },
      { name: 'opq/', type: 'directory' }, { name: 'opq/.wh..wh..opq', data: '' }, { name: 'opq/new', data: 'n' },
    ]);
    t.deepEqual(readdirSync(merged!).sort(), ['keep', 'opq']);
    t.deepEqual(readdirSync(join(merged!, 'opq')), ['new']);
  } finally {
    execFileSync('umount', [merged!]);
  }
  // The upper dir holds the overlay's own whiteouts: character devices 0/0.
  t.true(lstatSync(join(upper!, 'gone')).isCharacterDevice());
  t.is(lstatSync(join(upper!, 'gone')).rdev, 0);
});

const hostileCases: [string, TarEntry[], RegExp][] = [
  ['a name that climbs out with ..', [{ name: '../escaped', data: 'x' }], /climbs out of the root/],
  ['a deeper name that climbs out', [{ name: 'a/../../escaped', data: 'x' }], /climbs out of the root/],
  ['a write through a relative symlink leading outside', [{ name: 'link', type: 'symlink', linkname: '../../' }, { name: 'link/escaped', data: 'x' }], /leads outside the root/],
  ['a hardlink to a file outside', [{ name: 'hard', type: 'link', linkname: '../sentinel' }], /climbs out of the root/],
  ['a hardlink through an escaping symlink', [{ name: 'up', type: 'symlink', linkname: '..' }, { name: 'hard', type: 'link', linkname: 'up/sentinel' }], /leads outside the root/],
  ['a hardlink to a missing file', [{ name: 'hard', type: 'link', linkname: 'nothing' }], /does not exist/],
  ['a whiteout that climbs out', [{ name: '../.wh.sentinel', data: '' }], /climbs out of the root/],
  ['an opaque-directory whiteout that climbs out', [{ name: '../../.wh..wh..opq', data: '' }], /climbs out of the root/],
  ['a whiteout of ".."', [{ name: 'a/', type: 'directory' }, { name: 'a/.wh...', data: '' }], /a whiteout that names no entry/],
  ['a whiteout of "." at the root', [{ name: '.wh..', data: '' }], /a whiteout that names no entry/],
  ['a duplicate file entry', [{ name: 'twice', data: 'first' }, { name: 'twice', data: 'second' }], /a duplicate of an earlier entry/],
  ['a file entry then a symlink of the same name', [{ name: 'twice', data: 'first' }, { name: 'twice', type: 'symlink', linkname: '../sentinel' }], /a duplicate of an earlier entry/],
];

for (const [what, entries, message] of hostileCases) {
  test(`refused: ${what}`, async (t) => {
    const { outer, root } = scratch(t);
    const err = await t.throwsAsync(apply(root, entries));
    t.regex(err!.message, message);
    t.regex(err!.message, /refused, nothing written outside the layer root/);
    t.deepEqual(readdirSync(outer).sort(), ['root', 'sentinel']);
    t.is(readFileSync(join(outer, 'sentinel'), 'utf8'), 'untouched');
    t.false(existsSync(join(outer, 'escaped')));
  });
}

test('an absolute name and an absolute symlink stay inside the root', async (t) => {
  const { outer, root } = scratch(t);
  await apply(root, [{ name: '/etc/', type: 'directory' }, { name: '/etc/abs', data: 'in' }, { name: 'lnk', type: 'symlink', linkname: '/etc' }, { name: 'lnk/through', data: 'via' }]);
  t.is(readFileSync(join(root, 'etc/abs'), 'utf8'), 'in');
  t.is(readFileSync(join(root, 'etc/through'), 'utf8'), 'via', 'an absolute symlink is the container\'s /etc, i.e. <root>/etc');
  t.deepEqual(readdirSync(outer).sort(), ['root', 'sentinel']);
});

test('applied straight into an overlay upper dir, whiteouts take the overlay\'s form and the merged view matches', async (t) => {
  const dir = tempDir(t, 'ovlup-');
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((n) => join(dir, n));
  for (const d of [lower, upper, work, merged]) mkdirSync(d!);
  await apply(lower!, [
    { name: 'keep', data: 'k' }, { name: 'gone', data: 'g' },
    { name: 'opq/', type: 'directory' }, { name: 'opq/old1', data: '1' },
  ]);
  await applyLayer(Readable.from(await tarEntries([
    { name: '.wh.gone', data: '' },
    { name: 'opq/', type: 'directory' }, { name: 'opq/.wh..wh..opq', data: '' }, { name: 'opq/new', data: 'n' },
  ])), upper!, { overlayUpper: true });
  t.true(lstatSync(join(upper!, 'gone')).isCharacterDevice());
  t.is(execFileSync('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', join(upper!, 'opq')]).toString(), 'y');
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged!]);
  try {
    t.deepEqual(readdirSync(merged!).sort(), ['keep', 'opq']);
    t.deepEqual(readdirSync(join(merged!, 'opq')), ['new']);
  } finally {
    execFileSync('umount', [merged!]);
  }
});

/** Every entry below `dir` with what a layer carries: type, mode, owner, mtime to the nanosecond, link target. */
const listing = (dir: string) => execFileSync('find', ['.', '-printf', '%p %y %m %U %G %T@ %l %s\\n'], { cwd: dir }).toString().split('\n').filter((l) => l && !l.startsWith('. ')).sort();

for (const format of ['gnu', 'posix']) {
  const posix = format === 'posix';
  test(`a tar written by GNU tar (--format=${format}): long names, long link targets, hardlinks${posix ? ', xattrs, nanosecond times' : ''}`, async (t) => {
    const dir = tempDir(t, 'gnutar-');
    const src = join(dir, 'src');
    const deep = join(src, 'a'.repeat(90), 'b'.repeat(90), 'c'.repeat(60));
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, 'file-with-a-rather-long-name-' + 'x'.repeat(60)), 'deep');
    writeFileSync(join(src, 'big'), Buffer.alloc(3 << 20, 7));
    execFileSync('ln', [join(src, 'big'), join(src, 'big-hard')]);
    execFileSync('ln', ['-s', 'z'.repeat(150), join(src, 'long-link')]);
    execFileSync('setfattr', ['-n', 'user.binary', '-v', '0x00ff10', join(src, 'big')]);
    execFileSync('chown', ['-h', '1234:5678', join(src, 'long-link')]);
    execFileSync('touch', ['-h', '-d', '2020-01-02 03:04:05.123456789', join(src, 'long-link'), join(src, 'big'), deep]);
    const tarFile = join(dir, 'layer.tar');
    // GNU's own format carries long names in 'L'/'K' entries; pax (with xattrs) in extended headers.
    execFileSync('tar', [`--format=${format}`, ...(posix ? ['--xattrs', '--xattrs-include=user.*'] : []), '-C', src, '-cf', tarFile, '.']);
    const root = join(dir, 'root');
    mkdirSync(root);
    const res = await applyLayer(Readable.from(readFileSync(tarFile)), root);
    t.is(res.size, statSync(tarFile).size);
    let expected = listing(src);
    // GNU's own format keeps whole seconds only.
    if (!posix) expected = expected.map((l) => l.replace(/ (\d+)\.\d+ /, ' $1.0000000000 '));
    t.deepEqual(listing(root), expected);
    t.is(statSync(join(root, 'big-hard')).ino, statSync(join(root, 'big')).ino);
    if (posix) t.is(execFileSync('getfattr', ['--only-values', '-n', 'user.binary', join(root, 'big')]).toString('hex'), '00ff10');
  });
}

const damagedCases: [string, (tar: Buffer) => Buffer][] = [
  ['a header whose checksum does not match', (b) => { const c = Buffer.from(b); c[0] ^= 1; return c; }],
  ['an archive cut inside a file', (b) => b.subarray(0, 512 + 100)],
  ['an archive cut inside a header', (b) => b.subarray(0, 300)],
  ['not a tar at all', () => Buffer.from('this is not a tar stream, just text that goes on for a while '.repeat(20))],
];

for (const [what, damage] of damagedCases) {
  test(`a damaged tar is reported as damaged: ${what}`, async (t) => {
    const { root } = scratch(t);
    const tarData = damage(await tarEntries([{ name: 'file', data: 'x'.repeat(1000) }, { name: 'second', data: 'y' }]));
    const err = await t.throwsAsync(applyLayer(Readable.from(tarData), root));
    t.true(err instanceof DamagedLayerError && err.part === 'tar', err?.message);
    t.regex(err!.message, /bad checksum|unexpected end of data/);
  });
}

test('a failing input stream fails the apply with its own error', async (t) => {
  const { root } = scratch(t);
  const good = await tarEntries([{ name: 'file', data: 'x'.repeat(100_000) }]);
  async function* broken() { yield good.subarray(0, 4096); throw Object.assign(new Error('the download broke'), { code: 'ECONNRESET_TEST' }); }
  const err = await t.throwsAsync(applyLayer(Readable.from(broken()), root));
  t.is(err!.message, 'the download broke');
});

for (const compression of ['gzip', 'zstd'] as const) {
  test(`a ${compression} blob is decompressed by the applier; the diff ID and size are the uncompressed tar's`, async (t) => {
    const { root } = scratch(t);
    const tarData = await tarEntries([{ name: 'etc/', type: 'directory' }, { name: 'etc/motd', data: 'compressed hello\n'.repeat(5000) }]);
    const blob = compression === 'gzip'
      ? Buffer.concat([gzipSync(tarData.subarray(0, 1000)), gzipSync(tarData.subarray(1000))]) // two members, as pigz may write
      : execFileSync('zstd', ['-q', '-c'], { input: tarData });
    const res = await applyLayer(Readable.from(blob), root, { compression });
    t.is(res.size, tarData.length);
    t.is(res.diffId, 'sha256:' + createHash('sha256').update(tarData).digest('hex'));
    t.is(readFileSync(join(root, 'etc/motd'), 'utf8'), 'compressed hello\n'.repeat(5000));
  });

  test(`a corrupt or cut ${compression} stream is reported as such, in the decoder's words`, async (t) => {
    const tarData = await tarEntries([{ name: 'file', data: randomBytes(200_000) }]);
    const blob = compression === 'gzip' ? gzipSync(tarData) : execFileSync('zstd', ['-q', '-c'], { input: tarData });
    const flipped = Buffer.from(blob);
    flipped[Math.floor(blob.length / 2)]! ^= 0xff;
    for (const [what, bad, message] of [
      ['cut', blob.subarray(0, blob.length - 100), /unexpected end of file/],
      ['corrupt', flipped, compression === 'gzip' ? /invalid|incorrect/ : /corrupt|checksum|error/i],
    ] as const) {
      const { root } = scratch(t);
      const err = await t.throwsAsync(applyLayer(Readable.from(bad), root, { compression }), undefined, what);
      t.true(err instanceof DamagedLayerError && err.part === 'compressed', `${what}: ${err?.message}`);
      t.regex(err!.message, message, what);
    }
  });
}

test('owners and modes are the layer\'s exactly: a set-gid directory does not lend its group, read-only and set-id modes stay', async (t) => {
  const { root } = scratch(t);
  await apply(root, [
    { name: 'shared/', type: 'directory', mode: 0o2775, uid: 0, gid: 50 },
    { name: 'shared/rootfile', data: 'r', mode: 0o444, uid: 0, gid: 0 },
    { name: 'shared/groupfile', data: 'g', mode: 0o640, uid: 0, gid: 50 },
    { name: 'shared/link', type: 'symlink', linkname: 'rootfile', uid: 0, gid: 0 },
    { name: 'shared/sub/', type: 'directory', mode: 0o755, uid: 0, gid: 0 },
    { name: 'suid', data: 's', mode: 0o4755, uid: 0, gid: 0 },
    { name: 'sgid-other', data: 's', mode: 0o2711, uid: 7, gid: 8 },
  ]);
  const st = (p: string) => lstatSync(join(root, p));
  t.is(st('shared').mode & 0o7777, 0o2775);
  t.deepEqual([st('shared/rootfile').gid, st('shared/rootfile').mode & 0o7777], [0, 0o444]);
  t.deepEqual([st('shared/groupfile').gid, st('shared/groupfile').mode & 0o7777], [50, 0o640]);
  t.is(st('shared/link').gid, 0);
  t.is(st('shared/sub').gid, 0);
  t.is(st('suid').mode & 0o7777, 0o4755);
  t.deepEqual([st('sgid-other').uid, st('sgid-other').gid, st('sgid-other').mode & 0o7777], [7, 8, 0o2711]);
  t.is(readFileSync(join(root, 'shared/rootfile'), 'utf8'), 'r');
});

test('after the last gzip member, zero padding is accepted and anything else is refused as trailing data', async (t) => {
  const tarData = await tarEntries([{ name: 'f', data: 'x' }]);
  const padded = await applyLayer(Readable.from(Buffer.concat([gzipSync(tarData), Buffer.alloc(1024)])), scratch(t).root, { compression: 'gzip' });
  t.is(padded.diffId, 'sha256:' + createHash('sha256').update(tarData).digest('hex'));
  const err = await t.throwsAsync(applyLayer(Readable.from(Buffer.concat([gzipSync(tarData), Buffer.from('not gzip at all')])), scratch(t).root, { compression: 'gzip' }));
  t.true(err instanceof DamagedLayerError && err.part === 'compressed');
  t.regex(err!.message, /trailing data after the gzip stream/);
});

/** A v2 security.capability granting cap_net_bind_service (bit 10), effective; every byte ASCII, as PAX carries it. */
const NET_BIND_CAP = Buffer.from([1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).toString('latin1');
const xattrOf = (path: string, name: string) => {
  try { return execFileSync('getfattr', ['--only-values', '-h', '-n', name, path], { stdio: ['ignore', 'pipe', 'ignore'] }).toString('latin1'); } catch { return undefined; }
};

test('a layer\'s trusted.* and security.* xattrs (but the capability) are dropped: trusted.overlay.opaque does not hide the base in the overlayfs snapshotter', async (t) => {
  const snapRoot = join(tempDir(t, 'snap-'), 'root');
  const snapshotter = await openSnapshotter('overlayfs', snapRoot);
  t.teardown(() => snapshotter.close());
  const scratchDir = tempDir(t, 'scratch-');
  const commitLayer = async (name: string, parent: string | undefined, entries: TarEntry[]) => {
    const mounts = await snapshotter.prepare(`${name}-extract`, parent);
    // The differ's own path: straight into the overlay's upper dir (or the bind of the first layer).
    await applyToMounts(mounts, () => Readable.from(tarData(entries)), 'none', scratchDir);
    await snapshotter.commit(name, `${name}-extract`);
  };
  const tars = new Map<TarEntry[], Buffer>();
  const tarData = (entries: TarEntry[]) => tars.get(entries)!;
  const base: TarEntry[] = [{ name: 'etc/', type: 'directory' }, { name: 'etc/base-conf', data: 'from the base' }, { name: 'bin/', type: 'directory' }, { name: 'bin/tool', data: 'b' }];
  const top: TarEntry[] = [
    { name: 'etc/', type: 'directory', xattrs: { 'trusted.overlay.opaque': 'y', 'security.selinux': 'system_u:object_r:etc_t:s0', 'user.kept': 'dir' } },
    { name: 'etc/top-conf', data: 'from the top' },
    { name: 'bin/', type: 'directory', pax: { 'LIBARCHIVE.xattr.trusted.overlay.opaque': 'eQ==' } },
    { name: 'bin/ping', data: 'p', mode: 0o755, xattrs: { 'security.capability': NET_BIND_CAP, 'user.kept': 'file', 'trusted.berth': 'x' } },
  ];
  for (const entries of [base, top]) tars.set(entries, await tarEntries(entries));
  await commitLayer('base', undefined, base);
  await commitLayer('top', 'base', top);
  const mnt = join(tempDir(t, 'mnt-'), 'rootfs');
  await mountAll(await snapshotter.prepare('container', 'top'), mnt);
  try {
    t.deepEqual(readdirSync(join(mnt, 'etc')).sort(), ['base-conf', 'top-conf'], 'the base\'s /etc stays visible');
    t.deepEqual(readdirSync(join(mnt, 'bin')).sort(), ['ping', 'tool'], 'a LIBARCHIVE.xattr record hides nothing either');
    t.is(readFileSync(join(mnt, 'etc/base-conf'), 'utf8'), 'from the base');
    t.is(xattrOf(join(mnt, 'etc'), 'security.selinux'), undefined);
    t.is(xattrOf(join(mnt, 'etc'), 'user.kept'), 'dir');
    t.is(xattrOf(join(mnt, 'bin/ping'), 'user.kept'), 'file');
    t.is(xattrOf(join(mnt, 'bin/ping'), 'security.capability'), NET_BIND_CAP);
    t.regex(execFileSync('getcap', [join(mnt, 'bin/ping')]).toString(), /cap_net_bind_service[=+]ep/);
  } finally {
    await unmountAll(mnt);
  }
  // On disk, no layer holds a trusted.* xattr the layer carried (the merged view hides trusted.overlay.*).
  const listed = execFileSync('getfattr', ['-R', '-h', '-d', '-m', '^trusted\\.', snapRoot], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  t.false(/trusted\.(overlay\.opaque|berth)/.test(listed), listed);
});
