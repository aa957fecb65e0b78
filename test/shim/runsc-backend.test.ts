// The runsc backend (runtimes/backends/runsc.ts) beyond the shared suite: the container really runs on gVisor's
// kernel, with the flags the host probe chose, the network its spec asks for, stats from `runsc events`, and an OOM
// kill of the sandbox reported. (The shared task API suite runs for runsc in lifecycle.test.ts.)
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { unpackAny } from '../../api/proto.ts';
import { networkFor } from '../../runtimes/backends/runsc.ts';
import { cachedRunscHost, probeRunscHost } from '../../runtimes/backends/runsc-probe.ts';
import { makeBundle } from '../helpers/bundle.ts';
import { uid } from './backend-suite.ts';
import { shimHarness, type ShimHarness } from './helpers.ts';

const MiB = 1024 * 1024;

/** Runs `args` in runsc through the shim; its output, exit status and the events seen. */
async function runInRunsc(h: ShimHarness, args: string[], edit?: (spec: any) => void): Promise<{ output: string; status: number }> {
  const id = uid();
  const bundle = makeBundle(join(h.dir, id), { args, edit: (s) => { s.linux.cgroupsPath = `/${id}`; edit?.(s); } });
  const client = await h.start(bundle.dir, id);
  const io = h.fifos(id);
  await h.call(client, 'Create', { id, bundle: bundle.dir, stdout: io.stdout, stderr: io.stderr, options: h.options('runsc') });
  const waiting = h.call(client, 'Wait', { id });
  await h.call(client, 'Start', { id });
  const status = (await waiting).exitStatus as number;
  await h.call(client, 'Delete', { id });
  return { output: await io.output, status };
}

test.serial('runsc: the container sees gVisor\'s kernel, not the host\'s', async (t) => {
  const h = await shimHarness(t);
  const { output, status } = await runInRunsc(h, ['/bin/sh', '-c', 'uname -r; dmesg | head -1; cat /proc/version']);
  t.is(status, 0, output);
  const [kernel, dmesg, version] = output.split('\n');
  t.not(kernel, release(), `uname -r inside (${kernel}) is not the host's (${release()})`);
  t.regex(dmesg!, /Starting gVisor/);
  t.not(`${version}\n`, readFileSync('/proc/version', 'utf8'));
});

test.serial('runsc: the probe\'s platform and cgroup choice are what the sandbox runs with; the answer is cached', async (t) => {
  const host = await probeRunscHost('runsc');
  t.true(['systrap', 'kvm', 'ptrace'].includes(host.platform));
  t.deepEqual(cachedRunscHost('runsc'), host, 'the answer is cached for the next shim');
  const h = await shimHarness(t);
  const id = uid();
  const bundle = makeBundle(join(h.dir, id), { args: ['/bin/sleep', '1000'], edit: (s) => { s.linux.cgroupsPath = `/${id}`; } });
  const client = await h.start(bundle.dir, id);
  await h.call(client, 'Create', { id, bundle: bundle.dir, options: h.options('runsc') });
  await h.call(client, 'Start', { id });
  const boot = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').find((l) => l.includes('runsc') && l.includes(' boot ') && l.includes(id));
  t.truthy(boot, 'the sandbox process is there');
  // runsc passes the sandbox only the flags that differ from its defaults (ptrace is 20221219's).
  t.is(/--platform=(\w+)/.exec(boot!)?.[1] ?? 'ptrace', host.platform);
  t.is(/--ignore-cgroups/.test(boot!), host.ignoreCgroups);
  await h.call(client, 'Kill', { id, signal: 9 });
  await h.call(client, 'Wait', { id });
  await h.call(client, 'Delete', { id });
});

