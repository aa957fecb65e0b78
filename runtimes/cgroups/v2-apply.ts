// Writes linux.resources into one cgroup v2 directory, converting the OCI (v1-flavoured) values.
import { errFailedPrecondition } from '../../api/errdefs.ts';
import { blkioWeightToIoWeight, sharesToWeight, swapToV2, v2Limit } from './convert.ts';
import { parseValue, readOptional } from './files.ts';
import type { LinuxBlockIO, LinuxCPU, LinuxMemory, LinuxResources } from './types.ts';
import type { CgroupDir } from './v2-dir.ts';

/** Controllers enabled for `dir` (its cgroup.controllers). */
export function controllersOf(dir: string | CgroupDir): Set<string> {
  const text = typeof dir === 'string' ? readOptional(dir, 'cgroup.controllers') : dir.read('cgroup.controllers');
  return new Set((text ?? '').trim().split(/\s+/).filter(Boolean));
}

function need(enabled: Set<string>, { path: dir }: CgroupDir, controller: string, what: string): void {
  if (!enabled.has(controller)) {
    throw errFailedPrecondition(`cgroup ${what}: the ${controller} controller is not available in ${dir} (cgroup.controllers: ${[...enabled].join(' ') || 'none'})`);
  }
}

function applyMemory(dir: CgroupDir, m: LinuxMemory, update: boolean): void {
  if (m.swappiness !== undefined) throw errFailedPrecondition('cgroup memory.swappiness: cgroup v2 has no per-cgroup swappiness');
  if (m.kernelTCP) throw errFailedPrecondition('cgroup memory.kernelTCP: cgroup v2 has no separate TCP memory limit');
  if (m.disableOOMKiller) throw errFailedPrecondition('cgroup memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer');
  if (m.useHierarchy === false) throw errFailedPrecondition('cgroup memory.useHierarchy: cgroup v2 is always hierarchical');
  const limit = m.limit ?? 0;
  if (update && m.checkBeforeUpdate && limit > 0) {
    const usage = parseValue((dir.read('memory.current') ?? '').trim());
    if (usage >= limit) throw errFailedPrecondition(`cgroup memory.limit: ${limit} is below the current usage ${usage}`);
  }
  const swap = swapToV2(m.swap, m.limit);
  // memory.swap.max is independent of memory.max on v2, so order does not matter.
  if (swap !== undefined) {
    if (!dir.exists('memory.swap.max')) {
      if (swap !== 'max') throw errFailedPrecondition('cgroup memory.swap: swap accounting is not enabled in this kernel');
    } else dir.write('memory.swap.max', swap, 'memory.swap');
  }
  if (limit !== 0) dir.write('memory.max', v2Limit(limit), 'memory.limit');
  if (m.reservation) dir.write('memory.low', v2Limit(m.reservation), 'memory.reservation');
}

function applyCpu(dir: CgroupDir, enabled: Set<string>, c: LinuxCPU): void {
  if (c.realtimeRuntime || c.realtimePeriod) {
    throw errFailedPrecondition('cgroup cpu.realtimeRuntime/realtimePeriod: realtime scheduling limits are not supported on cgroup v2');
  }
  if (c.shares || c.quota || c.period || c.burst !== undefined || c.idle !== undefined) need(enabled, dir, 'cpu', 'cpu');
  if (c.shares) dir.write('cpu.weight', sharesToWeight(c.shares), 'cpu.shares');
  if (c.quota || c.period) {
    // "max" alone keeps the current period; a period alone keeps the current quota.
    const quota = c.quota ? (c.quota > 0 ? String(c.quota) : 'max') : (dir.read('cpu.max') ?? 'max').split(' ')[0]!;
    dir.write('cpu.max', c.period ? `${quota} ${c.period}` : quota, 'cpu.quota/period');
  }
  if (c.burst !== undefined) dir.write('cpu.max.burst', c.burst, 'cpu.burst');
  if (c.idle !== undefined) dir.write('cpu.idle', c.idle, 'cpu.idle');
  if (c.cpus || c.mems) need(enabled, dir, 'cpuset', 'cpu.cpus/mems');
  if (c.cpus) dir.write('cpuset.cpus', c.cpus, 'cpu.cpus');
  if (c.mems) dir.write('cpuset.mems', c.mems, 'cpu.mems');
}

