// Runs inside the QEMU guest of cgroup-v2.vmtest.ts, where /sys/fs/cgroup is a pure cgroup2 hierarchy with every
// controller. Prints "CHECK ok|fail <name>" per check; the host test turns each line into an assertion.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { codeOf } from '../../api/errdefs.ts';
import { detectCgroupMode, openCgroup, removeLeftoverCgroups, type CgroupManager, type LinuxResources } from '../../runtimes/cgroups/index.ts';

const MiB = 1024 * 1024;
const root = '/sys/fs/cgroup';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const read = (path: string, file: string) => readFileSync(`${root}${path}/${file}`, 'utf8').trim();

function eq(actual: unknown, expected: unknown, what: string): void {
  if (actual !== expected) throw new Error(`${what}: got ${JSON.stringify(actual)}, want ${JSON.stringify(expected)}`);
}
function ok(cond: boolean, what: string): void {
  if (!cond) throw new Error(what);
}
function throwsCode(fn: () => unknown, code: string, pattern: RegExp, what: string): void {
  try { fn(); } catch (err) {
    eq(codeOf(err), code, `${what} error code`);
    ok(pattern.test((err as Error).message), `${what}: message ${JSON.stringify((err as Error).message)} should match ${pattern}`);
    return;
  }
  throw new Error(`${what}: no error`);
}

let n = 0;
async function check(name: string, fn: (path: string) => Promise<void> | void): Promise<void> {
  const path = `/guest-${n++}`;
  try {
    await fn(path);
    console.log(`CHECK ok ${name}`);
  } catch (err) {
    console.log(`CHECK fail ${name}: ${(err as Error).message}`);
  } finally {
    await removeLeftoverCgroups([path]).catch((err) => console.log(`CHECK fail ${name} cleanup: ${err.message}`));
  }
}

