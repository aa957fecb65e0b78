// Resolving a reference to the descriptor of its manifest or index: HEAD with the Accept list containerd
// sends, falling back to GET when the registry does not give the digest, and refusing answers that are no
// manifest at all.
import { createHash } from 'node:crypto';
import { isDigest } from '../../api/digest.ts';
import { errInvalidArgument, errNotFound } from '../../api/errdefs.ts';
import { type Reference, formatReference, objectOf, parseNormalizedReference } from '../../api/reference.ts';
import type { Descriptor } from '../../content/types.ts';
import { documentKind } from '../images/manifest.ts';
import { MediaType } from '../images/mediatypes.ts';
import { discardBody, readBody } from './http.ts';
import { Repository, type ResolverOptions } from './registry.ts';

export const MANIFEST_ACCEPT = [
  MediaType.DockerManifest, MediaType.DockerManifestList, MediaType.OciManifest, MediaType.OciIndex, '*/*',
].join(', ');

/** Manifests and indexes are small; anything bigger is refused rather than buffered. */
export const MAX_MANIFEST_SIZE = 4 << 20;

export interface Resolved {
  /** Canonical name ("docker.io/library/busybox:latest"). */
  name: string;
  reference: Reference;
  descriptor: Descriptor;
  repository: Repository;
}

function mediaTypeOf(headers: Record<string, unknown>): string {
  return String(headers['content-type'] ?? '').split(';')[0]!.trim();
}

function checkMediaType(name: string, mediaType: string, body?: Buffer): string {
  try {
    documentKind(mediaType, body);
    return mediaType;
  } catch {
    throw errInvalidArgument(`${name}: registry answered ${JSON.stringify(mediaType || 'no content type')}, which is no manifest or index media type`);
  }
}

/** Resolves `ref` (normalized like docker) on its registry. */
export async function resolve(ref: string | Reference, opts: ResolverOptions = {}): Promise<Resolved> {
  const reference = typeof ref === 'string' ? parseNormalizedReference(ref) : ref;
  const name = formatReference(reference);
  const repository = new Repository(reference, opts);
  const object = objectOf(reference);
  const path = `manifests/${object}`;
  const headers = { accept: MANIFEST_ACCEPT };

  const head = await repository.request({ method: 'HEAD', path, headers });
  await discardBody(head);
  if (head.status === 200) {
    const digest = reference.digest ?? (head.headers['docker-content-digest'] as string | undefined);
    const size = Number(head.headers['content-length']);
    const mediaType = mediaTypeOf(head.headers);
    if (digest && isDigest(digest) && Number.isSafeInteger(size) && size > 0 && mediaType && mediaType !== 'application/json') {
      checkMediaType(name, mediaType);
      return { name, reference, descriptor: { mediaType, digest, size }, repository };
    }
  } else if (head.status === 404) {
    throw errNotFound(`${name}: not found`);
  }
  // Otherwise GET: it gives the digest HEAD left out, or an error body HEAD could not carry.

  const get = await repository.request({ method: 'GET', path, headers });
  if (get.status === 404) {
    await discardBody(get);
    throw errNotFound(`${name}: not found`);
  }
  if (get.status !== 200) throw await repository.error(get, `resolving ${name}`);
  const body = await readBody(get, MAX_MANIFEST_SIZE);
  let mediaType = mediaTypeOf(get.headers);
  mediaType = checkMediaType(name, mediaType, body);
  if (mediaType === 'application/json' || !mediaType) {
    const doc = JSON.parse(body.toString('utf8')) as { mediaType?: string };
    mediaType = doc.mediaType ?? (documentKind(mediaType, body) === 'index' ? MediaType.OciIndex : MediaType.OciManifest);
  }
  const digest = 'sha256:' + createHash('sha256').update(body).digest('hex');
  if (reference.digest && reference.digest !== digest) {
    throw errInvalidArgument(`${name}: registry served content with digest ${digest}`);
  }
  return { name, reference, descriptor: { mediaType, digest, size: body.length }, repository };
}

