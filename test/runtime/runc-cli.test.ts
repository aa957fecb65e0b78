// berth-runc's command line against runc 1.1.5's (installed): version and help, logging (--log, --log-format,
// --debug), exit statuses, spec's template, delete/kill/run/exec corner cases, ps, events, update, and cgroups
// made by someone else (frozen, non-empty, cpuset parents with nothing in them).
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBundle, type Json } from '../helpers/bundle.ts';
import { tempDir } from '../helpers/tmp.ts';
import { CLI, logMessages, uniqueId } from './helpers.ts';

interface Result { status: number; stdout: string; stderr: string }
type Rt = ((args: string[], input?: string) => Result) & { root: string };

const PARENT = 'runc-cli';
const RUNTIMES: [string, string[]][] = [['runc', ['runc']], ['berth-runc', [process.execPath, CLI]]];

/** A runtime CLI with its own --root, output through files (a created container keeps its stdio open). */
function runtime(bin: string[], root: string): Rt {
  return Object.assign((args: string[], input?: string): Result => {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const dir = mkdtempSync(join(tmpdir(), 'runc-cli-out-'));
    const fds = [openSync(join(dir, 'o'), 'w'), openSync(join(dir, 'e'), 'w')];
    try {
      const r = spawnSync(bin[0]!, [...bin.slice(1), '--root', root, ...args], { stdio: [input === undefined ? 'ignore' : 'pipe', fds[0]!, fds[1]!], input, env, timeout: 30000 });
      return { status: r.status ?? -1, stdout: readFileSync(join(dir, 'o'), 'utf8'), stderr: readFileSync(join(dir, 'e'), 'utf8') };
    } finally {
      fds.forEach((fd) => closeSync(fd));
      rmSync(dir, { recursive: true, force: true });
    }
  }, { root });
}

function berth(t: Parameters<typeof tempDir>[0]): Rt {
  const rt = runtime([process.execPath, CLI], join(tempDir(t, 'runc-cli-root-'), 'root'));
  t.teardown(() => { for (const id of rt(['list', '-q']).stdout.split('\n').filter(Boolean)) rt(['delete', '--force', id]); });
  return rt;
}

/** A detached busybox container (sleeping) under the test's cgroup parent. */
function sleeper(t: Parameters<typeof tempDir>[0], rt: Rt, edit?: (s: Json) => void): { id: string; bundle: string; cgroup: string } {
  const id = uniqueId('cli');
  const cgroup = `/${PARENT}/${id}`;
  const bundle = makeBundle(join(tempDir(t), 'b'), { args: ['sleep', '1000'], edit: (s) => { s.linux.cgroupsPath = cgroup; edit?.(s); } });
  const r = rt(['run', '-d', '--bundle', bundle.dir, id]);
  t.is(r.status, 0, r.stderr);
  return { id, bundle: bundle.dir, cgroup };
}

const v1 = (controller: string, cgroup: string, file: string) => readFileSync(`/sys/fs/cgroup/${controller}${cgroup}/${file}`, 'utf8').trim();

test.after.always(() => {
  for (const h of readdirSync('/sys/fs/cgroup')) { try { rmdirSync(join('/sys/fs/cgroup', h, PARENT)); } catch { /* in use or absent */ } }
});

