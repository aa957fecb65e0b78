// Starting a process under native/berth-monitor: the monitor opens the stdio paths, runs the command that
// creates the process, learns its pid, reaps it and writes its exit status to a file. Whoever started it
// (a shim) follows the notify pipe while it lives; after a restart the exit file tells the same story.
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { BerthError, ErrorCode } from '../api/errdefs.ts';
import { sealedCopy } from '../api/libc.ts';
import { nativeBinary } from '../api/native-binary.ts';
import { spawnProcess, type SpawnedProcess } from '../api/spawn.ts';
import { CgroupStage } from './cgroups/staging.ts';
import type { CgroupManager } from './cgroups/types.ts';
import { processStartTime } from './proc.ts';

export interface StdioPaths {
  stdin?: string;
  stdout?: string;
  stderr?: string;
}

/** A process with a terminal: the monitor receives its pty master on `socket` and takes requests on `control`. */
export interface ConsolePaths {
  socket: string;
  control: string;
}

export interface ExitStatus {
  status: number;
  exitedAt: Date;
}

export interface MonitorOptions {
  /** The command that creates the process; or, with initPlan, none: the monitor's child runs the plan. */
  command: string[];
  /** A berth-init plan the monitor's child executes without an exec (fd 4 is its sync socket). */
  initPlan?: string;
  exitFile: string;
  /** The command writes the watched pid here (runc create --pid-file); without it the command is watched. */
  pidFile?: string;
  stdio?: StdioPaths;
  /** The process gets a pty: the monitor holds its master and copies stdin/stdout through it. */
  console?: ConsolePaths;
  /** One extra pipe handed to the command as fd 4 (berth-init's sync socket). */
  syncPipe?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** A spare the caller took (into its cgroup); otherwise one is taken here when the command allows. */
  spare?: Spare;
}

export interface Monitored {
  monitorPid: number;
  /** The watched process's pid, once the command has created it. */
  pid: Promise<number>;
  /** Its exit status (also in the exit file). */
  exited: Promise<ExitStatus>;
  /** fd 4 of the command, when syncPipe was asked for. */
  sync?: Readable & Writable;
  /** The command's stderr, for errors of the create step. */
  stderr(): string;
  /** For a process with a terminal: the monitor's control FIFO (see sendControl). */
  control?: string;
  /** Signals the process (not its container: an exec'd process's Kill). Throws when it is gone. */
  signal(signal: number): Promise<void>;
  /** A terminal's new size; nothing without a terminal. */
  resize(width: number, height: number): void;
  /** Ends a terminal's input (the client closed stdin); without a terminal the process reads the client's FIFO
   * itself and sees its end. */
  closeStdin(): void;
}

/** Socket and control FIFO for a terminal process. The socket lives under /run/berth-pty: a unix socket path
 * must stay under 108 bytes, which a bundle path may not. */
export function consolePaths(stateDir: string, name: string): ConsolePaths {
  const dir = '/run/berth-pty';
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return { socket: join(dir, `${randomBytes(8).toString('hex')}.sock`), control: join(stateDir, `${name}.ctl`) };
}

