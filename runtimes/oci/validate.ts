// Validates a bundle's config.json before anything is created, with errors that name the field.
import { readFileSync, statSync } from 'node:fs';
import { join, posix, resolve } from 'node:path';
import { errInvalidArgument, errNotFound } from '../../api/errdefs.ts';
import { CAPABILITIES, NAMESPACE_FLAGS, RLIMITS } from './linux-constants.ts';
import type { Spec } from './spec.ts';
import { compileSeccomp, type LinuxSeccomp } from '../seccomp/compile.ts';

const invalid = (field: string, why: string) => errInvalidArgument(`config.json: ${field}: ${why}`);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isUint = (v: unknown) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;

/** Reads and validates `<bundle>/config.json`; returns the spec and the absolute rootfs path. */
export function loadBundle(bundle: string): { spec: Spec; bundle: string; rootfs: string } {
  const dir = resolve(bundle);
  let st;
  try { st = statSync(dir); } catch { throw errNotFound(`bundle ${dir} does not exist`); }
  if (!st.isDirectory()) throw errInvalidArgument(`bundle ${dir} is not a directory`);
  let text: string;
  try { text = readFileSync(join(dir, 'config.json'), 'utf8'); } catch { throw errNotFound(`bundle ${dir} has no config.json`); }
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch (err) {
    throw errInvalidArgument(`config.json in ${dir} is not valid JSON: ${(err as Error).message}`);
  }
  const spec = validateSpec(parsed);
  const rootfs = resolve(dir, spec.root!.path);
  let rootSt;
  try { rootSt = statSync(rootfs); } catch { throw invalid('root.path', `${rootfs} does not exist`); }
  if (!rootSt.isDirectory()) throw invalid('root.path', `${rootfs} is not a directory`);
  return { spec, bundle: dir, rootfs };
}

export function validateSpec(raw: unknown): Spec {
  if (!isObject(raw)) throw invalid('(top level)', 'must be a JSON object');
  if (typeof raw.ociVersion !== 'string' || !/^1\.\d+\.\d+/.test(raw.ociVersion)) {
    throw invalid('ociVersion', `${JSON.stringify(raw.ociVersion)} is not a supported version (want 1.x.y)`);
  }
  if (!isObject(raw.root) || typeof raw.root.path !== 'string' || raw.root.path === '') throw invalid('root.path', 'must be a non-empty string');
  if (raw.root.readonly !== undefined && typeof raw.root.readonly !== 'boolean') throw invalid('root.readonly', 'must be a boolean');
  validateProcess(raw.process);
  for (const key of ['hostname', 'domainname'] as const) {
    if (raw[key] !== undefined && typeof raw[key] !== 'string') throw invalid(key, 'must be a string');
  }
  validateMounts(raw.mounts);
  validateHooks(raw.hooks);
  if (raw.annotations !== undefined && (!isObject(raw.annotations) || Object.values(raw.annotations).some((v) => typeof v !== 'string'))) {
    throw invalid('annotations', 'must be an object of strings');
  }
  validateLinux(raw.linux, raw);
  return raw as unknown as Spec;
}

