// What must not leak or be lost: a shim killed with SIGKILL leaves its tasks reported exited and their
// processes, cgroups and mounts cleaned; hundreds of create/start/delete cycles in parallel leave no mounts,
// cgroup directories, file descriptors or processes behind.
import test from 'ava';
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ApiClient } from '../../api/grpc-client.ts';
import { defaultSpec } from '../helpers/bundle.ts';
import { makeBusyboxRootfs } from '../helpers/rootfs.ts';
import { tempDir } from '../helpers/tmp.ts';
import { startDaemon } from './helpers.ts';

const CONTAINERS = 'containerd.services.containers.v1.Containers';
const TASKS = 'containerd.services.tasks.v1.Tasks';

async function container(c: ApiClient, id: string, args: string[], cgroupParent: string) {
  const spec = defaultSpec(args);
  spec.linux.cgroupsPath = `/${cgroupParent}/${id}`;
  await c.call(CONTAINERS, 'Create', { container: { id, runtime: { name: 'io.containerd.berth.v2' }, spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from(JSON.stringify(spec)) } } });
}

const mountCount = (dir: string) => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir)).length;
const cgroupDirs = (parent: string) => readdirSync('/sys/fs/cgroup').flatMap((h) => {
  try { return readdirSync(join('/sys/fs/cgroup', h, parent), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => `${h}/${e.name}`); } catch { return []; }
});
/** Removes the (empty) parent cgroup the test's containers were placed under. */
const removeParent = (parent: string) => { for (const h of readdirSync('/sys/fs/cgroup')) { try { rmdirSync(join('/sys/fs/cgroup', h, parent)); } catch { /* none */ } } };

const processesOf = (...patterns: string[]) => readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
  try { const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8'); return patterns.every((x) => cmd.includes(x)); } catch { return false; }
});

test.serial('a shim killed with SIGKILL: its tasks are reported exited, their processes, cgroups and mounts cleaned', async (t) => {
  const d = await startDaemon(t);
  const c = d.client('default');
  const rootfs = makeBusyboxRootfs(join(tempDir(t), 'rootfs'));
  const parent = `berth-shimkill-${process.pid}`;
  t.teardown(() => removeParent(parent));
  const ids = ['k1', 'k2'];
  const pids: number[] = [];
  const sub = d.daemon.ctx.events.subscribe(['topic=="/tasks/exit"']);
  for (const id of ids) {
    await container(c, id, ['/bin/sleep', '1000'], parent);
    pids.push((await c.call(TASKS, 'Create', { containerId: id, rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }] })).pid);
    await c.call(TASKS, 'Start', { containerId: id });
  }
  const shimPid = (await d.daemon.ctx.tasks.call(d.daemon.ctx.tasks.get('default', 'k1'), 'Connect', { id: 'k1' })).shimPid as number;
  process.kill(shimPid, 'SIGKILL');
  const exited: string[] = [];
  for await (const env of sub) {
    exited.push(env.topic);
    if (exited.length === ids.length) break;
  }
  t.deepEqual(exited, ['/tasks/exit', '/tasks/exit']);
  for (let i = 0; i < 50 && pids.some((p) => existsSync(`/proc/${p}`)); i++) await new Promise((r) => setTimeout(r, 50));
  t.false(pids.some((p) => existsSync(`/proc/${p}`)), 'the containers\' processes are gone');
  t.deepEqual((await c.call(TASKS, 'List', {})).tasks, []);
  t.deepEqual(cgroupDirs(parent), [], 'their cgroups are removed');
  t.is(mountCount(d.config.state), 0, 'their rootfs mounts are gone');
});

test.serial('200 create/start/wait/delete cycles, 8 at a time, leave nothing behind', async (t) => {
  const d = await startDaemon(t);
  const c = d.client('default');
  const rootfs = makeBusyboxRootfs(join(tempDir(t), 'rootfs'));
  const parent = `berth-cycles-${process.pid}`;
  t.teardown(() => removeParent(parent));
  const fdsBefore = readdirSync('/proc/self/fd').length;
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < 200; i = next++) {
      const id = `cy${i}`;
      await container(c, id, ['/bin/true'], parent);
      await c.call(TASKS, 'Create', { containerId: id, rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }] });
      const waiting = c.call(TASKS, 'Wait', { containerId: id });
      await c.call(TASKS, 'Start', { containerId: id });
      t.is((await waiting).exitStatus, 0);
      await c.call(TASKS, 'Delete', { containerId: id });
      await c.call(CONTAINERS, 'Delete', { id });
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: 8 }, worker));
  t.log(`200 cycles in ${Date.now() - started} ms`);
  t.deepEqual((await c.call(TASKS, 'List', {})).tasks, []);
  t.is(mountCount(d.config.state), 0, 'no rootfs mounts left');
  // This daemon's monitors (their exit files live in its bundles); other tests may run containers meanwhile.
  t.deepEqual(processesOf('berth-monitor', d.config.state), [], 'no monitors left');
  // A shim's child between fork and exec (a spare monitor being made) still shows the shim's command line.
  const matching = processesOf('containerd-shim-berth-v2', d.address);
  const ppid = (p: string) => { try { return readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]!; } catch { return ''; } };
  const shims = matching.filter((p) => !matching.includes(ppid(p)));
  t.is(shims.length, 1, `one shim served the whole namespace, even with 8 creates at once: ${shims.map((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ')).join(' | ')}`);
  t.true(cgroupDirs(parent).every((dir) => dir.includes('/berth-spare-')), `only the idle shim's spare stage is left: ${cgroupDirs(parent)}`);
  await d.daemon.ctx.tasks.stopIdleShims();
  for (let i = 0; i < 100 && processesOf('containerd-shim-berth-v2', d.address).length; i++) await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(cgroupDirs(parent), [], 'no cgroup directories left once the shim is gone');
  t.true(readdirSync('/proc/self/fd').length <= fdsBefore + 8, `daemon fds ${fdsBefore} -> ${readdirSync('/proc/self/fd').length}`);
  t.deepEqual(readdirSync(join(d.config.state, 'io.containerd.runtime.v2.task', 'default')), [], 'no bundles left');
});

test.serial("a shim that dies in the middle of a task's Create: the client is told the shim went away, and the rootfs mount and bundle go", async (t) => {
  const d = await startDaemon(t);
  const c = d.client('default');
  const rootfs = makeBusyboxRootfs(join(tempDir(t), 'rootfs'));
  const parent = `berth-shimdies-${process.pid}`;
  t.teardown(() => removeParent(parent));
  const spec = defaultSpec(['/bin/true']);
  spec.linux.cgroupsPath = `/${parent}/dies`;
  // Hooks of the runtime's namespace run from the shim: this one kills it after the rootfs is mounted.
  spec.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', 'kill -9 $PPID'] }] };
  await c.call(CONTAINERS, 'Create', { container: { id: 'dies', runtime: { name: 'io.containerd.berth.v2' }, spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from(JSON.stringify(spec)) } } });
  const err = await t.throwsAsync(c.call(TASKS, 'Create', { containerId: 'dies', rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }] }));
  t.regex(err!.message, /closed/, 'the error says the shim connection closed');
  t.notRegex(err!.message, /EBUSY/);
  t.is(mountCount(d.config.state), 0, 'the rootfs mount is gone');
  t.false(existsSync(join(d.config.state, 'io.containerd.runtime.v2.task', 'default', 'dies')), 'the bundle is gone');
  t.deepEqual((await c.call(TASKS, 'List', {})).tasks, []);
});
