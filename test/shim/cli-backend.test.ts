// containerd-shim-berth-v2 with a runtime CLI behind it (real runc and crun), as containerd clients drive it:
// Stats from the CLI's `events --stats` (runc's format) as containerd's cgroups v1 Metrics, a failed create
// reported with the runtime's own message (from its --log), the runc options' `root` honoured, and a task with
// no stdio given a drained pipe, never the host's /dev/null (runsc chowns its stdio).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packAny, unpackAny } from '../../api/proto.ts';
import { statsFromRuncEvent } from '../../runtimes/backends/runc-events.ts';
import { UNLIMITED } from '../../runtimes/cgroups/files.ts';
import { makeBundle } from '../helpers/bundle.ts';
import { shimHarness } from './helpers.ts';

const uid = () => `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const MiB = 1024 * 1024;

for (const runtime of ['runc', 'crun']) {
  const source = runtime === 'runc' ? 'its events --stats' : 'the cgroup (crun has no events command)';
  test.serial(`${runtime}: Stats answers cgroups v1 Metrics from ${source}: memory limit and usage, cpu, pids`, async (t) => {
    const h = await shimHarness(t);
    const id = uid();
    const bundle = makeBundle(join(h.dir, id), {
      args: ['/bin/sh', '-c', 'x=0; while [ $x -lt 20000 ]; do x=$((x+1)); done; sleep 1000'],
      edit: (s) => { s.linux.cgroupsPath = `/${id}`; s.linux.resources.memory = { limit: 64 * MiB }; s.linux.resources.pids = { limit: 50 }; },
    });
    const client = await h.start(bundle.dir, id);
    await h.call(client, 'Create', { id, bundle: bundle.dir, options: h.options(runtime) });
    await h.call(client, 'Start', { id });
    await new Promise((r) => setTimeout(r, 300));
    const { stats } = await h.call(client, 'Stats', { id });
    t.is(stats.typeUrl, 'io.containerd.cgroups.v1.Metrics');
    const m = unpackAny(stats);
    t.is(m.memory.usage.limit, 64 * MiB);
    t.true(m.memory.usage.usage > 0, `memory usage ${m.memory.usage.usage}`);
    t.true(m.memory.totalRss > 0 || m.memory.rss > 0, 'rss from memory.stat');
    t.true(m.cpu.usage.total > 0, `cpu ${m.cpu.usage.total}`);
    t.true(m.pids.current >= 1);
    t.is(m.pids.limit, 50);
  });

  test.serial(`${runtime}: a create the runtime refuses fails with the runtime's message (read from its --log)`, async (t) => {
    const h = await shimHarness(t);
    const id = uid();
    const bundle = makeBundle(join(h.dir, id), {
      args: ['/bin/true'],
      edit: (s) => { s.linux.cgroupsPath = `/${id}`; s.mounts.push({ destination: '/data', type: 'bind', source: '/nonexistent/berth-source', options: ['rbind'] }); },
    });
    const client = await h.start(bundle.dir, id);
    const io = h.fifos('init');
    const err = await t.throwsAsync(h.call(client, 'Create', { id, bundle: bundle.dir, stdout: io.stdout, stderr: io.stderr, options: h.options(runtime) }));
    t.regex(err!.message, new RegExp(`^${runtime} create: .*nonexistent/berth-source`));
  });

  test.serial(`${runtime}: the runc options' root is where the runtime keeps the container (as Docker sends <exec-root>/runtime-runc)`, async (t) => {
    const h = await shimHarness(t);
    const id = uid();
    const root = join(h.dir, 'runtime-root');
    const bundle = makeBundle(join(h.dir, id), { args: ['/bin/sleep', '1000'], edit: (s) => { s.linux.cgroupsPath = `/${id}`; } });
    const client = await h.start(bundle.dir, id);
    await h.call(client, 'Create', { id, bundle: bundle.dir, options: packAny('containerd.runc.v1.Options', { binaryName: runtime, root }) });
    await h.call(client, 'Start', { id });
    const state = JSON.parse(execFileSync(runtime, ['--root', root, 'state', id], { encoding: 'utf8' })) as { status: string };
    t.is(state.status, 'running');
    await h.call(client, 'Kill', { id, signal: 9 });
    await h.call(client, 'Wait', { id });
    await h.call(client, 'Delete', { id });
    t.false(existsSync(join(root, id)), 'deleted from that root');
  });
}

test.serial('runc: a task with no stdio writes into a pipe the monitor drains, never the host\'s /dev/null, and is not cut short', async (t) => {
  const h = await shimHarness(t);
  const id = uid();
  // 1 MiB to stdout (more than a pipe holds), then what its stdout and stderr are: no character device.
  const bundle = makeBundle(join(h.dir, id), {
    args: ['/bin/sh', '-c', 'head -c 1048576 /dev/zero; [ -p /proc/self/fd/1 ] && [ ! -c /proc/self/fd/2 ] && exit 42; exit 1'],
    edit: (s) => { s.linux.cgroupsPath = `/${id}`; },
  });
  const client = await h.start(bundle.dir, id);
  await h.call(client, 'Create', { id, bundle: bundle.dir, options: h.options('runc') });
  const waiting = h.call(client, 'Wait', { id });
  await h.call(client, 'Start', { id });
  t.is((await waiting).exitStatus, 42);
  await h.call(client, 'Delete', { id });
});

test('runc\'s events format: omitted zero fields, memory+swap, v1\'s no-limit, blkio and hugetlb entries', (t) => {
  const line = JSON.stringify({
    type: 'stats', id: 'c1', data: {
      cpu: { usage: { total: 900, percpu: [400, 500], kernel: 100, user: 800 }, throttling: {} },
      memory: { cache: 4096, usage: { limit: 9223372036854771712, usage: 1000, max: 2000, failcnt: 0 }, swap: { limit: 9223372036854771712, usage: 1500, failcnt: 0 },
        raw: { total_rss: 800, total_inactive_file: 10 } },
      pids: { current: 3 },
      blkio: { ioServiceBytesRecursive: [{ major: 254, op: 'Read', value: 4096 }, { major: 254, op: 'Total', value: 4096 }] },
      hugetlb: { '2MB': { failcnt: 0 } },
    },
  });
  const s = statsFromRuncEvent(line);
  t.like(s.memory, { usage: 1000, maxUsage: 2000, limit: UNLIMITED, cache: 4096, rss: 800, swap: 500, swapLimit: UNLIMITED });
  t.deepEqual(s.cpu, { usageTotal: 900, usageUser: 800, usageSystem: 100, perCpu: [400, 500], throttling: { periods: 0, throttledPeriods: 0, throttledTime: 0 } });
  t.deepEqual(s.pids, { current: 3, limit: 0 });
  t.deepEqual(s.blkio!.ioServiceBytes, [{ major: 254, minor: 0, op: 'Read', value: 4096 }, { major: 254, minor: 0, op: 'Total', value: 4096 }]);
  t.deepEqual(s.blkio!.ioServiced, []);
  t.deepEqual(s.hugetlb, { '2MB': { usage: 0, maxUsage: 0, failcnt: 0 } });
  t.throws(() => statsFromRuncEvent('{"type":"oom","id":"c1"}'), { message: /want an event of type "stats"/ });
  t.throws(() => statsFromRuncEvent('not json'), { message: /not runc's JSON event format/ });
});
