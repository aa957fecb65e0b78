// Writes linux.resources into cgroup v1 controller directories (one directory per mounted controller).
import { errFailedPrecondition } from '../../api/errdefs.ts';
import { fileExists, readNumber, readOptional, writeValue } from './files.ts';
import { emulateDeviceRules, type DeviceRuleSet } from './device-rules.ts';
import type { LinuxBlockIO, LinuxCPU, LinuxDeviceCgroup, LinuxMemory, LinuxResources } from './types.ts';

export type Dirs = ReadonlyMap<string, string>;

function dirFor(dirs: Dirs, controller: string, what: string): string {
  const dir = dirs.get(controller);
  if (!dir) throw errFailedPrecondition(`cgroup ${what}: the ${controller} controller is not mounted on this host`);
  return dir;
}

function applyMemory(dir: string, m: LinuxMemory): void {
  const limit = m.limit ?? 0;
  // -1 memory with no swap given means both unlimited, else the old memsw limit would cap the new memory limit.
  const swap = m.swap ?? (limit === -1 ? -1 : 0);
  const hasMemsw = fileExists(dir, 'memory.memsw.limit_in_bytes');
  if (swap !== 0 && !hasMemsw && swap !== -1) {
    throw errFailedPrecondition('cgroup memory.swap: swap accounting (memory.memsw.*) is not enabled in this kernel');
  }
  if (limit !== 0 && swap !== 0 && hasMemsw) {
    // memsw must stay ≥ memory at every step: raise memsw first when growing, lower memory first when shrinking.
    const current = readNumber(dir, 'memory.limit_in_bytes');
    if (swap === -1 || current < swap) {
      writeValue(dir, 'memory.memsw.limit_in_bytes', swap, 'memory.swap');
      writeValue(dir, 'memory.limit_in_bytes', limit, 'memory.limit');
    } else {
      writeValue(dir, 'memory.limit_in_bytes', limit, 'memory.limit');
      writeValue(dir, 'memory.memsw.limit_in_bytes', swap, 'memory.swap');
    }
  } else if (limit !== 0) {
    writeValue(dir, 'memory.limit_in_bytes', limit, 'memory.limit');
  } else if (swap !== 0 && hasMemsw) {
    writeValue(dir, 'memory.memsw.limit_in_bytes', swap, 'memory.swap');
  }
  if (m.reservation) writeValue(dir, 'memory.soft_limit_in_bytes', m.reservation, 'memory.reservation');
  // memory.kernel is deprecated in the runtime spec and a no-op on current kernels: not written.
  if (m.kernelTCP) writeValue(dir, 'memory.kmem.tcp.limit_in_bytes', m.kernelTCP, 'memory.kernelTCP');
  if (m.swappiness !== undefined) writeValue(dir, 'memory.swappiness', m.swappiness, 'memory.swappiness');
  if (m.disableOOMKiller) writeValue(dir, 'memory.oom_control', 1, 'memory.disableOOMKiller');
  if (m.useHierarchy !== undefined) writeValue(dir, 'memory.use_hierarchy', m.useHierarchy ? 1 : 0, 'memory.useHierarchy');
}

function applyCpu(dirs: Dirs, c: LinuxCPU): void {
  if (c.shares || c.quota || c.period || c.burst !== undefined || c.realtimePeriod || c.realtimeRuntime || c.idle !== undefined) {
    const dir = dirFor(dirs, 'cpu', 'cpu');
    if (c.shares) writeValue(dir, 'cpu.shares', c.shares, 'cpu.shares');
    writePair(dir, ['cpu.cfs_period_us', c.period, 'cpu.period'], ['cpu.cfs_quota_us', c.quota, 'cpu.quota']);
    if (c.burst !== undefined) writeValue(dir, 'cpu.cfs_burst_us', c.burst, 'cpu.burst');
    writePair(dir, ['cpu.rt_period_us', c.realtimePeriod, 'cpu.realtimePeriod'], ['cpu.rt_runtime_us', c.realtimeRuntime, 'cpu.realtimeRuntime']);
    if (c.idle !== undefined) writeValue(dir, 'cpu.idle', c.idle, 'cpu.idle');
  }
  if (c.cpus) writeValue(dirFor(dirs, 'cpuset', 'cpu.cpus'), 'cpuset.cpus', c.cpus, 'cpu.cpus');
  if (c.mems) writeValue(dirFor(dirs, 'cpuset', 'cpu.mems'), 'cpuset.mems', c.mems, 'cpu.mems');
}

/**
 * A period and the amount used within it (CFS quota, realtime runtime): the period first, so an amount within
 * the new period is accepted; when the kernel refuses the period against the old amount (EINVAL: the old amount
 * over the new period would exceed the parent's), the amount goes first and the period after it.
 */
function writePair(dir: string, [periodFile, period, periodWhat]: [string, number | undefined, string], [amountFile, amount, amountWhat]: [string, number | undefined, string]): void {
  let periodLeft = false;
  if (period) {
    try { writeValue(dir, periodFile, period, periodWhat); } catch (err) {
      if (!amount || (err as { cause?: NodeJS.ErrnoException }).cause?.code !== 'EINVAL') throw err;
      periodLeft = true;
    }
  }
  if (amount) writeValue(dir, amountFile, amount, amountWhat);
  if (periodLeft) writeValue(dir, periodFile, period!, periodWhat);
}

