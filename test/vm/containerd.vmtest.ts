// containerd itself (Debian's 1.6.20) runs containers in VMs through containerd-shim-berth-v2 with the runc
// options binary_name "vm". ctr 1.6 sends --runc-binary only for io.containerd.runc.v2, so berth's shim is what
// containerd finds under that name here (first on its PATH).
import test from 'ava';
import { execFile } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startContainerd } from '../helpers/containerd.ts';
import { runOnPty } from '../helpers/pty.ts';
import { tempDir } from '../helpers/tmp.ts';
import { REPO } from '../daemon/helpers.ts';
import { vmImage } from '../../runtimes/vm/initramfs.ts';

const run = promisify(execFile);

test('ctr run --runc-binary vm: the container runs on the guest kernel; a terminal task takes typed input; nothing is left', async (t) => {
  const bin = tempDir(t, 'shim-bin-');
  const shim = join(bin, 'containerd-shim-runc-v2');
  writeFileSync(shim, `#!/bin/sh\nexec ${process.execPath} ${join(REPO, 'dist', 'containerd-shim-berth-v2.mjs')} "$@"\n`);
  chmodSync(shim, 0o755);
  const cd = await startContainerd(t, { PATH: `${bin}:${process.env.PATH}` });
  const ctr = async (...args: string[]) => (await run('ctr', ['-a', cd.address, ...args], { encoding: 'utf8' })).stdout;
  const archive = join(tempDir(t), 'busybox.tar');
  await run(process.execPath, ['--import', 'tsx', join(REPO, 'scripts', 'demo-image.ts'), archive, 'vm']);
  await ctr('images', 'import', '--base-name', 'berth.local/busybox', archive);
  const vm = ['--runtime', 'io.containerd.runc.v2', '--runc-binary', 'vm'];
  const out = await ctr('run', '--rm', ...vm, 'berth.local/busybox:vm', 'in-a-vm', 'sh', '-c', 'uname -r; cat /etc/berth-release');
  t.is(out, `${vmImage().kernelRelease}\nberth test image vm\n`);
  const tty = await runOnPty(['ctr', '-a', cd.address, 'run', '--rm', '-t', ...vm, 'berth.local/busybox:vm', 'tty-in-a-vm',
    'sh', '-c', '[ -t 0 ] && tty; echo type-now; read line; echo got:$line; exit 4'], { typed: [{ when: /type-now/, text: 'typed\r' }] });
  t.is(tty.code, 4, tty.screen);
  t.regex(tty.screen, /\/dev\/pts\/0\r+\ntype-now\r+\n(typed\r+\n)?got:typed\r+\n/);
  t.is((await ctr('tasks', 'ls', '-q')).trim(), '');
  t.is((await ctr('containers', 'ls', '-q')).trim(), '');
});
