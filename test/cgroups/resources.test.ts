// Each resource kind written on create and on update, checked by reading the kernel's files back.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { sharesToWeight, blkioWeightToIoWeight, swapToV2, hostLayout } from '../../runtimes/cgroups/index.ts';
import { readCg, testCgroup } from './helpers.ts';

const MiB = 1024 * 1024;

test('memory: limit, reservation, swap, swappiness, OOM killer switch, then update', (t) => {
  const cg = testCgroup(t);
  cg.create({ memory: { limit: 64 * MiB, reservation: 32 * MiB, swap: 128 * MiB, swappiness: 10, disableOOMKiller: true } });
  const dir = cg.paths.memory;
  t.is(readCg(dir, 'memory.limit_in_bytes'), String(64 * MiB));
  t.is(readCg(dir, 'memory.soft_limit_in_bytes'), String(32 * MiB));
  t.is(readCg(dir, 'memory.memsw.limit_in_bytes'), String(128 * MiB));
  t.is(readCg(dir, 'memory.swappiness'), '10');
  t.regex(readCg(dir, 'memory.oom_control'), /oom_kill_disable 1/);
  // Shrinking below the old memsw limit needs memory written before memsw; growing needs the reverse.
  cg.update({ memory: { limit: 16 * MiB, swap: 32 * MiB } });
  t.is(readCg(dir, 'memory.limit_in_bytes'), String(16 * MiB));
  t.is(readCg(dir, 'memory.memsw.limit_in_bytes'), String(32 * MiB));
  cg.update({ memory: { limit: 256 * MiB, swap: 512 * MiB } });
  t.is(readCg(dir, 'memory.limit_in_bytes'), String(256 * MiB));
  t.is(readCg(dir, 'memory.memsw.limit_in_bytes'), String(512 * MiB));
  cg.update({ memory: { limit: -1 } });
  t.true(Number(readCg(dir, 'memory.limit_in_bytes')) > 2 ** 62);
  t.true(Number(readCg(dir, 'memory.memsw.limit_in_bytes')) > 2 ** 62);
});

test('cpu: shares, quota/period, burst, realtime, idle', (t) => {
  const cg = testCgroup(t);
  cg.create({ cpu: { shares: 512, quota: 20000, period: 50000, burst: 1000, realtimePeriod: 1000000, realtimeRuntime: 10000 } });
  const dir = cg.paths.cpu;
  t.is(readCg(dir, 'cpu.shares'), '512');
  t.is(readCg(dir, 'cpu.cfs_quota_us'), '20000');
  t.is(readCg(dir, 'cpu.cfs_period_us'), '50000');
  t.is(readCg(dir, 'cpu.cfs_burst_us'), '1000');
  t.is(readCg(dir, 'cpu.rt_period_us'), '1000000');
  t.is(readCg(dir, 'cpu.rt_runtime_us'), '10000');
  cg.update({ cpu: { shares: 2048, quota: -1 } });
  t.is(readCg(dir, 'cpu.shares'), '2048');
  t.is(readCg(dir, 'cpu.cfs_quota_us'), '-1');
  // An idle cgroup gets the minimum weight whatever its shares said.
  cg.update({ cpu: { idle: 1 } });
  t.is(readCg(dir, 'cpu.idle'), '1');
  t.is(readCg(dir, 'cpu.shares'), '3');
});

test('cpuset: cpus and mems, inherited from the parent when unset', (t) => {
  const parent = `/berth-cgtest-nest-${process.pid}-${Date.now()}`;
  const cg = testCgroup(t, `${parent}/inner/leaf`);
  t.teardown(async () => { const { removeLeftoverCgroups } = await import('../../runtimes/cgroups/index.ts'); await removeLeftoverCgroups([parent]); });
  cg.create({ cpu: { cpus: '1', mems: '0' } });
  const dir = cg.paths.cpuset!;
  t.is(readCg(dir, 'cpuset.cpus'), '1');
  t.is(readCg(dir, 'cpuset.mems'), '0');
  // Intermediate levels got the host's cpus/mems, else nothing could ever join the leaf.
  t.is(readCg(`/sys/fs/cgroup/cpuset${parent}/inner`, 'cpuset.cpus'), readCg('/sys/fs/cgroup/cpuset', 'cpuset.cpus'));
  cg.update({ cpu: { cpus: '0-1' } });
  t.is(readCg(dir, 'cpuset.cpus'), '0-1');
});

