// The shim's task API tests that every backend passes, by backend: test/shim/lifecycle.test.ts runs them for the
// backends on the host's kernel, test/vm/shim-backend.vmtest.ts for vm.
import test from 'ava';
import { readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle.ts';
import { shimHarness } from './helpers.ts';

// Serial: each test has FIFO readers whose open blocks a libuv thread until the container opens the other
// end; run together they would exhaust the thread pool.
export const uid = () => `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

/** `binary`: containerd's runc options binary_name (none: the fast path). */
export function backendSuite(backend: string, binary: string | undefined): void {
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

/** A container killed for memory raises /tasks/oom before its exit. */
export function oomSuite(backend: string, binary: string | undefined): void {
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
