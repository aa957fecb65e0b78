// Pulling inside berthd (berth.services.transfer.v1): from a real registry, with progress; refused references;
// and a daemon killed mid-pull loses nothing: after a restart the partial layer resumes where it stopped.
import test from 'ava';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { mountAll, unmountAll } from '../../api/mounting.ts';
import { chainIdOf } from '../../ctr-cli/image.ts';
import type { ExecutionContext } from 'ava';
import { LocalContentStore } from '../../content/local.ts';
import { pushImage } from '../../daemon/remotes/push.ts';
import { buildImage, busyboxImage, tarEntries, writeImageToStore, type TestImage } from '../helpers/image.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { tempDir } from '../helpers/tmp.ts';
import { startDaemon, startDaemonProcess } from './helpers.ts';
import type { ApiClient } from '../../api/grpc-client.ts';

const PULL = 'berth.services.transfer.v1.Transfer';
const CONTENT = 'containerd.services.content.v1.Content';
const IMAGES = 'containerd.services.images.v1.Images';

async function push(t: ExecutionContext, registry: TestRegistry, image: TestImage, path: string): Promise<string> {
  const src = await LocalContentStore.open(join(tempDir(t), 'content'));
  await writeImageToStore(src, image);
  const ref = `${registry.host}/${path}`;
  await pushImage(ref, { store: src, target: image.target, plainHttp: true });
  return ref;
}

async function pull(c: ApiClient, req: Record<string, unknown>, onMessage?: (m: any) => void) {
  const messages: any[] = [];
  for await (const m of c.stream<any>(PULL, 'Pull', req)) { messages.push(m); onMessage?.(m); }
  return messages;
}

test('berthd pulls an image from a registry, reporting progress per layer', async (t) => {
  const registry = await startRegistry(t);
  const image = await busyboxImage({ tag: 'pull' });
  const ref = await push(t, registry, image, 'lib/busybox:1');
  const d = await startDaemon(t);
  const c = d.client('default');
  const messages = await pull(c, { ref, skipUnpack: true });
  t.is(messages[0].stage, 'resolve');
  const last = messages.at(-1);
  t.is(last.stage, 'done');
  t.is(last.image.name, ref);
  t.is(last.image.target.digest, image.target.digest);
  const layers = image.manifests[0]!.layers.map((l) => l.descriptor.digest);
  for (const digest of layers) {
    t.true(messages.some((m) => m.stage === 'layer' && m.digest === digest && m.status === 'done'), `progress for ${digest}`);
  }
  t.is((await c.call(IMAGES, 'Get', { name: ref })).image.target.digest, image.target.digest);
  t.deepEqual((await c.call(CONTENT, 'ListStatuses', {})).statuses, [], 'no ingest left');
  const again = await pull(c, { ref, skipUnpack: true });
  t.true(again.filter((m) => m.stage === 'layer').every((m) => m.status === 'exists'), 'a second pull downloads nothing');
});

test('pull refuses a bad reference, an unknown tag and a missing namespace with clear errors', async (t) => {
  const registry = await startRegistry(t);
  const d = await startDaemon(t);
  const c = d.client('default');
  const bad = await t.throwsAsync(pull(c, { ref: 'UPPER/case:x' }));
  t.regex(bad!.message, /reference/i);
  const missing = await t.throwsAsync(pull(c, { ref: `${registry.host}/nothing/here:1` }));
  t.regex(missing!.message, /not found/);
  t.is(missing!.name, 'BerthError');
  await t.throwsAsync(pull(d.client(), { ref: `${registry.host}/x:1` }), { message: /namespace is required/ });
  t.deepEqual((await c.call(IMAGES, 'List', {})).images, []);
});

/** A proxy that passes everything through but stops blob bodies after `limit` bytes until released. */
async function stallingProxy(t: ExecutionContext, registry: TestRegistry, limit: number) {
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => { release = resolve; });
  let stalled = false;
  let onStall: () => void = () => undefined;
  const stalledOnce = new Promise<void>((resolve) => { onStall = resolve; });
  const server = http.createServer((req, res) => {
    const upstream = http.request(`${registry.url}${req.url}`, { method: req.method, headers: { ...req.headers, host: registry.host } }, async (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      const big = Number(up.headers['content-length'] ?? 0) > limit;
      if (!req.url!.includes('/blobs/') || !big || stalled || req.method !== 'GET' || up.statusCode !== 200) { up.pipe(res); return; }
      stalled = true;
      let sent = 0;
      for await (const chunk of up) {
        if (sent + chunk.length > limit) {
          res.write(chunk.subarray(0, limit - sent));
          onStall();
          await released;
          res.destroy();
          return;
        }
        res.write(chunk);
        sent += chunk.length;
      }
      res.end();
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => { release(); return new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }); });
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, stalledOnce, release };
}