export function validateProcess(p: unknown): void {
  if (p === undefined) return;
  if (!isObject(p)) throw invalid('process', 'must be an object');
  if (!Array.isArray(p.args) || p.args.length === 0 || p.args.some((a) => typeof a !== 'string')) {
    throw invalid('process.args', 'must be a non-empty array of strings');
  }
  if (typeof p.cwd !== 'string' || !p.cwd.startsWith('/')) throw invalid('process.cwd', `${JSON.stringify(p.cwd)} must be an absolute path`);
  if (!isObject(p.user) || !isUint(p.user.uid) || !isUint(p.user.gid)) throw invalid('process.user', 'uid and gid must be integers in 0..2^32-1');
  if (p.user.additionalGids !== undefined && (!Array.isArray(p.user.additionalGids) || !p.user.additionalGids.every(isUint))) {
    throw invalid('process.user.additionalGids', 'must be an array of integers');
  }
  if (p.user.umask !== undefined && !(isUint(p.user.umask) && (p.user.umask as number) <= 0o777)) throw invalid('process.user.umask', 'must be 0..0777');
  if (p.env !== undefined && (!Array.isArray(p.env) || p.env.some((e) => typeof e !== 'string' || !e.includes('=')))) {
    throw invalid('process.env', 'must be an array of "NAME=value" strings');
  }
  if (p.terminal !== undefined && typeof p.terminal !== 'boolean') throw invalid('process.terminal', 'must be a boolean');
  if (p.noNewPrivileges !== undefined && typeof p.noNewPrivileges !== 'boolean') throw invalid('process.noNewPrivileges', 'must be a boolean');
  if (p.oomScoreAdj !== undefined && !(Number.isInteger(p.oomScoreAdj) && Math.abs(p.oomScoreAdj as number) <= 1000)) {
    throw invalid('process.oomScoreAdj', 'must be an integer in -1000..1000');
  }
  if (p.capabilities !== undefined) {
    if (!isObject(p.capabilities)) throw invalid('process.capabilities', 'must be an object');
    for (const [set, names] of Object.entries(p.capabilities)) {
      if (!['bounding', 'effective', 'inheritable', 'permitted', 'ambient'].includes(set)) throw invalid(`process.capabilities.${set}`, 'is not a capability set');
      if (!Array.isArray(names)) throw invalid(`process.capabilities.${set}`, 'must be an array');
      for (const name of names) {
        if (!(CAPABILITIES as readonly string[]).includes(name)) throw invalid(`process.capabilities.${set}`, `unknown capability ${JSON.stringify(name)}`);
      }
    }
  }
  if (p.rlimits !== undefined) {
    if (!Array.isArray(p.rlimits)) throw invalid('process.rlimits', 'must be an array');
    for (const r of p.rlimits) {
      if (!isObject(r) || typeof r.type !== 'string' || !(r.type in RLIMITS)) throw invalid('process.rlimits', `unknown rlimit type ${JSON.stringify(isObject(r) ? r.type : r)}`);
      if (!Number.isInteger(r.soft) || !Number.isInteger(r.hard) || (r.soft as number) < 0 || (r.hard as number) < 0) throw invalid(`process.rlimits ${r.type}`, 'soft and hard must be non-negative integers');
      if ((r.soft as number) > (r.hard as number)) throw invalid(`process.rlimits ${r.type}`, `soft limit ${r.soft} exceeds hard limit ${r.hard}`);
    }
  }
}

/** A container path that stays inside the root once normalized: absolute, and no `..` climbing above `/`. */
export function checkContainerPath(field: string, path: unknown): string {
  if (typeof path !== 'string' || path === '') throw invalid(field, 'must be a non-empty string');
  if (!path.startsWith('/')) throw invalid(field, `${JSON.stringify(path)} must be an absolute path`);
  let depth = 0;
  for (const part of path.split('/')) {
    if (part === '..') depth--;
    else if (part !== '' && part !== '.') depth++;
    if (depth < 0) throw invalid(field, `${JSON.stringify(path)} climbs out of the container root with ".."`);
  }
  return posix.normalize(path);
}

function validateMounts(mounts: unknown): void {
  if (mounts === undefined) return;
  if (!Array.isArray(mounts)) throw invalid('mounts', 'must be an array');
  mounts.forEach((m, i) => {
    if (!isObject(m)) throw invalid(`mounts[${i}]`, 'must be an object');
    checkContainerPath(`mounts[${i}].destination`, m.destination);
    if (m.type !== undefined && typeof m.type !== 'string') throw invalid(`mounts[${i}].type`, 'must be a string');
    if (m.source !== undefined && typeof m.source !== 'string') throw invalid(`mounts[${i}].source`, 'must be a string');
    if (m.options !== undefined && (!Array.isArray(m.options) || m.options.some((o) => typeof o !== 'string'))) {
      throw invalid(`mounts[${i}].options`, 'must be an array of strings');
    }
  });
}

