// `events`: the container's statistics in runc's JSON (types/events.go in runc 1.1.5: {"type":"stats","id":..,
// "data":{cpu,cpuset,memory,pids,blkio,hugetlb,intel_rdt,network_interfaces}}), once (--stats) or every
// --interval, plus {"type":"oom","id":..} lines when the kernel OOM-kills in the container; the stream ends when
// the container's cgroup is gone (the container was deleted).
import { errFailedPrecondition, errInvalidArgument } from '../../../api/errdefs.ts';
import type { CgroupManager, CgroupStats, MemoryCounter } from '../../cgroups/types.ts';
import { UNLIMITED } from '../../cgroups/index.ts';
import { log } from './log.ts';

/** How often the stream looks for OOM kills and for the container's end, between statistics. */
const WATCH_MS = 100;

export async function events(id: string, cgroup: CgroupManager, opts: { stats: boolean; interval: string; stopped: boolean }): Promise<void> {
  const interval = parseDuration(opts.interval);
  if (interval <= 0) throw errInvalidArgument('duration interval must be greater than 0');
  if (opts.stopped) throw errFailedPrecondition(`container with id ${id} is not running`);
  const emit = (event: Record<string, unknown>) => process.stdout.write(toJson(event) + '\n');
  const stats = () => emit({ type: 'stats', id, data: runcStats(cgroup.stats()) });
  if (opts.stats) { stats(); return; }
  let ooms = cgroup.oomKillCount();
  let next = Date.now() + interval;
  for (;;) {
    await new Promise((r) => setTimeout(r, Math.max(0, Math.min(WATCH_MS, next - Date.now()))));
    if (!cgroup.exists()) return;
    try {
      const now = cgroup.oomKillCount();
      if (now > ooms) emit({ type: 'oom', id });
      ooms = now;
      if (Date.now() >= next) { stats(); next += interval; }
    } catch (err) {
      if (!cgroup.exists()) return;
      log('error', (err as Error).message);
    }
  }
}

/** Go's time.ParseDuration for the units that make sense here ("5s", "100ms", "1m30s", "1.5s"). */
export function parseDuration(text: string): number {
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const m = /^([+-])?((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/.exec(text);
  if (!m && text !== '0') throw errInvalidArgument(`invalid value ${JSON.stringify(text)} for flag -interval: time: invalid duration ${JSON.stringify(text)}`);
  let total = 0;
  for (const [, n, u] of text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) total += Number(n) * unit[u!]!;
  return text.startsWith('-') ? -total : total;
}

/** Go's omitempty: zero numbers, empty strings and empty or absent lists are left out. */
function omitEmpty(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== 0 && v !== '' && !(Array.isArray(v) && v.length === 0)));
}

function entry(c: MemoryCounter | undefined): Record<string, unknown> {
  const e = c ?? { usage: 0, maxUsage: 0, failcnt: 0, limit: 0 };
  return { limit: e.limit, ...omitEmpty({ usage: e.usage, max: e.maxUsage }), failcnt: e.failcnt };
}

/** CgroupStats in runc's events shape. */
export function runcStats(s: CgroupStats): Record<string, unknown> {
  const cpu = s.cpu;
  const mem = s.memory;
  const flags = s.cpuset?.flags ?? {};
  const blkio = (list: { major: number; minor: number; op: string; value: number }[] | undefined) =>
    list?.length ? list.map((e) => omitEmpty({ major: e.major, minor: e.minor, op: e.op, value: e.value })) : undefined;
  return {
    cpu: {
      usage: {
        ...omitEmpty({ total: cpu?.usageTotal, percpu: cpu?.perCpu, percpu_kernel: cpu?.perCpuKernel, percpu_user: cpu?.perCpuUser }),
        kernel: cpu?.usageSystem ?? 0, user: cpu?.usageUser ?? 0,
      },
      throttling: omitEmpty({ periods: cpu?.throttling.periods, throttledPeriods: cpu?.throttling.throttledPeriods, throttledTime: cpu?.throttling.throttledTime }),
    },
    cpuset: {
      ...omitEmpty({ cpus: s.cpuset?.cpus }), cpu_exclusive: flags.cpu_exclusive ?? 0, ...omitEmpty({ mems: s.cpuset?.mems }),
      mem_hardwall: flags.mem_hardwall ?? 0, mem_exclusive: flags.mem_exclusive ?? 0, memory_migrate: flags.memory_migrate ?? 0,
      memory_spread_page: flags.memory_spread_page ?? 0, memory_spread_slab: flags.memory_spread_slab ?? 0,
      memory_pressure: flags.memory_pressure ?? 0, sched_load_balance: flags.sched_load_balance ?? 0,
      sched_relax_domain_level: flags.sched_relax_domain_level ?? 0,
    },
    memory: {
      ...omitEmpty({ cache: mem?.cache }),
      usage: entry(mem && { usage: mem.usage, maxUsage: mem.maxUsage, failcnt: mem.failcnt, limit: mem.limit }),
      // v1 reports memory+swap here (memsw); cgroup v2 has swap alone.
      swap: entry(mem?.memsw ?? (mem && { usage: mem.swap, maxUsage: 0, failcnt: 0, limit: mem.swapLimit })),
      kernel: entry(mem?.kernel),
      kernelTCP: entry(mem?.kernelTCP),
      ...(mem && Object.keys(mem.raw).length ? { raw: mem.raw } : {}),
    },
    pids: omitEmpty({ current: s.pids?.current, limit: s.pids?.limit }),
    blkio: omitEmpty({ ioServiceBytesRecursive: blkio(s.blkio?.ioServiceBytes), ioServicedRecursive: blkio(s.blkio?.ioServiced) }),
    hugetlb: Object.fromEntries(Object.entries(s.hugetlb ?? {}).map(([size, h]) => [size, { ...omitEmpty({ usage: h.usage, max: h.maxUsage }), failcnt: h.failcnt }])),
    intel_rdt: {},
    network_interfaces: null,
  };
}

/** JSON with "no limit" written as the exact 2^64-1 (a double would print 18446744073709552000). */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (v === UNLIMITED ? '\u0000max\u0000' : v)).replaceAll('"\\u0000max\\u0000"', '18446744073709551615');
}