test('a daemon killed mid-pull keeps the partial layer; after a restart the pull resumes it', async (t) => {
  const registry = await startRegistry(t);
  const big = randomBytes(8 << 20);
  const image = buildImage({ layers: [await tarEntries([{ name: 'big.bin', data: big }])], compression: 'none' });
  await push(t, registry, image, 'big/one:1');
  const proxy = await stallingProxy(t, registry, 3 << 20);
  const ref = `${proxy.host}/big/one:1`;
  const first = await startDaemonProcess(t);
  const c1 = first.client('default');
  const pulling = pull(c1, { ref, skipUnpack: true, maxConcurrentDownloads: 1 }).catch((err) => err);
  await proxy.stalledOnce;
  // Let the daemon write what it received, then kill it without warning.
  await new Promise((resolve) => setTimeout(resolve, 300));
  first.child.kill('SIGKILL');
  await new Promise((resolve) => first.child.once('exit', resolve));
  t.true((await pulling) instanceof Error, 'the client sees the pull fail');
  proxy.release();

  const second = await startDaemonProcess(t, { root: first.config.root, state: first.config.state, address: first.config.address });
  const c2 = second.client('default');
  const statuses = (await c2.call(CONTENT, 'ListStatuses', {})).statuses;
  t.is(statuses.length, 1, 'the partial layer survived the kill');
  t.true(statuses[0].offset > 0 && statuses[0].offset <= 3 << 20, `partial offset ${statuses[0].offset}`);
  t.deepEqual((await c2.call(IMAGES, 'List', {})).images, [], 'no image record for an unfinished pull');
  const messages = await pull(c2, { ref, skipUnpack: true });
  const layer = image.manifests[0]!.layers[0]!.descriptor.digest;
  t.true(messages.some((m) => m.stage === 'layer' && m.digest === layer && m.status === 'resumed'), 'the layer download resumed');
  t.is(messages.at(-1).image.target.digest, image.target.digest);
  t.deepEqual((await c2.call(CONTENT, 'ListStatuses', {})).statuses, []);
});

/** `image` with layer `i`'s compressed bytes replaced by `data` (its descriptor and the manifest follow). */
function withLayerBytes(image: TestImage, i: number, data: Buffer): TestImage {
  const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
  const m = image.manifests[0]!;
  const doc = JSON.parse(m.data.toString());
  doc.layers[i] = { ...doc.layers[i], digest: sha(data), size: data.length };
  const manifest = Buffer.from(JSON.stringify(doc));
  const blobs = new Map([...image.blobs].filter(([d]) => d !== m.descriptor.digest && d !== m.layers[i]!.descriptor.digest));
  blobs.set(sha(manifest), manifest).set(sha(data), data);
  const target = { ...image.target, digest: sha(manifest), size: manifest.length };
  return { target, blobs, manifests: [{ ...m, descriptor: target, data: manifest }] } as TestImage;
}

for (const [what, damage] of [
  ['truncated', (gz: Buffer) => gz.subarray(0, Math.floor(gz.length / 2))],
  ['corrupt', (gz: Buffer) => { const b = Buffer.from(gz); for (let k = 200; k < 260; k++) b[k] = b[k]! ^ 0x5a; return b; }],
] as const) {
  test(`a layer whose gzip stream is ${what} (its digest matching) fails the unpack clearly; nothing half-unpacked is committed`, async (t) => {
    const registry = await startRegistry(t);
    const good = await buildImage({ layers: [await tarEntries([{ name: 'base', data: 'b' }]), await tarEntries([{ name: 'top', data: Buffer.alloc(300_000, 7) }])] });
    const bad = damage(good.manifests[0]!.layers[1]!.data);
    const badDigest = 'sha256:' + createHash('sha256').update(bad).digest('hex');
    const image = withLayerBytes(good, 1, bad);
    const ref = await push(t, registry, image, `lib/${what}:1`);
    const d = await startDaemon(t);
    const c = d.client('default');
    const err = await t.throwsAsync(pull(c, { ref }));
    t.regex(err!.message, new RegExp(`^layer ${badDigest}: its gzip stream is corrupt or truncated \\((unexpected end of file|incorrect data check|invalid .*)\\)`));
    const snaps: any[] = [];
    for await (const m of c.stream<any>('containerd.services.snapshots.v1.Snapshots', 'List', { snapshotter: 'overlayfs' })) snaps.push(...m.info);
    t.false(snaps.some((s) => s.kind === 'ACTIVE' || /extract/.test(s.name)), `no active or extract snapshot left: ${JSON.stringify(snaps.map((s) => s.name))}`);
    t.is(snaps.filter((s) => s.kind === 'COMMITTED').length <= 1, true, 'at most the good base layer is committed');
  });
}

