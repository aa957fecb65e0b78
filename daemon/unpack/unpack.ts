// Unpacking an image into a snapshotter, as containerd's unpacker: layers bottom to top, each in a snapshot
// named by its chain ID. A layer whose snapshot exists is skipped; otherwise an extract-<random> snapshot is
// prepared on the parent, the blob decompressed and applied, its diff ID checked against the config, and the
// snapshot committed under the chain ID. Any failure removes the active snapshot. The config blob gets
// containerd's GC label pointing at the top snapshot, so the unpacked image is kept with the image.
//
// With `stageInParallel` (an overlay snapshotter, whose layers are independent upper directories), missing
// layers are first applied side by side into scratch directories on the same filesystem, then moved into their
// snapshots in order with a rename: decompression and file creation of several layers overlap.
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, renameSync, rmSync, rmdirSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { BerthError, ErrorCode, isAlreadyExists, isNotFound } from '../../api/errdefs.ts';
import type { Mount } from '../../api/mount.ts';
import type { ContentStore, Descriptor } from '../../content/types.ts';
import type { Snapshotter } from '../../snapshotters/types.ts';
import { blobStream, type LayerInfo, type ResolvedManifest } from '../images/image.ts';
import { layerCompressionOf } from '../images/mediatypes.ts';
import { mapLimit } from '../remotes/pull.ts';
import { applyLayer, applyingLayer, type ApplyResult } from './apply-layer.ts';
import { applyToMounts } from './apply-mounts.ts';

/**
 * Stages layers while they download (an overlay snapshotter only): each layer's compressed stream, as the puller
 * hands it over, is decompressed and applied into a scratch directory; unpackManifest then moves the staged
 * trees into their snapshots. Fetch and apply overlap instead of following each other.
 */
export class LayerStager {
  readonly staged = new Map<string, string>();

  constructor(private readonly o: UnpackOptions) {}

  /** The puller's onLayerData hook for `layer`: consumes `data` whatever happens. */
  async stage(layer: LayerInfo, data: Readable): Promise<void> {
    const exists = await this.o.snapshotter.stat(layer.chainId).then((i) => i.kind === 'committed', () => false);
    if (exists || this.staged.has(layer.chainId)) { data.resume(); return; }
    await stageLayer(this.o, this.staged, layer, data);
  }

  /** Removes whatever was staged and not moved into a snapshot. */
  discard(): void {
    for (const dir of this.staged.values()) rmSync(dir, { recursive: true, force: true });
    this.staged.clear();
  }
}

export interface UnpackOptions {
  content: ContentStore;
  snapshotter: Snapshotter;
  snapshotterName: string;
  /** Scratch directory for temporary mounts and staged layers (on the snapshotter's filesystem). */
  scratch: string;
  /** Apply missing layers concurrently into scratch directories first (overlay snapshotters). */
  stageInParallel?: boolean;
  /** Layers already staged while they downloaded (LayerStager): moved into their snapshots, not applied again. */
  stager?: LayerStager;
  onLayer?: (layer: Descriptor, status: 'unpacking' | 'unpacked' | 'skipped') => void;
}

export interface UnpackResult {
  chainId: string;
  unpacked: number;
  skipped: number;
}

const STAGE_CONCURRENCY = 3;

function checkDiffId(layer: LayerInfo, result: ApplyResult): void {
  if (result.diffId !== layer.diffId) {
    throw new BerthError(ErrorCode.FailedPrecondition, `layer ${layer.descriptor.digest}: its content has diff ID ${result.diffId}, the image config says ${layer.diffId}`);
  }
}

/** Applies `layer` (its blob, as stored) into a fresh scratch directory, recorded in `staged` by chain ID. */
async function stageLayer(o: UnpackOptions, staged: Map<string, string>, layer: LayerInfo, blob: Readable): Promise<void> {
  mkdirSync(o.scratch, { recursive: true });
  const dir = mkdtempSync(`${o.scratch}/layer-`);
  staged.set(layer.chainId, dir);
  o.onLayer?.(layer.descriptor, 'unpacking');
  const compression = layerCompressionOf(layer.descriptor.mediaType);
  checkDiffId(layer, await applyingLayer(layer.descriptor.digest, compression, () => applyLayer(blob, dir, { compression, overlayUpper: true })));
}

/** The directory a fresh snapshot's own files live in: an overlay's upper dir, or a rw bind's source. */
function ownDir(mounts: Mount[]): string | undefined {
  if (mounts.length !== 1) return undefined;
  const m = mounts[0]!;
  if (m.type === 'overlay') return m.options.find((o) => o.startsWith('upperdir='))?.slice('upperdir='.length);
  return m.type === 'bind' && !m.options.includes('ro') ? m.source : undefined;
}

export async function unpackManifest(image: ResolvedManifest, o: UnpackOptions): Promise<UnpackResult> {
  const present = await Promise.all(image.layers.map((l) =>
    o.snapshotter.stat(l.chainId).then((i) => i.kind === 'committed', (err) => { if (isNotFound(err)) return false; throw err; })));
  const missing = image.layers.filter((_, i) => !present[i]);
  const staged = o.stager?.staged ?? new Map<string, string>();
  try {
    const toStage = missing.filter((l) => !staged.has(l.chainId));
    if (o.stageInParallel && toStage.length > 1) {
      await mapLimit(toStage, STAGE_CONCURRENCY, (layer) => stageLayer(o, staged, layer, blobStream(o.content, layer.descriptor.digest)));
    }
    let parent: string | undefined;
    let unpacked = 0;
    image.layers.forEach((l, i) => { if (present[i]) o.onLayer?.(l.descriptor, 'skipped'); });
    for (const [i, layer] of image.layers.entries()) {
      if (present[i]) { parent = layer.chainId; continue; }
      const key = `extract-${randomBytes(6).toString('hex')} ${layer.chainId}`;
      const mounts = await o.snapshotter.prepare(key, parent);
      try {
        const stage = staged.get(layer.chainId);
        const target = stage ? ownDir(mounts) : undefined;
        if (stage && target) {
          // The staged tree takes the place of the snapshot's empty directory, keeping its owner and mode.
          const st = statSync(target);
          chmodSync(stage, st.mode & 0o7777);
          chownSync(stage, st.uid, st.gid);
          rmdirSync(target);
          renameSync(stage, target);
          staged.delete(layer.chainId);
        } else {
          if (!stage) o.onLayer?.(layer.descriptor, 'unpacking');
          const blob = () => blobStream(o.content, layer.descriptor.digest);
          const compression = layerCompressionOf(layer.descriptor.mediaType);
          checkDiffId(layer, await applyingLayer(layer.descriptor.digest, compression, () => applyToMounts(mounts, blob, compression, o.scratch)));
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
    return { chainId: top, unpacked, skipped: image.layers.length - missing.length };
  } finally {
    for (const dir of staged.values()) rmSync(dir, { recursive: true, force: true });
  }
}
