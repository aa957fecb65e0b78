// Seccomp user notification (SCMP_ACT_NOTIFY): the listener fd reaches the agent at linux.seccomp.listenerPath
// with the container process state, and what the agent answers is what the container sees; for the init and
// for exec'd processes, through berth-runc and through the shim's fast path. Also the profiles refused or
// ignored as runc does.
import test from 'ava';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Json, makeBundle } from '../helpers/bundle.ts';
import { startAgent } from '../helpers/seccomp.ts';
import { tempDir } from '../helpers/tmp.ts';
import { berthRunc, cgroupDirsOf, runtimeRoot, uniqueId } from '../runtime/helpers.ts';
import { shimHarness } from '../shim/helpers.ts';

const MKDIR = 83;
const MKDIRAT = 258;
const EDQUOT = 122;

/** As runc's seccomp-notify.bats writes it: mkdir notified, everything else allowed. */
const notifyProfile = (listenerPath: string, names: string[] = ['mkdir', 'mkdirat']): Json => ({
  defaultAction: 'SCMP_ACT_ALLOW', listenerPath, listenerMetadata: 'bar',
  architectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32', 'SCMP_ARCH_X86_64'],
  syscalls: [{ names, action: 'SCMP_ACT_NOTIFY' }],
});

const tryMkdir = (dir: string) => `mkdir ${dir}; echo rc=$?; if [ -d ${dir} ]; then echo made; else echo not-made; fi`;

for (const nnp of [false, true]) {
  test(`the agent gets the listener fd and the container's state; its errno is what mkdir fails with (noNewPrivileges ${nnp})`, async (t) => {
    const agent = await startAgent(t, `errno:${EDQUOT}`);
    const root = runtimeRoot(t);
    const id = uniqueId('ntf');
    const bundle = makeBundle(join(tempDir(t), 'b'), {
      args: ['/bin/sh', '-c', tryMkdir('/dev/shm/x')],
      edit: (s) => { s.process.noNewPrivileges = nnp; s.linux.seccomp = notifyProfile(agent.socket); },
    });
    const r = berthRunc(root, ['run', '--bundle', bundle.dir, id]);
    t.is(r.status, 0, r.stderr);
    t.is(r.stdout, 'rc=1\nnot-made\n');
    t.regex(r.stderr, /mkdir: can't create directory '\/dev\/shm\/x': Disk quota exceeded/);
    const [state, ...more] = agent.states();
    t.deepEqual(more, []);
    t.like(state, { fds: ['seccompFd'], metadata: 'bar', state: { id, status: 'creating', bundle: bundle.dir } });
    t.is(state.pid, state.state.pid, 'the init is the process the filter is for');
    t.true(state.pid > 0);
    t.true(agent.notifications().length >= 1);
    t.true(agent.notifications().every((n) => n.nr === MKDIR || n.nr === MKDIRAT));
  });
}

test('the agent may answer success without the call running: mkdir returns 0 and makes nothing', async (t) => {
  const agent = await startAgent(t, 'value:0');
  const bundle = makeBundle(join(tempDir(t), 'b'), { args: ['/bin/sh', '-c', tryMkdir('/dev/shm/x')], edit: (s) => { s.linux.seccomp = notifyProfile(agent.socket); } });
  const r = berthRunc(runtimeRoot(t), ['run', '--bundle', bundle.dir, uniqueId('ntf')]);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'rc=0\nnot-made\n');
});

test('an exec\'d process gets the container\'s filter; the agent gets its own listener fd and state', async (t) => {
  const agent = await startAgent(t, `errno:${EDQUOT}`);
  const root = runtimeRoot(t);
  const id = uniqueId('ntfx');
  const bundle = makeBundle(join(tempDir(t), 'b'), { args: ['/bin/sleep', '100'], edit: (s) => { s.linux.seccomp = notifyProfile(agent.socket); } });
  t.is(berthRunc(root, ['run', '-d', '--bundle', bundle.dir, id]).status, 0);
  const r = berthRunc(root, ['exec', id, '/bin/sh', '-c', tryMkdir('/dev/shm/y')]);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'rc=1\nnot-made\n');
  t.regex(r.stderr, /Disk quota exceeded/);
  const states = agent.states();
  t.is(states.length, 2);
  t.like(states[1], { fds: ['seccompFd'], metadata: 'bar', state: { id, status: 'running', pid: states[0].pid } });
  t.not(states[1].pid, states[0].pid, 'the exec\'d process, not the init');
});

test('an agent that closes its listener makes notified syscalls fail with ENOSYS, not hang', async (t) => {
  const agent = await startAgent(t, 'drop');
  const bundle = makeBundle(join(tempDir(t), 'b'), { args: ['/bin/sh', '-c', tryMkdir('/dev/shm/x')], edit: (s) => { s.linux.seccomp = notifyProfile(agent.socket); } });
  const r = berthRunc(runtimeRoot(t), ['run', '--bundle', bundle.dir, uniqueId('ntf')]);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'rc=1\nnot-made\n');
  t.regex(r.stderr, /Function not implemented/);
});

