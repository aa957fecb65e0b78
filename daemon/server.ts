// berthd: opens the stores under its root, mounts every registered gRPC service on a unix socket (mode 0600:
// root only, as containerd's), and shuts down cleanly. One Berthd per root; a second daemon on a live socket
// is refused instead of stealing it.
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pino, { type Logger } from 'pino';
import { errFailedPrecondition, errInvalidArgument } from '../api/errdefs.ts';
import { fromTimestamp } from '../api/proto.ts';
import { TtrpcServer } from '../api/ttrpc/server.ts';
import { TaskManager } from './runtime/tasks.ts';
import { GrpcServer } from '../api/grpc-server.ts';
import { LocalContentStore } from '../content/local.ts';
import type { Snapshotter } from '../snapshotters/types.ts';
import type { DaemonConfig } from './config.ts';
import { EventExchange } from './events/exchange.ts';
import { loopbackListenAddress } from './metrics/address.ts';
import type { MetricsServer } from './metrics/http.ts';
import { DaemonStats } from './metrics/stats.ts';
import { MetadataDB } from './metadata/db.ts';
import { registeredServices, type DaemonContext, type PluginInfo } from './services/service.ts';
import { openSnapshotters } from './snapshotters.ts';
import { PolicyHolder } from './policy/holder.ts';
import './services/index.ts';
import { socketAccepts } from '../api/unix-socket.ts';


function serverUuid(root: string): string {
  const path = join(root, 'uuid');
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    const id = randomUUID();
    writeFileSync(path, id + '\n', { mode: 0o600 });
    return id;
  }
}

/** How long task events after a restart are kept for clients that subscribe late: dockerd's gRPC reconnect
 * backoff grows with the time the daemon was down (1 s, 1.6×, ...). */
const RESTART_EVENTS_MS = 60_000;

export class Berthd {
  private constructor(
    readonly config: DaemonConfig,
    readonly log: Logger,
    readonly ctx: DaemonContext,
    private readonly server: GrpcServer,
    private readonly snapshotters: Record<string, Snapshotter>,
    private readonly ttrpc: TtrpcServer,
    private readonly metrics: MetricsServer | undefined,
  ) {}

  static async start(config: DaemonConfig, log: Logger = pino({ level: config.logLevel }, pino.destination(2))): Promise<Berthd> {
    if (config.metricsAddress) loopbackListenAddress(config.metricsAddress); // refused before anything starts
    mkdirSync(config.root, { recursive: true, mode: 0o711 });
    mkdirSync(config.state, { recursive: true, mode: 0o711 });
    mkdirSync(dirname(config.address), { recursive: true, mode: 0o711 });
    if (await socketAccepts(config.address)) {
      throw errFailedPrecondition(`another daemon is serving ${config.address}: stop it first or choose another --address`);
    }
    rmSync(config.address, { force: true });
    // A bad policy stops berthd here, before anything serves.
    const policy = new PolicyHolder(config.configFile, log);

    const plugins: PluginInfo[] = [];
    const content = await LocalContentStore.open(join(config.root, 'io.containerd.content.v1.content'));
    plugins.push({ type: 'io.containerd.content.v1', id: 'content' });
    const snapshotters = await openSnapshotters(config, log, plugins);
    const events = new EventExchange();
    const db = await MetadataDB.open({
      path: join(config.root, 'io.containerd.metadata.v1.lmdb'), content, snapshotters, gcDelayMs: config.gcDelayMs,
      onGC: (r) => log.debug({ gc: r }, 'garbage collected'),
      onGCError: (err) => log.error({ err }, 'garbage collection failed'),
    });
    plugins.push({ type: 'io.containerd.metadata.v1', id: 'lmdb', requires: ['io.containerd.content.v1', 'io.containerd.snapshotter.v1'] });
    plugins.push({ type: 'io.containerd.gc.v1', id: 'scheduler', requires: ['io.containerd.metadata.v1'] });

    const publish = (ns: string, topic: string, typeName: string, event: object) => {
      try {
        events.publish(ns, topic, typeName, event);
      } catch (err) {
        log.warn({ err, topic }, 'event not published');
      }
    };
    const tasks = new TaskManager({
      root: config.root, state: config.state, grpcAddress: config.address, ttrpcAddress: config.ttrpcAddress, log, publish,
      groupShims: config.shimGroup === 'namespace', runtimes: config.runtimes, vmWarmPool: () => policy.current.classes.vmWarmPool(),
    });
    plugins.push({ type: 'io.containerd.runtime.v2', id: 'task', requires: ['io.containerd.metadata.v1'] });
    const defaultSnapshotter = config.snapshotters.find((n) => snapshotters[n]) ?? '';
    const stats = new DaemonStats();
    const ctx: DaemonContext = { db, events, log, plugins, tasks, policy, stats, defaultSnapshotter, scratch: join(config.root, 'tmpmounts'), uuid: serverUuid(config.root), root: config.root, state: config.state, publish };
    // Shims publish their events here (containerd.services.events.ttrpc.v1.Events/Forward).
    const ttrpc = new TtrpcServer().register('containerd.services.events.ttrpc.v1.Events', {
      Forward: (req) => {
        const env = req.envelope;
        if (!env?.event?.typeUrl || !env.namespace) throw errInvalidArgument('forward: an envelope with a namespace and an event is required');
        events.forward({ timestamp: fromTimestamp(env.timestamp), namespace: env.namespace, topic: env.topic, event: env.event });
      },
    });
    await ttrpc.listen(config.ttrpcAddress);
    chmodSync(config.ttrpcAddress, 0o600);
    // Calls are counted only for a served metrics endpoint.
    const server = new GrpcServer(config.metricsAddress ? stats.grpc : undefined);
    for (const s of registeredServices()) {
      server.addService(s.name, s.create(ctx));
      plugins.push({ type: s.plugin.type, id: s.plugin.id, requires: ['io.containerd.metadata.v1'] });
    }
    // Tasks are re-attached before the API serves, so the first List sees them all.
    // Task events of a restart wait for the clients that reconnect (exchange.ts keepTaskEventsFor).
    events.keepTaskEventsFor(RESTART_EVENTS_MS);
    if ((await tasks.restore()) === 0) events.stopKeeping();
    // prom-client is loaded only here: a daemon without a metrics endpoint does not pay for its import.
    const metrics = config.metricsAddress ? await (await import('./metrics/http.ts')).serveMetrics(config.metricsAddress, stats, tasks, log, join(config.state, 'vm')) : undefined;
    await server.listen(config.address);
    chmodSync(config.address, 0o600);
    log.info({ address: config.address, root: config.root, state: config.state }, 'berthd serving');
    return new Berthd(config, log, ctx, server, snapshotters, ttrpc, metrics);
  }

  /** Stops accepting calls, ends open streams, closes the stores. */
  async stop(): Promise<void> {
    await this.metrics?.close();
    await this.server.close(2000);
    await this.ctx.tasks.stopIdleShims();
    this.ctx.tasks.closeAll();
    await this.ttrpc.close(500);
    await this.ctx.db.close();
    for (const s of Object.values(this.snapshotters)) await s.close();
    rmSync(this.config.address, { force: true });
    this.log.info('berthd stopped');
  }
}
