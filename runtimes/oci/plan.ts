// Turns a validated spec into the plan native/berth-init executes. All policy is decided here; the C side
// only performs the records in order.
//
// Plan format v1: a sequence of records, each `tag NUL argc NUL arg1 NUL ... argN NUL`. Records:
//   version 1 · mode create|run · clone <CLONE_NEW* flags> · join <flag> <ns path> · uidmap <text> · gidmap <text>
//   timens <monotonic secs> <nsecs> <boottime secs> <nsecs>
//   propagation <MS_* flags for /> · rootfs <host path> · pivot 1|0 · rootro
//   mount <source> <dest> <fstype> <MS_* flags> <data> <propagation flags> <d|f: create a dir or a file> [copyup|hostfd]
//     (hostfd: a bind source berth-init opens as the host's root and passes to the container, see native/mount_source.h)
//   mountattr <dest> <MOUNT_ATTR_* to set> <to clear>: mount_setattr(AT_RECURSIVE) on the mount at dest
//   remountro <dest> <MS_* flags kept> <MOUNT_ATTR_* to set> <to clear>: after pivot, a tmpfs or /dev mounted
//     writable so far turns read-only, then gets its recursive attributes
//   mkdev <dest> <c|b|p> <major> <minor> <octal mode> <uid> <gid> · symlink <target> <dest>
//   execfifo <host path> · masked <path> · readonly <path> · hostname <h> · domainname <d>
//   sysctl <key> <path below /proc/sys> <value> · rlimit <resource> <soft> <hard> · oomscoreadj <n> · preservefds <n>
//   user <uid> <gid> · groups <gid>... · umask <octal> · nnp · caps <bnd> <eff> <perm> <inh> <amb> (decimal masks)
//   seccomp <flags> <hex filter> · cwd <path> · env <NAME=value>... · args <arg>...
//   seccompagent <listener socket path> <state JSON file>: the filter's listener fd goes to that agent with the
//     state (host paths; the runtime writes the state before its go-ahead)
//   console <host socket path> <width> <height>: a pty for the process, its master sent over the socket
//   hook createContainer|startContainer <timeout s, 0: none> <path> <nargs> <args>... <env>...
//   hookstate <state JSON file for createContainer> <for startContainer> (host paths, read before pivot_root)
// Container paths are absolute inside the rootfs; C resolves them without leaving it.
import { statSync } from 'node:fs';
import { posix, resolve } from 'node:path';
import { errInvalidArgument, errNotImplemented } from '../../api/errdefs.ts';
import type { CgroupManager } from '../cgroups/types.ts';
import { CAPABILITIES, MOUNT_FLAG_OPTIONS, MS, NAMESPACE_FILES, NAMESPACE_FLAGS, PROPAGATION_OPTIONS, RECURSIVE_MOUNT_OPTIONS, RLIMITS } from './linux-constants.ts';
import type { Mount, Process, Spec } from './spec.ts';
import { sysctlPath } from './validate.ts';
import { compileSeccomp, type LinuxSeccomp } from '../seccomp/compile.ts';

export const PLAN_VERSION = 1;

export interface PlanInput {
  spec: Spec;
  rootfs: string;
  /** create: the process waits on execFifo for `start`; run: it execs as soon as it is set up. */
  mode: 'create' | 'run';
  execFifo?: string;
  cgroup: CgroupManager;
  preserveFds?: number;
  noPivot?: boolean;
  /** Where the pty master goes when process.terminal is true (runc's --console-socket). */
  consoleSocket?: string;
  /** Where the runtime writes the state JSON the in-container hooks get (creating, created). */
  hookStateFiles?: [string, string];
  /** A cgroup2 directory the init is cloned into (CLONE_INTO_CGROUP): it is never moved there. */
  cloneInto?: string;
  /** berth-init writes the container's pid here (atomically) before it reports it. */
  pidFile?: string;
  /** Where the runtime writes the state a seccomp agent gets (SCMP_ACT_NOTIFY rules) before its go-ahead. */
  seccompStateFile?: string;
  /** The container goes on with its setup without waiting for the runtime's go-ahead after its pid is reported:
   * the runtime has nothing to do in between (no hooks to run, no cgroup to move it into). */
  proceed?: boolean;
}

