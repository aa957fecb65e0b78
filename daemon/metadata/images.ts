// Images per namespace, as containerd's metadata image store: name → target descriptor and labels.
// Filter fields: name, target.mediatype, target.digest, target.size, labels.<key>.
import { parseDigest } from '../../api/digest.ts';
import { errAlreadyExists, errInvalidArgument, errNotFound } from '../../api/errdefs.ts';
import { fieldsAdaptor, parseFilters } from '../../api/filters.ts';
import { updateLabels, validateLabels } from '../../content/labels.ts';
import type { Descriptor } from '../../content/types.ts';
import { key, range, validateName, validateNamespace, type Tables } from './tables.ts';
import type { Image } from './types.ts';

interface ImageRecord {
  labels: Record<string, string>;
  target: Descriptor;
  createdAt: number;
  updatedAt: number;
}

function validateTarget(name: string, target: Descriptor | undefined): void {
  if (!target) throw errInvalidArgument(`image ${name}: target is required`);
  if (!target.mediaType) throw errInvalidArgument(`image ${name}: target media type must be set`);
  parseDigest(target.digest);
  if (!Number.isSafeInteger(target.size) || target.size < 0) throw errInvalidArgument(`image ${name}: invalid target size ${target.size}`);
}

const toImage = (name: string, r: ImageRecord): Image => ({
  name, labels: r.labels, target: r.target, createdAt: new Date(r.createdAt), updatedAt: new Date(r.updatedAt),
});

export class ImageStore {
  constructor(private readonly t: Tables, private readonly hooks: { dirty(): void; collect(): Promise<unknown> }) {}

  async get(ns: string, name: string): Promise<Image> {
    validateNamespace(ns);
    validateName('image name', name);
    const rec = this.t.images.get(key(ns, name)) as ImageRecord | undefined;
    if (!rec) throw errNotFound(`image ${JSON.stringify(name)} in namespace ${ns}: not found`);
    return toImage(name, rec);
  }

  async list(ns: string, filters?: string[]): Promise<Image[]> {
    validateNamespace(ns);
    const filter = parseFilters(filters);
    const out: Image[] = [];
    for (const { key: k, value } of this.t.images.getRange(range(ns))) {
      const img = toImage(k.slice(ns.length + 1), value as ImageRecord);
      const adaptor = fieldsAdaptor({
        name: img.name, 'target.mediatype': img.target.mediaType, 'target.digest': img.target.digest, 'target.size': String(img.target.size),
      }, img.labels);
      if (filter.match(adaptor)) out.push(img);
    }
    return out;
  }

  async create(ns: string, image: Pick<Image, 'name' | 'target'> & { labels?: Record<string, string> }): Promise<Image> {
    validateNamespace(ns);
    validateName('image name', image.name);
    validateTarget(image.name, image.target);
    validateLabels(image.labels ?? {});
    return this.t.write(() => {
      this.t.ensureNamespace(ns);
      const k = key(ns, image.name);
      if (this.t.images.get(k) !== undefined) throw errAlreadyExists(`image ${JSON.stringify(image.name)} in namespace ${ns}: already exists`);
      const now = Date.now();
      const rec: ImageRecord = { labels: { ...image.labels }, target: image.target, createdAt: now, updatedAt: now };
      this.t.images.putSync(k, rec);
      return toImage(image.name, rec);
    });
  }

  /** Without fieldpaths replaces labels and target; else only "target", "labels", "labels.<key>". */
  async update(ns: string, image: Pick<Image, 'name'> & { target?: Descriptor; labels?: Record<string, string> }, fieldpaths?: string[]): Promise<Image> {
    validateNamespace(ns);
    validateName('image name', image.name);
    const replaceTarget = !fieldpaths?.length || fieldpaths.includes('target');
    if (replaceTarget) validateTarget(image.name, image.target);
    const result = this.t.write(() => {
      const k = key(ns, image.name);
      const rec = this.t.images.get(k) as ImageRecord | undefined;
      if (!rec) throw errNotFound(`image ${JSON.stringify(image.name)} in namespace ${ns}: not found`);
      const labels = updateLabels(rec.labels, image.labels ?? {}, fieldpaths, ['target']);
      const next: ImageRecord = { ...rec, labels, target: replaceTarget ? image.target! : rec.target, updatedAt: Date.now() };
      this.t.images.putSync(k, next);
      return { image: toImage(image.name, next), retargeted: next.target.digest !== rec.target.digest };
    });
    if (result.retargeted) this.hooks.dirty();
    return result.image;
  }

  /** Deletes the image; with sync the garbage collector runs before returning (DeleteImageRequest.sync). */
  async delete(ns: string, name: string, opts: { sync?: boolean } = {}): Promise<void> {
    validateNamespace(ns);
    validateName('image name', name);
    this.t.write(() => {
      const k = key(ns, name);
      if (this.t.images.get(k) === undefined) throw errNotFound(`image ${JSON.stringify(name)} in namespace ${ns}: not found`);
      this.t.images.removeSync(k);
    });
    if (opts.sync) await this.hooks.collect();
    else this.hooks.dirty();
  }
}
