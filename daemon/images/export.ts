// Exporting images from a content store as tar archives: an OCI image layout (oci-layout, index.json,
// blobs/sha256/...) or a `docker save` archive (manifest.json, repositories, <config>.json, <id>/layer.tar).
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import tar from 'tar-stream';
import { errInvalidArgument } from '../../api/errdefs.ts';
import { familiarReference, parseNormalizedReference } from '../../api/reference.ts';
import type { ContentStore, Descriptor } from '../../content/types.ts';
import { decompressStream } from './compression.ts';
import { type ImageRecord, type ResolvedManifest, blobStream, resolveManifests, walkImage } from './image.ts';
import { layerCompressionOf, MediaType } from './mediatypes.ts';
import { type PlatformMatcher, allPlatforms, defaultPlatformMatcher } from './platforms.ts';

const EPOCH = new Date(0);

async function addEntry(pack: tar.Pack, name: string, data: Buffer | (() => Readable), size?: number): Promise<void> {
  const header = { name, mtime: EPOCH, mode: 0o644, size: Buffer.isBuffer(data) ? data.length : size };
  if (Buffer.isBuffer(data)) {
    await new Promise<void>((resolve, reject) => pack.entry(header, data, (e) => (e ? reject(e) : resolve())));
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const sink = pack.entry(header, (e) => (e ? reject(e) : resolve()));
    const src = data();
    src.on('error', (e) => { sink.destroy(e); reject(e); });
    src.pipe(sink);
  });
}

async function addDir(pack: tar.Pack, name: string): Promise<void> {
  await new Promise<void>((resolve, reject) => pack.entry({ name, type: 'directory', mode: 0o755, mtime: EPOCH }, (e) => (e ? reject(e) : resolve())));
}

/** Runs `fill` on a tar pack piped into `out`, finishing both. */
async function writeArchive(out: Writable, fill: (pack: tar.Pack) => Promise<void>): Promise<void> {
  const pack = tar.pack();
  const piped = new Promise<void>((resolve, reject) => {
    pack.on('error', reject);
    out.on('error', reject);
    out.on('finish', resolve);
    out.on('close', resolve);
  });
  pack.pipe(out);
  try {
    await fill(pack);
    pack.finalize();
  } catch (e) {
    pack.destroy(e as Error);
    throw e;
  }
  await piped;
}

/** The tag part of a name, for org.opencontainers.image.ref.name. */
function refName(name: string): string | undefined {
  try { return parseNormalizedReference(name).tag; } catch { return undefined; }
}

/**
 * Writes an OCI image-layout archive of `images`: every blob below each target that the matcher accepts
 * (default all platforms) and that the store holds. index.json names each image with
 * `io.containerd.image.name` (full name) and `org.opencontainers.image.ref.name` (tag), as containerd does.
 */
export async function exportOciArchive(store: ContentStore, images: ImageRecord[], out: Writable, opts: { platforms?: PlatformMatcher } = {}): Promise<void> {
  if (!images.length) throw errInvalidArgument('export: no images given');
  const blobs = new Map<string, Descriptor>();
  for (const image of images) {
    await walkImage(store, image.target, opts.platforms ?? allPlatforms, async (desc) => {
      try { await store.info(desc.digest); blobs.set(desc.digest, desc); } catch { /* a platform not pulled */ }
    });
  }
  const index = {
    schemaVersion: 2, mediaType: MediaType.OciIndex,
    manifests: images.map((image) => {
      const tag = refName(image.name);
      return { ...image.target, annotations: { ...image.target.annotations, 'io.containerd.image.name': image.name, ...(tag ? { 'org.opencontainers.image.ref.name': tag } : {}) } };
    }),
  };
  await writeArchive(out, async (pack) => {
    await addEntry(pack, 'oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
    await addDir(pack, 'blobs/');
    await addDir(pack, 'blobs/sha256/');
    for (const desc of blobs.values()) await addEntry(pack, `blobs/sha256/${desc.digest.slice(7)}`, () => blobStream(store, desc.digest), desc.size);
    await addEntry(pack, 'index.json', Buffer.from(JSON.stringify(index)));
  });
}

async function countBytes(stream: Readable): Promise<number> {
  let n = 0;
  stream.on('data', (c: Buffer) => { n += c.length; });
  await once(stream, 'end');
  return n;
}

/**
 * Writes a `docker save` archive: one platform per image (default the host's), each layer as an uncompressed
 * `<chainID hex>/layer.tar`, the config as `<hex>.json`, and manifest.json + repositories naming the tags.
 */
export async function exportDockerArchive(store: ContentStore, images: ImageRecord[], out: Writable, opts: { platform?: PlatformMatcher } = {}): Promise<void> {
  if (!images.length) throw errInvalidArgument('export: no images given');
  const entries: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const resolved: ResolvedManifest[] = [];
  for (const image of images) {
    const [m] = await resolveManifests(store, image.target, opts.platform ?? defaultPlatformMatcher());
    const ref = parseNormalizedReference(image.name);
    const familiar = familiarReference({ domain: ref.domain, path: ref.path });
    const layers = m!.layers.map((l) => `${l.chainId.slice(7)}/layer.tar`);
    entries.push({ Config: `${m!.manifest.config.digest.slice(7)}.json`, RepoTags: ref.tag ? [`${familiar}:${ref.tag}`] : [], Layers: layers });
    if (ref.tag && m!.layers.length) (repositories[familiar] ??= {})[ref.tag] = m!.layers[m!.layers.length - 1]!.chainId.slice(7);
    resolved.push(m!);
  }
  await writeArchive(out, async (pack) => {
    const written = new Set<string>();
    for (const m of resolved) {
      const configName = `${m.manifest.config.digest.slice(7)}.json`;
      if (!written.has(configName)) await addEntry(pack, configName, () => blobStream(store, m.manifest.config.digest), m.manifest.config.size);
      written.add(configName);
      for (const l of m.layers) {
        const dir = l.chainId.slice(7);
        if (written.has(dir)) continue;
        written.add(dir);
        const compression = layerCompressionOf(l.descriptor.mediaType);
        const open = () => decompressStream(blobStream(store, l.descriptor.digest), compression);
        // A tar header needs the size up front: count the uncompressed bytes first, then stream them.
        const size = compression === 'none' ? l.descriptor.size : await countBytes(open());
        await addDir(pack, `${dir}/`);
        await addEntry(pack, `${dir}/layer.tar`, open, size);
      }
    }
    await addEntry(pack, 'manifest.json', Buffer.from(JSON.stringify(entries)));
    await addEntry(pack, 'repositories', Buffer.from(JSON.stringify(repositories)));
  });
}
