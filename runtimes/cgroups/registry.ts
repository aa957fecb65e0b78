// Each host layout's manager registers itself here; openCgroup picks the one for the host it runs on.
import type { HostLayout } from './layout.ts';
import type { CgroupManager, CgroupMode } from './types.ts';

export interface CgroupTarget {
  /** Normalized cgroupsPath (absolute, or relative to the caller's cgroup). */
  cgroupsPath: string;
  layout: HostLayout;
  /** The calling process's own cgroups (readProcessCgroups('self')), for relative paths. */
  own: Record<string, string>;
}

export type CgroupBackend = (target: CgroupTarget) => CgroupManager;

const backends = new Map<CgroupMode, CgroupBackend>();

export function registerCgroupBackend(mode: CgroupMode, backend: CgroupBackend): void {
  backends.set(mode, backend);
}

export function cgroupBackend(mode: CgroupMode): CgroupBackend | undefined {
  return backends.get(mode);
}
