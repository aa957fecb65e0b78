import test from 'ava';
import { existsSync, readFileSync, writeFileSync, chmodSync, rmSync, readlinkSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle.ts';
import { tempDir, mountsUnder } from '../helpers/tmp.ts';
import { spawn } from 'node:child_process';
import { CLI, berthRunc, cgroupDirsOf, runtimeRoot, uniqueId } from './helpers.ts';

const sh = (script: string) => ['/bin/sh', '-c', script];

test('run exits with the container status, 128+signal on death by signal, and leaves nothing behind', (t) => {
  const root = runtimeRoot(t);
  const cases: [string, number][] = [['true', 0], ['exit 3', 3]];
  for (const [script, want] of cases) {
    const bundle = makeBundle(join(tempDir(t), 'b'), { args: sh(script) });
    const id = uniqueId();
    const r = berthRunc(root, ['run', '--bundle', bundle.dir, id]);
    t.is(r.status, want, `${script}: ${r.stderr}`);
    t.false(existsSync(join(root, id)), 'state dir removed');
    t.deepEqual(cgroupDirsOf(id), [], 'cgroups removed');
    t.deepEqual(mountsUnder(bundle.rootfs), [], 'no mount left on the rootfs');
  }
});

test('the container observes its isolation: hostname, pid 1, masks, read-only paths, rlimits, no_new_privs, caps, fds', (t) => {
  const root = runtimeRoot(t);
  const script = [
    'hostname', 'echo $$', 'wc -c < /proc/keys', 'echo x > /proc/sys/kernel/domainname 2>/dev/null && echo writable || echo readonly',
    'ulimit -n', 'grep NoNewPrivs /proc/self/status', 'grep CapEff /proc/self/status', 'echo $(ls /proc/self/fd)', 'pwd',
    'touch /rootfile 2>/dev/null && echo rootrw || echo rootro',
  ].join('; ');
  const bundle = makeBundle(join(tempDir(t), 'b'), { args: sh(script), edit: (s) => { s.process.cwd = '/tmp'; } });
  const r = berthRunc(root, ['run', '--bundle', bundle.dir, uniqueId()]);
  t.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => l.trim());
  t.deepEqual(lines, [
    'berth', '1', '0', 'readonly', '1024', 'NoNewPrivs:\t1', 'CapEff:\t0000000020000420', '0 1 2 3', '/tmp', 'rootro',
  ]);
});

