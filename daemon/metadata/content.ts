// One namespace's view of the shared content store, as containerd's metadata content store: blobs are stored
// once on disk, but a namespace sees only the content it committed (or was handed by a deduplicated write),
// with its own labels. Ingest refs are namespaced (`<ns>/<ref>` in the backend). With a lease, ingests and
// committed content are attached to it so the garbage collector keeps them.
import { parseDigest, type Digest } from '../../api/digest.ts';
import { errAlreadyExists, errNotFound, isAlreadyExists } from '../../api/errdefs.ts';
import { fieldsAdaptor, parseFilters } from '../../api/filters.ts';
import { updateLabels, validateLabels } from '../../content/labels.ts';
import type { ContentInfo, ContentReader, ContentStore, ContentWriter, IngestStatus, WriterOptions } from '../../content/types.ts';
import { key, range, validateName, validateNamespace, type ContentRecord, type Tables } from './tables.ts';

const toInfo = (digest: Digest, r: ContentRecord): ContentInfo => ({
  digest, size: r.size, labels: r.labels, createdAt: new Date(r.createdAt), updatedAt: new Date(r.updatedAt),
});

export class NamespacedContentStore implements ContentStore {
  constructor(private readonly t: Tables, private readonly backend: ContentStore, readonly namespace: string,
    private readonly lease: string | undefined, private readonly dirty: () => void) {
    validateNamespace(namespace);
    if (lease !== undefined) validateName('lease id', lease);
  }

  private record(digest: Digest): ContentRecord {
    parseDigest(digest);
    const rec = this.t.content.get(key(this.namespace, digest));
    if (!rec) throw errNotFound(`content ${digest} in namespace ${this.namespace}: not found`);
    return rec;
  }

  private backendRef(ref: string): string {
    validateName('ingest ref', ref);
    return `${this.namespace}/${ref}`;
  }

  private fromBackend(status: IngestStatus): IngestStatus {
    return { ...status, ref: status.ref.slice(this.namespace.length + 1) };
  }

  async info(digest: Digest): Promise<ContentInfo> {
    return toInfo(digest, this.record(digest));
  }

  async update(info: { digest: Digest; labels: Record<string, string> }, fieldpaths?: string[]): Promise<ContentInfo> {
    parseDigest(info.digest);
    return this.t.write(() => {
      const rec = this.record(info.digest);
      const next = { ...rec, labels: updateLabels(rec.labels, info.labels ?? {}, fieldpaths), updatedAt: Date.now() };
      this.t.content.putSync(key(this.namespace, info.digest), next);
      return toInfo(info.digest, next);
    });
  }

  async walk(fn: (info: ContentInfo) => void | Promise<void>, filters?: string[]): Promise<void> {
    const filter = parseFilters(filters);
    for (const { key: k, value } of this.t.content.getRange(range(this.namespace))) {
      const info = toInfo(k.slice(this.namespace.length + 1), value);
      if (filter.match(fieldsAdaptor({ digest: info.digest, size: String(info.size) }, info.labels))) await fn(info);
    }
  }

  /** Drops the namespace's reference; the blob itself goes at the next GC once no namespace holds it. */
  async delete(digest: Digest): Promise<void> {
    this.t.write(() => {
      this.record(digest);
      this.t.content.removeSync(key(this.namespace, digest));
    });
    this.dirty();
  }

  async reader(digest: Digest): Promise<ContentReader> {
    this.record(digest);
    return this.backend.reader(digest);
  }

  /** Adds a reference to content already on disk; call inside write(). */
  private addRecord(digest: Digest, size: number, labels: Record<string, string>): void {
    this.t.ensureNamespace(this.namespace);
    if (this.lease) {
      this.t.requireLease(this.namespace, this.lease);
      this.t.addLeaseResource(this.namespace, this.lease, 'content', digest);
    }
    const now = Date.now();
    this.t.content.putSync(key(this.namespace, digest), { size, labels, createdAt: now, updatedAt: now });
  }

