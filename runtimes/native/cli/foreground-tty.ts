// `berth-runc run` and `exec` in the foreground for a process with a terminal and no --console-socket, as
// runc: the pty's master is received and relayed to our own stdio by berth-monitor (which opens our fds 0 and
// 1 through /proc), our terminal goes raw meanwhile, and window changes follow it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeRaw } from '../../../api/terminal.ts';
import { consolePaths, sendControl, type Monitored } from '../../monitor.ts';
import type { Process } from '../../oci/spec.ts';
import type { CreateOptions, Runtime } from '../container.ts';

type Relay = NonNullable<CreateOptions['monitor']>;

/** Runs `start(relay)` (which creates the process under the relay's monitor) and waits for its exit status. */
async function relayed(start: (relay: Relay) => Promise<Monitored>): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-runc-tty-'));
  const relay: Relay = {
    exitFile: join(dir, 'exit'),
    stdio: { stdin: `/proc/${process.pid}/fd/0`, stdout: `/proc/${process.pid}/fd/1` },
    console: consolePaths(dir, 'tty'),
  };
  const restore = process.stdin.isTTY ? makeRaw() : undefined;
  const resize = () => { if (process.stdout.isTTY) sendControl(relay.console!.control, `resize ${process.stdout.columns} ${process.stdout.rows}`); };
  // The monitor and its pipe do not hold our event loop (a shim must be able to exit before them): we must.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  try {
    const monitored = await start(relay);
    resize();
    process.stdout.on('resize', resize);
    return (await monitored.exited).status;
  } finally {
    clearInterval(keepAlive);
    process.stdout.off('resize', resize);
    restore?.();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Our window's size, for a process that must start at it rather than get it a moment later. */
const ourSize = () => (process.stdout.isTTY ? { width: process.stdout.columns, height: process.stdout.rows } : undefined);

export function runWithTerminal(runtime: Runtime, id: string, opts: CreateOptions): Promise<number> {
  return relayed(async (relay) => {
    const size = ourSize();
    const { monitored } = await runtime.create(id, { ...opts, monitor: relay, ...(size ? { consoleSize: size } : {}) });
    await runtime.start(id);
    return monitored!;
  });
}

export function execWithTerminal(runtime: Runtime, id: string, proc: Process, opts: { pidFile?: string; preserveFds?: number }): Promise<number> {
  return relayed(async (relay) => {
    let monitored: Monitored | undefined;
    const size = ourSize();
    const sized = size ? { ...proc, consoleSize: size } : proc;
    await runtime.exec(id, sized, { ...opts, monitor: relay, onMonitor: (m) => { monitored = m; } });
    return monitored!;
  });
}
