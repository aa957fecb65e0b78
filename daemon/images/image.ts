// What an image is in the store: a name pointing at a target descriptor, and the tree below it (index →
// manifests → config + layers). Also the labels containerd puts on that tree so GC keeps it together, and
// the chain IDs that key unpacked snapshots.
import { createHash } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import type { Digest } from '../../api/digest.ts';
import { errFailedPrecondition, errNotFound, isNotFound } from '../../api/errdefs.ts';
import type { ContentStore, Descriptor, Platform } from '../../content/types.ts';
import {
  type ImageConfig, type ImageManifest, checkLayersMatchConfig, configPlatform, documentKind, parseConfig, parseIndex,
  parseManifest,
} from './manifest.ts';
import { blobKind, isConfigType, isLayerType, isManifestType } from './mediatypes.ts';
import { type PlatformMatcher, normalizePlatform } from './platforms.ts';

/** An image record, as containerd's images.Image (metadata lives elsewhere; this is its shape). */
export interface ImageRecord {
  name: string;
  target: Descriptor;
  labels?: Record<string, string>;
}

/** One platform's image below a target: its manifest, config and layers paired with diff and chain IDs. */
export interface ResolvedManifest {
  descriptor: Descriptor;
  manifest: ImageManifest;
  config: ImageConfig;
  platform: Platform;
  layers: LayerInfo[];
}

export interface LayerInfo {
  descriptor: Descriptor;
  /** Digest of the uncompressed tar (config rootfs.diff_ids[i]). */
  diffId: Digest;
  /** Identity of the filesystem after applying layers 0..i: the snapshot key. */
  chainId: Digest;
}

export const GC_CONTENT_PREFIX = 'containerd.io/gc.ref.content.';
export const DISTRIBUTION_SOURCE_PREFIX = 'containerd.io/distribution.source.';

/** Chain IDs for diff IDs: chain[0] = diff[0]; chain[i] = sha256(chain[i-1] + " " + diff[i]). */
export function chainIds(diffIds: Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const id of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? id : 'sha256:' + createHash('sha256').update(`${prev} ${id}`).digest('hex'));
  }
  return out;
}

/** Reads a whole (small) blob, checking the stored size against the descriptor. */
export async function readBlob(store: ContentStore, desc: Descriptor): Promise<Buffer> {
  const reader = await store.reader(desc.digest);
  try {
    if (reader.size !== desc.size) throw errFailedPrecondition(`content ${desc.digest}: stored size ${reader.size}, descriptor says ${desc.size}`);
    return await reader.read(0, reader.size);
  } finally {
    await reader.close();
  }
}

/** A stream of a whole blob, opened lazily; the reader is closed when the stream ends or fails. */
export function blobStream(store: ContentStore, digest: Digest, offset?: number, length?: number): Readable {
  const out = new PassThrough();
  store.reader(digest).then((r) => {
    const s = r.stream(offset, length);
    s.on('end', () => { void r.close(); });
    s.on('error', (e) => { void r.close(); out.destroy(e); });
    s.pipe(out);
  }, (e) => out.destroy(e));
  return out;
}

/** The direct children of a manifest or index document (all of them, before any platform filter). */
export function childrenOf(desc: Descriptor, data: Uint8Array): Descriptor[] {
  if (isConfigType(desc.mediaType) || isLayerType(desc.mediaType)) return [];
  if (documentKind(desc.mediaType, data) === 'index') return parseIndex(data, desc.mediaType).manifests;
  const m = parseManifest(data, desc.mediaType);
  return [m.config, ...m.layers];
}

/**
 * The GC reference labels a parent gets for its children, as containerd's ChildGCLabels +
 * SetChildrenMappedLabels: `.config` for the config, `.l.<i>` for layers, `.m.<i>` for manifests, `.<i>` else.
 */
