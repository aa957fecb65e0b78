// Docker Engine 20.10 (Debian's dockerd and docker CLI) on berthd: `dockerd --containerd <berthd socket>`, the
// whole container life as a Docker user lives it, and a berthd killed with SIGKILL while containers run heals
// after a restart. Twice: with Docker's default runtime (io.containerd.runc.v2, containerd's own runc shim
// driven by berthd), and with berthd's config serving io.containerd.runc.v2 with berth's shim on its fast path.
// One berthd and one dockerd per flow, shared by its tests (dockerd takes seconds to start).
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeBusyboxDockerArchive } from '../helpers/docker-archive.ts';
import { DaemonProcess, Dockerd, type RunResult } from '../helpers/docker.ts';
import { removeTree } from '../helpers/tmp.ts';
import { REPO } from './helpers.ts';

const IMAGE = 'busybox:berth';
const MAPPING = [
  '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."io.containerd.runc.v2"]',
  '  runtime_type = "io.containerd.berth.v2"',
  '  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes."io.containerd.runc.v2".options]',
  '    BinaryName = "fast"',
].join('\n');

interface Flow { name: string; config: string }
const FLOWS: Flow[] = [
  { name: 'runc shim', config: '' },
  { name: 'berth shim (fast path)', config: MAPPING },
];

interface Env { berthd: DaemonProcess; dockerd: Dockerd; dir: string }
const envs = new Map<string, Promise<Env>>();

async function startEnv(flow: Flow): Promise<Env> {
  const dir = mkdtempSync(join(process.env.BERTH_TEST_TMP ?? tmpdir(), 'docker-flow-'));
  writeFileSync(join(dir, 'config.toml'), flow.config + '\n');
  const address = join(dir, 'berthd.sock');
  const berthd = new DaemonProcess('berthd', [process.execPath, join(REPO, 'dist', 'berthd.mjs'), '-c', join(dir, 'config.toml'),
    '--root', join(dir, 'root'), '--state', join(dir, 'state'), '--address', address, '-l', 'warn'], address);
  await berthd.start();
  const dockerd = await Dockerd.start(address);
  const archive = join(dir, 'busybox.tar');
  await writeBusyboxDockerArchive(archive, IMAGE);
  const loaded = await dockerd.docker('load', '-i', archive);
  if (loaded.code !== 0) throw new Error(`docker load: ${loaded.stderr}`);
  return { berthd, dockerd, dir };
}

function env(flow: Flow): Promise<Env> {
  let e = envs.get(flow.name);
  if (!e) { e = startEnv(flow); envs.set(flow.name, e); }
  return e;
}

test.after.always(async () => {
  for (const e of envs.values()) {
    const { berthd, dockerd, dir } = await e.catch(() => ({ berthd: undefined, dockerd: undefined, dir: undefined }));
    await dockerd?.stop();
    await berthd?.stop();
    if (dir) removeTree(dir);
  }
});

/** Fails the test with what the command printed when it did not exit as expected. */
function ok(t: ExecutionContext, r: RunResult, code = 0): string {
  t.is(r.code, code, `exit ${r.code}; stdout: ${r.stdout} stderr: ${r.stderr}`);
  return r.stdout;
}

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

