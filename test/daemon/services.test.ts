// berthd's metadata services over real gRPC on a unix socket: what containerd's clients call.
import test from 'ava';
import { statSync } from 'node:fs';
import { sha256Digest } from '../../api/digest.ts';
import { unpackAny } from '../../api/proto.ts';
import { startDaemon } from './helpers.ts';

const V = 'containerd.services.';
const NS = V + 'namespaces.v1.Namespaces';
const IMAGES = V + 'images.v1.Images';
const CONTENT = V + 'content.v1.Content';
const LEASES = V + 'leases.v1.Leases';
const EVENTS = V + 'events.v1.Events';

/** Writes a blob through Content.Write (STAT, WRITE..., COMMIT), returning every response. */
async function writeBlob(client: ReturnType<Awaited<ReturnType<typeof startDaemon>>['client']>, ref: string, data: Buffer, opts: { expected?: string; total?: number; chunk?: number } = {}) {
  const stream = client.open(CONTENT, 'Write');
  const responses: Record<string, any>[] = [];
  const expected = opts.expected ?? sha256Digest(data);
  stream.send({ action: 'STAT', ref, total: opts.total ?? data.length, expected });
  const chunk = opts.chunk ?? 1 << 16;
  let off = 0;
  for (; off + chunk < data.length; off += chunk) stream.send({ action: 'WRITE', ref, offset: off, data: data.subarray(off, off + chunk) });
  stream.send({ action: 'COMMIT', ref, offset: off, data: data.subarray(off), total: opts.total ?? data.length, expected, labels: { 'test.label': 'x' } });
  stream.end();
  for await (const m of stream) responses.push(m);
  return responses;
}

test('Version answers berth\'s version', async (t) => {
  const d = await startDaemon(t);
  const v = await d.client().call(V + 'version.v1.Version', 'Version');
  t.regex(v.version, /^v\d+\.\d+\.\d+/);
  t.is(statSync(d.address).mode & 0o777, 0o600, 'socket is root-only');
});

test('grpc.health.v1.Health: Check and Watch answer SERVING for the server and its services, as containerd\'s', async (t) => {
  const d = await startDaemon(t);
  const c = d.client();
  const HEALTH = 'grpc.health.v1.Health';
  t.deepEqual(await c.call(HEALTH, 'Check', {}), { status: 'SERVING' });
  t.deepEqual(await c.call(HEALTH, 'Check', { service: NS }), { status: 'SERVING' });
  await t.throwsAsync(c.call(HEALTH, 'Check', { service: 'no.such.Service' }), { message: /unknown service/ });
  // Watch sends the status, then stays open (until the client leaves or the daemon stops).
  const watch = c.open(HEALTH, 'Watch');
  watch.send({});
  watch.end();
  const first = await watch[Symbol.asyncIterator]().next();
  t.deepEqual(first.value, { status: 'SERVING' });
  watch.cancel();
  const unknown = c.open(HEALTH, 'Watch');
  unknown.send({ service: 'no.such.Service' });
  unknown.end();
  t.deepEqual((await unknown[Symbol.asyncIterator]().next()).value, { status: 'SERVICE_UNKNOWN' });
  unknown.cancel();
  t.true((await c.call(V + 'introspection.v1.Introspection', 'Plugins', {})).plugins.some((p: any) => p.id === 'healthcheck'));
});

test('namespaces: create, labels, filters, delete; events published', async (t) => {
  const d = await startDaemon(t);
  const c = d.client();
  const sub = d.daemon.ctx.events.subscribe(['topic~="/namespaces/"']);
  await c.call(NS, 'Create', { namespace: { name: 'alpha', labels: { team: 'a' } } });
  await c.call(NS, 'Create', { namespace: { name: 'beta' } });
  const dup = await t.throwsAsync(c.call(NS, 'Create', { namespace: { name: 'alpha' } }));
  t.regex(dup!.message, /already exists/);
  t.deepEqual((await c.call(NS, 'List', {})).namespaces.map((n: any) => n.name).sort(), ['alpha', 'beta']);
  t.deepEqual((await c.call(NS, 'List', { filter: 'labels.team==a' })).namespaces.map((n: any) => n.name), ['alpha']);
  await c.call(NS, 'Update', { namespace: { name: 'beta', labels: { x: '1' } }, updateMask: { paths: ['labels.x'] } });
  t.deepEqual((await c.call(NS, 'Get', { name: 'beta' })).namespace.labels, { x: '1' });
  await c.call(NS, 'Delete', { name: 'beta' });
  // As containerd: a namespace that does not exist (any more, or yet) has no labels; dockerd asks at connect.
  t.deepEqual((await c.call(NS, 'Get', { name: 'beta' })).namespace, { name: 'beta', labels: {} });
  t.false((await c.call(NS, 'List', {})).namespaces.some((n: any) => n.name === 'beta'), 'Get creates nothing');
  const topics: string[] = [];
  for await (const env of sub) {
    topics.push(env.topic);
    if (topics.length === 4) break;
  }
  t.deepEqual(topics, ['/namespaces/create', '/namespaces/create', '/namespaces/update', '/namespaces/delete']);
});

