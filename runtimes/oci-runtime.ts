// The interface a shim drives containers through, whatever does the work: berth's fast path (planning in
// process, native/ executes) or any runc-compatible CLI (runc, crun, runsc, berth-runc). Every process is
// watched by berth-monitor, which records its exit status durably. Backends register by name; a new backend is
// a new file in runtimes/backends/ that calls registerRuntime.
import { basename } from 'node:path';
import { errInvalidArgument } from '../api/errdefs.ts';
import type { CgroupStats, LinuxResources } from './cgroups/types.ts';
import type { Monitored, StdioPaths } from './monitor.ts';
import type { Process } from './oci/spec.ts';

export interface CreateRequest {
  id: string;
  bundle: string;
  stdio: StdioPaths;
  /** The process gets a pty (process.terminal): its monitor holds the master and copies stdio through it. */
  terminal?: boolean;
  /** Where the backend keeps this container's pid and exit files. */
  stateDir: string;
  noPivot?: boolean;
}

export interface ExecRequest {
  id: string;
  execId: string;
  process: Process;
  stdio: StdioPaths;
  terminal?: boolean;
  stateDir: string;
}

export interface OciRuntime {
  readonly name: string;
  /** Where the backend keeps its state (a CLI's --root). */
  readonly root: string;
  /** Creates the container, its init waiting for start. */
  create(req: CreateRequest): Promise<Monitored>;
  start(id: string): Promise<void>;
  /** Starts another process in the running container. */
  exec(req: ExecRequest): Promise<Monitored>;
  kill(id: string, signal: number, all: boolean): Promise<void>;
  /** Removes the container (force: even if it still runs). */
  delete(id: string, force: boolean): Promise<void>;
  pause(id: string): Promise<void>;
  resume(id: string): Promise<void>;
  pids(id: string): Promise<number[]>;
  update(id: string, resources: LinuxResources): Promise<void>;
  /** The container's cgroup statistics (memory, cpu, pids, blkio). */
  stats(id: string): Promise<CgroupStats>;
  /** OOM kills in the container so far, for a backend whose containers' cgroups are not the host's (vm); the
   * shim reads the others' from the host cgroup the spec names. */
  oomKillCount?(id: string): number;
}

export interface RuntimeOptions {
  /** Root for the backend's own state (runc --root). */
  root: string;
  /** A runc-compatible binary for the CLI backend. */
  binary?: string;
  /** The root the client asked for (containerd's runc options `root`, Docker's <exec-root>/runtime-runc): a
   * runtime CLI keeps its state there, as containerd's runc shim would have it. */
  clientRoot?: string;
  /** A file the runtime CLI logs to as JSON lines (runc --log, --log-format json). */
  log?: string;
}

type Factory = (opts: RuntimeOptions) => OciRuntime;

const backends = new Map<string, Factory>();
const closers: (() => Promise<void>)[] = [];

/** `close` ends what the backend keeps across containers in this process (a shim's VMs), when the shim exits. */
export function registerRuntime(name: string, factory: Factory, close?: () => Promise<void>): void {
  backends.set(name, factory);
  if (close) closers.push(close);
}

/** Ends what every backend keeps in this process; the caller is exiting. */
export async function closeRuntimes(): Promise<void> {
  await Promise.all(closers.map((close) => close().catch(() => undefined)));
}

/**
 * The backend for containerd's runc options' binary_name: none → berth's fast path; a name a backend registered
 * under (fast, vm, runsc, ...), or a path to a binary of that name → that backend (given the name or path as
 * `binary`); any other name or path → the CLI backend driving that binary (runc, crun, berth-runc, ...). The CLI
 * backend itself registers as "cli" and is never picked by that name.
 */
export function openRuntime(binaryName: string | undefined, root: string, more: Pick<RuntimeOptions, 'clientRoot' | 'log'> = {}): OciRuntime {
  const name = binaryName || 'fast';
  const base = basename(name);
  const named = base !== 'cli' ? backends.get(base) : undefined;
  if (named) return named({ root, ...more, binary: name });
  const cli = backends.get('cli');
  if (!cli) throw errInvalidArgument(`no runtime backend for ${JSON.stringify(name)} (have ${[...backends.keys()].join(', ')})`);
  return cli({ root, ...more, binary: name });
}
