// Exclusive ownership of one ingest: an in-process set (two stores opened on one root in one process still
// exclude each other) plus an on-disk marker holding the owner's pid and process start time, so a marker left
// by a crashed process (pid gone, or reused by a different process) is recognised as stale and taken over.
import { openSync, writeSync, closeSync, readFileSync, unlinkSync } from 'node:fs';
import { errUnavailable } from '../api/errdefs.ts';

const held = new Set<string>();

function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; the start time is field 22 (index 19 after it).
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

const self = `${process.pid} ${startTime(process.pid)}`;

function isStale(marker: string): boolean {
  let owner: string;
  try { owner = readFileSync(marker, 'utf8'); } catch { return true; }
  if (owner === self) return true; // ours but not in `held`: left by a writer of this process that is gone
  const [pid, started] = owner.split(' ');
  const n = Number(pid);
  if (!Number.isInteger(n) || n <= 0) return true;
  return startTime(n) !== started;
}

/** Whether `marker` is held by a live writer (this process or another). */
export function isLocked(marker: string): boolean {
  return held.has(marker) || !isStale(marker);
}

/** Takes the lock or throws unavailable naming `what`. */
export function lock(marker: string, what: string): void {
  if (held.has(marker)) throw errUnavailable(`${what} is locked by another writer`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(marker, 'wx', 0o600);
      try { writeSync(fd, self); } finally { closeSync(fd); }
      held.add(marker);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (!isStale(marker)) break;
      try { unlinkSync(marker); } catch { /* raced with another taker */ }
    }
  }
  throw errUnavailable(`${what} is locked by another writer`);
}

export function unlock(marker: string): void {
  if (!held.delete(marker)) return;
  try { unlinkSync(marker); } catch { /* ingest already removed */ }
}
