// Applying a layer onto a snapshot's mounts the fastest safe way: straight into the directory of a single
// bind mount, straight into the upper directory of a single overlay mount (whiteouts in overlay form),
// otherwise through a temporary mount.
import type { Readable } from 'node:stream';
import { withTempMount } from '../../api/mounting.ts';
import type { Mount } from '../../api/mount.ts';
import type { Compression } from '../images/mediatypes.ts';
import { applyLayer, type ApplyResult } from './apply-layer.ts';

/** Applies the layer blob `blob()` gives (compressed as `compression` says) onto `mounts`. */
export async function applyToMounts(mounts: Mount[], blob: () => Readable, compression: Compression, scratch: string): Promise<ApplyResult> {
  const [m] = mounts;
  if (mounts.length === 1 && m) {
    if ((m.type === 'bind' || m.options.includes('rbind')) && !m.options.includes('ro')) return applyLayer(blob(), m.source, { compression });
    const upper = m.type === 'overlay' ? m.options.find((o) => o.startsWith('upperdir=')) : undefined;
    if (upper) return applyLayer(blob(), upper.slice('upperdir='.length), { compression, overlayUpper: true });
  }
  return withTempMount(mounts, scratch, (dir) => applyLayer(blob(), dir, { compression }));
}
