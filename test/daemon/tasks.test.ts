// Containers run through berthd: Containers + Tasks over gRPC, the shim started by runtime name, events from
// the shim forwarded to subscribers; containerd's own runc shim works the same way; a killed daemon finds
// its tasks again after a restart.
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsc, createReadStream, openSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ApiClient } from '../../api/grpc-client.ts';
import { unpackAny } from '../../api/proto.ts';
import { defaultSpec } from '../helpers/bundle.ts';
import { makeBusyboxRootfs } from '../helpers/rootfs.ts';
import { tempDir } from '../helpers/tmp.ts';
import { keptLog, startDaemon, startDaemonProcess } from './helpers.ts';

const CONTAINERS = 'containerd.services.containers.v1.Containers';
const TASKS = 'containerd.services.tasks.v1.Tasks';

function readAll(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    createReadStream(path, { encoding: 'utf8' }).on('data', (d) => { out += d; }).on('end', () => resolve(out)).on('error', reject);
  });
}

function fifos(t: ExecutionContext, dir: string, name: string) {
  const stdout = join(dir, `${name}.out`);
  const stderr = join(dir, `${name}.err`);
  execFileSync('mkfifo', [stdout, stderr]);
  t.teardown(() => { for (const f of [stdout, stderr]) { try { closeSync(openSync(f, fsc.O_RDWR | fsc.O_NONBLOCK)); } catch { /* gone */ } } });
  return { stdout, stderr, output: readAll(stdout), errors: readAll(stderr) };
}

