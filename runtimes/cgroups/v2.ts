// The cgroup v2 manager: one directory in the unified hierarchy. Used alone on pure v2 hosts and, for the
// unified part, by the hybrid manager.
import { existsSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import { errFailedPrecondition, errUnavailable } from '../../api/errdefs.ts';
import { joinProcess, makeDirs, removeDirs, signalEach, signalNumber } from './common.ts';
import {
  fileExists, procsInTree, readKeyed, readOptional, removeCgroupDirs, writeValue,
} from './files.ts';
import { unifiedDir } from './layout.ts';
import { registerCgroupBackend, type CgroupTarget } from './registry.ts';
import type { CgroupManager, CgroupStats, LinuxResources } from './types.ts';
import { applyV2, controllersOf } from './v2-apply.ts';
import { hostCgroupDir } from './v2-dir.ts';
import { v2Stats } from './v2-stats.ts';
import { validateResources } from './validate.ts';
import { waitFor, waitForSync } from './wait.ts';

const FREEZE_TIMEOUT_MS = 5000;

export class V2Cgroup implements CgroupManager {
  readonly cgroupsPath: string;
  readonly paths: Readonly<Record<string, string>>;
  readonly dir: string;
  private readonly mountPoint: string;

  constructor(target: CgroupTarget) {
    const dir = unifiedDir(target.layout, target.cgroupsPath, target.own);
    if (!dir || !target.layout.unified) throw errUnavailable('cgroup v2: no cgroup2 hierarchy is mounted');
    this.cgroupsPath = target.cgroupsPath;
    this.dir = dir;
    this.mountPoint = target.layout.unified.mountPoint;
    this.paths = { '': dir };
  }

  create(resources?: LinuxResources): void {
    if (resources) validateResources(resources);
    const created = makeDirs(this.dir);
    try {
      this.enableControllers();
      if (resources) applyV2(hostCgroupDir(this.dir), resources);
    } catch (err) {
      removeDirs(created);
      throw err;
    }
  }

  /**
   * Delegates every available controller down to the container's cgroup: each ancestor below the mount
   * enables in its cgroup.subtree_control what its own cgroup.controllers offers. The container's own
   * directory enables nothing, since its processes live there (v2 forbids processes in inner nodes).
   */
  private enableControllers(): void {
    const levels: string[] = [];
    for (let d = dirname(this.dir); ; d = dirname(d)) {
      levels.unshift(d);
      if (d === this.mountPoint || relative(this.mountPoint, d).startsWith('..') || d === '/') break;
    }
    for (const level of levels) {
      const enabled = new Set((readOptional(level, 'cgroup.subtree_control') ?? '').trim().split(/\s+/));
      for (const c of controllersOf(level)) {
        if (enabled.has(c)) continue;
        try { writeValue(level, 'cgroup.subtree_control', `+${c}`, `controller ${c}`); } catch {
          // A level that holds processes cannot delegate (EBUSY); resources needing the controller then fail
          // with an error naming it, and the rest still works.
        }
      }
    }
  }

  addProcess(pid: number, bornIn?: ReadonlySet<string>): void {
    if (!bornIn?.has(this.dir)) joinProcess(this.dir, pid);
  }

  update(resources: LinuxResources): void {
    validateResources(resources);
    applyV2(hostCgroupDir(this.dir), resources, true);
  }

  async freeze(): Promise<void> {
    this.requireFreezer();
    writeValue(this.dir, 'cgroup.freeze', 1, 'freeze');
    if (!await waitFor(() => this.isFrozen(), FREEZE_TIMEOUT_MS)) {
      writeValue(this.dir, 'cgroup.freeze', 0, 'freeze');
      throw errUnavailable(`cgroup freeze: ${this.dir} did not report frozen within ${FREEZE_TIMEOUT_MS} ms`);
    }
  }

  async thaw(): Promise<void> {
    this.requireFreezer();
    writeValue(this.dir, 'cgroup.freeze', 0, 'thaw');
    if (!await waitFor(() => !this.isFrozen(), FREEZE_TIMEOUT_MS)) {
      throw errUnavailable(`cgroup thaw: ${this.dir} did not report thawed within ${FREEZE_TIMEOUT_MS} ms`);
    }
  }

  private requireFreezer(): void {
    if (!fileExists(this.dir, 'cgroup.freeze')) {
      throw errFailedPrecondition(`cgroup freeze: ${this.dir} has no cgroup.freeze (kernel older than 5.2, or the cgroup is gone)`);
    }
  }

  isFrozen(): boolean {
    return readKeyed(this.dir, 'cgroup.events').frozen === 1;
  }

  pids(): number[] {
    return procsInTree(this.dir);
  }

  stats(): CgroupStats {
    return v2Stats(hostCgroupDir(this.dir));
  }

  oomKillCount(): number {
    return readKeyed(this.dir, 'memory.events').oom_kill ?? 0;
  }

  killAll(signal: number | string): void {
    const sig = signalNumber(signal);
    // cgroup.kill (5.14+) kills the whole subtree atomically, frozen or not, with no fork race.
    if (sig === 9 && fileExists(this.dir, 'cgroup.kill')) {
      writeValue(this.dir, 'cgroup.kill', 1, 'kill');
      return;
    }
    const wasFrozen = this.isFrozen();
    if (!wasFrozen && fileExists(this.dir, 'cgroup.freeze')) {
      writeValue(this.dir, 'cgroup.freeze', 1, 'freeze');
      waitForSync(() => this.isFrozen(), 1000);
    }
    try {
      signalEach(this.pids(), sig);
    } finally {
      if (!wasFrozen && fileExists(this.dir, 'cgroup.freeze')) writeValue(this.dir, 'cgroup.freeze', 0, 'thaw');
    }
  }

  async destroy(): Promise<void> {
    await removeCgroupDirs([this.dir]);
  }

  exists(): boolean {
    return existsSync(this.dir);
  }
}

registerCgroupBackend('v2', (target) => new V2Cgroup(target));