test('layers pulled into overlayfs (each applied by berth-apply while it downloads) merge as the image says: whiteouts, opaque dirs, links, devices, xattrs', async (t) => {
  const registry = await startRegistry(t);
  const when = new Date('2022-01-02T03:04:05Z');
  const image = buildImage({ layers: [
    await tarEntries([
      { name: 'gone', data: 'g' }, { name: 'kept', data: 'k' },
      { name: 'opq/', type: 'directory' }, { name: 'opq/old', data: 'o' }, { name: 'dir/', type: 'directory' }, { name: 'dir/x', data: 'x' },
    ]),
    await tarEntries([
      { name: '.wh.gone', data: '' },
      { name: 'opq/', type: 'directory' }, { name: 'opq/.wh..wh..opq', data: '' }, { name: 'opq/new', data: 'n' },
      { name: 'etc/', type: 'directory' }, { name: 'etc/conf', data: 'conf', mode: 0o640, uid: 7, gid: 8, mtime: when, xattrs: { 'user.berth': 'yes' } },
      { name: 'etc/hard', type: 'link', linkname: 'etc/conf' }, { name: 'etc/soft', type: 'symlink', linkname: 'conf' },
      { name: 'dev/', type: 'directory' }, { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      // Incompressible bulk, more than one read of the applier's buffer; the next layer whites it out again.
      { name: 'bulk', data: createCipheriv('aes-128-ctr', Buffer.alloc(16, 1), Buffer.alloc(16, 2)).update(Buffer.alloc(3 << 20)) },
    ]),
    await tarEntries([{ name: 'dir/.wh.x', data: '' }, { name: 'dir/y', data: 'y' }, { name: '.wh.bulk', data: '' }]),
  ] });
  const ref = await push(t, registry, image, 'lib/merge:1');
  const d = await startDaemon(t);
  const c = d.client('default');
  const messages = await pull(c, { ref });
  t.is(messages.at(-1).stage, 'done');
  const top = chainIdOf(image.manifests[0]!.layers.map((l) => l.diffId));
  const { mounts } = await c.call('containerd.services.snapshots.v1.Snapshots', 'View', { snapshotter: 'overlayfs', key: 'merged-view', parent: top });
  const mnt = join(tempDir(t), 'mnt');
  mkdirSync(mnt);
  await mountAll(mounts, mnt);
  try {
    const tree = execFileSync('sh', ['-c', 'find . | sort'], { cwd: mnt, encoding: 'utf8' }).split('\n').filter(Boolean);
    t.deepEqual(tree, ['.', './dev', './dev/null', './dir', './dir/y', './etc', './etc/conf', './etc/hard', './etc/soft', './kept', './opq', './opq/new']);
    const conf = statSync(join(mnt, 'etc/conf'));
    t.deepEqual([conf.mode & 0o7777, conf.uid, conf.gid, conf.mtime.getTime(), conf.nlink], [0o640, 7, 8, when.getTime(), 2]);
    t.is(execFileSync('getfattr', ['--only-values', '-n', 'user.berth', join(mnt, 'etc/conf')]).toString(), 'yes');
    t.is(readlinkSync(join(mnt, 'etc/soft')), 'conf');
    t.is(lstatSync(join(mnt, 'dev/null')).rdev, (1 << 8) | 3);
  } finally {
    await unmountAll(mnt);
  }
});

test('a pulled layer\'s trusted.overlay.opaque does not hide the base image\'s directory; user.* and security.capability stay', async (t) => {
  const registry = await startRegistry(t);
  const cap = Buffer.from([1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).toString('latin1'); // cap_net_bind_service+ep
  const image = buildImage({ layers: [
    await tarEntries([{ name: 'etc/', type: 'directory' }, { name: 'etc/base-conf', data: 'b' }]),
    await tarEntries([
      { name: 'etc/', type: 'directory', xattrs: { 'trusted.overlay.opaque': 'y', 'user.kept': 'yes' } },
      { name: 'etc/top-conf', data: 't', xattrs: { 'security.capability': cap, 'security.ima': 'forged' } },
    ]),
  ] });
  const ref = await push(t, registry, image, 'lib/xattrs:1');
  const d = await startDaemon(t);
  const c = d.client('default');
  t.is((await pull(c, { ref })).at(-1).stage, 'done');
  const top = chainIdOf(image.manifests[0]!.layers.map((l) => l.diffId));
  const { mounts } = await c.call('containerd.services.snapshots.v1.Snapshots', 'Prepare', { snapshotter: 'overlayfs', key: 'xattrs-rw', parent: top });
  const mnt = join(tempDir(t), 'mnt');
  await mountAll(mounts, mnt);
  try {
    t.deepEqual(execFileSync('ls', [join(mnt, 'etc')], { encoding: 'utf8' }).split('\n').filter(Boolean), ['base-conf', 'top-conf']);
    t.is(execFileSync('getfattr', ['--only-values', '-n', 'user.kept', join(mnt, 'etc')]).toString(), 'yes');
    t.regex(execFileSync('getcap', [join(mnt, 'etc/top-conf')]).toString(), /cap_net_bind_service[=+]ep/);
    t.throws(() => execFileSync('getfattr', ['-n', 'security.ima', join(mnt, 'etc/top-conf')], { stdio: 'ignore' }));
  } finally {
    await unmountAll(mnt);
  }
});
