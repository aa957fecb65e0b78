// Diff.Diff, containerd's walking differ: the layer between a snapshot and its parent holds exactly what changed
// (added, modified, deleted as whiteouts, new dirs, symlinks), lands in the content store labelled with its
// uncompressed digest, and applied onto the parent with Diff.Apply rebuilds the same tree. containerd's own
// `ctr snapshots diff` gets the same layer from berthd.
import test, { type ExecutionContext } from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync, linkSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { withTempMount } from '../../api/mounting.ts';
import type { ApiClient } from '../../api/grpc-client.ts';
import { chainIdOf } from '../../ctr-cli/image.ts';
import { busyboxImage } from '../helpers/image.ts';
import { tempDir } from '../helpers/tmp.ts';
import { loadImage } from '../cli/helpers.ts';
import { startDaemonProcess } from './helpers.ts';

const run = promisify(execFile);
const SNAPSHOTS = 'containerd.services.snapshots.v1.Snapshots';
const DIFF = 'containerd.services.diff.v1.Diff';
const CONTENT = 'containerd.services.content.v1.Content';

/** Names in a (possibly gzipped) layer tar, as GNU tar lists them. */
function entriesOf(layer: Buffer, dir: string): string[] {
  const file = join(dir, `layer-${Math.random().toString(36).slice(2)}.tar`);
  writeFileSync(file, layer[0] === 0x1f ? gunzipSync(layer) : layer);
  return execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

async function readBlob(c: ApiClient, digest: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const m of c.stream<any>(CONTENT, 'Read', { digest })) chunks.push(Buffer.from(m.data));
  return Buffer.concat(chunks);
}

/** berthd with a busybox image loaded, and a client under a lease (released after the test). */
async function daemonWithImage(t: ExecutionContext, tag: string) {
  const d = await startDaemonProcess(t);
  const c = d.client('default');
  const image = await busyboxImage({ tag });
  await loadImage(t, c, `busybox:${tag}`, image);
  const base = chainIdOf(image.manifests[0]!.layers.map((l) => l.diffId));
  const { lease } = await c.call('containerd.services.leases.v1.Leases', 'Create', {});
  t.teardown(() => c.call('containerd.services.leases.v1.Leases', 'Delete', { id: lease.id }).catch(() => undefined));
  return { d, c, base, leased: c.with({ lease: lease.id }) };
}

