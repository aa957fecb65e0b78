// `update`: new resource limits for a running container, from flags or from linux.resources JSON (-r FILE, or
// - for stdin), as runc 1.1.5 reads them: JSON keys match case-insensitively (Go's decoder), null or 0 leaves a
// value unchanged, memory sizes take units ("50M"), -1 lifts a limit. Devices are never touched by update.
import { readFileSync } from 'node:fs';
import { errInvalidArgument, errNotImplemented } from '../../../api/errdefs.ts';
import type { LinuxResources } from '../../cgroups/types.ts';
import { str, type Flags } from './args.ts';
import { warn } from './log.ts';

/** The resource keys runc's update takes, by their lower-case spelling. */
const SHAPE: Record<string, [string, Record<string, string>?]> = {
  memory: ['memory', { limit: 'limit', reservation: 'reservation', swap: 'swap', kernel: 'kernel', kerneltcp: 'kernelTCP', swappiness: 'swappiness', disableoomkiller: 'disableOOMKiller' }],
  cpu: ['cpu', { shares: 'shares', quota: 'quota', period: 'period', realtimeruntime: 'realtimeRuntime', realtimeperiod: 'realtimePeriod', cpus: 'cpus', mems: 'mems', burst: 'burst', idle: 'idle' }],
  blockio: ['blockIO', { weight: 'weight' }],
  pids: ['pids', { limit: 'limit' }],
  unified: ['unified'],
};

export function resourcesForUpdate(flags: Flags): LinuxResources {
  if (str(flags, 'l3-cache-schema') || str(flags, 'mem-bw-schema')) throw errNotImplemented('Intel RDT is not supported by berth-runc');
  const file = str(flags, 'resources');
  const r = file ? fromJson(file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8'), file) : fromFlags(flags);
  if (r.memory?.kernel || r.memory?.kernelTCP) warn('Kernel memory settings are ignored and will be removed');
  if (r.memory) { delete r.memory.kernel; delete r.memory.kernelTCP; }
  return pruneUnchanged(r);
}

function fromJson(text: string, from: string): LinuxResources {
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch (err) { throw errInvalidArgument(`update -r ${from}: ${(err as Error).message}`); }
  if (!parsed || typeof parsed !== 'object') throw errInvalidArgument(`update -r ${from}: not a JSON object`);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parsed)) {
    const shape = SHAPE[key.toLowerCase()];
    if (!shape || value === null) continue;
    const [name, fields] = shape;
    if (!fields) { out[name] = value; continue; }
    const section: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const field = fields[k.toLowerCase()];
      if (field && v !== null) section[field] = v;
    }
    out[name] = section;
  }
  return out as LinuxResources;
}

function fromFlags(flags: Flags): LinuxResources {
  const num = (key: string, signed: boolean): number | undefined => {
    const v = str(flags, key);
    if (v === undefined || v === '') return undefined;
    if (!(signed ? /^[+-]?\d+$/ : /^\+?\d+$/).test(v)) throw errInvalidArgument(`invalid value for ${key}: strconv.Parse${signed ? 'Int' : 'Uint'}: parsing ${JSON.stringify(v)}: invalid syntax`);
    return Number(v);
  };
  const bytes = (key: string): number | undefined => {
    const v = str(flags, key);
    if (v === undefined || v === '') return undefined;
    return v === '-1' ? -1 : ramInBytes(v, key);
  };
  const cpus = str(flags, 'cpuset-cpus') || undefined;
  const mems = str(flags, 'cpuset-mems') || undefined;
  return {
    memory: { limit: bytes('memory'), reservation: bytes('memory-reservation'), swap: bytes('memory-swap'), kernel: bytes('kernel-memory'), kernelTCP: bytes('kernel-memory-tcp') },
    cpu: { shares: num('cpu-share', false), quota: num('cpu-quota', true), period: num('cpu-period', false), realtimePeriod: num('cpu-rt-period', false), realtimeRuntime: num('cpu-rt-runtime', true), cpus, mems },
    blockIO: { weight: num('blkio-weight', true) },
    pids: { limit: num('pids-limit', true) ?? 0 },
  };
}

/** Sizes as docker's units.RAMInBytes reads them: a number, optionally with a binary unit (k, m, g, t, p; "b"/"ib" optional). */
export function ramInBytes(text: string, key: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$/i.exec(text.trim());
  if (!m) throw errInvalidArgument(`invalid value for ${key}: invalid size: ${JSON.stringify(text)}`);
  const power = ' kmgtp'.indexOf((m[2] || ' ').toLowerCase());
  return Math.floor(Number(m[1]) * 1024 ** power);
}

/** Drops what stays as it is (absent, null or 0, as runc treats them), and empty sections. */
function pruneUnchanged(r: LinuxResources): LinuxResources {
  const out: Record<string, unknown> = {};
  for (const [section, value] of Object.entries(r)) {
    if (value === undefined) continue;
    if (section === 'unified') { if (Object.keys(value).length) out[section] = value; continue; }
    const kept = Object.fromEntries(Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined && v !== 0 && v !== ''));
    if (Object.keys(kept).length) out[section] = kept;
  }
  return out as LinuxResources;
}
