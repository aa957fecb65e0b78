import test from 'ava';
import { existsSync } from 'node:fs';
import type { ContentStore } from '../../content/types.ts';
import type { MetadataDB } from '../../daemon/metadata/db.ts';
import type { SnapshotInfo, Snapshotter } from '../../snapshotters/types.ts';
import { openTestDB, putBlob, type TestDB } from './helpers.ts';

async function digests(store: ContentStore): Promise<string[]> {
  const out: string[] = [];
  await store.walk((i) => { out.push(i.digest); });
  return out.sort();
}

async function snapshotNames(s: Snapshotter): Promise<string[]> {
  const out: SnapshotInfo[] = [];
  await s.walk((i) => { out.push(i); });
  return out.map((i) => i.name).sort();
}

const waitFor = async (cond: () => Promise<boolean>, ms = 3000) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
};

/** Pulls an image the way a client does: everything under a lease, labels chaining index → manifest → config/layers → snapshots. */
async function pullImage(db: MetadataDB, ns: string, name: string, seed: string) {
  const lease = `pull-${seed}`;
  await db.leases.create(ns, { id: lease });
  const cs = db.content(ns, { lease });
  const sn = db.snapshotter(ns, 'mem', { lease });
  await sn.prepare(`extract-1-${seed}`);
  await sn.commit(`chain1-${seed}`, `extract-1-${seed}`);
  await sn.prepare(`extract-2-${seed}`, `chain1-${seed}`);
  await sn.commit(`chain2-${seed}`, `extract-2-${seed}`);
  const l1 = await putBlob(cs, `layer-1-${seed}`);
  const l2 = await putBlob(cs, `layer-2-${seed}`);
  const config = await putBlob(cs, `config-${seed}`, { 'containerd.io/gc.ref.snapshot.mem': `chain2-${seed}` });
  const manifest = await putBlob(cs, `manifest-${seed}`, {
    'containerd.io/gc.ref.content.config': config.digest, 'containerd.io/gc.ref.content.l.0': l1.digest, 'containerd.io/gc.ref.content.l.1': l2.digest,
  });
  const index = await putBlob(cs, `index-${seed}`, { 'containerd.io/gc.ref.content.m.0': manifest.digest });
  await db.images.create(ns, { name, target: { ...index, mediaType: 'application/vnd.oci.image.index.v1+json' } });
  await db.leases.delete(ns, lease, { sync: true });
  return { all: [l1, l2, config, manifest, index].map((d) => d.digest).sort(), snapshots: [`chain1-${seed}`, `chain2-${seed}`].sort() };
}

test('the label chain image → index → manifest → config/layers → snapshots keeps everything; removing the image frees it all', async (t) => {
  const { db, backend, snapshotter } = await openTestDB(t);
  const img = await pullImage(db, 'default', 'docker.io/library/app:1', 'a');
  // Junk written outside any lease and never referenced.
  const junk = await putBlob(db.content('default'), 'junk');
  await db.snapshotter('default', 'mem').prepare('orphan');
  const r1 = await db.gc();
  t.deepEqual(r1.content, [`default/${junk.digest}`]);
  t.deepEqual(r1.snapshots, ['default/mem/orphan']);
  t.deepEqual(await digests(db.content('default')), img.all);
  t.deepEqual(await digests(backend), img.all, 'junk blob removed from disk');
  t.deepEqual(await snapshotNames(db.snapshotter('default', 'mem')), img.snapshots);
  t.is((await snapshotNames(snapshotter)).length, 2, 'orphan removed from the backend');

  await db.images.delete('default', 'docker.io/library/app:1', { sync: true });
  t.deepEqual(await digests(db.content('default')), []);
  t.deepEqual(await digests(backend), []);
  t.deepEqual(await snapshotNames(snapshotter), [], 'snapshots removed child first');
});

test('two images sharing layers: removing one keeps the shared ones', async (t) => {
  const { db, backend } = await openTestDB(t);
  const a = await pullImage(db, 'default', 'a:1', 'a');
  const cs = db.content('default');
  await db.leases.create('default', { id: 'l' });
  const lcs = db.content('default', { lease: 'l' });
  const extra = await putBlob(lcs, 'b-manifest', { 'containerd.io/gc.ref.content.l.0': a.all[0]! });
  await db.images.create('default', { name: 'b:1', target: extra });
  await db.leases.delete('default', 'l');
  await db.images.delete('default', 'a:1');
  await db.gc();
  t.deepEqual(await digests(cs), [a.all[0]!, extra.digest].sort());
  t.deepEqual(await digests(backend), [a.all[0]!, extra.digest].sort());
});

