import test, { type ExecutionContext } from 'ava';
import { sha256Digest } from '../../api/digest.ts';
import { codeOf, ErrorCode } from '../../api/errdefs.ts';
import { openTestDB } from './helpers.ts';

const target = (s: string) => ({ mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha256Digest(s), size: s.length });
const spec = { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from('{"ociVersion":"1.0.2"}') };
const code = (t: ExecutionContext, err: unknown, expected: ErrorCode) => t.is(codeOf(err), expected, String(err));

test('images: create, get, list with filters, update by fieldpaths, delete', async (t) => {
  const { db } = await openTestDB(t);
  const a = await db.images.create('default', { name: 'docker.io/library/busybox:latest', target: target('a'), labels: { env: 'prod' } });
  t.true(a.createdAt instanceof Date);
  await db.images.create('default', { name: 'docker.io/library/alpine:3', target: { ...target('b'), mediaType: 'application/vnd.oci.image.manifest.v1+json' } });
  await db.images.create('other', { name: 'docker.io/library/busybox:latest', target: target('c') });
  t.deepEqual((await db.images.get('default', 'docker.io/library/busybox:latest')).target, target('a'));
  t.is((await db.images.get('other', 'docker.io/library/busybox:latest')).target.digest, sha256Digest('c'), 'namespaces are separate');
  const names = async (...f: string[]) => (await db.images.list('default', f)).map((i) => i.name).sort();
  t.deepEqual(await names(), ['docker.io/library/alpine:3', 'docker.io/library/busybox:latest']);
  t.deepEqual(await names('name~=busybox'), ['docker.io/library/busybox:latest']);
  t.deepEqual(await names('labels.env==prod'), ['docker.io/library/busybox:latest']);
  t.deepEqual(await names('target.mediatype==application/vnd.oci.image.manifest.v1+json'), ['docker.io/library/alpine:3']);
  t.deepEqual(await names(`target.digest==${sha256Digest('a')}`, 'name==docker.io/library/alpine:3'), ['docker.io/library/alpine:3', 'docker.io/library/busybox:latest']);
  let u = await db.images.update('default', { name: 'docker.io/library/busybox:latest', labels: { team: 'x' } }, ['labels.team']);
  t.deepEqual(u.labels, { env: 'prod', team: 'x' });
  t.deepEqual(u.target, target('a'));
  t.true(u.updatedAt >= u.createdAt);
  u = await db.images.update('default', { name: 'docker.io/library/busybox:latest', target: target('z'), labels: {} });
  t.deepEqual(u.labels, {});
  t.is(u.target.digest, sha256Digest('z'));
  await db.images.delete('default', 'docker.io/library/alpine:3');
  code(t, await t.throwsAsync(db.images.get('default', 'docker.io/library/alpine:3')), ErrorCode.NotFound);
});

test('images: bad input gets clear errors', async (t) => {
  const { db } = await openTestDB(t);
  await db.images.create('default', { name: 'img', target: target('a') });
  const dup = await t.throwsAsync(db.images.create('default', { name: 'img', target: target('b') }));
  code(t, dup, ErrorCode.AlreadyExists);
  t.regex(dup!.message, /"img" in namespace default: already exists/);
  const missing = await t.throwsAsync(db.images.update('default', { name: 'nope', target: target('a') }));
  code(t, missing, ErrorCode.NotFound);
  t.regex(missing!.message, /"nope"/);
  code(t, await t.throwsAsync(db.images.delete('default', 'nope')), ErrorCode.NotFound);
  code(t, await t.throwsAsync(db.images.create('default', { name: 'x', target: { ...target('a'), digest: 'sha256:bad' } })), ErrorCode.InvalidArgument);
  code(t, await t.throwsAsync(db.images.create('default', { name: 'x', target: { ...target('a'), mediaType: '' } })), ErrorCode.InvalidArgument);
  code(t, await t.throwsAsync(db.images.create('default', { name: '', target: target('a') })), ErrorCode.InvalidArgument);
  code(t, await t.throwsAsync(db.images.create('bad/ns', { name: 'x', target: target('a') })), ErrorCode.InvalidArgument);
  code(t, await t.throwsAsync(db.images.update('default', { name: 'img', labels: {} }, ['name'])), ErrorCode.InvalidArgument);
  code(t, await t.throwsAsync(db.images.list('default', ['name=img'])), ErrorCode.InvalidArgument);
  t.deepEqual((await db.images.list('default')).map((i) => i.name), ['img'], 'failed calls changed nothing');
});

