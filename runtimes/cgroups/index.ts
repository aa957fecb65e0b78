// berth's cgroup part: one CgroupManager interface, with a manager per host layout (v1, v2, hybrid) that
// registers itself. Callers use openCgroup and never branch on the layout.
import { errInvalidArgument, errNotImplemented, errUnavailable } from '../../api/errdefs.ts';
import { hostLayout, normalizeCgroupsPath, readProcessCgroups } from './layout.ts';
import { cgroupBackend } from './registry.ts';
import type { CgroupManager } from './types.ts';
import { waitFor } from './wait.ts';
import './v1.ts';
import './v2.ts';
import './hybrid.ts';

export type * from './types.ts';
export { detectCgroupMode, readProcessCgroups, defaultCgroupsPath, normalizeCgroupsPath, parseLayout, hostLayout } from './layout.ts';
export { validateResources, parseCpuList } from './validate.ts';
export { sharesToWeight, blkioWeightToIoWeight, swapToV2 } from './convert.ts';
export { compileDeviceRules } from './devices-bpf.ts';
export { registerCgroupBackend, type CgroupBackend, type CgroupTarget } from './registry.ts';
export { UNLIMITED } from './files.ts';

export interface OpenCgroupOptions {
  /** Used to derive the path when cgroupsPath is empty (runc's default: the id, below the caller's cgroup). */
  containerId?: string;
  /** 'systemd' is refused: berth has no systemd driver. */
  driver?: 'cgroupfs' | 'systemd';
}

/** The manager for `cgroupsPath` (OCI linux.cgroupsPath) on this host. Creates nothing until create(). */
export function openCgroup(cgroupsPath: string, opts: OpenCgroupOptions = {}): CgroupManager {
  if (opts.driver === 'systemd') throw errNotImplemented('cgroup driver "systemd" is not supported; berth manages cgroupfs directly');
  if (typeof cgroupsPath !== 'string') throw errInvalidArgument(`cgroupsPath: ${JSON.stringify(cgroupsPath)} is not a string`);
  const layout = hostLayout();
  const backend = cgroupBackend(layout.mode);
  if (!backend) throw errUnavailable(`no cgroup manager registered for a ${layout.mode} host`);
  return backend({ cgroupsPath: normalizeCgroupsPath(cgroupsPath, opts.containerId), layout, own: readProcessCgroups('self') });
}

/**
 * Removes cgroups left behind by containers that are gone (crashed shim, `delete --force`): any process still
 * inside is killed (thawing first), then every hierarchy's directory is removed. Paths that no longer exist
 * are skipped. Returns the cgroupsPaths that had something to remove.
 */
export async function removeLeftoverCgroups(cgroupsPaths: string[]): Promise<string[]> {
  const removed: string[] = [];
  for (const path of cgroupsPaths) {
    const cg = openCgroup(path);
    if (!cg.exists()) continue;
    if (cg.pids().length > 0) {
      cg.killAll(9);
      await waitFor(() => cg.pids().length === 0, 2000);
    }
    await cg.destroy();
    removed.push(path);
  }
  return removed;
}
