// The local content store, laid out as containerd's: <root>/blobs/<alg>/<hex> holds committed blobs,
// <root>/ingest/<sha256 of ref>/{data,ref,startedat,total,expected,lock} holds unfinished writes so they can
// resume after a restart. Labels live in a small JSON sidecar per blob (<root>/labels/<alg>/<hex>): the
// daemon keeps its per-namespace labels in the metadata DB, so these only serve direct users of the store.
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm, stat, unlink, writeFile, utimes, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDigest, type Digest } from '../api/digest.ts';
import { errAlreadyExists, errFailedPrecondition, errInvalidArgument, errNotFound, errUnavailable } from '../api/errdefs.ts';
import { fieldsAdaptor, parseFilters } from '../api/filters.ts';
import { isLocked, lock, unlock } from './ingest-lock.ts';
import { updateLabels } from './labels.ts';
import { FileReader, LocalWriter, type IngestOwner } from './local-io.ts';
import type { ContentInfo, ContentReader, ContentStore, ContentWriter, IngestStatus, WriterOptions } from './types.ts';

const isENOENT = (err: unknown) => (err as NodeJS.ErrnoException)?.code === 'ENOENT';

async function readText(path: string): Promise<string | undefined> {
  try { return await readFile(path, 'utf8'); } catch (err) { if (isENOENT(err)) return undefined; throw err; }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}

export class LocalContentStore implements ContentStore, IngestOwner {
  private constructor(readonly root: string) {}

  static async open(root: string): Promise<LocalContentStore> {
    await mkdir(join(root, 'blobs'), { recursive: true });
    await mkdir(join(root, 'ingest'), { recursive: true });
    await mkdir(join(root, 'labels'), { recursive: true });
    return new LocalContentStore(root);
  }