test('--version and -v print berth-runc\'s version in runc\'s shape; -h, --help and COMMAND -h print help', (t) => {
  const rt = berth(t);
  for (const flag of ['--version', '-v']) {
    const lines = rt([flag]).stdout.split('\n');
    t.regex(lines[0]!, /^berth-runc version \d+\.\d+\.\d+$/);
    t.regex(lines[1]!, /^commit: \S+$/);
    t.is(lines[2], 'spec: 1.0.2-dev');
  }
  for (const flag of ['-h', '--help']) {
    const r = rt([flag]);
    t.is(r.status, 0);
    t.deepEqual(r.stdout.split('\n').slice(0, 2), ['NAME:', '   berth-runc - Open Container Initiative runtime (berth\'s runc-compatible runtime)']);
  }
  for (const verb of ['checkpoint', 'create', 'delete', 'events', 'exec', 'kill', 'list', 'pause', 'ps', 'restore', 'resume', 'run', 'spec', 'start', 'state', 'update', 'features']) {
    const r = rt([verb, '-h']);
    t.is(r.status, 0, verb);
    t.regex(r.stdout.split('\n')[1]!, new RegExp(`^   berth-runc ${verb} - `), verb);
  }
  t.regex(rt(['help', 'kill']).stdout, /berth-runc kill - .*\n[^]*--all, -a/);
  const unknown = rt(['foo', '-h']);
  t.not(unknown.status, 0);
  t.regex(unknown.stderr, /No help topic for 'foo'/);
  t.regex(logMessages(rt(['kill', '--bogus', 'x']).stderr), /flag provided but not defined: -bogus/);
});

test('errors are logrus lines as runc writes them: on stderr, or in --log as text or JSON with the message also on stderr', (t) => {
  const dir = tempDir(t);
  for (const [name, bin] of RUNTIMES) {
    const rt = runtime(bin, join(dir, name, 'root'));
    const plain = rt(['state', 'ghost']);
    t.is(plain.status, 1, name);
    t.regex(plain.stderr, /^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" level=error msg="container (ghost )?does not exist"\n$/, name);
    const jsonLog = join(dir, `${name}.json`);
    const json = rt(['--log', jsonLog, '--log-format', 'json', 'state', 'ghost']);
    t.is(json.status, 1, name);
    t.regex(json.stderr, /^container (ghost )?does not exist\n$/, name);
    const entry = JSON.parse(readFileSync(jsonLog, 'utf8').trim());
    t.deepEqual(Object.keys(entry), ['level', 'msg', 'time'], name);
    t.is(entry.level, 'error', name);
    const textLog = join(dir, `${name}.log`);
    rt(['--log', textLog, 'state', 'ghost']);
    t.regex(readFileSync(textLog, 'utf8'), /^time="[^"]+" level=error msg="container (ghost )?does not exist"\n$/, name);
    t.regex(rt(['--log-format', 'yaml', 'list']).stderr, /invalid log-format: yaml/, name);
  }
});

test('--debug logs debug lines (to --log when given, not to stderr)', (t) => {
  const rt = berth(t);
  const { id } = sleeper(t, rt);
  const r = rt(['--debug', 'exec', id, 'true']);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stderr, /level=debug/);
  // The steps runc's --debug names (its test suite looks for them), at ours.
  for (const step of [/nsexec container setup/, /child process in init\(\)/, /setns_init: about to exec/]) t.regex(r.stderr, step);
  const run = rt(['--debug', 'run', '--bundle', makeBundle(join(tempDir(t), 'b'), { args: ['true'] }).dir, uniqueId('debug')]);
  for (const step of [/nsexec container setup/, /child process in init\(\)/, /init: closing the pipe to signal completion/]) t.regex(run.stderr, step);
  const log = join(tempDir(t), 'log.out');
  const logged = rt(['--debug', '--log', log, 'exec', id, 'true']);
  t.notRegex(logged.stderr, /level=debug/);
  t.regex(readFileSync(log, 'utf8'), /level=debug/);
});

