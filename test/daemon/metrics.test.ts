// berthd's Prometheus endpoint (`[metrics] address`, GET /v1/metrics as containerd serves it): running
// containers' cgroup metrics from their shims (berth's and containerd's runc shim), gRPC calls counted by
// method and code, pull and unpack bytes; only loopback addresses are served; a stopped shim does not hold a
// scrape up.
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { ApiClient } from '../../api/grpc-client.ts';
import { Berthd } from '../../daemon/server.ts';
import { defaultSpec } from '../helpers/bundle.ts';
import { busyboxImage } from '../helpers/image.ts';
import { freePort, registryWithImage } from '../helpers/registry.ts';
import { makeBusyboxRootfs } from '../helpers/rootfs.ts';
import { tempDir } from '../helpers/tmp.ts';
import { startDaemon, startDaemonProcess, testConfig } from './helpers.ts';

const CONTAINERS = 'containerd.services.containers.v1.Containers';
const TASKS = 'containerd.services.tasks.v1.Tasks';
const VERSION = 'containerd.services.version.v1.Version';
const TRANSFER = 'berth.services.transfer.v1.Transfer';

interface Sample { name: string; labels: Record<string, string>; value: number }

async function scrape(address: string, path = '/v1/metrics'): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(`http://${address}${path}`);
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample of `name` whose labels include `labels`. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0]?.value;
}

async function runSleeper(t: ExecutionContext, c: ApiClient, id: string, runtime = 'io.containerd.berth.v2'): Promise<number> {
  const spec = defaultSpec(['/bin/sleep', '1000']);
  spec.linux.cgroupsPath = `/berth-metrics-test/${id}`;
  spec.linux.resources = { ...spec.linux.resources, memory: { limit: 64 << 20 }, pids: { limit: 42 } };
  await c.call(CONTAINERS, 'Create', { container: { id, runtime: { name: runtime }, spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from(JSON.stringify(spec)) } } });
  const rootfs = makeBusyboxRootfs(join(tempDir(t), 'rootfs'));
  const { pid } = await c.call(TASKS, 'Create', { containerId: id, rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }] });
  t.teardown(async () => {
    await c.call(TASKS, 'Kill', { containerId: id, signal: 9 }).catch(() => undefined);
    await c.call(TASKS, 'Wait', { containerId: id }).catch(() => undefined);
    await c.call(TASKS, 'Delete', { containerId: id }).catch(() => undefined);
  });
  await c.call(TASKS, 'Start', { containerId: id });
  return pid;
}

