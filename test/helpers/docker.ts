// Docker Engine (Debian's dockerd 20.10) on a private berthd or containerd: its own data root, exec root, socket,
// pidfile and empty daemon.json in a scratch dir, no iptables and no bridge (tests run containers with
// --network none or host). Started once per suite (dockerd takes a few seconds), stopped by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { socketAccepts } from '../../api/unix-socket.ts';
import { removeTree } from './tmp.ts';

/** Debian's docker CLI (a machine may have another `docker` earlier on PATH). */
export const DOCKER_CLI = '/usr/bin/docker';

export interface RunResult { code: number; stdout: string; stderr: string }

function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.DOCKER_HOST;
  return env;
}

/** Runs a command to its end; its stdin gets `input` (then EOF) or nothing. */
export function runCommand(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${cmd} ${args.join(' ')}: no end within ${opts.timeoutMs ?? 60_000} ms; stderr: ${stderr}`)); }, opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), stdout, stderr }); });
  });
}

async function waitUntil(what: string, ok: () => Promise<boolean>, child: ChildProcess, log: () => string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}): ${log().slice(-3000)}`);
    if (Date.now() > end) throw new Error(`${what} not ready within ${timeoutMs} ms: ${log().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class Dockerd {
  private log = '';
  private constructor(readonly dir: string, readonly socket: string, private readonly child: ChildProcess) {}

  /** dockerd driving the containerd-compatible daemon at `containerdAddress` (`extraArgs` added to its own). */
  static async start(containerdAddress: string, extraArgs: string[] = []): Promise<Dockerd> {
    const dir = mkdtempSync(join(process.env.BERTH_TEST_TMP ?? tmpdir(), 'dockerd-'));
    const socket = join(dir, 'docker.sock');
    writeFileSync(join(dir, 'daemon.json'), '{}\n');
    mkdirSync(join(dir, 'exec'), { mode: 0o700 });
    const child = spawn('dockerd', ['--containerd', containerdAddress, '--config-file', join(dir, 'daemon.json'), '--data-root', join(dir, 'data'),
      '--exec-root', join(dir, 'exec'), '-H', `unix://${socket}`, '--pidfile', join(dir, 'docker.pid'), '--iptables=false', '--ip-masq=false',
      '--bridge=none', '--userland-proxy=false', ...extraArgs], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const d = new Dockerd(dir, socket, child);
    const keep = (b: Buffer) => { d.log = (d.log + b.toString()).slice(-200_000); };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    try {
      await waitUntil('dockerd', async () => (await socketAccepts(socket)) && (await d.docker('version')).code === 0, child, () => d.log, 60_000);
    } catch (err) {
      await d.stop();
      throw err;
    }
    return d;
  }

  docker(...args: string[]): Promise<RunResult> {
    return runCommand(DOCKER_CLI, ['-H', `unix://${this.socket}`, ...args]);
  }

  dockerWithInput(input: string, ...args: string[]): Promise<RunResult> {
    return runCommand(DOCKER_CLI, ['-H', `unix://${this.socket}`, ...args], { input });
  }

  /** What dockerd logged (the last 200 kB). */
  output(): string {
    return this.log;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    removeTree(this.dir);
  }
}

/** A daemon process (berthd or containerd) that a suite starts, kills and restarts on the same dirs. */
export class DaemonProcess {
  private child: ChildProcess | undefined;
  private log = '';
  constructor(private readonly name: string, private readonly cmd: string[], readonly address: string) {}

  async start(): Promise<void> {
    const child = spawn(this.cmd[0]!, this.cmd.slice(1), { env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr!.on('data', (b: Buffer) => { this.log = (this.log + b.toString()).slice(-200_000); });
    // A socket left by a killed daemon exists before the new one listens: wait until it accepts.
    await waitUntil(this.name, () => socketAccepts(this.address), child, () => this.log, 30_000);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  output(): string {
    return this.log;
  }

  /** SIGKILL, as a crash: the daemon cleans up nothing. */
  async kill9(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
