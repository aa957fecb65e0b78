// Mounting a container's rootfs from the Mount list of CreateTaskRequest (what the snapshotter returned) at
// <bundle>/rootfs, and unmounting it on delete. Mount types other than bind and overlay go to mount(8) as
// they are ("tmpfs", "fuse.*", ...).
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { BerthError, ErrorCode } from '../api/errdefs.ts';
import type { Mount } from '../api/mount.ts';

const run = promisify(execFile);

async function mount(args: string[]): Promise<void> {
  try {
    await run('mount', args);
  } catch (err) {
    throw new BerthError(ErrorCode.FailedPrecondition, `mount ${args.join(' ')}: ${((err as { stderr?: string }).stderr || (err as Error).message).trim()}`);
  }
}

export async function mountRootfs(mounts: Mount[], target: string): Promise<void> {
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
