// One namespace's view of a snapshotter, as containerd's metadata/snapshot.go: keys are per namespace and
// map to backend keys `<ns>/<seq>/<key>`, so namespaces never see or collide with each other's snapshots.
// Kind, parent and labels live in the metadata DB; labels are also handed to the backend on create (lazy
// snapshotters read them). With a lease, created snapshots are attached to it. A prepare labelled
// containerd.io/snapshot.ref=<target> that the backend answers with already-exists (a remote snapshot it can
// serve lazily) records <target> as committed and answers already-exists, so the client skips the layer.
import { randomBytes } from 'node:crypto';
import type { Mount } from '../../api/mount.ts';
import { errAlreadyExists, errFailedPrecondition, errInvalidArgument, errNotFound, isAlreadyExists } from '../../api/errdefs.ts';
import { fieldsAdaptor, parseFilters } from '../../api/filters.ts';
import { updateLabels, validateLabels } from '../../content/labels.ts';
import type { SnapshotInfo, SnapshotOptions, Snapshotter, SnapshotUsage } from '../../snapshotters/types.ts';
import { key, range, validateName, validateNamespace, type SnapshotRecord, type Tables } from './tables.ts';

const toInfo = (name: string, r: SnapshotRecord): SnapshotInfo => ({
  kind: r.kind, name, ...(r.parent ? { parent: r.parent } : {}), labels: r.labels,
  created: new Date(r.createdAt), updated: new Date(r.updatedAt),
});

/** Names the target of a remote snapshot on prepare (containerd's snapshot.ref label). */
const snapshotRefLabel = 'containerd.io/snapshot.ref';

/** Keys being created right now (ns, snapshotter, key), so two concurrent creates of one key cannot both win. */
const creating = new Set<string>();

export class NamespacedSnapshotter implements Snapshotter {
  constructor(private readonly t: Tables, private readonly backend: Snapshotter, readonly namespace: string,
    readonly snapshotter: string, private readonly lease: string | undefined, private readonly dirty: () => void) {
    validateNamespace(namespace);
    if (lease !== undefined) validateName('lease id', lease);
  }

  private k(name: string): string {
    validateName('snapshot key', name);
    return key(this.namespace, this.snapshotter, name);
  }

  private record(name: string): SnapshotRecord {
    const rec = this.t.snapshots.get(this.k(name));
    if (!rec) throw errNotFound(`snapshot ${JSON.stringify(name)} (${this.snapshotter}) in namespace ${this.namespace}: not found`);
    return rec;
  }

  async stat(name: string): Promise<SnapshotInfo> {
    return toInfo(name, this.record(name));
  }

  async update(info: { name: string; labels: Record<string, string> }, fieldpaths?: string[]): Promise<SnapshotInfo> {
    return this.t.write(() => {
      const rec = this.record(info.name);
      const next = { ...rec, labels: updateLabels(rec.labels, info.labels ?? {}, fieldpaths), updatedAt: Date.now() };
      this.t.snapshots.putSync(this.k(info.name), next);
      return toInfo(info.name, next);
    });
  }

  async usage(name: string): Promise<SnapshotUsage> {
    return this.backend.usage(this.record(name).backendKey);
  }

  async mounts(name: string): Promise<Mount[]> {
    const rec = this.record(name);
    if (rec.kind === 'committed') throw errFailedPrecondition(`snapshot ${JSON.stringify(name)} is committed: it has no mounts`);
    return this.backend.mounts(rec.backendKey);
  }

  prepare(name: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]> {
    return this.create('active', name, parent, opts);
  }

  view(name: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]> {
    return this.create('view', name, parent, opts);
  }

