// The cgroup v2 manager on this host's real cgroup2 hierarchy (/sys/fs/cgroup/unified). Only hugetlb is a v2
// controller here, but the core files (cgroup.freeze, cgroup.kill, cgroup.procs, cpu.stat) and eBPF device
// programs work on any cgroup2 directory, so those code paths run for real; memory/cpu/pids/io v2 files cannot
// be exercised on this host (their controllers are bound to v1).
import test from 'ava';
import { ErrorCode, codeOf } from '../../api/errdefs.ts';
import { compileDeviceRules, hostLayout, readProcessCgroups, removeLeftoverCgroups } from '../../runtimes/cgroups/index.ts';
import { V2Cgroup } from '../../runtimes/cgroups/v2.ts';
import { heldChild, readCg, sleep, uniqueName } from './helpers.ts';
import type { ExecutionContext } from 'ava';

function v2Cgroup(t: ExecutionContext): V2Cgroup {
  const path = `/${uniqueName('berth-cgtest-v2')}`;
  const cg = new V2Cgroup({ cgroupsPath: path, layout: hostLayout(), own: readProcessCgroups('self') });
  t.teardown(async () => {
    if (cg.exists()) { cg.killAll(9); await sleep(20); }
    await removeLeftoverCgroups([path]);
  });
  return cg;
}

test('v2: create delegates the available controllers and applies unified keys; v1-only knobs are refused', (t) => {
  const cg = v2Cgroup(t);
  cg.create({ unified: { 'cgroup.max.descendants': '3', 'cgroup.max.depth': '2' } });
  t.is(readCg(cg.dir, 'cgroup.max.descendants'), '3');
  t.is(readCg(cg.dir, 'cgroup.max.depth'), '2');
  // Whatever cgroup2 offers at its root (hugetlb here, unless a host mounts it as v1) reaches the container.
  t.is(readCg(cg.dir, 'cgroup.controllers'), readCg(hostLayout().unified!.mountPoint, 'cgroup.controllers'));
  const err = t.throws(() => cg.update({ memory: { limit: 1 << 26 } }), { message: /memory controller is not available/ });
  t.is(codeOf(err), ErrorCode.FailedPrecondition);
  t.throws(() => cg.update({ memory: { swappiness: 10 } }), { message: /swappiness/ });
  t.throws(() => cg.update({ cpu: { realtimeRuntime: 1000 } }), { message: /realtime/ });
  t.throws(() => cg.update({ network: { classID: 1 } }), { message: /net_cls/ });
  t.throws(() => cg.update({ unified: { 'cgroup.nope': '1' } }), { message: /unified\.cgroup\.nope.*no such file/ });
});

test('v2: freeze and thaw through cgroup.freeze; pids and cpu usage from core files', async (t) => {
  const cg = v2Cgroup(t);
  cg.create();
  const child = await heldChild(t, 'while :; do :; done');
  cg.addProcess(child.pid);
  child.go();
  await sleep(200);
  t.deepEqual(cg.pids(), [child.pid]);
  const before = cg.stats().cpu!.usageTotal;
  t.true(before > 0);
  await cg.freeze();
  t.true(cg.isFrozen());
  const frozenUsage = cg.stats().cpu!.usageTotal;
  await sleep(200);
  t.true(cg.stats().cpu!.usageTotal - frozenUsage < 20e6, 'no cpu used while frozen');
  await cg.thaw();
  t.false(cg.isFrozen());
  await sleep(200);
  t.true(cg.stats().cpu!.usageTotal > frozenUsage + 50e6, 'runs again after thaw');
});

test('v2: killAll(SIGKILL) uses cgroup.kill, even on a frozen cgroup; other signals go to each pid', async (t) => {
  const cg = v2Cgroup(t);
  cg.create();
  const a = await heldChild(t, '/bin/busybox sleep 30 & wait');
  cg.addProcess(a.pid);
  a.go();
  await sleep(50);
  cg.killAll('TERM');
  t.is((await a.exited).signal, 'SIGTERM');
  const b = await heldChild(t, '/bin/busybox sleep 30 & wait');
  cg.addProcess(b.pid);
  b.go();
  await sleep(50);
  await cg.freeze();
  cg.killAll('SIGKILL');
  t.is((await b.exited).signal, 'SIGKILL');
  await cg.destroy();
  t.false(cg.exists());
});

test('v2: device rules become an eBPF program that the kernel enforces', async (t) => {
  const cg = v2Cgroup(t);
  cg.create({
    devices: [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }, // /dev/zero
      { allow: true, type: 'c', major: 1, minor: 3, access: 'r' }, // /dev/null, read only
    ],
  });
  const child = await heldChild(t, [
    '/bin/busybox head -c 3 /dev/zero | /bin/busybox wc -c',
    '/bin/busybox cat /dev/null && echo null-read-ok',
    '(echo x > /dev/null) 2>/dev/zero || echo null-write-denied',
    '/bin/busybox cat /dev/urandom 2>&1 | /bin/busybox head -c 0; /bin/busybox head -c 1 /dev/urandom >/dev/zero 2>&1 || echo urandom-denied',
  ].join('; '));
  let out = '';
  child.proc.stdout!.on('data', (d) => { out += d; });
  cg.addProcess(child.pid);
  child.go();
  await child.exited;
  t.regex(out, /^3$/m);
  t.regex(out, /null-read-ok/);
  t.regex(out, /null-write-denied/);
  t.regex(out, /urandom-denied/);
  // Replacing the rules swaps the program: everything allowed now.
  cg.update({ devices: [{ allow: true, access: 'rwm' }] });
  const again = await heldChild(t, '(echo x > /dev/null) && echo null-write-ok');
  let out2 = '';
  again.proc.stdout!.on('data', (d) => { out2 += d; });
  cg.addProcess(again.pid);
  again.go();
  await again.exited;
  t.regex(out2, /null-write-ok/);
});

test('device program compiler: last rule first, and nothing after a catch-all rule', (t) => {
  const denyAll = compileDeviceRules([{ allow: false, access: 'rwm' }]);
  // 6 prologue instructions, then the catch-all verdict (mov, exit) and no default tail.
  t.is(denyAll.length / 8, 8);
  const some = compileDeviceRules([{ allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }]);
  // prologue 6 + (type, 3 access, major, minor checks, mov, exit) 8 + default deny 2
  t.is(some.length / 8, 16);
});
