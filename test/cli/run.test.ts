// berth run / containers create / tasks against berthd: an image whose layers are unpacked into overlayfs
// snapshots named by chain ID, run with containerd's default spec plus the image config and flags.
import test from 'ava';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxImage } from '../helpers/image.ts';
import { tempDir } from '../helpers/tmp.ts';
import { startDaemon } from '../daemon/helpers.ts';
import { berth, loadImage } from './helpers.ts';

test.serial('berth run --rm prints the container\'s output and exits with its status', async (t) => {
  const d = await startDaemon(t);
  await loadImage(t, d.client('default'), 'busybox:test', await busyboxImage({ tag: 'run' }));
  const res = await berth(d.address, ['run', '--rm', '--env', 'GREETING=hi', 'busybox:test', 'r1', 'sh', '-c', 'echo "$GREETING from $(hostname)"; cat /etc/berth-release; id -u; exit 4']);
  t.is(res.code, 4, res.stderr);
  t.regex(res.stdout, /^hi from .+\nberth test image run\n0\n$/);
  t.is((await berth(d.address, ['containers', 'ls', '-q'])).stdout, '', '--rm removed the container');
  t.is((await berth(d.address, ['tasks', 'ls', '-q'])).stdout, '');
  const snaps = (await berth(d.address, ['snapshots', 'ls'])).stdout;
  t.notRegex(snaps, /\br1\b/, 'and its snapshot');
});

test.serial('run flags reach the spec: user, cwd, read-only root, capabilities, memory limit', async (t) => {
  const d = await startDaemon(t);
  await loadImage(t, d.client('default'), 'busybox:test', await busyboxImage({ tag: 'flags' }));
  const res = await berth(d.address, ['run', '--rm', '--user', '1000:1000', '--cwd', '/tmp', '--read-only', '--cap-drop', 'CAP_CHOWN', '--memory-limit', '67108864',
    'busybox:test', 'r2', 'sh', '-c', 'id -u; id -g; pwd; touch /x 2>&1 | grep -c Read-only; grep CapBnd /proc/self/status; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || echo nolimit']);
  t.is(res.code, 0, res.stderr);
  const lines = res.stdout.trim().split('\n');
  t.deepEqual(lines.slice(0, 4), ['1000', '1000', '/tmp', '1']);
  t.regex(lines[4]!, /^CapBnd:\s+00000000a80425fa$/, 'containerd\'s default capabilities minus CAP_CHOWN');
});

test.serial('containers create, tasks start -d, ls, exec, kill, delete', async (t) => {
  const d = await startDaemon(t);
  await loadImage(t, d.client('default'), 'busybox:test', await busyboxImage({ tag: 'tasks' }));
  t.is((await berth(d.address, ['containers', 'create', '--label', 'app=web', 'busybox:test', 'svc', 'sleep', '300'])).code, 0);
  t.regex((await berth(d.address, ['containers', 'ls'])).stdout, /svc\s+busybox:test\s+io\.containerd\.berth\.v2/);
  t.is((await berth(d.address, ['tasks', 'start', '-d', 'svc'])).code, 0);
  t.regex((await berth(d.address, ['tasks', 'ls'])).stdout, /svc\s+\d+\s+RUNNING/);
  const ex = await berth(d.address, ['tasks', 'exec', '--exec-id', 'e1', 'svc', 'sh', '-c', 'echo inside; exit 3']);
  t.is(ex.code, 3, ex.stderr);
  t.is(ex.stdout, 'inside\n');
  t.is((await berth(d.address, ['tasks', 'kill', '-s', 'KILL', 'svc'])).code, 0);
  const del = await berth(d.address, ['tasks', 'delete', '--force', 'svc']);
  t.is(del.stdout, 'svc exited 137\n', del.stderr);
  t.is((await berth(d.address, ['containers', 'rm', 'svc'])).code, 0);
  t.is((await berth(d.address, ['containers', 'ls', '-q'])).stdout, '');
});

