// Unit conversions between the OCI (cgroup v1 flavoured) values and cgroup v2 files, as runc and crun do them,
// so a config.json means the same on every host.
import { errInvalidArgument } from '../../api/errdefs.ts';

/** cpu.shares [2, 262144] → cpu.weight [1, 10000], linearly; 0 means unset. */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

/** blkio.weight [10, 1000] → io.weight [1, 10000], linearly; 0 means unset. */
export function blkioWeightToIoWeight(weight: number): number {
  if (weight === 0) return 0;
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/**
 * OCI memory.swap is memory+swap (v1 memsw); v2's memory.swap.max is swap alone. Returns the memory.swap.max
 * value to write, or undefined to leave it alone.
 */
export function swapToV2(swap: number | undefined, limit: number | undefined): string | undefined {
  if (swap === undefined || swap === 0) return undefined;
  if (swap === -1) return 'max';
  if (limit === undefined || limit === 0 || limit === -1) {
    throw errInvalidArgument(`linux.resources.memory.swap: ${swap} needs a memory.limit (swap is memory+swap; with no memory limit it has no meaning)`);
  }
  if (swap < limit) {
    throw errInvalidArgument(`linux.resources.memory.swap: ${swap} is below memory.limit ${limit} (swap is memory+swap)`);
  }
  return String(swap - limit);
}

/** -1 → "max" for v2 limit files, other values as they are. */
export function v2Limit(n: number): string {
  return n === -1 ? 'max' : String(n);
}
