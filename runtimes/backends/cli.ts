// Any runc-compatible OCI runtime binary (runc, crun, runsc, berth-runc) driven through its command line,
// each process watched by berth-monitor. Binaries that need extra global flags on this kind of host get them
// from BINARY_FLAGS (runsc: no network stack of its own, the ptrace platform).
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { BerthError, ErrorCode } from '../../api/errdefs.ts';
import type { CgroupStats, LinuxResources } from '../cgroups/types.ts';
import { consolePaths, startMonitored, type Monitored } from '../monitor.ts';
import { registerRuntime, type CreateRequest, type ExecRequest, type OciRuntime } from '../oci-runtime.ts';

const run = promisify(execFile);

const BINARY_FLAGS: Record<string, string[]> = {
  runsc: ['--network=none', '--platform=ptrace'],
};

class CliRuntime implements OciRuntime {
  readonly name: string;
  private readonly global: string[];

  constructor(private readonly binary: string, root: string) {
    this.name = basename(binary);
    this.global = ['--root', root, ...(BINARY_FLAGS[this.name] ?? [])];
  }

  private async cli(args: string[], input?: string): Promise<string> {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    try {
      const child = run(this.binary, [...this.global, ...args], { env, encoding: 'utf8', maxBuffer: 16 << 20 });
      if (input !== undefined) child.child.stdin!.end(input);
      return (await child).stdout;
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === 'ENOENT') throw new BerthError(ErrorCode.NotFound, `OCI runtime ${this.binary} not found on PATH`);
      throw new BerthError(ErrorCode.FailedPrecondition, `${this.name} ${args[0]}: ${(e.stderr || e.message).trim()}`);
    }
  }

  /** Runs `command` (create or exec) under berth-monitor; with a terminal the monitor receives the pty master on
   * the console socket it passes to the runtime. */
  private monitored(command: string[], exitFile: string, pidFile: string, req: { stdio: CreateRequest['stdio']; terminal?: boolean; stateDir: string },
    name: string): Monitored {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const console = req.terminal ? consolePaths(req.stateDir, name) : undefined;
    const [verb, ...rest] = command;
    const args = console ? [verb!, '--console-socket', console.socket, ...rest] : command;
    return startMonitored({ command: [this.binary, ...this.global, ...args], exitFile, pidFile, stdio: req.stdio, env, ...(console ? { console } : {}) });
  }

  async create(req: CreateRequest): Promise<Monitored> {
    const pidFile = join(req.stateDir, 'init.pid');
    const m = this.monitored(['create', '--bundle', req.bundle, '--pid-file', pidFile, ...(req.noPivot ? ['--no-pivot'] : []), req.id],
      join(req.stateDir, 'init.exit'), pidFile, req, 'init');
    await m.pid;
    return m;
  }

  async start(id: string): Promise<void> {
    await this.cli(['start', id]);
  }

  async exec(req: ExecRequest): Promise<Monitored> {
    const processFile = join(req.stateDir, `${req.execId}.process.json`);
    writeFileSync(processFile, JSON.stringify(req.process));
    const pidFile = join(req.stateDir, `${req.execId}.pid`);
    const m = this.monitored(['exec', '--process', processFile, '--pid-file', pidFile, '--detach', req.id], join(req.stateDir, `${req.execId}.exit`), pidFile, req, req.execId);
    await m.pid;
    return m;
  }

  async kill(id: string, signal: number, all: boolean): Promise<void> {
    await this.cli(['kill', ...(all ? ['--all'] : []), id, String(signal)]);
  }

  async delete(id: string, force: boolean): Promise<void> {
    await this.cli(['delete', ...(force ? ['--force'] : []), id]);
  }

  async pause(id: string): Promise<void> {
    await this.cli(['pause', id]);
  }

  async resume(id: string): Promise<void> {
    await this.cli(['resume', id]);
  }

  async pids(id: string): Promise<number[]> {
    const out = await this.cli(['ps', '--format', 'json', id]);
    return (JSON.parse(out || '[]') as number[] | null) ?? [];
  }

  /** `events --stats` (runc's JSON: cpu.usage, memory.usage/swap/raw, pids, blkio) in berth's shape. */
  async stats(id: string): Promise<CgroupStats> {
    const d = (JSON.parse(await this.cli(['events', '--stats', id])) as { data?: Record<string, any> }).data ?? {};
    const mem = d.memory ?? {};
    const cpu = d.cpu ?? {};
    return {
      ...(d.memory ? { memory: {
        usage: mem.usage?.usage ?? 0, maxUsage: mem.usage?.max ?? 0, limit: mem.usage?.limit ?? 0, failcnt: mem.usage?.failcnt ?? 0,
        cache: mem.cache ?? 0, rss: mem.raw?.rss ?? 0, swap: mem.swap?.usage ?? 0, swapLimit: mem.swap?.limit ?? 0, raw: mem.raw ?? {},
      } } : {}),
      ...(d.cpu ? { cpu: {
        usageTotal: cpu.usage?.total ?? 0, usageUser: cpu.usage?.user ?? 0, usageSystem: cpu.usage?.kernel ?? 0, perCpu: cpu.usage?.percpu ?? [],
        throttling: { periods: cpu.throttling?.periods ?? 0, throttledPeriods: cpu.throttling?.throttledPeriods ?? 0, throttledTime: cpu.throttling?.throttledTime ?? 0 },
      } } : {}),
      ...(d.pids ? { pids: { current: d.pids.current ?? 0, limit: d.pids.limit ?? 0 } } : {}),
    };
  }

  async update(id: string, resources: LinuxResources): Promise<void> {
    await this.cli(['update', '--resources', '-', id], JSON.stringify(resources));
  }
}

registerRuntime('cli', ({ root, binary }) => new CliRuntime(binary ?? 'runc', root));