test('containers: create, update fieldpaths, immutables, filters, delete', async (t) => {
  const { db } = await openTestDB(t);
  const c = await db.containers.create('default', {
    id: 'web-1', image: 'docker.io/library/nginx:latest', runtime: { name: 'io.containerd.runc.v2', options: { typeUrl: 'x/Options', value: Buffer.from([8, 1]) } },
    spec, snapshotter: 'overlayfs', snapshotKey: 'web-1', labels: { app: 'web' }, extensions: { 'io.x/ext': { typeUrl: 'x/Ext', value: Buffer.from('e') } },
  });
  t.is(c.sandbox, '');
  const got = await db.containers.get('default', 'web-1');
  t.deepEqual(Buffer.from(got.spec!.value).toString(), '{"ociVersion":"1.0.2"}');
  t.deepEqual([...got.runtime.options!.value], [8, 1]);
  t.deepEqual(Buffer.from(got.extensions['io.x/ext']!.value).toString(), 'e');
  await db.containers.create('default', { id: 'db', runtime: { name: 'io.containerd.berth.v2' }, spec, image: 'postgres' });
  const ids = async (...f: string[]) => (await db.containers.list('default', f)).map((x) => x.id).sort();
  t.deepEqual(await ids(), ['db', 'web-1']);
  t.deepEqual(await ids('runtime.name==io.containerd.berth.v2'), ['db']);
  t.deepEqual(await ids('labels.app==web'), ['web-1']);
  t.deepEqual(await ids('image~=^docker.io/'), ['web-1']);
  const u = await db.containers.update('default', { id: 'web-1', runtime: { name: 'ignored' }, image: 'nginx:2', labels: { tier: 'front' } }, ['image', 'labels.tier']);
  t.is(u.image, 'nginx:2');
  t.deepEqual(u.labels, { app: 'web', tier: 'front' });
  t.is(u.runtime.name, 'io.containerd.runc.v2');
  code(t, await t.throwsAsync(db.containers.update('default', { id: 'web-1', runtime: { name: 'other' } }, ['runtime'])), ErrorCode.InvalidArgument);
  code(t, await t.throwsAsync(db.containers.update('default', { id: 'web-1', runtime: { name: 'other' }, spec })), ErrorCode.InvalidArgument);
  code(t, await t.throwsAsync(db.containers.update('default', { id: 'ghost', runtime: { name: 'r' } }, ['image'])), ErrorCode.NotFound);
  code(t, await t.throwsAsync(db.containers.create('default', { id: 'db', runtime: { name: 'r' }, spec })), ErrorCode.AlreadyExists);
  code(t, await t.throwsAsync(db.containers.create('default', { id: 'no-spec', runtime: { name: 'r' } })), ErrorCode.InvalidArgument);
  code(t, await t.throwsAsync(db.containers.create('default', { id: 'no-runtime', runtime: { name: '' }, spec })), ErrorCode.InvalidArgument);
  code(t, await t.throwsAsync(db.containers.create('default', { id: 'bad id!', runtime: { name: 'r' }, spec })), ErrorCode.InvalidArgument);
  code(t, await t.throwsAsync(db.containers.create('default', { id: 'key-only', runtime: { name: 'r' }, spec, snapshotKey: 'k' })), ErrorCode.InvalidArgument);
  await db.containers.delete('default', 'db');
  code(t, await t.throwsAsync(db.containers.delete('default', 'db')), ErrorCode.NotFound);
  t.deepEqual(await ids(), ['web-1']);
});

test('namespaces: labels, implicit creation, unknown namespace, delete only when empty', async (t) => {
  const { db } = await openTestDB(t);
  await db.namespaces.create('team-a', { owner: 'a' });
  code(t, await t.throwsAsync(db.namespaces.create('team-a')), ErrorCode.AlreadyExists);
  t.deepEqual((await db.namespaces.update({ name: 'team-a', labels: { tier: '1' } }, ['labels.tier'])).labels, { owner: 'a', tier: '1' });
  const unknown = await t.throwsAsync(db.namespaces.get('nowhere'));
  code(t, unknown, ErrorCode.NotFound);
  t.regex(unknown!.message, /namespace nowhere: not found/);
  code(t, await t.throwsAsync(db.namespaces.update({ name: 'nowhere', labels: {} })), ErrorCode.NotFound);
  code(t, await t.throwsAsync(db.namespaces.delete('nowhere')), ErrorCode.NotFound);
  code(t, await t.throwsAsync(db.namespaces.create('Bad Name')), ErrorCode.InvalidArgument);
  t.deepEqual(await db.images.list('nowhere'), [], 'listing an unknown namespace is empty, as containerd');
  await db.images.create('implicit', { name: 'i', target: target('i') });
  t.deepEqual((await db.namespaces.list()).map((n) => n.name).sort(), ['implicit', 'team-a']);
  t.deepEqual((await db.namespaces.list(['labels.owner==a'])).map((n) => n.name), ['team-a']);
  const busy = await t.throwsAsync(db.namespaces.delete('implicit'));
  code(t, busy, ErrorCode.FailedPrecondition);
  t.regex(busy!.message, /still has images/);
  await db.images.delete('implicit', 'i');
  await db.namespaces.delete('implicit');
  t.deepEqual((await db.namespaces.list()).map((n) => n.name), ['team-a']);
});

