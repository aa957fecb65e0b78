// Bad input: clear errors naming the resource, and no directory left in any hierarchy.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { ErrorCode, codeOf } from '../../api/errdefs.ts';
import {
  detectCgroupMode, hostLayout, openCgroup, parseLayout, normalizeCgroupsPath, readProcessCgroups, type LinuxResources,
} from '../../runtimes/cgroups/index.ts';
import { writeValue } from '../../runtimes/cgroups/files.ts';
import { heldChild, nothingLeft, testCgroup } from './helpers.ts';

const MiB = 1024 * 1024;

test('this host is hybrid', (t) => {
  t.is(detectCgroupMode(), 'hybrid');
});

test('layout detection: pure v1, pure v2 and hybrid mountinfo', (t) => {
  const v1 = [
    '30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory',
    '31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct',
    '32 25 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd',
  ].join('\n');
  const layout = parseLayout(v1);
  t.is(layout.mode, 'v1');
  t.is(layout.v1.get('cpuacct')?.mountPoint, '/sys/fs/cgroup/cpu,cpuacct');
  t.true(layout.v1.has('name=systemd'));
  t.is(parseLayout('28 25 0:25 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate').mode, 'v2');
  t.is(parseLayout(`${v1}\n33 25 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw`).mode, 'hybrid');
  t.throws(() => parseLayout('20 1 8:1 / / rw - ext4 /dev/vda rw'), { message: /no cgroup hierarchy/ });
});

test('cgroupsPath: relative below the caller, empty from the container id, systemd and escapes refused', (t) => {
  const own = readProcessCgroups('self');
  const rel = openCgroup('berth-rel-x');
  t.is(rel.paths.memory, `/sys/fs/cgroup/memory${own.memory === '/' ? '' : own.memory}/berth-rel-x`);
  t.is(openCgroup('', { containerId: 'ctr1' }).paths.pids, `/sys/fs/cgroup/pids${own.pids === '/' ? '' : own.pids}/ctr1`);
  t.is(normalizeCgroupsPath('/a//b/'), '/a/b');
  const cases: Array<[string, ErrorCode, RegExp]> = [
    ['', ErrorCode.InvalidArgument, /empty/],
    ['/../etc', ErrorCode.InvalidArgument, /"\.\."/],
    ['a/../../x', ErrorCode.InvalidArgument, /"\.\."/],
    ['/', ErrorCode.InvalidArgument, /root/],
    ['system.slice:docker:abc', ErrorCode.NotImplemented, /systemd/],
  ];
  for (const [path, code, message] of cases) {
    const err = t.throws(() => openCgroup(path), { message });
    t.is(codeOf(err), code, path);
  }
  t.is(codeOf(t.throws(() => openCgroup('/x', { driver: 'systemd' }))), ErrorCode.NotImplemented);
});

const invalid: Array<[string, LinuxResources, RegExp]> = [
  ['negative memory limit', { memory: { limit: -5 } }, /memory\.limit: -5/],
  ['fractional memory limit', { memory: { limit: 1.5 } }, /memory\.limit/],
  ['swap below memory', { memory: { limit: 64 * MiB, swap: 32 * MiB } }, /memory\.swap/],
  ['swappiness above 100', { memory: { swappiness: 101 } }, /memory\.swappiness/],
  ['cpu shares too large', { cpu: { shares: 300000 } }, /cpu\.shares/],
  ['cpu quota below 1 ms', { cpu: { quota: 10 } }, /cpu\.quota/],
  ['cpu period out of range', { cpu: { period: 5_000_000 } }, /cpu\.period/],
  ['cpuset out of range', { cpu: { cpus: '0-63' } }, /cpu\.cpus.*not online/],
  ['malformed cpuset', { cpu: { cpus: '1-' } }, /cpu\.cpus/],
  ['memory node out of range', { cpu: { mems: '7' } }, /cpu\.mems/],
  ['negative pids limit', { pids: { limit: -2 } }, /pids\.limit/],
  ['blkio weight out of range', { blockIO: { weight: 5 } }, /blockIO\.weight/],
  ['negative throttle rate', { blockIO: { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: -1 }] } }, /throttleReadBpsDevice\[0\]\.rate/],
  ['bad hugepage size', { hugepageLimits: [{ pageSize: '2M', limit: 0 }] }, /hugepageLimits\[0\]\.pageSize/],
  ['bad device type', { devices: [{ allow: true, type: 'x' }] }, /devices\[0\]\.type/],
  ['malformed unified key', { unified: { '../memory.max': '1' } }, /unified/],
  ['unified cgroup.procs', { unified: { 'cgroup.procs': '1' } }, /managed by the runtime/],
];

