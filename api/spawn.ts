// Spawning a helper without copying our address space. Node's child_process forks, and a fork copies the page
// tables of a process the size of a shim (~7 ms with the main thread blocked, more as it grows); posix_spawn
// (berth-sys.node) shares the memory until the exec. Each 'pipe' is one end of a socketpair, as libuv's are. We
// reap what we spawn on SIGCHLD (libuv reaps only its own children, by pid).
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import { sysAddon } from './sys-addon.ts';

export interface SpawnOptions {
  /** What the child gets as fd 0, 1, 2, ...: a new socketpair, or /dev/null. */
  stdio: ('pipe' | 'ignore')[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** argv[0], when it is not the file. */
  argv0?: string;
  /** In a session of its own (as child_process's `detached`). */
  detached?: boolean;
}

export interface ExitInfo { code: number | null; signal: NodeJS.Signals | null }

export interface SpawnedProcess {
  readonly pid: number;
  /** Our end of each 'pipe', by the child's fd; null for 'ignore'. */
  readonly stdio: (Socket | null)[];
  /** Set once the process has exited and been reaped. */
  readonly exit: ExitInfo | undefined;
  /** Resolves when it has exited and been reaped. */
  readonly exited: Promise<ExitInfo>;
  /** Until it exits, it keeps our event loop alive (as child_process's children do) unless unref'd. */
  unref(): void;
}

const tracked = new Map<number, (exit: ExitInfo) => void>();
const signalNames = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

function reapExited(): void {
  for (const [pid, done] of tracked) {
    let status: number | undefined;
    try {
      status = sysAddon().waitpid(pid);
    } catch {
      status = 0; // not ours to wait for any more (ECHILD): gone
    }
    if (status === undefined) continue;
    tracked.delete(pid);
    const signal = status & 0x7f;
    done(signal ? { code: null, signal: signalNames.get(signal) ?? null } : { code: (status >> 8) & 0xff, signal: null });
  }
}

let listening = false;
/** Live children that keep the event loop alive, and the handle that does it while there are any. */
let reffed = 0;
let keepAlive: NodeJS.Timeout | undefined;

function holdLoop(delta: number): void {
  reffed += delta;
  if (reffed > 0 && !keepAlive) keepAlive = setInterval(() => undefined, 1 << 30);
  else if (reffed === 0 && keepAlive) { clearInterval(keepAlive); keepAlive = undefined; }
}

export function spawnProcess(file: string, args: string[], opts: SpawnOptions): SpawnedProcess {
  const addon = sysAddon();
  if (!listening) {
    process.on('SIGCHLD', reapExited);
    listening = true;
  }
  const ours: (number | null)[] = [];
  const theirs: number[] = [];
  try {
    for (const kind of opts.stdio) {
      if (kind === 'ignore') { ours.push(null); theirs.push(-1); continue; }
      const [mine, child] = addon.socketpair();
      ours.push(mine);
      theirs.push(child);
    }
    const env = Object.entries(opts.env ?? process.env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
    const pid = addon.spawn(file, [opts.argv0 ?? file, ...args], env, theirs, opts.cwd ?? null, !!opts.detached);
    let holding = true;
    holdLoop(1);
    const release = () => { if (holding) { holding = false; holdLoop(-1); } };
    const proc = {
      pid,
      unref: release,
      stdio: ours.map((fd) => (fd === null ? null : new Socket({ fd, readable: true, writable: true }))),
      exit: undefined as ExitInfo | undefined,
      exited: undefined as unknown as Promise<ExitInfo>,
    };
    // Its SIGCHLD, however soon, is handled on a later turn of the loop: it is tracked by then.
    proc.exited = new Promise<ExitInfo>((resolve) => tracked.set(pid, (e) => { proc.exit = e; release(); resolve(e); }));
    return proc;
  } catch (err) {
    for (const fd of ours) if (fd !== null) closeSync(fd);
    throw err;
  } finally {
    for (const fd of theirs) if (fd >= 0) closeSync(fd);
  }
}
