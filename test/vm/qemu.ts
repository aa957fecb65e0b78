// Runs a Node program inside a throwaway QEMU guest (TCG, Debian's cloud kernel, an initramfs holding busybox,
// node and the bundled program) whose only cgroup mount is a pure cgroup2 hierarchy with every controller.
// This host is hybrid, so this is how the v2 manager's memory/cpu/pids/io paths run on a real kernel.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { Cpio } from '../../runtimes/vm/cpio.ts';

export function guestKernel(): string | undefined {
  const k = readdirSync('/boot').filter((f) => /^vmlinuz-.*-cloud-amd64$/.test(f)).sort().pop();
  return k ? join('/boot', k) : undefined;
}

const INIT = `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
/bin/busybox mount -t tmpfs tmp /tmp
/bin/busybox mount -t cgroup2 cgroup2 /sys/fs/cgroup
/usr/bin/node /guest.mjs
echo "GUEST-EXIT $?"
/bin/busybox poweroff -f
`;

/** Builds the initramfs for `entry` (a .ts program, bundled with esbuild) into `workDir`; returns its path. */
export function buildInitramfs(entry: string, workDir: string, repoRoot: string): string {
  const bundle = join(workDir, 'guest.mjs');
  buildSync({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', outfile: bundle, external: ['ffi-rs'], logLevel: 'error' });
  const out = join(workDir, 'initramfs.cpio');
  const cpio = new Cpio(out);
  for (const d of ['bin', 'usr', 'usr/bin', 'lib', 'lib/x86_64-linux-gnu', 'lib64', 'proc', 'sys', 'dev', 'tmp', 'node_modules', 'node_modules/@yuuang']) cpio.dir(d);
  cpio.file('init', Buffer.from(INIT));
  cpio.copy('/bin/busybox', 'bin/busybox');
  cpio.symlink('bin/sh', 'busybox');
  cpio.copy(process.execPath, 'usr/bin/node');
  // node's and ffi-rs's shared libraries, at the paths the dynamic loader looks in.
  for (const lib of ['libdl.so.2', 'libstdc++.so.6', 'libm.so.6', 'libgcc_s.so.1', 'libpthread.so.0', 'libc.so.6', 'librt.so.1']) {
    cpio.copy(`/lib/x86_64-linux-gnu/${lib}`);
  }
  cpio.copy('/lib64/ld-linux-x86-64.so.2');
  cpio.copy(bundle, 'guest.mjs');
  cpio.tree(join(repoRoot, 'node_modules/ffi-rs'), 'node_modules/ffi-rs');
  cpio.tree(join(repoRoot, 'node_modules/@yuuang/ffi-rs-linux-x64-gnu'), 'node_modules/@yuuang/ffi-rs-linux-x64-gnu');
  cpio.close();
  return out;
}

/** Boots the guest and returns its console output once it powers off (or the timeout kills it). */
export function runGuest(kernel: string, initramfs: string, timeoutMs: number): Promise<string> {
  if (!existsSync('/usr/bin/qemu-system-x86_64')) throw new Error('qemu-system-x86_64 is not installed (scripts/setup.sh installs it)');
  const args = [
    '-M', 'microvm', '-accel', 'tcg', '-cpu', 'max', '-m', '1024', '-smp', '1', '-nodefaults', '-no-user-config',
    '-nographic', '-serial', 'stdio', '-no-reboot', '-kernel', kernel, '-initrd', initramfs,
    // Emulated, the guest's TSC calibration against the PIT can time out, and the kernel then hangs without a
    // clocksource: give it the TSC's rate instead.
    '-append', 'console=ttyS0 quiet panic=-1 rdinit=/init tsc_early_khz=2000000',
  ];
  return new Promise((resolve) => {
    execFile('qemu-system-x86_64', args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve(`${stdout}${err ? `\n[qemu: ${err.message.split('\n')[0]}] ${stderr}` : ''}`);
    });
  });
}
