// What every berthd gRPC service gets, and how services register: each service file calls
// registerService() when imported, and daemon/services/index.ts imports them all. The server mounts whatever
// is registered, so adding a service is adding a file.
import type { Logger } from 'pino';
import type { MetadataDB } from '../metadata/db.ts';
import type { EventExchange } from '../events/exchange.ts';
import type { TaskManager } from '../runtime/tasks.ts';
import type { DaemonStats } from '../metrics/stats.ts';
import type { PolicyHolder } from '../policy/holder.ts';
import { LEASE_HEADER, type Metadata, type ServiceImplementation } from '../../api/grpc.ts';

/** A plugin as Introspection.Plugins reports it (containerd's plugin types and ids). */
export interface PluginInfo {
  type: string;
  id: string;
  requires?: string[];
  exports?: Record<string, string>;
  capabilities?: string[];
  initError?: string;
}

export interface DaemonContext {
  db: MetadataDB;
  events: EventExchange;
  log: Logger;
  /** Server identity, stable across restarts. */
  uuid: string;
  root: string;
  state: string;
  plugins: PluginInfo[];
  tasks: TaskManager;
  /** Runtime classes and the trust policy every container passes (daemon/policy/). */
  policy: PolicyHolder;
  /** What the metrics endpoint reports (pulls, unpacks); counted whether it is served or not. */
  stats: DaemonStats;
  /** The snapshotter used when a request names none. */
  defaultSnapshotter: string;
  /** Where snapshots are mounted for a moment (unpack, diff). */
  scratch: string;
  /** Publishes an event; an event that fails to encode is logged, never fails the call that caused it. */
  publish(ns: string, topic: string, typeName: string, event: object): void;
}

export interface GrpcService {
  /** Full service name, e.g. "containerd.services.version.v1.Version". */
  name: string;
  /** containerd's plugin registration for Introspection ("io.containerd.grpc.v1", "version"). */
  plugin: { type: string; id: string };
  create(ctx: DaemonContext): ServiceImplementation;
}

const services: GrpcService[] = [];

export function registerService(s: GrpcService): void {
  if (services.some((x) => x.name === s.name)) throw new Error(`service ${s.name} registered twice`);
  services.push(s);
}

export function registeredServices(): readonly GrpcService[] {
  return services;
}

/** The lease a call runs under (containerd clients send it in the containerd-lease header). */
export function leaseOf(call: { metadata: Metadata }): string | undefined {
  const v = call.metadata.get(LEASE_HEADER)[0];
  return typeof v === 'string' && v !== '' ? v : undefined;
}
