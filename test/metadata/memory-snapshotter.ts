// A tiny in-memory Snapshotter for testing the metadata views until the real snapshotters land: it keeps the
// tree rules (committed parents, no removal under children, commit of active only) and returns bind mounts
// of made-up paths. It never touches the filesystem. Like a lazy snapshotter, a prepare labelled
// test.remote=1 and containerd.io/snapshot.ref=<target> creates committed <target> and answers already-exists.
import { errAlreadyExists, errFailedPrecondition, errInvalidArgument, errNotFound } from '../../api/errdefs.ts';
import { fieldsAdaptor, parseFilters } from '../../api/filters.ts';
import type { Mount } from '../../api/mount.ts';
import type { SnapshotInfo, SnapshotOptions, Snapshotter, SnapshotUsage } from '../../snapshotters/types.ts';

export class MemorySnapshotter implements Snapshotter {
  readonly snapshots = new Map<string, SnapshotInfo>();

  private get(key: string): SnapshotInfo {
    const s = this.snapshots.get(key);
    if (!s) throw errNotFound(`snapshot ${key}: not found`);
    return s;
  }

  async stat(key: string) { return { ...this.get(key) }; }
  async update(info: { name: string; labels: Record<string, string> }) {
    const s = this.get(info.name);
    s.labels = { ...info.labels };
    return { ...s };
  }
  async usage(key: string): Promise<SnapshotUsage> { this.get(key); return { size: 0, inodes: 0 }; }
  async mounts(key: string): Promise<Mount[]> {
    const s = this.get(key);
    return [{ type: 'bind', source: `/mem/${key}`, options: [s.kind === 'view' ? 'ro' : 'rw', 'rbind'] }];
  }
  private create(kind: 'active' | 'view', key: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]> {
    if (this.snapshots.has(key)) throw errAlreadyExists(`snapshot ${key}: already exists`);
    if (parent && this.get(parent).kind !== 'committed') throw errInvalidArgument(`parent ${parent} not committed`);
    const now = new Date();
    const target = opts?.labels?.['containerd.io/snapshot.ref'];
    if (kind === 'active' && target && opts?.labels?.['test.remote'] === '1') {
      this.snapshots.set(target, { kind: 'committed', name: target, ...(parent ? { parent } : {}), labels: { ...opts.labels }, created: now, updated: now });
      throw errAlreadyExists(`remote snapshot ${target}: already exists`);
    }
    this.snapshots.set(key, { kind, name: key, ...(parent ? { parent } : {}), labels: { ...opts?.labels }, created: now, updated: now });
    return this.mounts(key);
  }
  prepare(key: string, parent?: string, opts?: SnapshotOptions) { return this.create('active', key, parent, opts); }
  view(key: string, parent?: string, opts?: SnapshotOptions) { return this.create('view', key, parent, opts); }
  async commit(name: string, key: string, opts?: SnapshotOptions) {
    const s = this.get(key);
    if (s.kind !== 'active') throw errFailedPrecondition(`${key} is not active`);
    if (this.snapshots.has(name)) throw errAlreadyExists(`snapshot ${name}: already exists`);
    this.snapshots.delete(key);
    this.snapshots.set(name, { ...s, kind: 'committed', name, labels: { ...(opts?.labels ?? s.labels) } });
  }
  async remove(key: string) {
    this.get(key);
    if ([...this.snapshots.values()].some((s) => s.parent === key)) throw errFailedPrecondition(`snapshot ${key} has children`);
    this.snapshots.delete(key);
  }
  async walk(fn: (info: SnapshotInfo) => void | Promise<void>, filters?: string[]) {
    const f = parseFilters(filters);
    for (const s of [...this.snapshots.values()]) if (f.match(fieldsAdaptor({ name: s.name, parent: s.parent, kind: s.kind }, s.labels))) await fn({ ...s });
  }
  async cleanup() {}
  async close() {}
}
