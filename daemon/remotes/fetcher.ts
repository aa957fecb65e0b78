// Fetching blobs and manifests by descriptor: ranged GETs to resume partial downloads, and size and digest
// checked while the bytes stream, so a lying registry never gets anything committed.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import { BerthError, ErrorCode, errFailedPrecondition, errInvalidArgument, errUnavailable, isAlreadyExists } from '../../api/errdefs.ts';
import type { ContentStore, Descriptor } from '../../content/types.ts';
import { blobStream } from '../images/image.ts';
import { blobKind, isIndexType, isManifestType } from '../images/mediatypes.ts';
import { discardBody } from './http.ts';
import type { Repository } from './registry.ts';

export interface FetchProgress {
  digest: string;
  mediaType: string;
  /** Bytes present so far (including those resumed from an earlier attempt). */
  offset: number;
  total: number;
  status: 'downloading' | 'resumed' | 'exists' | 'done';
}

export type ProgressFunc = (p: FetchProgress) => void;

/** Ingest ref for a descriptor, as containerd's remotes.MakeRefKey ("layer-sha256:..."). */
export function ingestRef(desc: Descriptor): string {
  return `${blobKind(desc.mediaType)}-${desc.digest}`;
}

function errMismatch(desc: Descriptor, what: string, expected: string | number, actual: string | number): BerthError {
  return errFailedPrecondition(`blob ${desc.digest}: ${what} mismatch: expected ${expected}, got ${actual}`);
}

/** Opens the bytes of `desc` from `offset`. The returned offset is where the stream really starts (0 when the
 * registry ignored the Range). */
export async function openBlob(repo: Repository, desc: Descriptor, offset = 0): Promise<{ stream: Readable; offset: number }> {
  const path = (isManifestType(desc.mediaType) || isIndexType(desc.mediaType) ? 'manifests/' : 'blobs/') + desc.digest;
  const headers: Record<string, string> = { accept: `${desc.mediaType}, */*` };
  if (offset > 0) headers.range = `bytes=${offset}-`;
  const res = await repo.request({ method: 'GET', path, headers });
  if (res.status === 206 && offset > 0) {
    const m = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
    if (!m || Number(m[1]) !== offset) {
      await discardBody(res);
      throw errInvalidArgument(`blob ${desc.digest}: registry answered range ${JSON.stringify(res.headers['content-range'])} for bytes=${offset}-`);
    }
    return { stream: res.body, offset };
  }
  if (res.status === 200) return { stream: res.body, offset: 0 };
  if (res.status === 416 && offset > 0) {
    await discardBody(res);
    return openBlob(repo, desc, 0);
  }
  throw await repo.error(res, `fetching ${desc.digest}`);
}

/** Told of the bytes received from a registry, chunk by chunk (berthd's metrics count them). */
export type FetchedFunc = (bytes: number) => void;

/** Fetches a small blob (manifest, index, config) into memory, verifying size and digest. */
export async function fetchBytes(repo: Repository, desc: Descriptor, limit = 64 << 20, onFetched?: FetchedFunc): Promise<Buffer> {
  if (desc.size > limit) throw errInvalidArgument(`blob ${desc.digest}: size ${desc.size} exceeds the ${limit}-byte limit for ${blobKind(desc.mediaType)} documents`);
  const { stream } = await openBlob(repo, desc);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    n += chunk.length;
    onFetched?.(chunk.length);
    if (n > desc.size) {
      stream.destroy();
      throw errMismatch(desc, 'size', desc.size, `more than ${desc.size} bytes`);
    }
    chunks.push(chunk);
  }
  if (n !== desc.size) throw errMismatch(desc, 'size', desc.size, n);
  const data = Buffer.concat(chunks);
  const digest = 'sha256:' + createHash('sha256').update(data).digest('hex');
  if (digest !== desc.digest) throw errMismatch(desc, 'digest', desc.digest, digest);
  return data;
}

/** Writes bytes already verified against `desc` into the store (no-op if present). */
export async function writeBlob(store: ContentStore, desc: Descriptor, data: Buffer): Promise<void> {
  let writer;
  try {
    writer = await store.writer({ ref: ingestRef(desc), expected: { digest: desc.digest, size: desc.size } });
  } catch (e) {
    if (isAlreadyExists(e)) return;
    throw e;
  }
  try {
    await writer.truncate(0);
    await writer.write(data);
    await writer.commit(desc.size, desc.digest);
  } catch (e) {
    if (!isAlreadyExists(e)) throw e;
  } finally {
    await writer.close().catch(() => {});
  }
}

