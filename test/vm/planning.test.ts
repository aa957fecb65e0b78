// The vm backend's host side, without a VM: what it asks the guest to do (plans for guest paths, cgroup writes
// converted from OCI resources), what it makes of the guest's answers (stats from raw cgroup files), and the
// shared directory through which the guest reaches the container's rootfs and volumes.
import test from 'ava';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle.ts';
import { tempDir } from '../helpers/tmp.ts';
import { GuestCgroup, guestCgroup, guestStats } from '../../runtimes/vm/guest-cgroup.ts';
import { withDefaultDevices } from '../../runtimes/cgroups/device-rules.ts';
import { compileDeviceRules } from '../../runtimes/cgroups/devices-bpf.ts';
import { Share, loadGuestSpec, planGuestContainer, planGuestExec } from '../../runtimes/vm/guest-plan.ts';

/** The plan's records (tag NUL argc NUL args...), as berth-init reads them. */
function records(plan: Buffer): string[][] {
  const parts = plan.toString('utf8').split('\0');
  const out: string[][] = [];
  for (let i = 0; i < parts.length - 1;) {
    const tag = parts[i]!;
    const n = Number(parts[i + 1]);
    out.push([tag, ...parts.slice(i + 2, i + 2 + n)]);
    i += 2 + n;
  }
  return out;
}

test('resources become the guest cgroup writes the v2 code makes; a later update sees what was written', (t) => {
  const cg = new GuestCgroup('/sys/fs/cgroup/default/c1');
  const { writes, deviceProgram } = cg.plan({ memory: { limit: 64 << 20, swap: 96 << 20 }, cpu: { shares: 512, quota: 50000, period: 100000 }, pids: { limit: 32 } });
  t.deepEqual(writes, [
    { file: 'memory.swap.max', value: String(32 << 20) }, { file: 'memory.max', value: String(64 << 20) },
    { file: 'cpu.weight', value: '20' }, { file: 'cpu.max', value: '50000 100000' }, { file: 'pids.max', value: '32' },
  ]);
  t.is(deviceProgram, undefined, 'no device rules, no program');
  // A period alone keeps the quota written before, as on a host.
  t.deepEqual(cg.plan({ cpu: { period: 200000 } }, true).writes, [{ file: 'cpu.max', value: '50000 200000' }]);
  t.deepEqual(cg.plan({ unified: { 'memory.high': '1000000' } }, true).writes, [{ file: 'memory.high', value: '1000000' }]);
  t.throws(() => cg.plan({ unified: { 'memory.nonsense': '1' } }, true), { message: /unified\.memory\.nonsense: no such file/ });
  t.throws(() => cg.plan({ memory: { limit: 64 << 20, swap: 1 << 20 } }), { message: /memory\+swap must be ≥ memory\.limit/ });
  t.throws(() => cg.plan({ memory: { limit: 64 << 20 }, cpu: { realtimeRuntime: 1000 } }), { message: /realtime/ });
  t.throws(() => cg.plan({ blockIO: { weight: 500 } }), { message: /the io controller is not available/ }, "the guest has no block devices to weigh");
  t.deepEqual(cg.plan({ blockIO: { weightDevice: [], throttleReadBpsDevice: [] } }).writes, [], "an empty blockIO (Docker's) asks for nothing");
  t.throws(() => cg.plan({ memory: { limit: 100 << 20, checkBeforeUpdate: true } }, true, { memoryCurrent: 200 << 20 }), { message: /below the current usage/ });
});

test('device rules become the program the host compiles (defaults added as on the host); too many rules for the agent are refused', (t) => {
  const cg = new GuestCgroup('/sys/fs/cgroup/default/c1');
  const rules = withDefaultDevices({ devices: [{ allow: false, access: 'rwm' }] }, [{ path: '/dev/full' }]);
  const { writes, deviceProgram } = cg.plan(rules);
  t.deepEqual(writes, []);
  t.deepEqual(deviceProgram, compileDeviceRules(rules.devices!), 'the same program the host attaches');
  t.true(rules.devices!.some((r) => r.major === 1 && r.minor === 3) && !rules.devices!.some((r) => r.major === 1 && r.minor === 7),
    '/dev/null keeps its default rule; /dev/full, listed, does not get one');
  const many = Array.from({ length: 600 }, (_, i) => ({ allow: true, type: 'c' as const, major: 200, minor: i, access: 'rw' }));
  t.throws(() => cg.plan({ devices: [{ allow: false, access: 'rwm' }, ...many] }), { message: /601 rules compile to \d+ eBPF instructions, more than the guest agent loads \(4096\)/ });
});

