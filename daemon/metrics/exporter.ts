// berthd's metrics in Prometheus' text format, rendered by prom-client at each scrape: containerd's per-container
// cgroup metrics (asked of each task's shim then, with a deadline), counts of shims and tasks, the gRPC server's
// calls (grpc-go's Prometheus names) and berthd's pulls and unpacks (daemon/metrics/stats.ts counts them).
import { Counter, Gauge, Registry, type Metric } from 'prom-client';
import { vmCensus } from '../../api/vm-census.ts';
import type { Logger } from 'pino';
import { unpackAny } from '../../api/proto.ts';
import type { Task, TaskManager } from '../runtime/tasks.ts';
import { GRPC_CODE_NAMES, type Buckets, type DaemonStats } from './stats.ts';

type Labels = Record<string, string>;

/**
 * A histogram whose state is kept elsewhere (Buckets, counted without prom-client on the hot path): prom-client
 * cannot be handed a histogram's counts, but a registry renders any metric whose get() answers as its own do.
 */
class BucketsHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  constructor(readonly name: string, readonly help: string, private readonly series: () => Iterable<[Labels, Buckets]>) {}

  async get() {
    const values = [];
    for (const [labels, b] of this.series()) {
      let cumulative = 0;
      for (let i = 0; i < b.bounds.length; i++) {
        cumulative += b.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: b.bounds[i]! }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: b.count });
      values.push({ metricName: `${this.name}_sum`, labels, value: b.sum });
      values.push({ metricName: `${this.name}_count`, labels, value: b.count });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void { /* its state is not its own */ }
}

/** containerd's cgroup metrics (metrics/cgroups/v1): name, help, value from io.containerd.cgroups.v1.Metrics. */
const CONTAINER_METRICS: [string, string, (m: Record<string, any>) => number | undefined][] = [
  ['container_cpu_total_nanoseconds', 'The total cpu time', (m) => m.cpu?.usage?.total],
  ['container_cpu_kernel_nanoseconds', 'The total kernel cpu time', (m) => m.cpu?.usage?.kernel],
  ['container_cpu_user_nanoseconds', 'The total user cpu time', (m) => m.cpu?.usage?.user],
  ['container_memory_usage_usage_bytes', 'The memory usage', (m) => m.memory?.usage?.usage],
  ['container_memory_usage_limit_bytes', 'The memory limit', (m) => m.memory?.usage?.limit],
  ['container_memory_usage_max_bytes', 'The memory maximum usage', (m) => m.memory?.usage?.max],
  ['container_memory_rss_bytes', 'The rss amount', (m) => m.memory?.rss],
  ['container_memory_cache_bytes', 'The cache amount used', (m) => m.memory?.cache],
  ['container_pids_current', 'The current number of pids', (m) => m.pids?.current],
  ['container_pids_limit', 'The limit to the number of pids allowed', (m) => m.pids?.limit],
];

const CGROUP_METRICS_TYPE = 'io.containerd.cgroups.v1.Metrics';

interface TaskSample { task: Task; state: string; metrics?: Record<string, any> }

export class MetricsExporter {
  readonly registry = new Registry();
  private readonly containerGauges: [Gauge, (m: Record<string, any>) => number | undefined][];
  private readonly shims: Gauge;
  private readonly tasksByState: Gauge;
  private readonly statsFailures: Counter;