test('exit statuses match runc: missing containers, forced deletes, kill --all of a stopped container, exec failures, usage errors', (t) => {
  const observed: Record<string, unknown[]> = {};
  for (const [name, bin] of RUNTIMES) {
    const rt = runtime(bin, join(tempDir(t), 'root'));
    const id = uniqueId(name);
    const bundle = makeBundle(join(tempDir(t), 'b'), { args: ['true'], edit: (s) => { s.linux.cgroupsPath = `/${PARENT}/${id}`; } });
    t.teardown(() => rt(['delete', '--force', id]));
    const seen: unknown[] = [];
    seen.push(['state ghost', rt(['state', 'ghost']).status]);
    seen.push(['delete ghost', rt(['delete', 'ghost']).status]);
    seen.push(['delete --force ghost', rt(['delete', '--force', 'ghost']).status]);
    seen.push(['exec ghost', rt(['exec', 'ghost', 'true']).status]);
    seen.push(['state without id', rt(['state']).status]);
    seen.push(['run --keep', rt(['run', '--keep', '--bundle', bundle.dir, id]).status, JSON.parse(rt(['state', id]).stdout).status]);
    seen.push(['kill stopped', rt(['kill', id, 'KILL']).status]);
    seen.push(['kill --all stopped', rt(['kill', '--all', id, 'KILL']).status]);
    seen.push(['kill -a stopped 0', rt(['kill', '-a', id, '0']).status]);
    seen.push(['exec stopped', rt(['exec', id, 'true']).status]);
    seen.push(['delete stopped', rt(['delete', id]).status]);
    observed[name] = seen;
  }
  t.deepEqual(observed['berth-runc'], observed.runc);
});

test('spec writes runc\'s template field for field (and --rootless its rootless one); an existing config.json is kept', (t) => {
  for (const flags of [[], ['--rootless']]) {
    const specs: Record<string, unknown> = {};
    for (const [name, bin] of RUNTIMES) {
      const dir = tempDir(t);
      const rt = runtime(bin, join(dir, 'root'));
      t.is(rt(['spec', '--bundle', dir, ...flags]).status, 0);
      specs[name] = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      t.is(rt(['spec', '--bundle', dir]).status, 1, 'refuses to overwrite');
    }
    t.deepEqual(specs['berth-runc'], specs.runc, flags.join(' '));
  }
});

test('exec: refused into a paused container with runc\'s message and status; --ignore-paused waits for the resume', async (t) => {
  const rt = berth(t);
  const { id } = sleeper(t, rt);
  t.is(rt(['pause', id]).status, 0);
  const refused = rt(['exec', id, 'echo', 'ok']);
  t.is(refused.status, 255);
  t.regex(refused.stderr, /cannot exec in a paused container \(use --ignore-paused to override\)/);
  const resume = new Promise<void>((resolve) => setTimeout(() => { rt(['resume', id]); resolve(); }, 1500));
  const started = Date.now();
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const child = spawn(process.execPath, [CLI, '--root', rt.root, 'exec', '--ignore-paused', id, 'echo', 'ok'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const status = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  await resume;
  t.is(status, 0);
  t.is(out, 'ok\n');
  t.true(Date.now() - started >= 1400, 'the process ran once the container was resumed');
});

test('exec: --process JSON without a user runs as root; -u UID keeps the config\'s gid; -u UID:GID sets both', (t) => {
  const rt = berth(t);
  const { id } = sleeper(t, rt, (s) => { s.process.user = { uid: 0, gid: 10 }; });
  const file = join(tempDir(t), 'process.json');
  writeFileSync(file, JSON.stringify({ args: ['sh', '-c', 'echo $(id -u):$(id -g)'], cwd: '/', env: ['PATH=/bin'] }));
  t.is(rt(['exec', '--process', file, id]).stdout, '0:0\n');
  t.is(rt(['exec', '-u', '1000', id, 'sh', '-c', 'echo $(id -u):$(id -g)']).stdout, '1000:10\n');
  t.is(rt(['exec', '--user', '1000:1000', id, 'sh', '-c', 'echo $(id -u):$(id -g)']).stdout, '1000:1000\n');
  // A program that is not there fails the exec itself (255), before anything runs, as runc looks it up first.
  const missing = rt(['exec', id, 'no-such-binary']);
  t.is(missing.status, 255);
  t.regex(logMessages(missing.stderr), /exec failed: .*exec: "no-such-binary": executable file not found in \$PATH/);
  const b = makeBundle(join(tempDir(t), 'b'), { args: ['/no/such/program'] });
  const run = rt(['run', '--bundle', b.dir, uniqueId('missing')]);
  t.is(run.status, 1);
  t.regex(logMessages(run.stderr), /executable file not found/);
});

test('exec --cgroup joins an existing sub-cgroup of the container\'s, per controller or for all; others are refused', (t) => {
  const rt = berth(t);
  const { id, cgroup } = sleeper(t, rt);
  mkdirSync(`/sys/fs/cgroup/memory${cgroup}/submem`);
  mkdirSync(`/sys/fs/cgroup/pids${cgroup}/subpids`);
  const r = rt(['exec', '--cgroup', 'memory:submem', '--cgroup', 'pids:subpids', id, 'cat', '/proc/self/cgroup']);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`:memory:${cgroup}/submem\\n`));
  t.regex(r.stdout, new RegExp(`:pids:${cgroup}/subpids\\n`));
  t.regex(r.stdout, new RegExp(`:freezer:${cgroup}\\n`));
  const parent = rt(['exec', '--cgroup', '..', id, 'true']);
  t.is(parent.status, 255);
  t.regex(parent.stderr, / \.\. is not a sub cgroup path/);
  t.regex(rt(['exec', '--cgroup', 'nonexistent', id, 'true']).stderr, / adding pid \d+ to cgroups: .*\/nonexistent\/cgroup.procs: no such file /);
  t.regex(rt(['exec', '--cgroup', 'whaaat:/', id, 'true']).stderr, /unknown controller /);
  const top = rt(['exec', '--cgroup', '/', id, 'cat', '/proc/self/cgroup']);
  t.regex(top.stdout, new RegExp(`:memory:${cgroup}\\n`));
});

