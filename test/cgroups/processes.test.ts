// Limits as a process inside the cgroup feels them, freeze/thaw, stats, listing, killing and removal.
import test from 'ava';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openCgroup, removeLeftoverCgroups, readProcessCgroups } from '../../runtimes/cgroups/index.ts';
import { tempDir } from '../helpers/tmp.ts';
import { heldChild, nothingLeft, readCg, sleep, testCgroup, uniqueName } from './helpers.ts';

const MiB = 1024 * 1024;

test('a memory limit OOM-kills a process that allocates past it; oomKillCount and failcnt count it', async (t) => {
  const cg = testCgroup(t);
  cg.create({ memory: { limit: 32 * MiB } });
  // busybox tail keeps an ever-growing line from /dev/zero in memory.
  const child = await heldChild(t, 'exec /bin/busybox tail /dev/zero');
  cg.addProcess(child.pid);
  child.go();
  const { signal } = await child.exited;
  t.is(signal, 'SIGKILL');
  t.is(cg.oomKillCount(), 1);
  const mem = cg.stats().memory!;
  t.true(mem.failcnt > 0);
  t.is(mem.limit, 32 * MiB);
  t.true(mem.maxUsage > 30 * MiB, `max usage ${mem.maxUsage}`);
});

test('a pids limit makes fork fail inside the cgroup', async (t) => {
  const cg = testCgroup(t);
  cg.create({ pids: { limit: 4 } });
  const child = await heldChild(t, 'ok=0; for i in 1 2 3 4 5 6 7 8; do /bin/busybox sleep 2 & done; wait');
  cg.addProcess(child.pid);
  child.go();
  const { stderr } = await child.exited;
  t.regex(stderr, /fork|Resource temporarily unavailable/i);
  t.regex(readCg(cg.paths.pids, 'pids.events'), /max [1-9]/);
  t.is(cg.stats().pids!.limit, 4);
});

test('cpu quota throttles a busy process; usage grows and is reported', async (t) => {
  const cg = testCgroup(t);
  cg.create({ cpu: { quota: 10000, period: 100000, shares: 256 } });
  const child = await heldChild(t, 'while :; do :; done');
  cg.addProcess(child.pid);
  child.go();
  const started = process.hrtime.bigint();
  await sleep(300);
  const first = cg.stats().cpu!;
  // A loaded host may give the loop less than its quota for a while: wait (bounded) for a throttled period.
  let second = cg.stats().cpu!;
  for (let i = 0; i < 50 && (second.usageTotal <= first.usageTotal || second.throttling.throttledPeriods === 0); i++) {
    await sleep(100);
    second = cg.stats().cpu!;
  }
  const elapsed = Number(process.hrtime.bigint() - started);
  t.true(second.usageTotal > first.usageTotal, 'cpu usage grows');
  t.true(second.throttling.throttledPeriods > 0, 'throttled by the quota');
  t.true(second.perCpu.length >= 1);
  // 10% of one CPU (plus a period of slack): far below what an unthrottled loop would use in the same time.
  t.true(second.usageTotal < elapsed * 0.1 + 100e6, `usage ${second.usageTotal} ns in ${elapsed} ns`);
  t.is(readCg(cg.paths.cpu, 'cpu.shares'), '256');
});

test('freeze stops a running process and thaw resumes it', async (t) => {
  const cg = testCgroup(t);
  cg.create();
  const dir = tempDir(t);
  const counter = join(dir, 'n');
  // Appending (not rewriting) so a read never sees a truncated file: progress is the file's size.
  const child = await heldChild(t, `while :; do echo x >> ${counter}; done`);
  cg.addProcess(child.pid);
  child.go();
  const read = () => (existsSync(counter) ? statSync(counter).size : 0);
  await sleep(100);
  await cg.freeze();
  t.true(cg.isFrozen());
  const frozenAt = read();
  await sleep(200);
  t.is(read(), frozenAt, 'no progress while frozen');
  await cg.thaw();
  t.false(cg.isFrozen());
  await sleep(200);
  t.true(read() > frozenAt, 'progress after thaw');
});