export function childGcLabels(children: Descriptor[]): Record<string, string> {
  const labels: Record<string, string> = {};
  const counts = new Map<string, number>();
  for (const child of children) {
    const kind = blobKind(child.mediaType);
    let key = GC_CONTENT_PREFIX + (kind === 'config' ? 'config' : kind === 'layer' ? 'l.' : isManifestType(child.mediaType) ? 'm.' : '');
    const n = counts.get(key) ?? 0;
    counts.set(key, n + 1);
    if (n > 0 || key.endsWith('.')) key += n;
    labels[key] = child.digest;
  }
  return labels;
}

/**
 * The label recording where a blob came from, `containerd.io/distribution.source.<host>` (port dropped, as
 * containerd's url.Hostname), whose value is the sorted comma-joined set of repositories.
 */
export function distributionSourceLabel(host: string, repository: string, existing?: string): [string, string] {
  const repos = new Set((existing ?? '').split(',').filter(Boolean));
  repos.add(repository);
  return [distributionSourceKey(host), [...repos].sort().join(',')];
}

export function distributionSourceKey(host: string): string {
  const hostname = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return DISTRIBUTION_SOURCE_PREFIX + hostname;
}

/** The repositories on `host` a blob is known to come from (for cross-repository mounts when pushing). */
export function distributionSources(labels: Record<string, string>, host: string): string[] {
  return (labels[distributionSourceKey(host)] ?? '').split(',').filter(Boolean);
}

/**
 * Visits `target` and, depth first, every descendant present in the store, skipping index entries the matcher
 * refuses. `fn` runs on each descriptor with its bytes when it is a manifest or index.
 */
export async function walkImage(
  store: ContentStore, target: Descriptor, matcher: PlatformMatcher,
  fn: (desc: Descriptor, children: Descriptor[]) => void | Promise<void>,
): Promise<void> {
  const visit = async (desc: Descriptor): Promise<void> => {
    if (isConfigType(desc.mediaType) || isLayerType(desc.mediaType)) return fn(desc, []);
    const data = await readBlob(store, desc);
    let children = childrenOf(desc, data);
    if (documentKind(desc.mediaType, data) === 'index') children = children.filter((c) => !c.platform || matcher.match(c.platform));
    await fn(desc, children);
    for (const c of children) await visit(c);
  };
  await visit(target);
}

/**
 * Every platform image below `target` accepted by the matcher, best first (the first is what a single-platform
 * pull or run uses). Layers are checked against the config's diff_ids.
 */
export async function resolveManifests(store: ContentStore, target: Descriptor, matcher: PlatformMatcher): Promise<ResolvedManifest[]> {
  const found: ResolvedManifest[] = [];
  const visit = async (desc: Descriptor, hinted?: Platform): Promise<void> => {
    let data: Buffer;
    try { data = await readBlob(store, desc); } catch (e) { if (isNotFound(e) && hinted) return; throw e; }
    if (documentKind(desc.mediaType, data) === 'index') {
      for (const m of parseIndex(data, desc.mediaType).manifests) {
        if (m.platform && !matcher.match(m.platform)) continue;
        if (!isManifestType(m.mediaType) && !m.mediaType.includes('index') && !m.mediaType.includes('list')) continue;
        await visit(m, m.platform ?? { os: '', architecture: '' });
      }
      return;
    }
    const manifest = parseManifest(data, desc.mediaType);
    const config = parseConfig(await readBlob(store, manifest.config));
    const platform = normalizePlatform(configPlatform(config));
    if (!matcher.match(platform)) return;
    checkLayersMatchConfig(manifest, config, desc.digest);
    const chains = chainIds(config.rootfs.diff_ids);
    found.push({
      descriptor: desc, manifest, config, platform,
      layers: manifest.layers.map((l, i) => ({ descriptor: l, diffId: config.rootfs.diff_ids[i]!, chainId: chains[i]! })),
    });
  };
  await visit(target);
  if (!found.length) throw errNotFound(`image ${target.digest}: no manifest matches the requested platform`);
  return found.sort((a, b) => matcher.rank(a.platform) - matcher.rank(b.platform));
}