function validateHooks(hooks: unknown): void {
  if (hooks === undefined) return;
  if (!isObject(hooks)) throw invalid('hooks', 'must be an object');
  for (const [kind, list] of Object.entries(hooks)) {
    if (!['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'].includes(kind)) throw invalid(`hooks.${kind}`, 'is not a hook kind');
    if (!Array.isArray(list)) throw invalid(`hooks.${kind}`, 'must be an array');
    list.forEach((h, i) => {
      if (!isObject(h) || typeof h.path !== 'string' || !h.path.startsWith('/')) throw invalid(`hooks.${kind}[${i}].path`, 'must be an absolute path');
      if (h.timeout !== undefined && !(Number.isInteger(h.timeout) && (h.timeout as number) > 0)) throw invalid(`hooks.${kind}[${i}].timeout`, 'must be a positive integer');
    });
  }
}

function validateLinux(linux: unknown, spec: Record<string, unknown>): void {
  if (linux === undefined) return;
  if (!isObject(linux)) throw invalid('linux', 'must be an object');
  const seen = new Set<string>();
  if (linux.namespaces !== undefined) {
    if (!Array.isArray(linux.namespaces)) throw invalid('linux.namespaces', 'must be an array');
    for (const ns of linux.namespaces) {
      if (!isObject(ns) || typeof ns.type !== 'string' || !(ns.type in NAMESPACE_FLAGS)) {
        throw invalid('linux.namespaces', `unknown namespace type ${JSON.stringify(isObject(ns) ? ns.type : ns)}`);
      }
      if (seen.has(ns.type)) throw invalid('linux.namespaces', `namespace ${ns.type} is listed twice`);
      seen.add(ns.type);
      if (ns.path !== undefined && (typeof ns.path !== 'string' || !ns.path.startsWith('/'))) throw invalid(`linux.namespaces ${ns.type}.path`, 'must be an absolute path');
    }
  }
  if (spec.hostname && !seen.has('uts')) throw invalid('hostname', 'setting a hostname needs a new uts namespace');
  for (const key of ['uidMappings', 'gidMappings'] as const) {
    const maps = linux[key];
    if (maps === undefined) continue;
    if (!Array.isArray(maps) || maps.some((m) => !isObject(m) || !isUint(m.containerID) || !isUint(m.hostID) || !isUint(m.size) || m.size === 0)) {
      throw invalid(`linux.${key}`, 'must be an array of {containerID, hostID, size>0} integers');
    }
    if (!seen.has('user')) throw invalid(`linux.${key}`, 'id mappings need a user namespace');
  }
  if (seen.has('user') && !linux.uidMappings) throw invalid('linux.uidMappings', 'a new user namespace needs uid and gid mappings');
  if (linux.cgroupsPath !== undefined && typeof linux.cgroupsPath !== 'string') throw invalid('linux.cgroupsPath', 'must be a string');
  if (linux.sysctl !== undefined && (!isObject(linux.sysctl) || Object.values(linux.sysctl).some((v) => typeof v !== 'string'))) {
    throw invalid('linux.sysctl', 'must be an object of strings');
  }
  for (const key of Object.keys(linux.sysctl ?? {})) checkSysctl(key, linux.namespaces as { type: string; path?: string }[] | undefined);
  for (const key of ['maskedPaths', 'readonlyPaths'] as const) {
    const list = linux[key];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw invalid(`linux.${key}`, 'must be an array');
    list.forEach((p, i) => checkContainerPath(`linux.${key}[${i}]`, p));
  }
  if (linux.devices !== undefined) {
    if (!Array.isArray(linux.devices)) throw invalid('linux.devices', 'must be an array');
    linux.devices.forEach((d, i) => {
      if (!isObject(d) || !['c', 'b', 'u', 'p'].includes(d.type as string)) throw invalid(`linux.devices[${i}].type`, 'must be one of c, b, u, p');
      checkContainerPath(`linux.devices[${i}].path`, d.path);
    });
  }
  if (linux.rootfsPropagation !== undefined && !['private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared', 'unbindable', 'runbindable'].includes(linux.rootfsPropagation as string)) {
    throw invalid('linux.rootfsPropagation', `unknown propagation ${JSON.stringify(linux.rootfsPropagation)}`);
  }
  if (linux.timeOffsets !== undefined) {
    if (!seen.has('time')) throw invalid('linux.timeOffsets', 'needs a time namespace in linux.namespaces');
    if (!isObject(linux.timeOffsets)) throw invalid('linux.timeOffsets', 'must be an object');
    for (const [clock, off] of Object.entries(linux.timeOffsets)) {
      if (clock !== 'monotonic' && clock !== 'boottime') throw invalid(`linux.timeOffsets.${clock}`, 'only monotonic and boottime clocks can be offset');
      const o = off as { secs?: unknown; nanosecs?: unknown };
      if (!isObject(off) || !Number.isSafeInteger(o.secs ?? 0) || !Number.isInteger(o.nanosecs ?? 0) || (o.nanosecs as number ?? 0) < 0 || (o.nanosecs as number ?? 0) > 999_999_999) {
        throw invalid(`linux.timeOffsets.${clock}`, 'want {secs: integer, nanosecs: 0..999999999}');
      }
    }
  }
  if (linux.seccomp !== undefined) {
    if (!isObject(linux.seccomp)) throw invalid('linux.seccomp', 'must be an object');
    // Compiling checks every action, operator, index and architecture, naming the field that is wrong.
    compileSeccomp(linux.seccomp as unknown as LinuxSeccomp);
  }
}

