// Garbage collection of content and snapshots, as containerd's metadata GC: mark from the roots (images,
// containers, unexpired leases and what they hold, anything labelled containerd.io/gc.root, ingests not owned
// by a lease) following image → target, container → snapshot, snapshot → parent and the
// containerd.io/gc.ref.content[.*] / containerd.io/gc.ref.snapshot.<snapshotter>[/*] labels; then sweep
// every unmarked reference in one transaction and finally the backend blobs and snapshots that no namespace
// references any more. Runs under the exclusive GC lock, so no commit can land between mark and sweep.
import { isDigest } from '../../api/digest.ts';
import type { ContentStore } from '../../content/types.ts';
import type { Snapshotter } from '../../snapshotters/types.ts';
import { leaseExpiry } from './leases.ts';
import { key, range, splitKey, type Tables } from './tables.ts';
import { GcLabels, type Container, type Image } from './types.ts';

export interface GCResult {
  /** Content references dropped from namespaces (`ns/digest`). */
  content: string[];
  /** Snapshot references dropped (`ns/snapshotter/key`). */
  snapshots: string[];
  /** Expired leases deleted (`ns/id`). */
  leases: string[];
  /** Blobs deleted from the backend content store. */
  blobs: string[];
  /** Backend snapshots removed (`snapshotter/backendKey`). */
  backendSnapshots: string[];
  durationMs: number;
}

type Node = string; // key("c", ns, digest) or key("s", ns, snapshotter, name)
const contentNode = (ns: string, digest: string): Node => key('c', ns, digest);
const snapshotNode = (ns: string, snapshotter: string, name: string): Node => key('s', ns, snapshotter, name);

/** The nodes an object's labels point at. */
function labelRefs(ns: string, labels: Record<string, string> | undefined): Node[] {
  const out: Node[] = [];
  for (const [k, v] of Object.entries(labels ?? {})) {
    if ((k === GcLabels.refContent || k.startsWith(GcLabels.refContent + '.')) && isDigest(v)) out.push(contentNode(ns, v));
    else if (k.startsWith(GcLabels.refSnapshot)) {
      const snapshotter = k.slice(GcLabels.refSnapshot.length).split('/')[0]!;
      if (snapshotter && v) out.push(snapshotNode(ns, snapshotter, v));
    }
  }
  return out;
}

const isRoot = (labels: Record<string, string> | undefined) => labels?.[GcLabels.root] !== undefined;

function expired(labels: Record<string, string>, now: number): boolean {
  try { return (leaseExpiry(labels)?.getTime() ?? Infinity) <= now; } catch { return false; }
}

