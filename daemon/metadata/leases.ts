// Leases per namespace, as containerd's LeaseManager: a lease keeps the content, ingests and snapshots
// attached to it alive until it is deleted or its `containerd.io/gc.expire` time (RFC 3339) passes.
import { parseDigest } from '../../api/digest.ts';
import { errAlreadyExists, errInvalidArgument, errNotFound } from '../../api/errdefs.ts';
import { fieldsAdaptor, parseFilters } from '../../api/filters.ts';
import { validateLabels } from '../../content/labels.ts';
import { key, range, splitKey, validateName, validateNamespace, type LeaseRecord, type Tables } from './tables.ts';
import { GcLabels, type Lease, type LeaseResource } from './types.ts';

/** The expiry time a lease's labels set, if any; invalid-argument when the label is not a date. */
export function leaseExpiry(labels: Record<string, string>): Date | undefined {
  const value = labels[GcLabels.expire];
  if (value === undefined) return undefined;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw errInvalidArgument(`label ${GcLabels.expire}=${JSON.stringify(value)} is not an RFC 3339 time`);
  return new Date(t);
}

function validateResource(r: LeaseResource): void {
  if (r.type === 'content') parseDigest(r.id);
  else if (r.type === 'ingests') validateName('ingest ref', r.id);
  else if (r.type.startsWith('snapshots/') && r.type.length > 'snapshots/'.length) validateName('snapshot key', r.id);
  else throw errInvalidArgument(`unsupported lease resource type ${JSON.stringify(r.type)}: want content, ingests or snapshots/<snapshotter>`);
}

const toLease = (id: string, r: LeaseRecord): Lease => ({ id, labels: r.labels, createdAt: new Date(r.createdAt) });

export class LeaseManager {
  constructor(private readonly t: Tables, private readonly hooks: { dirty(): void; collect(): Promise<unknown>; created(): void }) {}

  async create(ns: string, lease: { id: string; labels?: Record<string, string> }): Promise<Lease> {
    validateNamespace(ns);
    validateName('lease id', lease.id);
    const labels = { ...lease.labels };
    validateLabels(labels);
    leaseExpiry(labels);
    const created = this.t.write(() => {
      this.t.ensureNamespace(ns);
      const k = key(ns, lease.id);
      if (this.t.leases.get(k) !== undefined) throw errAlreadyExists(`lease ${JSON.stringify(lease.id)} in namespace ${ns}: already exists`);
      const rec: LeaseRecord = { labels, createdAt: Date.now() };
      this.t.leases.putSync(k, rec);
      return toLease(lease.id, rec);
    });
    this.hooks.created();
    return created;
  }

  async get(ns: string, id: string): Promise<Lease> {
    validateNamespace(ns);
    validateName('lease id', id);
    const rec = this.t.leases.get(key(ns, id));
    if (!rec) throw errNotFound(`lease ${JSON.stringify(id)} in namespace ${ns}: not found`);
    return toLease(id, rec);
  }

  async list(ns: string, filters?: string[]): Promise<Lease[]> {
    validateNamespace(ns);
    const filter = parseFilters(filters);
    const out: Lease[] = [];
    for (const { key: k, value } of this.t.leases.getRange(range(ns))) {
      const id = k.slice(ns.length + 1);
      if (filter.match(fieldsAdaptor({ id }, value.labels))) out.push(toLease(id, value));
    }
    return out;
  }

  /** Deletes the lease and releases its resources; with sync the garbage collector runs before returning. */
  async delete(ns: string, id: string, opts: { sync?: boolean } = {}): Promise<void> {
    validateNamespace(ns);
    validateName('lease id', id);
    this.t.write(() => {
      if (this.t.leases.get(key(ns, id)) === undefined) throw errNotFound(`lease ${JSON.stringify(id)} in namespace ${ns}: not found`);
      this.t.leases.removeSync(key(ns, id));
      for (const k of this.t.leaseResources.getKeys(range(ns, id))) this.t.leaseResources.removeSync(k);
    });
    if (opts.sync) await this.hooks.collect();
    else this.hooks.dirty();
  }

  async addResource(ns: string, id: string, resource: LeaseResource): Promise<void> {
    validateNamespace(ns);
    validateName('lease id', id);
    validateResource(resource);
    this.t.write(() => {
      this.t.requireLease(ns, id);
      this.t.addLeaseResource(ns, id, resource.type, resource.id);
    });
  }

  async deleteResource(ns: string, id: string, resource: LeaseResource): Promise<void> {
    validateNamespace(ns);
    validateName('lease id', id);
    validateResource(resource);
    this.t.write(() => {
      this.t.requireLease(ns, id);
      this.t.leaseResources.removeSync(key(ns, id, resource.type, resource.id));
    });
    this.hooks.dirty();
  }

  async listResources(ns: string, id: string): Promise<LeaseResource[]> {
    validateNamespace(ns);
    validateName('lease id', id);
    this.t.requireLease(ns, id);
    return [...this.t.leaseResources.getKeys(range(ns, id))].map((k) => {
      const [, , type, id] = splitKey(k);
      return { type: type!, id: id! };
    });
  }
}