test('leases protect content, ingests and snapshots until deleted', async (t) => {
  const { db, backend } = await openTestDB(t);
  await db.leases.create('default', { id: 'hold' });
  const cs = db.content('default', { lease: 'hold' });
  const blob = await putBlob(cs, 'held');
  const w = await cs.writer({ ref: 'partial' });
  await w.write(Buffer.from('half'));
  await w.close();
  await db.snapshotter('default', 'mem', { lease: 'hold' }).prepare('held-snap');
  const unleased = await db.content('default').writer({ ref: 'no-lease' });
  await unleased.write(Buffer.from('kept until aborted'));
  await unleased.close();
  await db.gc();
  t.deepEqual(await digests(cs), [blob.digest]);
  t.is((await cs.status('partial')).offset, 4);
  t.deepEqual(await snapshotNames(db.snapshotter('default', 'mem')), ['held-snap']);
  await db.leases.delete('default', 'hold', { sync: true });
  t.deepEqual(await digests(backend), []);
  t.deepEqual((await db.content('default').listStatuses()).map((s) => s.ref), ['no-lease'], 'the leased ingest was aborted');
  t.deepEqual(await snapshotNames(db.snapshotter('default', 'mem')), []);
});

test('an expired lease is deleted and what it held collected, without being asked', async (t) => {
  const { db, backend } = await openTestDB(t);
  const expire = new Date(Date.now() + 1500).toISOString();
  await db.leases.create('default', { id: 'short', labels: { 'containerd.io/gc.expire': expire } });
  await db.leases.create('default', { id: 'long', labels: { 'containerd.io/gc.expire': new Date(Date.now() + 3_600_000).toISOString() } });
  const gone = await putBlob(db.content('default', { lease: 'short' }), 'short-lived');
  const kept = await putBlob(db.content('default', { lease: 'long' }), 'long-lived');
  t.true(existsSync(backend.blobPath(gone.digest)));
  t.true(await waitFor(async () => !existsSync(backend.blobPath(gone.digest)), 8000), 'collected after expiry');
  t.deepEqual((await db.leases.list('default')).map((l) => l.id), ['long']);
  t.deepEqual(await digests(db.content('default')), [kept.digest]);
});

test('gc.root labels and containers are roots; deletes trigger a debounced GC', async (t) => {
  const { db, backend, snapshotter } = await openTestDB(t);
  const cs = db.content('default');
  const sn = db.snapshotter('default', 'mem');
  const dep = await putBlob(cs, 'dep');
  const rooted = await putBlob(cs, 'rooted', { 'containerd.io/gc.root': 'yes', 'containerd.io/gc.ref.content': dep.digest });
  await sn.prepare('b1');
  await sn.commit('base', 'b1');
  await sn.prepare('ctr-rw', 'base');
  await db.containers.create('default', {
    id: 'c1', runtime: { name: 'io.containerd.runc.v2' }, spec: { typeUrl: 's', value: Buffer.from('{}') }, snapshotter: 'mem', snapshotKey: 'ctr-rw',
  });
  const loose = await putBlob(cs, 'loose');
  const r = await db.gc();
  t.deepEqual(r.content, [`default/${loose.digest}`]);
  t.deepEqual(await digests(cs), [rooted.digest, dep.digest].sort());
  t.true(existsSync(backend.blobPath(rooted.digest)) && existsSync(backend.blobPath(dep.digest)));
  t.deepEqual(await snapshotNames(sn), ['base', 'ctr-rw']);
  await db.containers.delete('default', 'c1');
  // Paced after the sweep at open (50 times as long as it took), which a loaded machine can stretch to seconds.
  t.true(await waitFor(async () => (await snapshotNames(snapshotter)).length === 0, 30_000), 'container delete triggered GC');
  t.deepEqual(await digests(cs), [rooted.digest, dep.digest].sort());
});

