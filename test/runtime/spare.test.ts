// A spare berth-monitor driven by hand, to pin down an ordering the shim leaves to chance: its child may run the
// plan, and leave the container's init behind, before the monitor has even read its own arguments. The init must
// still be the monitor's (a subreaper from the start), and its exit reported.
import test from 'ava';
import { closeSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { nativeBinary } from '../../api/native-binary.ts';
import { spawnProcess } from '../../api/spawn.ts';
import { sysAddon } from '../../api/sys-addon.ts';
import { openCgroup } from '../../runtimes/cgroups/index.ts';
import { buildPlan } from '../../runtimes/oci/plan.ts';
import { makeBundle } from '../helpers/bundle.ts';
import { tempDir } from '../helpers/tmp.ts';

function framed(fields: string[]): Buffer {
  const payload = Buffer.from(fields.map((f) => `${f}\0`).join(''));
  return Buffer.concat([Buffer.from(`${payload.length}\n`), payload]);
}

const ppidOf = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);

test('a spare\'s child that creates the container before its monitor reads its arguments leaves the init to the monitor, which reports its exit', async (t) => {
  const dir = tempDir(t, 'spare-');
  const bundle = makeBundle(join(dir, 'bundle'), { args: ['/bin/sh', '-c', 'exit 7'] });
  const id = `spare-race-${process.pid}`;
  bundle.spec.linux.cgroupsPath = `/berth-spare-test/${id}`;
  const cgroup = openCgroup(bundle.spec.linux.cgroupsPath, { containerId: id });
  cgroup.create();
  t.teardown(() => cgroup.destroy().catch(() => undefined));
  const execFifo = join(dir, 'exec.fifo');
  sysAddon().mkfifo(execFifo, 0o600);
  const pidFile = join(dir, 'init.pid');
  const exitFile = join(dir, 'init.exit');
  const planPath = join(dir, 'plan');
  // proceed: the init goes on without us, so the child is done with its plan as soon as it can be.
  const plan = buildPlan({ spec: bundle.spec, rootfs: bundle.rootfs, mode: 'create', execFifo, cgroup, pidFile, proceed: true });
  writeFileSync(planPath, plan);

  const spare = spawnProcess(nativeBinary('berth-monitor'), ['--spare'], { stdio: ['pipe', 'ignore', 'pipe', 'pipe', 'pipe', 'pipe'], detached: true, argv0: 'berth-monitor' });
  t.teardown(() => { try { process.kill(spare.pid, 'SIGKILL'); } catch { /* gone */ } });
  const [args, , , notify, sync, childPlan] = spare.stdio as Socket[];
  const notes = createInterface({ input: notify! })[Symbol.asyncIterator]();
  const reports = createInterface({ input: sync! })[Symbol.asyncIterator]();
  t.regex((await notes.next()).value, /^spare \d+$/);

  // The child first, and all the way: pid, then ready; then it exits (create mode) and the init is orphaned.
  childPlan!.end(framed(['', '', '', planPath]));
  const pid = Number(/^pid (\d+)$/.exec((await reports.next()).value)?.[1]);
  t.true(pid > 0);
  t.teardown(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } });
  t.is((await reports.next()).value, 'ready');
  await new Promise((r) => setTimeout(r, 100));
  t.is(ppidOf(pid), spare.pid, 'the init is the monitor\'s, not pid 1\'s');

  // Only now the monitor's own arguments; then start the container and see its exit come back.
  args!.end(framed([exitFile, '3', '--pid-file', pidFile, '--init', planPath]));
  t.is((await notes.next()).value, `pid ${pid}`);
  const fifo = openSync(execFifo, 'r'); // start, as the runtime does: take the init's byte
  t.is(readSync(fifo, Buffer.alloc(1)), 1);
  closeSync(fifo);
  t.regex((await notes.next()).value, /^exit 7 \d+$/);
  t.is(readFileSync(exitFile, 'utf8').split(' ')[0], '7');
  rmSync(execFifo, { force: true });
});
