// Each resource kind written on create and on update, checked by reading the kernel's files back.
import test from 'ava';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, codeOf } from '../../api/errdefs.ts';
import { sharesToWeight, blkioWeightToIoWeight, swapToV2, hostLayout } from '../../runtimes/cgroups/index.ts';
import type { LinuxCPU } from '../../runtimes/cgroups/types.ts';
import { nothingLeft, readCg, testCgroup } from './helpers.ts';

const MiB = 1024 * 1024;

test('memory: limit, reservation, swappiness, OOM killer switch, then update', (t) => {
  const cg = testCgroup(t);
  cg.create({ memory: { limit: 64 * MiB, reservation: 32 * MiB, swappiness: 10, disableOOMKiller: true } });
  const dir = cg.paths.memory;
  t.is(readCg(dir, 'memory.limit_in_bytes'), String(64 * MiB));
  t.is(readCg(dir, 'memory.soft_limit_in_bytes'), String(32 * MiB));
  t.is(readCg(dir, 'memory.swappiness'), '10');
  t.regex(readCg(dir, 'memory.oom_control'), /oom_kill_disable 1/);
  cg.update({ memory: { limit: 16 * MiB } });
  t.is(readCg(dir, 'memory.limit_in_bytes'), String(16 * MiB));
  cg.update({ memory: { limit: -1 } });
  t.true(Number(readCg(dir, 'memory.limit_in_bytes')) > 2 ** 62);
});

