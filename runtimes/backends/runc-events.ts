// A runtime CLI's `events --stats` output in runc's format (runc v1.1 types/events.go), read into berth's
// CgroupStats: {"type":"stats","id":ID,"data":{"cpu":{"usage":{...},"throttling":{...}},"memory":{...},
// "pids":{...},"blkio":{...},"hugetlb":{...}}}. runc omits zero values (omitempty), so every field may be
// missing. Its memory "swap" entry is memory+swap (memsw on v1, as runc reports v2 too).
import { errInternal } from '../../api/errdefs.ts';
import { UNLIMITED } from '../cgroups/files.ts';
import type { BlkioEntry, CgroupStats } from '../cgroups/types.ts';

interface MemoryEntry { limit?: number; usage?: number; max?: number; failcnt?: number }

interface RuncStats {
  cpu?: {
    usage?: { total?: number; percpu?: number[]; kernel?: number; user?: number };
    throttling?: { periods?: number; throttledPeriods?: number; throttledTime?: number };
  };
  memory?: { cache?: number; usage?: MemoryEntry; swap?: MemoryEntry; raw?: Record<string, number> };
  pids?: { current?: number; limit?: number };
  blkio?: { ioServiceBytesRecursive?: RuncBlkioEntry[]; ioServicedRecursive?: RuncBlkioEntry[] };
  hugetlb?: Record<string, { usage?: number; max?: number; failcnt?: number }>;
}

interface RuncBlkioEntry { major?: number; minor?: number; op?: string; value?: number }

/** v1's "no limit" (a page-rounded 2^63) is reported as berth's UNLIMITED, as the cgroup managers do. */
const limitOf = (n: number | undefined) => (n === undefined || n === 0 ? 0 : n >= 2 ** 62 ? UNLIMITED : n);

const entries = (list: RuncBlkioEntry[] | undefined): BlkioEntry[] =>
  (list ?? []).map((e) => ({ major: e.major ?? 0, minor: e.minor ?? 0, op: e.op ?? '', value: e.value ?? 0 }));

/** The stats of the one `events --stats` line a runtime printed. */
export function statsFromRuncEvent(output: string): CgroupStats {
  let event: { type?: string; data?: RuncStats };
  try {
    event = JSON.parse(output) as typeof event;
  } catch {
    throw errInternal(`events --stats: not runc's JSON event format: ${JSON.stringify(output.slice(0, 200))}`);
  }
  if (event.type !== 'stats') throw errInternal(`events --stats: want an event of type "stats", got ${JSON.stringify(event.type)}`);
  const d = event.data ?? {};
  const out: CgroupStats = {};
  if (d.memory) {
    const m = d.memory;
    const usage = m.usage?.usage ?? 0;
    out.memory = {
      usage, maxUsage: m.usage?.max ?? 0, limit: limitOf(m.usage?.limit), failcnt: m.usage?.failcnt ?? 0,
      cache: m.cache ?? 0, rss: m.raw?.total_rss ?? m.raw?.rss ?? m.raw?.anon ?? 0,
      swap: m.swap?.usage ? Math.max(0, m.swap.usage - usage) : 0, swapLimit: limitOf(m.swap?.limit), raw: m.raw ?? {},
    };
  }
  if (d.cpu) {
    const u = d.cpu.usage ?? {};
    const th = d.cpu.throttling ?? {};
    out.cpu = {
      usageTotal: u.total ?? 0, usageUser: u.user ?? 0, usageSystem: u.kernel ?? 0, perCpu: u.percpu ?? [],
      throttling: { periods: th.periods ?? 0, throttledPeriods: th.throttledPeriods ?? 0, throttledTime: th.throttledTime ?? 0 },
    };
  }
  if (d.pids) out.pids = { current: d.pids.current ?? 0, limit: d.pids.limit ?? 0 };
  if (d.blkio) out.blkio = { ioServiceBytes: entries(d.blkio.ioServiceBytesRecursive), ioServiced: entries(d.blkio.ioServicedRecursive) };
  if (d.hugetlb && Object.keys(d.hugetlb).length) {
    out.hugetlb = Object.fromEntries(Object.entries(d.hugetlb).map(([size, h]) => [size, { usage: h.usage ?? 0, maxUsage: h.max ?? 0, failcnt: h.failcnt ?? 0 }]));
  }
  return out;
}
