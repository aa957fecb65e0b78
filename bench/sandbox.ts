// Sandboxed runtimes side by side, one run: the /bin/true container lifecycle through berthd's gRPC API (lease,
// snapshot, container, task create/start/wait/delete) on the fast path, in gVisor (runsc), in a VM booted for it
// (vm cold: boot + agent) and in a VM from the shim's warm pool (vm warm); then the memory each idle sleeping
// container adds (PSS of everything it brings: QEMU, virtiofsd, runsc's sandbox and gofer, monitors) for vm and
// runsc. Two berthds, each running a namespace's containers in one shim: the warm one keeps a VM booted ahead
// (the default pool), the cold one none (BERTH_VM_POOL=0).
// usage: npx tsx bench/sandbox.ts [runs=10]   (as root, after npm run build)
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../api/grpc-client.ts';
import { encodeMessage } from '../api/proto.ts';
import { runnableImage } from '../ctr-cli/image.ts';
import { defaultSpec, withImageConfig } from '../ctr-cli/spec.ts';
import { DIST, memoryOf, run, startBerthd, type Daemon } from './lib/daemons.ts';
import { median, printTable } from './lib/stats.ts';

const runs = Number(process.argv[2] ?? 10);
const IDLE = 3;
const work = mkdtempSync(join(tmpdir(), 'berth-bench-sbx-'));
const archive = join(work, 'busybox.tar');
run(process.execPath, ['--import', 'tsx', join(DIST, '..', 'scripts', 'demo-image.ts'), archive, 'sbx']);
const warmd = await startBerthd(join(work, 'warm'));
process.env.BERTH_VM_POOL = '0';
const coldd = await startBerthd(join(work, 'cold'));
delete process.env.BERTH_VM_POOL;
const T = 'containerd.services.tasks.v1.Tasks';
const C = 'containerd.services.containers.v1.Containers';
const S = 'containerd.services.snapshots.v1.Snapshots';
const RUNTIME = 'io.containerd.berth.v2';
let n = 0;

type Image = Awaited<ReturnType<typeof runnableImage>>;

/** Creates a container and its task; returns what removes them. */
async function createTask(c: ApiClient, image: Image, binary: string | undefined, args: string[]): Promise<{ id: string; remove(): Promise<void> }> {
  const id = `s${n++}`;
  const spec = defaultSpec('default', id);
  withImageConfig(spec, image.config, args);
  const { lease } = await c.call('containerd.services.leases.v1.Leases', 'Create', { id: `lease-${id}` });
  const leased = c.with({ lease: lease.id });
  const { mounts } = await leased.call(S, 'Prepare', { snapshotter: 'overlayfs', key: id, parent: image.chainId });
  const options = binary ? { options: { typeUrl: 'containerd.runc.v1.Options', value: encodeMessage('containerd.runc.v1.Options', { binaryName: binary }) } } : {};
  await leased.call(C, 'Create', { container: { id, snapshotter: 'overlayfs', snapshotKey: id, runtime: { name: RUNTIME, ...options }, spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from(JSON.stringify(spec)) } } });
  await c.call('containerd.services.leases.v1.Leases', 'Delete', { id: lease.id });
  await c.call(T, 'Create', { containerId: id, rootfs: mounts });
  return {
    id,
    async remove() {
      await c.call(T, 'Delete', { containerId: id });
      await c.call(S, 'Remove', { snapshotter: 'overlayfs', key: id });
      await c.call(C, 'Delete', { id });
    },
  };
}