const uid = () => `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

async function createContainer(c: ApiClient, id: string, args: string[], runtime = 'io.containerd.berth.v2', options?: { typeUrl: string; value: Buffer }) {
  const spec = defaultSpec(args);
  spec.linux.cgroupsPath = `/berth-tasks-test/${id}`;
  await c.call(CONTAINERS, 'Create', { container: { id, runtime: { name: runtime, ...(options ? { options } : {}) }, spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from(JSON.stringify(spec)) } } });
}

test.serial('a task runs through berthd and containerd-shim-berth-v2: output, exit status, events', async (t) => {
  const d = await startDaemon(t);
  const c = d.client('default');
  const rootfs = makeBusyboxRootfs(join(tempDir(t), 'rootfs'));
  const id = uid();
  await createContainer(c, id, ['/bin/sh', '-c', 'echo hello from berthd; exit 5']);
  const sub = d.daemon.ctx.events.subscribe(['topic~="^/tasks/"']);
  const io = fifos(t, tempDir(t), 'io');
  const created = await c.call(TASKS, 'Create', { containerId: id, stdout: io.stdout, stderr: io.stderr, rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }] });
  t.true(created.pid > 0);
  t.is((await c.call(TASKS, 'Get', { containerId: id })).process.status, 'CREATED');
  const waiting = c.call(TASKS, 'Wait', { containerId: id });
  await c.call(TASKS, 'Start', { containerId: id });
  t.is((await waiting).exitStatus, 5);
  t.is(await io.output, 'hello from berthd\n');
  t.deepEqual((await c.call(TASKS, 'List', {})).tasks.map((p: any) => [p.id, p.status, p.exitStatus]), [[id, 'STOPPED', 5]]);
  const deleted = await c.call(TASKS, 'Delete', { containerId: id });
  t.is(deleted.exitStatus, 5);
  await t.throwsAsync(c.call(TASKS, 'Get', { containerId: id }), { message: /not found/ });
  const topics: string[] = [];
  for await (const env of sub) {
    topics.push(`${env.topic} ${(unpackAny(env.event) as any).containerId}`);
    if (topics.length === 4) break;
  }
  t.deepEqual(topics, ['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete'].map((x) => `${x} ${id}`));
  t.deepEqual(execFileSync('sh', ['-c', `grep -c ${id} /proc/mounts || true`]).toString().trim(), '0', 'the rootfs is unmounted');
});

test.serial('containerd\'s own containerd-shim-runc-v2 runs a task for berthd (io.containerd.runc.v2)', async (t) => {
  const d = await startDaemon(t);
  const c = d.client('default');
  const rootfs = makeBusyboxRootfs(join(tempDir(t), 'rootfs'));
  const id = uid();
  await createContainer(c, id, ['/bin/sh', '-c', 'echo via runc shim; exit 2'], 'io.containerd.runc.v2');
  const io = fifos(t, tempDir(t), 'io');
  await c.call(TASKS, 'Create', { containerId: id, stdout: io.stdout, stderr: io.stderr, rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }] });
  const waiting = c.call(TASKS, 'Wait', { containerId: id });
  await c.call(TASKS, 'Start', { containerId: id });
  t.is((await waiting).exitStatus, 2);
  t.is(await io.output, 'via runc shim\n');
  t.is((await c.call(TASKS, 'Delete', { containerId: id })).exitStatus, 2);
});

test.serial('unknown runtimes, a shim that fails to start and missing containers are refused clearly, and berthd logs why', async (t) => {
  const kept = keptLog();
  const d = await startDaemon(t, {}, kept.log);
  const c = d.client('default');
  const id = uid();
  await createContainer(c, id, ['/bin/true'], 'io.containerd.nosuch.v2');
  const err = await t.throwsAsync(c.call(TASKS, 'Create', { containerId: id }));
  t.regex(err!.message, /containerd-shim-nosuch-v2 not found/);
  // containerd's runc shim refuses options of a type it does not know, on its stderr.
  const badOptions = uid();
  await createContainer(c, badOptions, ['/bin/true'], 'io.containerd.runc.v2', { typeUrl: 'berth.test.NoSuchOptions', value: Buffer.from('x') });
  const startErr = await t.throwsAsync(c.call(TASKS, 'Create', { containerId: badOptions }));
  t.regex(startErr!.message, /berth\.test\.NoSuchOptions/);
  await t.throwsAsync(c.call(TASKS, 'Create', { containerId: 'missing' }), { message: /not found/ });
  t.deepEqual((await c.call(TASKS, 'List', {})).tasks, []);
  const warned = kept.entries().filter((e) => e.level === 40 && e.msg === 'task create failed');
  t.deepEqual(warned.map((e) => e.id), [id, badOptions]);
  t.regex(warned[1]!.err.message, /shim io\.containerd\.runc\.v2 start failed.*berth\.test\.NoSuchOptions/, 'with the shim\'s stderr');
});

test.serial('a task that fails to create in a grouped shim is refused; the shim and its other tasks carry on; a task killed before it starts reports 137', async (t) => {
  const d = await startDaemon(t);
  const c = d.client('default');
  const rootfs = makeBusyboxRootfs(join(tempDir(t), 'rootfs'));
  const bind = [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }];
  const running = uid();
  await createContainer(c, running, ['/bin/sleep', '1000']);
  const { pid } = await c.call(TASKS, 'Create', { containerId: running, rootfs: bind });
  await c.call(TASKS, 'Start', { containerId: running });
  const shim = ppidOf(ppidOf(pid));
  const broken = uid();
  const spec = defaultSpec(['/bin/true']);
  spec.linux.cgroupsPath = `/berth-tasks-test/${broken}`;
  spec.mounts.push({ destination: '/data', type: 'bind', source: '/nonexistent/berth-source', options: ['rbind'] });
  await c.call(CONTAINERS, 'Create', { container: { id: broken, runtime: { name: 'io.containerd.berth.v2' }, spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from(JSON.stringify(spec)) } } });
  const err = await t.throwsAsync(c.call(TASKS, 'Create', { containerId: broken, rootfs: bind }));
  t.regex(err!.message, /nonexistent\/berth-source/);
  await new Promise((r) => setTimeout(r, 300));
  t.like(await c.call(TASKS, 'Get', { containerId: running }), { process: { status: 'RUNNING' } }, 'the other task runs on');
  const next = uid();
  await createContainer(c, next, ['/bin/true']);
  const created = await c.call(TASKS, 'Create', { containerId: next, rootfs: bind });
  t.is(ppidOf(ppidOf(created.pid)), shim, 'in the same shim');
  for (const id of [next, running]) {
    await c.call(TASKS, 'Kill', { containerId: id, signal: 9 });
    t.is((await c.call(TASKS, 'Wait', { containerId: id })).exitStatus, 137, `${id === next ? 'never started' : 'running'}: killed`);
    await c.call(TASKS, 'Delete', { containerId: id });
  }
});

test.serial('berthd killed with SIGKILL while 20 containers run finds them all after a restart, with the exits that happened meanwhile', async (t) => {
  const first = await startDaemonProcess(t);
  const c1 = first.client('default');
  const rootfs = makeBusyboxRootfs(join(tempDir(t), 'rootfs'));
  const ids = Array.from({ length: 20 }, uid);
  for (const [i, id] of ids.entries()) {
    // Even ones keep running; odd ones exit while the daemon is down. No stdio: a FIFO read that never ends
    // would hold a thread of the test's pool.
    await createContainer(c1, id, i % 2 ? ['/bin/sh', '-c', 'sleep 2; exit 42'] : ['/bin/sleep', '1000']);
    await c1.call(TASKS, 'Create', { containerId: id, rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }] });
    await c1.call(TASKS, 'Start', { containerId: id });
  }
  first.child.kill('SIGKILL');
  await new Promise((resolve) => first.child.once('exit', resolve));
  await new Promise((resolve) => setTimeout(resolve, 2500));
  const second = await startDaemonProcess(t, { root: first.config.root, state: first.config.state, address: first.config.address });
  const c2 = second.client('default');
  const listed = new Map<string, any>((await c2.call(TASKS, 'List', {})).tasks.map((p: any) => [p.id, p]));
  t.is(listed.size, 20);
  for (const [i, id] of ids.entries()) {
    if (i % 2) t.like(listed.get(id), { status: 'STOPPED', exitStatus: 42 });
    else t.like(listed.get(id), { status: 'RUNNING' });
  }
  for (const id of ids) {
    await c2.call(TASKS, 'Kill', { containerId: id, signal: 9 }).catch(() => undefined);
    await c2.call(TASKS, 'Wait', { containerId: id });
    await c2.call(TASKS, 'Delete', { containerId: id });
  }
  t.deepEqual((await c2.call(TASKS, 'List', {})).tasks, []);
});

/** berth-monitor processes whose parent is `ppid`, with their command lines. */
function monitorsOf(ppid: number): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const p of execFileSync('ps', ['-eo', 'pid=,ppid=,args=']).toString().trim().split('\n')) {
    const [pid, parent, ...args] = p.trim().split(/\s+/);
    if (Number(parent) === ppid && args[0] === 'berth-monitor') out.push({ pid: Number(pid), cmdline: args.join(' ') });
  }
  return out;
}
const ppidOf = (pid: number) => Number(execFileSync('ps', ['-o', 'ppid=', '-p', String(pid)]).toString().trim());

/** The hierarchies of /proc/PID/cgroup, each with its path ('' for cgroup2). */
function cgroupsOf(pid: number): Map<string, string> {
  return new Map(readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n').map((l) => { const [, ctl, path] = l.split(':'); return [ctl!, path!]; }));
}
const spareStages = () => readdirSync('/sys/fs/cgroup').flatMap((h) => {
  try { return readdirSync(join('/sys/fs/cgroup', h, 'berth-tasks-test')).filter((n) => n.startsWith('berth-spare-')).map((n) => `${h}/${n}`); } catch { return []; }
});

test.serial('a container under another cgroup parent is not born in the stage: it gets its own cgroups, the unused stage goes, and the next stage follows it', async (t) => {
  const d = await startDaemon(t);
  const c = d.client('default');
  const rootfs = makeBusyboxRootfs(join(tempDir(t), 'rootfs'));
  const bind = [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }];
  const otherParent = `berth-tasks-other-${process.pid}`;
  t.teardown(() => { for (const h of readdirSync('/sys/fs/cgroup')) { try { rmdirSync(join('/sys/fs/cgroup', h, otherParent)); } catch { /* none */ } } });
  const first = uid();
  await createContainer(c, first, ['/bin/true']);
  const { pid } = await c.call(TASKS, 'Create', { containerId: first, rootfs: bind });
  const shim = ppidOf(ppidOf(pid));
  await c.call(TASKS, 'Start', { containerId: first });
  await c.call(TASKS, 'Wait', { containerId: first });
  await c.call(TASKS, 'Delete', { containerId: first });
  const stagesUnder = (parent: string) => readdirSync('/sys/fs/cgroup').flatMap((h) => {
    try { return readdirSync(join('/sys/fs/cgroup', h, parent)).filter((n) => n.startsWith(`berth-spare-${shim}-`)); } catch { return []; }
  });
  const settle = async (check: () => boolean) => { for (let i = 0; i < 60 && !check(); i++) await new Promise((r) => setTimeout(r, 50)); };
  await settle(() => stagesUnder('berth-tasks-test').length > 0);
  t.true(stagesUnder('berth-tasks-test').length > 0, 'a stage waits beside the first container\'s cgroups');
  const second = uid();
  const spec = defaultSpec(['/bin/sleep', '1000']);
  spec.linux.cgroupsPath = `/${otherParent}/${second}`;
  await c.call(CONTAINERS, 'Create', { container: { id: second, runtime: { name: 'io.containerd.berth.v2' }, spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from(JSON.stringify(spec)) } } });
  const created = await c.call(TASKS, 'Create', { containerId: second, rootfs: bind });
  for (const [hierarchy, path] of cgroupsOf(created.pid)) t.is(path, `/${otherParent}/${second}`, `its own cgroup (${hierarchy || 'cgroup2'})`);
  await settle(() => stagesUnder('berth-tasks-test').length === 0 && stagesUnder(otherParent).length > 0);
  t.deepEqual(stagesUnder('berth-tasks-test'), [], 'the stage nobody could use is removed');
  t.true(stagesUnder(otherParent).length > 0, 'and the next one waits beside the second container\'s cgroups');
  await c.call(TASKS, 'Kill', { containerId: second, signal: 9 });
  await c.call(TASKS, 'Wait', { containerId: second });
  await c.call(TASKS, 'Delete', { containerId: second });
  await d.daemon.ctx.tasks.stopIdleShims();
  await settle(() => stagesUnder(otherParent).length === 0);
  t.deepEqual(stagesUnder(otherParent), [], 'which goes with the shim');
});

test.serial('a grouped shim keeps a spare monitor while idle, its child already in cgroups beside the last container\'s; the next container is born in them, renamed; both leave with the shim', async (t) => {
  const d = await startDaemon(t);
  const c = d.client('default');
  const rootfs = makeBusyboxRootfs(join(tempDir(t), 'rootfs'));
  const run = async (id: string) => {
    await createContainer(c, id, ['/bin/sh', '-c', 'exit 3']);
    const created = await c.call(TASKS, 'Create', { containerId: id, rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }] });
    const monitor = ppidOf(created.pid);
    const shim = ppidOf(monitor);
    for (const [hierarchy, path] of cgroupsOf(created.pid)) t.is(path, `/berth-tasks-test/${id}`, `init in its own cgroup (${hierarchy || 'cgroup2'})`);
    const waiting = c.call(TASKS, 'Wait', { containerId: id });
    await c.call(TASKS, 'Start', { containerId: id });
    t.is((await waiting).exitStatus, 3);
    await c.call(TASKS, 'Delete', { containerId: id });
    return { monitor, shim };
  };
  const { shim } = await run(uid());
  await new Promise((r) => setTimeout(r, 300));
  const spares = monitorsOf(shim).filter((m) => m.cmdline === 'berth-monitor --spare');
  t.is(spares.length, 1, 'one spare, the shim\'s child');
  const [staged] = monitorsOf(spares[0]!.pid);
  t.truthy(staged, 'the spare has forked its child');
  const stage = `/berth-tasks-test/berth-spare-${shim}-`;
  for (const [hierarchy, path] of cgroupsOf(staged!.pid)) {
    if (hierarchy) t.true(path.startsWith(stage), `the spare's child waits in ${stage}* (${hierarchy}: ${path})`);
  }
  t.deepEqual(await run(uid()), { monitor: spares[0]!.pid, shim }, 'the next container\'s monitor is the spare');
  await new Promise((r) => setTimeout(r, 300));
  const next = monitorsOf(shim).filter((m) => m.cmdline === 'berth-monitor --spare');
  t.is(next.length, 1, 'and a new spare takes its place');
  const ours = (stages: string[]) => stages.filter((s) => s.includes(`/berth-spare-${shim}-`));
  t.is(new Set(ours(spareStages()).map((s) => s.split('/')[1])).size, 1, 'one stage, for the new spare');
  await d.daemon.ctx.tasks.stopIdleShims();
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && execFileSync('ps', ['-eo', 'pid=']).toString().split('\n').some((p) => Number(p) === next[0]!.pid)) await new Promise((r) => setTimeout(r, 50));
  t.false(execFileSync('ps', ['-eo', 'pid=']).toString().split('\n').some((p) => Number(p) === next[0]!.pid), 'the spare exits with its shim');
  t.deepEqual(ours(spareStages()), [], 'and its stage is removed');
});