test('run reports death by signal as 128+signal, as runc', async (t) => {
  const root = runtimeRoot(t);
  const bundle = makeBundle(join(tempDir(t), 'b'), { args: ['/bin/sleep', '60'] });
  const id = uniqueId();
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const run = spawn(process.execPath, [CLI, '--root', root, 'run', '--bundle', bundle.dir, id], { stdio: 'ignore', env });
  const status = new Promise<number | null>((resolve) => run.on('exit', (code) => resolve(code)));
  for (let i = 0; i < 200 && berthRunc(root, ['state', id]).status !== 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.is(berthRunc(root, ['kill', id, 'KILL']).status, 0);
  t.is(await status, 137);
  t.false(existsSync(join(root, id)));
});

test('create, state, start, kill, delete follow the runtime-spec status transitions', async (t) => {
  const root = runtimeRoot(t);
  const bundle = makeBundle(join(tempDir(t), 'b'), { args: ['/bin/sleep', '60'] });
  const id = uniqueId();
  const state = () => JSON.parse(berthRunc(root, ['state', id]).stdout);

  t.is(berthRunc(root, ['create', '--bundle', bundle.dir, id]).status, 0);
  t.is(state().status, 'created');
  t.true(state().pid > 0);
  const dup = berthRunc(root, ['create', '--bundle', bundle.dir, id]);
  t.not(dup.status, 0);
  t.regex(dup.stderr, /already exists/);

  t.is(berthRunc(root, ['start', id]).status, 0);
  t.is(state().status, 'running');
  const again = berthRunc(root, ['start', id]);
  t.not(again.status, 0);
  t.regex(again.stderr, /not created/);

  t.is(berthRunc(root, ['pause', id]).status, 0);
  t.is(state().status, 'paused');
  t.is(berthRunc(root, ['resume', id]).status, 0);
  t.is(state().status, 'running');
  t.is(JSON.parse(berthRunc(root, ['ps', '--format', 'json', id]).stdout).length, 1);

  const busy = berthRunc(root, ['delete', id]);
  t.not(busy.status, 0);
  t.regex(busy.stderr, /running/);

  t.is(berthRunc(root, ['kill', id, 'KILL']).status, 0);
  for (let i = 0; i < 100 && state().status !== 'stopped'; i++) await new Promise((r) => setTimeout(r, 20));
  t.is(state().status, 'stopped');
  t.not(berthRunc(root, ['kill', id]).status, 0, 'kill of a stopped container fails');
  t.is(berthRunc(root, ['delete', id]).status, 0);
  t.regex(berthRunc(root, ['state', id]).stderr, /does not exist/);
  t.deepEqual(cgroupDirsOf(id), []);
});

test('delete --force stops a running container; a created one can be deleted without force', (t) => {
  const root = runtimeRoot(t);
  const bundle = makeBundle(join(tempDir(t), 'b'), { args: ['/bin/sleep', '60'] });
  const running = uniqueId();
  t.is(berthRunc(root, ['run', '--detach', '--bundle', bundle.dir, running]).status, 0);
  const pid = JSON.parse(berthRunc(root, ['state', running]).stdout).pid;
  t.is(berthRunc(root, ['delete', '--force', running]).status, 0);
  t.false(existsSync(`/proc/${pid}/stat`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'));
  const created = uniqueId();
  t.is(berthRunc(root, ['create', '--bundle', bundle.dir, created]).status, 0);
  t.is(berthRunc(root, ['delete', created]).status, 0);
  t.deepEqual(cgroupDirsOf(created), []);
});

test('hooks get the state on stdin; a failing prestart hook fails create and leaves nothing', (t) => {
  const root = runtimeRoot(t);
  const dir = tempDir(t);
  const out = join(dir, 'hook-out');
  const hook = join(dir, 'hook.sh');
  writeFileSync(hook, `#!/bin/sh\ncat >> ${out}; echo >> ${out}\n`);
  chmodSync(hook, 0o755);
  const bundle = makeBundle(join(dir, 'b'), { args: ['/bin/true'], edit: (s) => { s.hooks = { prestart: [{ path: hook }], poststop: [{ path: hook }] }; } });
  const id = uniqueId();
  t.is(berthRunc(root, ['run', '--bundle', bundle.dir, id]).status, 0);
  const states = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.deepEqual(states.map((s) => [s.id, s.status]), [[id, 'creating'], [id, 'stopped']]);
  t.true(states[0].pid > 0);

  const slow = makeBundle(join(dir, 'slow'), { args: ['/bin/true'], edit: (s) => { s.hooks = { prestart: [{ path: '/bin/sleep', args: ['sleep', '5'], timeout: 1 }] }; } });
  const failed = uniqueId();
  const r = berthRunc(root, ['create', '--bundle', slow.dir, failed]);
  t.not(r.status, 0);
  t.regex(r.stderr, /prestart hook \/bin\/sleep timed out after 1s/);
  t.false(existsSync(join(root, failed)));
  t.deepEqual(cgroupDirsOf(failed), []);
});

test('a memory limit OOM-kills, a pids limit stops forks', (t) => {
  const root = runtimeRoot(t);
  const oom = makeBundle(join(tempDir(t), 'oom'), {
    args: sh('x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived'),
    edit: (s) => { s.linux.resources.memory = { limit: 32 * 1024 * 1024, swap: 32 * 1024 * 1024 }; },
  });
  const r = berthRunc(root, ['run', '--bundle', oom.dir, uniqueId()]);
  t.not(r.stdout, 'survived\n');
  t.true(r.status === 137 || /Killed/.test(r.stderr), `status ${r.status}`);

  const pids = makeBundle(join(tempDir(t), 'pids'), {
    args: sh('for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; echo started all'),
    edit: (s) => { s.linux.resources.pids = { limit: 4 }; },
  });
  const p = berthRunc(root, ['run', '--bundle', pids.dir, uniqueId()]);
  t.not(p.status, 0);
  t.notRegex(p.stdout, /started all/);
  t.regex(p.stderr, /can't fork|Resource temporarily unavailable/);
});

test('spec writes a runnable config.json; features describes the runtime', (t) => {
  const root = runtimeRoot(t);
  const bundle = makeBundle(join(tempDir(t), 'b'));
  const fresh = join(tempDir(t), 'fresh');
  makeBundle(fresh);
  rmSync(join(fresh, 'config.json'));
  t.is(berthRunc(root, ['spec', '--bundle', fresh]).status, 0);
  t.is(JSON.parse(readFileSync(join(fresh, 'config.json'), 'utf8')).process.args[0], 'sh');
  t.regex(berthRunc(root, ['spec', '--bundle', bundle.dir]).stderr, /config.json exists. Remove it first/);
  const features = JSON.parse(berthRunc(root, ['features']).stdout);
  t.true(features.linux.namespaces.includes('pid'));
});

test('a created container waits in a sealed memfd copy of berth-init, never the file on disk (CVE-2019-5736)', (t) => {
  const root = runtimeRoot(t);
  const bundle = makeBundle(join(tempDir(t), 'b'), { args: ['/bin/true'] });
  const id = uniqueId();
  t.is(berthRunc(root, ['create', '--bundle', bundle.dir, id]).status, 0);
  const pid = JSON.parse(berthRunc(root, ['state', id]).stdout).pid;
  t.regex(readlinkSync(`/proc/${pid}/exe`), /^\/memfd:berth-init \(deleted\)$/);
  const fds = readdirSync(`/proc/${pid}/fd`).map((fd) => { try { return readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { return ''; } });
  t.false(fds.some((target) => target.endsWith('/plan') || target.startsWith('socket:')), `no runtime fd reaches the container: ${fds.join(', ')}`);
  t.is(berthRunc(root, ['delete', id]).status, 0);
});
