// Importing tar archives into a content store: OCI image layouts (index.json, blobs/) and `docker save`
// archives (manifest.json, <config>.json, layer tars). Every blob is streamed into the store and checked
// (OCI blobs against their file names, uncompressed docker layers against the config's diff_ids); when the
// archive is bad, the blobs this import added are removed again.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { isDigest } from '../../api/digest.ts';
import { BerthError, errInvalidArgument, isAlreadyExists } from '../../api/errdefs.ts';
import { formatReference, parseNormalizedReference } from '../../api/reference.ts';
import type { ContentStore, Descriptor } from '../../content/types.ts';
import { sniffCompression } from './compression.ts';
import { type ImageRecord, childGcLabels, childrenOf, readBlob } from './image.ts';
import { checkLayersMatchConfig, parseConfig, parseIndex, parseManifest } from './manifest.ts';
import { MediaType, isIndexType, layerMediaType } from './mediatypes.ts';

export interface ImportOptions {
  /** Names images whose OCI ref.name is only a tag ("latest" → `<baseName>:latest`). */
  baseName?: string;
}

interface Stored { digest: string; size: number; head: Buffer }

const MAX_METADATA = 16 << 20;
const isMetadata = (name: string) => name === 'index.json' || name === 'oci-layout' || name === 'manifest.json' || name === 'repositories' || (name.endsWith('.json') && !name.includes('/'));

/** Streams one archive entry into the store; returns its digest, size and first bytes. */
async function storeEntry(store: ContentStore, entry: Readable, added: Set<string>): Promise<Stored> {
  const writer = await store.writer({ ref: `import-${randomBytes(8).toString('hex')}` });
  let size = 0;
  let head = Buffer.alloc(0);
  try {
    for await (const chunk of entry as AsyncIterable<Buffer>) {
      if (head.length < 8) head = Buffer.concat([head, chunk.subarray(0, 8 - head.length)]);
      await writer.write(chunk);
      size += chunk.length;
    }
    const digest = writer.digest();
    try {
      await writer.commit(size, digest);
      added.add(digest);
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
    }
    return { digest, size, head };
  } catch (e) {
    await writer.close().catch(() => {});
    await store.abort(writer.ref).catch(() => {});
    throw e;
  }
}

async function readArchive(store: ContentStore, input: Readable, added: Set<string>) {
  const metadata = new Map<string, Buffer>();
  const blobs = new Map<string, Stored>();
  const extract = tar.extract();
  input.on('error', (e) => extract.destroy(e));
  input.pipe(extract);
  try {
    for await (const entry of extract) {
      const name = entry.header.name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
      if (entry.header.type !== 'file') { entry.resume(); continue; }
      if (isMetadata(name) && (entry.header.size ?? 0) <= MAX_METADATA) {
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        metadata.set(name, Buffer.concat(chunks));
        if (name.endsWith('.json') && name !== 'index.json' && name !== 'manifest.json') {
          blobs.set(name, await storeEntry(store, Readable.from([metadata.get(name)!]), added));
        }
      } else {
        blobs.set(name, await storeEntry(store, entry as unknown as Readable, added));
      }
    }
  } catch (e) {
    if (e instanceof BerthError) throw e;
    throw errInvalidArgument(`import: not a readable tar archive (${(e as Error).message})`, e);
  }
  return { metadata, blobs };
}

function json<T>(metadata: Map<string, Buffer>, name: string): T {
  try { return JSON.parse(metadata.get(name)!.toString('utf8')) as T; } catch (e) { throw errInvalidArgument(`import: ${name} is not valid JSON (${(e as Error).message})`); }
}

async function labelChildren(store: ContentStore, desc: Descriptor, data: Buffer): Promise<void> {
  const labels = childGcLabels(childrenOf(desc, data));
  if (Object.keys(labels).length) await store.update({ digest: desc.digest, labels }, Object.keys(labels).map((k) => `labels.${k}`));
}

