// Pulling an image into a content store: resolve, read and validate the whole manifest tree first (nothing is
// written if any document is bad), then fetch layers in parallel, then store configs, manifests and the index
// with the labels containerd sets (GC references to children, distribution source).
import type { Readable } from 'node:stream';
import type { Digest } from '../../api/digest.ts';
import { errNotFound } from '../../api/errdefs.ts';
import type { ContentStore, Descriptor, Platform } from '../../content/types.ts';
import {
  type ImageRecord, type LayerInfo, type ResolvedManifest, blobStream, chainIds, childGcLabels, childrenOf, distributionSourceKey, distributionSourceLabel,
} from '../images/image.ts';
import { checkLayersMatchConfig, configPlatform, parseConfig, parseIndex, parseManifest } from '../images/manifest.ts';
import { isIndexType, isManifestType } from '../images/mediatypes.ts';
import { type PlatformMatcher, formatPlatform, hostPlatform, normalizePlatform, onlyPlatform } from '../images/platforms.ts';
import { type FetchedFunc, type ProgressFunc, fetchBytes, fetchToStore, writeBlob } from './fetcher.ts';
import type { ResolverOptions } from './registry.ts';
import { MAX_MANIFEST_SIZE, resolve } from './resolver.ts';

export interface PullOptions extends ResolverOptions {
  store: ContentStore;
  /** 'all', or the platforms wanted (the best match of each is pulled); default: the host's platform. */
  platforms?: 'all' | Platform[];
  /** Layers fetched at once; default 4. */
  concurrency?: number;
  onProgress?: ProgressFunc;
  /** Told of every chunk received from the registry. */
  onFetched?: FetchedFunc;
  /** Called once per manifest layer as soon as its blob is committed (and onLayerData, if any, is done). */
  onLayer?: (layer: PulledLayer) => void | Promise<void>;
  /**
   * Streaming unpack hook, once per manifest layer: the compressed bytes, live while they download when this
   * is the layer's first download, else from the store. The stream ends only after the blob is verified and
   * committed and is destroyed with the error otherwise; a rejection fails the pull. Layers arrive in
   * parallel: a consumer applying layer i waits for its parent itself.
   */
  onLayerData?: (layer: PulledLayer, data: Readable) => Promise<void>;
}

export interface PulledLayer extends LayerInfo {
  /** Position of the layer in its manifest. */
  index: number;
  manifest: Descriptor;
  platform: Platform;
}

export interface PullResult {
  image: ImageRecord;
  /** The platform images pulled, in the order requested (the first is what a run on this host uses). */
  manifests: ResolvedManifest[];
}

interface Document { desc: Descriptor; data: Buffer; children: Descriptor[] }

const isAttestation = (d: Descriptor) => d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest';

/**
 * Runs `fn` over `items` with at most `limit` running at once. After the first failure nothing new starts;
 * the ones running are waited for (so nothing still writes after the call returns), then the error is thrown.
 */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !failed) {
      const i = next++;
      try { results[i] = await fn(items[i]!); } catch (e) { failed = true; throw e; }
    }
  };
  const settled = await Promise.allSettled(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (rejected) throw rejected.reason;
  return results;
}

function selectChildren(children: Descriptor[], wanted: PlatformMatcher[] | 'all'): Descriptor[] {
  const candidates = children.filter((c) => (isManifestType(c.mediaType) || isIndexType(c.mediaType)) && !isAttestation(c));
  if (wanted === 'all') return candidates;
  const picked = new Set<Descriptor>();
  for (const m of wanted) {
    const best = candidates.filter((c) => !c.platform || m.match(c.platform))
      .sort((a, b) => (a.platform ? m.rank(a.platform) : 1e9) - (b.platform ? m.rank(b.platform) : 1e9))[0];
    if (best) picked.add(best);
  }
  return [...picked];
}

