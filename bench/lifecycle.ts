// Container lifecycle for /bin/true through the gRPC API (create container + task, start, wait, delete task
// and container), one client pointed at berthd (berth's shim, fast path) and at containerd (its runc shim,
// running runc, and crun when crun works on this host), the same requests (under a lease, as containerd's
// client makes them), interleaved. Each container's snapshot is prepared from the same imported image.
// With --metrics, a second berthd serving its metrics endpoint runs too: what counting every call costs.
// usage: npx tsx bench/lifecycle.ts [runs=50] [--metrics]   (as root, after npm run build)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../api/grpc-client.ts';
import { encodeMessage } from '../api/proto.ts';
import { runnableImage } from '../ctr-cli/image.ts';
import { defaultSpec, withImageConfig } from '../ctr-cli/spec.ts';
import { DIST, run, startBerthd, startContainerd } from './lib/daemons.ts';
import { median, printTable } from './lib/stats.ts';
import { freePort } from '../test/helpers/registry.ts';

const runs = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 50);
const withMetrics = process.argv.includes('--metrics');
const work = mkdtempSync(join(tmpdir(), 'berth-bench-life-'));
const archive = join(work, 'busybox.tar');
run(process.execPath, ['--import', 'tsx', join(DIST, '..', 'scripts', 'demo-image.ts'), archive, 'life']);
const berthd = await startBerthd(join(work, 'berthd'));
const metricsAddress = `127.0.0.1:${await freePort()}`;
const measured = withMetrics ? await startBerthd(join(work, 'berthd-metrics'), metricsAddress) : undefined;
const containerd = await startContainerd(join(work, 'containerd'));
const T = 'containerd.services.tasks.v1.Tasks';
const C = 'containerd.services.containers.v1.Containers';
const S = 'containerd.services.snapshots.v1.Snapshots';
let n = 0;
/** Per daemon, per step: where the time goes. */
const phases = new Map<string, Map<string, number[]>>();

async function lifecycle(c: ApiClient, runtime: string, image: Awaited<ReturnType<typeof runnableImage>>, label?: string, binary?: string): Promise<number> {
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
  await leased.call(C, 'Create', { container: { id, snapshotter: 'overlayfs', snapshotKey: id, runtime: { name: runtime, ...(binary ? { options: { typeUrl: 'containerd.runc.v1.Options', value: encodeMessage('containerd.runc.v1.Options', { binaryName: binary }) } } : {}) }, spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from(JSON.stringify(spec)) } } });
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
  if (measured) run(join(DIST, 'berth'), ['-a', measured.address, 'images', 'import', '--base-name', 'berth.local/busybox', archive]);
  const b = new ApiClient(berthd.address, { namespace: 'default' });
  const m = measured && new ApiClient(measured.address, { namespace: 'default' });
  const mImage = m && await runnableImage(m, 'berth.local/busybox:life');
  const c = new ApiClient(containerd.address, { namespace: 'default' });
  const bImage = await runnableImage(b, 'berth.local/busybox:life');
  const cImage = await runnableImage(c, 'berth.local/busybox:life');
  // crun 1.8 refuses a hybrid cgroup host unless hugetlb is a v1 hierarchy (scripts/setup.sh arranges that).
  let crun = true;
  try { await lifecycle(c, 'io.containerd.runc.v2', cImage, undefined, 'crun'); } catch (err) {
    crun = false;
    console.log(`containerd + crun skipped: ${(err as Error).message.split('\n')[0]}`);
  }
  const subjects: [string, () => Promise<number>][] = [
    ['containerd + runc shim (runc)', () => lifecycle(c, 'io.containerd.runc.v2', cImage, 'containerd+runc')],
    ...(crun ? [['containerd + runc shim (crun)', () => lifecycle(c, 'io.containerd.runc.v2', cImage, 'containerd+crun', 'crun')] as [string, () => Promise<number>]] : []),
    ['berthd + berth shim (fast)', () => lifecycle(b, 'io.containerd.berth.v2', bImage, 'berthd')],
    ...(m ? [['berthd + metrics endpoint', () => lifecycle(m, 'io.containerd.berth.v2', mImage!, 'berthd+metrics')] as [string, () => Promise<number>]] : []),
  ];
  const times = new Map<string, number[]>(subjects.map(([name]) => [name, []]));
  for (let i = 0; i < 3; i++) for (const [, once] of subjects) await once();
  phases.clear();
  // The second of two berthds run back to back pays for the first's idle work (its shim readying a spare
  // monitor): with --metrics every other round runs in reverse, so neither berthd always goes second.
  for (let i = 0; i < runs; i++) {
    for (const [name, once] of withMetrics && i % 2 ? [...subjects].reverse() : subjects) times.get(name)!.push(await once());
  }
  console.log(`container lifecycle through the gRPC API (/bin/true), ${runs} interleaved runs each`);
  printTable(times, crun ? 'containerd + runc shim (crun)' : 'containerd + runc shim (runc)');
  console.log('\nmedian ms per step:');
  const labels = [...phases.keys()];
  console.log(['step'.padEnd(30), ...labels.map((l) => l.padStart(15))].join('  '));
  for (const st of phases.get('berthd')!.keys()) console.log([st.padEnd(30), ...labels.map((l) => median(phases.get(l)!.get(st)!).toFixed(1).padStart(15))].join('  '));
  if (m) {
    const text = await (await fetch(`http://${metricsAddress}/v1/metrics`)).text();
    console.log(`\nberthd + metrics endpoint: ${/^grpc_server_handled_total\{[^}]*grpc_method="Start",grpc_code="OK"\} (\d+)/m.exec(text)?.[1]} Tasks.Start calls counted`);
    m.close();
  }
  b.close();
  c.close();
} finally {
  await measured?.stop();
  await berthd.stop();
  await containerd.stop();
  rmSync(work, { recursive: true, force: true });
}
