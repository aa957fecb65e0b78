// Removing a directory tree costs a syscall per entry. On a request's path a tree is renamed aside instead (one
// rename, so its name is free again at once) and removed in the background. The name it gets starts with '.',
// which no container id, bundle or namespace name can: whoever lists the parent skips it, and removes what a
// crash left behind (removeLeftAside).
import { randomBytes } from 'node:crypto';
import { readdirSync, renameSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { sysAddon, type SysAddon } from './sys-addon.ts';

const ASIDE = '.removing-';

export function removeSoon(dir: string): void {
  const aside = join(dirname(dir), `${ASIDE}${basename(dir)}-${randomBytes(4).toString('hex')}`);
  try {
    renameSync(dir, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') rmSync(dir, { recursive: true, force: true });
    return;
  }
  void removeTree(aside).catch(() => undefined);
}

/** A tree removed off the main thread: in one job on the thread pool (fs.rm runs a callback per entry on the main
 * thread: a bundle's cost berthd ~1 ms there), by fs.rm only where native/'s addon is not built. */
export function removeTree(dir: string): Promise<void> {
  let addon: SysAddon;
  try { addon = sysAddon(); } catch { return rm(dir, { recursive: true, force: true }); }
  return addon.removeTree(dir);
}

/** Trees renamed aside by a process that died before removing them. */
export function removeLeftAside(parent: string): void {
  let names: string[];
  try { names = readdirSync(parent); } catch { return; }
  for (const name of names) if (name.startsWith(ASIDE)) rmSync(join(parent, name), { recursive: true, force: true });
}