const IPC_SYSCTLS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);

/** A sysctl is written inside the container, so it must belong to a namespace the container does not share
 * with the host: else it would change the host's (runc refuses the same ones). */
function checkSysctl(key: string, namespaces: { type: string; path?: string }[] = []): void {
  const field = `linux.sysctl ${JSON.stringify(key)}`;
  const ns = (type: string) => namespaces.find((n) => n.type === type);
  if (!/^[A-Za-z0-9_-]+([./][A-Za-z0-9_:@+-]+)*$/.test(key)) throw invalid(field, 'is not a sysctl name');
  key = sysctlPath(key).replaceAll('/', '.');
  if (IPC_SYSCTLS.has(key) || key.startsWith('fs.mqueue.')) {
    if (!ns('ipc')) throw invalid(field, 'is not allowed in the host\'s ipc namespace');
    return;
  }
  if (key.startsWith('net.')) {
    const net = ns('network');
    if (!net || (net.path && sameFile(net.path, '/proc/self/ns/net'))) throw invalid(field, 'is not allowed in the host\'s network namespace');
    return;
  }
  if (key === 'kernel.domainname' && ns('uts')) return;
  if (key === 'kernel.hostname' && ns('uts')) throw invalid(field, 'conflicts with the "hostname" field: set that instead');
  throw invalid(field, 'is not in a namespace of the container\'s own (only ipc, net.* and kernel.domainname sysctls are)');
}

function sameFile(a: string, b: string): boolean {
  try {
    const [x, y] = [statSync(a), statSync(b)];
    return x.ino === y.ino && x.dev === y.dev;
  } catch { throw invalid('linux.namespaces network.path', `${a} cannot be read`); }
}

/** The sysctl's file below /proc/sys: "a.b.c" is a/b/c; a name written with slashes ("net/ipv4/conf/eth0.1/x",
 * where a part holds a dot) is already one. */
export function sysctlPath(key: string): string {
  return key[key.search(/[./]/)] === '/' ? key : key.replaceAll('.', '/');
}