test.serial('a spare\'s child makes the next container\'s network namespace ahead: each container gets a new one; host network and a joined one still mean the host\'s', async (t) => {
  const d = await startDaemon(t);
  const c = d.client('default');
  const rootfs = makeBusyboxRootfs(join(tempDir(t), 'rootfs'));
  const dir = tempDir(t);
  const hostNet = execFileSync('readlink', ['/proc/self/ns/net']).toString().trim();
  const netnsOf = async (network: 'new' | 'host' | 'join') => {
    const id = uid();
    const spec = defaultSpec(['/bin/readlink', '/proc/self/ns/net']);
    spec.linux.cgroupsPath = `/berth-tasks-test/${id}`;
    spec.linux.namespaces = spec.linux.namespaces.filter((ns: { type: string }) => ns.type !== 'network');
    if (network === 'new') spec.linux.namespaces.push({ type: 'network' });
    if (network === 'join') spec.linux.namespaces.push({ type: 'network', path: `/proc/${process.pid}/ns/net` });
    await c.call(CONTAINERS, 'Create', { container: { id, runtime: { name: 'io.containerd.berth.v2' }, spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from(JSON.stringify(spec)) } } });
    const io = fifos(t, dir, id);
    await c.call(TASKS, 'Create', { containerId: id, stdout: io.stdout, stderr: io.stderr, rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }] });
    const waiting = c.call(TASKS, 'Wait', { containerId: id });
    await c.call(TASKS, 'Start', { containerId: id });
    t.is((await waiting).exitStatus, 0, await io.errors);
    await c.call(TASKS, 'Delete', { containerId: id });
    // Idle a moment: the shim makes its next spare.
    await new Promise((r) => setTimeout(r, 300));
    return (await io.output).trim();
  };
  const first = await netnsOf('new');
  const second = await netnsOf('new');
  t.not(first, hostNet);
  t.not(second, hostNet);
  t.not(second, first, 'a network namespace of its own each');
  t.is(await netnsOf('host'), hostNet, 'no network namespace in the spec: the host\'s');
  t.is(await netnsOf('join'), hostNet, 'a joined one (ours)');
  t.not(await netnsOf('new'), hostNet);
});