test('leases: create, resources, list, delete; bad input', async (t) => {
  const { db } = await openTestDB(t);
  const l = await db.leases.create('default', { id: 'pull-1', labels: { 'containerd.io/gc.expire': new Date(Date.now() + 3_600_000).toISOString() } });
  t.is(l.id, 'pull-1');
  await db.leases.create('default', { id: 'pull-2' });
  await db.leases.addResource('default', 'pull-1', { type: 'content', id: sha256Digest('x') });
  await db.leases.addResource('default', 'pull-1', { type: 'snapshots/overlayfs', id: 'sha256:chain' });
  await db.leases.addResource('default', 'pull-1', { type: 'ingests', id: 'layer-ref' });
  t.deepEqual((await db.leases.listResources('default', 'pull-1')).sort((a, b) => a.type.localeCompare(b.type)), [
    { type: 'content', id: sha256Digest('x') }, { type: 'ingests', id: 'layer-ref' }, { type: 'snapshots/overlayfs', id: 'sha256:chain' },
  ]);
  await db.leases.deleteResource('default', 'pull-1', { type: 'ingests', id: 'layer-ref' });
  t.is((await db.leases.listResources('default', 'pull-1')).length, 2);
  t.deepEqual((await db.leases.list('default', ['id~=^pull-'])).map((x) => x.id).sort(), ['pull-1', 'pull-2']);
  t.deepEqual((await db.leases.list('default', ['labels."containerd.io/gc.expire"'])).map((x) => x.id), ['pull-1']);
  code(t, await t.throwsAsync(db.leases.create('default', { id: 'pull-1' })), ErrorCode.AlreadyExists);
  code(t, await t.throwsAsync(db.leases.create('default', { id: 'bad-expiry', labels: { 'containerd.io/gc.expire': 'tomorrow-ish' } })), ErrorCode.InvalidArgument);
  code(t, await t.throwsAsync(db.leases.addResource('default', 'ghost', { type: 'content', id: sha256Digest('x') })), ErrorCode.NotFound);
  code(t, await t.throwsAsync(db.leases.addResource('default', 'pull-2', { type: 'volumes', id: 'v' })), ErrorCode.InvalidArgument);
  code(t, await t.throwsAsync(db.leases.addResource('default', 'pull-2', { type: 'content', id: 'not-a-digest' })), ErrorCode.InvalidArgument);
  await db.leases.delete('default', 'pull-1');
  code(t, await t.throwsAsync(db.leases.delete('default', 'pull-1')), ErrorCode.NotFound);
  code(t, await t.throwsAsync(db.leases.listResources('default', 'pull-1')), ErrorCode.NotFound);
  t.deepEqual((await db.leases.list('default')).map((x) => x.id), ['pull-2']);
});

test('everything persists across a restart', async (t) => {
  const tdb = await openTestDB(t);
  let db = tdb.db;
  await db.namespaces.create('keep', { a: 'b' });
  await db.images.create('keep', { name: 'img', target: target('p'), labels: { x: 'y' } });
  await db.containers.create('keep', { id: 'c1', runtime: { name: 'io.containerd.runc.v2' }, spec, snapshotter: 'mem', snapshotKey: 'c1' });
  await db.leases.create('keep', { id: 'l1', labels: { k: 'v' } });
  await db.leases.addResource('keep', 'l1', { type: 'content', id: sha256Digest('q') });
  db = await tdb.reopen();
  t.deepEqual((await db.namespaces.get('keep')).labels, { a: 'b' });
  const img = await db.images.get('keep', 'img');
  t.deepEqual([img.target, img.labels], [target('p'), { x: 'y' }]);
  t.true(img.createdAt instanceof Date && img.createdAt.getTime() > 0);
  const c = await db.containers.get('keep', 'c1');
  t.is(Buffer.from(c.spec!.value).toString(), '{"ociVersion":"1.0.2"}');
  t.is(c.snapshotKey, 'c1');
  t.deepEqual((await db.leases.get('keep', 'l1')).labels, { k: 'v' });
  t.deepEqual(await db.leases.listResources('keep', 'l1'), [{ type: 'content', id: sha256Digest('q') }]);
});
