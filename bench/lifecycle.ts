// Container lifecycle for /bin/true through the gRPC API (create container + task, start, wait, delete task
// and container), one client pointed at berthd (berth's shim, fast path) and at containerd (runc shim), the
// same requests (under a lease, as containerd's client makes them), interleaved. The snapshot for each container is prepared from the same imported image.
// usage: npx tsx bench/lifecycle.ts [runs=50]   (as root, after npm run build)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../api/grpc-client.ts';
import { runnableImage } from '../ctr-cli/image.ts';
import { defaultSpec, withImageConfig } from '../ctr-cli/spec.ts';
import { DIST, run, startBerthd, startContainerd } from './lib/daemons.ts';
import { printTable } from './lib/stats.ts';

const runs = Number(process.argv[2] ?? 50);
const work = mkdtempSync(join(tmpdir(), 'berth-bench-life-'));
const archive = join(work, 'busybox.tar');
run(process.execPath, ['--import', 'tsx', join(DIST, '..', 'scripts', 'demo-image.ts'), archive, 'life']);
const berthd = await startBerthd(join(work, 'berthd'));
const containerd = await startContainerd(join(work, 'containerd'));
const T = 'containerd.services.tasks.v1.Tasks';
const C = 'containerd.services.containers.v1.Containers';
const S = 'containerd.services.snapshots.v1.Snapshots';
let n = 0;
/** Per daemon, per step: where the time goes. */
const phases = new Map<string, Map<string, number[]>>();

async function lifecycle(c: ApiClient, runtime: string, image: Awaited<ReturnType<typeof runnableImage>>, label?: string): Promise<number> {
  const id = `l${n++}`;
  const start = process.hrtime.bigint();
  let last = start;
  const step = (name: string) => {
    const now = process.hrtime.bigint();
    if (label) {
      const byStep = phases.get(label) ?? phases.set(label, new Map()).get(label)!;
      (byStep.get(name) ?? byStep.set(name, []).get(name)!).push(Number(now - last) / 1e6);
    }
    last = now;
  };
  const spec = defaultSpec('default', id);
  withImageConfig(spec, image.config, ['/bin/true']);
  // As containerd's clients do: a lease holds the new snapshot until the container references it.
  const { lease } = await c.call('containerd.services.leases.v1.Leases', 'Create', { id: `lease-${id}` });
  const leased = c.with({ lease: lease.id });
  const { mounts } = await leased.call(S, 'Prepare', { snapshotter: 'overlayfs', key: id, parent: image.chainId });
  await leased.call(C, 'Create', { container: { id, snapshotter: 'overlayfs', snapshotKey: id, runtime: { name: runtime }, spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from(JSON.stringify(spec)) } } });
  await c.call('containerd.services.leases.v1.Leases', 'Delete', { id: lease.id });
  step('lease, snapshot, container');
  await c.call(T, 'Create', { containerId: id, rootfs: mounts });
  step('Tasks.Create');
  const waiting = c.call(T, 'Wait', { containerId: id });
  await c.call(T, 'Start', { containerId: id });
  step('Tasks.Start');
  await waiting;
  step('until exit');
  await c.call(T, 'Delete', { containerId: id });
  step('Tasks.Delete');
  await c.call(S, 'Remove', { snapshotter: 'overlayfs', key: id });
  await c.call(C, 'Delete', { id });
  step('snapshot, container removal');
  return Number(process.hrtime.bigint() - start) / 1e6;
}

try {
  run(join(DIST, 'berth'), ['-a', berthd.address, 'images', 'import', '--base-name', 'berth.local/busybox', archive]);
  run('ctr', ['-a', containerd.address, 'images', 'import', '--base-name', 'berth.local/busybox', archive]);
  const b = new ApiClient(berthd.address, { namespace: 'default' });
  const c = new ApiClient(containerd.address, { namespace: 'default' });
  const bImage = await runnableImage(b, 'berth.local/busybox:life');
  const cImage = await runnableImage(c, 'berth.local/busybox:life');
  const times = new Map<string, number[]>([['containerd + runc shim', []], ['berthd + berth shim (fast)', []]]);
  for (let i = 0; i < 3; i++) { await lifecycle(c, 'io.containerd.runc.v2', cImage); await lifecycle(b, 'io.containerd.berth.v2', bImage); }
  for (let i = 0; i < runs; i++) {
    times.get('containerd + runc shim')!.push(await lifecycle(c, 'io.containerd.runc.v2', cImage, 'containerd'));
    times.get('berthd + berth shim (fast)')!.push(await lifecycle(b, 'io.containerd.berth.v2', bImage, 'berthd'));
  }
  console.log(`container lifecycle through the gRPC API (/bin/true), ${runs} interleaved runs each`);
  printTable(times, 'containerd + runc shim');
  console.log('\nmedian ms per step:');
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const steps = [...phases.get('berthd')!.keys()];
  console.log(['step'.padEnd(30), 'containerd', 'berthd'].join('  '));
  for (const st of steps) console.log([st.padEnd(30), median(phases.get('containerd')!.get(st)!).toFixed(1).padStart(10), median(phases.get('berthd')!.get(st)!).toFixed(1).padStart(6)].join('  '));
  b.close();
  c.close();
} finally {
  await berthd.stop();
  await containerd.stop();
  rmSync(work, { recursive: true, force: true });
}
