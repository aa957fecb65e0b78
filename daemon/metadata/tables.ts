// The lmdb environment behind berthd's metadata: one named database per kind of object, keys are
// `namespace<US>name...` strings joined by the ASCII unit separator (lmdb's key encoding reads NUL as an
// array separator), so one namespace is one contiguous key range. Writes go through transactionSync
// (lmdb's async transaction() does not roll back when its callback throws).
import { open, type Database, type RootDatabase } from 'lmdb';
import { errInvalidArgument, errNotFound } from '../../api/errdefs.ts';
import { RWLock } from './rwlock.ts';

const SEP = '\x1f';
const namespacePattern = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;

export function validateNamespace(ns: string): void {
  if (typeof ns !== 'string' || ns === '') throw errInvalidArgument('namespace is required');
  if (ns.length > 76 || !namespacePattern.test(ns)) {
    throw errInvalidArgument(`invalid namespace ${JSON.stringify(ns)}: want letters and digits joined by single ".", "_" or "-", at most 76 characters`);
  }
}

/** Checks a name used as part of a key (image name, lease id, snapshot key, ingest ref). */
export function validateName(kind: string, name: string): void {
  if (typeof name !== 'string' || name === '') throw errInvalidArgument(`${kind} must not be empty`);
  if (name.includes('\0') || name.includes(SEP)) throw errInvalidArgument(`${kind} ${JSON.stringify(name)} must not contain NUL or \\x1f`);
}

export const key = (...parts: string[]) => parts.join(SEP);
export const splitKey = (k: string) => k.split(SEP);
/** The key range of every entry whose key starts with these parts. */
export const range = (...parts: string[]) => ({ start: key(...parts) + SEP, end: key(...parts) + '\x20' });

/** Dates and labels as stored: milliseconds since the epoch. */
export interface Stamped {
  labels: Record<string, string>;
  createdAt: number;
  updatedAt: number;
}

export interface NamespaceRecord { labels: Record<string, string>; createdAt: number; updatedAt: number }
export interface ContentRecord extends Stamped { size: number }
export interface IngestRecord { lease?: string; createdAt: number }
export interface SnapshotRecord extends Stamped {
  backendKey: string;
  kind: 'view' | 'active' | 'committed';
  parent?: string;
}
export interface LeaseRecord { labels: Record<string, string>; createdAt: number }

export class Tables {
  readonly namespaces: Database<NamespaceRecord, string>;
  readonly images: Database<any, string>;
  readonly containers: Database<any, string>;
  /** ns, digest → which content a namespace holds. */
  readonly content: Database<ContentRecord, string>;
  /** ns, ref → the namespace's ingests (backend ref is `ns/ref`). */
  readonly ingests: Database<IngestRecord, string>;
  /** ns, snapshotter, key → backend key, kind, parent. */
  readonly snapshots: Database<SnapshotRecord, string>;
  readonly leases: Database<LeaseRecord, string>;
  /** ns, lease, type, id → true. */
  readonly leaseResources: Database<true, string>;
  /** Commits and content/snapshot creation hold it shared; the GC sweep holds it exclusively. */
  readonly gcLock = new RWLock();

  private constructor(readonly env: RootDatabase) {
    const db = <V>(name: string) => env.openDB<V, string>({ name });
    this.namespaces = db('namespaces');
    this.images = db('images');
    this.containers = db('containers');
    this.content = db('content');
    this.ingests = db('ingests');
    this.snapshots = db('snapshots');
    this.leases = db('leases');
    this.leaseResources = db('lease-resources');
  }

  static open(path: string): Tables {
    return new Tables(open({ path, compression: false, maxDbs: 16 }));
  }

  write<T>(fn: () => T): T {
    return this.env.transactionSync(fn);
  }

  /** Creates the namespace on first use, as containerd does; call inside write(). */
  ensureNamespace(ns: string): void {
    validateNamespace(ns);
    if (this.namespaces.get(ns) === undefined) {
      const now = Date.now();
      this.namespaces.putSync(ns, { labels: {}, createdAt: now, updatedAt: now });
    }
  }

  /** Throws not-found unless the lease exists; call inside write() when attaching resources. */
  requireLease(ns: string, lease: string): void {
    if (this.leases.get(key(ns, lease)) === undefined) throw errNotFound(`lease ${JSON.stringify(lease)} in namespace ${ns}: not found`);
  }

  addLeaseResource(ns: string, lease: string, type: string, id: string): void {
    this.leaseResources.putSync(key(ns, lease, type, id), true);
  }

  async close(): Promise<void> {
    await this.env.close();
  }
}