test('a call without a namespace is refused with failed precondition', async (t) => {
  const d = await startDaemon(t);
  const err = await t.throwsAsync(d.client().call(IMAGES, 'List', {}));
  t.regex(err!.message, /namespace is required/);
  t.is((err as any).code, 'failed precondition');
});

test('content: write through the stream, read back, list, labels, delete', async (t) => {
  const d = await startDaemon(t);
  const c = d.client('default');
  const data = Buffer.alloc(300_000, 7);
  const digest = sha256Digest(data);
  const res = await writeBlob(c, 'ref-1', data);
  t.is(res.at(-1)!.digest, digest);
  t.is(res.at(-1)!.offset, data.length);
  const info = (await c.call(CONTENT, 'Info', { digest })).info;
  t.is(info.size, data.length);
  t.deepEqual(info.labels, { 'test.label': 'x' });
  const chunks: Buffer[] = [];
  for await (const m of c.stream<any>(CONTENT, 'Read', { digest, offset: 1000, size: 200_000 })) chunks.push(m.data);
  t.true(Buffer.concat(chunks).equals(data.subarray(1000, 201_000)));
  const listed: string[] = [];
  for await (const m of c.stream<any>(CONTENT, 'List', {})) listed.push(...m.info.map((i: any) => i.digest));
  t.deepEqual(listed, [digest]);
  await c.call(CONTENT, 'Update', { info: { digest, labels: { 'containerd.io/gc.root': 'now' } }, updateMask: { paths: ['labels.containerd.io/gc.root'] } });
  t.deepEqual((await c.call(CONTENT, 'Info', { digest })).info.labels, { 'test.label': 'x', 'containerd.io/gc.root': 'now' });
  const again = await t.throwsAsync(writeBlob(c, 'ref-2', data));
  t.regex(again!.message, /already exists|exists/);
  await c.call(CONTENT, 'Delete', { digest });
  await t.throwsAsync(c.call(CONTENT, 'Info', { digest }), { message: /not found/ });
});

test('content: a digest that does not match is refused and nothing is committed', async (t) => {
  const d = await startDaemon(t);
  const c = d.client('default');
  const data = Buffer.from('hello berth');
  const wrong = sha256Digest('something else');
  const err = await t.throwsAsync(writeBlob(c, 'bad-ref', data, { expected: wrong }));
  t.regex(err!.message, /digest|mismatch|unexpected/i);
  await t.throwsAsync(c.call(CONTENT, 'Info', { digest: wrong }), { message: /not found/ });
  await t.throwsAsync(c.call(CONTENT, 'Info', { digest: sha256Digest(data) }), { message: /not found/ });
});

test('content: an interrupted write resumes at the offset Status reports', async (t) => {
  const d = await startDaemon(t);
  const c = d.client('default');
  const data = Buffer.alloc(200_000, 3);
  const first = c.open(CONTENT, 'Write');
  first.send({ action: 'WRITE', ref: 'resume', total: data.length, expected: sha256Digest(data), offset: 0, data: data.subarray(0, 120_000) });
  const ack = await first[Symbol.asyncIterator]().next();
  t.is(ack.value.offset, 120_000);
  first.cancel();
  await new Promise((r) => setTimeout(r, 50));
  const status = (await c.call(CONTENT, 'Status', { ref: 'resume' })).status;
  t.is(status.offset, 120_000);
  t.is(status.total, data.length);
  const listed = (await c.call(CONTENT, 'ListStatuses', {})).statuses.map((s: any) => s.ref);
  t.deepEqual(listed, ['resume']);
  const second = c.open(CONTENT, 'Write');
  second.send({ action: 'STAT', ref: 'resume' });
  second.send({ action: 'COMMIT', ref: 'resume', offset: 120_000, data: data.subarray(120_000), total: data.length, expected: sha256Digest(data) });
  second.end();
  const got: any[] = [];
  for await (const m of second) got.push(m);
  t.is(got[0].offset, 120_000);
  t.is((await c.call(CONTENT, 'Info', { digest: sha256Digest(data) })).info.size, data.length);
});