async function lifecycle(c: ApiClient, image: Image, binary?: string): Promise<number> {
  const start = process.hrtime.bigint();
  const task = await createTask(c, image, binary, ['/bin/true']);
  const waiting = c.call(T, 'Wait', { containerId: task.id });
  await c.call(T, 'Start', { containerId: task.id });
  const { exitStatus } = await waiting;
  if (exitStatus) throw new Error(`/bin/true exited ${exitStatus}`);
  await task.remove();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** The warm berthd's shim has a booted VM waiting (its pool: one sandbox directory and nothing else running). */
const vmRoot = (name: string) => join(work, name, 'state', 'vm', 'default');

async function poolReady(): Promise<void> {
  const root = vmRoot('warm');
  for (let i = 0; i < 600; i++) {
    let ready: string[];
    // The shim makes its pool at its first vm container (the warm-up run).
    try { ready = readdirSync(root).filter((s) => s.startsWith('sandbox-')); } catch { return; }
    if (ready.length === 1 && ready.every((s) => { try { return !!readFileSync(join(root, s, 'sandbox.json')); } catch { return false; } })) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the warm pool did not refill within 60 s');
}

/** Total PSS (MiB) of the processes whose command line names the bench's directory (daemons left out). */
function pssOfBench(daemons: Daemon[]): number {
  const skip = new Set(daemons.map((d) => d.child.pid));
  let total = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number)) {
    if (skip.has(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(work)) continue;
      total += memoryOf(pid).pss;
    } catch { /* gone */ }
  }
  return total;
}

/** What IDLE sleeping containers add, per container. */
async function idleMemory(c: ApiClient, image: Image, binary: string, daemons: Daemon[]): Promise<number> {
  const before = pssOfBench(daemons);
  const tasks = [];
  for (let i = 0; i < IDLE; i++) {
    const task = await createTask(c, image, binary, ['/bin/sleep', '1000']);
    await c.call(T, 'Start', { containerId: task.id });
    tasks.push(task);
  }
  await new Promise((r) => setTimeout(r, 3000)); // let the guests settle after boot
  const added = (pssOfBench(daemons) - before) / IDLE;
  for (const task of tasks) {
    await c.call(T, 'Kill', { containerId: task.id, signal: 9, all: true });
    await c.call(T, 'Wait', { containerId: task.id });
    await task.remove();
  }
  return added;
}

try {
  for (const d of [warmd, coldd]) run(join(DIST, 'berth'), ['-a', d.address, 'images', 'import', '--base-name', 'berth.local/busybox', archive]);
  const warm = new ApiClient(warmd.address, { namespace: 'default' });
  const cold = new ApiClient(coldd.address, { namespace: 'default' });
  const warmImage = await runnableImage(warm, 'berth.local/busybox:sbx');
  const coldImage = await runnableImage(cold, 'berth.local/busybox:sbx');
  const subjects: [string, () => Promise<number>][] = [
    ['fast path', () => lifecycle(warm, warmImage)],
    ['runsc (gVisor)', () => lifecycle(warm, warmImage, 'runsc')],
    ['vm cold (boot + agent)', () => lifecycle(cold, coldImage, 'vm')],
    ['vm warm (pooled VM)', async () => { await poolReady(); return lifecycle(warm, warmImage, 'vm'); }],
  ];
  const times = new Map<string, number[]>(subjects.map(([name]) => [name, []]));
  for (const [, once] of subjects) await once();
  for (let i = 0; i < runs; i++) for (const [name, once] of subjects) times.get(name)!.push(await once());
  console.log(`/bin/true through the gRPC API, ${runs} interleaved runs each`);
  printTable(times, 'runsc (gVisor)');
  await poolReady();
  const accel = readdirSync(vmRoot('warm')).map((s) => JSON.parse(readFileSync(join(vmRoot('warm'), s, 'sandbox.json'), 'utf8')))[0];
  console.log(`VMs: accelerator ${accel?.accel}, pooled VM booted to agent in ${accel?.bootMs} ms`);
  console.log(`\nmemory added per idle sleeping container (PSS, ${IDLE} containers):`);
  console.log(`  vm      ${(await idleMemory(cold, coldImage, 'vm', [warmd, coldd])).toFixed(1)} MiB`);
  console.log(`  runsc   ${(await idleMemory(cold, coldImage, 'runsc', [warmd, coldd])).toFixed(1)} MiB`);
  console.log(`median vm warm / runsc: ${(median(times.get('vm warm (pooled VM)')!) / median(times.get('runsc (gVisor)')!)).toFixed(2)}`);
  warm.close();
  cold.close();
} finally {
  await warmd.stop();
  await coldd.stop();
  rmSync(work, { recursive: true, force: true });
}