  /** `vmRoot`: this daemon's VM sandboxes are below it. `shimTimeoutMs` bounds how long a scrape waits for any
   * shim's answer. */
  constructor(stats: DaemonStats, private readonly tasks: TaskManager, private readonly log: Logger, vmRoot: string, private readonly shimTimeoutMs = 1000) {
    const registers = [this.registry];
    this.containerGauges = CONTAINER_METRICS.map(([name, help, value]) => [new Gauge({ name, help, labelNames: ['container_id', 'namespace'], registers }), value]);
    this.shims = new Gauge({ name: 'berthd_shims', help: 'Shims serving tasks, by runtime (a grouped shim kept warm with no task is not counted)', labelNames: ['runtime'], registers });
    this.tasksByState = new Gauge({ name: 'berthd_tasks', help: 'Tasks, by namespace and state', labelNames: ['namespace', 'state'], registers });
    new Gauge({
      name: 'berthd_vm_sandboxes', help: "The vm runtime's VMs of this daemon's shims: running containers, or warm in a shim's pool", labelNames: ['state'], registers,
      collect() {
        const { running, warm } = vmCensus(`${vmRoot}/`);
        this.set({ state: 'running' }, running);
        this.set({ state: 'warm' }, warm);
      },
    });
    this.statsFailures = new Counter({
      name: 'berthd_task_stats_failures_total', help: 'Tasks whose shim failed or did not answer in time when asked for metrics', registers,
    });

    const grpcLabels = (m: DaemonStats['grpc']['methods'][number]) => ({ grpc_type: m.kind, grpc_service: m.service, grpc_method: m.method });
    new Counter({
      name: 'grpc_server_handled_total', help: 'Total number of RPCs completed on the server, regardless of success or failure.',
      labelNames: ['grpc_type', 'grpc_service', 'grpc_method', 'grpc_code'], registers,
      collect() {
        this.reset();
        for (const m of stats.grpc.methods) {
          m.handled.forEach((n, code) => { if (n > 0 || code === 0) this.inc({ ...grpcLabels(m), grpc_code: GRPC_CODE_NAMES[code]! }, n); });
        }
      },
    });
    const transfer = stats.transfer;
    this.add(new BucketsHistogram('grpc_server_handling_seconds', 'Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.',
      () => stats.grpc.methods.filter((m) => m.seconds.count > 0).map((m) => [grpcLabels(m), m.seconds])));
    new Counter({ name: 'berthd_pull_bytes_total', help: 'Bytes received from registries by pulls', registers, collect() { this.reset(); this.inc(transfer.pullBytes); } });
    new Counter({ name: 'berthd_unpack_bytes_total', help: 'Compressed bytes of the layers unpacked into snapshots', registers, collect() { this.reset(); this.inc(transfer.unpackBytes); } });
    this.add(new BucketsHistogram('berthd_pull_duration_seconds', 'Pulls (fetch and unpack), by result', () => Object.entries(transfer.pullSeconds).map(([result, b]) => [{ result }, b])));
    this.add(new BucketsHistogram('berthd_unpack_duration_seconds', 'Image unpacks into a snapshotter, by result', () => Object.entries(transfer.unpackSeconds).map(([result, b]) => [{ result }, b])));
  }

  private add(metric: BucketsHistogram): void {
    this.registry.registerMetric(metric as unknown as Metric);
  }

  /** The exposition text: every task's shim is asked for its state and cgroup metrics first. */
  async render(): Promise<string> {
    const samples = await Promise.all(this.tasks.all().map((task) => this.sample(task)));
    for (const [gauge] of this.containerGauges) gauge.reset();
    this.shims.reset();
    this.tasksByState.reset();
    const shimRuntimes = new Map<string, string>();
    for (const { task, state, metrics } of samples) {
      shimRuntimes.set(task.address, task.runtime);
      this.tasksByState.inc({ namespace: task.namespace, state });
      if (!metrics) continue;
      const labels = { container_id: task.id, namespace: task.namespace };
      for (const [gauge, value] of this.containerGauges) {
        const v = value(metrics);
        if (typeof v === 'number') gauge.set(labels, v);
      }
    }
    for (const runtime of shimRuntimes.values()) this.shims.inc({ runtime });
    return this.registry.metrics();
  }

  get contentType(): string { return this.registry.contentType; }

  /** A task's state, and its cgroup metrics when it runs; a shim that fails or is slow costs only its own sample. */
  private async sample(task: Task): Promise<TaskSample> {
    const signal = AbortSignal.timeout(this.shimTimeoutMs);
    let state = 'unknown';
    try {
      state = String((await this.tasks.call(task, 'State', { id: task.id }, signal)).status).toLowerCase();
      if (state !== 'running' && state !== 'paused') return { task, state };
      const { stats } = await this.tasks.call<{ stats?: { typeUrl: string; value: Buffer } }>(task, 'Stats', { id: task.id }, signal);
      if (!stats?.typeUrl.endsWith(CGROUP_METRICS_TYPE)) return { task, state };
      return { task, state, metrics: unpackAny(stats) };
    } catch (err) {
      this.statsFailures.inc();
      this.log.debug({ err, ns: task.namespace, id: task.id }, 'no metrics from the shim');
      return { task, state };
    }
  }
}