class PlanWriter {
  private parts: string[] = [];
  add(tag: string, ...args: (string | number)[]): void {
    const strings = args.map(String);
    for (const s of [tag, ...strings]) if (s.includes('\0')) throw errInvalidArgument(`plan: ${tag} argument contains a NUL byte`);
    this.parts.push(tag, String(strings.length), ...strings);
  }
  append(other: PlanWriter): void { this.parts.push(...other.parts); }
  encode(): Buffer { return Buffer.from(this.parts.join('\0') + '\0'); }
}

export interface MountOptions {
  flags: number;
  propagation: number;
  /** Filesystem data (anything that is not a flag, a propagation, a recursive attribute or an extension). */
  data: string[];
  /** mount_setattr(AT_RECURSIVE) attributes to set and clear (rro, rnosuid, ...). */
  attrSet: number;
  attrClr: number;
  tmpcopyup: boolean;
}

export function parseMountOptions(options: string[] = []): MountOptions {
  const o: MountOptions = { flags: 0, propagation: 0, data: [], attrSet: 0, attrClr: 0, tmpcopyup: false };
  for (const opt of options) {
    const known = MOUNT_FLAG_OPTIONS[opt];
    const recursive = RECURSIVE_MOUNT_OPTIONS[opt];
    if (known) o.flags = (o.flags | known[0]) & ~known[1];
    else if (opt in PROPAGATION_OPTIONS) o.propagation |= PROPAGATION_OPTIONS[opt]!;
    else if (recursive) {
      o.attrSet = (o.attrSet & ~recursive[1]) | recursive[0];
      o.attrClr = (o.attrClr & ~recursive[0]) | recursive[1];
    } else if (opt === 'tmpcopyup') o.tmpcopyup = true;
    else o.data.push(opt);
  }
  return o;
}

const capMask = (names: string[] = []) => names.reduce((m, n) => m | (1n << BigInt(CAPABILITIES.indexOf(n as never))), 0n);