test('pids lists every process in the subtree; stats report memory in use', async (t) => {
  const cg = testCgroup(t);
  cg.create();
  const child = await heldChild(t, 'x=$(/bin/busybox head -c 4000000 /dev/zero | /bin/busybox tr "\\0" a); /bin/busybox sleep 30 & /bin/busybox sleep 30 & wait');
  cg.addProcess(child.pid);
  child.go();
  // The shell builds a 4 MB string, then starts two sleeps: wait for both sleeps (a loaded machine is slow).
  const sleeps = () => cg.pids().filter((p) => { try { return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'sleep'; } catch { return false; } }).length;
  for (let i = 0; i < 200 && sleeps() < 2; i++) await sleep(50);
  const pids = cg.pids();
  t.true(pids.includes(child.pid));
  t.true(pids.length >= 3, `pids ${pids}`);
  for (const pid of pids) t.is(readProcessCgroups(pid).memory, cg.cgroupsPath);
  const stats = cg.stats();
  t.true(stats.memory!.usage > 0);
  t.true(stats.memory!.maxUsage >= 4000000);
  t.is(stats.pids!.current, pids.length);
});

test('killAll signals every process, frozen or not', async (t) => {
  const cg = testCgroup(t);
  cg.create();
  const child = await heldChild(t, '/bin/busybox sleep 30 & /bin/busybox sleep 30 & wait');
  cg.addProcess(child.pid);
  child.go();
  await sleep(100);
  t.is(cg.pids().length, 3);
  cg.killAll('SIGTERM');
  const { signal } = await child.exited;
  t.is(signal, 'SIGTERM');

  const frozen = await heldChild(t, '/bin/busybox sleep 30');
  cg.addProcess(frozen.pid);
  frozen.go();
  await sleep(50);
  await cg.freeze();
  cg.killAll(9);
  t.is((await frozen.exited).signal, 'SIGKILL');
  t.throws(() => cg.killAll('SIGNOPE'), { message: /unknown signal/ });
});

test('destroy removes every hierarchy once the processes have exited', async (t) => {
  const cg = testCgroup(t);
  cg.create({ memory: { limit: 64 * MiB } });
  const child = await heldChild(t, 'exit 0');
  cg.addProcess(child.pid);
  child.go();
  await child.exited;
  t.true(cg.exists());
  await cg.destroy();
  t.false(cg.exists());
  t.true(nothingLeft(cg));
  await cg.destroy(); // already gone: fine
});

test('after a crash (SIGKILL, no cleanup) a fresh manager removes the leftovers', async (t) => {
  const path = `/${uniqueName()}`;
  const cg = testCgroup(t, path);
  cg.create({ pids: { limit: 100 } });
  const child = await heldChild(t, '/bin/busybox sleep 30');
  cg.addProcess(child.pid);
  child.go();
  child.proc.kill('SIGKILL');
  await child.exited;
  // What a shim or `delete --force` does later, from another process that knows only the path.
  const again = openCgroup(path);
  t.true(again.exists());
  await again.destroy();
  t.true(nothingLeft(again));
});

test('removeLeftoverCgroups kills what is still inside, even frozen, and removes the cgroups', async (t) => {
  const path = `/${uniqueName()}`;
  const cg = testCgroup(t, path);
  cg.create();
  const child = await heldChild(t, '/bin/busybox sleep 30 & wait');
  cg.addProcess(child.pid);
  child.go();
  await sleep(50);
  await cg.freeze();
  t.deepEqual(await removeLeftoverCgroups([path, `/${uniqueName()}-never-made`]), [path]);
  t.is((await child.exited).signal, 'SIGKILL');
  t.true(nothingLeft(cg));
});

test('destroy of a cgroup that still has processes fails after a brief retry and names them', async (t) => {
  const cg = testCgroup(t);
  cg.create();
  const child = await heldChild(t, '/bin/busybox sleep 30');
  cg.addProcess(child.pid);
  child.go();
  const err = await t.throwsAsync(cg.destroy());
  t.regex(err!.message, new RegExp(`busy.*${child.pid}`));
  t.true(cg.exists());
});

test('addProcess of a pid that does not exist is a clear not-found error', (t) => {
  const cg = testCgroup(t);
  cg.create();
  t.throws(() => cg.addProcess(2 ** 22 + 12345), { message: /does not exist/ });
  t.throws(() => cg.addProcess(-1), { message: /not a valid pid/ });
  t.false(existsSync(join(cg.paths.memory!, 'nonexistent')));
});