// memory.memsw.* exists only where the kernel accounts swap (CONFIG_MEMCG_SWAP, not turned off at boot).
test('memory: swap limits in either order where the kernel accounts swap; refused naming memory.swap where not', (t) => {
  const cg = testCgroup(t);
  cg.create({ memory: { limit: 64 * MiB } });
  const dir = cg.paths.memory!;
  if (!existsSync(join(dir, 'memory.memsw.limit_in_bytes'))) {
    t.log('this kernel does not account swap (no memory.memsw.limit_in_bytes): only the refusal is checked');
    const err = t.throws(() => cg.update({ memory: { limit: 64 * MiB, swap: 128 * MiB } }), { message: /memory\.swap: swap accounting .* is not enabled/ });
    t.is(codeOf(err), ErrorCode.FailedPrecondition);
    return;
  }
  cg.update({ memory: { limit: 64 * MiB, swap: 128 * MiB } });
  t.is(readCg(dir, 'memory.memsw.limit_in_bytes'), String(128 * MiB));
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

test('cpu: shares, quota/period', (t) => {
  const cg = testCgroup(t);
  cg.create({ cpu: { shares: 512, quota: 20000, period: 50000 } });
  const dir = cg.paths.cpu;
  t.is(readCg(dir, 'cpu.shares'), '512');
  t.is(readCg(dir, 'cpu.cfs_quota_us'), '20000');
  t.is(readCg(dir, 'cpu.cfs_period_us'), '50000');
  cg.update({ cpu: { shares: 2048, quota: -1 } });
  t.is(readCg(dir, 'cpu.shares'), '2048');
  t.is(readCg(dir, 'cpu.cfs_quota_us'), '-1');
});

// Knobs a kernel build may lack (CFS burst: 5.14+; realtime groups: CONFIG_RT_GROUP_SCHED; idle: 5.15+). Each is
// probed in a fresh cgroup: where the file exists the value must land, else berth must refuse naming it.
const optionalCpu: Array<[string, LinuxCPU, string, RegExp]> = [
  ['burst', { burst: 1000 }, 'cpu.cfs_burst_us', /cpu\.burst: .*does not provide cpu\.cfs_burst_us/],
  ['realtime period and runtime', { realtimePeriod: 1000000, realtimeRuntime: 10000 }, 'cpu.rt_runtime_us', /cpu\.realtimePeriod: .*does not provide cpu\.rt_period_us/],
  ['idle', { shares: 2048, idle: 1 }, 'cpu.idle', /cpu\.idle: .*does not provide cpu\.idle/],
];
for (const [what, cpu, file, refusal] of optionalCpu) {
  test(`cpu: ${what} where the kernel has ${file}; refused naming it where not`, (t) => {
    const cg = testCgroup(t);
    cg.create({});
    const dir = cg.paths.cpu!;
    if (!existsSync(join(dir, file))) {
      t.log(`this kernel has no ${file}: only the refusal is checked`);
      const err = t.throws(() => cg.update({ cpu }), { message: refusal });
      t.is(codeOf(err), ErrorCode.FailedPrecondition);
      return;
    }
    cg.update({ cpu });
    if (cpu.burst !== undefined) t.is(readCg(dir, 'cpu.cfs_burst_us'), String(cpu.burst));
    if (cpu.realtimePeriod) t.is(readCg(dir, 'cpu.rt_period_us'), String(cpu.realtimePeriod));
    if (cpu.realtimeRuntime) t.is(readCg(dir, 'cpu.rt_runtime_us'), String(cpu.realtimeRuntime));
    if (cpu.idle !== undefined) {
      t.is(readCg(dir, 'cpu.idle'), String(cpu.idle));
      t.is(readCg(dir, 'cpu.shares'), '3', 'an idle cgroup gets the minimum weight whatever its shares said');
    }
  });
}

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

/** A whole disk of this host (throttles take a disk's major:minor), the first one /sys/block lists. */
function aDisk(): [number, number] {
  const name = readdirSync('/sys/block').find((d) => !/^(loop|ram|zram|nbd)/.test(d));
  if (!name) throw new Error('this host has no disk in /sys/block');
  return readFileSync(`/sys/block/${name}/dev`, 'utf8').trim().split(':').map(Number) as [number, number];
}

// blkio.weight was CFQ's and blkio.bfq.weight is BFQ's: a kernel built without BFQ has neither (only a child
// cgroup shows BFQ's file, so the probe is the test's own cgroup).
test('blockIO: weight where the kernel has a weight file (BFQ); refused clearly where it has none', (t) => {
  const cg = testCgroup(t);
  cg.create({});
  const dir = cg.paths.blkio!;
  const file = ['blkio.weight', 'blkio.bfq.weight'].find((f) => existsSync(join(dir, f)));
  if (!file) {
    t.log('this kernel has neither blkio.weight nor blkio.bfq.weight (no BFQ I/O scheduler): only the refusal is checked');
    for (const blockIO of [{ weight: 500 }, { weightDevice: [{ major: aDisk()[0], minor: aDisk()[1], weight: 500 }] }]) {
      const err = t.throws(() => cg.update({ blockIO }), { message: /cgroup blockIO\.weight(Device)?: no blkio weight file \(blkio\.weight or blkio\.bfq\.weight\) on this kernel/ });
      t.is(codeOf(err), ErrorCode.FailedPrecondition);
    }
    const fresh = testCgroup(t);
    t.throws(() => fresh.create({ blockIO: { weight: 500 } }), { message: /no blkio weight file/ });
    t.true(nothingLeft(fresh), 'a refused create leaves no cgroup behind');
    return;
  }
  cg.update({ blockIO: { weight: 500 } });
  t.regex(readCg(dir, file), /^(default )?500$/);
});

test('blockIO: throttles', (t) => {
  const cg = testCgroup(t);
  const [major, minor] = aDisk();
  cg.create({
    blockIO: {
      throttleReadBpsDevice: [{ major, minor, rate: 1048576 }],
      throttleWriteIOPSDevice: [{ major, minor, rate: 100 }],
    },
  });
  const dir = cg.paths.blkio;
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

// hugetlb needs CONFIG_CGROUP_HUGETLB and 2 MB pages; the unified keys need cgroup2 beside the v1 hierarchies.
function cgroup2Controllers(): string[] {
  const unified = hostLayout().unified;
  return unified ? readFileSync(`${unified.mountPoint}/cgroup.controllers`, 'utf8').trim().split(/\s+/) : [];
}
const hybridMissing = !hostLayout().unified ? 'no cgroup2 mount on this host'
  : !hostLayout().v1.has('hugetlb') && !cgroup2Controllers().includes('hugetlb') ? 'no hugetlb controller in this kernel'
  : !existsSync('/sys/kernel/mm/hugepages/hugepages-2048kB') ? 'no 2 MB huge pages in this kernel' : undefined;
(hybridMissing ? test.skip : test)(`hybrid: unified keys go to the cgroup2 hierarchy, hugepage limits to wherever hugetlb is mounted${hybridMissing ? ` (skipped: ${hybridMissing})` : ''}`, (t) => {
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
