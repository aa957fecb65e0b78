// berthd's metadata database: namespaces, images, containers, leases, and per-namespace views of the shared
// content store and snapshotters, in one lmdb environment. The garbage collector runs on demand (gc()), a
// short while after opening and after deletes (debounced), and when the next lease expires. Everything in
// the content store and the snapshotters it is given belongs to it: blobs and snapshots that no namespace
// references are deleted, so other parts must go through content() and snapshotter(), never the backends.
import { mkdirSync } from 'node:fs';
import { errNotFound } from '../../api/errdefs.ts';
import type { ContentStore } from '../../content/types.ts';
import type { Snapshotter } from '../../snapshotters/types.ts';
import { ContainerStore } from './containers.ts';
import { NamespacedContentStore } from './content.ts';
import { collectGarbage, type GCResult } from './gc.ts';
import { ImageStore } from './images.ts';
import { LeaseManager, leaseExpiry } from './leases.ts';
import { NamespaceStore } from './namespaces.ts';
import { NamespacedSnapshotter } from './snapshot.ts';
import { Tables } from './tables.ts';

export interface MetadataOptions {
  /** Directory holding the database files (created if missing). */
  path: string;
  /** The shared content store the namespaced views sit on. */
  content: ContentStore;
  /** Snapshotters by name ("overlayfs", "native", ...). */
  snapshotters?: Record<string, Snapshotter>;
  /** Delay between a delete and the GC it triggers (ms), so a burst of deletes costs one run. Default 100. */
  gcDelayMs?: number;
  /** Called after every GC run (events, logs). */
  onGC?: (result: GCResult) => void;
  /** Called when a GC run triggered in the background fails. */
  onGCError?: (err: unknown) => void;
}

const GC_PAUSE_SHARE = 0.02;

export class MetadataDB {
  readonly namespaces: NamespaceStore;
  readonly images: ImageStore;
  readonly containers: ContainerStore;
  readonly leases: LeaseManager;
  private readonly snapshotters: Map<string, Snapshotter>;
  private gcTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private running: Promise<GCResult> | undefined;
  /** When the last scheduled run ended and how long it held everything up: the next is paced by it. */
  private lastScheduled = { endedAt: 0, durationMs: 0 };
  private closed = false;

  private constructor(private readonly t: Tables, private readonly opts: MetadataOptions) {
    const dirty = () => this.scheduleGC();
    this.snapshotters = new Map(Object.entries(opts.snapshotters ?? {}));
    this.namespaces = new NamespaceStore(t);
    this.images = new ImageStore(t, { dirty, collect: () => this.gc() });
    this.containers = new ContainerStore(t, dirty);
    this.leases = new LeaseManager(t, { dirty, collect: () => this.gc(), created: () => this.armExpiryTimer() });
  }

  static async open(opts: MetadataOptions): Promise<MetadataDB> {
    mkdirSync(opts.path, { recursive: true });
    const db = new MetadataDB(Tables.open(`${opts.path}/meta.lmdb`), opts);
    db.armExpiryTimer();
    // Sweep what a crash may have left between a backend write and its database record.
    db.scheduleGC();
    return db;
  }

  /** The content store as namespace `ns` sees it; with a lease, what is written is attached to it. */
  content(ns: string, opts: { lease?: string } = {}): ContentStore {
    return new NamespacedContentStore(this.t, this.opts.content, ns, opts.lease, () => this.scheduleGC());
  }

  /** Snapshotter `name` as namespace `ns` sees it; with a lease, created snapshots are attached to it. */
  snapshotter(ns: string, name: string, opts: { lease?: string } = {}): Snapshotter {
    const backend = this.snapshotters.get(name);
    if (!backend) throw errNotFound(`snapshotter ${JSON.stringify(name)}: not found (have ${[...this.snapshotters.keys()].join(', ') || 'none'})`);
    return new NamespacedSnapshotter(this.t, backend, ns, name, opts.lease, () => this.scheduleGC());
  }

  snapshotterNames(): string[] {
    return [...this.snapshotters.keys()];
  }

  /** Runs the garbage collector now; a run already under way is waited for first, so recent deletes count. */
  async gc(): Promise<GCResult> {
    while (this.running) await this.running.catch(() => undefined);
    clearTimeout(this.gcTimer);
    this.gcTimer = undefined;
    this.running = collectGarbage(this.t, this.opts.content, this.snapshotters).finally(() => { this.running = undefined; });
    const result = await this.running;
    this.opts.onGC?.(result);
    this.armExpiryTimer();
    return result;
  }

  /** Schedules a GC run after the debounce delay (deletes call this). A run holds commits and snapshot work up
   * while it sweeps; as containerd's scheduler (pause_threshold 0.02), scheduled runs keep that under 2% of the
   * time, so containers made and removed back to back are not collected after every one. Runs asked for
   * (gc(), a delete with sync) are the asker's to wait for, and do not count. */
  scheduleGC(): void {
    if (this.closed || this.gcTimer) return;
    const paced = this.lastScheduled.endedAt + this.lastScheduled.durationMs / GC_PAUSE_SHARE - Date.now();
    this.gcTimer = setTimeout(() => {
      this.gcTimer = undefined;
      this.gc().then((r) => { this.lastScheduled = { endedAt: Date.now(), durationMs: r.durationMs }; }, (err) => this.opts.onGCError?.(err));
    }, Math.max(this.opts.gcDelayMs ?? 100, paced));
    this.gcTimer.unref();
  }

  /** Wakes the GC when the soonest lease expires. */
  private armExpiryTimer(): void {
    clearTimeout(this.expiryTimer);
    if (this.closed) return;
    let soonest = Infinity;
    for (const { value } of this.t.leases.getRange()) {
      try { soonest = Math.min(soonest, leaseExpiry(value.labels)?.getTime() ?? Infinity); } catch { /* validated on create */ }
    }
    if (soonest === Infinity) return;
    // setTimeout caps at 2^31-1 ms; a later expiry re-arms after the next run.
    this.expiryTimer = setTimeout(() => this.scheduleGC(), Math.min(Math.max(0, soonest - Date.now()) + 10, 2 ** 31 - 1));
    this.expiryTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.gcTimer);
    clearTimeout(this.expiryTimer);
    await this.running?.catch(() => undefined);
    await this.t.close();
  }
}