test.serial('a stage made with the last container\'s device rules serves the next only if it wants the same: other rules are written as asked', async (t) => {
  const d = await startDaemon(t);
  const c = d.client('default');
  const rootfs = makeBusyboxRootfs(join(tempDir(t), 'rootfs'));
  const devicesOf = async (allowTty1: boolean) => {
    const id = uid();
    const spec = defaultSpec(['/bin/sleep', '10']);
    spec.linux.cgroupsPath = `/berth-tasks-test/${id}`;
    if (allowTty1) spec.linux.resources = { devices: [{ allow: true, type: 'c', major: 4, minor: 1, access: 'rwm' }] };
    await c.call(CONTAINERS, 'Create', { container: { id, runtime: { name: 'io.containerd.berth.v2' }, spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from(JSON.stringify(spec)) } } });
    const created = await c.call(TASKS, 'Create', { containerId: id, rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }] });
    const dir = `/sys/fs/cgroup/devices${cgroupsOf(created.pid).get('devices')}`;
    const list = readFileSync(join(dir, 'devices.list'), 'utf8');
    await c.call(TASKS, 'Kill', { containerId: id, signal: 9 });
    await c.call(TASKS, 'Wait', { containerId: id });
    await c.call(TASKS, 'Delete', { containerId: id });
    await new Promise((r) => setTimeout(r, 300)); // the shim makes its next spare and stage
    return list;
  };
  if (!cgroupsOf(process.pid).has('devices')) { t.pass('no cgroup v1 devices controller here'); return; }
  const defaults = await devicesOf(false);
  t.regex(defaults, /^c 1:3 rwm$/m);
  t.notRegex(defaults, /^c 4:1 /m);
  t.is(await devicesOf(false), defaults, 'through a stage made with the same rules');
  t.regex(await devicesOf(true), /^c 4:1 rwm$/m, 'other rules: /dev/tty1 allowed too');
  t.is(await devicesOf(false), defaults, 'and back');
});