const THROTTLES = [
  ['throttleReadBpsDevice', 'rbps'], ['throttleWriteBpsDevice', 'wbps'],
  ['throttleReadIOPSDevice', 'riops'], ['throttleWriteIOPSDevice', 'wiops'],
] as const;

/** Whether blockIO asks for anything: Docker sends an empty one with every container, which needs no io controller. */
function ioAsked(b: LinuxBlockIO): boolean {
  return !!(b.weight || b.leafWeight || b.weightDevice?.some((d) => d.weight || d.leafWeight) || THROTTLES.some(([key]) => b[key]?.length));
}

function applyIo(dir: CgroupDir, b: LinuxBlockIO): void {
  if (b.leafWeight) throw errFailedPrecondition('cgroup blockIO.leafWeight: cgroup v2 has no leaf weights');
  // BFQ takes the v1 weight range as is; io.weight (the cost model) needs the converted value.
  const bfq = dir.exists('io.bfq.weight');
  if (b.weight) {
    if (bfq) dir.write('io.bfq.weight', b.weight, 'blockIO.weight');
    else dir.write('io.weight', `default ${blkioWeightToIoWeight(b.weight)}`, 'blockIO.weight');
  }
  for (const d of b.weightDevice ?? []) {
    if (!d.weight) continue;
    if (bfq) dir.write('io.bfq.weight', `${d.major}:${d.minor} ${d.weight}`, 'blockIO.weightDevice');
    else dir.write('io.weight', `${d.major}:${d.minor} ${blkioWeightToIoWeight(d.weight)}`, 'blockIO.weightDevice');
  }
  for (const [key, name] of THROTTLES) {
    for (const d of b[key] ?? []) {
      dir.write('io.max', `${d.major}:${d.minor} ${name}=${d.rate === 0 ? 'max' : d.rate}`, `blockIO.${key}`);
    }
  }
}

export function applyV2(dir: CgroupDir, r: LinuxResources, update = false): void {
  const enabled = controllersOf(dir);
  if (r.memory) {
    const m = r.memory;
    if (m.limit || m.swap || m.reservation) need(enabled, dir, 'memory', 'memory');
    applyMemory(dir, m, update);
  }
  if (r.cpu) applyCpu(dir, enabled, r.cpu);
  if (r.pids && r.pids.limit !== undefined) {
    need(enabled, dir, 'pids', 'pids');
    dir.write('pids.max', r.pids.limit > 0 ? r.pids.limit : 'max', 'pids.limit');
  }
  if (r.blockIO && ioAsked(r.blockIO)) {
    need(enabled, dir, 'io', 'blockIO');
    applyIo(dir, r.blockIO);
  }
  for (const h of r.hugepageLimits ?? []) {
    need(enabled, dir, 'hugetlb', 'hugepageLimits');
    if (!dir.exists(`hugetlb.${h.pageSize}.max`)) {
      throw errFailedPrecondition(`cgroup hugepageLimits: page size ${h.pageSize} is not supported by this kernel (no hugetlb.${h.pageSize}.max)`);
    }
    dir.write(`hugetlb.${h.pageSize}.max`, h.limit, `hugepageLimits ${h.pageSize}`);
  }
  if (r.network && (r.network.classID !== undefined || (r.network.priorities ?? []).length > 0)) {
    throw errFailedPrecondition('cgroup network: net_cls/net_prio do not exist on cgroup v2 (use eBPF or tc for network classes)');
  }
  for (const [dev, v] of Object.entries(r.rdma ?? {})) {
    need(enabled, dir, 'rdma', 'rdma');
    const parts = [`hca_handle=${v.hcaHandles ?? 'max'}`, `hca_object=${v.hcaObjects ?? 'max'}`];
    dir.write('rdma.max', `${dev} ${parts.join(' ')}`, `rdma.${dev}`);
  }
  for (const [key, value] of Object.entries(r.unified ?? {})) {
    if (!dir.exists(key)) {
      const ctrl = key.split('.')[0]!;
      const why = ctrl !== 'cgroup' && !enabled.has(ctrl) ? `the ${ctrl} controller is not available here` : 'no such file';
      throw errFailedPrecondition(`cgroup unified.${key}: ${why} (${dir.path})`);
    }
    dir.write(key, value, `unified.${key}`);
  }
  if (r.devices) dir.devices(r.devices);
}