test("stats come from the guest's raw cgroup files, parsed as a host's", (t) => {
  const files = [
    ['cpu.stat', 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 20\n'],
    ['memory.current', '4096000\n'], ['memory.max', 'max\n'], ['memory.stat', 'anon 1000\nfile 2000\n'], ['memory.events', 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n'],
    ['pids.current', '2\n'], ['pids.max', '32\n'],
  ].map(([name, content]) => ({ name: name!, content: Buffer.from(content!) }));
  const s = guestStats('/sys/fs/cgroup/c1', files);
  t.like(s.cpu, { usageTotal: 1_500_000, usageUser: 1_000_000, usageSystem: 500_000, throttling: { periods: 4, throttledPeriods: 1, throttledTime: 20_000 } });
  t.like(s.memory, { usage: 4096000, limit: 2 ** 64 - 1, cache: 2000, rss: 1000, failcnt: 3 });
  t.deepEqual(s.pids, { current: 2, limit: 32 });
  t.falsy(s.blkio?.ioServiceBytes?.length, 'the guest has no block devices, so no I/O statistics');
  t.throws(() => guestStats('/sys/fs/cgroup/c1', files.filter((f) => f.name !== 'memory.current')), { message: /memory\.current: no such file/ });
});

test("the guest's cgroup follows runc's cgroupsPath rules on a pure v2 layout", (t) => {
  t.is(guestCgroup('/default/c1', 'c1').dir, '/sys/fs/cgroup/default/c1');
  t.is(guestCgroup('', 'c2').dir, '/sys/fs/cgroup/c2');
  t.is(guestCgroup('k8s/pod/c3', 'c3').dir, '/sys/fs/cgroup/k8s/pod/c3');
  t.throws(() => guestCgroup('/a/../b', 'c4'), { message: /"\.\." components/ });
});

test('a spec the guest cannot honour is refused, naming why', (t) => {
  const dir = tempDir(t);
  const refuse = (name: string, edit: (s: any) => void, message: RegExp) => {
    const b = makeBundle(join(dir, name), { edit });
    t.throws(() => loadGuestSpec(b.dir), { message }, name);
  };
  refuse('hooks', (s) => { s.hooks = { prestart: [{ path: '/bin/true' }], startContainer: [{ path: '/bin/true' }] }; }, /hooks \(startContainer\): the vm runtime cannot run hooks in the container's namespaces/);
  refuse('netns', (s) => { s.linux.namespaces.push({ type: 'network', path: '/var/run/netns/x' }); s.linux.namespaces = s.linux.namespaces.filter((n: any) => n.type !== 'network' || n.path); },
    /network namespace at \/var\/run\/netns\/x is the host's/);
  refuse('noproc', (s) => { delete s.process; }, /process/);
  const bad = makeBundle(join(dir, 'bad'), { rawConfig: '{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": {"cwd": "/", "args": []}}' });
  t.throws(() => loadGuestSpec(bad.dir), { message: /process.args/ });
});

test('the rootfs and bind sources reach the guest through the share; plans name them by their share paths', (t) => {
  const dir = tempDir(t);
  const volume = join(dir, 'volume');
  mkdirSync(volume);
  writeFileSync(join(volume, 'data'), 'from the host\n');
  const hostFile = join(dir, 'single-file');
  writeFileSync(hostFile, 'one file\n');
  const b = makeBundle(join(dir, 'bundle'), {
    edit: (s) => {
      s.linux.cgroupsPath = '/vmtest/c1';
      s.mounts.push({ destination: '/data', type: 'bind', source: volume, options: ['rbind', 'ro'] }, { destination: '/etc/one', type: 'none', source: hostFile, options: ['bind'] });
    },
  });
  const share = Share.create(join(dir, 'share'));
  t.teardown(() => share.close());
  const spec = share.addContainer('c1', loadGuestSpec(b.dir), b.rootfs);
  t.teardown(() => share.removeContainer('c1'));
  const cdir = share.containerDir('c1');
  t.is(spec.root!.path, join(cdir, 'rootfs'));
  t.true(existsSync(join(cdir, 'rootfs', 'bin', 'busybox')), "the bundle's rootfs is seen through the share");
  writeFileSync(join(cdir, 'rootfs', 'written-in-share'), 'x');
  t.true(existsSync(join(b.rootfs, 'written-in-share')), "a write through the share lands in the bundle's rootfs");
  const data = spec.mounts!.find((m) => m.destination === '/data')!;
  t.is(readFileSync(join(data.source!, 'data'), 'utf8'), 'from the host\n');
  t.is(readFileSync(spec.mounts!.find((m) => m.destination === '/etc/one')!.source!, 'utf8'), 'one file\n');

  const planned = planGuestContainer('c1', spec);
  t.is(planned.cgroupPath, '/sys/fs/cgroup/vmtest/c1');
  const recs = records(planned.initPlan);
  const find = (tag: string) => recs.filter((r) => r[0] === tag);
  t.deepEqual(find('rootfs'), [['rootfs', join(cdir, 'rootfs')]]);
  t.deepEqual(find('cgroup2'), [['cgroup2', '/sys/fs/cgroup/vmtest/c1']]);
  t.deepEqual(find('execfifo'), [['execfifo', '/run/berth-agent/c1/exec.fifo']]);
  t.deepEqual(find('mode'), [['mode', 'create']]);
  // The spec asks for a network namespace of its own: the container joins the sandbox's (the VM's network), and
  // creates none.
  t.deepEqual(find('join'), [['join', String(0x40000000), '/run/berth/sandbox.netns']]);
  t.is(Number(find('clone')[0]![1]) & 0x40000000, 0);
  const mounts = find('mount');
  t.truthy(mounts.find((m) => m[1] === data.source && m[2] === '/data'), 'the volume is bound from its share path');
  t.truthy(mounts.find((m) => m[1] === '/sys/fs/cgroup/vmtest/c1' && m[2] === '/sys/fs/cgroup'), "the cgroup mount shows the guest's directory");
  t.false(planned.initPlan.includes(volume), 'no host path outside the share is in the plan');

  const exec = records(planGuestExec('c1', 'e1', spec, { ...spec.process!, args: ['/bin/echo', 'hi'], terminal: true }, 42));
  t.deepEqual(exec.filter((r) => r[0] === 'join').map((r) => r[2]).sort(), ['/proc/42/ns/ipc', '/proc/42/ns/mnt', '/proc/42/ns/net', '/proc/42/ns/pid', '/proc/42/ns/uts']);
  t.deepEqual(exec.find((r) => r[0] === 'console')?.slice(0, 2), ['console', '/run/berth-agent/c1/e1.console']);
  t.deepEqual(exec.find((r) => r[0] === 'args'), ['args', '/bin/echo', 'hi']);
});
