// berthd's configuration: a TOML file in containerd's shape (the keys berth understands), then command-line
// flags on top. A malformed file or a value of the wrong type is refused naming the key.
import { readFileSync } from 'node:fs';
import { parse } from 'smol-toml';
import { errInvalidArgument, errNotFound } from '../api/errdefs.ts';
import { parseRuntimeMappings, type RuntimeMapping } from './runtime/runtime-map.ts';

export interface DaemonConfig {
  root: string;
  state: string;
  /** gRPC unix socket path. */
  address: string;
  /** ttrpc unix socket path (shims publish events here). */
  ttrpcAddress: string;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  /** Snapshotters to open; the first is the default. */
  snapshotters: string[];
  /** Delay between deletes and the garbage collection they trigger. */
  gcDelayMs: number;
  /** "namespace": one shim per namespace for berth's runtime; "container": one shim per container. */
  shimGroup: 'namespace' | 'container';
  /** `[metrics] address`: HOST:PORT on loopback for the Prometheus endpoint (/v1/metrics); empty: none. */
  metricsAddress: string;
  /** Runtime names served by another shim (daemon/runtime/runtime-map.ts). */
  runtimes: Record<string, RuntimeMapping>;
  /** The config file read ('' for none): runtime classes and the policy come from it, and are re-read on SIGHUP
   * (daemon/policy/). */
  configFile: string;
}

export const DEFAULT_CONFIG: DaemonConfig = {
  root: '/var/lib/berth',
  state: '/run/berth',
  address: '/run/berth/berthd.sock',
  ttrpcAddress: '',
  logLevel: 'info',
  snapshotters: ['overlayfs', 'native'],
  gcDelayMs: 100,
  shimGroup: 'namespace',
  metricsAddress: '',
  runtimes: {},
  configFile: '',
};

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

type Table = Record<string, unknown>;

function pick<T>(table: Table, key: string, path: string, kind: 'string' | 'number' | 'string[]'): T | undefined {
  const v = table[key];
  if (v === undefined) return undefined;
  const ok = kind === 'string[]' ? Array.isArray(v) && v.every((x) => typeof x === 'string') : typeof v === kind;
  if (!ok) throw errInvalidArgument(`config: ${path} must be a ${kind === 'string[]' ? 'list of strings' : kind}, got ${JSON.stringify(v)}`);
  return v as T;
}

function section(table: Table, key: string): Table {
  const v = table[key];
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw errInvalidArgument(`config: [${key}] must be a table`);
  return v as Table;
}

/** Reads a config file; a missing file is an error only when the path was given explicitly. */
export function loadConfigFile(path: string, explicit: boolean): Partial<DaemonConfig> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !explicit) return {};
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw errNotFound(`config file ${path}: not found`);
    throw err;
  }
  let doc: Table;
  try {
    doc = parse(text) as Table;
  } catch (err) {
    throw errInvalidArgument(`config file ${path}: ${(err as Error).message.split('\n')[0]}`);
  }
  const grpc = section(doc, 'grpc');
  const ttrpc = section(doc, 'ttrpc');
  const debug = section(doc, 'debug');
  const gc = section(doc, 'gc');
  const metrics = section(doc, 'metrics');
  const out: Partial<DaemonConfig> = {};
  const set = <K extends keyof DaemonConfig>(k: K, v: DaemonConfig[K] | undefined) => { if (v !== undefined) out[k] = v; };
  set('root', pick(doc, 'root', 'root', 'string'));
  set('state', pick(doc, 'state', 'state', 'string'));
  set('address', pick(grpc, 'address', 'grpc.address', 'string'));
  set('ttrpcAddress', pick(ttrpc, 'address', 'ttrpc.address', 'string'));
  const level = pick<string>(debug, 'level', 'debug.level', 'string');
  if (level !== undefined) set('logLevel', checkLevel(level));
  set('snapshotters', pick(doc, 'snapshotters', 'snapshotters', 'string[]'));
  set('gcDelayMs', pick(gc, 'delay_ms', 'gc.delay_ms', 'number'));
  set('metricsAddress', pick(metrics, 'address', 'metrics.address', 'string'));
  const group = pick<string>(doc, 'shim_group', 'shim_group', 'string');
  if (group !== undefined && group !== 'namespace' && group !== 'container') throw errInvalidArgument(`config: shim_group must be "namespace" or "container", got ${JSON.stringify(group)}`);
  if (group !== undefined) out.shimGroup = group;
  const runtimes = parseRuntimeMappings(doc);
  if (Object.keys(runtimes).length) out.runtimes = runtimes;
  return out;
}

export function checkLevel(level: string): DaemonConfig['logLevel'] {
  if (!LEVELS.has(level)) throw errInvalidArgument(`log level ${JSON.stringify(level)}: want one of ${[...LEVELS].join(', ')}`);
  return level as DaemonConfig['logLevel'];
}

/** Fills the ttrpc address from the gRPC one when not set, as containerd does (`<grpc>.ttrpc`). */
export function finishConfig(c: DaemonConfig): DaemonConfig {
  return { ...c, ttrpcAddress: c.ttrpcAddress || `${c.address}.ttrpc` };
}