for (const flow of FLOWS) {
  test.serial(`${flow.name}: docker run: output, exit code, -i, -t, --memory, --network none/host and a network namespace of its own`, async (t) => {
    const { dockerd: d } = await env(flow);
    const run = await d.docker('run', '--rm', '--network', 'none', IMAGE, 'sh', '-c', 'echo out; echo err >&2; exit 3');
    t.is(ok(t, run, 3), 'out\n');
    t.is(run.stderr, 'err\n');
    t.is(ok(t, await d.dockerWithInput('typed in\n', 'run', '-i', '--rm', '--network', 'none', IMAGE, 'sh', '-c', 'read x; echo got $x')), 'got typed in\n');
    t.regex(ok(t, await d.docker('run', '-t', '--rm', '--network', 'none', IMAGE, 'tty')), /^\/dev\/pts\/\d+\r\n$/);
    t.is(ok(t, await d.docker('run', '--rm', '--network', 'none', '--memory', '64m', IMAGE, 'cat', '/sys/fs/cgroup/memory/memory.limit_in_bytes')), `${64 * 1024 * 1024}\n`);
    const hostNet = readlinkSync('/proc/self/ns/net');
    const own = ok(t, await d.docker('run', '--rm', '--network', 'none', IMAGE, 'sh', '-c', 'readlink /proc/self/ns/net; tail -n +3 /proc/net/dev | cut -d: -f1'));
    const [netns, ...links] = own.trim().split('\n');
    t.not(netns, hostNet, 'a network namespace of its own');
    t.deepEqual(links.map((l) => l.trim()), ['lo'], '--network none: only loopback');
    t.is(ok(t, await d.docker('run', '--rm', '--network', 'host', IMAGE, 'readlink', '/proc/self/ns/net')).trim(), hostNet);
  });

  test.serial(`${flow.name}: a detached container: exec, top, logs, pause/unpause, stats, stop, start, restart, kill, rm -f`, async (t) => {
    const { dockerd: d } = await env(flow);
    const name = `life-${flow.name.split(' ')[0]}`;
    ok(t, await d.docker('run', '-d', '--name', name, '--network', 'none', '--memory', '64m', IMAGE, 'sh', '-c', 'echo started; trap "echo bye; exit 0" TERM; while true; do sleep 1; done'));
    t.is(ok(t, await d.docker('exec', name, 'sh', '-c', 'echo in exec; exit 4'), 4), 'in exec\n');
    t.regex(ok(t, await d.docker('top', name)), /while true; do sleep 1; done/);
    await eventually('logs', async () => (await d.docker('logs', name)).stdout === 'started\n');
    ok(t, await d.docker('pause', name));
    t.is(ok(t, await d.docker('inspect', '-f', '{{.State.Status}}', name)).trim(), 'paused');
    ok(t, await d.docker('unpause', name));
    t.is(ok(t, await d.docker('inspect', '-f', '{{.State.Status}}', name)).trim(), 'running');
    const stats = ok(t, await d.docker('stats', '--no-stream', '--format', '{{.MemUsage}}|{{.PIDs}}', name)).trim();
    const [mem, pids] = stats.split('|');
    t.regex(mem!, /^[1-9][\d.]*[KM]iB \/ 64MiB$/, stats);
    t.true(Number(pids) >= 1, stats);
    ok(t, await d.docker('stop', '-t', '5', name));
    t.is(ok(t, await d.docker('inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', name)).trim(), 'exited 0');
    t.is(ok(t, await d.docker('logs', name)), 'started\nbye\n');
    ok(t, await d.docker('start', name));
    t.is(ok(t, await d.docker('inspect', '-f', '{{.State.Status}}', name)).trim(), 'running');
    const before = ok(t, await d.docker('inspect', '-f', '{{.State.Pid}}', name)).trim();
    ok(t, await d.docker('restart', '-t', '5', name));
    const after = ok(t, await d.docker('inspect', '-f', '{{.State.Status}} {{.State.Pid}}', name)).trim();
    t.regex(after, /^running \d+$/);
    t.not(after.split(' ')[1], before, 'a new init after restart');
    ok(t, await d.docker('kill', name));
    await eventually('kill seen', async () => (await d.docker('inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', name)).stdout.trim() === 'exited 137');
    ok(t, await d.docker('start', name));
    ok(t, await d.docker('rm', '-f', name));
    t.is(ok(t, await d.docker('ps', '-aq', '--filter', `name=${name}`)), '');
  });

  test.serial(`${flow.name}: berthd killed with SIGKILL while containers run, then restarted: exec works, exits (also one while it was down) are seen, new runs work`, async (t) => {
    const { dockerd: d, berthd } = await env(flow);
    const names = [0, 1].map((i) => `heal-${flow.name.split(' ')[0]}-${i}`);
    for (const name of names) ok(t, await d.docker('run', '-d', '--name', name, '--network', 'none', IMAGE, 'sleep', '1000'));
    // One ends while berthd is down: its exit must still reach dockerd once both are back.
    const ends = `heal-${flow.name.split(' ')[0]}-ends`;
    ok(t, await d.docker('run', '-d', '--name', ends, '--network', 'none', IMAGE, 'sh', '-c', 'sleep 1; exit 7'));
    await berthd.kill9();
    await new Promise((r) => setTimeout(r, 3000));
    await berthd.start();
    const restarted = Date.now();
    // dockerd reconnects by itself; within a few seconds the containers answer again.
    await eventually('exec after restart', async () => (await d.docker('exec', names[0]!, 'echo', 'still here')).stdout === 'still here\n');
    t.true(Date.now() - restarted < 10_000);
    t.is(ok(t, await d.docker('exec', names[1]!, 'sh', '-c', 'exit 5'), 5), '');
    // Exits after the restart reach dockerd (it re-subscribed to events once the health service answered).
    ok(t, await d.docker('kill', names[0]!));
    await eventually('exit seen after restart', async () => (await d.docker('inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', names[0]!)).stdout.trim() === 'exited 137');
    const wait = d.docker('wait', names[1]!);
    ok(t, await d.docker('kill', names[1]!));
    t.is(ok(t, await wait).trim(), '137');
    t.is(ok(t, await d.docker('run', '--rm', '--network', 'none', IMAGE, 'echo', 'new run')), 'new run\n');
    await eventually('the exit that happened while berthd was down', async () => (await d.docker('inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', ends)).stdout.trim() === 'exited 7');
    for (const name of [...names, ends]) ok(t, await d.docker('rm', '-f', name));
  });
}
