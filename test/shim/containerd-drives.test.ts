// containerd itself (Debian's 1.6.20) runs a container through containerd-shim-berth-v2:
// `ctr run --runtime io.containerd.berth.v2`, containerd finding berth's shim on its PATH.
import test from 'ava';
import { execFile } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startContainerd } from '../helpers/containerd.ts';
import { tempDir } from '../helpers/tmp.ts';
import { REPO } from '../daemon/helpers.ts';
import { runOnPty } from '../helpers/pty.ts';

const run = promisify(execFile);

test('containerd runs a container through containerd-shim-berth-v2', async (t) => {
  const bin = tempDir(t, 'shim-bin-');
  const shim = join(bin, 'containerd-shim-berth-v2');
  writeFileSync(shim, `#!/bin/sh\nexec ${process.execPath} ${join(REPO, 'dist', 'containerd-shim-berth-v2.mjs')} "$@"\n`);
  chmodSync(shim, 0o755);
  const cd = await startContainerd(t, { PATH: `${bin}:${process.env.PATH}` });
  const ctr = async (...args: string[]) => (await run('ctr', ['-a', cd.address, ...args], { encoding: 'utf8' })).stdout;
  const archive = join(tempDir(t), 'busybox.tar');
  await run(process.execPath, ['--import', 'tsx', join(REPO, 'scripts', 'demo-image.ts'), archive, 'cd']);
  await ctr('images', 'import', '--base-name', 'berth.local/busybox', archive);
  const out = await ctr('run', '--rm', '--runtime', 'io.containerd.berth.v2', 'berth.local/busybox:cd', 'via-berth-shim', 'sh', '-c', 'echo pid $$ in $(cat /etc/berth-release)');
  t.is(out, 'pid 1 in berth test image cd\n');
  // ctr run -t from a real terminal: containerd hands our shim a terminal task; typed input reaches it.
  const tty = await runOnPty(['ctr', '-a', cd.address, 'run', '--rm', '-t', '--runtime', 'io.containerd.berth.v2', 'berth.local/busybox:cd', 'tty-via-berth-shim',
    'sh', '-c', '[ -t 0 ] && tty; echo type-now; read line; echo got:$line; exit 4'], { typed: [{ when: /type-now/, text: 'typed\r' }] });
  t.is(tty.code, 4, tty.screen);
  t.regex(tty.screen, /\/dev\/pts\/0\r+\ntype-now\r+\n(typed\r+\n)?got:typed\r+\n/);
  // (ctr 1.6 allows --runc-binary only with io.containerd.runc.v2, so the CLI backends are tested through berthd.)
  t.is((await ctr('tasks', 'ls', '-q')).trim(), '');
  t.is((await ctr('containers', 'ls', '-q')).trim(), '');
});
