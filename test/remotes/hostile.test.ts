// Registries that lie, answer garbage or hang. These use a tiny fake registry in the test; the normal cases
// run against the real one.
import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { LocalContentStore } from '../../content/local.ts';
import type { ContentStore } from '../../content/types.ts';
import { pullImage } from '../../daemon/remotes/pull.ts';
import { pushImage } from '../../daemon/remotes/push.ts';
import { blobOf, buildImage, busyboxImage, tarEntries, writeImageToStore, type TestImage } from '../helpers/image.ts';
import { recordingProxy, startRegistry } from '../helpers/registry.ts';
import { tempDir } from '../helpers/tmp.ts';

type Route = (req: http.IncomingMessage, res: http.ServerResponse, blob?: Buffer) => boolean | void;

/** Serves `image` under /v2/x/y like a registry; `route` may answer a request itself (return true). */
async function fakeRegistry(t: ExecutionContext, image: TestImage, route: Route = () => false): Promise<string> {
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((req, res) => {
    const m = /^\/v2\/x\/y\/(manifests|blobs)\/(.+)$/.exec(req.url ?? '');
    const key = m?.[2] === 'latest' ? image.target.digest : m?.[2];
    const blob = key ? image.blobs.get(key) : undefined;
    if (route(req, res, blob)) return;
    if (!blob) { res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}'); return; }
    const type = m![1] === 'manifests' ? (key === image.target.digest ? image.target.mediaType : 'application/vnd.oci.image.manifest.v1+json') : 'application/octet-stream';
    res.writeHead(200, { 'content-type': type, 'content-length': blob.length, 'docker-content-digest': key! });
    res.end(req.method === 'HEAD' ? undefined : blob);
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close(); });
  return `127.0.0.1:${(server.address() as AddressInfo).port}/x/y:latest`;
}

async function emptyStore(t: ExecutionContext): Promise<LocalContentStore> {
  return LocalContentStore.open(join(tempDir(t), 'content'));
}

async function assertEmpty(t: ExecutionContext, store: ContentStore) {
  const blobs: string[] = [];
  await store.walk((i) => { blobs.push(i.digest); });
  t.deepEqual(blobs, [], 'nothing committed');
  t.deepEqual(await store.listStatuses(), [], 'no ingest left');
}

const smallImage = async () => buildImage({ layers: [await tarEntries([{ name: 'a', data: 'a'.repeat(5000) }])] });

test('a blob whose digest does not match is refused, naming expected and actual, nothing committed', async (t) => {
  const image = await smallImage();
  const layer = image.manifests[0]!.layers[0]!;
  const ref = await fakeRegistry(t, image, (req, res, blob) => {
    if (blob !== layer.data || req.method !== 'GET') return false;
    const evil = Buffer.from(blob);
    evil[evil.length - 1] ^= 0xff;
    res.writeHead(200, { 'content-length': evil.length }).end(evil);
    return true;
  });
  const store = await emptyStore(t);
  const consumer: string[] = [];
  const onLayerData = async (_l: unknown, data: import('node:stream').Readable) => {
    data.on('data', () => {});
    await new Promise<void>((resolve) => { data.on('end', () => { consumer.push('end'); resolve(); }); data.on('error', (e) => { consumer.push(`error: ${e.message}`); resolve(); }); });
  };
  await t.throwsAsync(pullImage(ref, { store, onLayerData }), { message: new RegExp(`blob ${layer.descriptor.digest}: digest mismatch: expected ${layer.descriptor.digest}, got sha256:`) });
  t.deepEqual(consumer.map((c) => c.replace(/:.*/, '')), ['error'], 'a streaming consumer sees the failure, never a clean end');
  await assertEmpty(t, store);
});

test('a blob longer or shorter than its descriptor is refused with a size mismatch', async (t) => {
  for (const delta of [+10, -10]) {
    const image = await smallImage();
    const layer = image.manifests[0]!.layers[0]!;
    const ref = await fakeRegistry(t, image, (req, res, blob) => {
      if (blob !== layer.data || req.method !== 'GET') return false;
      res.writeHead(200).end(delta > 0 ? Buffer.concat([blob, Buffer.alloc(delta)]) : blob.subarray(0, blob.length + delta));
      return true;
    });
    const store = await emptyStore(t);
    await t.throwsAsync(pullImage(ref, { store }), { message: new RegExp(`size mismatch: expected ${layer.descriptor.size}, got ${delta > 0 ? 'more than' : layer.descriptor.size + delta}`) });
    await assertEmpty(t, store);
  }
});

test('a manifest whose layers do not match the config diff_ids is refused before any download', async (t) => {
  const tar1 = await tarEntries([{ name: 'one', data: '1' }]);
  const image = buildImage({ layers: [tar1, await tarEntries([{ name: 'two', data: '2' }])], diffIds: [blobOf('x', tar1).descriptor.digest] });
  const ref = await fakeRegistry(t, image);
  const store = await emptyStore(t);
  await t.throwsAsync(pullImage(ref, { store }), { message: /2 layers but the config lists 1 diff_ids/ });
  await assertEmpty(t, store);
});

