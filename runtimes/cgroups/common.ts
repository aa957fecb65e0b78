// Pieces every layout's manager shares: joining a process, signalling a set of pids, making directories so
// that a failed create leaves nothing behind.
import { constants } from 'node:os';
import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { errInvalidArgument, errNotFound } from '../../api/errdefs.ts';
import { ioError } from './files.ts';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function signalNumber(signal: number | string): number {
  if (typeof signal === 'number') {
    if (Number.isInteger(signal) && signal >= 0 && signal < 65) return signal;
    throw errInvalidArgument(`signal ${signal}: not a valid signal number`);
  }
  if (/^\d+$/.test(signal)) return signalNumber(Number(signal));
  const name = (signal.toUpperCase().startsWith('SIG') ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`) as keyof typeof constants.signals;
  const n = constants.signals[name];
  if (n === undefined) throw errInvalidArgument(`signal ${JSON.stringify(signal)}: unknown signal name`);
  return n;
}

/** Sends `signal` to each pid; pids that already exited are skipped. */
export function signalEach(pids: number[], signal: number): void {
  for (const pid of pids) {
    try { process.kill(pid, signal); } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw ioError(err, `signal ${signal} to pid ${pid}`);
    }
  }
}

export function joinProcess(dir: string, pid: number): void {
  if (!Number.isInteger(pid) || pid <= 0) throw errInvalidArgument(`addProcess: ${pid} is not a valid pid`);
  try {
    writeFileSync(join(dir, 'cgroup.procs'), String(pid));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') throw errNotFound(`addProcess: process ${pid} does not exist`, err);
    throw ioError(err, `add process ${pid} to ${dir}`);
  }
}

/**
 * mkdir -p that reports which levels it created (top first), so a create that fails later can remove exactly
 * those and no pre-existing parent. `onCreated` runs for each new level before the next is made (v1 cpuset
 * must fill a level's cpus/mems before a child can be populated).
 */
export function makeDirs(dir: string, onCreated?: (dir: string) => void): string[] {
  const missing: string[] = [];
  for (let d = dir; !existsSync(d); d = dirname(d)) missing.unshift(d);
  const created: string[] = [];
  try {
    for (const d of missing) {
      mkdirSync(d);
      created.push(d);
      onCreated?.(d);
    }
  } catch (err) {
    removeDirs(created);
    throw ioError(err, `create cgroup ${dir}`);
  }
  return created;
}

/** Removes directories made by makeDirs, deepest first; missing ones are fine. */
export function removeDirs(created: string[]): void {
  for (const d of [...created].reverse()) {
    try { rmdirSync(d); } catch { /* already gone or still busy; nothing else to undo */ }
  }
}