  /** Claims `name` for the duration of fn (already-exists when it exists or is being created). */
  private async claim<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const k = this.k(name);
    if (creating.has(k) || this.t.snapshots.get(k)) {
      throw errAlreadyExists(`snapshot ${JSON.stringify(name)} (${this.snapshotter}) in namespace ${this.namespace}: already exists`);
    }
    creating.add(k);
    try { return await fn(); } finally { creating.delete(k); }
  }

  /** Unique per creation, so a name removed and made again never meets its predecessor in the backend (which
   * the garbage collector removes later). Random rather than a counter: a counter would cost a commit. */
  private backendKey(name: string): string {
    return `${this.namespace}/${Date.now().toString(36)}-${randomBytes(5).toString('hex')}/${name}`;
  }

  /** Records a new snapshot and attaches it to the lease; call inside write(). */
  private put(name: string, rec: SnapshotRecord): void {
    this.t.ensureNamespace(this.namespace);
    if (this.lease) {
      this.t.requireLease(this.namespace, this.lease);
      this.t.addLeaseResource(this.namespace, this.lease, `snapshots/${this.snapshotter}`, name);
    }
    this.t.snapshots.putSync(this.k(name), rec);
  }

  private async create(kind: 'active' | 'view', name: string, parent: string | undefined, opts?: SnapshotOptions): Promise<Mount[]> {
    const labels = { ...opts?.labels };
    validateLabels(labels);
    if (this.lease) this.t.requireLease(this.namespace, this.lease);
    const target = kind === 'active' ? labels[snapshotRefLabel] : undefined;
    if (target !== undefined && this.t.snapshots.get(this.k(target))) {
      throw errAlreadyExists(`target snapshot ${JSON.stringify(target)} (${this.snapshotter}) in namespace ${this.namespace}: already exists`);
    }
    return this.claim(name, () => this.t.gcLock.shared(async () => {
      let parentKey: string | undefined;
      if (parent !== undefined && parent !== '') {
        const p = this.record(parent);
        if (p.kind !== 'committed') throw errInvalidArgument(`parent ${JSON.stringify(parent)} is not a committed snapshot`);
        parentKey = p.backendKey;
      }
      const backendKey = this.backendKey(name);
      // A remote (lazy) snapshotter is told the backend name of the target; if it can provide that committed
      // snapshot itself it answers already-exists, and the target is recorded in the namespace instead.
      const targetKey = target !== undefined ? this.backendKey(target) : undefined;
      const backendLabels = targetKey ? { ...labels, [snapshotRefLabel]: targetKey } : labels;
      let mounts: Mount[];
      try {
        mounts = kind === 'active'
          ? await this.backend.prepare(backendKey, parentKey, { labels: backendLabels })
          : await this.backend.view(backendKey, parentKey, { labels: backendLabels });
      } catch (err) {
        if (target === undefined || targetKey === undefined || !isAlreadyExists(err)) throw err;
        await this.backend.stat(targetKey);
        const now = Date.now();
        this.t.write(() => {
          if (this.t.snapshots.get(this.k(target))) return;
          this.put(target, { backendKey: targetKey, kind: 'committed', ...(parentKey ? { parent } : {}), labels, createdAt: now, updatedAt: now });
        });
        throw errAlreadyExists(`target snapshot ${JSON.stringify(target)} (${this.snapshotter}) in namespace ${this.namespace}: already exists`, err);
      }
      const now = Date.now();
      this.t.write(() => this.put(name, {
        backendKey, kind, ...(parentKey ? { parent } : {}), labels, createdAt: now, updatedAt: now,
      }));
      return mounts;
    }));
  }

  async commit(name: string, activeKey: string, opts?: SnapshotOptions): Promise<void> {
    const active = this.record(activeKey);
    if (active.kind !== 'active') throw errFailedPrecondition(`snapshot ${JSON.stringify(activeKey)} is ${active.kind}, not active: it cannot be committed`);
    const labels = { ...(opts?.labels ?? active.labels) };
    validateLabels(labels);
    if (this.lease) this.t.requireLease(this.namespace, this.lease);
    await this.claim(name, () => this.t.gcLock.shared(async () => {
      const backendKey = this.backendKey(name);
      await this.backend.commit(backendKey, active.backendKey, { labels });
      const now = Date.now();
      this.t.write(() => {
        this.t.snapshots.removeSync(this.k(activeKey));
        this.put(name, { backendKey, kind: 'committed', ...(active.parent ? { parent: active.parent } : {}), labels, createdAt: now, updatedAt: now });
      });
    }));
  }

  async remove(name: string): Promise<void> {
    this.record(name); // not found unless it exists
    for (const { value } of this.t.snapshots.getRange(range(this.namespace, this.snapshotter))) {
      if (value.parent === name) throw errFailedPrecondition(`snapshot ${JSON.stringify(name)} has children: remove them first`);
    }
    // As containerd: the name goes now; the backend snapshot, referenced by no namespace, goes with the garbage
    // collection scheduled here (which removes children before parents).
    this.t.write(() => this.t.snapshots.removeSync(this.k(name)));
    this.dirty();
  }

  async walk(fn: (info: SnapshotInfo) => void | Promise<void>, filters?: string[]): Promise<void> {
    const filter = parseFilters(filters);
    const prefix = key(this.namespace, this.snapshotter).length + 1;
    for (const { key: k, value } of this.t.snapshots.getRange(range(this.namespace, this.snapshotter))) {
      const info = toInfo(k.slice(prefix), value);
      if (filter.match(fieldsAdaptor({ name: info.name, parent: info.parent, kind: info.kind }, info.labels))) await fn(info);
    }
  }

  /** Backend leftovers are the garbage collector's job (it knows every namespace); this runs the backend's own cleanup. */
  async cleanup(): Promise<void> {
    await this.backend.cleanup();
  }

  /** The backend belongs to the metadata database, which closes it. */
  async close(): Promise<void> {}
}
