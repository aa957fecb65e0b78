// The cgroup v1 manager: one directory per mounted controller (and named hierarchies such as name=systemd).
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { errFailedPrecondition, errUnavailable } from '../../api/errdefs.ts';
import { joinProcess, makeDirs, removeDirs, signalEach, signalNumber } from './common.ts';
import {
  procsInTree, readKeyed, readNumber, readOptional, readOptionalNumber, readText, removeCgroupDirs, writeValue, UNLIMITED,
} from './files.ts';
import { v1Dir } from './layout.ts';
import { registerCgroupBackend, type CgroupTarget } from './registry.ts';
import type { BlkioEntry, CgroupManager, CgroupStats, CpuStats, LinuxResources, MemoryStats } from './types.ts';
import { applyV1 } from './v1-apply.ts';
import { parseCpuList, validateResources } from './validate.ts';
import { waitFor, waitForSync } from './wait.ts';

const FREEZE_TIMEOUT_MS = 5000;
/** v1 reports "no limit" as PAGE_COUNTER_MAX rounded to pages; anything this large means unlimited. */
const V1_NO_LIMIT = 2 ** 62;

function limitOf(n: number): number {
  return n >= V1_NO_LIMIT ? UNLIMITED : n;
}

export class V1Cgroup implements CgroupManager {
  readonly cgroupsPath: string;
  readonly paths: Readonly<Record<string, string>>;
  protected readonly dirs: Map<string, string>;

  constructor(target: CgroupTarget) {
    this.cgroupsPath = target.cgroupsPath;
    this.dirs = new Map();
    for (const controller of target.layout.v1.keys()) {
      const dir = v1Dir(target.layout, controller, target.cgroupsPath, target.own);
      if (dir) this.dirs.set(controller, dir);
    }
    this.paths = Object.fromEntries(this.dirs);
    this.cpusetMount = target.layout.v1.get('cpuset')?.mountPoint;
  }

  private readonly cpusetMount: string | undefined;

  /** Distinct directories (co-mounted controllers such as cpu,cpuacct share one). */
  protected uniqueDirs(): string[] {
    return [...new Set(this.dirs.values())];
  }

  create(resources?: LinuxResources): void {
    if (resources) validateResources(resources);
    const created: string[] = [];
    try {
      for (const dir of this.uniqueDirs()) {
        const cpuset = dir === this.dirs.get('cpuset');
        if (cpuset) fillExistingCpusets(this.cpusetMount!, dir);
        created.push(...makeDirs(dir, cpuset ? inheritCpuset : undefined));
      }
      if (resources) this.apply(resources);
    } catch (err) {
      removeDirs(created);
      throw err;
    }
  }

  /** Writes the resources this hierarchy set handles; the hybrid manager overrides to route some to v2. */
  protected apply(resources: LinuxResources): void {
    applyV1(this.dirs, resources);
  }

  addProcess(pid: number, bornIn?: ReadonlySet<string>): void {
    for (const dir of this.uniqueDirs()) if (!bornIn?.has(dir)) joinProcess(dir, pid);
  }

  update(resources: LinuxResources): void {
    validateResources(resources);
    this.apply(resources);
  }

  private freezerDir(): string {
    const dir = this.dirs.get('freezer');
    if (!dir) throw errFailedPrecondition('cgroup freeze: the freezer controller is not mounted on this host');
    return dir;
  }

  async freeze(): Promise<void> {
    const dir = this.freezerDir();
    writeValue(dir, 'freezer.state', 'FROZEN', 'freezer');
    // A task in an uninterruptible sleep can hold the cgroup in FREEZING; rewriting FROZEN retries the freeze.
    const ok = await waitFor(() => readText(dir, 'freezer.state').trim() === 'FROZEN', FREEZE_TIMEOUT_MS,
      () => writeValue(dir, 'freezer.state', 'FROZEN', 'freezer'));
    if (!ok) {
      writeValue(dir, 'freezer.state', 'THAWED', 'freezer');
      throw errUnavailable(`cgroup freeze: ${dir} did not reach FROZEN within ${FREEZE_TIMEOUT_MS} ms`);
    }
  }

