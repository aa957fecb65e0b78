// Mounting a Mount list (what snapshotters return and CreateTaskRequest carries) at a target — the shim mounts
// a rootfs, the daemon mounts snapshots to unpack into — and unmounting. Types other than bind go to mount(8) as
// they are ("tmpfs", "fuse.*", ...).
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { BerthError, ErrorCode } from './errdefs.ts';
import type { Mount } from './mount.ts';

const run = promisify(execFile);

async function mount(args: string[]): Promise<void> {
  try {
    await run('mount', args);
  } catch (err) {
    throw new BerthError(ErrorCode.FailedPrecondition, `mount ${args.join(' ')}: ${((err as { stderr?: string }).stderr || (err as Error).message).trim()}`);
  }
}

export async function mountAll(mounts: Mount[], target: string): Promise<void> {
  mkdirSync(target, { recursive: true });
  const done: string[] = [];
  try {
    for (const m of mounts) {
      const dest = m.target ? `${target}/${m.target.replace(/^\/+/, '')}` : target;
      const isBind = m.type === 'bind' || m.options.includes('bind') || m.options.includes('rbind');
      const options = m.options.filter((o) => o !== 'bind' && o !== 'rbind');
      const flags = isBind ? ['-o', [m.options.includes('rbind') ? 'rbind' : 'bind', ...options].join(',')] : ['-t', m.type, ...(options.length ? ['-o', options.join(',')] : [])];
      await mount([...flags, m.source, dest]);
      done.push(dest);
    }
  } catch (err) {
    for (const d of done.reverse()) await unmountAll(d).catch(() => undefined);
    throw err;
  }
}

/** Unmounts everything at `target` (stacked mounts too); a target with nothing mounted is fine. */
export async function unmountAll(target: string): Promise<void> {
  for (let i = 0; i < 16; i++) {
    try {
      await run('umount', [target]);
    } catch (err) {
      const msg = String((err as { stderr?: string }).stderr ?? '');
      if (/not mounted|no mount point|not found/i.test(msg)) return;
      if (/busy/i.test(msg)) { await run('umount', ['-l', target]).catch(() => undefined); return; }
      throw new BerthError(ErrorCode.FailedPrecondition, `umount ${target}: ${msg.trim()}`);
    }
  }
}

/** Mounts `mounts` on a fresh directory under `scratch`, runs fn on it, and always unmounts and removes it. */
export async function withTempMount<T>(mounts: Mount[], scratch: string, fn: (dir: string) => Promise<T>): Promise<T> {
  mkdirSync(scratch, { recursive: true });
  const dir = mkdtempSync(`${scratch}/mnt-`);
  try {
    await mountAll(mounts, dir);
    try {
      return await fn(dir);
    } finally {
      await unmountAll(dir);
    }
  } finally {
    // Never recursive: if the unmount failed, the snapshot's files are still under dir.
    rmdirSync(dir);
  }
}
