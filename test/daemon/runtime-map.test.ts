// A berthd config maps a runtime name to another shim, in containerd 1.6's runtimes shape: what lets an
// operator serve Docker's io.containerd.runc.v2 with berth's shim and its fast path.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfigFile } from '../../daemon/config.ts';
import { packAny, unpackAny } from '../../api/proto.ts';
import { defaultSpec } from '../helpers/bundle.ts';
import { makeBusyboxRootfs } from '../helpers/rootfs.ts';
import { tempDir } from '../helpers/tmp.ts';
import { REPO, startDaemon } from './helpers.ts';

const TABLE = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."io.containerd.runc.v2"]';

function configFile(t: Parameters<typeof tempDir>[0], text: string): string {
  const path = join(tempDir(t), 'config.toml');
  writeFileSync(path, text);
  return path;
}

test('config: runtime_type, runtime_path and runc options (Go or proto field names) are read; mistakes are refused naming the key', (t) => {
  const c = loadConfigFile(configFile(t, `${TABLE}\n  runtime_type = "io.containerd.berth.v2"\n  runtime_path = "/opt/berth/shim"\n` +
    `  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes."io.containerd.runc.v2".options]\n    BinaryName = "fast"\n    no_pivot_root = true\n`), true);
  t.deepEqual(c.runtimes, { 'io.containerd.runc.v2': { runtimeType: 'io.containerd.berth.v2', runtimePath: '/opt/berth/shim', options: { binaryName: 'fast', noPivotRoot: true } } });
  t.throws(() => loadConfigFile(configFile(t, `${TABLE}\n  runtime_path = "/x"\n`), true), { message: /runtime_type must name the runtime/ });
  t.throws(() => loadConfigFile(configFile(t, `${TABLE}\n  runtime_type = "io.containerd.berth.v2"\n  runtime_path = "shim"\n`), true), { message: /runtime_path must be an absolute path/ });
  t.throws(() => loadConfigFile(configFile(t, `${TABLE}\n  runtime_type = "io.containerd.berth.v2"\n  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes."io.containerd.runc.v2".options]\n    Binary = "x"\n`), true),
    { message: /options\.Binary is not a containerd\.runc\.v1\.Options field/ });
  t.throws(() => loadConfigFile(configFile(t, `${TABLE}\n  runtime_type = "io.containerd.berth.v2"\n  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes."io.containerd.runc.v2".options]\n    SystemdCgroup = "yes"\n`), true),
    { message: /options\.SystemdCgroup must be a boolean/ });
  t.throws(() => loadConfigFile(configFile(t, `${TABLE}\n  runtime_type = "io.containerd.berth.v2"\n  runtime_engine = "runc"\n`), true), { message: /does not know runtime_engine/ });
  t.deepEqual(loadConfigFile(configFile(t, 'root = "/r"\n'), true).runtimes, undefined);
});

test.serial('io.containerd.runc.v2 mapped to berth\'s shim with BinaryName "fast": a container asking for runc (as Docker does) runs on the fast path', async (t) => {
  const d = await startDaemon(t, { runtimes: { 'io.containerd.runc.v2': { runtimeType: 'io.containerd.berth.v2', options: { binaryName: 'fast' } } } });
  const c = d.client('default');
  const rootfs = makeBusyboxRootfs(join(tempDir(t), 'rootfs'));
  const id = `map${Date.now().toString(36)}`;
  const spec = defaultSpec(['/bin/sleep', '1000']);
  spec.linux.cgroupsPath = `/berth-runtime-map-test/${id}`;
  // What Docker 20.10 sends: runtime io.containerd.runc.v2 with runc options naming runc and its root.
  const options = packAny('containerd.runc.v1.Options', { binaryName: 'runc', root: join(tempDir(t), 'runtime-runc') });
  await c.call('containerd.services.containers.v1.Containers', 'Create', { container: { id, runtime: { name: 'io.containerd.runc.v2', options },
    spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from(JSON.stringify(spec)) } } });
  const TASKS = 'containerd.services.tasks.v1.Tasks';
  const { pid } = await c.call(TASKS, 'Create', { containerId: id, rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }] });
  await c.call(TASKS, 'Start', { containerId: id });
  // The fast path's init is watched by berth-monitor from its sealed memfd, under berth's shim (node).
  const monitor = ppidOf(pid);
  t.regex(readlinkSync(`/proc/${monitor}/exe`), /^\/memfd:berth-monitor/);
  t.regex(readFileSync(`/proc/${ppidOf(monitor)}/cmdline`, 'utf8'), /containerd-shim-berth-v2/);
  const [task] = (await c.call(TASKS, 'List', {})).tasks;
  t.like(task, { id, status: 'RUNNING' });
  await c.call(TASKS, 'Kill', { containerId: id, signal: 9 });
  t.is((await c.call(TASKS, 'Wait', { containerId: id })).exitStatus, 137);
  await c.call(TASKS, 'Delete', { containerId: id });
});

test.serial('io.containerd.runc.v2 mapped to berth\'s shim by runtime_path, without options: the client\'s runc options pick runc and its root; Metrics read runc\'s events', async (t) => {
  const shim = join(REPO, 'dist', 'containerd-shim-berth-v2.mjs');
  const d = await startDaemon(t, { runtimes: { 'io.containerd.runc.v2': { runtimeType: 'io.containerd.berth.v2', runtimePath: shim } } });
  const c = d.client('default');
  const rootfs = makeBusyboxRootfs(join(tempDir(t), 'rootfs'));
  const id = `mapr${Date.now().toString(36)}`;
  const spec = defaultSpec(['/bin/sleep', '1000']);
  spec.linux.cgroupsPath = `/berth-runtime-map-test/${id}`;
  spec.linux.resources = { memory: { limit: 32 * 1024 * 1024 } };
  const root = join(tempDir(t), 'runtime-runc');
  const options = packAny('containerd.runc.v1.Options', { binaryName: 'runc', root });
  await c.call('containerd.services.containers.v1.Containers', 'Create', { container: { id, runtime: { name: 'io.containerd.runc.v2', options },
    spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from(JSON.stringify(spec)) } } });
  const TASKS = 'containerd.services.tasks.v1.Tasks';
  await c.call(TASKS, 'Create', { containerId: id, rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }] });
  const { pid } = (await c.call(TASKS, 'Get', { containerId: id })).process;
  await c.call(TASKS, 'Start', { containerId: id });
  t.regex(readFileSync(`/proc/${ppidOf(ppidOf(pid))}/cmdline`, 'utf8'), /containerd-shim-berth-v2\.mjs/, 'berth\'s shim, from runtime_path');
  t.is(JSON.parse(execFileSync('runc', ['--root', root, 'state', id], { encoding: 'utf8' })).status, 'running');
  const [metric] = (await c.call(TASKS, 'Metrics', { filters: [`id==${id}`] })).metrics;
  t.is(unpackAny(metric.data).memory.usage.limit, 32 * 1024 * 1024);
  await c.call(TASKS, 'Kill', { containerId: id, signal: 9 });
  t.is((await c.call(TASKS, 'Wait', { containerId: id })).exitStatus, 137);
  await c.call(TASKS, 'Delete', { containerId: id });
});

function ppidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}
