// Reading and writing cgroup control files: plain synchronous fs calls (these run on every container start),
// with kernel errors turned into BerthErrors that name the resource, the file and the value.
import { readFileSync, writeFileSync, existsSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { errInvalidArgument, errFailedPrecondition, errNotFound, errInternal, BerthError } from '../../api/errdefs.ts';

/** "max" in a v2 file, and v1's PAGE_COUNTER_MAX-style "no limit" values, reported as this. */
export const UNLIMITED = 2 ** 64 - 1;

export function readText(dir: string, file: string): string {
  try {
    return readFileSync(join(dir, file), 'utf8');
  } catch (err) {
    throw ioError(err, `read ${join(dir, file)}`);
  }
}

/** The file's content, or undefined when the file does not exist (a controller or feature the kernel lacks). */
export function readOptional(dir: string, file: string): string | undefined {
  try {
    return readFileSync(join(dir, file), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(err, `read ${join(dir, file)}`);
  }
}

export function readNumber(dir: string, file: string): number {
  return parseValue(readText(dir, file).trim());
}

export function readOptionalNumber(dir: string, file: string): number | undefined {
  const text = readOptional(dir, file);
  return text === undefined ? undefined : parseValue(text.trim());
}

export function parseValue(text: string): number {
  if (text === 'max') return UNLIMITED;
  const n = Number(text);
  return Number.isFinite(n) ? n : 0;
}

/** "key value" lines (memory.stat, cpu.stat, pids.events ...). */
export function readKeyed(dir: string, file: string): Record<string, number> {
  return parseKeyed(readOptional(dir, file));
}

export function parseKeyed(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (text === undefined) return out;
  for (const line of text.split('\n')) {
    const [key, value] = line.split(' ');
    if (key && value !== undefined) out[key] = parseValue(value);
  }
  return out;
}

/**
 * Writes one value. `what` names the resource for the error ("memory.limit"). EINVAL/ERANGE mean the kernel
 * refused the value; EBUSY on a limit means current usage is above it.
 */
export function writeValue(dir: string, file: string, value: string | number, what: string): void {
  const path = join(dir, file);
  try {
    writeFileSync(path, String(value));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const msg = `cgroup ${what}: cannot write ${JSON.stringify(String(value))} to ${path}`;
    if (code === 'EINVAL' || code === 'ERANGE' || code === 'EOVERFLOW') throw errInvalidArgument(`${msg}: value rejected by the kernel (${code})`, err);
    if (code === 'EBUSY') throw errFailedPrecondition(`${msg}: current usage is above the new limit, or the cgroup is busy (EBUSY)`, err);
    // cgroupfs answers EACCES, not ENOENT, to a write that would create a file: a knob this kernel lacks.
    if (code === 'ENOENT' || (code === 'EACCES' && !existsSync(path))) throw errFailedPrecondition(`${msg}: the kernel does not provide ${file} here`, err);
    if (code === 'ENOSPC') throw errFailedPrecondition(`${msg}: no space (parent cpuset/limits exclude it) (ENOSPC)`, err);
    throw ioError(err, msg);
  }
}

export function fileExists(dir: string, file: string): boolean {
  return existsSync(join(dir, file));
}

export function ioError(err: unknown, what: string): BerthError {
  if (err instanceof BerthError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return errNotFound(`${what}: no such file or directory`, err);
  return errInternal(`${what}: ${e.code ?? ''} ${e.message}`.trim(), err);
}

/** Child cgroup directories, deepest first, then `dir` itself (the order rmdir needs). */
export function cgroupTreeBottomUp(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries;
    try { entries = readdirSync(d, { withFileTypes: true }); } catch { return; }
    for (const e of entries) if (e.isDirectory()) walk(join(d, e.name));
    out.push(d);
  };
  walk(dir);
  return out;
}

/** Every pid listed in cgroup.procs of `dir` and its descendants. */
export function procsInTree(dir: string): number[] {
  const pids = new Set<number>();
  for (const d of cgroupTreeBottomUp(dir)) {
    const text = readOptional(d, 'cgroup.procs');
    if (text === undefined) continue;
    for (const line of text.split('\n')) if (line) pids.add(Number(line));
  }
  return [...pids].sort((a, b) => a - b);
}

/**
 * Removes each directory and its child cgroups. rmdir of a cgroup fails with EBUSY while a task is still
 * exiting, so retry briefly (one deadline for all of them). Directories already gone are fine.
 */
export async function removeCgroupDirs(dirs: string[], timeoutMs = 2000): Promise<void> {
  // Mostly each directory is empty: one rmdir each, before walking trees (a readdir of ~30 files per hierarchy).
  if (dirs.every((d) => { try { rmdirSync(d); return true; } catch (err) { return (err as NodeJS.ErrnoException).code === 'ENOENT'; } })) return;
  const deadline = Date.now() + timeoutMs;
  let busy: unknown;
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    for (const dir of dirs) {
      for (const d of cgroupTreeBottomUp(dir)) {
        try { rmdirSync(d); } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') continue;
          if (code !== 'EBUSY' && code !== 'ENOTEMPTY') throw ioError(err, `remove cgroup ${d}`);
          busy = err;
        }
      }
    }
    const left = dirs.filter((d) => existsSync(d));
    if (left.length === 0) return;
    if (Date.now() >= deadline) {
      const pids = [...new Set(left.flatMap(procsInTree))];
      throw errFailedPrecondition(`remove cgroup ${left.join(', ')}: still busy after ${timeoutMs} ms (processes ${pids.join(',') || 'none'} remain)`, busy);
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}