test('unknown media types are refused: layer, config, manifest', async (t) => {
  const layerTar = await tarEntries([{ name: 'f', data: 'f' }]);
  const layer = blobOf('application/x-berth-unknown', layerTar);
  const config = blobOf('application/vnd.oci.image.config.v1+json', JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [layer.descriptor.digest] } }));
  const cases: [string, object, RegExp][] = [
    ['application/vnd.oci.image.manifest.v1+json', { schemaVersion: 2, config: config.descriptor, layers: [layer.descriptor] }, /unknown layer media type "application\/x-berth-unknown"/],
    ['application/vnd.oci.image.manifest.v1+json', { schemaVersion: 2, config: { ...config.descriptor, mediaType: 'application/x-weird-config' }, layers: [] }, /unknown config media type "application\/x-weird-config"/],
    ['application/x-not-a-manifest', { schemaVersion: 2 }, /registry answered "application\/x-not-a-manifest", which is no manifest or index media type/],
  ];
  for (const [mediaType, doc, message] of cases) {
    const manifest = blobOf(mediaType, JSON.stringify(doc));
    const image: TestImage = { target: manifest.descriptor, manifests: [], blobs: new Map([[manifest.descriptor.digest, manifest.data], [config.descriptor.digest, config.data], [layer.descriptor.digest, layer.data]]) };
    const store = await emptyStore(t);
    await t.throwsAsync(pullImage(await fakeRegistry(t, image), { store }), { message });
    await assertEmpty(t, store);
  }
});

test('garbage answers: HTML, malformed JSON, wrong schemaVersion, unexpected status', async (t) => {
  const cases: [Route, RegExp][] = [
    [(_q, res) => { res.writeHead(200, { 'content-type': 'text/html' }).end('<html>proxy login</html>'); return true; }, /registry answered "text\/html", which is no manifest/],
    [(req, res) => {
      if (!req.url?.includes('/manifests/')) return false;
      const body = Buffer.from('{"schemaVersion": 2, "layers": [');
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': body.length }).end(req.method === 'HEAD' ? undefined : body);
      return true;
    }, /invalid image manifest: malformed JSON/],
    [(req, res) => {
      if (!req.url?.includes('/manifests/')) return false;
      const body = Buffer.from('{"schemaVersion": 3, "config": {}, "layers": []}');
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': body.length }).end(req.method === 'HEAD' ? undefined : body);
      return true;
    }, /invalid image manifest: schemaVersion 3, want 2/],
    [(_q, res) => { res.writeHead(418, { 'content-type': 'text/plain' }).end('teapot'); return true; }, /unexpected status 418 \(text\/plain answer: "teapot"\)/],
    [(_q, res) => { res.writeHead(503, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAVAILABLE","message":"down for maintenance"}]}'); return true; }, /unexpected status 503 \(UNAVAILABLE: down for maintenance\)/],
  ];
  for (const [route, message] of cases) {
    const store = await emptyStore(t);
    await t.throwsAsync(pullImage(await fakeRegistry(t, await smallImage(), route), { store }), { message });
    await assertEmpty(t, store);
  }
});

test('a registry that hangs: the timeout fires with a clear error', async (t) => {
  const ref = await fakeRegistry(t, await smallImage(), () => true); // never answers
  const started = Date.now();
  await t.throwsAsync(pullImage(ref, { store: await emptyStore(t), timeoutMs: 300 }), { message: /HEAD http:\/\/127\.0\.0\.1:\d+\/v2\/x\/y\/manifests\/latest: registry did not answer within 300 ms/ });
  t.true(Date.now() - started < 5000);
});

test('a blob that stalls halfway times out, keeps the partial ingest, and the next pull resumes it', async (t) => {
  const reg = await startRegistry(t);
  const image = await busyboxImage({ tag: 'resume' });
  const src = await emptyStore(t);
  await writeImageToStore(src, image);
  await pushImage(`${reg.host}/x/y:latest`, { store: src, target: image.target });

  const big = image.manifests[0]!.layers[0]!;
  const half = Math.floor(big.data.length / 2);
  const ref = await fakeRegistry(t, image, (req, res, blob) => {
    if (blob !== big.data || req.method !== 'GET') return false;
    res.writeHead(200, { 'content-length': blob.length });
    res.write(blob.subarray(0, half)); // and then nothing
    return true;
  });
  const store = await emptyStore(t);
  await t.throwsAsync(pullImage(ref, { store, timeoutMs: 500 }), { message: /did not answer within 500 ms/ });
  const [status] = await store.listStatuses();
  t.is(status?.ref, `layer-${big.descriptor.digest}`);
  t.is(status?.offset, half);

  const resumed: number[] = [];
  const log: string[] = [];
  await pullImage(`${await recordingProxy(t, reg, log)}/x/y:latest`, { store, onProgress: (p) => { if (p.status === 'resumed') resumed.push(p.offset); } });
  t.deepEqual(resumed, [half]);
  t.true(log.includes(`GET /v2/x/y/blobs/${big.descriptor.digest} range=bytes=${half}-`));
  const reader = await store.reader(big.descriptor.digest);
  t.deepEqual(await reader.read(0, reader.size), big.data);
  await reader.close();
  t.deepEqual(await store.listStatuses(), []);
});
