// The metrics endpoint: GET /v1/metrics (containerd's path) over plain HTTP on a loopback address; every other
// path answers 404. Loaded only when `[metrics] address` is set, so a daemon without it never loads prom-client.
import { createServer } from 'node:http';
import type { Logger } from 'pino';
import { errFailedPrecondition } from '../../api/errdefs.ts';
import type { TaskManager } from '../runtime/tasks.ts';
import { loopbackListenAddress } from './address.ts';
import { MetricsExporter } from './exporter.ts';
import type { DaemonStats } from './stats.ts';

export interface MetricsServer {
  /** The address it listens on, as configured. */
  address: string;
  close(): Promise<void>;
}

/** `vmRoot`: where this daemon's shims keep their VM sandboxes (the vm runtime's root, below berthd's state). */
export async function serveMetrics(address: string, stats: DaemonStats, tasks: TaskManager, log: Logger, vmRoot: string): Promise<MetricsServer> {
  const { host, port } = loopbackListenAddress(address);
  const exporter = new MetricsExporter(stats, tasks, log, vmRoot);
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/v1/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('404 page not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET, HEAD' }).end('method not allowed\n');
      return;
    }
    exporter.render().then(
      (text) => res.writeHead(200, { 'content-type': exporter.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (err) => {
        log.error({ err }, 'metrics not rendered');
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`metrics not rendered: ${(err as Error).message}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(errFailedPrecondition(`[metrics] address ${address}: cannot listen: ${err.message}`)));
    server.listen({ host, port }, () => resolve());
  });
  log.info({ address }, 'serving metrics at /v1/metrics');
  return {
    address,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}