test.serial('run refuses what it cannot do with one clear line', async (t) => {
  const d = await startDaemon(t);
  const missing = await berth(d.address, ['run', 'nope:1', 'x']);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^berth: image "nope:1": not found/);
  await loadImage(t, d.client('default'), 'busybox:test', await busyboxImage({ tag: 'bad' }));
  const tty = await berth(d.address, ['run', '-t', 'busybox:test', 'x1', 'sh']);
  t.regex(tty.stderr, /^berth: --tty: stdin is not a terminal/);
  const user = await berth(d.address, ['run', '--user', 'nobody', 'busybox:test', 'x2', 'true']);
  t.regex(user.stderr, /numeric uid/);
  const runtime = await berth(d.address, ['run', '--rm', '--runtime', 'io.containerd.nosuch.v2', 'busybox:test', 'x3', 'true']);
  t.is(runtime.code, 1);
  t.regex(runtime.stderr, /containerd-shim-nosuch-v2 not found/);
  t.is((await berth(d.address, ['containers', 'ls', '-q'])).stdout, '', 'nothing left behind');
});

test.serial('berth images pull unpacks into overlayfs, then run uses it', async (t) => {
  const { registryWithImage } = await import('../helpers/registry.ts');
  const image = await busyboxImage({ tag: 'pulled' });
  const { ref } = await registryWithImage(t, image, 'lib/busybox:pulled');
  const d = await startDaemon(t);
  const pull = await berth(d.address, ['images', 'pull', ref]);
  t.is(pull.code, 0, pull.stderr);
  for (const l of image.manifests[0]!.layers) t.regex(pull.stderr, new RegExp(`${l.descriptor.digest.slice(7, 19)}: unpacked`));
  const run = await berth(d.address, ['run', '--rm', ref, 'p1', 'cat', '/etc/berth-release']);
  t.is(run.code, 0, run.stderr);
  t.is(run.stdout, 'berth test image pulled\n');
  const again = await berth(d.address, ['images', 'pull', ref]);
  for (const l of image.manifests[0]!.layers) t.regex(again.stderr, new RegExp(`${l.descriptor.digest.slice(7, 19)}: skipped`));
});

test.serial('run applies containerd\'s default seccomp profile: busybox works, namespaces and mounts are refused', async (t) => {
  const d = await startDaemon(t);
  await loadImage(t, d.client('default'), 'busybox:test', await busyboxImage({ tag: 'seccomp' }));
  const res = await berth(d.address, ['run', '--rm', 'busybox:test', 's1', 'sh', '-c',
    'grep Seccomp: /proc/self/status; unshare -n true 2>/dev/null; echo unshare=$?; mount -t tmpfs t /mnt 2>/dev/null; echo mount=$?; ls / >/dev/null; echo ls=$?']);
  t.is(res.code, 0, res.stderr);
  t.is(res.stdout, 'Seccomp:\t2\nunshare=1\nmount=1\nls=0\n');
  const off = await berth(d.address, ['run', '--rm', '--seccomp=false', 'busybox:test', 's2', 'grep', 'Seccomp:', '/proc/self/status']);
  t.is(off.stdout, 'Seccomp:\t0\n', off.stderr);
});

test.serial('tasks metrics: memory, cpu and pids of a running task, on the fast path and through runc', async (t) => {
  const d = await startDaemon(t);
  await loadImage(t, d.client('default'), 'busybox:test', await busyboxImage({ tag: 'metrics' }));
  for (const [id, extra] of [['m-fast', []], ['m-runc', ['--runc-binary', 'runc']]] as const) {
    t.is((await berth(d.address, ['run', '-d', '--memory-limit', '33554432', ...extra, 'busybox:test', id, 'sleep', '300'])).code, 0);
    const res = await berth(d.address, ['tasks', 'metrics', '--json', id]);
    t.is(res.code, 0, res.stderr);
    const m = JSON.parse(res.stdout).metrics;
    t.true(m.pids.current >= 1, `${id} pids`);
    t.true(m.memory.usage.usage > 0, `${id} memory usage`);
    t.is(m.memory.usage.limit, 33554432, `${id} memory limit`);
    t.true(m.cpu.usage.total > 0, `${id} cpu`);
    const table = await berth(d.address, ['tasks', 'metrics', id]);
    t.regex(table.stdout, /memory\.limit_in_bytes\s+33554432/);
    await berth(d.address, ['tasks', 'delete', '--force', id]);
    await berth(d.address, ['containers', 'rm', id]);
  }
});

