// The warm pool's size from berthd's config: `[runtimes.vm] warm_pool = N` reaches the namespace shims berthd
// starts. 0: a grouped vm container boots its VM and none waits; 2: two VMs wait booted after a container ran. A
// bad value stops berthd at start naming the key. VMs are counted from /proc as berth doctor counts them, below this
// berthd's state directory (other daemons on the host may have VMs of their own).
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { vmCensus } from '../../api/vm-census.ts';
import { vmImage } from '../../runtimes/vm/initramfs.ts';
import { berth, loadImage } from '../cli/helpers.ts';
import { REPO, startDaemon } from '../daemon/helpers.ts';
import { busyboxImage } from '../helpers/image.ts';
import { tempDir } from '../helpers/tmp.ts';

const run = promisify(execFile);

function configFile(t: ExecutionContext, text: string): string {
  const path = join(tempDir(t), 'config.toml');
  writeFileSync(path, text);
  return path;
}

/** A berthd whose vm class has `warm_pool` set, with one container run in a VM (which starts the namespace's shim). */
async function ranOneVm(t: ExecutionContext, warmPool: number) {
  if (process.env.BERTH_VM_POOL) t.log(`BERTH_VM_POOL=${process.env.BERTH_VM_POOL} in the environment overrides warm_pool`);
  const d = await startDaemon(t, { configFile: configFile(t, `[runtimes.vm]\nwarm_pool = ${warmPool}\n`) });
  const ls = await berth(d.address, ['runtimes', 'ls']);
  if (!process.env.BERTH_VM_POOL) t.regex(ls.stdout, new RegExp(`\\nvm\\s+vm\\s+io\\.containerd\\.berth\\.v2\\s+vm\\s+${warmPool}\\s+yes\\n`), 'runtimes ls shows the pool');
  await loadImage(t, d.client('default'), 'busybox:pool', await busyboxImage({ tag: 'pool' }));
  const r = await berth(d.address, ['run', '--rm', '--runtime-class', 'vm', 'busybox:pool', `pool-${warmPool}`, 'uname', '-r']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `${vmImage().kernelRelease}\n`);
  return { d, census: () => vmCensus(d.config.state) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.serial('warm_pool = 0: a vm container in a namespace shim boots its own VM and none is kept waiting', async (t) => {
  const { census } = await ranOneVm(t, 0);
  // A refill would spawn its QEMU at once, right after the container took (or booted) its VM.
  for (let i = 0; i < 10; i++, await sleep(200)) t.deepEqual(census(), { running: 0, warm: 0 });
});

test.serial('warm_pool = 2: after a vm container ran, two VMs wait booted in the namespace shim, no more', async (t) => {
  const { census } = await ranOneVm(t, 2);
  // Boots are slow under TCG on a busy host: wait for them, bounded.
  for (let i = 0; i < 1200 && census().warm < 2; i++) await sleep(100);
  t.deepEqual(census(), { running: 0, warm: 2 });
  await sleep(1000);
  t.deepEqual(census(), { running: 0, warm: 2 }, 'the pool holds its size');
});

test('a bad warm_pool stops berthd at start, naming the key', async (t) => {
  for (const value of ['-1', '2.5', '1000']) {
    const config = configFile(t, `[runtimes.vm]\nwarm_pool = ${value}\n`);
    const dir = tempDir(t);
    const err = await t.throwsAsync(run(process.execPath, [join(REPO, 'dist', 'berthd.mjs'), '--config', config, '--root', join(dir, 'r'), '--state', join(dir, 's'), '--address', join(dir, 'sock')], { timeout: 30_000 }));
    t.regex((err as unknown as { stderr: string }).stderr, new RegExp(`berthd: .*config\\.toml: runtimes\\.vm\\.warm_pool must be a whole number from 0 to 16 \\(VMs kept booted ahead per shim\\), got ${value.replace('.', '\\.')}`));
  }
});
