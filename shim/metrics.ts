// berth's cgroup statistics as containerd's io.containerd.cgroups.v1.Metrics (what Stats returns in an Any).
import { packAny, type AnyMessage } from '../api/proto.ts';
import type { CgroupStats } from '../runtimes/cgroups/types.ts';

export function metricsAny(s: CgroupStats): AnyMessage {
  const raw = s.memory?.raw ?? {};
  const r = (k: string) => raw[k] ?? 0;
  return packAny('io.containerd.cgroups.v1.Metrics', {
    ...(s.hugetlb ? { hugetlb: Object.entries(s.hugetlb).map(([pagesize, h]) => ({ pagesize, usage: h.usage, max: h.maxUsage, failcnt: h.failcnt })) } : {}),
    ...(s.pids ? { pids: { current: s.pids.current, limit: s.pids.limit } } : {}),
    ...(s.cpu ? { cpu: {
      usage: { total: s.cpu.usageTotal, kernel: s.cpu.usageSystem, user: s.cpu.usageUser, perCpu: s.cpu.perCpu },
      throttling: s.cpu.throttling,
    } } : {}),
    ...(s.memory ? { memory: {
      cache: s.memory.cache, rss: s.memory.rss, rssHuge: r('rss_huge'), mappedFile: r('mapped_file'), dirty: r('dirty'), writeback: r('writeback'),
      pgPgIn: r('pgpgin'), pgPgOut: r('pgpgout'), pgFault: r('pgfault'), pgMajFault: r('pgmajfault'),
      inactiveAnon: r('inactive_anon'), activeAnon: r('active_anon'), inactiveFile: r('inactive_file'), activeFile: r('active_file'),
      unevictable: r('unevictable'), hierarchicalMemoryLimit: r('hierarchical_memory_limit'), hierarchicalSwapLimit: r('hierarchical_memsw_limit'),
      totalCache: r('total_cache'), totalRss: r('total_rss'), totalRssHuge: r('total_rss_huge'), totalMappedFile: r('total_mapped_file'),
      totalDirty: r('total_dirty'), totalWriteback: r('total_writeback'), totalPgPgIn: r('total_pgpgin'), totalPgPgOut: r('total_pgpgout'),
      totalPgFault: r('total_pgfault'), totalPgMajFault: r('total_pgmajfault'), totalInactiveAnon: r('total_inactive_anon'),
      totalActiveAnon: r('total_active_anon'), totalInactiveFile: r('total_inactive_file'), totalActiveFile: r('total_active_file'),
      totalUnevictable: r('total_unevictable'),
      usage: { limit: s.memory.limit, usage: s.memory.usage, max: s.memory.maxUsage, failcnt: s.memory.failcnt },
      swap: { limit: s.memory.swapLimit, usage: s.memory.swap },
    } } : {}),
    ...(s.blkio ? { blkio: {
      ioServiceBytesRecursive: s.blkio.ioServiceBytes.map((e) => ({ op: e.op, major: e.major, minor: e.minor, value: e.value })),
      ioServicedRecursive: s.blkio.ioServiced.map((e) => ({ op: e.op, major: e.major, minor: e.minor, value: e.value })),
    } } : {}),
  });
}
