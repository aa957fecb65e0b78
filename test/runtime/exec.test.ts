import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle.ts';
import { tempDir } from '../helpers/tmp.ts';
import { berthRunc, runtimeRoot, uniqueId } from './helpers.ts';

function runningContainer(t: any): { root: string; id: string; dir: string } {
  const root = runtimeRoot(t);
  const dir = tempDir(t);
  const bundle = makeBundle(join(dir, 'b'), { args: ['/bin/sleep', '60'] });
  const id = uniqueId();
  t.is(berthRunc(root, ['run', '--detach', '--bundle', bundle.dir, id]).status, 0);
  return { root, id, dir };
}

test('exec runs in the container namespaces and cgroup, with its exit status, user, env and cwd', (t) => {
  const { root, id } = runningContainer(t);
  const r = berthRunc(root, ['exec', '--user', '1000:1000', '--env', 'GREETING=hi', '--cwd', '/tmp', id,
    'sh', '-c', 'echo $$ $(hostname) $(cat /proc/1/comm) $GREETING $(pwd); id -u; ls /proc | grep -c "^[0-9]"; exit 4']);
  t.is(r.status, 4, r.stderr);
  const [first, uid, procs] = r.stdout.trim().split('\n');
  t.regex(first!, /^\d+ berth sleep hi \/tmp$/);
  t.not(first!.split(' ')[0], '1', 'not the container init');
  t.is(uid, '1000');
  t.true(Number(procs) <= 4, `sees only the container's processes: ${procs}`);
});

test('exec --process JSON, --detach with --pid-file; the process is in the container cgroup', async (t) => {
  const { root, id, dir } = runningContainer(t);
  const processFile = join(dir, 'process.json');
  writeFileSync(processFile, JSON.stringify({ args: ['/bin/sleep', '30'], cwd: '/', user: { uid: 0, gid: 0 }, env: ['PATH=/bin'] }));
  const pidFile = join(dir, 'exec.pid');
  t.is(berthRunc(root, ['exec', '--detach', '--pid-file', pidFile, '--process', processFile, id]).status, 0);
  const pid = Number(readFileSync(pidFile, 'utf8'));
  const pids = JSON.parse(berthRunc(root, ['ps', '--format', 'json', id]).stdout);
  t.true(pids.includes(pid), `${pid} in ${pids}`);
  t.is(pids.length, 2);
});

test('exec runs in a created container (as runc); it is refused for stopped and unknown containers and without a command, exiting 255', (t) => {
  const root = runtimeRoot(t);
  const bundle = makeBundle(join(tempDir(t), 'b'), { args: ['/bin/true'] });
  const id = uniqueId();
  t.is(berthRunc(root, ['create', '--bundle', bundle.dir, id]).status, 0);
  const inCreated = berthRunc(root, ['exec', id, 'sh', '-c', 'echo $(cat /proc/1/comm)']);
  t.is(inCreated.status, 0, inCreated.stderr);
  t.regex(inCreated.stdout, /berth-ini/, 'pid 1 is still berth-init, waiting for start');
  const noCommand = berthRunc(root, ['exec', id]);
  t.is(noCommand.status, 255);
  t.regex(noCommand.stderr, /exec failed: process args cannot be empty/);
  const ghost = berthRunc(root, ['exec', 'ghost', 'true']);
  t.is(ghost.status, 255);
  t.regex(ghost.stderr, /container ghost does not exist/);
  t.is(berthRunc(root, ['start', id]).status, 0);
  for (let i = 0; i < 100 && JSON.parse(berthRunc(root, ['state', id]).stdout).status !== 'stopped'; i++) { /* wait for /bin/true */ }
  const stopped = berthRunc(root, ['exec', id, 'true']);
  t.is(stopped.status, 255);
  t.regex(stopped.stderr, /cannot exec in a stopped container/);
});