/**
 * Receives a blob's bytes. The stream ends only once size and digest are verified and the blob committed; it
 * is destroyed with the error otherwise, so a consumer (streaming unpack) commits nothing unverified.
 */
export type BlobSink = (data: Readable) => Promise<void>;

export interface FetchOptions {
  onProgress?: ProgressFunc;
  onFetched?: FetchedFunc;
  /** Given the bytes live while they download from offset 0, else the stored blob once committed. */
  sink?: BlobSink;
}

/** Feeds chunks to a sink with backpressure; a failing sink fails the download. */
class Tee {
  readonly stream = new PassThrough({ highWaterMark: 4 << 20 });
  readonly done: Promise<void>;
  failed?: unknown;

  constructor(sink: BlobSink) {
    this.done = sink(this.stream).catch((e) => { this.failed = e; throw e; });
    this.done.catch(() => {});
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.failed) throw this.failed;
    if (!this.stream.write(chunk)) await Promise.race([once(this.stream, 'drain'), this.done]);
  }

  async end(): Promise<void> {
    this.stream.end();
    await this.done;
  }

  async fail(err: unknown): Promise<void> {
    this.stream.destroy(err as Error);
    await this.done.catch(() => {});
  }
}

/**
 * Streams `desc` from the registry into the store, resuming the ingest `ingestRef(desc)` at its offset.
 * A network failure keeps the partial ingest for a later resume; a size or digest mismatch aborts it.
 * Returns whether the blob was already present.
 */
export async function fetchToStore(store: ContentStore, repo: Repository, desc: Descriptor, opts: FetchOptions = {}): Promise<'fetched' | 'exists'> {
  const ref = ingestRef(desc);
  const progress = (offset: number, status: FetchProgress['status']) => opts.onProgress?.({ digest: desc.digest, mediaType: desc.mediaType, offset, total: desc.size, status });
  const sinkStored = async () => { if (opts.sink) await opts.sink(blobStream(store, desc.digest)); };
  let writer;
  try {
    writer = await store.writer({ ref, expected: { digest: desc.digest, size: desc.size } });
  } catch (e) {
    if (!isAlreadyExists(e)) throw e;
    progress(desc.size, 'exists');
    await sinkStored();
    return 'exists';
  }
  let verifyFailed = false;
  let tee: Tee | undefined;
  try {
    let { offset } = await writer.status();
    if (offset > desc.size) { await writer.truncate(0); offset = 0; }
    if (offset > 0) progress(offset, 'resumed');
    if (offset < desc.size || desc.size === 0) {
      const opened = await openBlob(repo, desc, offset);
      if (opened.offset !== offset) { await writer.truncate(0); offset = 0; }
      if (opts.sink && offset === 0) tee = new Tee(opts.sink);
      for await (const chunk of opened.stream as AsyncIterable<Buffer>) {
        opts.onFetched?.(chunk.length);
        if (offset + chunk.length > desc.size) {
          opened.stream.destroy();
          verifyFailed = true;
          throw errMismatch(desc, 'size', desc.size, `more than ${desc.size} bytes`);
        }
        await writer.write(chunk);
        await tee?.write(chunk);
        offset += chunk.length;
        progress(offset, 'downloading');
      }
    }
    if (offset !== desc.size) { verifyFailed = true; throw errMismatch(desc, 'size', desc.size, offset); }
    const actual = writer.digest();
    if (actual !== desc.digest) { verifyFailed = true; throw errMismatch(desc, 'digest', desc.digest, actual); }
    try {
      await writer.commit(desc.size, desc.digest);
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
    }
    progress(desc.size, 'done');
  } catch (e) {
    if (tee && tee.failed === e) throw e; // the consumer's own error, not the download's
    await tee?.fail(e);
    if (e instanceof BerthError && e.code === ErrorCode.FailedPrecondition) verifyFailed = true;
    if (!(e instanceof BerthError)) throw errUnavailable(`fetching ${desc.digest} from ${repo.host}/${repo.path}: ${(e as Error).message}; the partial download is kept for a resume`, e);
    throw e;
  } finally {
    await writer.close().catch(() => {});
    if (verifyFailed) await store.abort(ref).catch(() => {});
  }
  if (tee) await tee.end();
  else await sinkStored();
  return 'fetched';
}
