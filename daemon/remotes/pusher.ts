// Uploading blobs and manifests: existence check by HEAD, cross-repository mount, monolithic PUT or chunked
// PATCH uploads (distribution spec v2).
import type { Readable } from 'node:stream';
import { errInvalidArgument } from '../../api/errdefs.ts';
import type { Descriptor } from '../../content/types.ts';
import { discardBody, type HttpResponse } from './http.ts';
import type { Repository } from './registry.ts';

export type PushOutcome = 'exists' | 'mounted' | 'uploaded';

export interface BlobSource {
  /** A stream of the blob's bytes in [offset, offset+length). */
  open(offset: number, length: number): Readable;
}

export interface PushBlobOptions {
  /** Repositories on the same registry that may hold the blob, tried for a cross-repository mount. */
  mountFrom?: string[];
  /** Upload in PATCH chunks of this size; monolithic PUT when absent. */
  chunkSize?: number;
}

function location(repo: Repository, res: HttpResponse, what: string): string {
  const loc = res.headers.location;
  if (!loc) throw errInvalidArgument(`${what} at ${repo.host}/${repo.path}: status ${res.status} without a Location`);
  return new URL(loc, res.url).toString();
}

function withDigest(url: string, digest: string): string {
  const u = new URL(url);
  u.searchParams.set('digest', digest);
  return u.toString();
}

async function blobExists(repo: Repository, desc: Descriptor): Promise<boolean> {
  const res = await repo.request({ method: 'HEAD', path: `blobs/${desc.digest}`, push: true });
  await discardBody(res);
  if (res.status === 200) return true;
  if (res.status === 404) return false;
  throw await repo.error(res, `checking blob ${desc.digest}`);
}

/** Starts an upload session, or mounts the blob from one of `from`. Returns the upload URL or 'mounted'. */
async function startUpload(repo: Repository, desc: Descriptor, from: string[]): Promise<string | 'mounted'> {
  for (const source of from) {
    if (source === repo.path) continue;
    const query = `?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(source)}`;
    const res = await repo.request({ method: 'POST', path: `blobs/uploads/${query}`, push: true, extraScopes: [`repository:${source}:pull`] });
    await discardBody(res);
    if (res.status === 201) return 'mounted';
    // 202: the registry could not mount and opened an ordinary upload instead.
    if (res.status === 202) return location(repo, res, 'starting upload');
  }
  const res = await repo.request({ method: 'POST', path: 'blobs/uploads/', push: true });
  await discardBody(res);
  if (res.status !== 202) throw await repo.error(res, `starting upload of ${desc.digest}`);
  return location(repo, res, 'starting upload');
}

async function expectCreated(repo: Repository, res: HttpResponse, desc: Descriptor): Promise<void> {
  if (res.status !== 201) throw await repo.error(res, `uploading ${desc.digest}`);
  await discardBody(res);
  const got = res.headers['docker-content-digest'];
  if (got && got !== desc.digest) throw errInvalidArgument(`uploading ${desc.digest}: registry stored it as ${got}`);
}

/** Pushes one blob unless the repository already has it. */
export async function pushBlob(repo: Repository, desc: Descriptor, source: BlobSource, opts: PushBlobOptions = {}): Promise<PushOutcome> {
  if (await blobExists(repo, desc)) return 'exists';
  let url = await startUpload(repo, desc, opts.mountFrom ?? []);
  if (url === 'mounted') return 'mounted';
  const octet = { 'content-type': 'application/octet-stream' };
  if (!opts.chunkSize || desc.size <= opts.chunkSize) {
    const res = await repo.request({
      method: 'PUT', path: withDigest(url, desc.digest), push: true,
      headers: { ...octet, 'content-length': String(desc.size) }, body: source.open(0, desc.size),
    });
    await expectCreated(repo, res, desc);
    return 'uploaded';
  }
  for (let start = 0; start < desc.size; start += opts.chunkSize) {
    const length = Math.min(opts.chunkSize, desc.size - start);
    const res = await repo.request({
      method: 'PATCH', path: url, push: true,
      headers: { ...octet, 'content-length': String(length), 'content-range': `${start}-${start + length - 1}` },
      body: source.open(start, length),
    });
    if (res.status !== 202) throw await repo.error(res, `uploading chunk ${start}-${start + length - 1} of ${desc.digest}`);
    await discardBody(res);
    url = location(repo, res, 'uploading chunk');
  }
  const res = await repo.request({ method: 'PUT', path: withDigest(url, desc.digest), push: true, body: Buffer.alloc(0) });
  await expectCreated(repo, res, desc);
  return 'uploaded';
}

/** Puts a manifest or index under `tagOrDigest`. */
export async function pushManifest(repo: Repository, desc: Descriptor, data: Buffer, tagOrDigest: string): Promise<void> {
  const res = await repo.request({
    method: 'PUT', path: `manifests/${tagOrDigest}`, push: true, headers: { 'content-type': desc.mediaType }, body: data,
  });
  await expectCreated(repo, res, desc);
}