test.serial('runsc: no network namespace in the spec is the host\'s network; a new one has loopback only', async (t) => {
  const h = await shimHarness(t);
  const devices = (text: string) => text.split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter(Boolean).sort();
  const hostDevices = devices(readFileSync('/proc/net/dev', 'utf8'));
  const shared = await runInRunsc(h, ['/bin/cat', '/proc/net/dev'], (s) => { s.linux.namespaces = s.linux.namespaces.filter((n: any) => n.type !== 'network'); });
  t.is(shared.status, 0, shared.output);
  t.deepEqual(devices(shared.output).filter((d) => d !== 'lo'), hostDevices.filter((d) => d !== 'lo'));
  const own = await runInRunsc(h, ['/bin/cat', '/proc/net/dev']);
  t.deepEqual(devices(own.output), ['lo']);
  // A namespace the spec names gets its interfaces only where runsc can take them (not with runsc 20221219 on
  // kernels with per-namespace rmem_default): then loopback only, never the host's.
  const named = { linux: { namespaces: [{ type: 'network', path: '/proc/1/ns/net' }] } };
  t.is(networkFor(named, { platform: 'ptrace', ignoreCgroups: false, sandboxNetwork: true, rejected: [] }), 'sandbox');
  t.is(networkFor(named, { platform: 'ptrace', ignoreCgroups: false, sandboxNetwork: false, rejected: [] }), 'none');
});

test.serial('runsc: Stats from runsc events --stats: memory, cpu and pids of the sandbox, with its cgroup\'s limits', async (t) => {
  const h = await shimHarness(t);
  const id = uid();
  const bundle = makeBundle(join(h.dir, id), {
    args: ['/bin/sh', '-c', 'x=0; while [ $x -lt 3000 ]; do x=$((x+1)); done; sleep 1000'],
    edit: (s) => { s.linux.cgroupsPath = `/${id}`; s.linux.resources.memory = { limit: 256 * MiB }; s.linux.resources.pids = { limit: 200 }; },
  });
  const client = await h.start(bundle.dir, id);
  await h.call(client, 'Create', { id, bundle: bundle.dir, options: h.options('runsc') });
  await h.call(client, 'Start', { id });
  await new Promise((r) => setTimeout(r, 500));
  const { stats } = await h.call(client, 'Stats', { id });
  t.is(stats.typeUrl, 'io.containerd.cgroups.v1.Metrics');
  const m = unpackAny(stats);
  t.true(m.memory.usage.usage > 0, `memory usage ${m.memory.usage.usage}`);
  t.true(m.cpu.usage.total > 0, `cpu ${m.cpu.usage.total}`);
  t.true(m.pids.current >= 1, `pids ${m.pids.current}`);
  if (!(await probeRunscHost('runsc')).ignoreCgroups) {
    t.is(m.memory.usage.limit, 256 * MiB, 'the limit of the sandbox\'s cgroup');
    t.is(m.pids.limit, 200);
  }
  const resources = { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources', value: Buffer.from(JSON.stringify({ pids: { limit: 10 } })) };
  await t.throwsAsync(h.call(client, 'Update', { id, resources }), { message: /runsc cannot change the resources of a running sandbox/ });
  await h.call(client, 'Kill', { id, signal: 9 });
  await h.call(client, 'Wait', { id });
  await h.call(client, 'Delete', { id });
});

test.serial('runsc: a sandbox over its memory limit is killed and /tasks/oom comes before its exit', async (t) => {
  if ((await probeRunscHost('runsc')).ignoreCgroups) return t.pass('skipped: runsc runs with --ignore-cgroups here, so no memory limit applies');
  const h = await shimHarness(t);
  // gVisor's tmpfs is the sentry's memory, which the host charges to the sandbox's cgroup.
  const { output } = await runInRunsc(h, ['/bin/sh', '-c', 'dd if=/dev/zero of=/scratch/fill bs=1M count=200 2>/dev/null; echo survived'], (s) => {
    s.mounts.push({ destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['size=400m'] });
    s.linux.resources.memory = { limit: 64 * MiB, swap: 64 * MiB };
  });
  t.not(output, 'survived\n');
  await new Promise((r) => setTimeout(r, 100));
  const topics = h.events.map((e) => e.topic);
  t.true(topics.includes('/tasks/oom'), topics.join(' '));
  t.true(topics.indexOf('/tasks/oom') < topics.lastIndexOf('/tasks/exit'));
});
