// Starting berthd and containerd side by side for benchmarks, each with its own root, state and socket.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { socketAccepts as accepts } from '../../api/unix-socket.ts';

export const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));

export interface Daemon { name: string; address: string; child: ChildProcess; stop(): Promise<void> }


async function waitFor(path: string, child: ChildProcess, name: string): Promise<void> {
  for (let i = 0; !(await accepts(path)); i++) {
    if (child.exitCode !== null) throw new Error(`${name} exited ${child.exitCode}`);
    if (i > 400) throw new Error(`${name} did not listen on ${path}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function env(): NodeJS.ProcessEnv {
  const e = { ...process.env };
  delete e.NODE_EXTRA_CA_CERTS;
  return e;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null) return;
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  };
}

/** `metricsAddress`: serve the metrics endpoint there (`[metrics] address`). */
/** berthd on `dir`, with a metrics endpoint when given an address, and `extraConfig` (TOML) in its config file. */
export async function startBerthd(dir: string, metricsAddress?: string, extraConfig = ''): Promise<Daemon> {
  const address = join(dir, 'berthd.sock');
  const config = join(dir, 'config.toml');
  mkdirSync(dir, { recursive: true });
  writeFileSync(config, (metricsAddress ? `[metrics]\n  address = "${metricsAddress}"\n` : '') + extraConfig);
  const child = spawn(process.execPath, [join(DIST, 'berthd.mjs'), '-c', config, '--root', join(dir, 'root'), '--state', join(dir, 'state'), '--address', address, '-l', 'warn'],
    { stdio: ['ignore', 'ignore', 'inherit'], env: env() });
  await waitFor(address, child, 'berthd');
  return { name: 'berthd', address, child, stop: stopper(child) };
}

export async function startContainerd(dir: string): Promise<Daemon> {
  mkdirSync(dir, { recursive: true });
  const address = join(dir, 'containerd.sock');
  const config = join(dir, 'config.toml');
  writeFileSync(config, ['version = 2', 'disabled_plugins = ["io.containerd.grpc.v1.cri"]', '[grpc]', `  address = "${address}"`,
    '[ttrpc]', `  address = "${address}.ttrpc"`, '[debug]', `  address = "${join(dir, 'debug.sock')}"`].join('\n') + '\n');
  const child = spawn('containerd', ['--config', config, '--root', join(dir, 'root'), '--state', join(dir, 'state')], { stdio: ['ignore', 'ignore', 'ignore'], env: env() });
  await waitFor(address, child, 'containerd');
  return { name: 'containerd', address, child, stop: stopper(child) };
}

/** Resident and proportional set size of a process, in MiB. */
export function memoryOf(pid: number): { rss: number; pss: number } {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(rollup)?.[1] ?? 0);
  return { rss: kb('Rss') / 1024, pss: kb('Pss') / 1024 };
}

/** Fields of /proc/PID/stat by their number in proc(5) (1 = pid), read past the parenthesised command name. */
export function procStat(pid: number | string): (n: number) => string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // from field 3, state
  return (n) => rest[n - 3]!;
}

export function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { env: env(), encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
