// Unpacking an image into a snapshotter, as containerd's unpacker: layers bottom to top, each in a snapshot
// named by its chain ID. A layer whose snapshot exists is skipped; otherwise an extract-<random> snapshot is
// prepared on the parent, mounted, the blob decompressed and applied, its diff ID checked against the
// config, and the snapshot committed under the chain ID. Any failure removes the active snapshot. The config
// blob gets containerd's GC label pointing at the top snapshot, so the unpacked image is kept with the image.
import { randomBytes } from 'node:crypto';
import { BerthError, ErrorCode, isAlreadyExists, isNotFound } from '../../api/errdefs.ts';
import type { ContentStore, Descriptor } from '../../content/types.ts';
import type { Snapshotter } from '../../snapshotters/types.ts';
import { blobStream, type ResolvedManifest } from '../images/image.ts';
import { decompressStream } from '../images/compression.ts';
import { layerCompressionOf } from '../images/mediatypes.ts';
import { applyToMounts } from './apply-mounts.ts';

export interface UnpackOptions {
  content: ContentStore;
  snapshotter: Snapshotter;
  snapshotterName: string;
  /** Scratch directory for temporary mounts. */
  scratch: string;
  onLayer?: (layer: Descriptor, status: 'unpacking' | 'unpacked' | 'skipped') => void;
}

export interface UnpackResult {
  chainId: string;
  unpacked: number;
  skipped: number;
}

export async function unpackManifest(image: ResolvedManifest, o: UnpackOptions): Promise<UnpackResult> {
  let parent: string | undefined;
  let unpacked = 0;
  let skipped = 0;
  for (const layer of image.layers) {
    const exists = await o.snapshotter.stat(layer.chainId).then((i) => i.kind === 'committed', (err) => { if (isNotFound(err)) return false; throw err; });
    if (exists) {
      skipped++;
      o.onLayer?.(layer.descriptor, 'skipped');
      parent = layer.chainId;
      continue;
    }
    o.onLayer?.(layer.descriptor, 'unpacking');
    const key = `extract-${randomBytes(6).toString('hex')} ${layer.chainId}`;
    const mounts = await o.snapshotter.prepare(key, parent);
    try {
      const result = await applyToMounts(mounts,
        () => decompressStream(blobStream(o.content, layer.descriptor.digest), layerCompressionOf(layer.descriptor.mediaType)), o.scratch);
      if (result.diffId !== layer.diffId) {
        throw new BerthError(ErrorCode.FailedPrecondition, `layer ${layer.descriptor.digest}: its content has diff ID ${result.diffId}, the image config says ${layer.diffId}`);
      }
      try {
        await o.snapshotter.commit(layer.chainId, key);
      } catch (err) {
        // Unpacked concurrently by someone else: theirs is as good as ours.
        if (!isAlreadyExists(err)) throw err;
        await o.snapshotter.remove(key);
      }
    } catch (err) {
      await o.snapshotter.remove(key).catch(() => undefined);
      throw err;
    }
    unpacked++;
    o.onLayer?.(layer.descriptor, 'unpacked');
    parent = layer.chainId;
  }
  const top = image.layers.at(-1)?.chainId ?? '';
  const label = `containerd.io/gc.ref.snapshot.${o.snapshotterName}`;
  await o.content.update({ digest: image.manifest.config.digest, labels: { [label]: top } }, [`labels.${label}`]);
  return { chainId: top, unpacked, skipped };
}
