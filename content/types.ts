// The content store interface: a content-addressable blob store, as containerd's content.Store.
// Implementations must pass the shared conformance suite in test/content/.
import type { Readable } from 'node:stream';
import type { Digest } from '../api/digest.ts';

/** OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
}

export interface ContentInfo {
  digest: Digest;
  size: number;
  createdAt: Date;
  updatedAt: Date;
  labels: Record<string, string>;
}

/** The progress of an ingest (an unfinished write), kept across restarts so writes can resume. */
export interface IngestStatus {
  ref: string;
  /** Bytes written so far: where a resumed write continues. */
  offset: number;
  /** Expected total size, 0 when unknown. */
  total: number;
  expected?: Digest;
  startedAt: Date;
  updatedAt: Date;
}

/** Random access to one committed blob. */
export interface ContentReader {
  readonly size: number;
  /** Reads up to `length` bytes at `offset` (fewer only at the end of the blob). */
  read(offset: number, length: number): Promise<Buffer>;
  /** Streams [offset, offset+length) (to the end when length is omitted). */
  stream(offset?: number, length?: number): Readable;
  close(): Promise<void>;
}

/** An exclusive writer for one ingest ref. */
export interface ContentWriter {
  readonly ref: string;
  /** Appends at the current offset. */
  write(data: Uint8Array): Promise<void>;
  /** Digest of everything written so far. */
  digest(): Digest;
  status(): Promise<IngestStatus>;
  /** Drops what was written past `size` (only 0 need be supported, as containerd). */
  truncate(size: number): Promise<void>;
  /**
   * Verifies size (when > 0) and digest (when given), fsyncs, renames into place atomically and releases the
   * ingest. Fails with failed-precondition naming the mismatch (the ingest is kept for a retry); fails with
   * already-exists when the blob is already present (the ingest is removed).
   */
  commit(size: number, expected?: Digest, opts?: { labels?: Record<string, string> }): Promise<void>;
  /** Releases the lock; the ingest stays on disk so a later writer with the same ref resumes it. */
  close(): Promise<void>;
}

export interface WriterOptions {
  ref: string;
  /** When given: already-exists if this digest is committed; total/expected recorded in the status. */
  expected?: { digest?: Digest; size?: number };
}

export interface ContentStore {
  info(digest: Digest): Promise<ContentInfo>;
  /** Updates labels; with fieldpaths ("labels", "labels.<key>") only those fields change. */
  update(info: { digest: Digest; labels: Record<string, string> }, fieldpaths?: string[]): Promise<ContentInfo>;
  /** Visits every blob matching any of the filters (containerd filter syntax; none = all). */
  walk(fn: (info: ContentInfo) => void | Promise<void>, filters?: string[]): Promise<void>;
  delete(digest: Digest): Promise<void>;
  reader(digest: Digest): Promise<ContentReader>;
  /** Opens (or resumes) the ingest `ref`; unavailable when another writer holds it. */
  writer(opts: WriterOptions): Promise<ContentWriter>;
  status(ref: string): Promise<IngestStatus>;
  listStatuses(filters?: string[]): Promise<IngestStatus[]>;
  abort(ref: string): Promise<void>;
}
