// A berthd per test: in-process (fast, and the test can look at its stores) or as the built binary, with a
// scratch root, state and socket, stopped when the test ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import pino from 'pino';
import { ApiClient } from '../../api/grpc-client.ts';
import { DEFAULT_CONFIG, finishConfig, type DaemonConfig } from '../../daemon/config.ts';
import { Berthd } from '../../daemon/server.ts';
import { tempDir } from '../helpers/tmp.ts';
import { socketAccepts as accepts } from '../../api/unix-socket.ts';


export const REPO = join(import.meta.dirname, '..', '..');

export interface TestDaemon {
  config: DaemonConfig;
  address: string;
  client(namespace?: string): ApiClient;
}

export function testConfig(t: ExecutionContext, overrides: Partial<DaemonConfig> = {}): DaemonConfig {
  const dir = tempDir(t, 'berthd-');
  return finishConfig({
    ...DEFAULT_CONFIG, root: join(dir, 'root'), state: join(dir, 'state'), address: join(dir, 'state', 'berthd.sock'),
    gcDelayMs: 20, logLevel: 'warn', ...overrides,
  });
}

function clients(t: ExecutionContext, address: string): (ns?: string) => ApiClient {
  return (ns) => {
    const c = new ApiClient(address, ns ? { namespace: ns } : {});
    t.teardown(() => c.close());
    return c;
  };
}

/** A logger that keeps what berthd logs, so a test can read it (JSON lines, as berthd writes them). */
export function keptLog(level = 'info'): { log: pino.Logger; entries(): Array<Record<string, any>> } {
  const lines: string[] = [];
  const log = pino({ level }, { write: (line: string) => { lines.push(line); } });
  return { log, entries: () => lines.map((l) => JSON.parse(l) as Record<string, any>) };
}

export async function startDaemon(t: ExecutionContext, overrides: Partial<DaemonConfig> = {}, log?: pino.Logger): Promise<TestDaemon & { daemon: Berthd }> {
  const config = testConfig(t, overrides);
  const daemon = await Berthd.start(config, log ?? pino({ level: config.logLevel }, pino.destination(2)));
  t.teardown(() => daemon.stop());
  return { daemon, config, address: config.address, client: clients(t, config.address) };
}

/** Runs dist/berthd.mjs (built by `npm run build`) and waits for its socket. */
export async function startDaemonProcess(t: ExecutionContext, overrides: Partial<DaemonConfig> = {}, extraArgs: string[] = []): Promise<TestDaemon & { child: ChildProcess; stderr: () => string }> {
  const config = testConfig(t, overrides);
  let stderr = '';
  const child = spawn(process.execPath, [join(REPO, 'dist', 'berthd.mjs'), '--root', config.root, '--state', config.state,
    '--address', config.address, '--log-level', config.logLevel, ...extraArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });
  // A socket left by a killed daemon exists before the new one listens: wait until it accepts.
  for (let i = 0; !(await accepts(config.address)); i++) {
    if (child.exitCode !== null) throw new Error(`berthd exited ${child.exitCode}: ${stderr}`);
    if (i > 400) throw new Error(`berthd did not listen on ${config.address}: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return { child, config, address: config.address, client: clients(t, config.address), stderr: () => stderr };
}
