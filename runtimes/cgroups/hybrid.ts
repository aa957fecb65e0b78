// The hybrid manager: v1 controllers where the host mounts them, plus the cgroup2 hierarchy (usually
// /sys/fs/cgroup/unified) that processes also join. Resources whose controller lives only in cgroup2 here
// (hugetlb, rdma, `unified` keys) are written there.
import { existsSync } from 'node:fs';
import { errFailedPrecondition } from '../../api/errdefs.ts';
import { removeDirs } from './common.ts';
import { removeCgroupDirs } from './files.ts';
import { registerCgroupBackend, type CgroupTarget } from './registry.ts';
import type { CgroupStats, LinuxResources } from './types.ts';
import { V1Cgroup } from './v1.ts';
import { applyV1, type Dirs } from './v1-apply.ts';
import { V2Cgroup } from './v2.ts';
import { applyV2 } from './v2-apply.ts';
import { hostCgroupDir } from './v2-dir.ts';
import { validateResources } from './validate.ts';

/** Splits resources into what the v1 hierarchies take and what goes to the unified hierarchy. */
export function routeResources(r: LinuxResources, v1: Dirs): { v1: LinuxResources; v2: LinuxResources } {
  const { unified, hugepageLimits, rdma, ...rest } = r;
  const v1Part: LinuxResources = rest;
  const v2Part: LinuxResources = {};
  if (unified) v2Part.unified = unified;
  if (hugepageLimits) (v1.has('hugetlb') ? v1Part : v2Part).hugepageLimits = hugepageLimits;
  if (rdma) (v1.has('rdma') ? v1Part : v2Part).rdma = rdma;
  return { v1: v1Part, v2: v2Part };
}

export class HybridCgroup extends V1Cgroup {
  readonly unified: V2Cgroup;
  override readonly paths: Readonly<Record<string, string>>;

  constructor(target: CgroupTarget) {
    super(target);
    this.unified = new V2Cgroup(target);
    this.paths = { ...Object.fromEntries(this.dirs), '': this.unified.dir };
  }

  override create(resources?: LinuxResources): void {
    if (resources) validateResources(resources);
    const unifiedExisted = existsSync(this.unified.dir);
    this.unified.create();
    try {
      super.create(resources);
    } catch (err) {
      if (!unifiedExisted) removeDirs([this.unified.dir]);
      throw err;
    }
  }

  protected override apply(resources: LinuxResources): void {
    // runc refuses unified keys outside a pure cgroup2 host; we take those the cgroup2 side controls here, but a
    // key of a controller mounted as v1 is a configuration that cannot apply.
    for (const key of Object.keys(resources.unified ?? {})) {
      const controller = key.split('.')[0]!;
      if (this.dirs.has(controller)) {
        throw errFailedPrecondition(`invalid configuration: unified.${key}: the ${controller} controller is a cgroup v1 hierarchy on this host`);
      }
    }
    const { v1, v2 } = routeResources(resources, this.dirs);
    applyV1(this.dirs, v1);
    applyV2(hostCgroupDir(this.unified.dir), v2);
  }

  override addProcess(pid: number, bornIn?: ReadonlySet<string>): void {
    super.addProcess(pid, bornIn);
    this.unified.addProcess(pid, bornIn);
  }

  override async freeze(): Promise<void> {
    if (this.dirs.has('freezer')) return super.freeze();
    return this.unified.freeze();
  }

  override async thaw(): Promise<void> {
    if (this.dirs.has('freezer')) return super.thaw();
    return this.unified.thaw();
  }

  override isFrozen(): boolean {
    return this.dirs.has('freezer') ? super.isFrozen() : this.unified.isFrozen();
  }

  override pids(): number[] {
    return [...new Set([...super.pids(), ...this.unified.pids()])].sort((a, b) => a - b);
  }

  override stats(): CgroupStats {
    const out = super.stats();
    const unified = this.unified.stats();
    if (unified.hugetlb && Object.keys(unified.hugetlb).length > 0) out.hugetlb = unified.hugetlb;
    out.cpu ??= unified.cpu;
    return out;
  }

  override killAll(signal: number | string): void {
    // cgroup.kill on the unified side is atomic; the v1 pass catches tasks that joined only v1 hierarchies
    // and thaws a frozen freezer so the kill lands.
    if (signal === 9 || signal === 'SIGKILL' || signal === 'KILL') this.unified.killAll(9);
    super.killAll(signal);
  }

  override async destroy(): Promise<void> {
    await removeCgroupDirs([...this.uniqueDirs(), this.unified.dir]);
  }

  override exists(): boolean {
    return super.exists() || this.unified.exists();
  }
}

registerCgroupBackend('hybrid', (target) => new HybridCgroup(target));
