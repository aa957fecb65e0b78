// Checks a linux.resources object before anything is written, so a bad value is refused with an error naming
// the field and nothing is left half-applied. Limits the kernel itself judges (usage above a new limit,
// missing hugepage sizes) are reported when written.
import { readFileSync } from 'node:fs';
import { errInvalidArgument } from '../../api/errdefs.ts';
import type { LinuxResources, LinuxThrottleDevice, LinuxWeightDevice } from './types.ts';

const P = 'linux.resources';

function bad(field: string, value: unknown, rule: string): never {
  throw errInvalidArgument(`${P}.${field}: ${JSON.stringify(value)} is not valid (${rule})`);
}

function int(field: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER, rule?: string): void {
  if (v === undefined || v === null) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    bad(field, v, rule ?? (max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`));
  }
}

/** -1 (no limit) or a non-negative integer. */
function limit(field: string, v: unknown): void {
  int(field, v, -1, Number.MAX_SAFE_INTEGER, '-1 for no limit or an integer ≥ 0');
}

/** Parses a cpuset list ("0-3,5") into its members, or undefined when malformed. */
export function parseCpuList(list: string): Set<number> | undefined {
  const out = new Set<number>();
  if (list.trim() === '') return out;
  for (const part of list.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) return undefined;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) return undefined;
    for (let i = lo; i <= hi; i++) out.add(i);
  }
  return out;
}

function cpuset(field: string, v: string | undefined, onlinePath: string, what: string): void {
  if (v === undefined || v === '') return;
  const set = typeof v === 'string' ? parseCpuList(v) : undefined;
  if (!set) bad(field, v, 'a list like "0-3,5"');
  let onlineText = '0';
  try { onlineText = readFileSync(onlinePath, 'utf8').trim(); } catch { /* no NUMA info: node 0 only */ }
  const online = parseCpuList(onlineText) ?? new Set<number>();
  for (const n of set) if (!online.has(n)) bad(field, v, `${what} ${n} is not online here (online: ${onlineText})`);
}

function devices(field: string, list: LinuxWeightDevice[] | LinuxThrottleDevice[] | undefined, value: 'weight' | 'rate'): void {
  if (list === undefined) return;
  if (!Array.isArray(list)) bad(field, list, 'an array');
  list.forEach((d, i) => {
    int(`${field}[${i}].major`, d.major, 0);
    int(`${field}[${i}].minor`, d.minor, 0);
    if (value === 'rate') int(`${field}[${i}].rate`, (d as LinuxThrottleDevice).rate, 0);
    else {
      int(`${field}[${i}].weight`, (d as LinuxWeightDevice).weight, 10, 1000);
      int(`${field}[${i}].leafWeight`, (d as LinuxWeightDevice).leafWeight, 10, 1000);
    }
  });
}

export function validateResources(r: LinuxResources): void {
  if (typeof r !== 'object' || r === null) bad('', r, 'an object');
  const m = r.memory;
  if (m) {
    for (const k of ['limit', 'reservation', 'swap', 'kernel', 'kernelTCP'] as const) limit(`memory.${k}`, m[k]);
    int('memory.swappiness', m.swappiness, 0, 100);
    if (m.swap !== undefined && m.swap > 0 && m.limit !== undefined && m.limit > 0 && m.swap < m.limit) {
      bad('memory.swap', m.swap, `memory+swap must be ≥ memory.limit ${m.limit}`);
    }
  }
  const c = r.cpu;
  if (c) {
    if (c.shares !== undefined && c.shares !== 0) int('cpu.shares', c.shares, 2, 262144);
    if (c.quota !== undefined && c.quota !== -1 && c.quota !== 0) int('cpu.quota', c.quota, 1000, Number.MAX_SAFE_INTEGER, '-1 for no limit or ≥ 1000 µs');
    if (c.period !== undefined && c.period !== 0) int('cpu.period', c.period, 1000, 1_000_000);
    int('cpu.burst', c.burst, 0);
    if (c.burst && c.quota !== undefined && c.quota > 0 && c.burst > c.quota) bad('cpu.burst', c.burst, `must not exceed cpu.quota ${c.quota}`);
    int('cpu.realtimeRuntime', c.realtimeRuntime, -1);
    int('cpu.realtimePeriod', c.realtimePeriod, 0);
    int('cpu.idle', c.idle, 0, 1);
    cpuset('cpu.cpus', c.cpus, '/sys/devices/system/cpu/online', 'CPU');
    cpuset('cpu.mems', c.mems, '/sys/devices/system/node/online', 'memory node');
  }
  if (r.pids) int('pids.limit', r.pids.limit, -1, Number.MAX_SAFE_INTEGER, '-1 or 0 for no limit, or a positive integer');
  const b = r.blockIO;
  if (b) {
    if (b.weight !== 0) int('blockIO.weight', b.weight, 10, 1000);
    if (b.leafWeight !== 0) int('blockIO.leafWeight', b.leafWeight, 10, 1000);
    devices('blockIO.weightDevice', b.weightDevice, 'weight');
    for (const k of ['throttleReadBpsDevice', 'throttleWriteBpsDevice', 'throttleReadIOPSDevice', 'throttleWriteIOPSDevice'] as const) {
      devices(`blockIO.${k}`, b[k], 'rate');
    }
  }
  (r.hugepageLimits ?? []).forEach((h, i) => {
    if (typeof h.pageSize !== 'string' || !/^\d+[KMGT]B$/.test(h.pageSize)) bad(`hugepageLimits[${i}].pageSize`, h.pageSize, 'a size like "2MB" or "1GB"');
    int(`hugepageLimits[${i}].limit`, h.limit, 0);
  });
  if (r.network) {
    int('network.classID', r.network.classID, 0, 0xffffffff);
    (r.network.priorities ?? []).forEach((p, i) => {
      if (typeof p.name !== 'string' || !/^[^\s/]+$/.test(p.name)) bad(`network.priorities[${i}].name`, p.name, 'an interface name');
      int(`network.priorities[${i}].priority`, p.priority, 0, 0xffffffff);
    });
  }
  for (const [dev, v] of Object.entries(r.rdma ?? {})) {
    if (!/^[^\s/]+$/.test(dev)) bad(`rdma`, dev, 'an RDMA device name');
    int(`rdma.${dev}.hcaHandles`, v.hcaHandles, 0, 0x7fffffff);
    int(`rdma.${dev}.hcaObjects`, v.hcaObjects, 0, 0x7fffffff);
  }
  for (const [key, value] of Object.entries(r.unified ?? {})) {
    if (!/^[a-z][a-z0-9_]*\.[A-Za-z0-9_.]+$/.test(key)) bad(`unified`, key, 'a cgroup v2 file name like "memory.high"');
    if (key === 'cgroup.procs' || key === 'cgroup.threads' || key === 'cgroup.kill' || key === 'cgroup.freeze') {
      bad('unified', key, 'membership, kill and freeze files are managed by the runtime');
    }
    if (typeof value !== 'string') bad(`unified.${key}`, value, 'a string');
  }
  (r.devices ?? []).forEach((d, i) => {
    if (typeof d.allow !== 'boolean') bad(`devices[${i}].allow`, d.allow, 'true or false');
    if (d.type !== undefined && !['a', 'b', 'c'].includes(d.type)) bad(`devices[${i}].type`, d.type, 'one of "a", "b", "c"');
    int(`devices[${i}].major`, d.major, -1);
    int(`devices[${i}].minor`, d.minor, -1);
    // Letters other than r, w and m are ignored, as runc's device rules ignore them ("rwa" is "rw").
    if (d.access !== undefined && typeof d.access !== 'string') bad(`devices[${i}].access`, d.access, 'a string of letters from "rwm"');
  });
}
