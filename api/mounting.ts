// Mounting a Mount list (what snapshotters return and CreateTaskRequest carries) at a target — the shim mounts
// a rootfs, the daemon mounts snapshots to unpack into — and unmounting, with mount(2)/umount2(2) directly
// (a mount(8) process per call cost more than the rest of a container start).
import { close, mkdirSync, mkdtempSync, openSync, rmdirSync } from 'node:fs';
import { BerthError, ErrorCode } from './errdefs.ts';
import { MS, mount, umount2 } from './libc.ts';
import type { Mount } from './mount.ts';

const FLAG_OPTIONS: Record<string, number> = {
  ro: MS.ro, nosuid: MS.nosuid, nodev: MS.nodev, noexec: MS.noexec, sync: MS.sync, noatime: MS.noatime,
  nodiratime: MS.nodiratime, relatime: MS.relatime, strictatime: MS.strictatime,
};
const IGNORED = new Set(['rw', 'suid', 'dev', 'exec', 'async', 'defaults']);

function mountOne(m: Mount, dest: string): void {
  const isBind = m.type === 'bind' || m.options.includes('bind') || m.options.includes('rbind');
  let flags = 0;
  const data: string[] = [];
  for (const o of m.options) {
    if (o === 'bind' || o === 'rbind') continue;
    if (FLAG_OPTIONS[o] !== undefined) flags |= FLAG_OPTIONS[o]!;
    else if (!IGNORED.has(o)) data.push(o);
  }
  try {
    if (isBind) {
      mount(m.source, dest, '', MS.bind | (m.options.includes('rbind') ? MS.rec : 0), '');
      // Bind mounts take their flags (read-only, ...) only on a remount.
      if (flags) mount('', dest, '', MS.remount | MS.bind | flags, '');
    } else {
      mount(m.source, dest, m.type, flags, data.join(','));
    }
  } catch (err) {
    throw new BerthError(ErrorCode.FailedPrecondition, `mounting ${m.type} ${m.source} at ${dest} (${m.options.join(',')}): ${(err as Error).message}`);
  }
}

export async function mountAll(mounts: Mount[], target: string): Promise<void> {
  mkdirSync(target, { recursive: true });
  const done: string[] = [];
  try {
    for (const m of mounts) {
      const dest = m.target ? `${target}/${m.target.replace(/^\/+/, '')}` : target;
      mountOne(m, dest);
      done.push(dest);
    }
  } catch (err) {
    for (const d of done.reverse()) await unmountAll(d).catch(() => undefined);
    throw err;
  }
}

/** Unmounts everything at `target` (stacked mounts too); a target with nothing mounted is fine. */
export async function unmountAll(target: string): Promise<void> {
  for (let i = 0; i < 32; i++) {
    try {
      umount2(target, 0);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'EINVAL' || code === 'ENOENT') return;
      if (code === 'EBUSY') { try { umount2(target, 2 /* MNT_DETACH */); } catch { /* gone meanwhile */ } return; }
      throw new BerthError(ErrorCode.FailedPrecondition, `unmounting ${target}: ${(err as Error).message}`);
    }
  }
}

const O_PATH = 0o10000000;

/**
 * Like unmountAll, but the filesystems' teardown happens after the call returns: each mount is detached while an
 * O_PATH descriptor holds it, and the descriptors are closed on the thread pool. The last reference to an overlay
 * does the teardown, and that syncs its whole upper filesystem (1-3 ms here): a task's Delete need not wait for it.
 */
export function detachAll(target: string): void {
  const held: number[] = [];
  try {
    for (let i = 0; i < 32; i++) {
      let fd: number;
      try {
        fd = openSync(target, O_PATH); // libuv adds O_CLOEXEC
      } catch (err) {
        if ((err as { code?: string }).code === 'ENOENT') return;
        throw new BerthError(ErrorCode.FailedPrecondition, `unmounting ${target}: ${(err as Error).message}`);
      }
      held.push(fd);
      try {
        umount2(target, 2 /* MNT_DETACH */);
      } catch (err) {
        if ((err as { code?: string }).code === 'EINVAL') return; // nothing (more) mounted there
        throw new BerthError(ErrorCode.FailedPrecondition, `unmounting ${target}: ${(err as Error).message}`);
      }
    }
  } finally {
    for (const fd of held) close(fd, () => undefined);
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
