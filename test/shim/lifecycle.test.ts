// containerd-shim-berth-v2 through containerd's task API, with every backend behind the same tests
// (backend-suite.ts): the fast path (no runtime CLI), berth-runc, runc, crun and runsc; vm's run in
// test/vm/shim-backend.vmtest.ts. (crun works on this hybrid-cgroup host because scripts/setup.sh makes hugetlb a
// v1 hierarchy.)
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle.ts';
import { REPO } from '../daemon/helpers.ts';
import { backendSuite, oomSuite, uid } from './backend-suite.ts';
import { shimHarness } from './helpers.ts';

const BACKENDS: Record<string, string | undefined> = {
  fast: undefined,
  'berth-runc': join(REPO, 'dist', 'berth-runc.mjs'),
  runc: 'runc',
  crun: 'crun',
  runsc: 'runsc',
};


for (const [backend, binary] of Object.entries(BACKENDS)) backendSuite(backend, binary);

for (const [backend, binary] of [['fast', undefined], ['runc', 'runc'], ['crun', 'crun']] as const) oomSuite(backend, binary);

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
