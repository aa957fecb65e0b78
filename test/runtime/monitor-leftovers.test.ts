// What a monitored command leaves beside the watched process is reparented to berth-monitor (a subreaper):
// runsc's gofer, which ends just after its sandbox, or a daemon of a container without a PID namespace. The monitor
// reports the watched process's exit at once, then reaps such leftovers for a bounded time instead of leaving them
// to the host's init (on this machine kind a lagging reaper: `runsc delete` waited over a second for the gofer).
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startMonitored } from '../../runtimes/monitor.ts';
import { tempDir } from '../helpers/tmp.ts';

const ppidOf = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
const gone = (pid: number) => !existsSync(`/proc/${pid}`);
/** Ended: gone, or a zombie of ours (the monitor is our child: whether we have reaped it yet is not its doing). */
const ended = (pid: number) => { try { return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z'); } catch { return true; } };

/** The monitor and its pipes do not hold the event loop open (as in a shim): the test does, while it waits. */
function keepAlive(t: { teardown(fn: () => void): void }): void {
  const timer = setInterval(() => undefined, 1000);
  t.teardown(() => clearInterval(timer));
}

async function until(what: () => boolean, ms: number): Promise<boolean> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await sleep(10)) if (what()) return true;
  return what();
}

test('a leftover that ends soon after the watched process is reaped by the monitor, never a zombie of init', async (t) => {
  keepAlive(t);
  const dir = tempDir(t, 'monitor-left-');
  const pidFile = join(dir, 'watched.pid');
  const leftFile = join(dir, 'left.pid');
  // The watched process is `sleep 0.1`; the subshell sleeping 1 s outlives it and sh, so it is the monitor's.
  const m = startMonitored({ exitFile: join(dir, 'exit'), pidFile, command: ['/bin/sh', '-c', `(sleep 1) & echo $! > ${leftFile}; sleep 0.1 & echo $! > ${pidFile}`] });
  await m.pid;
  const left = Number(readFileSync(leftFile, 'utf8'));
  // (Unless a loaded host let it end and go before this test got to look.)
  const parent = (() => { try { return ppidOf(left); } catch { return undefined; } })();
  if (parent !== undefined) t.is(parent, m.monitorPid, 'the leftover was reparented to the monitor');
  t.is((await m.exited).status, 0);
  t.true(await until(() => gone(left), 3000), 'the leftover is reaped once it ends: /proc has no zombie of it');
  t.true(await until(() => ended(m.monitorPid), 3000), 'then the monitor exits');
});

test('a leftover that outlives the bounded wait does not hold the monitor: it exits within its bound', async (t) => {
  keepAlive(t);
  const dir = tempDir(t, 'monitor-left-');
  const pidFile = join(dir, 'watched.pid');
  const leftFile = join(dir, 'left.pid');
  const m = startMonitored({ exitFile: join(dir, 'exit'), pidFile, command: ['/bin/sh', '-c', `sleep 30 & echo $! > ${leftFile}; true & echo $! > ${pidFile}`] });
  await m.exited;
  const left = Number(readFileSync(leftFile, 'utf8'));
  t.teardown(() => { try { process.kill(left, 'SIGKILL'); } catch { /* gone */ } });
  // What becomes of the leftover then is the host init's business (this machine kind's init kills what it adopts),
  // so its life after the monitor is not asserted: how soon this test sees the exit depends on the host's load.
  t.true(await until(() => ended(m.monitorPid), 6000), 'the monitor exits within its bound');
});
