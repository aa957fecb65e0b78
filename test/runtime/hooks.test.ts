// The hooks that run inside the container, beside runc: createContainer in the container's namespaces before
// pivot_root (its path resolved on the host), startContainer after `start` and before the process, its path
// resolved in the container's root. Each gets the state JSON on stdin; one that fails stops the container, with
// a message naming it.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { makeBundle } from '../helpers/bundle.ts';
import { tempDir } from '../helpers/tmp.ts';
import { CLI, uniqueId } from './helpers.ts';
import { runEach, scriptBundle } from './observe.ts';

const RUNTIMES: [string, string[]][] = [['runc', ['runc']], ['berth-runc', [process.execPath, CLI]]];

test.after.always(() => {
  for (const h of readdirSync('/sys/fs/cgroup')) { try { rmdirSync(join('/sys/fs/cgroup', h, 'hooks')); } catch { /* in use or absent */ } }
});

/** Output through a file: a created container keeps the stdio it was given open until it ends. */
function cli(bin: string[], root: string, args: string[]) {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const errFile = join(mkdtempSync(join(tmpdir(), 'hooks-err-')), 'err');
  const fd = openSync(errFile, 'w');
  try {
    const r = spawnSync(bin[0]!, [...bin.slice(1), '--root', root, ...args], { stdio: ['ignore', 'ignore', fd], env, timeout: 30000 });
    return { status: r.status ?? -1, stderr: readFileSync(errFile, 'utf8') };
  } finally {
    closeSync(fd);
    rmSync(dirname(errFile), { recursive: true, force: true });
  }
}

test.serial('createContainer and startContainer hooks run where the runtime spec says, through runc and berth-runc', async (t) => {
  const seen: Record<string, unknown> = {};
  for (const [name, bin] of RUNTIMES) {
    const dir = tempDir(t, `hooks-${name}-`);
    const root = join(dir, 'root');
    const evidence = join(dir, 'evidence');
    const bundle = makeBundle(join(dir, 'b'), {
      args: ['sh', '-c', 'cat /start-hook-saw; sleep 5'],
      edit: (s) => {
        s.linux.cgroupsPath = `/hooks/${uniqueId(name)}`;
        s.root.readonly = false;
        s.hooks = {
          // The host's shell, reached before pivot_root; it writes beside the test on the host.
          createContainer: [{ path: '/bin/sh', args: ['sh', '-c', `mkdir -p ${evidence}; cat > ${evidence}/create.json; readlink /proc/self/ns/mnt > ${evidence}/create-mntns; echo $HOOKVAR > ${evidence}/create-env`], env: ['HOOKVAR=from-create'], timeout: 10 }],
          // The container's busybox, after pivot_root: it sees the container's files only.
          startContainer: [{ path: '/bin/sh', args: ['sh', '-c', `cat > /start.json; [ ! -e ${evidence} ] && echo "in the container root" > /start-hook-saw`], timeout: 10 }],
        };
      },
    });
    const id = uniqueId('hk');
    t.is(cli(bin, root, ['create', '--bundle', bundle.dir, id]).status, 0, name);
    const createState = JSON.parse(readFileSync(join(evidence, 'create.json'), 'utf8'));
    t.false(existsSync(join(bundle.rootfs, 'start.json')), `${name}: startContainer waits for start`);
    const pid = JSON.parse(spawnSync(bin[0]!, [...bin.slice(1), '--root', root, 'state', id], { encoding: 'utf8' }).stdout).pid as number;
    t.is(readFileSync(join(evidence, 'create-mntns'), 'utf8').trim(), readlinkSync(`/proc/${pid}/ns/mnt`), `${name}: createContainer ran in the container's mount namespace`);
    t.not(readFileSync(join(evidence, 'create-mntns'), 'utf8').trim(), readlinkSync('/proc/self/ns/mnt'));
    t.is(readFileSync(join(evidence, 'create-env'), 'utf8'), 'from-create\n', `${name}: with the hook's env`);
    t.is(cli(bin, root, ['start', id]).status, 0, name);
    for (let i = 0; i < 100 && !existsSync(join(bundle.rootfs, 'start-hook-saw')); i++) await new Promise((r) => setTimeout(r, 30));
    const startState = JSON.parse(readFileSync(join(bundle.rootfs, 'start.json'), 'utf8'));
    t.is(readFileSync(join(bundle.rootfs, 'start-hook-saw'), 'utf8'), 'in the container root\n', name);
    // The spec's state pid is the host's view; runc hands these two hooks its init's own view (1) instead.
    if (name === 'berth-runc') t.deepEqual([createState.pid, startState.pid], [pid, pid], 'the host pid of the container process');
    t.is(cli(bin, root, ['delete', '--force', id]).status, 0);
    seen[name] = {
      createId: createState.id === id, createBundle: createState.bundle === bundle.dir, createStatus: createState.status,
      startId: startState.id === id, startStatus: startState.status, ociVersion: typeof createState.ociVersion,
    };
  }
  t.log(JSON.stringify(seen));
  t.true((seen['berth-runc'] as { createId: boolean }).createId);
  t.deepEqual(seen['berth-runc'], seen.runc);
});

