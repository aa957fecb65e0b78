// Container records per namespace, as containerd's metadata container store. A container holds its snapshot
// (snapshotter + key) alive for the garbage collector. Filter fields: id, image, runtime.name, snapshotter,
// labels.<key>.
import { errAlreadyExists, errInvalidArgument, errNotFound } from '../../api/errdefs.ts';
import { fieldsAdaptor, parseFilters } from '../../api/filters.ts';
import { updateLabels, validateLabels } from '../../content/labels.ts';
import { key, range, validateNamespace, type Tables } from './tables.ts';
import type { Any, Container } from './types.ts';

type ContainerRecord = Omit<Container, 'id' | 'createdAt' | 'updatedAt'> & { createdAt: number; updatedAt: number };
export type NewContainer = Pick<Container, 'id' | 'runtime'> & Partial<Omit<Container, 'id' | 'runtime' | 'createdAt' | 'updatedAt'>>;

const identifier = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;

function validateId(id: string): void {
  if (typeof id !== 'string' || id === '') throw errInvalidArgument('container id must not be empty');
  if (id.length > 76 || !identifier.test(id)) {
    throw errInvalidArgument(`invalid container id ${JSON.stringify(id)}: want letters and digits joined by single ".", "_" or "-", at most 76 characters`);
  }
}

function validateRecord(id: string, r: ContainerRecord): void {
  validateLabels(r.labels);
  if (!r.runtime?.name) throw errInvalidArgument(`container ${id}: runtime name must be set`);
  if (!r.spec) throw errInvalidArgument(`container ${id}: spec must be set`);
  if (r.snapshotKey && !r.snapshotter) throw errInvalidArgument(`container ${id}: snapshotter must be set with a snapshot key`);
  for (const [k, v] of Object.entries(r.extensions)) {
    if (k === '') throw errInvalidArgument(`container ${id}: extension key must not be empty`);
    validateAny(`container ${id}: extension ${k}`, v);
  }
  validateAny(`container ${id}: spec`, r.spec);
  if (r.runtime.options) validateAny(`container ${id}: runtime options`, r.runtime.options);
}

function validateAny(what: string, a: Any): void {
  if (typeof a?.typeUrl !== 'string' || !(a.value instanceof Uint8Array)) throw errInvalidArgument(`${what}: want {typeUrl, value bytes}`);
}

const toContainer = (id: string, r: ContainerRecord): Container => ({
  ...r, id, createdAt: new Date(r.createdAt), updatedAt: new Date(r.updatedAt),
});

export class ContainerStore {
  constructor(private readonly t: Tables, private readonly dirty: () => void) {}

  async get(ns: string, id: string): Promise<Container> {
    validateNamespace(ns);
    validateId(id);
    const rec = this.t.containers.get(key(ns, id)) as ContainerRecord | undefined;
    if (!rec) throw errNotFound(`container ${JSON.stringify(id)} in namespace ${ns}: not found`);
    return toContainer(id, rec);
  }

  async list(ns: string, filters?: string[]): Promise<Container[]> {
    validateNamespace(ns);
    const filter = parseFilters(filters);
    const out: Container[] = [];
    for (const { key: k, value } of this.t.containers.getRange(range(ns))) {
      const c = toContainer(k.slice(ns.length + 1), value as ContainerRecord);
      const adaptor = fieldsAdaptor({ id: c.id, image: c.image, 'runtime.name': c.runtime.name, snapshotter: c.snapshotter }, c.labels);
      if (filter.match(adaptor)) out.push(c);
    }
    return out;
  }

  async create(ns: string, c: NewContainer): Promise<Container> {
    validateNamespace(ns);
    validateId(c.id);
    const now = Date.now();
    const rec: ContainerRecord = {
      labels: { ...c.labels }, image: c.image ?? '', runtime: c.runtime, snapshotter: c.snapshotter ?? '',
      snapshotKey: c.snapshotKey ?? '', extensions: { ...c.extensions }, sandbox: c.sandbox ?? '', createdAt: now, updatedAt: now,
    };
    if (c.spec) rec.spec = c.spec;
    validateRecord(c.id, rec);
    return this.t.write(() => {
      this.t.ensureNamespace(ns);
      const k = key(ns, c.id);
      if (this.t.containers.get(k) !== undefined) throw errAlreadyExists(`container ${JSON.stringify(c.id)} in namespace ${ns}: already exists`);
      this.t.containers.putSync(k, rec);
      return toContainer(c.id, rec);
    });
  }

  /**
   * Without fieldpaths replaces labels, image, spec, snapshot key and extensions (runtime and snapshotter must
   * stay the same); else only the named ones: "labels", "labels.<k>", "image", "spec", "snapshotkey",
   * "extensions", "extensions.<k>". Runtime and snapshotter are immutable.
   */
  async update(ns: string, c: NewContainer, fieldpaths?: string[]): Promise<Container> {
    validateNamespace(ns);
    validateId(c.id);
    const result = this.t.write(() => {
      const k = key(ns, c.id);
      const rec = this.t.containers.get(k) as ContainerRecord | undefined;
      if (!rec) throw errNotFound(`container ${JSON.stringify(c.id)} in namespace ${ns}: not found`);
      const next: ContainerRecord = { ...rec, updatedAt: Date.now() };
      if (!fieldpaths?.length) {
        if (c.runtime?.name !== rec.runtime.name) throw errInvalidArgument(`container ${c.id}: runtime is immutable`);
        if ((c.snapshotter ?? '') !== rec.snapshotter) throw errInvalidArgument(`container ${c.id}: snapshotter is immutable`);
        Object.assign(next, { labels: { ...c.labels }, image: c.image ?? '', spec: c.spec, snapshotKey: c.snapshotKey ?? '', extensions: { ...c.extensions } });
      } else {
        next.labels = updateLabels(rec.labels, c.labels ?? {}, fieldpaths.filter((p) => p === 'labels' || p.startsWith('labels.')));
        for (const path of fieldpaths) {
          if (path === 'labels' || path.startsWith('labels.')) continue;
          if (path === 'image') next.image = c.image ?? '';
          else if (path === 'spec') { if (c.spec) next.spec = c.spec; else delete next.spec; }
          else if (path === 'snapshotkey') next.snapshotKey = c.snapshotKey ?? '';
          else if (path === 'extensions') next.extensions = { ...c.extensions };
          else if (path.startsWith('extensions.')) {
            const ext = path.slice('extensions.'.length);
            const value = c.extensions?.[ext];
            next.extensions = { ...next.extensions };
            if (value) next.extensions[ext] = value; else delete next.extensions[ext];
          } else if (path === 'runtime' || path === 'snapshotter') throw errInvalidArgument(`container ${c.id}: ${path} is immutable`);
          else throw errInvalidArgument(`container ${c.id}: cannot update fieldpath ${JSON.stringify(path)}`);
        }
      }
      validateRecord(c.id, next);
      this.t.containers.putSync(k, next);
      return { container: toContainer(c.id, next), released: next.snapshotKey !== rec.snapshotKey };
    });
    if (result.released) this.dirty();
    return result.container;
  }

  async delete(ns: string, id: string): Promise<void> {
    validateNamespace(ns);
    validateId(id);
    this.t.write(() => {
      const k = key(ns, id);
      if (this.t.containers.get(k) === undefined) throw errNotFound(`container ${JSON.stringify(id)} in namespace ${ns}: not found`);
      this.t.containers.removeSync(k);
    });
    this.dirty();
  }
}