test.serial('/v1/metrics reports running containers (berth\'s shim and containerd\'s runc shim), gRPC calls by method and code, and pull and unpack bytes', async (t) => {
  const metricsAddress = `127.0.0.1:${await freePort()}`;
  const d = await startDaemon(t, { metricsAddress });
  const c = d.client('default');

  const image = await busyboxImage({ tag: 'metrics' });
  const { ref } = await registryWithImage(t, image, 'lib/metrics:1');
  for await (const _ of c.stream(TRANSFER, 'Pull', { ref })) { /* progress */ }
  const m = image.manifests[0]!;
  const layerBytes = m.layers.reduce((n, l) => n + l.descriptor.size, 0);

  const id = `metrics-${Date.now().toString(36)}`;
  await runSleeper(t, c, id);
  const viaRunc = `${id}-runc`;
  await runSleeper(t, c, viaRunc, 'io.containerd.runc.v2');
  for (let i = 0; i < 5; i++) await c.call(VERSION, 'Version', {});
  await t.throwsAsync(c.call(TASKS, 'Get', { containerId: 'no-such-task' }), { message: /not found/ });
  // A Wait the client gives up on counts as Canceled.
  const waiting = c.open(TASKS, 'Wait');
  waiting.send({ containerId: id });
  waiting.end();
  await new Promise((resolve) => setTimeout(resolve, 200));
  waiting.cancel();
  const wait = { grpc_service: TASKS, grpc_method: 'Wait', grpc_code: 'Canceled' };
  for (let i = 0; i < 100 && value(parse((await scrape(metricsAddress)).text), 'grpc_server_handled_total', wait) !== 1; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  const res = await scrape(metricsAddress);
  t.is(res.status, 200);
  t.regex(res.type ?? '', /^text\/plain; version=0\.0\.4/);
  const s = parse(res.text);

  const ctr = { container_id: id, namespace: 'default' };
  t.true(value(s, 'container_memory_usage_usage_bytes', ctr)! > 0, 'memory in use');
  t.is(value(s, 'container_memory_usage_limit_bytes', ctr), 64 << 20);
  t.is(value(s, 'container_pids_current', ctr), 1, 'one process: sleep');
  t.is(value(s, 'container_pids_limit', ctr), 42);
  t.true(value(s, 'container_cpu_total_nanoseconds', ctr)! > 0);
  const runc = { container_id: viaRunc, namespace: 'default' };
  t.true(value(s, 'container_memory_usage_usage_bytes', runc)! > 0, 'from containerd\'s runc shim too');
  t.is(value(s, 'container_pids_current', runc), 1);
  t.is(value(s, 'container_pids_limit', runc), 42);
  t.is(value(s, 'berthd_tasks', { namespace: 'default', state: 'running' }), 2);
  t.is(value(s, 'berthd_shims', { runtime: 'io.containerd.berth.v2' }), 1);
  t.is(value(s, 'berthd_shims', { runtime: 'io.containerd.runc.v2' }), 1);

  const version = { grpc_service: VERSION, grpc_method: 'Version', grpc_type: 'unary' };
  t.is(value(s, 'grpc_server_handled_total', { ...version, grpc_code: 'OK' }), 5, 'every Version call, counted once');
  t.is(value(s, 'grpc_server_handling_seconds_count', version), 5);
  t.is(value(s, 'grpc_server_handling_seconds_bucket', { ...version, le: '+Inf' }), 5);
  t.true(value(s, 'grpc_server_handling_seconds_sum', version)! > 0);
  t.is(value(s, 'grpc_server_handled_total', { grpc_service: TASKS, grpc_method: 'Get', grpc_code: 'NotFound' }), 1);
  t.is(value(s, 'grpc_server_handled_total', wait), 1, 'the abandoned Wait');
  t.is(value(s, 'grpc_server_handled_total', { grpc_service: TASKS, grpc_method: 'Wait', grpc_code: 'OK' }), 0);
  t.is(value(s, 'grpc_server_handled_total', { grpc_service: TRANSFER, grpc_method: 'Pull', grpc_type: 'server_stream', grpc_code: 'OK' }), 1);

  t.is(value(s, 'berthd_pull_bytes_total'), m.descriptor.size + m.config.descriptor.size + layerBytes, 'manifest, config and layers, fetched once');
  t.is(value(s, 'berthd_unpack_bytes_total'), layerBytes);
  t.is(value(s, 'berthd_pull_duration_seconds_count', { result: 'ok' }), 1);
  t.is(value(s, 'berthd_unpack_duration_seconds_count', { result: 'ok' }), 1);

  t.is((await scrape(metricsAddress, '/metrics')).status, 404);
  t.is((await scrape(metricsAddress, '/')).status, 404);
});

test.serial('a scrape does not wait on a stopped shim: its task is reported in state unknown', async (t) => {
  const metricsAddress = `127.0.0.1:${await freePort()}`;
  const d = await startDaemon(t, { metricsAddress });
  const c = d.client('default');
  const id = `stuck-${Date.now().toString(36)}`;
  const pid = await runSleeper(t, c, id);
  const shim = Number(execFileSync('ps', ['-o', 'ppid=', '-p', String(Number(execFileSync('ps', ['-o', 'ppid=', '-p', String(pid)]).toString()))]).toString());
  process.kill(shim, 'SIGSTOP');
  t.teardown(() => process.kill(shim, 'SIGCONT'));
  const started = Date.now();
  const s = parse((await scrape(metricsAddress)).text);
  t.true(Date.now() - started < 5000, `answered in ${Date.now() - started} ms`);
  t.is(value(s, 'berthd_tasks', { namespace: 'default', state: 'unknown' }), 1);
  t.is(value(s, 'container_pids_current', { container_id: id }), undefined);
  t.is(value(s, 'berthd_task_stats_failures_total'), 1);
  process.kill(shim, 'SIGCONT');
  const after = parse((await scrape(metricsAddress)).text);
  t.is(value(after, 'container_pids_current', { container_id: id }), 1, 'reported again once the shim answers');
});

test('a non-loopback metrics address is refused at start, naming it', async (t) => {
  const config = join(tempDir(t), 'config.toml');
  writeFileSync(config, '[metrics]\n  address = "0.0.0.0:1338"\n');
  const err = await t.throwsAsync(startDaemonProcess(t, {}, ['-c', config]));
  t.regex(err!.message, /berthd exited 1: berthd: \[metrics\] address "0\.0\.0\.0:1338" is not a loopback address/);
});

test('a metrics address already in use fails the start, naming it', async (t) => {
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => busy.close());
  const address = `127.0.0.1:${(busy.address() as AddressInfo).port}`;
  const config = join(tempDir(t), 'config.toml');
  writeFileSync(config, `[metrics]\n  address = "${address}"\n`);
  const err = await t.throwsAsync(startDaemonProcess(t, {}, ['-c', config]));
  t.true(err!.message.includes(`berthd: [metrics] address ${address}: cannot listen: listen EADDRINUSE`), err!.message);
});

test('a malformed metrics address is refused at start', async (t) => {
  for (const address of ['127.0.0.1', '127.0.0.1:http', 'metrics.example:1338', '[127.0.0.1]:80']) {
    const err = await t.throwsAsync(Berthd.start(testConfig(t, { metricsAddress: address })));
    t.true(err!.message.includes(`[metrics] address "${address}"`), err!.message);
  }
});
