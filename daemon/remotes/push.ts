// Pushing an image from a content store: blobs first (in parallel, mounted from another repository of the
// same registry when the store knows the blob came from there), then manifests, then the index, then the tag.
import { errInvalidArgument } from '../../api/errdefs.ts';
import { formatReference, parseNormalizedReference } from '../../api/reference.ts';
import type { ContentStore, Descriptor } from '../../content/types.ts';
import { blobStream, distributionSourceKey, distributionSourceLabel, distributionSources, readBlob, walkImage } from '../images/image.ts';
import { isIndexType, isManifestType } from '../images/mediatypes.ts';
import { type PlatformMatcher, allPlatforms } from '../images/platforms.ts';
import { mapLimit } from './pull.ts';
import { type BlobSource, type PushOutcome, pushBlob, pushManifest } from './pusher.ts';
import { Repository, type ResolverOptions } from './registry.ts';

export interface PushOptions extends ResolverOptions {
  store: ContentStore;
  /** What to push: the image's target (index or manifest). */
  target: Descriptor;
  /** Index entries to include; default all. */
  platforms?: PlatformMatcher;
  /** PATCH chunk size; monolithic uploads when absent. */
  chunkSize?: number;
  /** Blobs uploaded at once; default 4. */
  concurrency?: number;
}

export interface PushResult {
  name: string;
  /** What happened to each blob and manifest, by digest. */
  outcomes: Map<string, PushOutcome>;
}

function storeSource(store: ContentStore, desc: Descriptor): BlobSource {
  return { open: (offset, length) => blobStream(store, desc.digest, offset, length) };
}

export async function pushImage(ref: string, opts: PushOptions): Promise<PushResult> {
  const reference = parseNormalizedReference(ref);
  const name = formatReference(reference);
  const repo = new Repository(reference, opts);
  const { store, target } = opts;
  if (!isIndexType(target.mediaType) && !isManifestType(target.mediaType)) {
    throw errInvalidArgument(`pushing ${name}: target ${target.digest} has media type ${target.mediaType}, not a manifest or index`);
  }

  const blobs = new Map<string, Descriptor>();
  const documents: Descriptor[] = [];
  await walkImage(store, target, opts.platforms ?? allPlatforms, (desc) => {
    if (isIndexType(desc.mediaType) || isManifestType(desc.mediaType)) documents.push(desc);
    else blobs.set(desc.digest, desc);
  });

  const outcomes = new Map<string, PushOutcome>();
  await mapLimit([...blobs.values()], opts.concurrency ?? 4, async (desc) => {
    const info = await store.info(desc.digest);
    const outcome = await pushBlob(repo, desc, storeSource(store, desc), {
      mountFrom: distributionSources(info.labels, repo.host), chunkSize: opts.chunkSize,
    });
    outcomes.set(desc.digest, outcome);
  });

  // Children before parents: walk order is parent first, so go backwards. The target goes under the tag.
  for (const desc of documents.reverse()) {
    const data = await readBlob(store, desc);
    const isTarget = desc.digest === target.digest;
    await pushManifest(repo, desc, data, isTarget && reference.tag && !reference.digest ? reference.tag : desc.digest);
    outcomes.set(desc.digest, 'uploaded');
  }

  // Record the new source so later pushes to this registry can mount instead of upload.
  for (const digest of [...blobs.keys(), ...documents.map((d) => d.digest)]) {
    const info = await store.info(digest);
    const [key, value] = distributionSourceLabel(repo.host, repo.path, info.labels[distributionSourceKey(repo.host)]);
    await store.update({ digest, labels: { [key]: value } }, [`labels.${key}`]);
  }
  return { name, outcomes };
}
