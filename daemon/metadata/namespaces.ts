// Namespaces with labels, as containerd's namespaces.Store. Objects created in a missing namespace create it;
// deleting a namespace that still holds anything fails with failed-precondition naming what is left.
import { errAlreadyExists, errFailedPrecondition, errNotFound } from '../../api/errdefs.ts';
import { parseFilters, fieldsAdaptor } from '../../api/filters.ts';
import { updateLabels, validateLabels } from '../../content/labels.ts';
import { range, validateNamespace, type Tables } from './tables.ts';
import type { Namespace } from './types.ts';

export class NamespaceStore {
  constructor(private readonly t: Tables) {}

  async create(name: string, labels: Record<string, string> = {}): Promise<Namespace> {
    validateNamespace(name);
    validateLabels(labels);
    return this.t.write(() => {
      if (this.t.namespaces.get(name) !== undefined) throw errAlreadyExists(`namespace ${name}: already exists`);
      const now = Date.now();
      this.t.namespaces.putSync(name, { labels, createdAt: now, updatedAt: now });
      return { name, labels: { ...labels } };
    });
  }

  async get(name: string): Promise<Namespace> {
    validateNamespace(name);
    const rec = this.t.namespaces.get(name);
    if (!rec) throw errNotFound(`namespace ${name}: not found`);
    return { name, labels: rec.labels };
  }

  async list(filters?: string[]): Promise<Namespace[]> {
    const filter = parseFilters(filters);
    const out: Namespace[] = [];
    for (const { key, value } of this.t.namespaces.getRange()) {
      if (filter.match(fieldsAdaptor({ name: key }, value.labels))) out.push({ name: key, labels: value.labels });
    }
    return out;
  }

  /** Sets labels; with fieldpaths ("labels", "labels.<key>") only those change. */
  async update(ns: Namespace, fieldpaths?: string[]): Promise<Namespace> {
    validateNamespace(ns.name);
    return this.t.write(() => {
      const rec = this.t.namespaces.get(ns.name);
      if (!rec) throw errNotFound(`namespace ${ns.name}: not found`);
      const labels = updateLabels(rec.labels, ns.labels ?? {}, fieldpaths);
      this.t.namespaces.putSync(ns.name, { ...rec, labels, updatedAt: Date.now() });
      return { name: ns.name, labels };
    });
  }

  async delete(name: string): Promise<void> {
    validateNamespace(name);
    this.t.write(() => {
      if (this.t.namespaces.get(name) === undefined) throw errNotFound(`namespace ${name}: not found`);
      const kinds = { images: this.t.images, containers: this.t.containers, content: this.t.content, snapshots: this.t.snapshots, leases: this.t.leases } as const;
      const left = Object.entries(kinds).filter(([, db]) => [...db.getKeys({ ...range(name), limit: 1 })].length > 0).map(([k]) => k);
      if (left.length > 0) throw errFailedPrecondition(`namespace ${name} must be empty, but it still has ${left.join(', ')}`);
      this.t.namespaces.removeSync(name);
    });
  }
}
