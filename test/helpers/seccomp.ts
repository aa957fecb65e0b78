// Helpers of the seccomp tests: a seccomp agent (seccomp-agent.c) and a program that makes one syscall through
// a chosen x86 ABI (abi-mkdir.c), both compiled on first use.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { tempDir } from './tmp.ts';

/** A static binary of test/helpers/<name>.c, compiled once per content. */
export function helperBinary(name: string): string {
  const source = join(import.meta.dirname, `${name}.c`);
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 12);
  const bin = join(tmpdir(), `berth-${name}-${hash}`);
  if (!existsSync(bin)) {
    execFileSync('gcc', ['-O2', '-Wall', '-static', '-no-pie', '-o', `${bin}.${process.pid}`, source]);
    renameSync(`${bin}.${process.pid}`, bin);
  }
  return bin;
}

export interface Agent {
  socket: string;
  /** The container process states received, parsed, in order. */
  states(): any[];
  /** The notifications answered: syscall number and pid (as the agent's pid namespace sees it). */
  notifications(): { nr: number; pid: number }[];
}

/** Starts the agent, answering each notification as `answer` says (see seccomp-agent.c); killed at the end. */
export async function startAgent(t: ExecutionContext, answer: string): Promise<Agent> {
  const dir = tempDir(t, 'agent-');
  const socket = join(dir, 'agent.sock');
  const log = join(dir, 'log');
  const child = spawn(helperBinary('seccomp-agent'), [socket, log, answer], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { child.kill('SIGKILL'); });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the seccomp agent exited (${code})`)));
  });
  const lines = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []);
  return {
    socket,
    states: () => lines().filter((l) => l.startsWith('state ')).map((l) => JSON.parse(l.slice(6))),
    notifications: () => lines().filter((l) => l.startsWith('notify ')).map((l) => { const [, nr, pid] = l.split(' '); return { nr: Number(nr), pid: Number(pid) }; }),
  };
}