function applyBlkio(dir: string, b: LinuxBlockIO): void {
  // CFQ exposed blkio.weight; with BFQ (current kernels) the knob is blkio.bfq.weight.
  const prefix = fileExists(dir, 'blkio.weight') ? 'blkio.' : fileExists(dir, 'blkio.bfq.weight') ? 'blkio.bfq.' : undefined;
  const weighted = (what: string) => {
    if (!prefix) throw errFailedPrecondition(`cgroup blockIO.${what}: no blkio weight file (blkio.weight or blkio.bfq.weight) on this kernel`);
    return prefix;
  };
  if (b.weight) writeValue(dir, `${weighted('weight')}weight`, b.weight, 'blockIO.weight');
  if (b.leafWeight) writeValue(dir, 'blkio.leaf_weight', b.leafWeight, 'blockIO.leafWeight');
  for (const d of b.weightDevice ?? []) {
    if (d.weight) writeValue(dir, `${weighted('weightDevice')}weight_device`, `${d.major}:${d.minor} ${d.weight}`, 'blockIO.weightDevice');
    if (d.leafWeight) writeValue(dir, 'blkio.leaf_weight_device', `${d.major}:${d.minor} ${d.leafWeight}`, 'blockIO.weightDevice.leafWeight');
  }
  const throttles = [
    ['throttleReadBpsDevice', 'read_bps_device'], ['throttleWriteBpsDevice', 'write_bps_device'],
    ['throttleReadIOPSDevice', 'read_iops_device'], ['throttleWriteIOPSDevice', 'write_iops_device'],
  ] as const;
  for (const [key, file] of throttles) {
    for (const d of b[key] ?? []) writeValue(dir, `blkio.throttle.${file}`, `${d.major}:${d.minor} ${d.rate}`, `blockIO.${key}`);
  }
}

/** The devices.list line of an exception (or of every device: "a"). */
function v1DeviceLine(e: DeviceRuleSet['exceptions'][number]): string {
  const n = (x: number) => (x === -1 ? '*' : String(x));
  return `${e.type} ${n(e.major)}:${n(e.minor)} ${e.access}`;
}

/** The device rules last applied, and the devices.list they left. */
let lastDevices: { rules: string; list: string } | undefined;

function applyDevices(dir: string, rules: LinuxDeviceCgroup[]): void {
  // The same rules over a list they made already (a stage prepared with them, see applyLastDeviceRules): 13 or so
  // writes saved for one read.
  const key = JSON.stringify(rules);
  if (lastDevices?.rules === key && readOptional(dir, 'devices.list') === lastDevices.list) return;
  // What the rules amount to in order (device-rules.ts): the default verdict first, then its exceptions.
  const set = emulateDeviceRules(rules);
  writeValue(dir, set.defaultAllow ? 'devices.allow' : 'devices.deny', 'a', 'devices');
  for (const e of set.exceptions) writeValue(dir, set.defaultAllow ? 'devices.deny' : 'devices.allow', v1DeviceLine(e), `devices ${v1DeviceLine(e)}`);
  lastDevices = { rules: key, list: readOptional(dir, 'devices.list') ?? '' };
}

/** Gives a devices cgroup made ahead for the next container (a stage) the rules the last one got. */
export function applyLastDeviceRules(dir: string): void {
  if (lastDevices) applyDevices(dir, JSON.parse(lastDevices.rules) as LinuxDeviceCgroup[]);
}

export function applyV1(dirs: Dirs, r: LinuxResources): void {
  if (r.memory) applyMemory(dirFor(dirs, 'memory', 'memory'), r.memory);
  if (r.cpu) applyCpu(dirs, r.cpu);
  if (r.pids && r.pids.limit !== undefined) {
    writeValue(dirFor(dirs, 'pids', 'pids'), 'pids.max', r.pids.limit > 0 ? r.pids.limit : 'max', 'pids.limit');
  }
  if (r.blockIO) applyBlkio(dirFor(dirs, 'blkio', 'blockIO'), r.blockIO);
  for (const h of r.hugepageLimits ?? []) {
    const dir = dirFor(dirs, 'hugetlb', 'hugepageLimits');
    if (!fileExists(dir, `hugetlb.${h.pageSize}.limit_in_bytes`)) {
      throw errFailedPrecondition(`cgroup hugepageLimits: page size ${h.pageSize} is not supported by this kernel (no hugetlb.${h.pageSize}.limit_in_bytes)`);
    }
    writeValue(dir, `hugetlb.${h.pageSize}.limit_in_bytes`, h.limit, `hugepageLimits ${h.pageSize}`);
  }
  if (r.network?.classID !== undefined) {
    writeValue(dirFor(dirs, 'net_cls', 'network.classID'), 'net_cls.classid', r.network.classID, 'network.classID');
  }
  for (const p of r.network?.priorities ?? []) {
    writeValue(dirFor(dirs, 'net_prio', 'network.priorities'), 'net_prio.ifpriomap', `${p.name} ${p.priority}`, 'network.priorities');
  }
  for (const [dev, v] of Object.entries(r.rdma ?? {})) {
    if (v.hcaHandles === undefined && v.hcaObjects === undefined) continue;
    const parts = [v.hcaHandles !== undefined ? `hca_handle=${v.hcaHandles}` : '', v.hcaObjects !== undefined ? `hca_object=${v.hcaObjects}` : ''];
    writeValue(dirFor(dirs, 'rdma', 'rdma'), 'rdma.max', `${dev} ${parts.filter(Boolean).join(' ')}`, `rdma.${dev}`);
  }
  if (r.devices) applyDevices(dirFor(dirs, 'devices', 'devices'), r.devices);
  if (r.unified && Object.keys(r.unified).length > 0) {
    throw errFailedPrecondition(`invalid configuration: cgroup unified: ${Object.keys(r.unified).join(', ')}: this host has no cgroup v2 hierarchy`);
  }
}
