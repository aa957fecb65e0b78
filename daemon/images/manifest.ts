// Image index, manifest and config documents: types and strict parsing. Every refusal names the document and
// the problem, so a bad registry answer or archive is easy to diagnose.
import { isDigest } from '../../api/digest.ts';
import { errInvalidArgument, errNotImplemented } from '../../api/errdefs.ts';
import type { Descriptor, Platform } from '../../content/types.ts';
import { MediaType, isConfigType, isIndexType, isLayerType, isManifestType } from './mediatypes.ts';

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  created?: string;
  config?: Record<string, unknown>;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: unknown[];
  [key: string]: unknown;
}

function fail(what: string, problem: string): Error {
  return errInvalidArgument(`invalid ${what}: ${problem}`);
}

function parseJson(what: string, data: Uint8Array | string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(typeof data === 'string' ? data : Buffer.from(data).toString('utf8'));
  } catch (e) {
    throw fail(what, `malformed JSON (${(e as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw fail(what, 'not a JSON object');
  return doc as Record<string, unknown>;
}

/** Checks one descriptor's shape (media type, digest, size); returns it typed. */
export function checkDescriptor(what: string, d: unknown): Descriptor {
  if (typeof d !== 'object' || d === null) throw fail(what, 'descriptor is not an object');
  const desc = d as Record<string, unknown>;
  if (typeof desc.mediaType !== 'string' || !desc.mediaType) throw fail(what, 'descriptor without mediaType');
  if (typeof desc.digest !== 'string' || !isDigest(desc.digest)) throw fail(what, `descriptor with invalid digest ${JSON.stringify(desc.digest)}`);
  if (typeof desc.size !== 'number' || !Number.isSafeInteger(desc.size) || desc.size < 0) throw fail(what, `descriptor ${desc.digest} with invalid size ${JSON.stringify(desc.size)}`);
  return desc as unknown as Descriptor;
}

function checkSchema(what: string, doc: Record<string, unknown>, mediaType: string | undefined, allowed: string[]): void {
  if (doc.schemaVersion !== 2) throw fail(what, `schemaVersion ${JSON.stringify(doc.schemaVersion)}, want 2`);
  if (doc.mediaType !== undefined && !allowed.includes(doc.mediaType as string)) throw fail(what, `mediaType ${JSON.stringify(doc.mediaType)} is not one of ${allowed.join(', ')}`);
  if (mediaType && doc.mediaType !== undefined && doc.mediaType !== mediaType) throw fail(what, `mediaType ${JSON.stringify(doc.mediaType)} differs from its descriptor's ${JSON.stringify(mediaType)}`);
}

/** Parses an OCI index or Docker manifest list. `mediaType` is the descriptor's, when known. */
export function parseIndex(data: Uint8Array | string, mediaType?: string): ImageIndex {
  const what = 'image index';
  const doc = parseJson(what, data);
  checkSchema(what, doc, mediaType, [MediaType.OciIndex, MediaType.DockerManifestList]);
  if (mediaType === MediaType.DockerManifestList && doc.mediaType === undefined) throw fail(what, 'Docker manifest list without mediaType');
  if (!Array.isArray(doc.manifests)) throw fail(what, 'missing manifests array');
  doc.manifests.forEach((m) => checkDescriptor(what, m));
  return doc as unknown as ImageIndex;
}

/** Parses an OCI image manifest or Docker schema2 manifest; unknown config or layer types are refused. */
export function parseManifest(data: Uint8Array | string, mediaType?: string): ImageManifest {
  const what = 'image manifest';
  const doc = parseJson(what, data);
  if (doc.schemaVersion === 1) throw errNotImplemented('Docker schema1 manifests are not supported');
  checkSchema(what, doc, mediaType, [MediaType.OciManifest, MediaType.DockerManifest]);
  if (mediaType === MediaType.DockerManifest && doc.mediaType === undefined) throw fail(what, 'Docker schema2 manifest without mediaType');
  if (doc.config === undefined) throw fail(what, 'missing config');
  const config = checkDescriptor(what, doc.config);
  if (!isConfigType(config.mediaType)) throw errNotImplemented(`${what}: unknown config media type ${JSON.stringify(config.mediaType)}`);
  if (!Array.isArray(doc.layers)) throw fail(what, 'missing layers array');
  for (const l of doc.layers) {
    const layer = checkDescriptor(what, l);
    if (!isLayerType(layer.mediaType)) throw errNotImplemented(`${what}: unknown layer media type ${JSON.stringify(layer.mediaType)}`);
  }
  return doc as unknown as ImageManifest;
}

/** Parses an image config: os, architecture and rootfs.diff_ids are required. */
export function parseConfig(data: Uint8Array | string): ImageConfig {
  const what = 'image config';
  const doc = parseJson(what, data);
  if (typeof doc.os !== 'string' || !doc.os) throw fail(what, 'missing os');
  if (typeof doc.architecture !== 'string' || !doc.architecture) throw fail(what, 'missing architecture');
  const rootfs = doc.rootfs as Record<string, unknown> | undefined;
  if (typeof rootfs !== 'object' || rootfs === null) throw fail(what, 'missing rootfs');
  if (rootfs.type !== 'layers') throw fail(what, `rootfs.type ${JSON.stringify(rootfs.type)}, want "layers"`);
  if (!Array.isArray(rootfs.diff_ids)) throw fail(what, 'missing rootfs.diff_ids');
  for (const id of rootfs.diff_ids) if (typeof id !== 'string' || !isDigest(id)) throw fail(what, `invalid diff_id ${JSON.stringify(id)}`);
  return doc as ImageConfig;
}

/** Refuses a manifest whose layers do not pair one to one with the config's diff_ids. */
export function checkLayersMatchConfig(manifest: ImageManifest, config: ImageConfig, manifestDigest = ''): void {
  const n = manifest.layers.length;
  const m = config.rootfs.diff_ids.length;
  if (n !== m) throw errInvalidArgument(`image manifest ${manifestDigest}: ${n} layers but the config lists ${m} diff_ids`.replace('  ', ' '));
}

export function configPlatform(config: ImageConfig): Platform {
  return {
    os: config.os, architecture: config.architecture,
    ...(config.variant ? { variant: config.variant } : {}),
    ...(config['os.version'] ? { 'os.version': config['os.version'] } : {}),
  };
}

/** Decides index vs manifest from the media type (or the document itself when the type is missing). */
export function documentKind(mediaType: string, data?: Uint8Array): 'index' | 'manifest' {
  if (isIndexType(mediaType)) return 'index';
  if (isManifestType(mediaType)) return 'manifest';
  if (data && (mediaType === '' || mediaType === 'application/json')) {
    const doc = parseJson('manifest document', data);
    if (Array.isArray(doc.manifests)) return 'index';
    if (doc.config !== undefined) return 'manifest';
  }
  throw errNotImplemented(`unknown manifest media type ${JSON.stringify(mediaType)}`);
}
