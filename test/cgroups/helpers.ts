// Shared pieces of the cgroup tests: unique cgroup names that are always removed, and child processes that
// wait on stdin until they have been placed in a cgroup.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { ExecutionContext } from 'ava';
import { openCgroup, removeLeftoverCgroups, type CgroupManager } from '../../runtimes/cgroups/index.ts';

export function uniqueName(prefix = 'berth-cgtest'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/** A manager for a fresh absolute cgroup path, removed (processes killed first) when the test ends. */
export function testCgroup(t: ExecutionContext, path = `/${uniqueName()}`): CgroupManager {
  const cg = openCgroup(path);
  t.teardown(async () => { await removeLeftoverCgroups([path]); });
  return cg;
}

export interface Child {
  proc: ChildProcess;
  pid: number;
  /** Lets the child run its command (it waits on stdin until then). */
  go(): void;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/** Starts `sh -c script` under busybox, held before the script until go() so it can join a cgroup first. */
export async function heldChild(t: ExecutionContext, script: string): Promise<Child> {
  const proc = spawn('/bin/busybox', ['sh', '-c', `read _go; ${script}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d) => { stderr += d; });
  proc.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    // 'close', not 'exit': only then has all of the child's output been read.
    proc.once('close', (code, signal) => resolve({ code, signal, stderr }));
  });
  await new Promise((resolve, reject) => { proc.once('spawn', resolve); proc.once('error', reject); });
  t.teardown(() => { try { proc.kill('SIGKILL'); } catch { /* gone */ } });
  return { proc, pid: proc.pid!, go: () => proc.stdin!.end('go\n'), exited };
}

export function readCg(dir: string | undefined, file: string): string {
  if (!dir) throw new Error(`no directory for ${file}`);
  return readFileSync(`${dir}/${file}`, 'utf8').trim();
}

/** True when none of the manager's directories exists in any hierarchy. */
export function nothingLeft(cg: CgroupManager): boolean {
  return Object.values(cg.paths).every((d) => !existsSync(d));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
