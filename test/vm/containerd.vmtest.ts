// containerd itself (Debian's 1.6.20) runs containers in VMs through containerd-shim-berth-v2 with the runc
// options binary_name "vm". ctr 1.6 sends --runc-binary only for io.containerd.runc.v2, so berth's shim is what
// containerd finds under that name here (first on its PATH).
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { startContainerd } from '../helpers/containerd.ts';
import { runOnPty } from '../helpers/pty.ts';
import { tempDir } from '../helpers/tmp.ts';
import { REPO } from '../daemon/helpers.ts';
import { vmImage } from '../../runtimes/vm/initramfs.ts';
import { socketAccepts } from '../../api/unix-socket.ts';

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

test('a VM container outlives a containerd restart: containerd re-attaches to its shim, exec and kill still reach the guest', async (t) => {
  const bin = tempDir(t, 'shim-bin-');
  writeFileSync(join(bin, 'containerd-shim-runc-v2'), `#!/bin/sh\nexec ${process.execPath} ${join(REPO, 'dist', 'containerd-shim-berth-v2.mjs')} "$@"\n`);
  chmodSync(join(bin, 'containerd-shim-runc-v2'), 0o755);
  const env = { PATH: `${bin}:${process.env.PATH}` };
  const cd = await startContainerd(t, env);
  const ctr = async (...args: string[]) => (await run('ctr', ['-a', cd.address, ...args], { encoding: 'utf8' })).stdout;
  const archive = join(tempDir(t), 'busybox.tar');
  await run(process.execPath, ['--import', 'tsx', join(REPO, 'scripts', 'demo-image.ts'), archive, 'vmr']);
  await ctr('images', 'import', '--base-name', 'berth.local/busybox', archive);
  await ctr('run', '-d', '--runtime', 'io.containerd.runc.v2', '--runc-binary', 'vm', 'berth.local/busybox:vmr', 'survivor', 'sleep', '1000');
  const before = await ctr('tasks', 'ls');
  t.regex(before, /survivor\s+\d+\s+RUNNING/);
  // containerd goes and comes back on the same root and state; the shim and its VM stay.
  cd.child.kill('SIGTERM');
  await new Promise((resolve) => cd.child.once('exit', resolve));
  const again = spawn('containerd', ['--config', join(dirname(cd.address), 'config.toml'), '--root', cd.root, '--state', cd.state], { stdio: 'ignore', env: { ...process.env, ...env } });
  t.teardown(() => { again.kill('SIGTERM'); });
  for (let i = 0; !(await socketAccepts(cd.address)); i++) {
    if (i > 400) throw new Error('containerd did not come back');
    await new Promise((r) => setTimeout(r, 25));
  }
  t.is(await ctr('tasks', 'ls'), before, 'the task is there as it was, same pid');
  t.is(await ctr('tasks', 'exec', '--exec-id', 'after-restart', 'survivor', 'uname', '-r'), `${vmImage().kernelRelease}\n`);
  await ctr('tasks', 'kill', '-s', 'SIGKILL', 'survivor');
  for (let i = 0; i < 100 && !/STOPPED/.test(await ctr('tasks', 'ls')); i++) await new Promise((r) => setTimeout(r, 100));
  t.regex(await ctr('tasks', 'ls'), /survivor\s+\d+\s+STOPPED/);
  await ctr('tasks', 'rm', 'survivor');
  await ctr('containers', 'rm', 'survivor');
  t.is((await ctr('containers', 'ls', '-q')).trim(), '');
});