export function buildPlan(input: PlanInput): Buffer {
  const { spec, rootfs, mode } = input;
  const process = spec.process;
  if (!process) throw errInvalidArgument('config.json: process: required to create a container');
  const linux = spec.linux ?? {};
  const plan = new PlanWriter();
  plan.add('version', PLAN_VERSION);
  plan.add('mode', mode);

  let cloneFlags = 0;
  const namespaces = linux.namespaces ?? [];
  for (const ns of namespaces) {
    const flag = NAMESPACE_FLAGS[ns.type]!;
    if (ns.path) plan.add('join', flag, ns.path);
    // A new time namespace cannot come from clone(): berth-init unshares it and sets the offsets first.
    else if (ns.type === 'time') {
      const off = linux.timeOffsets ?? {};
      plan.add('timens', off.monotonic?.secs ?? 0, off.monotonic?.nanosecs ?? 0, off.boottime?.secs ?? 0, off.boottime?.nanosecs ?? 0);
    } else cloneFlags |= flag;
  }
  plan.add('clone', cloneFlags);
  if (input.cloneInto) plan.add('cgroup2', input.cloneInto);
  if (input.pidFile) plan.add('pidfile', input.pidFile);
  if (input.proceed) plan.add('proceed');
  const idMap = (maps: { containerID: number; hostID: number; size: number }[]) => maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
  if (linux.uidMappings) plan.add('uidmap', idMap(linux.uidMappings));
  if (linux.gidMappings) plan.add('gidmap', idMap(linux.gidMappings));

  const hasMountNs = namespaces.some((ns) => ns.type === 'mount');
  if (!hasMountNs) throw errNotImplemented('config.json: linux.namespaces: containers without a mount namespace are not supported');
  plan.add('propagation', linux.rootfsPropagation ? PROPAGATION_OPTIONS[linux.rootfsPropagation]! : MS.SLAVE | MS.REC);
  plan.add('rootfs', rootfs);
  // Without pivot_root the host's root stays below the container's, and berth hides its proc and sysfs from
  // user namespaces by covers made before the container's namespaces (native/rootfs.c cover_host_pseudofs). A
  // container with a user namespace of its own could not mount its own proc under those covers, and without
  // them it could mount a fresh, unmasked one: refused rather than left open (a joined one the same).
  if (input.noPivot && namespaces.some((ns) => ns.type === 'user')) {
    throw errNotImplemented('--no-pivot with a user namespace is not supported (the host\'s proc would stay mountable): use pivot_root');
  }
  plan.add('pivot', input.noPivot ? 0 : 1);

  const userns = namespaces.some((ns) => ns.type === 'user' && !ns.path);
  // Records the C side performs at the end, once the root is in place (see addMount).
  const late = new PlanWriter();
  (spec.mounts ?? []).forEach((m, i) => addMount(plan, m, i, input.cgroup, userns, late, linux.gidMappings));
  if ((spec.mounts ?? []).some((m) => posix.normalize(m.destination) === '/dev')) addDefaultDevices(plan);
  for (const d of linux.devices ?? []) {
    plan.add('mkdev', d.path, d.type === 'u' ? 'c' : d.type, d.major ?? 0, d.minor ?? 0, (d.fileMode ?? 0o666).toString(8), d.uid ?? 0, d.gid ?? 0);
  }
  if (input.execFifo) plan.add('execfifo', input.execFifo);
  addContainerHooks(plan, spec, input.hookStateFiles);
  for (const p of linux.readonlyPaths ?? []) plan.add('readonly', p);
  for (const p of linux.maskedPaths ?? []) plan.add('masked', p);
  plan.append(late);
  if (spec.root?.readonly) plan.add('rootro');

  if (spec.hostname) plan.add('hostname', spec.hostname);
  if (spec.domainname) plan.add('domainname', spec.domainname);
  for (const [key, value] of Object.entries(linux.sysctl ?? {})) plan.add('sysctl', key, sysctlPath(key), value);
  addProcess(plan, process, input.preserveFds, linux.seccomp as LinuxSeccomp | undefined, input.consoleSocket, input.seccompStateFile);
  return plan.encode();
}

export interface ExecPlanInput {
  process: Process;
  /** The container's init pid: the new process joins its namespaces. */
  containerPid: number;
  /** Namespace types the container has (from its spec). */
  namespaces: string[];
  /** run: wait and report the exit status; create: detach once it runs. */
  mode: 'create' | 'run';
  preserveFds?: number;
  /** The container's seccomp profile: exec'd processes get the same filter, as with runc. */
  seccomp?: LinuxSeccomp;
  consoleSocket?: string;
  /** As PlanInput's: the state an agent gets for this process. */
  seccompStateFile?: string;
}

/** A plan that runs one more process inside a running container (`exec`): join, no new root. */
export function buildExecPlan(input: ExecPlanInput): Buffer {
  const plan = new PlanWriter();
  plan.add('version', PLAN_VERSION);
  plan.add('mode', input.mode);
  // The user namespace first: joining it grants the rights the other joins need.
  const order = ['user', 'ipc', 'uts', 'network', 'pid', 'cgroup', 'time', 'mount'];
  for (const type of order.filter((t) => input.namespaces.includes(t))) {
    plan.add('join', NAMESPACE_FLAGS[type]!, `/proc/${input.containerPid}/ns/${NAMESPACE_FILES[type]}`);
  }
  plan.add('clone', 0);
  addProcess(plan, input.process, input.preserveFds, input.seccomp, input.consoleSocket, input.seccompStateFile);
  return plan.encode();
}

/** The hooks berth-init runs inside the container; the state JSON they read is written once the pid is known. */
function addContainerHooks(plan: PlanWriter, spec: Spec, stateFiles?: [string, string]): void {
  const kinds = ['createContainer', 'startContainer'] as const;
  if (!kinds.some((k) => spec.hooks?.[k]?.length)) return;
  if (!stateFiles) throw errInvalidArgument('hooks.createContainer/startContainer: no place for the hooks\' state JSON');
  plan.add('hookstate', ...stateFiles);
  for (const kind of kinds) {
    for (const h of spec.hooks?.[kind] ?? []) plan.add('hook', kind, h.timeout ?? 0, h.path, h.args?.length ?? 0, ...(h.args ?? []), ...(h.env ?? []));
  }
}

