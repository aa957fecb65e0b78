// Any runc-compatible OCI runtime binary (runc, crun, berth-runc) driven through its command line, each process
// watched by berth-monitor. A runtime that needs flags of its own extends CliRuntime (runsc.ts). As containerd's
// runc shim, the runtime logs JSON lines to a file (--log, --log-format json): `create` runs with the container's
// stdio, so its error reaches us only there.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { BerthError, ErrorCode, errNotImplemented } from '../../api/errdefs.ts';
import type { CgroupStats, LinuxResources } from '../cgroups/types.ts';
import { consolePaths, startMonitored, type Monitored } from '../monitor.ts';
import { registerRuntime, type CreateRequest, type ExecRequest, type OciRuntime } from '../oci-runtime.ts';
import { statsFromRuncEvent } from './runc-events.ts';

const run = promisify(execFile);

/** The message of the last error a runtime logged (JSON lines with level and msg), as containerd's runc shim
 * reports a failed create. */
export function lastRuntimeError(log: string): string | undefined {
  let text: string;
  try { text = readFileSync(log, 'utf8'); } catch { return undefined; }
  let msg: string | undefined;
  for (const line of text.split('\n')) {
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string };
      if (entry.level === 'error' && entry.msg) msg = entry.msg.trim();
    } catch { /* not a JSON line (a runtime's own output) */ }
  }
  return msg;
}

export class CliRuntime implements OciRuntime {
  readonly name: string;
  private readonly global: string[];

  constructor(protected readonly binary: string, readonly root: string, private readonly log?: string) {
    this.name = basename(binary);
    this.global = ['--root', root, ...(log ? ['--log', log, '--log-format', 'json'] : [])];
  }

  /** The global flags (before the command) of a command on container `id`. */
  protected globalFlags(_id: string): string[] {
    return this.global;
  }

  /** Runs before `create`: where a backend probes its host or decides the container's flags. */
  protected async beforeCreate(_req: CreateRequest): Promise<void> {}

  protected async cli(id: string, args: string[], input?: string): Promise<string> {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    try {
      const child = run(this.binary, [...this.globalFlags(id), ...args], { env, encoding: 'utf8', maxBuffer: 16 << 20 });
      if (input !== undefined) child.child.stdin!.end(input);
      return (await child).stdout;
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === 'ENOENT') throw new BerthError(ErrorCode.NotFound, `OCI runtime ${this.binary} not found on PATH`);
      const why = e.stderr?.trim() || (this.log && lastRuntimeError(this.log)) || e.message.trim();
      throw new BerthError(ErrorCode.FailedPrecondition, `${this.name} ${args[0]}: ${why}`);
    }
  }

  /** Runs `command` (create or exec) under berth-monitor; with a terminal the monitor receives the pty master on
   * the console socket it passes to the runtime. */
  private monitored(id: string, command: string[], exitFile: string, pidFile: string, req: { stdio: CreateRequest['stdio']; terminal?: boolean; stateDir: string },
    name: string): Monitored {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const console = req.terminal ? consolePaths(req.stateDir, name) : undefined;
    const [verb, ...rest] = command;
    const args = console ? [verb!, '--console-socket', console.socket, ...rest] : command;
    return startMonitored({ command: [this.binary, ...this.globalFlags(id), ...args], exitFile, pidFile, stdio: req.stdio, env, ...(console ? { console } : {}) });
  }

  async create(req: CreateRequest): Promise<Monitored> {
    await this.beforeCreate(req);
    const pidFile = join(req.stateDir, 'init.pid');
    const m = this.monitored(req.id, ['create', '--bundle', req.bundle, '--pid-file', pidFile, ...(req.noPivot ? ['--no-pivot'] : []), req.id],
      join(req.stateDir, 'init.exit'), pidFile, req, 'init');
    try {
      await m.pid;
    } catch (err) {
      const why = this.log && lastRuntimeError(this.log);
      if (why) throw new BerthError(ErrorCode.FailedPrecondition, `${this.name} create: ${why}`);
      throw err;
    }
    return m;
  }

  async start(id: string): Promise<void> {
    await this.cli(id, ['start', id]);
  }

  async exec(req: ExecRequest): Promise<Monitored> {
    const processFile = join(req.stateDir, `${req.execId}.process.json`);
    writeFileSync(processFile, JSON.stringify(req.process));
    const pidFile = join(req.stateDir, `${req.execId}.pid`);
    const m = this.monitored(req.id, ['exec', '--process', processFile, '--pid-file', pidFile, '--detach', req.id], join(req.stateDir, `${req.execId}.exit`), pidFile, req, req.execId);
    await m.pid;
    return m;
  }

  async kill(id: string, signal: number, all: boolean): Promise<void> {
    await this.cli(id, ['kill', ...(all ? ['--all'] : []), id, String(signal)]);
  }

  async delete(id: string, force: boolean): Promise<void> {
    await this.cli(id, ['delete', ...(force ? ['--force'] : []), id]);
  }

  async pause(id: string): Promise<void> {
    await this.cli(id, ['pause', id]);
  }

  async resume(id: string): Promise<void> {
    await this.cli(id, ['resume', id]);
  }

  async pids(id: string): Promise<number[]> {
    const out = await this.cli(id, ['ps', '--format', 'json', id]);
    return (JSON.parse(out || '[]') as number[] | null) ?? [];
  }

  /** `events --stats`: one event in runc's format (runtimes/backends/runc-events.ts). A runtime without the
   * command (crun 1.8) is not-implemented: the caller reads the container's cgroup instead. */
  async stats(id: string): Promise<CgroupStats> {
    let out: string;
    try {
      out = await this.cli(id, ['events', '--stats', id]);
    } catch (err) {
      if (/unknown command/i.test((err as Error).message)) throw errNotImplemented(`${this.name} has no events command`);
      throw err;
    }
    return statsFromRuncEvent(out);
  }

  async update(id: string, resources: LinuxResources): Promise<void> {
    await this.cli(id, ['update', '--resources', '-', id], JSON.stringify(resources));
  }
}

registerRuntime('cli', ({ root, binary, clientRoot, log }) => new CliRuntime(binary ?? 'runc', clientRoot ?? root, log));
