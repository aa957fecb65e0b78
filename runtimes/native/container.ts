// The container lifecycle of berth's own OCI runtime: create, start, state, kill, delete, run. Planning is in
// runtimes/oci; the process work is done by native/berth-init. Callable without the CLI.
import { spawn } from 'node:child_process';
import { chownSync, closeSync, existsSync, openSync, readSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { constants } from 'node:os';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { errFailedPrecondition, errInternal, errInvalidArgument } from '../../api/errdefs.ts';
import { openCgroup } from '../cgroups/index.ts';
import type { CgroupManager } from '../cgroups/types.ts';
import { withDefaultDevices } from '../cgroups/device-rules.ts';
import { buildExecPlan, buildPlan } from '../oci/plan.ts';
import type { Process, Spec, State } from '../oci/spec.ts';
import { loadBundle, validateProcess } from '../oci/validate.ts';
import { runHooks } from './hooks.ts';
import { type ContainerRecord, StateStore, checkId, isAlive, toState } from './state.ts';
import { processStartTime } from '../proc.ts';
import { sysAddon } from '../../api/sys-addon.ts';
import { spareMonitors, startMonitored, type ConsolePaths, type Monitored, type Spare, type StdioPaths } from '../monitor.ts';
import { CgroupStage } from '../cgroups/staging.ts';
import { nativeBinary } from '../../api/native-binary.ts';
import { removeSoon } from '../../api/remove-soon.ts';
import { compileSeccomp, type LinuxSeccomp } from '../seccomp/compile.ts';
import { containerProcessState } from '../seccomp/notify.ts';

export interface CreateOptions {
  bundle: string;
  preserveFds?: number;
  noPivot?: boolean;
  pidFile?: string;
  /** Where the pty master goes when process.terminal is true (runc's --console-socket). */
  consoleSocket?: string;
  /** Run the init under berth-monitor (the shim's fast path): stdio from these paths (or through a pty the
   * monitor holds, with console), exit status to the file. */
  monitor?: { exitFile: string; stdio?: StdioPaths; console?: ConsolePaths };
  /** The terminal's size when the process starts, over the spec's (a foreground run sizes it to ours). */
  consoleSize?: { width: number; height: number };
  /** Told what the caller may want to know but that does not stop the create (runc logs these as warnings). */
  onWarning?: (message: string) => void;
  /** Told each step of the setup (runc's --debug lines name the same steps). */
  onDebug?: (message: string) => void;
}

export interface ExecOptions {
  detach?: boolean; pidFile?: string; preserveFds?: number; consoleSocket?: string;
  monitor?: CreateOptions['monitor']; onMonitor?: (m: Monitored) => void;
  /** Allow exec into a paused container (the process starts once it is resumed). */
  ignorePaused?: boolean;
  /** Existing sub-cgroups to join, by controller ('' for every controller), relative to the container's. */
  subCgroups?: ReadonlyMap<string, string>;
  onDebug?: (message: string) => void;
}

export class Runtime {
  readonly store: StateStore;
  /** The spec each container was created with, while this process lives (a shim): start, exec and delete then
   * need not read and validate config.json again. */
  private readonly specs = new Map<string, Spec>();
  constructor(root?: string) { this.store = new StateStore(root); }

  private specOf(record: ContainerRecord): Spec {
    return this.specs.get(record.id) ?? loadBundle(record.bundle).spec;
  }

  status(record: ContainerRecord): State['status'] {
    if (!isAlive(record)) return 'stopped';
    if (existsSync(this.store.execFifo(record.id))) return 'created';
    return this.cgroup(record).isFrozen() ? 'paused' : 'running';
  }

  state(id: string): State & Record<string, unknown> {
    const record = this.store.read(id);
    return toState(record, this.status(record));
  }

  cgroup(record: Pick<ContainerRecord, 'id' | 'cgroupsPath'>): CgroupManager {
    return openCgroup(record.cgroupsPath, { containerId: record.id });
  }

  /**
   * Creates the container: its init is set up and left waiting for `start` (mode create), or runs straight
   * away (mode run: the returned `exited` resolves with its exit status, 128+signal on death by signal).
   */
  async create(id: string, opts: CreateOptions, mode: 'create' | 'run' = 'create'): Promise<{ pid: number; exited?: Promise<number>; monitored?: Monitored }> {
    checkId(id);
    const { spec, bundle, rootfs } = loadBundle(opts.bundle);
    if (opts.consoleSize && spec.process?.terminal) spec.process.consoleSize = opts.consoleSize;
    const dir = this.store.claim(id);
    const cgroupsPath = spec.linux?.cgroupsPath ?? '';
    let cgroup: CgroupManager | undefined;
    let pid = 0;
    let init: LaunchedInit | undefined;
    try {
      // A cgroup made by someone else (cgroupsPath names an existing one): a frozen one would hang the init (it
      // is refused before we own it, so the failure leaves it be), and its processes would share our limits.
      const target = openCgroup(cgroupsPath, { containerId: id });
      const existed = !opts.monitor && target.exists();
      if (existed && target.isFrozen()) throw errFailedPrecondition("container's cgroup unexpectedly frozen");
      cgroup = target;
      // Where the init is born, so it need not be moved (see cgroups/staging.ts): a spare's staged cgroups
      // renamed into place, and the cgroup2 directory it is cloned into.
      const spare = opts.monitor && !opts.monitor.console ? spareMonitors.take(cgroup) : undefined;
      const bornIn = new Set(spare?.bornIn);
      cgroup.create(withDefaultDevices(spec.linux?.resources, spec.linux?.devices));
      const busy = existed ? cgroup.pids().length : 0;
      if (busy > 0) opts.onWarning?.(`container's cgroup is not empty: ${busy} process(es) found`);
      CgroupStage.learn(cgroup);
      // A joined user namespace would judge the clone's right to write the cgroup; the move has no such limit.
      const cloneInto = spec.linux?.namespaces?.some((ns) => ns.type === 'user' && ns.path) ? undefined : cgroup.paths[''];
      if (cloneInto) bornIn.add(cloneInto);
      const execFifo = mode === 'create' ? this.store.execFifo(id) : undefined;
      if (execFifo) {
        sysAddon().mkfifo(execFifo, 0o600);
        // The init opens it as the root of its user namespace (as runc's, chowned to that root's host ids).
        const hostRoot = (maps?: { containerID: number; hostID: number; size: number }[]) => maps?.find((m) => m.containerID === 0)?.hostID;
        const newUserns = spec.linux?.namespaces?.some((ns) => ns.type === 'user' && !ns.path);
        if (newUserns) chownSync(execFifo, hostRoot(spec.linux?.uidMappings) ?? 0, hostRoot(spec.linux?.gidMappings) ?? 0);
      }
      const planPath = join(dir, 'plan');
      const hookStateFiles: [string, string] = [join(dir, 'hook-state-creating.json'), join(dir, 'hook-state-created.json')];
      // A seccomp agent gets the process state with the listener fd: written once the pid is known.
      const seccomp = spec.linux?.seccomp as LinuxSeccomp | undefined;
      const seccompStateFile = seccomp && compileSeccomp(seccomp).notify ? join(dir, 'seccomp-state.json') : undefined;
      // With no hooks to run, no cgroup to move it into and no agent state to write, the init need not wait for
      // us once it has its pid.
      const hooks = spec.hooks;
      const proceed = !hooks?.prestart?.length && !hooks?.createRuntime?.length && !hooks?.createContainer?.length && !hooks?.startContainer?.length &&
        !seccompStateFile && Object.values(cgroup.paths).every((path) => bornIn.has(path));
      // The monitor learns the pid from this file (berth-init writes it) once berth-init exits.
      const pidFile = opts.monitor ? join(dir, 'init.pid') : undefined;
      writeFileSync(planPath, buildPlan({
        spec, rootfs, mode, execFifo, cgroup, preserveFds: opts.preserveFds, noPivot: opts.noPivot, consoleSocket: opts.monitor?.console?.socket ?? opts.consoleSocket,
        hookStateFiles, cloneInto, pidFile, proceed, seccompStateFile,
      }));

      init = opts.monitor ? monitoredInit(planPath, opts.monitor, pidFile!, spare) : spawnInit(planPath, opts.preserveFds ?? 0);
      opts.onDebug?.(`nsexec container setup: berth-init runs the plan ${planPath}`);
      const { sync, next, exited } = init;
      const first = await next();
      pid = Number(first.replace(/^pid /, ''));
      opts.onDebug?.(`child process in init(): pid ${pid}, in the container's namespaces`);
      const record: ContainerRecord = {
        id, bundle, rootfs, pid, pidStartTime: processStartTime(pid) ?? '', cgroupsPath, created: new Date().toISOString(),
        annotations: spec.annotations, ociVersion: spec.ociVersion,
      };
      cgroup.addProcess(pid, bornIn);
      this.store.write(record);
      const creating = toState(record, 'creating');
      await runHooks('prestart', spec.hooks?.prestart, creating);
      await runHooks('createRuntime', spec.hooks?.createRuntime, creating);
      if (spec.hooks?.createContainer?.length || spec.hooks?.startContainer?.length) {
        writeFileSync(hookStateFiles[0], JSON.stringify(creating));
        writeFileSync(hookStateFiles[1], JSON.stringify(toState(record, 'created')));
      }
      if (seccompStateFile) writeFileSync(seccompStateFile, containerProcessState(seccomp!, pid, creating));
      if (!proceed) sync.write('g');
      const ready = await next();
      if (ready !== 'ready') throw errInternal(`berth-init: unexpected report ${JSON.stringify(ready)}`);
      opts.onDebug?.('init: closing the pipe to signal completion (the container is set up)');
      if (opts.pidFile) writeAtomically(opts.pidFile, String(pid));
      if (mode === 'run') await runHooks('poststart', spec.hooks?.poststart, toState(record, 'running')).catch(warn);
      else sync.destroy();
      this.specs.set(id, spec);
      return { pid, exited: mode === 'run' ? exited : undefined, monitored: init.monitored };
    } catch (err) {
      init?.abort();
      if (pid > 0) { try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ } }
      if (cgroup) await destroyCgroup(cgroup);
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Runs one more process in a running container, in its namespaces and cgroup. Resolves with its exit status
   * (detach: once it runs, with undefined).
   */
  async exec(id: string, proc: Process, opts: ExecOptions = {}): Promise<number | undefined> {
    const record = this.store.read(id);
    const status = this.status(record);
    // As runc: a created container (its init waiting for start) takes execs too; a paused one only when asked.
    if (status === 'stopped') throw errFailedPrecondition(`cannot exec in a stopped container (${id})`);
    if (status === 'paused' && !opts.ignorePaused) throw errFailedPrecondition('cannot exec in a paused container (use --ignore-paused to override)');
    validateProcess(proc);
    const cgroup = this.cgroup(record);
    const joinDirs = opts.subCgroups ? subCgroupDirs(cgroup, opts.subCgroups) : undefined;
    const spec = this.specOf(record);
    const planPath = join(this.store.dir(id), `exec-${process.pid}-${Date.now()}.plan`);
    const seccomp = spec.linux?.seccomp as LinuxSeccomp | undefined;
    const seccompStateFile = seccomp && compileSeccomp(seccomp).notify ? `${planPath}.seccomp-state.json` : undefined;
    writeFileSync(planPath, buildExecPlan({
      process: proc, containerPid: record.pid, namespaces: (spec.linux?.namespaces ?? []).map((ns) => ns.type),
      mode: opts.detach || opts.monitor ? 'create' : 'run', preserveFds: opts.preserveFds, consoleSocket: opts.monitor?.console?.socket ?? opts.consoleSocket,
      ...(seccomp ? { seccomp } : {}), seccompStateFile,
    }));
    const monitorPidFile = `${planPath}.pid`;
    const init = opts.monitor ? monitoredInit(planPath, opts.monitor, monitorPidFile) : spawnInit(planPath, opts.preserveFds ?? 0);
    if (init.monitored) opts.onMonitor?.(init.monitored);
    opts.onDebug?.(`nsexec container setup: berth-init joins the container of pid ${record.pid}`);
    try {
      const pid = Number((await init.next()).replace(/^pid /, ''));
      opts.onDebug?.(`child process in init(): pid ${pid}, in the container's namespaces`);
      if (opts.monitor) writeAtomically(monitorPidFile, String(pid));
      if (joinDirs) for (const dir of joinDirs) joinCgroup(dir, pid);
      else cgroup.addProcess(pid);
      if (seccompStateFile) writeFileSync(seccompStateFile, containerProcessState(seccomp!, pid, toState(record, 'running')));
      init.sync.write('g');
      if ((await init.next()) !== 'ready') throw errInternal('berth-init: unexpected report during exec');
      opts.onDebug?.(`setns_init: about to exec ${proc.args?.[0] ?? ''}`);
      if (opts.pidFile) writeAtomically(opts.pidFile, String(pid));
      if (opts.monitor) { await init.monitored!.pid; init.sync.destroy(); return pid; }
      if (opts.detach) { init.sync.destroy(); return undefined; }
      return await init.exited;
    } catch (err) {
      init.abort();
      throw err;
    } finally {
      rmSync(planPath, { force: true });
      rmSync(monitorPidFile, { force: true });
      if (seccompStateFile) rmSync(seccompStateFile, { force: true });
    }
  }

  async start(id: string): Promise<void> {
    const record = this.store.read(id);
    const status = this.status(record);
    if (status !== 'created') throw errFailedPrecondition(`cannot start container ${id}: it is ${status}, not created`);
    const fifo = this.store.execFifo(id);
    const fd = openSync(fifo, 'r');
    try {
      if (readSync(fd, Buffer.alloc(1)) !== 1) throw errFailedPrecondition(`cannot start container ${id}: its init exited`);
    } finally {
      closeSync(fd);
      unlinkSync(fifo);
    }
    await runHooks('poststart', this.specOf(record).hooks?.poststart, toState(record, 'running')).catch(warn);
  }

  /** Signals the init, or with `all` every process in the container's cgroups (a stopped container's, too:
   * whatever it left behind). A paused container is thawed for SIGKILL, which a frozen task would not act on. */
  async kill(id: string, signal: string | number, all = false): Promise<void> {
    const record = this.store.read(id);
    const status = this.status(record);
    const sig = parseSignal(signal);
    const cgroup = this.cgroup(record);
    if (all) { cgroup.killAll(sig); return; }
    if (status === 'stopped') throw errFailedPrecondition(`cannot kill container ${id}: container not running`);
    process.kill(record.pid, sig);
    if (status === 'paused' && sig === constants.signals.SIGKILL) await cgroup.thaw();
  }

  async delete(id: string, force = false): Promise<void> {
    const record = this.store.read(id);
    const status = this.status(record);
    if ((status === 'running' || status === 'paused') && !force) {
      throw errFailedPrecondition(`cannot delete container ${id}: it is ${status} (stop it first, or use --force)`);
    }
    const cgroup = this.cgroup(record);
    if (status !== 'stopped') {
      if (status === 'paused') await cgroup.thaw();
      try { process.kill(record.pid, 'SIGKILL'); } catch { /* raced with its exit */ }
      await waitUntil(() => !isAlive(record), 5000);
    }
    // In its own pid namespace, a container whose init is gone has nothing left in its cgroups: the kernel killed
    // the rest with it (their exits may still be settling: removing the cgroups waits for that).
    const ownPidNamespace = this.specs.get(id)?.linux?.namespaces?.some((ns) => ns.type === 'pid' && !ns.path);
    if (ownPidNamespace) await cgroup.destroy();
    else await destroyCgroup(cgroup);
    removeSoon(this.store.dir(id));
    try {
      const spec = this.specOf(record);
      this.specs.delete(id);
      await runHooks('poststop', spec.hooks?.poststop, toState(record, 'stopped'));
    } catch (err) { warn(err); }
  }

  async pause(id: string): Promise<void> {
    const record = this.store.read(id);
    const status = this.status(record);
    if (status !== 'running') throw errFailedPrecondition(`cannot pause container ${id}: it is ${status}`);
    await this.cgroup(record).freeze();
  }

  async resume(id: string): Promise<void> {
    const record = this.store.read(id);
    const status = this.status(record);
    if (status !== 'paused') throw errFailedPrecondition(`cannot resume container ${id}: it is ${status}, not paused`);
    await this.cgroup(record).thaw();
  }
}

interface LaunchedInit {
  sync: Readable & Writable;
  monitored?: Monitored;
  /** The next report line; an "error ..." report is thrown as failed-precondition naming the problem. */
  next(): Promise<string>;
  exited: Promise<number>;
  abort(): void;
}

/** Runs the plan in berth-monitor's child (no berth-init exec), the monitor watching the process it leaves
 * behind (its pid comes from `pidFile`, written by the caller once the plan executor reports it). */
function monitoredInit(planPath: string, monitor: NonNullable<CreateOptions['monitor']>, pidFile: string, spare?: Spare): LaunchedInit {
  const monitored = startMonitored({
    command: [], initPlan: planPath, exitFile: monitor.exitFile, pidFile, stdio: monitor.stdio, console: monitor.console, syncPipe: true, ...(spare ? { spare } : {}),
  });
  const sync = monitored.sync!;
  const lines = createInterface({ input: sync })[Symbol.asyncIterator]();
  return {
    sync,
    monitored,
    exited: monitored.exited.then((e) => e.status),
    async next() {
      const line = await lines.next();
      if (line.done) throw errInternal(`berth-init exited without reporting: ${monitored.stderr().trim()}`);
      if (line.value.startsWith('error ')) throw errFailedPrecondition(line.value.slice(6));
      return line.value;
    },
    abort() { try { process.kill(monitored.monitorPid, 'SIGKILL'); } catch { /* gone */ } sync.destroy(); },
  };
}

/** Starts berth-init on a plan with the sync socket as the fd after stdio and the preserved fds. */
function spawnInit(planPath: string, preserveFds: number): LaunchedInit {
  const syncFd = 3 + preserveFds;
  const stdio: ('inherit' | 'pipe' | number)[] = ['inherit', 'inherit', 'inherit'];
  for (let fd = 3; fd < syncFd; fd++) stdio.push(fd);
  stdio.push('pipe');
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const child = spawn(nativeBinary('berth-init'), [planPath, String(syncFd)], { stdio, env });
  const exited = new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? 128 + (constants.signals[signal as keyof typeof constants.signals] ?? 0))));
  const sync = child.stdio[syncFd] as Readable & Writable;
  const lines = createInterface({ input: sync })[Symbol.asyncIterator]();
  return {
    sync,
    exited,
    async next() {
      const line = await lines.next();
      if (line.done) throw errInternal(`berth-init exited without reporting (status ${await exited})`);
      if (line.value.startsWith('error ')) throw errFailedPrecondition(line.value.slice(6));
      return line.value;
    },
    abort() { child.kill('SIGKILL'); sync.destroy(); },
  };
}

