// Snapshot records of one snapshotter, as containerd's snapshots/storage: key → numeric id (the directory
// name under <root>/snapshots), kind, parent, labels and times, in an lmdb file under the snapshotter's root.
// Writes use transactionSync (lmdb's async transaction does not roll back when its callback throws).
import { open, type Database, type RootDatabase } from 'lmdb';
import { errAlreadyExists, errFailedPrecondition, errInvalidArgument, errNotFound } from '../api/errdefs.ts';
import { updateLabels, validateLabels } from '../content/labels.ts';
import type { SnapshotInfo, SnapshotKind } from './types.ts';

export interface SnapshotRecord {
  id: number;
  kind: SnapshotKind;
  parent?: string;
  labels: Record<string, string>;
  created: number;
  updated: number;
}

export class SnapshotStorage {
  private readonly env: RootDatabase;
  private readonly records: Database<SnapshotRecord, string>;
  private readonly meta: Database<number, string>;

  constructor(path: string) {
    this.env = open({ path, compression: false });
    this.records = this.env.openDB<SnapshotRecord, string>({ name: 'snapshots' });
    this.meta = this.env.openDB<number, string>({ name: 'meta' });
  }

  get(key: string): SnapshotRecord {
    const r = this.records.get(key);
    if (!r) throw errNotFound(`snapshot ${JSON.stringify(key)}: not found`);
    return r;
  }

  has(key: string): boolean {
    return this.records.get(key) !== undefined;
  }

  info(key: string): SnapshotInfo {
    const r = this.get(key);
    return { kind: r.kind, name: key, ...(r.parent ? { parent: r.parent } : {}), labels: r.labels, created: new Date(r.created), updated: new Date(r.updated) };
  }

  /** The chain of committed parents of `parent`, nearest first, as records with their keys. */
  chain(parent: string | undefined): { key: string; id: number }[] {
    const out: { key: string; id: number }[] = [];
    for (let k = parent; k;) {
      const r = this.get(k);
      out.push({ key: k, id: r.id });
      k = r.parent;
    }
    return out;
  }

  create(key: string, kind: 'active' | 'view', parent: string | undefined, labels: Record<string, string> = {}): SnapshotRecord {
    if (!key) throw errInvalidArgument('snapshot key must not be empty');
    validateLabels(labels);
    return this.env.transactionSync(() => {
      if (this.records.get(key)) throw errAlreadyExists(`snapshot ${JSON.stringify(key)}: already exists`);
      if (parent) {
        const p = this.records.get(parent);
        if (!p) throw errNotFound(`parent snapshot ${JSON.stringify(parent)}: not found`);
        if (p.kind !== 'committed') throw errInvalidArgument(`parent ${JSON.stringify(parent)} is ${p.kind}, not committed`);
      }
      const id = (this.meta.get('seq') ?? 0) + 1;
      this.meta.putSync('seq', id);
      const now = Date.now();
      const rec: SnapshotRecord = { id, kind, ...(parent ? { parent } : {}), labels: { ...labels }, created: now, updated: now };
      this.records.putSync(key, rec);
      return rec;
    });
  }

  commit(name: string, key: string, labels?: Record<string, string>): SnapshotRecord {
    if (labels) validateLabels(labels);
    return this.env.transactionSync(() => {
      const r = this.get(key);
      if (r.kind !== 'active') throw errFailedPrecondition(`snapshot ${JSON.stringify(key)} is ${r.kind}: only active snapshots can be committed`);
      if (this.records.get(name)) throw errAlreadyExists(`snapshot ${JSON.stringify(name)}: already exists`);
      const rec: SnapshotRecord = { ...r, kind: 'committed', labels: labels && Object.keys(labels).length ? { ...labels } : r.labels, updated: Date.now() };
      this.records.removeSync(key);
      this.records.putSync(name, rec);
      return rec;
    });
  }

  remove(key: string): SnapshotRecord {
    return this.env.transactionSync(() => {
      const r = this.get(key);
      for (const { key: k, value } of this.records.getRange()) {
        if (value.parent === key) throw errFailedPrecondition(`snapshot ${JSON.stringify(key)} has children (${k}): remove them first`);
      }
      this.records.removeSync(key);
      return r;
    });
  }

  update(key: string, labels: Record<string, string>, fieldpaths?: string[]): SnapshotInfo {
    this.env.transactionSync(() => {
      const r = this.get(key);
      this.records.putSync(key, { ...r, labels: updateLabels(r.labels, labels, fieldpaths), updated: Date.now() });
    });
    return this.info(key);
  }

  *all(): Generator<{ key: string; record: SnapshotRecord }> {
    for (const { key, value } of this.records.getRange()) yield { key, record: value };
  }

  ids(): Set<number> {
    return new Set([...this.all()].map((e) => e.record.id));
  }

  async close(): Promise<void> {
    await this.env.close();
  }
}