  /** Path of a committed blob (validates the digest). */
  blobPath(digest: Digest): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(this.root, 'blobs', algorithm, encoded);
  }

  private labelsPath(digest: Digest): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(this.root, 'labels', algorithm, encoded);
  }

  private ingestDir(ref: string): string {
    if (typeof ref !== 'string' || ref === '') throw errInvalidArgument('ingest ref must not be empty');
    return join(this.root, 'ingest', createHash('sha256').update(ref).digest('hex'));
  }

  async info(digest: Digest): Promise<ContentInfo> {
    const path = this.blobPath(digest);
    let st;
    try { st = await stat(path); } catch (err) {
      if (isENOENT(err)) throw errNotFound(`content ${digest}: not found`);
      throw err;
    }
    const sidecar = await readText(this.labelsPath(digest));
    const meta = sidecar ? JSON.parse(sidecar) as { labels: Record<string, string>; updatedAt: string } : undefined;
    return {
      digest, size: st.size, createdAt: st.mtime,
      updatedAt: meta ? new Date(meta.updatedAt) : st.mtime,
      labels: meta?.labels ?? {},
    };
  }

  async update(info: { digest: Digest; labels: Record<string, string> }, fieldpaths?: string[]): Promise<ContentInfo> {
    const current = await this.info(info.digest);
    const labels = updateLabels(current.labels, info.labels ?? {}, fieldpaths);
    await this.writeLabels(info.digest, labels);
    return this.info(info.digest);
  }

  private async writeLabels(digest: Digest, labels: Record<string, string>): Promise<void> {
    const path = this.labelsPath(digest);
    if (Object.keys(labels).length === 0) {
      await rm(path, { force: true });
      return;
    }
    await mkdir(join(path, '..'), { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify({ labels, updatedAt: new Date().toISOString() }));
    await rename(tmp, path);
  }

  async walk(fn: (info: ContentInfo) => void | Promise<void>, filters?: string[]): Promise<void> {
    const filter = parseFilters(filters);
    const blobs = join(this.root, 'blobs');
    for (const algorithm of await readdir(blobs)) {
      for (const encoded of await readdir(join(blobs, algorithm))) {
        let info: ContentInfo;
        try { info = await this.info(`${algorithm}:${encoded}`); } catch { continue; } // foreign file or deleted meanwhile
        const adaptor = fieldsAdaptor({ digest: info.digest, size: String(info.size) }, info.labels);
        if (filter.match(adaptor)) await fn(info);
      }
    }
  }

  async delete(digest: Digest): Promise<void> {
    try { await unlink(this.blobPath(digest)); } catch (err) {
      if (isENOENT(err)) throw errNotFound(`content ${digest}: not found`);
      throw err;
    }
    await rm(this.labelsPath(digest), { force: true });
  }

  async reader(digest: Digest): Promise<ContentReader> {
    let fh: FileHandle;
    try { fh = await open(this.blobPath(digest), 'r'); } catch (err) {
      if (isENOENT(err)) throw errNotFound(`content ${digest}: not found`);
      throw err;
    }
    const { size } = await fh.stat();
    return new FileReader(fh, size);
  }

  async writer(opts: WriterOptions): Promise<ContentWriter> {
    const dir = this.ingestDir(opts.ref);
    const expected = opts.expected?.digest;
    const total = opts.expected?.size ?? 0;
    if (!Number.isInteger(total) || total < 0) throw errInvalidArgument(`invalid expected size ${total}`);
    if (expected !== undefined) {
      const path = this.blobPath(expected);
      if (await stat(path).then(() => true, () => false)) throw errAlreadyExists(`content ${expected}: already exists`);
    }
    const fresh = await mkdir(dir).then(() => true, (err) => {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    });
    const marker = join(dir, 'lock');
    lock(marker, `ingest ${JSON.stringify(opts.ref)}`);
    try {
      const status = fresh ? undefined : await this.readStatus(dir);
      if (status) {
        if (status.ref !== opts.ref) throw errFailedPrecondition(`ingest ${JSON.stringify(opts.ref)} collides with ${JSON.stringify(status.ref)}`);
        if (total > 0 && status.total > 0 && total !== status.total) {
          throw errFailedPrecondition(`ingest ${JSON.stringify(opts.ref)}: expected size ${total} differs from the resumed ingest's ${status.total}`);
        }
        if (expected && status.expected && expected !== status.expected) {
          throw errFailedPrecondition(`ingest ${JSON.stringify(opts.ref)}: expected digest ${expected} differs from the resumed ingest's ${status.expected}`);
        }
      }
      const files: [string, string][] = [];
      if (!status) files.push(['ref', opts.ref], ['startedat', new Date().toISOString()]);
      if (total > 0 && total !== status?.total) files.push(['total', String(total)]);
      if (expected && expected !== status?.expected) files.push(['expected', expected]);
      await Promise.all(files.map(([name, text]) => writeFile(join(dir, name), text)));
      const algorithm = expected ? parseDigest(expected).algorithm : status?.expected ? parseDigest(status.expected).algorithm : 'sha256';
      const fh = await open(join(dir, 'data'), 'a+');
      // Resuming: the running hash cannot be persisted, so recompute it from the data already on disk.
      const hash = createHash(algorithm);
      let offset = 0;
      if ((await fh.stat()).size > 0) {
        for await (const chunk of fh.createReadStream({ start: 0, autoClose: false, highWaterMark: 1 << 20 })) {
          hash.update(chunk as Buffer);
          offset += (chunk as Buffer).length;
        }
      }
      return new LocalWriter(this, opts.ref, dir, marker, fh, hash, algorithm, offset);
    } catch (err) {
      unlock(marker);
      throw err;
    }
  }

  private async readStatus(dir: string): Promise<IngestStatus | undefined> {
    const ref = await readText(join(dir, 'ref'));
    if (ref === undefined) return undefined;
    const [startedAt, total, expected] = await Promise.all(['startedat', 'total', 'expected'].map((f) => readText(join(dir, f))));
    let offset = 0;
    let updatedAt = new Date(startedAt ?? 0);
    try {
      const st = await stat(join(dir, 'data'));
      offset = st.size;
      updatedAt = st.mtime;
    } catch (err) { if (!isENOENT(err)) throw err; }
    const status: IngestStatus = { ref, offset, total: Number(total ?? 0), startedAt: new Date(startedAt ?? 0), updatedAt };
    if (expected) status.expected = expected;
    return status;
  }

  async status(ref: string): Promise<IngestStatus> {
    const status = await this.readStatus(this.ingestDir(ref));
    if (!status) throw errNotFound(`ingest ${JSON.stringify(ref)}: not found`);
    return status;
  }

  async listStatuses(filters?: string[]): Promise<IngestStatus[]> {
    const filter = parseFilters(filters);
    const out: IngestStatus[] = [];
    for (const name of await readdir(join(this.root, 'ingest'))) {
      const status = await this.readStatus(join(this.root, 'ingest', name));
      if (status && filter.match(fieldsAdaptor({ ref: status.ref }))) out.push(status);
    }
    return out;
  }

  async abort(ref: string): Promise<void> {
    const dir = this.ingestDir(ref);
    if (!(await this.readStatus(dir))) throw errNotFound(`ingest ${JSON.stringify(ref)}: not found`);
    if (isLocked(join(dir, 'lock'))) throw errUnavailable(`ingest ${JSON.stringify(ref)} is locked by an active writer`);
    await rm(dir, { recursive: true, force: true });
  }

  /** Moves a finished ingest into place; called by the writer holding the ingest lock. */
  async commitIngest(dir: string, digest: Digest, labels: Record<string, string> | undefined): Promise<void> {
    const target = this.blobPath(digest);
    if (await stat(target).then(() => true, () => false)) {
      await rm(dir, { recursive: true, force: true });
      throw errAlreadyExists(`content ${digest}: already exists`);
    }
    const blobDir = join(target, '..');
    await mkdir(blobDir, { recursive: true });
    const now = new Date();
    await utimes(join(dir, 'data'), now, now);
    if (labels && Object.keys(labels).length > 0) await this.writeLabels(digest, labels);
    await rename(join(dir, 'data'), target);
    await fsyncDir(blobDir);
    await rm(dir, { recursive: true, force: true });
  }
}