export async function collectGarbage(t: Tables, content: ContentStore, snapshotters: ReadonlyMap<string, Snapshotter>): Promise<GCResult> {
  const started = performance.now();
  return t.gcLock.exclusive(async () => {
    const result: GCResult = { content: [], snapshots: [], leases: [], blobs: [], backendSnapshots: [], durationMs: 0 };
    const aborts: string[] = [];
    const { liveBlobs, liveSnapshots } = t.write(() => {
      const now = Date.now();
      const split = splitKey;
      // Expired leases go first, so what only they held is collected in this same run.
      for (const { key: k, value } of t.leases.getRange()) {
        if (!expired(value.labels, now)) continue;
        const [ns, id] = split(k) as [string, string];
        t.leases.removeSync(k);
        for (const r of t.leaseResources.getKeys(range(ns, id))) t.leaseResources.removeSync(r);
        result.leases.push(`${ns}/${id}`);
      }

      const marked = new Set<Node>();
      const queue: Node[] = [];
      const mark = (n: Node) => { if (!marked.has(n)) { marked.add(n); queue.push(n); } };

      for (const { key: k, value } of t.images.getRange()) {
        const [ns] = split(k) as [string];
        const img = value as Image;
        mark(contentNode(ns, img.target.digest));
        labelRefs(ns, img.labels).forEach(mark);
      }
      for (const { key: k, value } of t.containers.getRange()) {
        const [ns] = split(k) as [string];
        const c = value as Container;
        if (c.snapshotter && c.snapshotKey) mark(snapshotNode(ns, c.snapshotter, c.snapshotKey));
        labelRefs(ns, c.labels).forEach(mark);
      }
      for (const k of t.leaseResources.getKeys()) {
        const [ns, , type, id] = split(k) as [string, string, string, string];
        if (type === 'content') mark(contentNode(ns, id));
        else if (type.startsWith('snapshots/')) mark(snapshotNode(ns, type.slice('snapshots/'.length), id));
      }
      for (const { key: k, value } of t.content.getRange()) if (isRoot(value.labels)) mark(key('c', k));
      for (const { key: k, value } of t.snapshots.getRange()) if (isRoot(value.labels)) mark(key('s', k));

      while (queue.length > 0) {
        const [kind, ns, ...rest] = split(queue.pop()!) as [string, string, ...string[]];
        if (kind === 'c') {
          labelRefs(ns, t.content.get(key(ns, rest[0]!))?.labels).forEach(mark);
        } else {
          const [snapshotter, name] = rest as [string, string];
          const rec = t.snapshots.get(key(ns, snapshotter, name));
          if (!rec) continue;
          if (rec.parent) mark(snapshotNode(ns, snapshotter, rec.parent));
          labelRefs(ns, rec.labels).forEach(mark);
        }
      }

      const liveBlobs = new Set<string>();
      for (const { key: k } of t.content.getRange()) {
        if (marked.has(key('c', k))) { liveBlobs.add(split(k)[1]!); continue; }
        t.content.removeSync(k);
        result.content.push(split(k).join('/'));
      }
      const liveSnapshots = new Set<string>();
      for (const { key: k, value } of t.snapshots.getRange()) {
        if (marked.has(key('s', k))) { liveSnapshots.add(key(split(k)[1]!, value.backendKey)); continue; }
        t.snapshots.removeSync(k);
        result.snapshots.push(split(k).join('/'));
      }
      // An ingest owned by a lease that is gone is abandoned; one without a lease is kept until aborted.
      for (const { key: k, value } of t.ingests.getRange()) {
        const [ns, ref] = split(k) as [string, string];
        if (value.lease === undefined || t.leases.get(key(ns, value.lease)) !== undefined) continue;
        t.ingests.removeSync(k);
        aborts.push(`${ns}/${ref}`);
      }
      return { liveBlobs, liveSnapshots };
    });

    for (const ref of aborts) await content.abort(ref).catch(() => undefined);
    const dead: string[] = [];
    await content.walk((info) => { if (!liveBlobs.has(info.digest)) dead.push(info.digest); });
    for (const digest of dead) {
      await content.delete(digest).catch(() => undefined);
      result.blobs.push(digest);
    }
    for (const [name, sn] of snapshotters) {
      result.backendSnapshots.push(...(await removeDeadSnapshots(name, sn, liveSnapshots)));
    }
    result.durationMs = performance.now() - started;
    return result;
  });
}

/** Removes backend snapshots no namespace references, children before parents. */
async function removeDeadSnapshots(name: string, sn: Snapshotter, live: Set<string>): Promise<string[]> {
  const all: { name: string; parent?: string }[] = [];
  await sn.walk((info) => { all.push(info); });
  let dead = all.filter((s) => !live.has(key(name, s.name)));
  const removed: string[] = [];
  while (dead.length > 0) {
    const parents = new Set(all.filter((s) => s.parent).map((s) => s.parent!));
    const leaves = dead.filter((s) => !parents.has(s.name));
    if (leaves.length === 0) break; // a dead parent under a live child cannot happen; stop rather than loop
    for (const leaf of leaves) {
      try {
        await sn.remove(leaf.name);
        removed.push(`${name}/${leaf.name}`);
      } catch { /* left for the next run */ }
      all.splice(all.indexOf(leaf), 1);
    }
    dead = dead.filter((s) => !leaves.includes(s));
  }
  if (removed.length > 0) await sn.cleanup().catch(() => undefined);
  return removed;
}
