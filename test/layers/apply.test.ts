// Applying layer tars to a tree: what lands on disk, whiteouts through a real overlay mount, and hostile
// entries refused with nothing written outside the root.
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { applyLayer } from '../../daemon/unpack/apply-layer.ts';
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