test('a listenerPath without SCMP_ACT_NOTIFY rules is ignored (no agent is asked)', (t) => {
  const bundle = makeBundle(join(tempDir(t), 'b'), {
    args: ['/bin/sh', '-c', tryMkdir('/dev/shm/x')],
    edit: (s) => { s.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: join(tempDir(t), 'nobody.sock'), listenerMetadata: 'bar' }; },
  });
  const r = berthRunc(runtimeRoot(t), ['run', '--bundle', bundle.dir, uniqueId('ntf')]);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'rc=0\nmade\n', r.stderr);
});

const refused: [string, (socket: string) => Json, RegExp][] = [
  ['no agent listening', (socket) => notifyProfile(join(socket, '..', 'nobody.sock')), /linux\.seccomp\.listenerPath .*nobody\.sock: failed to connect with seccomp agent: No such file or directory/],
  ['SCMP_ACT_NOTIFY without a listenerPath', (socket) => ({ ...(notifyProfile(socket) as object), listenerPath: '' }), /linux\.seccomp\.listenerPath: required by SCMP_ACT_NOTIFY rules/],
  ['SCMP_ACT_NOTIFY on write', (socket) => notifyProfile(socket, ['write']), /linux\.seccomp\.syscalls\[0\]: SCMP_ACT_NOTIFY cannot be used for the write syscall/],
  ['SCMP_ACT_NOTIFY as the default action', (socket) => ({ ...(notifyProfile(socket) as object), defaultAction: 'SCMP_ACT_NOTIFY' }), /linux\.seccomp\.defaultAction: SCMP_ACT_NOTIFY cannot be the default action/],
];
for (const [what, profile, message] of refused) {
  test(`refused, nothing left: ${what}`, async (t) => {
    const agent = await startAgent(t, 'errno:1');
    const root = runtimeRoot(t);
    const id = uniqueId('ntfbad');
    const bundle = makeBundle(join(tempDir(t), 'b'), { args: ['/bin/true'], edit: (s) => { s.linux.seccomp = profile(agent.socket); } });
    const r = berthRunc(root, ['create', '--bundle', bundle.dir, id]);
    t.not(r.status, 0);
    t.regex(r.stderr, message);
    t.false(existsSync(join(root, id)));
    t.deepEqual(cgroupDirsOf(id), []);
  });
}

test.serial('the shim\'s fast path: the init and an exec\'d process get the agent\'s answers', async (t) => {
  const agent = await startAgent(t, `errno:${EDQUOT}`);
  const h = await shimHarness(t);
  const id = `ntf${Date.now().toString(36)}`;
  const bundle = makeBundle(join(h.dir, id), {
    args: ['/bin/sh', '-c', `${tryMkdir('/dev/shm/x')}; exec sleep 100`],
    edit: (s) => { s.linux.cgroupsPath = `/${id}`; s.linux.seccomp = notifyProfile(agent.socket); },
  });
  const client = await h.start(bundle.dir, id);
  const io = h.fifos('init');
  await h.call(client, 'Create', { id, bundle: bundle.dir, stdout: io.stdout, stderr: io.stderr, options: h.options(undefined) });
  await h.call(client, 'Start', { id });
  const ex = h.fifos('exec1');
  const spec = { ...bundle.spec.process, args: ['/bin/sh', '-c', tryMkdir('/dev/shm/y')] };
  await h.call(client, 'Exec', { id, execId: 'e1', stdout: ex.stdout, stderr: ex.stderr, spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Process', value: Buffer.from(JSON.stringify(spec)) } });
  await h.call(client, 'Start', { id, execId: 'e1' });
  t.is((await h.call(client, 'Wait', { id, execId: 'e1' })).exitStatus, 0);
  t.is(await ex.output, 'rc=1\nnot-made\n');
  t.regex(await ex.errors, /Disk quota exceeded/);
  await h.call(client, 'Kill', { id, signal: 9 });
  await h.call(client, 'Wait', { id });
  t.is(await io.output, 'rc=1\nnot-made\n');
  t.regex(await io.errors, /Disk quota exceeded/);
  await h.call(client, 'Delete', { id });
  t.deepEqual(agent.states().map((s) => s.state.status), ['creating', 'running']);
});

test('a startContainer hook runs under the filter with no fd of ours: not the listener, the agent socket nor anything else', async (t) => {
  const agent = await startAgent(t, `errno:${EDQUOT}`);
  const bundle = makeBundle(join(tempDir(t), 'b'), {
    args: ['/bin/true'],
    edit: (s) => {
      s.linux.seccomp = notifyProfile(agent.socket);
      // ls has its own directory fd open as it lists: 0, 1, 2 and that one.
      s.hooks = { startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'ls /proc/self/fd/ >&2; mkdir /dev/shm/h || exit 9'] }] };
    },
  });
  const r = berthRunc(runtimeRoot(t), ['run', '--bundle', bundle.dir, uniqueId('ntfh')]);
  t.not(r.status, 0);
  t.regex(r.stderr, /error running hook: startContainer hook \/bin\/sh exited with status 9: 0\n1\n2\n3\nmkdir: can't create directory '\/dev\/shm\/h': Disk quota exceeded/);
});