test.serial('Diff.Diff writes the layer between a snapshot and its parent; Diff.Apply of it rebuilds the same tree; ctr snapshots diff agrees', async (t) => {
  const { d, c, base, leased } = await daemonWithImage(t, 'diff');
  const { mounts: workMounts } = await leased.call(SNAPSHOTS, 'Prepare', { snapshotter: 'overlayfs', key: 'work', parent: base });
  const dir = tempDir(t, 'diff-');
  await withTempMount(workMounts, dir, async (mnt) => {
    writeFileSync(join(mnt, 'added.txt'), 'new file\n');
    writeFileSync(join(mnt, 'etc/berth-release'), 'changed\n');
    unlinkSync(join(mnt, 'bin/true'));
    mkdirSync(join(mnt, 'newdir/sub'), { recursive: true });
    writeFileSync(join(mnt, 'newdir/sub/deep'), 'deep\n');
    symlinkSync('/added.txt', join(mnt, 'newdir/link'));
    linkSync(join(mnt, 'added.txt'), join(mnt, 'newdir/hard'));
    rmSync(join(mnt, 'tmp'), { recursive: true, force: true });
  });
  const { mounts: viewMounts } = await leased.call(SNAPSHOTS, 'View', { snapshotter: 'overlayfs', key: 'base-view', parent: base });
  const { diff } = await leased.call(DIFF, 'Diff', { left: viewMounts, right: workMounts, ref: 'test-diff', labels: { 'test.label': 'x' } });
  t.is(diff.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  const { info } = await c.call(CONTENT, 'Info', { digest: diff.digest });
  t.is(info.labels['test.label'], 'x');
  const blob = await readBlob(c, diff.digest);
  t.is(blob.length, Number(diff.size));
  const uncompressed = gunzipSync(blob);
  t.is(info.labels['containerd.io/uncompressed'], 'sha256:' + createHash('sha256').update(uncompressed).digest('hex'));
  const entries = entriesOf(blob, dir);
  // What changed, in name order, parents before children; unchanged directories are not repeated.
  t.deepEqual(entries, ['added.txt', 'bin/.wh.true', 'etc/berth-release', 'newdir/', 'newdir/hard', 'newdir/link', 'newdir/sub/', 'newdir/sub/deep', '.wh.tmp']);
  const hard = execFileSync('tar', ['-tvf', '-'], { input: uncompressed, encoding: 'utf8' }).split('\n').find((l) => l.includes('newdir/hard'));
  t.regex(hard ?? '', /^h|link to added\.txt/, 'the second name of a file is a hardlink');

  // Applied onto the parent, the layer gives the same tree as the snapshot it was taken from.
  const { mounts: checkMounts } = await leased.call(SNAPSHOTS, 'Prepare', { snapshotter: 'overlayfs', key: 'check', parent: base });
  const { applied } = await leased.call(DIFF, 'Apply', { diff, mounts: checkMounts });
  t.is(applied.digest, info.labels['containerd.io/uncompressed']);
  const listing = (mounts: any[]) => withTempMount(mounts, dir, async (m) =>
    execFileSync('sh', ['-c', 'find . -printf "%p %y %m %s\\n" | sort; cat added.txt etc/berth-release newdir/sub/deep'], { cwd: m, encoding: 'utf8' }));
  t.is(await listing(checkMounts), await listing(workMounts));

  // containerd's ctr computes the same diff through berthd's Diff service.
  const ctrOut = join(dir, 'ctr.tar.gz');
  await run('sh', ['-c', `ctr -a ${d.address} snapshots --snapshotter overlayfs diff work > ${ctrOut}`]);
  t.deepEqual(entriesOf(readFileSync(ctrOut), dir), entries);
});

test.serial('Diff.Diff refuses missing mounts and media types that are not layers', async (t) => {
  const d = await startDaemonProcess(t);
  const c = d.client('default');
  await t.throwsAsync(c.call(DIFF, 'Diff', { left: [], right: [] }), { message: /left and right mounts are required/ });
  const m = [{ type: 'bind', source: '/tmp', options: ['rbind', 'ro'] }];
  await t.throwsAsync(c.call(DIFF, 'Diff', { left: m, right: m, mediaType: 'text/plain' }), { message: /text\/plain is not a layer type/ });
});

test.serial('Diff.Diff writes a zstd layer when asked (one checksummed frame); Diff.Apply of it gives the same tree', async (t) => {
  const { c, base, leased } = await daemonWithImage(t, 'zstd');
  const { mounts: work } = await leased.call(SNAPSHOTS, 'Prepare', { snapshotter: 'overlayfs', key: 'zwork', parent: base });
  const dir = tempDir(t, 'zdiff-');
  await withTempMount(work, dir, async (mnt) => {
    writeFileSync(join(mnt, 'big.txt'), 'zstd compresses this line well\n'.repeat(20000));
    unlinkSync(join(mnt, 'bin/true'));
  });
  const { mounts: view } = await leased.call(SNAPSHOTS, 'View', { snapshotter: 'overlayfs', key: 'zbase', parent: base });
  const mediaType = 'application/vnd.oci.image.layer.v1.tar+zstd';
  const { diff } = await leased.call(DIFF, 'Diff', { left: view, right: work, mediaType });
  t.is(diff.mediaType, mediaType);
  const blob = await readBlob(c, diff.digest);
  t.true(Number(diff.size) < 20000, `compressed to ${diff.size} bytes`);
  const file = join(dir, 'layer.tar.zst');
  writeFileSync(file, blob);
  execFileSync('zstd', ['-q', '-t', file]); // a valid frame, its checksum included
  const tarData = execFileSync('zstd', ['-q', '-d', '-c', file]);
  const { info } = await c.call(CONTENT, 'Info', { digest: diff.digest });
  t.is(info.labels['containerd.io/uncompressed'], 'sha256:' + createHash('sha256').update(tarData).digest('hex'));
  t.deepEqual(execFileSync('tar', ['-tf', '-'], { input: tarData, encoding: 'utf8' }).split('\n').filter(Boolean), ['big.txt', 'bin/.wh.true']);
  const { mounts: check } = await leased.call(SNAPSHOTS, 'Prepare', { snapshotter: 'overlayfs', key: 'zcheck', parent: base });
  const { applied } = await leased.call(DIFF, 'Apply', { diff, mounts: check });
  t.is(applied.digest, info.labels['containerd.io/uncompressed']);
  await withTempMount(check, dir, async (m) => {
    t.is(readFileSync(join(m, 'big.txt'), 'utf8'), 'zstd compresses this line well\n'.repeat(20000));
    t.false(existsSync(join(m, 'bin/true')));
  });
});