test('pids: limit and unlimited', (t) => {
  const cg = testCgroup(t);
  cg.create({ pids: { limit: 42 } });
  t.is(readCg(cg.paths.pids, 'pids.max'), '42');
  cg.update({ pids: { limit: -1 } });
  t.is(readCg(cg.paths.pids, 'pids.max'), 'max');
});

test('blockIO: weight and throttles', (t) => {
  const cg = testCgroup(t);
  const [major, minor] = readFileSync('/sys/block/vda/dev', 'utf8').trim().split(':').map(Number) as [number, number];
  cg.create({
    blockIO: {
      weight: 500,
      throttleReadBpsDevice: [{ major, minor, rate: 1048576 }],
      throttleWriteIOPSDevice: [{ major, minor, rate: 100 }],
    },
  });
  const dir = cg.paths.blkio;
  t.regex(readCg(dir, 'blkio.bfq.weight'), /^(default )?500$/);
  t.is(readCg(dir, 'blkio.throttle.read_bps_device'), `${major}:${minor} 1048576`);
  t.is(readCg(dir, 'blkio.throttle.write_iops_device'), `${major}:${minor} 100`);
  cg.update({ blockIO: { throttleReadBpsDevice: [{ major, minor, rate: 0 }] } });
  t.is(readCg(dir, 'blkio.throttle.read_bps_device'), '');
});

test('devices (v1): default deny, then the rules in order', (t) => {
  const cg = testCgroup(t);
  cg.create({
    devices: [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
      { allow: true, type: 'c', major: 5, minor: -1, access: 'rw' },
      { allow: true, type: 'b', major: 254, minor: 0, access: 'r' },
    ],
  });
  const list = readCg(cg.paths.devices, 'devices.list').split('\n').sort();
  t.deepEqual(list, ['b 254:0 r', 'c 1:3 rwm', 'c 5:* rw']);
  cg.update({ devices: [{ allow: true, access: 'rwm' }] });
  t.is(readCg(cg.paths.devices, 'devices.list'), 'a *:* rwm');
});

test('hybrid: unified keys go to the cgroup2 hierarchy, hugepage limits to wherever hugetlb is mounted', (t) => {
  const cg = testCgroup(t);
  cg.create({ hugepageLimits: [{ pageSize: '2MB', limit: 4 * 2 * MiB }], unified: { 'cgroup.max.descendants': '5' } });
  t.is(readCg(cg.paths[''], 'cgroup.max.descendants'), '5');
  // crun needs hugetlb as a v1 hierarchy, so a host may have it either way.
  const inV1 = hostLayout().v1.has('hugetlb');
  const hugetlb = inV1 ? { dir: cg.paths.hugetlb, file: 'hugetlb.2MB.limit_in_bytes' } : { dir: cg.paths[''], file: 'hugetlb.2MB.max' };
  t.is(readCg(hugetlb.dir, hugetlb.file), String(8 * MiB));
  cg.update({ unified: { 'cgroup.max.descendants': 'max' }, hugepageLimits: [{ pageSize: '2MB', limit: 0 }] });
  t.is(readCg(cg.paths[''], 'cgroup.max.descendants'), 'max');
  t.is(readCg(hugetlb.dir, hugetlb.file), '0');
  if (!inV1) t.is(cg.stats().hugetlb?.['2MB']?.usage, 0);
});

test('conversions to cgroup v2 units match runc', (t) => {
  t.is(sharesToWeight(2), 1);
  t.is(sharesToWeight(1024), 39);
  t.is(sharesToWeight(262144), 10000);
  t.is(blkioWeightToIoWeight(10), 1);
  t.is(blkioWeightToIoWeight(500), 4950);
  t.is(blkioWeightToIoWeight(1000), 10000);
  t.is(swapToV2(-1, 100), 'max');
  t.is(swapToV2(300, 100), '200');
  t.is(swapToV2(100, 100), '0');
  t.is(swapToV2(undefined, 100), undefined);
  t.throws(() => swapToV2(300, undefined), { message: /memory.limit/ });
});
