// berth's ttrpc against the real Go peer: Debian's containerd-shim-runc-v2 (1.6.20) started as containerd
// starts it, driven through the whole task lifecycle by berth's client, its events received by berth's server.
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { createReadStream, openSync, closeSync, rmSync, existsSync, constants as fsc } from 'node:fs';
import { join } from 'node:path';
import { unpackAny } from '../../api/proto.ts';
import { TtrpcClient, NAMESPACE_KEY } from '../../api/ttrpc/client.ts';
import { TtrpcServer } from '../../api/ttrpc/server.ts';
import { makeBundle } from '../helpers/bundle.ts';
import { tempDir } from '../helpers/tmp.ts';

const TASK = 'containerd.task.v2.Task';

function readAll(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    createReadStream(path, { encoding: 'utf8' }).on('data', (d) => { out += d; }).on('end', () => resolve(out)).on('error', reject);
  });
}

test('containerd-shim-runc-v2: start, create, start, wait, delete, shutdown, with events in order', async (t) => {
  const dir = tempDir(t, 'runc-shim-');
  const ns = `berth-test-${process.pid}`;
  const id = `shim-${Date.now().toString(36)}`;
  const bundle = makeBundle(join(dir, id), { args: ['/bin/sh', '-c', 'echo hello from runc; exit 3'] });
  bundle.spec.linux.cgroupsPath = `/${id}`;
  (await import('../helpers/bundle.ts')).writeSpec(bundle);
  // The shim writes its log into a FIFO in the bundle, which must have a reader.
  execFileSync('mkfifo', [join(bundle.dir, 'log')]);
  const logFd = openSync(join(bundle.dir, 'log'), fsc.O_RDONLY | fsc.O_NONBLOCK);
  t.teardown(() => closeSync(logFd));

  const events: { topic: string; namespace: string; event: any }[] = [];
  const server = new TtrpcServer().register('containerd.services.events.ttrpc.v1.Events', {
    Forward: (req) => { events.push({ topic: req.envelope.topic, namespace: req.envelope.namespace, event: unpackAny(req.envelope.event) }); },
  });
  const eventsSock = join(dir, 'events.sock');
  await server.listen(eventsSock);
  t.teardown(() => server.close(100));

  const start = spawn('containerd-shim-runc-v2', ['-namespace', ns, '-address', join(dir, 'grpc.sock'), '-publish-binary', '/usr/bin/containerd', '-id', id, 'start'],
    { cwd: bundle.dir, env: { ...process.env, TTRPC_ADDRESS: eventsSock }, stdio: ['pipe', 'pipe', 'pipe'] });
  start.stdin.end();
  let address = '';
  let errText = '';
  start.stdout.on('data', (d) => { address += d; });
  start.stderr.on('data', (d) => { errText += d; });
  const code = await new Promise((resolve) => start.on('exit', resolve));
  t.is(code, 0, errText);
  address = address.trim();
  t.regex(address, /^unix:\/\/\/run\/containerd\/s\/[0-9a-f]{64}$/);
  t.teardown(() => rmSync(address.slice('unix://'.length), { force: true }));

  const client = await TtrpcClient.connect(address);
  t.teardown(async () => {
    // On failure: stop the shim and the container so nothing outlives the test.
    const connected = await client.call(TASK, 'Connect', { id }, { metadata: { [NAMESPACE_KEY]: ns } }).catch(() => undefined);
    await client.call(TASK, 'Delete', { id }, { metadata: { [NAMESPACE_KEY]: ns } }).catch(() => undefined);
    client.close();
    if (connected?.shimPid) { try { process.kill(connected.shimPid, 'SIGKILL'); } catch { /* gone */ } }
    const runcRoot = `/run/containerd/runc/${ns}`;
    try { execFileSync('runc', ['--root', runcRoot, 'delete', '--force', id], { stdio: 'ignore' }); } catch { /* deleted by the shim */ }
    rmSync(runcRoot, { recursive: true, force: true });
    for (const f of [join(dir, 'stdout'), join(dir, 'stderr')]) { try { closeSync(openSync(f, fsc.O_RDWR | fsc.O_NONBLOCK)); } catch { /* not made */ } }
  });
  const md = { metadata: { [NAMESPACE_KEY]: ns } };
  const stdout = join(dir, 'stdout');
  const stderr = join(dir, 'stderr');
  execFileSync('mkfifo', [stdout, stderr]);
  const output = readAll(stdout);
  const errors = readAll(stderr);
  const created = await client.call(TASK, 'Create', { id, bundle: bundle.dir, stdout, stderr, terminal: false }, md);
  t.true(created.pid > 0);
  const state = await client.call(TASK, 'State', { id }, md);
  t.is(state.status, 'CREATED');
  const waiting = client.call(TASK, 'Wait', { id }, md);
  const started = await client.call(TASK, 'Start', { id }, md);
  t.is(started.pid, created.pid);
  const waited = await waiting;
  t.is(waited.exitStatus, 3);
  t.is(await output, 'hello from runc\n');
  t.is(await errors, '');
  const deleted = await client.call(TASK, 'Delete', { id }, md);
  t.is(deleted.exitStatus, 3);
  const shimPid = (await client.call(TASK, 'Connect', { id }, md)).shimPid;
  t.true(shimPid > 0);
  await client.call(TASK, 'Shutdown', { id }, md).catch(() => undefined);
  await client.waitClosed();
  for (let i = 0; i < 100 && existsSync(`/proc/${shimPid}`); i++) await new Promise((r) => setTimeout(r, 20));
  t.false(existsSync(`/proc/${shimPid}`), 'the shim exited after Shutdown');

  const topics = events.map((e) => e.topic);
  t.deepEqual(topics.filter((x) => ['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete'].includes(x)), ['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
  t.true(events.every((e) => e.namespace === ns));
  const exit = events.find((e) => e.topic === '/tasks/exit')!.event;
  t.like(exit, { containerId: id, id, pid: created.pid, exitStatus: 3 });
  t.is(events.find((e) => e.topic === '/tasks/create')!.event.bundle, bundle.dir);
});
