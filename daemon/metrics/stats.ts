// What berthd counts for its metrics endpoint, in plain numbers: gRPC calls by method and status with their
// latencies, and the bytes and durations of pulls and unpacks. Counting here costs an array increment, so it
// runs on every call; prom-client (daemon/metrics/exporter.ts) reads these numbers only when scraped, and is
// loaded only when `[metrics] address` is set.
import type { CallKind, CallObserver, MethodObserver } from '../../api/grpc-server.ts';

/** gRPC status codes by number, named as Go's codes.Code.String() (the grpc_code label of Prometheus' gRPC metrics). */
export const GRPC_CODE_NAMES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied',
  'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable',
  'DataLoss', 'Unauthenticated',
] as const;
const UNKNOWN = 2;

/** Prometheus' default buckets with finer ones below 5 ms: most of berthd's calls take well under a millisecond. */
export const GRPC_SECONDS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Pulls and unpacks take from a fraction of a second to minutes. */
export const TRANSFER_SECONDS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** A histogram's state: per bucket (each upper bound, then +Inf) the observations that fell in it, not cumulated. */
export class Buckets {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

/** One gRPC method's calls: how many ended with each status code, and how long they took. */
export class MethodStats implements MethodObserver {
  readonly handled = new Float64Array(GRPC_CODE_NAMES.length);
  readonly seconds = new Buckets(GRPC_SECONDS_BUCKETS);

  constructor(readonly service: string, readonly method: string, readonly kind: CallKind) {}

  finished(code: number, startedAt: number): void {
    this.handled[code >= 0 && code < GRPC_CODE_NAMES.length ? code : UNKNOWN]!++;
    this.seconds.observe((performance.now() - startedAt) / 1000);
  }
}

export class GrpcStats implements CallObserver {
  readonly methods: MethodStats[] = [];

  method(service: string, method: string, kind: CallKind): MethodStats {
    const stats = new MethodStats(service, method, kind);
    this.methods.push(stats);
    return stats;
  }
}

export type Outcome = 'ok' | 'error';

/** Pulls and unpacks done by berthd (the Transfer service). */
export class TransferStats {
  /** Bytes received from registries (manifests, configs, layers; a resumed download counts what it fetched). */
  pullBytes = 0;
  /** Compressed bytes of the layers unpacked into snapshots (a layer already unpacked is skipped, not counted). */
  unpackBytes = 0;
  readonly pullSeconds: Record<Outcome, Buckets> = { ok: new Buckets(TRANSFER_SECONDS_BUCKETS), error: new Buckets(TRANSFER_SECONDS_BUCKETS) };
  readonly unpackSeconds: Record<Outcome, Buckets> = { ok: new Buckets(TRANSFER_SECONDS_BUCKETS), error: new Buckets(TRANSFER_SECONDS_BUCKETS) };

  /** Runs `fn`, recording its duration under its outcome in `into`. */
  async timed<T>(into: Record<Outcome, Buckets>, fn: () => Promise<T>): Promise<T> {
    const started = performance.now();
    let outcome: Outcome = 'error';
    try {
      const result = await fn();
      outcome = 'ok';
      return result;
    } finally {
      into[outcome].observe((performance.now() - started) / 1000);
    }
  }
}

/** Everything berthd counts, made once per daemon. */
export class DaemonStats {
  readonly grpc = new GrpcStats();
  readonly transfer = new TransferStats();
}