test('ps prints ps(1)\'s table for the container\'s processes (default -ef, or the options given); -f json the pids', (t) => {
  const rt = berth(t);
  const { id } = sleeper(t, rt);
  const pid = JSON.parse(rt(['state', id]).stdout).pid as number;
  const table = rt(['ps', id]).stdout.trimEnd().split('\n');
  t.regex(table[0]!, /^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD/);
  t.is(table.length, 2);
  t.regex(table[1]!, new RegExp(`^root\\s+${pid}\\s.*sleep 1000$`));
  const ex = rt(['ps', id, '-e', '-x']).stdout.trimEnd().split('\n');
  t.regex(ex[0]!, /^\s+PID\s+TTY\s+STAT\s+TIME\s+COMMAND/);
  t.regex(ex[1]!, new RegExp(`^\\s*${pid}\\s`));
  t.deepEqual(JSON.parse(rt(['ps', '-f', 'json', id]).stdout), [pid]);
  t.is(rt(['ps', '-f', 'yaml', id]).status, 1);
});

test('events --stats prints runc\'s JSON shape (same keys as runc\'s output for the same container)', (t) => {
  const shapes: Record<string, unknown> = {};
  for (const [name, bin] of RUNTIMES) {
    const rt = runtime(bin, join(tempDir(t), 'root'));
    const { id } = sleeper(t, rt, (s) => { s.linux.resources.pids = { limit: 100 }; s.linux.resources.memory = { limit: 64 << 20 }; });
    t.teardown(() => rt(['delete', '--force', id]));
    const r = rt(['events', '--stats', id]);
    t.is(r.status, 0, r.stderr);
    t.true(r.stdout.startsWith(`{"type":"stats","id":"${id}","data":{`), name);
    const e = JSON.parse(r.stdout);
    const d = e.data;
    t.is(d.pids.current, 1, name);
    t.is(d.pids.limit, 100, name);
    t.is(d.memory.usage.limit, 64 << 20, name);
    t.true(d.memory.usage.usage > 0 && d.cpu.usage.total > 0, name);
    shapes[name] = {
      top: Object.keys(e), data: Object.keys(d), cpu: Object.keys(d.cpu), usage: Object.keys(d.cpu.usage).filter((k) => !k.startsWith('percpu_')),
      // cache is omitted when zero by both (runc's omitempty): whether it shows depends on the page cache, not the shape.
      memory: Object.keys(d.memory).filter((k) => k !== 'cache'), memUsage: Object.keys(d.memory.usage), swap: Object.keys(d.memory.swap), cpuset: Object.keys(d.cpuset),
      pids: Object.keys(d.pids), rawKeys: Object.keys(d.memory.raw).length > 10, networkInterfaces: d.network_interfaces,
    };
  }
  t.deepEqual(shapes['berth-runc'], shapes.runc);
});

