// How big a VM a container gets, from its spec: guest memory is the memory limit plus what the guest itself
// needs (kernel, agent, page cache for the shared directory's metadata); vCPUs follow the CPU quota.
import { availableParallelism } from 'node:os';
import type { Spec } from '../oci/spec.ts';

export interface VmSize {
  memoryMiB: number;
  vcpus: number;
}

/** What the guest kernel and agent take beside the container (measured: ~26 MiB resident with an idle container, of which the memory map grows with the guest; kept with room). */
export const GUEST_OVERHEAD_MIB = 64;
/** A container with no memory limit: guest memory is only allocated as it is touched, so a roomy default costs
 * the host what the guest uses, not its size. */
export const DEFAULT_MEMORY_MIB = 512;
const MIB = 1024 * 1024;

export function vmSizeOf(spec: Pick<Spec, 'linux'> | undefined, defaults: VmSize = { memoryMiB: DEFAULT_MEMORY_MIB, vcpus: 1 }): VmSize {
  const limit = spec?.linux?.resources?.memory?.limit;
  const memoryMiB = limit && limit > 0 ? Math.ceil(limit / MIB) + GUEST_OVERHEAD_MIB : defaults.memoryMiB;
  const cpu = spec?.linux?.resources?.cpu;
  const quota = cpu?.quota && cpu.quota > 0 ? Math.ceil(cpu.quota / (cpu.period || 100000)) : defaults.vcpus;
  return { memoryMiB, vcpus: Math.max(1, Math.min(quota, availableParallelism())) };
}

/** Whether a VM of size `have` can take a container that needs `need`. */
export function fits(need: VmSize, have: VmSize): boolean {
  return need.memoryMiB <= have.memoryMiB && need.vcpus <= have.vcpus;
}