/** Sends one request ("resize W H", "close-stdin") to a monitor's control FIFO; false if nobody listens. */
export function sendControl(control: string, request: string): boolean {
  let fd: number;
  try {
    fd = openSync(control, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
  } catch {
    return false; // the process (and its monitor) are gone
  }
  try {
    writeSync(fd, `${request}\n`);
    return true;
  } finally {
    closeSync(fd);
  }
}


let sealedMonitorPath: string | undefined;

/** berth-monitor from a sealed memfd this process holds (made once): a container descends from the monitor
 * that runs its plan, and must not reach the binary on disk (CVE-2019-5736); finding itself sealed, the monitor
 * skips its own copy-and-re-exec. Its child, in our place, opens it through /proc. */
function sealedMonitor(): string {
  if (!sealedMonitorPath) {
    const path = nativeBinary('berth-monitor');
    try {
      sealedMonitorPath = `/proc/${process.pid}/fd/${sealedCopy(path, readFileSync(path))}`;
    } catch {
      sealedMonitorPath = path; // the monitor seals itself
    }
  }
  return sealedMonitorPath;
}

/** Reads an exit file written by berth-monitor, if the process has ended. */
export function readExitFile(path: string): ExitStatus | undefined {
  try {
    const [status, ns] = readFileSync(path, 'utf8').trim().split(' ');
    return { status: Number(status), exitedAt: new Date(Number(BigInt(ns!) / 1_000_000n)) };
  } catch {
    return undefined;
  }
}

/** A spare monitor: its child is forked already (and, when a stage could be made, sits in the next
 * container's cgroups; see cgroups/staging.ts). */
export interface Spare {
  process: SpawnedProcess;
  /** Lines from its notify pipe: "spare <child pid>" first, then what startMonitored reads. */
  lines: Interface;
  stage?: CgroupStage;
  /** Once taken: the cgroup directories its child is in already (its stage, renamed into place). */
  bornIn?: ReadonlySet<string>;
}

/**
 * Spare monitors for plans (the fast path): a spare, spawned while the caller is idle, has loaded and forked
 * its child already (which waits in the next container's cgroups, see cgroups/staging.ts), and is handed its
 * arguments on stdin when a container is created (`berth-monitor --spare`). Only a long-lived caller that says
 * when it is busy (the shim) keeps one; others spawn as needed. A spare exits when our end of its stdin closes.
 */
class SpareMonitors {
  private spare: Spare | undefined;
  private childPid = 0;
  private enabled = false;
  private busy = 0;
  private timer: NodeJS.Timeout | undefined;

  /** A request started: no spare is spawned until the caller has been idle a moment. */
  begin(): void {
    this.enabled = true;
    this.busy++;
    clearTimeout(this.timer);
  }

  end(): void {
    this.busy = Math.max(0, this.busy - 1);
    if (this.busy === 0 && !this.spare) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.replenish(), SPARE_IDLE_MS);
      this.timer.unref();
    }
  }

  /** The spare, if one is ready. With `into`, its stage is renamed into that cgroup's place when it can be
   * (`bornIn`); a stage nobody adopts is removed, and a process forked by the spare is moved as usual. */
  take(into?: CgroupManager): Spare | undefined {
    const spare = this.spare;
    this.spare = undefined;
    if (!spare || spare.process.exit) return undefined;
    spare.bornIn = (into && spare.stage?.adopt(into)) || new Set();
    if (!spare.bornIn.size) spare.stage?.discard();
    return spare;
  }

  /** Ends the spare and its child now and removes their stage (the caller is exiting). */
  async close(): Promise<void> {
    this.enabled = false;
    const spare = this.spare;
    this.spare = undefined;
    if (!spare) return;
    for (const pid of [this.childPid, spare.process.pid]) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    // An exited process has left its cgroups, zombie or not; then the stage can go.
    for (let i = 0; i < 100 && this.childPid && processStartTime(this.childPid) !== undefined; i++) await new Promise((r) => setTimeout(r, 5));
    spare.stage?.discard();
  }

  private replenish(): void {
    if (!this.enabled || this.spare || this.busy > 0) return;
    // fd 0: the monitor's arguments; 3: its notify pipe; 4: the plan executor's sync socket; 5: its child's plan.
    const child = spawnMonitor(['--spare'], ['pipe', 'ignore', 'pipe', 'pipe', 'pipe', 'pipe']);
    child.stdio[0]!.on('error', () => undefined);
    child.stdio[5]!.on('error', () => undefined);
    for (const stream of child.stdio) stream?.unref();
    const spare: Spare = { process: child, lines: createInterface({ input: child.stdio[3]! }) };
    spare.lines.once('line', (line) => {
      const pid = Number(/^spare (\d+)$/.exec(line)?.[1]);
      if (!pid) return;
      this.childPid = pid;
      if (this.spare === spare) spare.stage = CgroupStage.prepare(pid);
    });
    void child.exited.then(() => { if (this.spare === spare) { this.spare = undefined; spare.stage?.discard(); } });
    this.spare = spare;
  }
}

const SPARE_IDLE_MS = 15;
export const spareMonitors = new SpareMonitors();

/** NUL-terminated fields after their byte count and a newline, as berth-monitor's read_framed takes them. */
function framed(fields: string[]): Buffer {
  const payload = Buffer.from(fields.map((f) => `${f}\0`).join(''));
  return Buffer.concat([Buffer.from(`${payload.length}\n`), payload]);
}

let monitorEnv: NodeJS.ProcessEnv | undefined;

