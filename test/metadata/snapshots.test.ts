import test, { type ExecutionContext } from 'ava';
import { codeOf, ErrorCode } from '../../api/errdefs.ts';
import type { SnapshotInfo, Snapshotter } from '../../snapshotters/types.ts';
import { openTestDB } from './helpers.ts';

const code = (t: ExecutionContext, err: unknown, expected: ErrorCode) => t.is(codeOf(err), expected, String(err));

async function names(s: Snapshotter, ...filters: string[]): Promise<string[]> {
  const out: SnapshotInfo[] = [];
  await s.walk((i) => { out.push(i); }, filters);
  return out.map((i) => i.name).sort();
}

async function backendKeys(s: Snapshotter): Promise<string[]> {
  return names(s);
}

test('namespaced snapshots: prepare, commit, view, stat, walk, remove', async (t) => {
  const { db, snapshotter: backend } = await openTestDB(t);
  const s = db.snapshotter('default', 'mem');
  const mounts = await s.prepare('layer-1-extract', undefined, { labels: { 'containerd.io/snapshot.ref': 'x' } });
  t.is(mounts[0]!.type, 'bind');
  await s.commit('sha256:chain1', 'layer-1-extract', { labels: { 'containerd.io/gc.root': 'y' } });
  code(t, await t.throwsAsync(s.stat('layer-1-extract')), ErrorCode.NotFound);
  await s.prepare('layer-2-extract', 'sha256:chain1');
  await s.commit('sha256:chain2', 'layer-2-extract');
  await s.prepare('ctr-1', 'sha256:chain2');
  await s.view('ro-view', 'sha256:chain1');
  const info = await s.stat('ctr-1');
  t.like(info, { kind: 'active', name: 'ctr-1', parent: 'sha256:chain2' });
  t.like(await s.stat('sha256:chain2'), { kind: 'committed', parent: 'sha256:chain1' });
  t.like(await s.stat('ro-view'), { kind: 'view' });
  t.deepEqual((await s.stat('sha256:chain1')).labels, { 'containerd.io/gc.root': 'y' });
  t.deepEqual(await names(s), ['ctr-1', 'ro-view', 'sha256:chain1', 'sha256:chain2']);
  t.deepEqual(await names(s, 'kind==committed'), ['sha256:chain1', 'sha256:chain2']);
  t.deepEqual(await names(s, 'parent==sha256:chain1'), ['ro-view', 'sha256:chain2']);
  t.deepEqual(await names(s, 'labels."containerd.io/gc.root"'), ['sha256:chain1']);
  t.true((await backendKeys(backend)).every((k) => k.startsWith('default/')), 'backend keys are namespaced');
  t.deepEqual((await s.update({ name: 'ctr-1', labels: { a: 'b' } }, ['labels.a'])).labels, { a: 'b' });
  t.deepEqual(await s.usage('ctr-1'), { size: 0, inodes: 0 });
  code(t, await t.throwsAsync(s.remove('sha256:chain2')), ErrorCode.FailedPrecondition);
  await s.remove('ctr-1');
  await s.remove('sha256:chain2');
  t.deepEqual(await names(s), ['ro-view', 'sha256:chain1'], 'the names go at once');
  t.is((await backendKeys(backend)).length, 4, 'their backend snapshots wait for the garbage collection');
  await db.gc();
  t.deepEqual(await names(s), ['sha256:chain1'], 'which keeps the root and takes what nothing references');
  t.is((await backendKeys(backend)).length, 1, 'with the backend snapshots of all that is gone');
});

test('namespaced snapshots: the same key in two namespaces are two snapshots', async (t) => {
  const { db, snapshotter: backend } = await openTestDB(t);
  const a = db.snapshotter('a', 'mem');
  const b = db.snapshotter('b', 'mem');
  await a.prepare('k');
  await b.prepare('k');
  await a.commit('base', 'k');
  t.like(await b.stat('k'), { kind: 'active' });
  code(t, await t.throwsAsync(b.stat('base')), ErrorCode.NotFound);
  code(t, await t.throwsAsync(b.prepare('child', 'base')), ErrorCode.NotFound);
  t.is((await backendKeys(backend)).length, 2);
});