test('events streams stats every --interval and ends when the container is deleted; an OOM kill is an {"type":"oom"} event', async (t) => {
  const rt = berth(t);
  const { id } = sleeper(t, rt, (s) => { s.linux.resources.memory = { limit: 32 << 20, swap: 32 << 20 }; });
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const child = spawn(process.execPath, [CLI, '--root', rt.root, 'events', '--interval', '100ms', id], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  for (let i = 0; i < 100 && !out.includes('"type":"stats"'); i++) await new Promise((r) => setTimeout(r, 50));
  t.true(out.startsWith(`{"type":"stats","id":"${id}","data":{`));
  rt(['exec', '-d', id, 'sh', '-c', 'x=$(dd if=/dev/zero bs=64M count=1 | tr "\\0" "x")']);
  for (let i = 0; i < 100 && !out.includes('"type":"oom"'); i++) await new Promise((r) => setTimeout(r, 50));
  t.true(out.includes(`{"type":"oom","id":"${id}"}\n`), 'an oom event');
  const stats = out.split('\n').filter((l) => l.startsWith('{"type":"stats"')).length;
  t.true(stats >= 2, `stats every 100 ms (${stats})`);
  t.is(rt(['delete', '--force', id]).status, 0);
  const deadline = setTimeout(() => child.kill(), 5000);
  t.is(await exited, 0, 'events ended by itself once the container was deleted');
  clearTimeout(deadline);
});

test('update: runc\'s flags (sizes with units, -1 for no limit) and -r JSON (from stdin, any key case, null left unchanged); a paused container stays paused', (t) => {
  const rt = berth(t);
  const { id, cgroup } = sleeper(t, rt, (s) => {
    s.linux.resources.memory = { limit: 33554432, reservation: 25165824 };
    s.linux.resources.cpu = { shares: 100, quota: 500000, period: 1000000 };
    s.linux.resources.pids = { limit: 20 };
  });
  const ok = (args: string[], input?: string) => { const r = rt(['update', ...args, id], input); t.is(r.status, 0, `${args.join(' ')}: ${r.stderr}`); };
  ok(['--memory', '50M']);
  t.is(v1('memory', cgroup, 'memory.limit_in_bytes'), '52428800');
  ok(['--memory-reservation', '33554432']);
  t.is(v1('memory', cgroup, 'memory.soft_limit_in_bytes'), '33554432');
  ok(['--memory-swap', '-1']);
  ok(['--memory', '30M', '--memory-swap', '50M']);
  t.is(v1('memory', cgroup, 'memory.memsw.limit_in_bytes'), String(50 << 20));
  ok(['--memory', '60M', '--memory-swap', '80M']);
  t.deepEqual([v1('memory', cgroup, 'memory.limit_in_bytes'), v1('memory', cgroup, 'memory.memsw.limit_in_bytes')], [String(60 << 20), String(80 << 20)]);
  ok(['--memory', '-1']);
  t.true(Number(v1('memory', cgroup, 'memory.limit_in_bytes')) > 2 ** 62, 'no memory limit');
  t.true(Number(v1('memory', cgroup, 'memory.memsw.limit_in_bytes')) > 2 ** 62, 'and no swap limit');
  ok(['--pids-limit', '-1']);
  t.is(v1('pids', cgroup, 'pids.max'), 'max');
  ok(['--cpu-period', '900000']);
  t.deepEqual([v1('cpu', cgroup, 'cpu.cfs_quota_us'), v1('cpu', cgroup, 'cpu.cfs_period_us')], ['500000', '900000']);
  ok(['--cpu-quota', '-1', '--cpu-share', '200']);
  t.deepEqual([v1('cpu', cgroup, 'cpu.cfs_quota_us'), v1('cpu', cgroup, 'cpu.shares')], ['-1', '200']);
  ok(['-r', '-'], JSON.stringify({ memory: { limit: 33554432, reservation: null }, CPU: { Shares: 100, Quota: 500000, Period: 1000000, Cpus: '0' }, pids: { limit: 20 } }));
  t.deepEqual([v1('memory', cgroup, 'memory.limit_in_bytes'), v1('memory', cgroup, 'memory.soft_limit_in_bytes'), v1('cpuset', cgroup, 'cpuset.cpus'), v1('pids', cgroup, 'pids.max'), v1('cpu', cgroup, 'cpu.shares')],
    ['33554432', '33554432', '0', '20', '100']);
  const file = join(tempDir(t), 'r.json');
  writeFileSync(file, JSON.stringify({ memory: { limit: null }, pids: { limit: 30 } }));
  ok(['-r', file]);
  t.deepEqual([v1('memory', cgroup, 'memory.limit_in_bytes'), v1('pids', cgroup, 'pids.max')], ['33554432', '30']);
  t.regex(logMessages(rt(['update', '--memory', 'lots', id]).stderr), /invalid value for memory/);
  t.is(rt(['pause', id]).status, 0);
  ok(['--pids-limit', '31']);
  t.is(JSON.parse(rt(['state', id]).stdout).status, 'paused');
  t.is(rt(['resume', id]).status, 0);
});

test('update of the realtime period and runtime (the parent given a realtime budget first, as runc\'s tests do)', (t) => {
  const rt = berth(t);
  const parent = `/sys/fs/cgroup/cpu/${PARENT}`;
  mkdirSync(parent, { recursive: true });
  const [period, runtimeUs] = ['cpu.rt_period_us', 'cpu.rt_runtime_us'].map((f) => readFileSync(`/sys/fs/cgroup/cpu/${f}`, 'utf8').trim());
  writeFileSync(`${parent}/cpu.rt_period_us`, period!);
  // Not the whole root budget: tests in other files (cgroups › resources) give their own groups some beside it.
  writeFileSync(`${parent}/cpu.rt_runtime_us`, String(Math.min(Number(runtimeUs), 700000)));
  t.teardown(() => { try { writeFileSync(`${parent}/cpu.rt_runtime_us`, '0'); } catch { /* removed */ } });
  const { id, cgroup } = sleeper(t, rt);
  t.is(rt(['update', '-r', '-', id], JSON.stringify({ cpu: { realtimeRuntime: 500001 } })).status, 0);
  t.deepEqual([v1('cpu', cgroup, 'cpu.rt_period_us'), v1('cpu', cgroup, 'cpu.rt_runtime_us')], [period, '500001']);
  const r = rt(['update', '--cpu-rt-period', '900001', '--cpu-rt-runtime', '600001', id]);
  t.is(r.status, 0, r.stderr);
  t.deepEqual([v1('cpu', cgroup, 'cpu.rt_period_us'), v1('cpu', cgroup, 'cpu.rt_runtime_us')], ['900001', '600001']);
  rt(['delete', '--force', id]);
});

test('a cgroupsPath naming a frozen cgroup is refused (not hung in); a non-empty one is warned about; an empty cpuset parent is filled', (t) => {
  const rt = berth(t);
  const id = uniqueId('frozen');
  const cgroup = `/${PARENT}/${id}`;
  const freezer = `/sys/fs/cgroup/freezer${cgroup}`;
  mkdirSync(freezer, { recursive: true });
  writeFileSync(`${freezer}/freezer.state`, 'FROZEN');
  t.teardown(() => { try { writeFileSync(`${freezer}/freezer.state`, 'THAWED'); rmdirSync(freezer); } catch { /* gone */ } });
  const bundle = makeBundle(join(tempDir(t), 'b'), { args: ['sleep', '1000'], edit: (s) => { s.linux.cgroupsPath = cgroup; } });
  for (const verb of [['run', '-d'], ['create']]) {
    const r = rt([...verb, '--bundle', bundle.dir, id]);
    t.is(r.status, 1, verb[0]);
    t.regex(logMessages(r.stderr), /container's cgroup unexpectedly frozen/);
  }
  writeFileSync(`${freezer}/freezer.state`, 'THAWED');
  t.is(rt(['run', '-d', '--bundle', bundle.dir, id]).status, 0);
  const second = rt(['run', '-d', '--bundle', bundle.dir, `${id}-2`]);
  t.is(second.status, 0, second.stderr);
  t.regex(second.stderr, /level=warning msg="container's cgroup is not empty: 1 process\(es\) found"/);
  rt(['delete', '--force', `${id}-2`]);
  rt(['delete', '--force', id]);

  // A parent made by mkdir has an empty cpuset: a child could take no task until it is filled from above.
  const emptyParent = `/${PARENT}/${uniqueId('cpuset')}`;
  mkdirSync(`/sys/fs/cgroup/cpuset${emptyParent}`, { recursive: true });
  t.teardown(() => { try { rmdirSync(`/sys/fs/cgroup/cpuset${emptyParent}`); } catch { /* in use or gone */ } });
  t.is(v1('cpuset', emptyParent, 'cpuset.cpus'), '');
  const child = uniqueId('child');
  const b2 = makeBundle(join(tempDir(t), 'b2'), { args: ['true'], edit: (s) => { s.linux.cgroupsPath = `${emptyParent}/${child}`; } });
  const r = rt(['run', '--bundle', b2.dir, child]);
  t.is(r.status, 0, r.stderr);
  t.is(v1('cpuset', emptyParent, 'cpuset.cpus'), readFileSync('/sys/fs/cgroup/cpuset/cpuset.cpus', 'utf8').trim());
});

test('unified resources of a controller mounted as cgroup v1 are an invalid configuration, as runc says', (t) => {
  if (!existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes')) { t.pass('memory is not a cgroup v1 hierarchy here'); return; }
  const rt = berth(t);
  const id = uniqueId('unified');
  const bundle = makeBundle(join(tempDir(t), 'b'), { args: ['true'], edit: (s) => { s.linux.cgroupsPath = `/${PARENT}/${id}`; s.linux.resources.unified = { 'memory.min': '131072' }; } });
  const r = rt(['run', '--bundle', bundle.dir, id]);
  t.is(r.status, 1);
  t.regex(logMessages(r.stderr), /invalid configuration/);
});

test('device rule access letters other than r, w and m are ignored, as runc does ("rwa" is "rw")', (t) => {
  const rt = berth(t);
  const id = uniqueId('rwa');
  const bundle = makeBundle(join(tempDir(t), 'b'), {
    args: ['sh', '-c', 'head -c 1 /dev/kmsg 2>/dev/null && echo read-kmsg; echo ok > /dev/null && echo null-ok'],
    edit: (s) => {
      s.linux.cgroupsPath = `/${PARENT}/${id}`;
      s.linux.resources.devices = [{ allow: false, access: 'rwm' }, { allow: false, type: 'c', major: 1, minor: 11, access: 'rwa' }];
      s.linux.devices = [{ path: '/dev/kmsg', type: 'c', major: 1, minor: 11 }];
    },
  });
  const r = rt(['run', '--bundle', bundle.dir, id]);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'null-ok\n');
});