for (const [name, resources, message] of invalid) {
  test(`invalid resources rejected, nothing created: ${name}`, (t) => {
    const cg = testCgroup(t);
    const err = t.throws(() => cg.create(resources), { message });
    t.is(codeOf(err), ErrorCode.InvalidArgument);
    t.true(nothingLeft(cg));
  });
}

// Each case holds on a host without that controller; where the host has it, the case does not apply and its
// title says so.
const cgroup2Has = (controller: string) => {
  const unified = hostLayout().unified;
  return !!unified && readFileSync(`${unified.mountPoint}/cgroup.controllers`, 'utf8').trim().split(/\s+/).includes(controller);
};
const unavailable: Array<[string, LinuxResources, RegExp, string | false]> = [
  ['net_cls not mounted', { network: { classID: 0x100001 } }, /network\.classID.*net_cls/, hostLayout().v1.has('net_cls') && 'this host mounts net_cls'],
  ['rdma controller absent', { rdma: { mlx5_0: { hcaHandles: 3 } } }, /rdma/, (hostLayout().v1.has('rdma') || cgroup2Has('rdma')) && 'this host has an rdma controller'],
  ['unified key of a controller not in cgroup2 here', { unified: { 'memory.high': '1000000' } }, /unified\.memory\.high.*memory controller/, cgroup2Has('memory') && 'this host has memory in cgroup2'],
  ['unknown unified key', { unified: { 'cgroup.no_such_knob': '0' } }, /unified\.cgroup\.no_such_knob.*no such file/, !hostLayout().unified && 'this host has no cgroup2 mount'],
  ['hugepage size the kernel lacks', { hugepageLimits: [{ pageSize: '4MB', limit: 0 }] }, /4MB/, false],
];

for (const [name, resources, message, notHere] of unavailable) {
  (notHere ? test.skip : test)(`resources this host cannot apply fail cleanly after mkdir: ${name}${notHere ? ` (skipped: ${notHere})` : ''}`, (t) => {
    const cg = testCgroup(t);
    const err = t.throws(() => cg.create(resources), { message });
    t.is(codeOf(err), ErrorCode.FailedPrecondition);
    t.true(nothingLeft(cg), JSON.stringify(cg.paths));
  });
}

test('a memory limit below current usage is refused on update and the old limit stays', async (t) => {
  const cg = testCgroup(t);
  cg.create({ memory: { limit: 64 * MiB } });
  const child = await heldChild(t, 'x=$(/bin/busybox head -c 12000000 /dev/zero | /bin/busybox tr "\\0" a); /bin/busybox sleep 30');
  cg.addProcess(child.pid);
  child.go();
  const deadline = Date.now() + 5000;
  while (cg.stats().memory!.usage < 8 * MiB && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const err = t.throws(() => cg.update({ memory: { limit: 1 * MiB } }), { message: /memory\.limit.*usage/ });
  t.is(codeOf(err), ErrorCode.FailedPrecondition);
  t.is(cg.stats().memory!.limit, 64 * MiB);
});

test('an invalid update changes nothing', (t) => {
  const cg = testCgroup(t);
  cg.create({ pids: { limit: 10 } });
  t.throws(() => cg.update({ pids: { limit: 20 }, memory: { limit: -7 } }), { message: /memory\.limit/ });
  t.is(cg.stats().pids!.limit, 10);
});

test('a knob this kernel lacks is refused naming it, not reported as an internal error (cgroupfs answers EACCES)', (t) => {
  // Every optional knob (cpu.cfs_burst_us, cpu.rt_*, cpu.idle...) is written through writeValue: a file no kernel
  // has stands for one this kernel was built without.
  const cg = testCgroup(t);
  cg.create({});
  const err = t.throws(() => writeValue(cg.paths.cpu!, 'cpu.no_such_knob', 1, 'cpu.noSuchKnob'), { message: /^cgroup cpu\.noSuchKnob: cannot write "1" to .*cpu\.no_such_knob: the kernel does not provide cpu\.no_such_knob here$/ });
  t.is(codeOf(err), ErrorCode.FailedPrecondition);
});
