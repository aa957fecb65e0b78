// The cgroup v2 manager: one directory in the unified hierarchy. Used alone on pure v2 hosts and, for the
// unified part, by the hybrid manager.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import { errFailedPrecondition, errUnavailable } from '../../api/errdefs.ts';
import { joinProcess, makeDirs, removeDirs, signalEach, signalNumber } from './common.ts';
import {
  fileExists, procsInTree, readKeyed, readNumber, readOptional, readOptionalNumber, removeCgroupDirs, writeValue, UNLIMITED,
} from './files.ts';
import { unifiedDir } from './layout.ts';
import { registerCgroupBackend, type CgroupTarget } from './registry.ts';
import type { BlkioEntry, CgroupManager, CgroupStats, LinuxResources } from './types.ts';
import { applyV2, controllersOf } from './v2-apply.ts';
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
      if (resources) applyV2(this.dir, resources);
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
    applyV2(this.dir, resources, true);
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
    const d = this.dir;
    const enabled = controllersOf(d);
    const out: CgroupStats = {};
    if (enabled.has('memory')) {
      const raw = readKeyed(d, 'memory.stat');
      const events = readKeyed(d, 'memory.events');
      out.memory = {
        usage: readNumber(d, 'memory.current'),
        maxUsage: readOptionalNumber(d, 'memory.peak') ?? 0,
        limit: readNumber(d, 'memory.max'),
        cache: raw.file ?? 0,
        rss: raw.anon ?? 0,
        swap: readOptionalNumber(d, 'memory.swap.current') ?? 0,
        swapLimit: readOptionalNumber(d, 'memory.swap.max') ?? 0,
        failcnt: events.max ?? 0,
        raw,
      };
    }
    // cpu.stat's usage fields are core (present without the cpu controller); throttling needs the controller.
    const cpu = readKeyed(d, 'cpu.stat');
    out.cpu = {
      usageTotal: (cpu.usage_usec ?? 0) * 1000,
      usageUser: (cpu.user_usec ?? 0) * 1000,
      usageSystem: (cpu.system_usec ?? 0) * 1000,
      perCpu: [],
      throttling: { periods: cpu.nr_periods ?? 0, throttledPeriods: cpu.nr_throttled ?? 0, throttledTime: (cpu.throttled_usec ?? 0) * 1000 },
    };
    if (enabled.has('pids')) {
      const max = readNumber(d, 'pids.max');
      out.pids = { current: readNumber(d, 'pids.current'), limit: max === UNLIMITED ? 0 : max };
    }
    if (enabled.has('io')) out.blkio = ioStats(readOptional(d, 'io.stat'));
    if (enabled.has('hugetlb')) out.hugetlb = hugetlbStats(d);
    return out;
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

function ioStats(text: string | undefined): { ioServiceBytes: BlkioEntry[]; ioServiced: BlkioEntry[] } {
  const bytes: BlkioEntry[] = [];
  const ios: BlkioEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const [dev, ...fields] = line.split(' ');
    const m = /^(\d+):(\d+)$/.exec(dev ?? '');
    if (!m) continue;
    const kv = Object.fromEntries(fields.map((f) => f.split('=')).map(([k, v]) => [k, Number(v)]));
    const major = Number(m[1]);
    const minor = Number(m[2]);
    bytes.push({ major, minor, op: 'Read', value: kv.rbytes ?? 0 }, { major, minor, op: 'Write', value: kv.wbytes ?? 0 });
    ios.push({ major, minor, op: 'Read', value: kv.rios ?? 0 }, { major, minor, op: 'Write', value: kv.wios ?? 0 });
  }
  return { ioServiceBytes: bytes, ioServiced: ios };
}

function hugetlbStats(dir: string): Record<string, { usage: number; maxUsage: number; failcnt: number }> {
  const out: Record<string, { usage: number; maxUsage: number; failcnt: number }> = {};
  for (const name of readdirSync(dir)) {
    const size = /^hugetlb\.(\w+)\.current$/.exec(name)?.[1];
    if (!size) continue;
    out[size] = {
      usage: readNumber(dir, name),
      maxUsage: 0,
      failcnt: readKeyed(dir, `hugetlb.${size}.events`).max ?? 0,
    };
  }
  return out;
}

registerCgroupBackend('v2', (target) => new V2Cgroup(target));
