// The local store's writer (one locked ingest: positioned writes, running hash, verified commit) and reader
// (positioned reads and range streams over one open blob).
import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { parseDigest, type Digest } from '../api/digest.ts';
import { errFailedPrecondition, errInvalidArgument } from '../api/errdefs.ts';
import { unlock } from './ingest-lock.ts';
import { validateLabels } from './labels.ts';
import type { ContentReader, ContentWriter, IngestStatus } from './types.ts';

/** What a writer needs from its store. */
export interface IngestOwner {
  status(ref: string): Promise<IngestStatus>;
  commitIngest(dir: string, digest: Digest, labels: Record<string, string> | undefined): Promise<void>;
}

export class LocalWriter implements ContentWriter {
  private closed = false;
  constructor(private readonly store: IngestOwner, readonly ref: string, private readonly dir: string,
    private readonly marker: string, private readonly fh: FileHandle, private hash: Hash,
    private readonly algorithm: string, private offset: number) {}

  private check(): void {
    if (this.closed) throw errFailedPrecondition(`writer for ingest ${JSON.stringify(this.ref)} is closed`);
  }

  async write(data: Uint8Array): Promise<void> {
    this.check();
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, this.offset + done);
      done += bytesWritten;
    }
    this.hash.update(data);
    this.offset += data.length;
  }

  digest(): Digest {
    return `${this.algorithm}:${this.hash.copy().digest('hex')}`;
  }

  async status(): Promise<IngestStatus> {
    return this.store.status(this.ref);
  }

  async truncate(size: number): Promise<void> {
    this.check();
    if (size !== 0) throw errInvalidArgument(`truncate to ${size}: only 0 is supported`);
    await this.fh.truncate(0);
    this.hash = createHash(this.algorithm);
    this.offset = 0;
  }

  async commit(size: number, expected?: Digest, opts?: { labels?: Record<string, string> }): Promise<void> {
    this.check();
    if (opts?.labels) validateLabels(opts.labels);
    if (size > 0 && size !== this.offset) {
      throw errFailedPrecondition(`commit of ingest ${JSON.stringify(this.ref)}: unexpected size ${this.offset}, expected ${size}`);
    }
    const digest = expected && parseDigest(expected).algorithm !== this.algorithm
      ? await this.rehash(parseDigest(expected).algorithm)
      : this.digest();
    if (expected && expected !== digest) {
      throw errFailedPrecondition(`commit of ingest ${JSON.stringify(this.ref)}: unexpected digest ${digest}, expected ${expected}`);
    }
    await this.fh.sync();
    await this.fh.close();
    this.closed = true;
    try {
      await this.store.commitIngest(this.dir, digest, opts?.labels);
    } finally {
      unlock(this.marker);
    }
  }

  /** Digest with another algorithm than the running one (expected given only at commit). */
  private async rehash(algorithm: string): Promise<Digest> {
    const hash = createHash(algorithm);
    for await (const chunk of this.fh.createReadStream({ start: 0, autoClose: false })) hash.update(chunk as Buffer);
    return `${algorithm}:${hash.digest('hex')}`;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try { await this.fh.close(); } finally { unlock(this.marker); }
  }
}

export class FileReader implements ContentReader {
  constructor(private readonly fh: FileHandle, readonly size: number) {}

  async read(offset: number, length: number): Promise<Buffer> {
    if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(length) || length < 0) {
      throw errInvalidArgument(`invalid read range offset=${offset} length=${length}`);
    }
    const n = Math.max(0, Math.min(length, this.size - offset));
    const buf = Buffer.allocUnsafe(n);
    let done = 0;
    while (done < n) {
      const { bytesRead } = await this.fh.read(buf, done, n - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return buf.subarray(0, done);
  }

  stream(offset = 0, length?: number): Readable {
    if (!Number.isInteger(offset) || offset < 0 || (length !== undefined && (!Number.isInteger(length) || length < 0))) {
      throw errInvalidArgument(`invalid read range offset=${offset} length=${length}`);
    }
    const end = length === undefined ? this.size - 1 : Math.min(this.size, offset + length) - 1;
    if (end < offset) return Readable.from([]);
    return this.fh.createReadStream({ start: offset, end, autoClose: false, highWaterMark: 1 << 20 });
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