/** A busybox shell held on stdin until it has joined `cg`. */
async function runIn(cg: CgroupManager, script: string) {
  const proc = spawn('/bin/busybox', ['sh', '-c', `read _go; ${script}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise<{ signal: string | null; stdout: string; stderr: string }>((resolve) => {
    proc.once('exit', (_code, signal) => resolve({ signal, stdout, stderr }));
  });
  await new Promise((r) => proc.once('spawn', r));
  cg.addProcess(proc.pid!);
  proc.stdin.end('go\n');
  return { proc, pid: proc.pid!, exited };
}

await check('detectCgroupMode says v2', () => eq(detectCgroupMode(), 'v2', 'mode'));

await check('create applies every resource kind with v2 units', (path) => {
  const cg = openCgroup(path);
  const resources: LinuxResources = {
    memory: { limit: 64 * MiB, swap: 96 * MiB, reservation: 16 * MiB },
    cpu: { shares: 1024, quota: 50000, period: 100000, burst: 1000, cpus: '0', mems: '0' },
    pids: { limit: 20 },
    blockIO: { weight: 500 },
    hugepageLimits: [{ pageSize: '2MB', limit: 2 * MiB }],
    unified: { 'memory.high': String(50 * MiB) },
  };
  cg.create(resources);
  eq(read(path, 'memory.max'), String(64 * MiB), 'memory.max');
  eq(read(path, 'memory.swap.max'), String(32 * MiB), 'memory.swap.max (swap minus memory)');
  eq(read(path, 'memory.low'), String(16 * MiB), 'memory.low');
  eq(read(path, 'memory.high'), String(50 * MiB), 'memory.high');
  eq(read(path, 'cpu.weight'), '39', 'cpu.weight from 1024 shares');
  eq(read(path, 'cpu.max'), '50000 100000', 'cpu.max');
  eq(read(path, 'cpu.max.burst'), '1000', 'cpu.max.burst');
  eq(read(path, 'cpuset.cpus'), '0', 'cpuset.cpus');
  eq(read(path, 'cpuset.mems'), '0', 'cpuset.mems');
  eq(read(path, 'pids.max'), '20', 'pids.max');
  const ioWeight = existsSync(`${root}${path}/io.bfq.weight`) ? read(path, 'io.bfq.weight') : read(path, 'io.weight');
  ok(/^default (500|4950)$/.test(ioWeight), `io weight ${ioWeight}`);
  eq(read(path, 'hugetlb.2MB.max'), String(2 * MiB), 'hugetlb.2MB.max');
});

await check('update: unlimited values become "max"; a lone period keeps the quota', (path) => {
  const cg = openCgroup(path);
  cg.create({ memory: { limit: 64 * MiB, swap: 128 * MiB }, cpu: { quota: 20000, period: 100000 } });
  cg.update({ memory: { limit: -1, swap: -1 }, cpu: { period: 50000 } });
  eq(read(path, 'memory.max'), 'max', 'memory.max');
  eq(read(path, 'memory.swap.max'), 'max', 'memory.swap.max');
  eq(read(path, 'cpu.max'), '20000 50000', 'cpu.max after period-only update');
  cg.update({ cpu: { quota: -1, shares: 2 } });
  eq(read(path, 'cpu.max'), 'max 50000', 'cpu.max unlimited');
  eq(read(path, 'cpu.weight'), '1', 'cpu.weight from 2 shares');
});

await check('nested cgroupsPath: every level delegates the controllers', (path) => {
  const cg = openCgroup(`${path}/a/b`);
  cg.create({ pids: { limit: 5 } });
  for (const level of [path, `${path}/a`]) {
    const sub = read(level, 'cgroup.subtree_control');
    for (const c of ['memory', 'cpu', 'pids', 'io']) ok(sub.includes(c), `${level} delegates ${c} (${sub})`);
  }
  eq(read(`${path}/a/b`, 'pids.max'), '5', 'leaf pids.max');
});

await check('a memory limit OOM-kills; oomKillCount and failcnt report it', async (path) => {
  const cg = openCgroup(path);
  cg.create({ memory: { limit: 32 * MiB, swap: 32 * MiB } });
  eq(read(path, 'memory.swap.max'), '0', 'no swap when swap equals memory');
  const child = await runIn(cg, 'exec /bin/busybox tail /dev/zero');
  eq((await child.exited).signal, 'SIGKILL', 'killed by the OOM killer');
  ok(cg.oomKillCount() >= 1, `oomKillCount ${cg.oomKillCount()}`);
  const mem = cg.stats().memory!;
  ok(mem.failcnt > 0, `failcnt ${mem.failcnt}`);
  eq(mem.limit, 32 * MiB, 'stats limit');
  ok(mem.maxUsage > 30 * MiB, `max usage ${mem.maxUsage}`);
});

await check('a pids limit makes fork fail', async (path) => {
  const cg = openCgroup(path);
  cg.create({ pids: { limit: 3 } });
  const child = await runIn(cg, 'for i in 1 2 3 4 5 6; do /bin/busybox sleep 1 & done; wait');
  const { stderr } = await child.exited;
  ok(/fork|Resource temporarily unavailable/i.test(stderr), `stderr ${stderr}`);
  ok(/max [1-9]/.test(read(path, 'pids.events')), 'pids.events max');
  eq(cg.stats().pids!.limit, 3, 'stats pids limit');
});

await check('cpu quota throttles; usage grows; stats are sane', async (path) => {
  const cg = openCgroup(path);
  cg.create({ cpu: { quota: 10000, period: 100000 } });
  // Memory is charged where it is allocated, so the loop allocates some after joining.
  const child = await runIn(cg, 'x=$(/bin/busybox head -c 2000000 /dev/zero | /bin/busybox tr "\\0" a); while :; do :; done');
  await sleep(400);
  const first = cg.stats();
  await sleep(600);
  const second = cg.stats();
  ok(second.cpu!.usageTotal > first.cpu!.usageTotal, 'usage grows');
  ok(second.cpu!.throttling.throttledPeriods > 0, `throttled periods ${second.cpu!.throttling.throttledPeriods}`);
  ok(second.memory!.usage > 0, 'memory usage > 0');
  // The shell, and while the throttled allocation still runs, its pipeline (head, tr, a subshell).
  ok(second.pids!.current >= 1 && second.pids!.current <= 4, `pids.current ${second.pids!.current}`);
  eq(second.pids!.limit, 0, 'no pids limit');
  cg.killAll('KILL');
  eq((await child.exited).signal, 'SIGKILL', 'killAll');
});

await check('freeze stops progress, thaw resumes it', async (path) => {
  const cg = openCgroup(path);
  cg.create();
  const file = `/tmp/progress-${path.slice(1)}`;
  const child = await runIn(cg, `while :; do echo x >> ${file}; done`);
  const size = () => (existsSync(file) ? statSync(file).size : 0);
  await sleep(300);
  await cg.freeze();
  ok(cg.isFrozen(), 'frozen');
  const at = size();
  await sleep(300);
  eq(size(), at, 'no progress while frozen');
  await cg.thaw();
  await sleep(300);
  ok(size() > at, 'progress after thaw');
  cg.killAll(9);
  await child.exited;
});

await check('device rules are enforced through eBPF', async (path) => {
  const cg = openCgroup(path);
  cg.create({ devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'r' }] });
  const child = await runIn(cg, '/bin/busybox cat /dev/null && echo read-ok; (echo x > /dev/null) 2>&- || echo write-denied');
  const { stdout } = await child.exited;
  ok(stdout.includes('read-ok') && stdout.includes('write-denied'), `output ${JSON.stringify(stdout)}`);
});

await check('memory limit below usage with checkBeforeUpdate is refused', async (path) => {
  const cg = openCgroup(path);
  cg.create({ memory: { limit: 128 * MiB } });
  const child = await runIn(cg, 'x=$(/bin/busybox head -c 12000000 /dev/zero | /bin/busybox tr "\\0" a); /bin/busybox sleep 30');
  for (let i = 0; i < 100 && cg.stats().memory!.usage < 8 * MiB; i++) await sleep(50);
  throwsCode(() => cg.update({ memory: { limit: 2 * MiB, checkBeforeUpdate: true } }), 'failed precondition', /memory\.limit.*usage/, 'shrink');
  eq(read(path, 'memory.max'), String(128 * MiB), 'limit unchanged');
  cg.killAll(9);
  await child.exited;
});

await check('v1-only knobs and bad values are refused, nothing left behind', (path) => {
  const cases: Array<[LinuxResources, string, RegExp]> = [
    [{ memory: { swappiness: 10 } }, 'failed precondition', /swappiness/],
    [{ memory: { swap: 64 * MiB } }, 'invalid argument', /memory\.swap.*memory\.limit/],
    [{ cpu: { realtimeRuntime: 1000 } }, 'failed precondition', /realtime/],
    [{ network: { classID: 1 } }, 'failed precondition', /net_cls/],
    [{ unified: { 'memory.nope': '1' } }, 'failed precondition', /unified\.memory\.nope/],
    [{ cpu: { cpus: '5' } }, 'invalid argument', /cpu\.cpus/],
  ];
  for (const [resources, code, pattern] of cases) {
    const cg = openCgroup(path);
    throwsCode(() => cg.create(resources), code, pattern, JSON.stringify(resources));
    ok(!existsSync(`${root}${path}`), `${JSON.stringify(resources)} left ${path} behind`);
  }
});

await check('destroy after a crash, and removeLeftoverCgroups on a frozen cgroup', async (path) => {
  const cg = openCgroup(path);
  cg.create({ pids: { limit: 50 } });
  const a = await runIn(cg, '/bin/busybox sleep 30');
  a.proc.kill('SIGKILL');
  await a.exited;
  await openCgroup(path).destroy();
  ok(!cg.exists(), 'removed after crash');
  cg.create();
  const b = await runIn(cg, '/bin/busybox sleep 30 & wait');
  await sleep(100);
  await cg.freeze();
  const removed = await removeLeftoverCgroups([path]);
  eq(removed.length, 1, 'removed one');
  eq((await b.exited).signal, 'SIGKILL', 'frozen process killed');
  ok(!cg.exists(), 'gone');
});

console.log('GUEST-DONE');
