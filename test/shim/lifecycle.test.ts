// containerd-shim-berth-v2 through containerd's task API, with every backend behind the same tests: the fast
// path (no runtime CLI), berth-runc, runc, crun and runsc. (crun works on this hybrid-cgroup host because
// scripts/setup.sh makes hugetlb a v1 hierarchy.)
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle.ts';
import { REPO } from '../daemon/helpers.ts';
import { shimHarness } from './helpers.ts';

const BACKENDS: Record<string, string | undefined> = {
  fast: undefined,
  'berth-runc': join(REPO, 'dist', 'berth-runc.mjs'),
  runc: 'runc',
  crun: 'crun',
  runsc: 'runsc',
};

// Serial: each test has FIFO readers whose open blocks a libuv thread until the container opens the other
// end; run together they would exhaust the thread pool.
const uid = () => `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

for (const [backend, binary] of Object.entries(BACKENDS)) {
  test.serial(`${backend}: create, start, wait, delete; output and exit status; events in order`, async (t) => {
    const h = await shimHarness(t);
    // No runtime may touch the host's /dev/null (runsc chowns the stdio it is given to its sandbox user).
    const nullOwner = () => { const s = statSync('/dev/null'); return `${s.uid}:${s.gid}`; };
    const id = uid();
    const bundle = makeBundle(join(h.dir, id), {
      args: ['/bin/sh', '-c', 'echo "out $(hostname)"; echo err >&2; exit 7'],
      edit: (s) => { s.hostname = 'berth-box'; s.linux.cgroupsPath = `/${id}`; },
    });
    const client = await h.start(bundle.dir, id);
    const io = h.fifos('init');
    // Compared across Create alone (when runsc boots its sandbox), so that another file's runsc cannot be blamed.
    const ownerBefore = nullOwner();
    const created = await h.call(client, 'Create', { id, bundle: bundle.dir, stdout: io.stdout, stderr: io.stderr, options: h.options(binary) });
    t.is(nullOwner(), ownerBefore, "the host's /dev/null keeps its owner");
    t.true(created.pid > 0);
    t.is((await h.call(client, 'State', { id })).status, 'CREATED');
    // CVE-2019-5736: the waiting process runs from a sealed memfd, never a runtime binary on disk.
    if (backend === 'fast') t.regex(readlinkSync(`/proc/${created.pid}/exe`), /^\/memfd:berth-monitor \(deleted\)$/);
    const waiting = h.call(client, 'Wait', { id });
    const started = await h.call(client, 'Start', { id });
    t.is(started.pid, created.pid);
    const waited = await waiting;
    t.is(waited.exitStatus, 7);
    t.is(await io.output, 'out berth-box\n');
    t.is(await io.errors, 'err\n');
    const state = await h.call(client, 'State', { id });
    t.is(state.status, 'STOPPED');
    t.is(state.exitStatus, 7);
    const deleted = await h.call(client, 'Delete', { id });
    t.is(deleted.exitStatus, 7);
    await t.throwsAsync(h.call(client, 'State', { id }), { message: /not found/ });
    await new Promise((r) => setTimeout(r, 100));
    const topics = h.events.map((e) => e.topic);
    t.deepEqual(topics, ['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
    t.like(h.events[2]!.event, { containerId: id, id, pid: created.pid, exitStatus: 7 });
    t.true(h.events.every((e) => e.namespace === h.ns));
  });

  test.serial(`${backend}: exec, kill, pause and resume a running container`, async (t) => {
    const h = await shimHarness(t);
    const id = uid();
    const bundle = makeBundle(join(h.dir, id), { args: ['/bin/sleep', '1000'], edit: (s) => { s.linux.cgroupsPath = `/${id}`; } });
    const client = await h.start(bundle.dir, id);
    const io = h.fifos('init');
    await h.call(client, 'Create', { id, bundle: bundle.dir, stdout: io.stdout, stderr: io.stderr, options: h.options(binary) });
    await h.call(client, 'Start', { id });
    const ex = h.fifos('exec1');
    const spec = { ...bundle.spec.process, args: ['/bin/sh', '-c', 'echo exec says hi; exit 3'] };
    await h.call(client, 'Exec', { id, execId: 'e1', stdout: ex.stdout, stderr: ex.stderr, spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Process', value: Buffer.from(JSON.stringify(spec)) } });
    await t.throwsAsync(h.call(client, 'Exec', { id, execId: 'e1', spec: { typeUrl: 'x', value: Buffer.from('{}') } }), { message: /already exists/ });
    const execPid = (await h.call(client, 'Start', { id, execId: 'e1' })).pid;
    t.true(execPid > 0);
    t.is((await h.call(client, 'Wait', { id, execId: 'e1' })).exitStatus, 3);
    t.is(await ex.output, 'exec says hi\n');
    t.is((await h.call(client, 'Delete', { id, execId: 'e1' })).exitStatus, 3);
    const pids = (await h.call(client, 'Pids', { id })).processes.map((p: any) => p.pid);
    t.true(pids.length >= 1);
    await h.call(client, 'Pause', { id });
    t.is((await h.call(client, 'State', { id })).status, 'PAUSED');
    await h.call(client, 'Resume', { id });
    t.is((await h.call(client, 'State', { id })).status, 'RUNNING');
    await h.call(client, 'Kill', { id, signal: 9 });
    const waited = await h.call(client, 'Wait', { id });
    t.is(waited.exitStatus, 137);
    await h.call(client, 'Delete', { id });
    await new Promise((r) => setTimeout(r, 100));
    t.deepEqual(h.events.map((e) => e.topic), ['/tasks/create', '/tasks/start', '/tasks/exec-added', '/tasks/exec-started', '/tasks/exit',
      '/tasks/paused', '/tasks/resumed', '/tasks/exit', '/tasks/delete']);
  });
}

for (const [backend, binary] of [['fast', undefined], ['runc', 'runc'], ['crun', 'crun']] as const) {
  test.serial(`${backend}: a container killed for memory raises /tasks/oom before its exit`, async (t) => {
    const h = await shimHarness(t);
    const id = uid();
    const bundle = makeBundle(join(h.dir, id), {
      args: ['/bin/sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived'],
      edit: (s) => { s.linux.cgroupsPath = `/${id}`; s.linux.resources.memory = { limit: 32 * 1024 * 1024, swap: 32 * 1024 * 1024 }; },
    });
    const client = await h.start(bundle.dir, id);
    const io = h.fifos('init');
    await h.call(client, 'Create', { id, bundle: bundle.dir, stdout: io.stdout, stderr: io.stderr, options: h.options(binary) });
    const waiting = h.call(client, 'Wait', { id });
    await h.call(client, 'Start', { id });
    const waited = await waiting;
    t.not(await io.output, 'survived\n');
    t.true(waited.exitStatus === 137 || waited.exitStatus === 1, `exit ${waited.exitStatus}`);
    await h.call(client, 'Delete', { id });
    await new Promise((r) => setTimeout(r, 100));
    const topics = h.events.map((e) => e.topic);
    t.true(topics.includes('/tasks/oom'), topics.join(' '));
    t.true(topics.indexOf('/tasks/oom') < topics.lastIndexOf('/tasks/exit'));
    t.like(h.events.find((e) => e.topic === '/tasks/oom')!.event, { containerId: id });
  });
}

test.serial('file:// log URIs: stdout and stderr appended to one log file', async (t) => {
  const h = await shimHarness(t);
  const id = uid();
  const bundle = makeBundle(join(h.dir, id), { args: ['/bin/sh', '-c', 'echo to-out; echo to-err >&2'], edit: (s) => { s.linux.cgroupsPath = `/${id}`; } });
  const client = await h.start(bundle.dir, id);
  const log = join(h.dir, 'logs', 'c.log');
  await h.call(client, 'Create', { id, bundle: bundle.dir, stdout: `file://${log}`, stderr: `file://${log}` });
  t.is((await h.call(client, 'State', { id })).stdout, `file://${log}`, 'State reports the URI the client gave');
  const waiting = h.call(client, 'Wait', { id });
  await h.call(client, 'Start', { id });
  t.is((await waiting).exitStatus, 0);
  t.is(readFileSync(log, 'utf8'), 'to-out\nto-err\n');
  await h.call(client, 'Delete', { id });
});

