// Builds a minimal, deterministic root filesystem from Debian's busybox-static, for tests and benchmarks.
// No network: everything comes from the host's /bin/busybox.
import { execFileSync } from 'node:child_process';
import { copyFileSync, chmodSync, mkdirSync, symlinkSync, writeFileSync, lutimesSync, readdirSync, lstatSync } from 'node:fs';
import { join, dirname, relative } from 'node:path';

export const BUSYBOX = '/bin/busybox';
/** Fixed mtime for every entry, so two builds of a rootfs (and the layers made from it) are identical. */
export const EPOCH = new Date('2020-01-01T00:00:00Z');

let appletCache: string[] | undefined;
function applets(): string[] {
  appletCache ??= execFileSync(BUSYBOX, ['--list-full'], { encoding: 'utf8' })
    .split('\n').map((s) => s.trim()).filter(Boolean).sort();
  return appletCache;
}

/**
 * Writes a busybox rootfs into `dir`: /bin/busybox, one symlink per applet, the usual empty directories and
 * /etc/{passwd,group,hostname}. Returns `dir`.
 */
export function makeBusyboxRootfs(dir: string): string {
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'home', 'var', 'run', 'mnt']) {
    mkdirSync(join(dir, d), { recursive: true });
  }
  chmodSync(join(dir, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  for (const full of applets()) {
    const rel = full.replace(/^\/+/, '');
    if (rel === 'bin/busybox') continue;
    const path = join(dir, rel);
    mkdirSync(dirname(path), { recursive: true });
    try { symlinkSync(relative(dirname(path), join(dir, 'bin/busybox')), path); } catch (e: any) { if (e.code !== 'EEXIST') throw e; }
  }
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nuser:x:1000:1000:user:/home/user:/bin/sh\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\nuser:x:1000:\nextra:x:2000:user\n');
  writeFileSync(join(dir, 'etc/hostname'), 'berth\n');
  setTimes(dir);
  return dir;
}

/** Sets every entry's mtime (symlinks themselves, not their targets) to EPOCH, deepest first. */
export function setTimes(dir: string): void {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) setTimes(p);
    lutimesSync(p, EPOCH, EPOCH);
  }
  lutimesSync(dir, EPOCH, EPOCH);
}