export async function pullImage(ref: string, opts: PullOptions): Promise<PullResult> {
  const { store } = opts;
  const resolved = await resolve(ref, opts);
  const repo = resolved.repository;
  const requested = opts.platforms ?? [hostPlatform()];
  const wanted = requested === 'all' ? 'all' : requested.map(onlyPlatform);
  const describeWanted = requested === 'all' ? 'any platform' : requested.map(formatPlatform).join(', ');
  const documents: Document[] = [];
  const manifests: ResolvedManifest[] = [];

  // 1. Read and validate every index, manifest and config, in memory.
  const plan = async (desc: Descriptor): Promise<void> => {
    const data = await fetchBytes(repo, desc, MAX_MANIFEST_SIZE, opts.onFetched);
    if (isIndexType(desc.mediaType)) {
      parseIndex(data, desc.mediaType);
      documents.push({ desc, data, children: childrenOf(desc, data) });
      const selected = selectChildren(childrenOf(desc, data), wanted);
      if (!selected.length) throw errNotFound(`${resolved.name}: no manifest for ${describeWanted}`);
      for (const child of selected) await plan(child);
      return;
    }
    const manifest = parseManifest(data, desc.mediaType);
    const configData = await fetchBytes(repo, manifest.config, undefined, opts.onFetched);
    const config = parseConfig(configData);
    const platform = normalizePlatform(configPlatform(config));
    if (wanted !== 'all' && desc === resolved.descriptor && !wanted.some((m) => m.match(platform))) {
      throw errNotFound(`${resolved.name}: image is for ${formatPlatform(platform)}, not ${describeWanted}`);
    }
    checkLayersMatchConfig(manifest, config, desc.digest);
    // Pushed parent first: the list is stored in reverse, children before parents.
    documents.push({ desc, data, children: childrenOf(desc, data) });
    documents.push({ desc: manifest.config, data: configData, children: [] });
    const chains = chainIds(config.rootfs.diff_ids);
    manifests.push({
      descriptor: desc, manifest, config, platform,
      layers: manifest.layers.map((l, i) => ({ descriptor: l, diffId: config.rootfs.diff_ids[i] as Digest, chainId: chains[i]! })),
    });
  };
  await plan(resolved.descriptor);

  const labelSource = async (digest: Digest) => {
    const info = await store.info(digest);
    const [key, value] = distributionSourceLabel(repo.host, repo.path, info.labels[distributionSourceKey(repo.host)]);
    await store.update({ digest, labels: { [key]: value } }, [`labels.${key}`]);
  };

  // 2. Layers, in parallel, each fetched once however many manifests share it.
  const jobs = new Map<Digest, Promise<void>>();
  const work = manifests.flatMap((m) => m.layers.map((layer, index) => ({ m, layer, index })));
  await mapLimit(work, opts.concurrency ?? 4, async ({ m, layer, index }) => {
    const pulled: PulledLayer = { ...layer, index, manifest: m.descriptor, platform: m.platform };
    const digest = layer.descriptor.digest;
    let job = jobs.get(digest);
    const live = !job;
    if (!job) {
      const sink = opts.onLayerData && ((data: Readable) => opts.onLayerData!(pulled, data));
      job = fetchToStore(store, repo, layer.descriptor, { onProgress: opts.onProgress, onFetched: opts.onFetched, sink }).then(() => labelSource(digest));
      jobs.set(digest, job);
    }
    await job;
    if (!live && opts.onLayerData) await opts.onLayerData(pulled, blobStream(store, digest));
    await opts.onLayer?.(pulled);
  });

  // 3. Configs, manifests, then indexes: a parent is stored only once its children are.
  for (const doc of documents.reverse()) {
    await writeBlob(store, doc.desc, doc.data);
    const gc = childGcLabels(doc.children);
    if (Object.keys(gc).length) await store.update({ digest: doc.desc.digest, labels: gc }, Object.keys(gc).map((k) => `labels.${k}`));
    await labelSource(doc.desc.digest);
  }
  return { image: { name: resolved.name, target: resolved.descriptor }, manifests };
}