  /** Hands the namespace content another namespace already wrote (true), when its size matches. */
  private share(expected: Digest, size: number | undefined): Promise<boolean> {
    return this.t.gcLock.shared(async () => {
      const info = await this.backend.info(expected).catch(() => undefined);
      if (!info || (size && size !== info.size)) return false;
      this.t.write(() => this.addRecord(expected, info.size, {}));
      return true;
    });
  }

  async writer(opts: WriterOptions): Promise<ContentWriter> {
    const ref = this.backendRef(opts.ref);
    const expected = opts.expected?.digest;
    const exists = () => errAlreadyExists(`content ${expected} in namespace ${this.namespace}: already exists`);
    if (expected) {
      parseDigest(expected);
      if (this.t.content.get(key(this.namespace, expected))) throw exists();
      // Deduplicate: content already on disk is handed over without writing it again.
      if (await this.share(expected, opts.expected?.size)) throw exists();
    }
    this.t.write(() => {
      this.t.ensureNamespace(this.namespace);
      if (this.lease) {
        this.t.requireLease(this.namespace, this.lease);
        this.t.addLeaseResource(this.namespace, this.lease, 'ingests', opts.ref);
      }
      const k = key(this.namespace, opts.ref);
      const rec = this.t.ingests.get(k);
      if (!rec || rec.lease !== this.lease) this.t.ingests.putSync(k, { ...(this.lease ? { lease: this.lease } : {}), createdAt: rec?.createdAt ?? Date.now() });
    });
    try {
      return new NamespacedWriter(this, await this.backend.writer({ ...opts, ref }), opts.ref);
    } catch (err) {
      // Committed by someone else since the check above: share it now rather than report content we lack.
      if (expected && isAlreadyExists(err)) await this.share(expected, opts.expected?.size);
      throw err;
    }
  }

  /** Commits the backend ingest and records the content in the namespace, atomically with respect to the GC. */
  async commitWriter(w: ContentWriter, ref: string, size: number, expected: Digest | undefined, labels: Record<string, string>): Promise<void> {
    validateLabels(labels);
    await this.t.gcLock.shared(async () => {
      const offset = size > 0 ? size : (await w.status()).offset;
      const digest = expected ?? w.digest();
      try {
        await w.commit(size, expected);
      } catch (err) {
        // The backend verified the data before finding the blob present: another namespace wrote it.
        if (!isAlreadyExists(err)) throw err;
      }
      const added = this.t.write(() => {
        this.t.ingests.removeSync(key(this.namespace, ref));
        if (this.lease) this.t.leaseResources.removeSync(key(this.namespace, this.lease, 'ingests', ref));
        if (this.t.content.get(key(this.namespace, digest))) return false;
        this.addRecord(digest, offset, labels);
        return true;
      });
      if (!added) throw errAlreadyExists(`content ${digest} in namespace ${this.namespace}: already exists`);
    });
  }

  async status(ref: string): Promise<IngestStatus> {
    return this.fromBackend(await this.backend.status(this.backendRef(ref)));
  }

  async listStatuses(filters?: string[]): Promise<IngestStatus[]> {
    const filter = parseFilters(filters);
    const prefix = this.namespace + '/';
    return (await this.backend.listStatuses())
      .filter((s) => s.ref.startsWith(prefix))
      .map((s) => this.fromBackend(s))
      .filter((s) => filter.match(fieldsAdaptor({ ref: s.ref })));
  }

  async abort(ref: string): Promise<void> {
    await this.backend.abort(this.backendRef(ref));
    this.t.write(() => this.t.ingests.removeSync(key(this.namespace, ref)));
  }
}

class NamespacedWriter implements ContentWriter {
  constructor(private readonly view: NamespacedContentStore, private readonly w: ContentWriter, readonly ref: string) {}

  write(data: Uint8Array): Promise<void> { return this.w.write(data); }
  digest(): Digest { return this.w.digest(); }
  async status(): Promise<IngestStatus> { return { ...(await this.w.status()), ref: this.ref }; }
  truncate(size: number): Promise<void> { return this.w.truncate(size); }
  close(): Promise<void> { return this.w.close(); }

  commit(size: number, expected?: Digest, opts?: { labels?: Record<string, string> }): Promise<void> {
    return this.view.commitWriter(this.w, this.ref, size, expected, opts?.labels ?? {});
  }
}