test('namespaced snapshots: bad input and errors', async (t) => {
  const { db } = await openTestDB(t);
  const s = db.snapshotter('default', 'mem');
  await s.prepare('active');
  code(t, await t.throwsAsync(s.prepare('active')), ErrorCode.AlreadyExists);
  code(t, await t.throwsAsync(Promise.all([s.prepare('race'), s.prepare('race')])), ErrorCode.AlreadyExists);
  code(t, await t.throwsAsync(s.prepare('child', 'active')), ErrorCode.InvalidArgument);
  code(t, await t.throwsAsync(s.prepare('child', 'missing-parent')), ErrorCode.NotFound);
  code(t, await t.throwsAsync(s.commit('c', 'missing')), ErrorCode.NotFound);
  await s.view('v');
  code(t, await t.throwsAsync(s.commit('c', 'v')), ErrorCode.FailedPrecondition);
  await s.prepare('x');
  await s.commit('committed', 'x');
  code(t, await t.throwsAsync(s.mounts('committed')), ErrorCode.FailedPrecondition);
  code(t, await t.throwsAsync(s.remove('missing')), ErrorCode.NotFound);
  code(t, await t.throwsAsync(s.prepare('')), ErrorCode.InvalidArgument);
  code(t, await t.throwsAsync(s.update({ name: 'missing', labels: {} })), ErrorCode.NotFound);
  code(t, await t.throwsAsync(s.walk(() => {}, ['kind=active'])), ErrorCode.InvalidArgument);
  code(t, t.throws(() => db.snapshotter('default', 'zfs')), ErrorCode.NotFound);
  code(t, t.throws(() => db.snapshotter('Bad NS', 'mem')), ErrorCode.InvalidArgument);
  t.deepEqual(await names(s), ['active', 'committed', 'race', 'v']);
});

test('namespaced snapshots persist across a restart', async (t) => {
  const tdb = await openTestDB(t);
  const s = tdb.db.snapshotter('default', 'mem');
  await s.prepare('a');
  await s.commit('base', 'a', { labels: { k: 'v' } });
  await s.prepare('top', 'base');
  const db = await tdb.reopen();
  const again = db.snapshotter('default', 'mem');
  t.like(await again.stat('top'), { kind: 'active', parent: 'base' });
  t.deepEqual((await again.stat('base')).labels, { k: 'v' });
  await again.prepare('second', 'base');
  t.deepEqual(await names(again), ['base', 'second', 'top']);
});

test('a remote snapshot the backend provides is recorded as committed and the prepare answers already-exists', async (t) => {
  const { db, snapshotter: backend } = await openTestDB(t);
  await db.leases.create('default', { id: 'pull' });
  const s = db.snapshotter('default', 'mem', { lease: 'pull' });
  await s.prepare('base-extract');
  await s.commit('sha256:base', 'base-extract');
  const labels = { 'containerd.io/snapshot.ref': 'sha256:top', 'test.remote': '1' };
  const err = await t.throwsAsync(s.prepare('extract-top', 'sha256:base', { labels }));
  code(t, err, ErrorCode.AlreadyExists);
  t.regex(err!.message, /target snapshot "sha256:top"/);
  t.like(await s.stat('sha256:top'), { kind: 'committed', parent: 'sha256:base' });
  code(t, await t.throwsAsync(s.stat('extract-top')), ErrorCode.NotFound);
  const backendTop = (await backendKeys(backend)).find((k) => k.endsWith('/sha256:top'));
  t.truthy(backendTop, 'the backend was given the namespaced target key');
  t.true((await db.leases.listResources('default', 'pull')).some((r) => r.id === 'sha256:top'), 'the target joins the lease');
  code(t, await t.throwsAsync(s.prepare('again', 'sha256:base', { labels })), ErrorCode.AlreadyExists);
  await s.prepare('ctr', 'sha256:top');
  t.like(await s.stat('ctr'), { parent: 'sha256:top' });
});