export function parseSignal(signal: string | number): number {
  if (typeof signal === 'number' || /^\d+$/.test(signal)) {
    // 0 checks for existence without signalling, as runc passes it through.
    const n = Number(signal);
    if (n >= 0 && n < 65) return n;
  } else {
    const name = (signal.toUpperCase().startsWith('SIG') ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`) as keyof typeof constants.signals;
    const n = constants.signals[name];
    if (n) return n;
  }
  throw errInvalidArgument(`unknown signal ${JSON.stringify(signal)}`);
}

/** The directories an exec joins with --cgroup: per hierarchy, the sub-cgroup named for its controller (or for
 * all), else the container's own. The sub-cgroups must exist and lie below the container's. */
function subCgroupDirs(cgroup: CgroupManager, subs: ReadonlyMap<string, string>): string[] {
  for (const controller of subs.keys()) {
    if (controller !== '' && !(controller in cgroup.paths)) throw errInvalidArgument(`unknown controller ${JSON.stringify(controller)} in --cgroup`);
  }
  const dirs = new Set<string>();
  for (const [controller, dir] of Object.entries(cgroup.paths)) {
    const sub = subs.get(controller) ?? subs.get('');
    if (sub === undefined) { dirs.add(dir); continue; }
    const target = resolve(dir, `./${sub}`);
    if (target !== dir && !target.startsWith(dir + '/')) throw errInvalidArgument(`${sub} is not a sub cgroup path`);
    dirs.add(target);
  }
  return [...dirs];
}

function joinCgroup(dir: string, pid: number): void {
  try { writeFileSync(join(dir, 'cgroup.procs'), String(pid)); } catch (err) {
    throw errFailedPrecondition(`adding pid ${pid} to cgroups: ${join(dir, 'cgroup.procs')}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`);
  }
}

async function destroyCgroup(cgroup: CgroupManager): Promise<void> {
  if (!cgroup.exists()) return;
  if (cgroup.pids().length) {
    cgroup.killAll(9);
    await waitUntil(() => cgroup.pids().length === 0, 5000);
  }
  await cgroup.destroy();
}

async function waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 1; !done(); delay = Math.min(delay * 2, 50)) {
    if (Date.now() > deadline) throw errInternal(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

function writeAtomically(path: string, content: string): void {
  writeFileSync(path + '.tmp', content);
  renameSync(path + '.tmp', path);
}

function warn(err: unknown): void {
  process.stderr.write(`berth-runc: warning: ${(err as Error).message}\n`);
}
