// The vm backend's warm pool on real VMs: a sandbox booted ahead is handed out without a boot, the pool refills
// in the background, a pooled VM that dies is replaced, and closing it leaves no VM, share or state behind.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { WarmPool, poolSizeFromEnv } from '../../runtimes/vm/pool.ts';
import { tempDir } from '../helpers/tmp.ts';

const SIZE = { memoryMiB: 256, vcpus: 1 };

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('pool size: BERTH_VM_POOL, else 1 in a grouped shim and 0 in a single container\'s', (t) => {
  t.is(poolSizeFromEnv({}), 0);
  t.is(poolSizeFromEnv({ BERTH_SHIM_GROUP: 'g' }), 1);
  t.is(poolSizeFromEnv({ BERTH_SHIM_GROUP: 'g', BERTH_VM_POOL: '0' }), 0, '0 turns it off');
  t.is(poolSizeFromEnv({ BERTH_VM_POOL: '2' }), 2);
  t.is(poolSizeFromEnv({ BERTH_SHIM_GROUP: 'g', BERTH_VM_POOL: 'lots' }), 1, 'a value that is not a count is ignored');
});

test('a warm sandbox is taken without a boot; the pool refills, replaces a pooled VM that died, and closes clean', async (t) => {
  t.timeout(240_000);
  const root = tempDir(t, 'vmpool-');
  const pool = new WarmPool(root, 1, SIZE);
  t.teardown(() => pool.close());
  const cold = await pool.take(SIZE);
  t.false(cold.warm, 'an empty pool boots one');
  t.teardown(() => cold.sandbox.destroy());
  await until('the pool to refill', () => pool.counts.ready === 1, 60_000);
  const qemuBefore = execFileSync('pgrep', ['-f', `${root}/sandbox-`], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  const warm = await pool.take(SIZE);
  t.teardown(() => warm.sandbox.destroy());
  t.true(warm.warm);
  t.true(qemuBefore.includes(warm.sandbox.vm.pid), 'the sandbox handed out was booted before it was asked for');
  t.is((await warm.sandbox.agent.ping({ timeoutMs: 5000 })).kernelRelease, cold.sandbox.vm.ready.kernelRelease);
  await until('the pool to refill again', () => pool.counts.ready === 1, 60_000);

  // A pooled VM that dies is dropped and replaced.
  const pooledPids = () => execFileSync('pgrep', ['-f', `${root}/sandbox-`], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number)
    .filter((pid) => pid !== cold.sandbox.vm.pid && pid !== warm.sandbox.vm.pid);
  const [pooled] = pooledPids().filter((pid) => execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' }).includes('qemu-system'));
  t.truthy(pooled);
  process.kill(pooled!, 'SIGKILL');
  await until('the dead VM to be replaced', () => pool.counts.ready === 1 && !alive(pooled!), 60_000);

  const sandboxes = [cold.sandbox, warm.sandbox];
  for (const s of sandboxes) await s.destroy();
  await pool.close();
  t.true(sandboxes.every((s) => !alive(s.vm.pid)), 'QEMU is gone');
  t.false(execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).includes(`${root}/sandbox-`), 'no QEMU or virtiofsd is left');
  t.deepEqual(readdirSync(root), [], 'no share or state is left');
  t.false(existsSync(sandboxes[0]!.share.dir));
});
