// Serve mode: the long-lived shim. Logs go to the bundle's `log` FIFO when the daemon reads it.
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import pino, { type Logger } from 'pino';
import { TtrpcServer, type TtrpcHandler } from '../api/ttrpc/server.ts';
import { spareMonitors } from '../runtimes/monitor.ts';
import { closeRuntimes } from '../runtimes/oci-runtime.ts';
import { socketAccepts } from '../api/unix-socket.ts';
import { EventPublisher } from './events.ts';
import type { ShimFlags } from './main.ts';
import { ShimService } from './service.ts';

/** Where backends keep their state (<root>/<backend>/<namespace>): the state directory of the daemon that made
 * the bundle (<state>/io.containerd.runtime.v2.task/<namespace>/<id>), so that two daemons on one host never
 * share a container's runtime state; /run/berth for a bundle laid out otherwise. */
export function stateRootOf(bundle: string): string {
  const tasks = dirname(dirname(resolve(bundle)));
  return basename(tasks) === 'io.containerd.runtime.v2.task' ? dirname(tasks) : '/run/berth';
}
const IDLE_EXIT_MS = 5 * 60 * 1000;

function logger(bundle: string, debug: boolean): Logger {
  let fd: number;
  try {
    fd = openSync(join(bundle, 'log'), constants.O_WRONLY | constants.O_NONBLOCK);
  } catch {
    fd = openSync('/dev/null', 'w');
  }
  return pino({ level: debug ? 'debug' : 'info' }, pino.destination({ fd, sync: true }));
}

/**
 * A shim that serves a group keeps a spare monitor for the next container (runtimes/monitor.ts), made while no
 * request is in flight: Wait, a long poll, does not count.
 */
function withSpareMonitors(handlers: Record<string, TtrpcHandler>): Record<string, TtrpcHandler> {
  return Object.fromEntries(Object.entries(handlers).map(([name, handler]) => [name, name === 'Wait' ? handler : async (req, ctx) => {
    spareMonitors.begin();
    try { return await handler(req, ctx); } finally { spareMonitors.end(); }
  }]));
}

export async function serve(f: ShimFlags): Promise<void> {
  const log = logger(process.cwd(), f.debug).child({ namespace: f.namespace, id: f.id });
  const events = new EventPublisher(process.env.TTRPC_ADDRESS, f.namespace, log);
  const server = new TtrpcServer();
  let stopping = false;
  const service = new ShimService({
    namespace: f.namespace, stateRoot: stateRootOf(process.cwd()), events, log, idleExitMs: process.env.BERTH_SHIM_GROUP ? IDLE_EXIT_MS : undefined,
    onShutdown: () => {
      if (stopping) return;
      stopping = true;
      log.info('shutting down');
      void Promise.all([spareMonitors.close(), closeRuntimes(), Promise.race([events.flushed(), new Promise((resolve) => setTimeout(resolve, 2000))])])
        .then(() => server.close(500))
        .finally(() => { events.close(); process.exit(0); });
    },
  });
  server.register('containerd.task.v2.Task', process.env.BERTH_SHIM_GROUP ? withSpareMonitors(service.handlers()) : service.handlers());
  // Two `start`s of one group may race: the second shim must not take the first one's live socket.
  if (await socketAccepts(f.socket)) {
    log.info({ socket: f.socket }, 'another shim of this group serves the socket: exiting');
    process.exit(0);
  }
  await server.listen(f.socket);
  process.on('SIGTERM', () => service.handlers().Shutdown!({ id: f.id, now: true }, undefined as never));
  try {
    writeSync(3, 'ready\n');
    closeSync(3);
  } catch { /* started by hand, without a ready pipe */ }
  log.info({ socket: f.socket }, 'shim serving');
}