  async thaw(): Promise<void> {
    const dir = this.freezerDir();
    writeValue(dir, 'freezer.state', 'THAWED', 'freezer');
    if (!await waitFor(() => readText(dir, 'freezer.state').trim() === 'THAWED', FREEZE_TIMEOUT_MS)) {
      throw errUnavailable(`cgroup thaw: ${dir} did not reach THAWED within ${FREEZE_TIMEOUT_MS} ms`);
    }
  }

  isFrozen(): boolean {
    const dir = this.dirs.get('freezer');
    if (!dir) return false;
    return readOptional(dir, 'freezer.state')?.trim() === 'FROZEN';
  }

  pids(): number[] {
    const all = new Set<number>();
    for (const dir of this.uniqueDirs()) for (const pid of procsInTree(dir)) all.add(pid);
    return [...all].sort((a, b) => a - b);
  }

  stats(): CgroupStats {
    const out: CgroupStats = {};
    const mem = this.dirs.get('memory');
    if (mem && existsSync(mem)) out.memory = memoryStats(mem);
    const cpu = cpuStats(this.dirs.get('cpuacct'), this.dirs.get('cpu'));
    if (cpu) out.cpu = cpu;
    const pids = this.dirs.get('pids');
    if (pids && existsSync(pids)) {
      const max = readOptional(pids, 'pids.max')?.trim();
      out.pids = { current: readNumber(pids, 'pids.current'), limit: max === undefined || max === 'max' ? 0 : Number(max) };
    }
    const cpuset = this.dirs.get('cpuset');
    if (cpuset && existsSync(cpuset)) out.cpuset = cpusetStats(cpuset);
    const blkio = this.dirs.get('blkio');
    if (blkio && existsSync(blkio)) {
      out.blkio = {
        ioServiceBytes: blkioEntries(readOptional(blkio, 'blkio.throttle.io_service_bytes_recursive')),
        ioServiced: blkioEntries(readOptional(blkio, 'blkio.throttle.io_serviced_recursive')),
      };
    }
    return out;
  }

  oomKillCount(): number {
    const mem = this.dirs.get('memory');
    return mem ? readKeyed(mem, 'memory.oom_control').oom_kill ?? 0 : 0;
  }

  killAll(signal: number | string): void {
    const sig = signalNumber(signal);
    if (!this.exists()) return;
    const freezerDir = this.dirs.get('freezer');
    const freezer = freezerDir && existsSync(freezerDir) ? freezerDir : undefined;
    const wasFrozen = this.isFrozen();
    // Freeze around a kill so nothing forks between listing the pids and signalling them (runc does the same).
    if (freezer && !wasFrozen) {
      writeValue(freezer, 'freezer.state', 'FROZEN', 'freezer');
      waitForSync(() => readText(freezer, 'freezer.state').trim() === 'FROZEN', 1000);
    }
    try {
      signalEach(this.pids(), sig);
    } finally {
      // Frozen tasks act on a pending SIGKILL only once thawed, so a kill always thaws.
      if (freezer && (!wasFrozen || sig === 9)) writeValue(freezer, 'freezer.state', 'THAWED', 'freezer');
    }
  }

  async destroy(): Promise<void> {
    await removeCgroupDirs(this.uniqueDirs());
  }

  exists(): boolean {
    return this.uniqueDirs().some((d) => existsSync(d));
  }
}

/** Ancestors of `dir` below the cpuset mount that exist with no cpus or mems (made by someone else, e.g. mkdir):
 * filled from their parents top-down, as runc does, else no cgroup below them could take a task. */
function fillExistingCpusets(mount: string, dir: string): void {
  const levels: string[] = [];
  for (let d = dirname(dir); d.startsWith(mount + '/'); d = dirname(d)) levels.unshift(d);
  for (const d of levels) {
    if (!existsSync(d)) return;
    inheritCpuset(d);
  }
}

/** A new v1 cpuset cgroup starts with no cpus and mems; copy the parent's so tasks can join it. */
export function inheritCpuset(dir: string): void {
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    if (readText(dir, file).trim() === '') writeValue(dir, file, readText(dirname(dir), file).trim(), 'cpuset (inherited)');
  }
}