test('a failing createContainer hook fails create with a message naming it; nothing is left behind', (t) => {
  const dir = tempDir(t);
  const root = join(dir, 'root');
  const bundle = makeBundle(join(dir, 'b'), { edit: (s) => {
    s.linux.cgroupsPath = `/hooks/${uniqueId('f')}`;
    s.hooks = { createContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'echo refusing >&2; exit 3'] }] };
  } });
  const id = uniqueId('hkf');
  const r = cli(RUNTIMES[1]![1], root, ['create', '--bundle', bundle.dir, id]);
  t.not(r.status, 0);
  t.regex(r.stderr, /createContainer hook \/bin\/sh exited with status 3: refusing/);
  t.false(existsSync(join(root, id)));
});

test('a startContainer hook that outlives its timeout is killed and the process never runs', async (t) => {
  const dir = tempDir(t);
  const root = join(dir, 'root');
  const bundle = makeBundle(join(dir, 'b'), { args: ['sh', '-c', 'touch /process-ran'], edit: (s) => {
    s.linux.cgroupsPath = `/hooks/${uniqueId('s')}`;
    s.hooks = { startContainer: [{ path: '/bin/sleep', args: ['sleep', '30'], timeout: 1 }] };
  } });
  const id = uniqueId('hks');
  const bin = RUNTIMES[1]![1];
  t.is(cli(bin, root, ['create', '--bundle', bundle.dir, id]).status, 0);
  t.is(cli(bin, root, ['start', id]).status, 0);
  for (let i = 0; i < 100 && !/"status":\s*"stopped"/.test(spawnSync(bin[0]!, [...bin.slice(1), '--root', root, 'state', id], { encoding: 'utf8' }).stdout); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  t.regex(spawnSync(bin[0]!, [...bin.slice(1), '--root', root, 'state', id], { encoding: 'utf8' }).stdout, /"status":\s*"stopped"/);
  t.false(existsSync(join(bundle.rootfs, 'process-ran')));
  cli(bin, root, ['delete', '--force', id]);
});

test.serial('a failing startContainer hook ends the container with status 1 and a message naming it, as runc', async (t) => {
  const bundle = scriptBundle(t, 'echo process ran', (s) => {
    s.hooks = { startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'echo refusing >&2; exit 3'] }] };
  });
  const seen = await runEach(t, ['runc', 'berth-runc', 'fast'], bundle);
  for (const way of ['runc', 'berth-runc', 'fast'] as const) t.deepEqual([seen[way].status, seen[way].stdout], [1, ''], way);
  for (const way of ['berth-runc', 'fast'] as const) t.regex(seen[way].stderr, /error running hook: startContainer hook \/bin\/sh exited with status 3: refusing/, way);
});