test.serial('binary:// log URIs: the logger gets stdout on fd 3, stderr on fd 4, its arguments and CONTAINER_ID/NAMESPACE; for execs too', async (t) => {
  const h = await shimHarness(t);
  const id = uid();
  const out = join(h.dir, 'logged');
  mkdirSync(out);
  // A logger as containerd documents them: read fds 3 and 4, close fd 5 once ready.
  const logger = join(h.dir, 'logger.sh');
  writeFileSync(logger, '#!/bin/sh\nexec 5>&-\n' +
    'echo "$CONTAINER_NAMESPACE/$CONTAINER_ID $*" > "$2/$CONTAINER_ID.$4.args"\n' +
    'cat <&3 > "$2/$CONTAINER_ID.$4.out" & cat <&4 > "$2/$CONTAINER_ID.$4.err" & wait\n' +
    'touch "$2/$CONTAINER_ID.$4.done"\n');
  chmodSync(logger, 0o755);
  const bundle = makeBundle(join(h.dir, id), { args: ['/bin/sh', '-c', 'echo to-out; echo to-err >&2; sleep 30'], edit: (s) => { s.linux.cgroupsPath = `/${id}`; } });
  const client = await h.start(bundle.dir, id);
  const uri = (name: string) => `binary://${logger}?dir=${encodeURIComponent(out)}&name=${name}`;
  await h.call(client, 'Create', { id, bundle: bundle.dir, stdout: uri('init'), stderr: uri('init') });
  t.is((await h.call(client, 'State', { id })).stdout, uri('init'));
  await h.call(client, 'Start', { id });
  const execSpec = { ...bundle.spec.process, args: ['/bin/sh', '-c', 'echo exec-out; echo exec-err >&2; exit 3'] };
  await h.call(client, 'Exec', { id, execId: 'e1', stdout: uri('e1'), stderr: uri('e1'), spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Process', value: Buffer.from(JSON.stringify(execSpec)) } });
  const execWait = h.call(client, 'Wait', { id, execId: 'e1' });
  await h.call(client, 'Start', { id, execId: 'e1' });
  t.is((await execWait).exitStatus, 3);
  const waitFor = async (path: string) => { for (let i = 0; i < 100 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 50)); };
  await waitFor(join(out, `${id}.e1.done`));
  t.is(readFileSync(join(out, `${id}.e1.out`), 'utf8'), 'exec-out\n');
  t.is(readFileSync(join(out, `${id}.e1.err`), 'utf8'), 'exec-err\n');
  t.is(readFileSync(join(out, `${id}.init.args`), 'utf8'), `${h.ns}/${id} dir ${out} name init\n`);
  const waiting = h.call(client, 'Wait', { id });
  await h.call(client, 'Kill', { id, signal: 9 });
  await waiting;
  await waitFor(join(out, `${id}.init.done`));
  t.is(readFileSync(join(out, `${id}.init.out`), 'utf8'), 'to-out\n', 'the logger saw EOF when the container ended');
  t.is(readFileSync(join(out, `${id}.init.err`), 'utf8'), 'to-err\n');
  await h.call(client, 'Delete', { id });

  const id2 = uid();
  const b2 = makeBundle(join(h.dir, id2), { edit: (s) => { s.linux.cgroupsPath = `/${id2}`; } });
  await t.throwsAsync(h.call(client, 'Create', { id: id2, bundle: b2.dir, stdout: 'binary:///nonexistent/logger', stderr: 'binary:///nonexistent/logger' }),
    { message: /logging binary \/nonexistent\/logger: .*ENOENT/ });
  await t.throwsAsync(h.call(client, 'Create', { id: id2, bundle: b2.dir, stdout: 'binary://relative/logger' }), { message: /want binary:\/\/\/absolute\/path/ });
  t.is((await h.call(client, 'Connect', {})).shimPid > 0, true, 'the shim lives on');
  const monitors = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('berth-monitor') && l.includes(id2));
  t.deepEqual(monitors, [], 'nothing left running for the refused container');
});