function addProcess(plan: PlanWriter, process: Process, preserveFds?: number, seccomp?: LinuxSeccomp, consoleSocket?: string, seccompStateFile?: string): void {
  if (process.terminal && !consoleSocket) throw errInvalidArgument('process.terminal is true: a --console-socket is needed to receive the pty master');
  if (!process.terminal && consoleSocket) throw errInvalidArgument('--console-socket given but process.terminal is false: there is no pty to send');
  if (consoleSocket) plan.add('console', consoleSocket, process.consoleSize?.width ?? 0, process.consoleSize?.height ?? 0);
  for (const r of process.rlimits ?? []) plan.add('rlimit', RLIMITS[r.type]!, r.soft, r.hard);
  if (process.oomScoreAdj !== undefined) plan.add('oomscoreadj', process.oomScoreAdj);
  if (preserveFds) plan.add('preservefds', preserveFds);
  plan.add('user', process.user.uid, process.user.gid);
  plan.add('groups', ...(process.user.additionalGids ?? []));
  if (process.user.umask !== undefined) plan.add('umask', process.user.umask.toString(8));
  if (process.noNewPrivileges) plan.add('nnp');
  const caps = process.capabilities ?? {};
  plan.add('caps', ...[caps.bounding, caps.effective, caps.permitted, caps.inheritable, caps.ambient].map((s) => capMask(s).toString()));
  if (seccomp) {
    const { program, flags, notify } = compileSeccomp(seccomp);
    if (notify) {
      if (!seccompStateFile) throw errInvalidArgument('linux.seccomp: SCMP_ACT_NOTIFY rules: no place for the state the seccomp agent gets');
      plan.add('seccompagent', seccomp.listenerPath!, seccompStateFile);
    }
    plan.add('seccomp', flags, program.toString('hex'));
  }
  plan.add('cwd', process.cwd);
  plan.add('env', ...(process.env ?? []));
  plan.add('args', ...process.args!);
}