test('images: create, get, list with filters, update, delete; events carry the name', async (t) => {
  const d = await startDaemon(t);
  const c = d.client('default');
  const blob = Buffer.from('{"schemaVersion":2}');
  await writeBlob(c, 'm', blob);
  const target = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256Digest(blob), size: blob.length };
  const sub = d.daemon.ctx.events.subscribe(['topic~="^/images/"']);
  const created = (await c.call(IMAGES, 'Create', { image: { name: 'docker.io/library/x:1', target, labels: { a: 'b' } } })).image;
  t.is(created.target.digest, target.digest);
  t.true(created.createdAt.seconds > 0);
  await c.call(IMAGES, 'Create', { image: { name: 'docker.io/library/y:1', target } });
  const listed = (await c.call(IMAGES, 'List', { filters: ['labels.a==b'] })).images.map((i: any) => i.name);
  t.deepEqual(listed, ['docker.io/library/x:1']);
  await c.call(IMAGES, 'Update', { image: { name: 'docker.io/library/y:1', labels: { z: '1' } }, updateMask: { paths: ['labels'] } });
  t.deepEqual((await c.call(IMAGES, 'Get', { name: 'docker.io/library/y:1' })).image.labels, { z: '1' });
  await c.call(IMAGES, 'Delete', { name: 'docker.io/library/y:1', sync: true });
  await t.throwsAsync(c.call(IMAGES, 'Get', { name: 'docker.io/library/y:1' }), { message: /not found/ });
  const bad = await t.throwsAsync(c.call(IMAGES, 'Create', { image: { name: 'z', target: { mediaType: 'x', digest: 'sha256:nothex', size: 1 } } }));
  t.regex(bad!.message, /digest/);
  const seen: string[] = [];
  for await (const env of sub) {
    seen.push(`${env.topic} ${(unpackAny(env.event) as any).name}`);
    if (seen.length === 4) break;
  }
  t.deepEqual(seen, ['/images/create docker.io/library/x:1', '/images/create docker.io/library/y:1', '/images/update docker.io/library/y:1', '/images/delete docker.io/library/y:1']);
});

test('leases keep content alive until deleted; garbage collection then removes it', async (t) => {
  const d = await startDaemon(t);
  const lease = (await d.client('default').call(LEASES, 'Create', { labels: { purpose: 'test' } })).lease;
  t.truthy(lease.id);
  const leased = d.client('default');
  const data = Buffer.from('leased blob');
  // The lease travels in the containerd-lease header, as containerd clients send it.
  const withLease = leased.with({ lease: lease.id });
  await writeBlob(withLease, 'leased', data);
  const resources = (await leased.call(LEASES, 'ListResources', { id: lease.id })).resources;
  t.deepEqual(resources.map((r: any) => `${r.type} ${r.id}`), [`content ${sha256Digest(data)}`]);
  t.deepEqual((await leased.call(LEASES, 'List', { filters: ['labels.purpose==test'] })).leases.map((l: any) => l.id), [lease.id]);
  await d.daemon.ctx.db.gc();
  t.is((await leased.call(CONTENT, 'Info', { digest: sha256Digest(data) })).info.size, data.length, 'leased content survives GC');
  await leased.call(LEASES, 'Delete', { id: lease.id, sync: true });
  await t.throwsAsync(leased.call(CONTENT, 'Info', { digest: sha256Digest(data) }), { message: /not found/ });
});

test('Events: Subscribe streams what Publish sends, filtered by topic', async (t) => {
  const d = await startDaemon(t);
  const c = d.client('default');
  const got: any[] = [];
  const it = c.stream<any>(EVENTS, 'Subscribe', { filters: ['topic=="/test/hello"'] });
  const reading = (async () => { for await (const e of it) { got.push(e); if (got.length === 1) break; } })();
  while (d.daemon.ctx.events.subscriberCount === 0) await new Promise((r) => setTimeout(r, 10));
  const event = { typeUrl: 'containerd.events.NamespaceCreate', value: Buffer.from([0x0a, 0x01, 0x78]) };
  await c.call(EVENTS, 'Publish', { topic: '/test/other', event });
  await c.call(EVENTS, 'Publish', { topic: '/test/hello', event });
  await reading;
  t.is(got[0].topic, '/test/hello');
  t.is(got[0].namespace, 'default');
  await t.throwsAsync(c.call(EVENTS, 'Publish', { topic: 'no-slash', event }), { message: /invalid topic/ });
});

test('a second daemon on a live socket is refused', async (t) => {
  const d = await startDaemon(t);
  const err = await t.throwsAsync(startDaemon(t, { address: d.address }));
  t.regex(err!.message, /another daemon is serving/);
  t.is((await d.client().call(V + 'version.v1.Version', 'Version')).revision.length > 0, true, 'the first keeps serving');
});