test.serial('containers naming the same group (io.containerd.runc.v2.group, io.kubernetes.cri.sandbox-id) share one shim; others get their own', async (t) => {
  const h = await shimHarness(t);
  const bundles = [
    ['g-a', { 'io.containerd.runc.v2.group': 'group-1' }], ['g-b', { 'io.containerd.runc.v2.group': 'group-1' }],
    ['s-c', { 'io.kubernetes.cri.sandbox-id': 'sandbox-2' }], ['s-d', { 'io.kubernetes.cri.sandbox-id': 'sandbox-2' }], ['solo', {}],
  ] as const;
  const clients = new Map<string, Awaited<ReturnType<typeof h.start>>>();
  for (const [name, annotations] of bundles) {
    const id = `${name}-${uid()}`;
    const bundle = makeBundle(join(h.dir, id), { args: ['/bin/sh', '-c', `echo ${name}`], edit: (s) => { s.annotations = annotations; s.linux.cgroupsPath = `/${id}`; } });
    const client = await h.start(bundle.dir, id);
    clients.set(name, client);
    const io = h.fifos(id);
    await h.call(client, 'Create', { id, bundle: bundle.dir, stdout: io.stdout, stderr: io.stderr });
    const waiting = h.call(client, 'Wait', { id });
    await h.call(client, 'Start', { id });
    t.is((await waiting).exitStatus, 0);
    t.is(await io.output, `${name}\n`, `${name} ran through its shim`);
    await h.call(client, 'Delete', { id });
  }
  const pid = async (name: string) => (await h.call(clients.get(name)!, 'Connect', {})).shimPid;
  t.is(clients.get('g-a')!.address, clients.get('g-b')!.address);
  t.is(await pid('g-a'), await pid('g-b'), 'one shim process for group-1');
  t.is(clients.get('s-c')!.address, clients.get('s-d')!.address);
  t.is(await pid('s-c'), await pid('s-d'), 'one shim process for sandbox-2');
  const distinct = new Set(['g-a', 's-c', 'solo'].map((n) => clients.get(n)!.address));
  t.is(distinct.size, 3, 'different groups, and no group, get shims of their own');
});