function memoryStats(dir: string): MemoryStats {
  const raw = readKeyed(dir, 'memory.stat');
  const usage = readNumber(dir, 'memory.usage_in_bytes');
  const memswUsage = readOptionalNumber(dir, 'memory.memsw.usage_in_bytes');
  const memswLimit = readOptionalNumber(dir, 'memory.memsw.limit_in_bytes');
  return {
    usage,
    maxUsage: readNumber(dir, 'memory.max_usage_in_bytes'),
    limit: limitOf(readNumber(dir, 'memory.limit_in_bytes')),
    cache: raw.total_cache ?? raw.cache ?? 0,
    rss: raw.total_rss ?? raw.rss ?? 0,
    swap: memswUsage === undefined ? 0 : Math.max(0, memswUsage - usage),
    swapLimit: memswLimit === undefined ? 0 : limitOf(memswLimit),
    failcnt: readNumber(dir, 'memory.failcnt'),
    raw,
    ...optionalCounter(dir, 'memsw', 'memsw'),
    ...optionalCounter(dir, 'kmem', 'kernel'),
    ...optionalCounter(dir, 'kmem.tcp', 'kernelTCP'),
  };
}

/** memory.NAME.{usage,max_usage,limit}_in_bytes and failcnt, when the kernel has them. */
function optionalCounter(dir: string, name: string, key: 'memsw' | 'kernel' | 'kernelTCP'): Partial<MemoryStats> {
  const usage = readOptionalNumber(dir, `memory.${name}.usage_in_bytes`);
  if (usage === undefined) return {};
  return { [key]: {
    usage, maxUsage: readNumber(dir, `memory.${name}.max_usage_in_bytes`), failcnt: readNumber(dir, `memory.${name}.failcnt`),
    limit: limitOf(readNumber(dir, `memory.${name}.limit_in_bytes`)),
  } };
}

const CPUSET_FLAGS = ['cpu_exclusive', 'mem_hardwall', 'mem_exclusive', 'memory_migrate', 'memory_spread_page', 'memory_spread_slab',
  'memory_pressure', 'sched_load_balance', 'sched_relax_domain_level'];

function cpusetStats(dir: string): NonNullable<CgroupStats['cpuset']> {
  const flags: Record<string, number> = {};
  for (const f of CPUSET_FLAGS) {
    const v = readOptionalNumber(dir, `cpuset.${f}`);
    if (v !== undefined) flags[f] = v;
  }
  const ids = (file: string) => [...(parseCpuList(readText(dir, file)) ?? [])].sort((a, b) => a - b);
  return { cpus: ids('cpuset.cpus'), mems: ids('cpuset.mems'), flags };
}

function cpuStats(acct: string | undefined, cpu: string | undefined): CpuStats | undefined {
  if (!acct || !existsSync(acct)) return undefined;
  const list = (file: string) => readOptional(acct, file)?.trim().split(/\s+/).filter(Boolean).map(Number);
  const perCpu = list('cpuacct.usage_percpu') ?? [];
  const perCpuUser = list('cpuacct.usage_percpu_user');
  const perCpuKernel = list('cpuacct.usage_percpu_sys');
  let user = readOptionalNumber(acct, 'cpuacct.usage_user');
  let system = readOptionalNumber(acct, 'cpuacct.usage_sys');
  if (user === undefined || system === undefined) {
    // Older kernels only have cpuacct.stat, in USER_HZ (100/s) ticks.
    const ticks = readKeyed(acct, 'cpuacct.stat');
    user = (ticks.user ?? 0) * 10_000_000;
    system = (ticks.system ?? 0) * 10_000_000;
  }
  const throttle = cpu && existsSync(cpu) ? readKeyed(cpu, 'cpu.stat') : {};
  return {
    usageTotal: readNumber(acct, 'cpuacct.usage'),
    usageUser: user,
    usageSystem: system,
    perCpu,
    ...(perCpuUser ? { perCpuUser } : {}),
    ...(perCpuKernel ? { perCpuKernel } : {}),
    throttling: {
      periods: throttle.nr_periods ?? 0,
      throttledPeriods: throttle.nr_throttled ?? 0,
      throttledTime: throttle.throttled_time ?? 0,
    },
  };
}

function blkioEntries(text: string | undefined): BlkioEntry[] {
  const out: BlkioEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const m = /^(\d+):(\d+) (\S+) (\d+)$/.exec(line);
    if (m) out.push({ major: Number(m[1]), minor: Number(m[2]), op: m[3]!, value: Number(m[4]) });
  }
  return out;
}

registerCgroupBackend('v1', (target) => new V1Cgroup(target));