test.serial('berth run --log-uri: output goes to a binary:// logger or a file instead of the terminal; the exit status still comes back', async (t) => {
  const d = await startDaemon(t);
  await loadImage(t, d.client('default'), 'busybox:log', await busyboxImage({ tag: 'log' }));
  const dir = tempDir(t);
  const logger = join(dir, 'logger.sh');
  writeFileSync(logger, `#!/bin/sh\nexec 5>&-\ncat <&3 > ${dir}/out & cat <&4 > ${dir}/err & wait\necho "$CONTAINER_NAMESPACE $CONTAINER_ID" > ${dir}/who\n`);
  chmodSync(logger, 0o755);
  const res = await berth(d.address, ['run', '--rm', '--log-uri', `binary://${logger}`, 'busybox:log', 'log1', 'sh', '-c', 'echo out; echo err >&2; exit 2']);
  t.is(res.code, 2, res.stderr);
  t.is(res.stdout, '');
  for (let i = 0; i < 100 && !existsSync(join(dir, 'who')); i++) await new Promise((r) => setTimeout(r, 50));
  t.is(readFileSync(join(dir, 'out'), 'utf8'), 'out\n');
  t.is(readFileSync(join(dir, 'err'), 'utf8'), 'err\n');
  t.is(readFileSync(join(dir, 'who'), 'utf8'), 'default log1\n');
  const file = join(dir, 'logs', 'c.log');
  t.is((await berth(d.address, ['run', '--rm', '--log-uri', file, 'busybox:log', 'log2', 'echo', 'to-file'])).code, 0);
  t.is(readFileSync(file, 'utf8'), 'to-file\n');
  const bad = await berth(d.address, ['run', '--rm', '--log-uri', 'syslog://x', 'busybox:log', 'log3', 'true']);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /--log-uri syslog:\/\/x: want binary:/);
  t.is((await berth(d.address, ['containers', 'ls', '-q'])).stdout, '', 'nothing was created');
});

test.serial('run refuses an id in use and an image not unpacked for the snapshotter, undoing only what it made', async (t) => {
  const d = await startDaemon(t);
  await loadImage(t, d.client('default'), 'busybox:test', await busyboxImage({ tag: 'undo' }));
  t.is((await berth(d.address, ['containers', 'create', 'busybox:test', 'taken', 'sleep', '300'])).code, 0);
  const again = await berth(d.address, ['run', '--rm', 'busybox:test', 'taken', '/bin/true']);
  t.is(again.code, 1);
  t.regex(again.stderr, /^berth: .*taken.*already exists/);
  t.is((await berth(d.address, ['containers', 'ls', '-q'])).stdout, 'taken\n', 'the container that was there stays');
  t.regex((await berth(d.address, ['snapshots', 'ls'])).stdout, /\btaken\b/, 'and so does its snapshot');
  const elsewhere = await berth(d.address, ['run', '--rm', '--snapshotter', 'native', 'busybox:test', 'fresh', '/bin/true']);
  t.is(elsewhere.code, 1);
  t.regex(elsewhere.stderr, /^berth: image busybox:test is not unpacked for snapshotter native: pull it with berth images pull\n$/);
  t.is((await berth(d.address, ['containers', 'ls', '-q'])).stdout, 'taken\n', 'no record is left for the refused run');
  t.is((await berth(d.address, ['leases', 'ls', '-q'])).stdout, '', 'nor a lease');
});