function addMount(plan: PlanWriter, m: Mount, i: number, cgroup: CgroupManager, userns: boolean, late: PlanWriter,
  gidMappings: { containerID: number; size: number }[] = []): void {
  const dest = posix.normalize(m.destination);
  const field = `config.json: mounts[${i}] (${dest})`;
  const { flags, propagation, data, attrSet, attrClr, tmpcopyup } = parseMountOptions(m.options);
  const type = m.type ?? (flags & MS.BIND ? 'bind' : 'none');
  const bind = Boolean(flags & MS.BIND) || type === 'bind';
  // Only a filesystem's own mount reads data; elsewhere an option nobody knows would be dropped without a word.
  if (data.length && (bind || type === 'cgroup' || type === 'cgroup2' || (type === 'sysfs' && userns))) {
    throw errInvalidArgument(`${field}: unknown mount option${data.length > 1 ? 's' : ''} ${data.map((d) => JSON.stringify(d)).join(', ')} ` +
      `(a ${bind ? 'bind' : type} mount takes no filesystem data)`);
  }
  if (tmpcopyup && type !== 'tmpfs') throw errInvalidArgument(`${field}: tmpcopyup is for tmpfs mounts, not ${type}`);
  // A tmpfs or /dev mounted read-only is mounted writable, and made read-only once everything below it is in
  // place (the devices in /dev, submounts such as /dev/pts), as runc does. So are its recursive attributes.
  const delayed = Boolean(flags & MS.RDONLY) && (type === 'tmpfs' || dest === '/dev');
  const mountFlags = delayed ? flags & ~MS.RDONLY : flags;
  // devpts refuses a gid= its user namespace does not map (EINVAL): such a gid is left out, so new ptys belong to
  // their opener's group (crun does the same; runc fails).
  if (type === 'devpts' && userns) {
    const mapped = (gid: number) => gidMappings.some((g) => gid >= g.containerID && gid < g.containerID + g.size);
    const kept = data.filter((d) => !/^gid=\d+$/.test(d) || mapped(Number(d.slice(4))));
    data.splice(0, data.length, ...kept);
  }
  const attrs = () => { if ((attrSet || attrClr) && !delayed) plan.add('mountattr', dest, attrSet, attrClr); };
  if (delayed) late.add('remountro', dest, flags & (MS.NOSUID | MS.NODEV | MS.NOEXEC | MS.NOATIME | MS.NODIRATIME | MS.RELATIME | MS.STRICTATIME), attrSet, attrClr);
  if (type === 'cgroup' || type === 'cgroup2') {
    addCgroupMount(plan, dest, flags, cgroup);
    return attrs();
  }
  if (bind) {
    const source = resolve(m.source ?? '');
    let isFile = false;
    try { isFile = !statSync(source).isDirectory(); } catch {
      throw errInvalidArgument(`${field}: bind source ${source} does not exist`);
    }
    // A new user namespace's root may be shut out of a directory on the source's path (runc binds such sources
    // too): berth-init opens the source as the host's root and the container binds it from that fd.
    plan.add('mount', source, dest, 'bind', mountFlags | MS.BIND, '', propagation, isFile ? 'f' : 'd', ...(userns ? ['hostfd'] : []));
    return attrs();
  }
  // sysfs cannot be mounted in a user namespace without its own network namespace: bind the host's, as runc.
  if (type === 'sysfs' && userns) {
    plan.add('mount', '/sys', dest, 'bind', mountFlags | MS.BIND | MS.REC, '', propagation, 'd');
    return attrs();
  }
  plan.add('mount', m.source ?? type, dest, type, mountFlags, data.join(','), propagation, 'd', ...(tmpcopyup ? ['copyup'] : []));
  attrs();
}

/** A container sees only its own cgroup: a tmpfs with a read-only bind of its directory per hierarchy. */
function addCgroupMount(plan: PlanWriter, dest: string, flags: number, cgroup: CgroupManager): void {
  const hierarchies = Object.entries(cgroup.paths);
  if (hierarchies.length === 1 && hierarchies[0]![0] === '') {
    plan.add('mount', hierarchies[0]![1], dest, 'bind', flags | MS.BIND, '', 0, 'd');
    return;
  }
  // As runc on a v1 or hybrid host: a tmpfs (left writable) with each v1 hierarchy bound in under its
  // controller's name (name=systemd as systemd); the unified hierarchy of a hybrid host is not shown.
  const bindFlags = MS.BIND | MS.NOSUID | MS.NODEV | MS.NOEXEC | (flags & MS.RDONLY);
  plan.add('mount', 'tmpfs', dest, 'tmpfs', MS.NOSUID | MS.NODEV | MS.NOEXEC, 'mode=755', 0, 'd');
  for (const [controller, dir] of hierarchies) {
    if (controller === '') continue;
    plan.add('mount', dir, posix.join(dest, controller.replace(/^name=/, '')), 'bind', bindFlags, '', 0, 'd');
  }
}

/** The devices every container gets on a fresh /dev (runtime-spec "Default Devices"), plus the usual links. */
function addDefaultDevices(plan: PlanWriter): void {
  const devices: [string, number, number][] = [
    ['/dev/null', 1, 3], ['/dev/zero', 1, 5], ['/dev/full', 1, 7], ['/dev/random', 1, 8], ['/dev/urandom', 1, 9], ['/dev/tty', 5, 0],
  ];
  for (const [path, major, minor] of devices) plan.add('mkdev', path, 'c', major, minor, '666', 0, 0);
  const links: [string, string][] = [
    ['/proc/self/fd', '/dev/fd'], ['/proc/self/fd/0', '/dev/stdin'], ['/proc/self/fd/1', '/dev/stdout'],
    ['/proc/self/fd/2', '/dev/stderr'], ['pts/ptmx', '/dev/ptmx'],
  ];
  for (const [target, path] of links) plan.add('symlink', target, path);
}