/** The monitor outlives us if we die; it does not keep our event loop alive either. */
function spawnMonitor(args: string[], stdio: ('ignore' | 'pipe')[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; binary?: string } = {}): SpawnedProcess {
  // Our environment is read once (process.env is slow to copy), for every monitor that gets it.
  const env = opts.env ? { ...opts.env } : (monitorEnv ??= { ...process.env });
  delete env.NODE_EXTRA_CA_CERTS;
  const child = spawnProcess(opts.binary ?? sealedMonitor(), args, { stdio, env, ...(opts.cwd ? { cwd: opts.cwd } : {}), detached: true, argv0: 'berth-monitor' });
  child.unref();
  return child;
}

export function startMonitored(opts: MonitorOptions): Monitored {
  const args = [opts.exitFile, '3'];
  if (opts.pidFile) args.push('--pid-file', opts.pidFile);
  for (const name of ['stdin', 'stdout', 'stderr'] as const) {
    if (opts.stdio?.[name]) args.push(`--${name}`, opts.stdio[name]!);
  }
  if (opts.console) args.push('--console-socket', opts.console.socket, '--control', opts.console.control);
  if (opts.initPlan) args.push('--init', opts.initPlan);
  else args.push('--', ...opts.command);
  const stdio: ('ignore' | 'pipe')[] = ['ignore', 'ignore', 'pipe', 'pipe'];
  if (opts.syncPipe) stdio.push('pipe');
  // A spare's child runs plans without a terminal (a console's socket must be listening before the plan runs).
  const spare = opts.spare ?? (opts.initPlan && opts.syncPipe && !opts.console && !opts.env && !opts.cwd ? spareMonitors.take() : undefined);
  let child: SpawnedProcess;
  if (spare) {
    // The child and the monitor are told at once, each what it needs: the child need not wait for the monitor.
    spare.process.stdio[5]!.end(framed([opts.stdio?.stdin ?? '', opts.stdio?.stdout ?? '', opts.stdio?.stderr ?? '', opts.initPlan!]));
    spare.process.stdio[0]!.end(framed(args));
    child = spare.process;
  } else {
    child = spawnMonitor(args, stdio, { ...(opts.env ? { env: opts.env } : {}), ...(opts.cwd ? { cwd: opts.cwd } : {}), binary: opts.initPlan ? sealedMonitor() : nativeBinary('berth-monitor') });
  }
  let stderr = '';
  child.stdio[2]!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-8192); });
  child.stdio[2]!.unref();
  const notify = child.stdio[3]!;
  notify.unref();
  let resolvePid!: (pid: number) => void;
  let rejectPid!: (err: Error) => void;
  const pid = new Promise<number>((resolve, reject) => { resolvePid = resolve; rejectPid = reject; });
  pid.catch(() => undefined);
  const exited = new Promise<ExitStatus>((resolve) => {
    const lines = spare?.lines ?? createInterface({ input: notify });
    let settled = false;
    lines.on('line', (line) => {
      const [what, value, at] = line.split(' ');
      if (what === 'pid') resolvePid(Number(value));
      else if (what === 'failed') {
        rejectPid(new BerthError(ErrorCode.FailedPrecondition, `${opts.command[0]} failed (status ${value}): ${stderr.trim() || 'no error output'}`));
      } else if (what === 'exit') {
        settled = true;
        // "exit STATUS NANOSECONDS", as the exit file records it.
        resolve({ status: Number(value), exitedAt: new Date(Number(BigInt(at!) / 1_000_000n)) });
      }
    });
    lines.on('close', () => {
      if (settled) return;
      rejectPid(new BerthError(ErrorCode.Internal, `berth-monitor ended without reporting: ${stderr.trim()}`));
      const recorded = readExitFile(opts.exitFile);
      if (recorded) resolve(recorded);
    });
  });
  const control = opts.console?.control;
  return {
    monitorPid: child.pid, pid, exited,
    ...(opts.syncPipe ? { sync: child.stdio[4]! } : {}),
    stderr: () => stderr,
    ...(control ? { control } : {}),
    signal: async (signal) => { process.kill(await pid, signal); },
    resize: (width, height) => { if (control) sendControl(control, `resize ${width} ${height}`); },
    closeStdin: () => { if (control) sendControl(control, 'close-stdin'); },
  };
}