test('nothing referenced is collected and nothing unreferenced survives (random graphs)', async (t) => {
  const { db, backend } = await openTestDB(t, { gcDelayMs: 60_000 });
  for (let seed = 1; seed <= 3; seed++) {
    let x = seed * 7919;
    const rnd = () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const ns = `graph-${seed}`;
    const cs = db.content(ns);
    const nodes: string[] = [];
    const refs: string[][] = [];
    const roots = new Set<number>();
    for (let i = 0; i < 25; i++) {
      const labels: Record<string, string> = {};
      const to: number[] = [];
      for (let j = 0; j < i; j++) if (rnd() < 0.08) { to.push(j); labels[`containerd.io/gc.ref.content.r${j}`] = nodes[j]!; }
      if (rnd() < 0.1) { labels['containerd.io/gc.root'] = ''; roots.add(i); }
      nodes.push((await putBlob(cs, `${ns}-${i}`, labels)).digest);
      refs.push(to.map((j) => nodes[j]!));
    }
    for (let i = 0; i < 25; i++) if (rnd() < 0.1) { await db.images.create(ns, { name: `img-${i}`, target: { mediaType: 'x', digest: nodes[i]!, size: 1 } }); roots.add(i); }
    const reach = new Set<string>();
    const visit = (d: string) => { if (reach.has(d)) return; reach.add(d); refs[nodes.indexOf(d)]!.forEach(visit); };
    for (const r of roots) visit(nodes[r]!);
    await db.gc();
    t.deepEqual(await digests(cs), [...reach].sort(), `seed ${seed}`);
  }
  const onDisk = await digests(backend);
  const held = (await Promise.all([1, 2, 3].map((s) => digests(db.content(`graph-${s}`))))).flat().sort();
  t.deepEqual(onDisk, held);
});

test('commits racing the GC are never lost', async (t) => {
  const { db } = await openTestDB(t);
  await db.leases.create('default', { id: 'busy' });
  const cs = db.content('default', { lease: 'busy' });
  let stop = false;
  const gcLoop = (async () => { let n = 0; while (!stop) { await db.gc(); n++; } return n; })();
  const written = await Promise.all(Array.from({ length: 30 }, (_, i) => putBlob(cs, `racer-${i}`)));
  stop = true;
  t.true((await gcLoop) > 0);
  t.deepEqual(await digests(cs), written.map((d) => d.digest).sort());
});

test('references survive a restart and the GC still honours them', async (t) => {
  const tdb: TestDB = await openTestDB(t);
  const img = await pullImage(tdb.db, 'default', 'persist:1', 'p');
  const db = await tdb.reopen();
  await db.gc();
  t.deepEqual(await digests(db.content('default')), img.all);
  t.deepEqual(await digests(tdb.backend), img.all);
  t.deepEqual(await snapshotNames(db.snapshotter('default', 'mem')), img.snapshots);
});

test('reopening sweeps a blob and a snapshot a crash left without database records', async (t) => {
  const tdb = await openTestDB(t);
  const w = await tdb.backend.writer({ ref: 'crashed-before-record' });
  await w.write(Buffer.from('orphan'));
  await w.commit(6);
  await tdb.snapshotter.prepare('default/999/orphan');
  await tdb.reopen();
  t.true(await waitFor(async () => (await digests(tdb.backend)).length === 0 && (await snapshotNames(tdb.snapshotter)).length === 0));
});

test('scheduled collections are paced: after one that took D ms the next waits at least 50·D (pauses under 2%, as containerd)', async (t) => {
  const { db } = await openTestDB(t, { gcDelayMs: 20 });
  const cs = db.content('default');
  for (let i = 0; i < 150; i++) await putBlob(cs, `unreferenced ${i}`);
  const runs: { startedAt: number; endedAt: number; durationMs: number }[] = [];
  const collect = db.gc.bind(db);
  db.gc = async () => {
    const startedAt = Date.now();
    const r = await collect();
    runs.push({ startedAt, endedAt: Date.now(), durationMs: r.durationMs });
    return r;
  };
  db.scheduleGC();
  // The sweep at open (not seen here: it ran during the puts) paces this one too.
  await waitFor(async () => runs.length === 1, 20_000);
  t.is(runs.length, 1, 'the first scheduled collection ran');
  await putBlob(cs, 'one more');
  db.scheduleGC();
  await waitFor(async () => runs.length === 2, 20_000);
  t.is(runs.length, 2, 'and the next one too');
  const [first, second] = runs as [typeof runs[0], typeof runs[0]];
  t.true(second.startedAt - first.endedAt >= Math.max(20, 50 * first.durationMs) - 5,
    `the first took ${first.durationMs.toFixed(1)} ms; the second started ${second.startedAt - first.endedAt} ms after it`);
});
