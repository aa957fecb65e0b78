// Cgroups made ahead of the next container, with the process that will fork its init already inside (a spare
// monitor's child). Moving a process between cgroups takes cgroup_threadgroup_rwsem for writing, and the first
// such move after a quiet spell waits out an RCU grace period (10-20 ms on this host); a process forked inside
// a cgroup is never moved. So a grouped shim places the spare's child while idle, in sibling directories of the
// last container's cgroups, and renames them into the new container's place when it is created: cgroup v1
// renames a directory within its parent. cgroup2 cannot rename; there the init is cloned into its cgroup
// (CLONE_INTO_CGROUP, see the plan's cgroup2 record), which takes no write lock either.
import { existsSync, readdirSync, renameSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { makeDirs, removeDirs } from './common.ts';
import { removeCgroupDirs } from './files.ts';
import type { CgroupManager } from './types.ts';
import { inheritCpuset } from './v1.ts';
import { applyLastDeviceRules } from './v1-apply.ts';
import { processStartTime } from '../proc.ts';

const PREFIX = 'berth-spare-';
let sequence = 0;

/** The renamable (v1) directories of a cgroup: one per hierarchy. */
function v1Dirs(cgroup: CgroupManager): string[] {
  return [...new Set(Object.entries(cgroup.paths).filter(([key]) => key !== '').map(([, dir]) => dir))];
}

export class CgroupStage {
  /** Parent directories of the last container's v1 cgroups: where the next one most likely goes. */
  private static parents: string[] | undefined;
  private static cpusetParent: string | undefined;
  private static devicesParent: string | undefined;
  private joined = false;
  private adopted = false;

  private constructor(private readonly dirs: string[]) {}

  /** Remembers where a container's cgroups are, for the next stage. */
  static learn(cgroup: CgroupManager): void {
    const parents = v1Dirs(cgroup).map(dirname);
    if (!parents.length) return;
    // Stages of shims killed before us, beside where ours will be.
    if (parents.join() !== CgroupStage.parents?.join()) void removeCgroupDirs(staleStages(parents), 2000).catch(() => undefined);
    CgroupStage.parents = parents;
    CgroupStage.cpusetParent = cgroup.paths.cpuset && dirname(cgroup.paths.cpuset);
    CgroupStage.devicesParent = cgroup.paths.devices && dirname(cgroup.paths.devices);
  }

  /** Makes the stage's directories and moves `pid` into them (asynchronously: the move waits on the kernel).
   * Undefined when no container has shown where its cgroups go. */
  static prepare(pid: number): CgroupStage | undefined {
    const parents = CgroupStage.parents;
    if (!parents) return undefined;
    const name = `${PREFIX}${process.pid}-${sequence++}`;
    const dirs = parents.map((p) => join(p, name));
    const made: string[] = [];
    try {
      for (const dir of dirs) made.push(...makeDirs(dir, dirname(dir) === CgroupStage.cpusetParent ? inheritCpuset : undefined));
    } catch {
      removeDirs(made);
      return undefined;
    }
    // Most containers are alike: the next is likely to want the last one's device rules.
    for (const dir of dirs) if (dirname(dir) === CgroupStage.devicesParent) { try { applyLastDeviceRules(dir); } catch { /* applied at create */ } }
    const stage = new CgroupStage(dirs);
    Promise.all(dirs.map((d) => writeFile(join(d, 'cgroup.procs'), String(pid))))
      .then(() => { stage.joined = true; }, () => stage.discard());
    return stage;
  }

  /** Renames the stage into `cgroup`'s place when every hierarchy's directory is a sibling of ours and does not
   * exist yet. Returns the directories the staged process is now in (empty when not adopted). */
  adopt(cgroup: CgroupManager): ReadonlySet<string> {
    if (!this.joined || this.adopted) return new Set();
    const targets = v1Dirs(cgroup);
    const pairs: [string, string][] = [];
    for (const target of targets) {
      const staged = this.dirs.find((d) => dirname(d) === dirname(target));
      if (!staged || existsSync(target)) return new Set();
      pairs.push([staged, target]);
    }
    if (pairs.length !== this.dirs.length) return new Set();
    const done: [string, string][] = [];
    try {
      for (const [from, to] of pairs) { renameSync(from, to); done.push([from, to]); }
    } catch {
      for (const [from, to] of done.reverse()) { try { renameSync(to, from); } catch { /* left as the container's */ } }
      return new Set();
    }
    this.adopted = true;
    return new Set(targets);
  }

  /** Removes the stage's directories once the staged process has left them (it exits when its spare does). */
  discard(): void {
    if (this.adopted) return;
    this.adopted = true;
    void removeCgroupDirs(this.dirs, 5000).catch(() => undefined);
  }
}

/** Stages whose shim is gone (killed before it could clean up); their processes leave with it. A killed shim
 * may linger as a zombie for a moment: it counts as gone. */
function staleStages(parents: string[]): string[] {
  const stale: string[] = [];
  for (const parent of parents) {
    let names: string[];
    try { names = readdirSync(parent); } catch { continue; }
    for (const name of names) {
      const owner = name.startsWith(PREFIX) ? /^(\d+)-\d+$/.exec(name.slice(PREFIX.length))?.[1] : undefined;
      if (owner && Number(owner) !== process.pid && processStartTime(Number(owner)) === undefined) stale.push(join(parent, name));
    }
  }
  return stale;
}

/** Removes the stages of dead shims beside `cgroup`'s directories, waiting a moment for their staged
 * processes to leave (shim delete, after a shim was killed). */
export async function removeStaleStages(cgroup: CgroupManager): Promise<void> {
  await removeCgroupDirs(staleStages(v1Dirs(cgroup).map(dirname)), 500).catch(() => undefined);
}
