// A container the shim runs: its bundle, rootfs mounts, backend, init process and exec'd processes.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { removeSoon } from '../api/remove-soon.ts';
import type { Mount } from '../api/mount.ts';
import type { OciRuntime } from '../runtimes/oci-runtime.ts';
import type { ShimProcess } from './process.ts';
import type { CgroupManager } from '../runtimes/cgroups/types.ts';

export class ShimContainer {
  readonly execs = new Map<string, ShimProcess>();
  /** Per-container scratch for pid and exit files (inside the bundle, which containerd removes). */
  readonly stateDir: string;
  /** For OOM events: the container's cgroup, the kills seen so far, the poll timer. */
  cgroup: CgroupManager | undefined;
  oomKills = 0;
  oomWatch: NodeJS.Timeout | undefined;

  constructor(readonly id: string, readonly bundle: string, readonly runtime: OciRuntime, readonly init: ShimProcess,
    readonly rootfs: Mount[]) {
    this.stateDir = ShimContainer.stateDirOf(bundle);
  }

  static stateDirOf(bundle: string): string {
    const dir = join(bundle, '.berth');
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  process(execId: string): ShimProcess | undefined {
    return execId ? this.execs.get(execId) : this.init;
  }

  removeState(): void {
    removeSoon(this.stateDir);
  }
}
