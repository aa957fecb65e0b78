// berth-runc beside runc: the same commands on the same bundle give the same answers: state JSON fields and
// statuses through the lifecycle, exit codes, refusals of wrong transitions, ps, and the container's view.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle.ts';
import { tempDir } from '../helpers/tmp.ts';
import { CLI, uniqueId } from './helpers.ts';

interface Result { status: number; stdout: string; stderr: string }

function runtime(bin: string[], root: string) {
  return (args: string[]): Result => {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const dir = mkdtempSync(join(tmpdir(), 'compat-out-'));
    const fds = [openSync(join(dir, 'o'), 'w'), openSync(join(dir, 'e'), 'w')];
    try {
      const r = spawnSync(bin[0]!, [...bin.slice(1), '--root', root, ...args], { stdio: ['ignore', fds[0]!, fds[1]!], env, timeout: 30000 });
      return { status: r.status ?? -1, stdout: readFileSync(join(dir, 'o'), 'utf8'), stderr: readFileSync(join(dir, 'e'), 'utf8') };
    } finally {
      fds.forEach((fd) => closeSync(fd));
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

// The parent cgroup both runtimes create under; removed (if empty) when the file's tests end.
test.after.always(() => {
  for (const h of readdirSync('/sys/fs/cgroup')) { try { rmdirSync(join('/sys/fs/cgroup', h, 'compat')); } catch { /* in use or absent */ } }
});

const RUNTIMES: [string, string[]][] = [['runc', ['runc']], ['berth-runc', [process.execPath, CLI]]];

test('the lifecycle reads the same through runc and berth-runc: state fields, statuses, refusals, exit codes', (t) => {
  const observed: Record<string, unknown[]> = {};
  for (const [name, bin] of RUNTIMES) {
    const root = join(tempDir(t, `compat-${name}-`), 'root');
    const rt = runtime(bin, root);
    const id = uniqueId(name);
    const bundle = makeBundle(join(tempDir(t), 'b'), { args: ['/bin/sleep', '100'], edit: (s) => { s.linux.cgroupsPath = `/compat/${id}`; s.annotations = { 'test.key': 'v' }; } });
    t.teardown(() => rt(['delete', '--force', id]));
    const seen: unknown[] = [];
    seen.push(['create', rt(['create', '--bundle', bundle.dir, id]).status]);
    const created = JSON.parse(rt(['state', id]).stdout);
    seen.push(['state keys', Object.keys(created).filter((k) => k !== 'rootfs' && k !== 'created' && k !== 'owner').sort()]);
    seen.push(['created', created.status, created.bundle === bundle.dir, created.id === id, created.pid > 0, created.annotations]);
    seen.push(['delete created without force refused?', rt(['delete', id]).status === 0]);
    if (rt(['state', id]).status !== 0) {
      // A created container may be deleted without --force (runtime-spec); recreate to go on.
      seen.push(['recreate', rt(['create', '--bundle', bundle.dir, id]).status]);
    }
    seen.push(['start', rt(['start', id]).status]);
    seen.push(['running', JSON.parse(rt(['state', id]).stdout).status]);
    seen.push(['start again refused', rt(['start', id]).status !== 0]);
    seen.push(['delete running refused', rt(['delete', id]).status !== 0]);
    const ps = rt(['ps', '--format', 'json', id]);
    seen.push(['ps', ps.status, (JSON.parse(ps.stdout) as number[]).length]);
    seen.push(['pause', rt(['pause', id]).status, JSON.parse(rt(['state', id]).stdout).status]);
    seen.push(['resume', rt(['resume', id]).status, JSON.parse(rt(['state', id]).stdout).status]);
    seen.push(['kill', rt(['kill', id, 'KILL']).status]);
    for (let i = 0; i < 50 && JSON.parse(rt(['state', id]).stdout).status !== 'stopped'; i++) spawnSync('sleep', ['0.05']);
    seen.push(['stopped', JSON.parse(rt(['state', id]).stdout).status]);
    seen.push(['kill stopped refused', rt(['kill', id, 'KILL']).status !== 0]);
    seen.push(['delete', rt(['delete', id]).status]);
    seen.push(['state after delete refused', rt(['state', id]).status !== 0]);
    seen.push(['unknown id refused', rt(['state', 'no-such-container']).status !== 0]);
    observed[name] = seen;
  }
  t.deepEqual(observed['berth-runc'], observed.runc);
});

test('run: exit status and death by signal match runc', (t) => {
  const results: Record<string, number[]> = {};
  for (const [name, bin] of RUNTIMES) {
    const root = join(tempDir(t, `compat-run-${name}-`), 'root');
    const rt = runtime(bin, root);
    const codes: number[] = [];
    for (const script of ['exit 0', 'exit 42', 'kill -TERM $$; sleep 1']) {
      const id = uniqueId(name);
      const bundle = makeBundle(join(tempDir(t), 'b'), { args: ['/bin/sh', '-c', script], edit: (s) => { s.linux.cgroupsPath = `/compat/${id}`; } });
      codes.push(rt(['run', '--bundle', bundle.dir, id]).status);
    }
    results[name] = codes;
  }
  t.deepEqual(results['berth-runc'], results.runc);
});