async function importOci(store: ContentStore, metadata: Map<string, Buffer>, blobs: Map<string, Stored>, opts: ImportOptions): Promise<ImageRecord[]> {
  for (const [path, b] of blobs) {
    const m = /^blobs\/([a-z0-9]+)\/([a-f0-9]+)$/.exec(path);
    if (m && `${m[1]}:${m[2]}` !== b.digest) throw errInvalidArgument(`import: ${path} holds content with digest ${b.digest}`);
  }
  const index = parseIndex(metadata.get('index.json')!, MediaType.OciIndex);
  const images: ImageRecord[] = [];
  for (const target of index.manifests) {
    const present = (d: Descriptor) => blobs.get(`blobs/sha256/${d.digest.slice(7)}`);
    if (!present(target)) throw errInvalidArgument(`import: index.json names ${target.digest}, which is not in the archive`);
    // Index entries may be missing (an export of some platforms only); a manifest's children may not.
    const visit = async (desc: Descriptor): Promise<void> => {
      const data = await readBlob(store, desc);
      if (isIndexType(desc.mediaType)) {
        for (const c of childrenOf(desc, data)) if (present(c)) await visit(c);
      } else {
        const manifest = parseManifest(data, desc.mediaType);
        for (const c of childrenOf(desc, data)) if (!present(c)) throw errInvalidArgument(`${desc.digest} needs ${c.digest}, which is not in the archive`);
        checkLayersMatchConfig(manifest, parseConfig(await readBlob(store, manifest.config)), desc.digest);
      }
      await labelChildren(store, desc, data);
    };
    await visit(target).catch((e) => {
      throw errInvalidArgument(`import: image ${target.digest}: ${(e as Error).message}`, e);
    });
    const annotations = target.annotations ?? {};
    const ref = annotations['io.containerd.image.name'] ?? annotations['org.opencontainers.image.ref.name'];
    let name = target.digest;
    if (ref && /[/:@]/.test(ref)) name = formatReference(parseNormalizedReference(ref));
    else if (ref && opts.baseName) name = formatReference(parseNormalizedReference(`${opts.baseName}:${ref}`));
    const { annotations: _, ...plain } = target;
    images.push({ name, target: plain });
  }
  return images;
}

interface DockerEntry { Config?: string; RepoTags?: string[] | null; Layers?: string[] }

async function importDocker(store: ContentStore, metadata: Map<string, Buffer>, blobs: Map<string, Stored>, added: Set<string>): Promise<ImageRecord[]> {
  const entries = json<DockerEntry[]>(metadata, 'manifest.json');
  if (!Array.isArray(entries)) throw errInvalidArgument('import: manifest.json is not a list');
  const images: ImageRecord[] = [];
  for (const [i, entry] of entries.entries()) {
    const configBlob = entry.Config ? blobs.get(entry.Config) : undefined;
    if (!configBlob) throw errInvalidArgument(`import: manifest.json entry ${i}: config ${JSON.stringify(entry.Config)} is not in the archive`);
    const configData = metadata.get(entry.Config!);
    if (!configData) throw errInvalidArgument(`import: manifest.json entry ${i}: config ${entry.Config} is larger than ${MAX_METADATA} bytes`);
    const config = parseConfig(configData);
    const layers = (entry.Layers ?? []).map((path) => {
      const b = blobs.get(path);
      if (!b) throw errInvalidArgument(`import: manifest.json entry ${i}: layer ${JSON.stringify(path)} is not in the archive`);
      const compression = sniffCompression(b.head);
      return { mediaType: layerMediaType(compression, true), digest: b.digest, size: b.size, compression };
    });
    const manifestDoc = {
      schemaVersion: 2, mediaType: MediaType.DockerManifest,
      config: { mediaType: MediaType.DockerConfig, digest: configBlob.digest, size: configBlob.size },
      layers: layers.map(({ compression: _, ...d }) => d),
    };
    checkLayersMatchConfig(manifestDoc as never, config, `in manifest.json entry ${i}`);
    layers.forEach((l, n) => {
      const diffId = config.rootfs.diff_ids[n]!;
      if (l.compression === 'none' && l.digest !== diffId) throw errInvalidArgument(`import: layer ${entry.Layers![n]} has digest ${l.digest} but the config's diff_id ${n} is ${diffId}`);
    });
    const data = Buffer.from(JSON.stringify(manifestDoc));
    const stored = await storeEntry(store, Readable.from([data]), added);
    const target: Descriptor = { mediaType: MediaType.DockerManifest, digest: stored.digest, size: stored.size };
    await labelChildren(store, target, data);
    const tags = entry.RepoTags ?? [];
    if (!tags.length) images.push({ name: target.digest, target });
    for (const tag of tags) images.push({ name: formatReference(parseNormalizedReference(tag)), target });
  }
  return images;
}

/**
 * Imports an OCI image-layout archive or a `docker save` archive (detected from index.json / manifest.json)
 * into the store. Returns one image record per name; untagged images are named by their target digest.
 */
export async function importArchive(store: ContentStore, input: Readable, opts: ImportOptions = {}): Promise<ImageRecord[]> {
  const added = new Set<string>();
  try {
    const { metadata, blobs } = await readArchive(store, input, added);
    if (metadata.has('index.json')) {
      const layout = metadata.has('oci-layout') ? json<{ imageLayoutVersion?: string }>(metadata, 'oci-layout') : undefined;
      if (layout && layout.imageLayoutVersion !== '1.0.0') throw errInvalidArgument(`import: unsupported imageLayoutVersion ${JSON.stringify(layout.imageLayoutVersion)}`);
      return await importOci(store, metadata, blobs, opts);
    }
    if (metadata.has('manifest.json')) return await importDocker(store, metadata, blobs, added);
    throw errInvalidArgument('import: archive has neither index.json (OCI layout) nor manifest.json (docker save)');
  } catch (e) {
    for (const digest of added) if (isDigest(digest)) await store.delete(digest).catch(() => {});
    throw e;
  }
}
