// Tasks: containers running through shims. Each task has a bundle in containerd's layout
// (<state>/io.containerd.runtime.v2.task/<ns>/<id> with config.json, rootfs/, a `work` link into <root>,
// `address`, `runtime`), a shim started by name, and a ttrpc connection to it. After a daemon restart the
// bundles tell which shims to re-attach to; a shim that is gone is cleaned up with `<shim> delete` and its
// task reported exited.
import { constants, mkdirSync, openSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { sysAddon } from '../../api/sys-addon.ts';
import { errAlreadyExists, errFailedPrecondition, errNotFound, isNotFound } from '../../api/errdefs.ts';
import type { Mount } from '../../api/mount.ts';
import { removeLeftAside, removeSoon } from '../../api/remove-soon.ts';
import { toTimestamp, type AnyMessage } from '../../api/proto.ts';
import { NAMESPACE_KEY, TtrpcClient } from '../../api/ttrpc/client.ts';
import type { Container } from '../metadata/types.ts';
import { resolveRuntime, type RuntimeMapping } from './runtime-map.ts';
import { deleteShim, startShim, type ShimBinary, type ShimCallOptions } from './shim-binary.ts';
import { ShimConnections } from './shim-connections.ts';

const TASK = 'containerd.task.v2.Task';
const DIR = 'io.containerd.runtime.v2.task';

export interface Task {
  namespace: string;
  id: string;
  /** The runtime the container asked for. */
  runtime: string;
  /** The shim serving it: the runtime's own, or the one the config maps it to. */
  shim: ShimBinary;
  bundle: string;
  pid: number;
  client: TtrpcClient;
  /** The shim's ttrpc address (the bundle's `address` file). */
  address: string;
  /** The bundle's `log` FIFO, which a shim started for this bundle writes its logs to (containerd's runc shim
   * exits without a reader); a group's shim, already running, logs to its first bundle's. */
  shimLog?: Socket;
}

export interface CreateTaskOptions {
  rootfs: Mount[];
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
  options?: AnyMessage;
}

export interface TaskManagerOptions {
  root: string;
  state: string;
  grpcAddress: string;
  ttrpcAddress: string;
  log: Logger;
  /** One shim per namespace for berth's own runtime (a warm shim makes the next container start fast). */
  groupShims?: boolean;
  /** Runtime names served by another shim, with options (the config's runtimes tables). */
  runtimes?: Record<string, RuntimeMapping>;
  /** The vm backend's warm pool size for the grouped shims started from now on (the vm classes' warm_pool). */
  vmWarmPool?: () => number | undefined;
  /** Publishes an event the daemon itself raises (a task whose shim died). */
  publish(ns: string, topic: string, type: string, event: object): void;
}

const tkey = (ns: string, id: string) => `${ns}/${id}`;

export class TaskManager {
  private readonly tasks = new Map<string, Task>();
  private readonly creating = new Set<string>();
  private closing = false;
  /** Live grouped shims: runtime + namespace → ttrpc address. */
  private readonly groups = new Map<string, string>();
  private readonly connections = new ShimConnections();
  /** Group shims being started: concurrent creates of one group wait for the same start. */
  private readonly starting = new Map<string, Promise<string>>();

  constructor(private readonly o: TaskManagerOptions) {}

  bundleDir(ns: string, id: string): string {
    return join(this.o.state, DIR, ns, id);
  }

  private shimOptions(ns: string, id: string, bundle: string): ShimCallOptions {
    return { namespace: ns, id, bundle, grpcAddress: this.o.grpcAddress, ttrpcAddress: this.o.ttrpcAddress };
  }

  get(ns: string, id: string): Task {
    const t = this.tasks.get(tkey(ns, id));
    if (!t) throw errNotFound(`task ${id} in namespace ${ns}: not found`);
    return t;
  }

  has(ns: string, id: string): boolean {
    return this.tasks.has(tkey(ns, id));
  }

  /** Every task, in every namespace. */
  all(): Task[] {
    return [...this.tasks.values()];
  }

  list(ns: string): Task[] {
    return [...this.tasks.values()].filter((t) => t.namespace === ns);
  }

  /** A call to the task's shim, in its namespace. */
  call<T = Record<string, any>>(task: Task, method: string, req: Record<string, unknown>, signal?: AbortSignal): Promise<T> {
    return task.client.call<T>(TASK, method, req, { metadata: { [NAMESPACE_KEY]: task.namespace }, ...(signal ? { signal } : {}) });
  }

  async create(ns: string, container: Container, req: CreateTaskOptions): Promise<Task> {
    const k = tkey(ns, container.id);
    if (this.tasks.has(k) || this.creating.has(k)) throw errAlreadyExists(`task ${container.id} in namespace ${ns}: already exists`);
    if (!container.spec) throw errFailedPrecondition(`container ${container.id} has no OCI spec`);
    this.creating.add(k);
    const bundle = this.bundleDir(ns, container.id);
    const work = join(this.o.root, DIR, ns, container.id);
    try {
      rmSync(bundle, { recursive: true, force: true });
      mkdirSync(join(bundle, 'rootfs'), { recursive: true, mode: 0o711 });
      mkdirSync(work, { recursive: true, mode: 0o711 });
      symlinkSync(work, join(bundle, 'work'));
      writeFileSync(join(bundle, 'config.json'), Buffer.from(container.spec.value));
      writeFileSync(join(bundle, 'runtime'), container.runtime.name);
      const { shim, options } = resolveRuntime(this.o.runtimes ?? {}, container.runtime.name, req.options ?? container.runtime.options);
      // Which shim serves the bundle, for `<shim> delete` after a restart.
      writeFileSync(join(bundle, SHIM_FILE), JSON.stringify(shim));
      const group = this.groupOf(shim, ns);
      const { client, address, shimLog } = await this.shimFor(shim, ns, container.id, bundle, options, group);
      const task: Task = { namespace: ns, id: container.id, runtime: container.runtime.name, shim, bundle, pid: 0, client, address, shimLog };
      try {
        const created = await this.call<{ pid: number }>(task, 'Create', {
          id: container.id, bundle, rootfs: req.rootfs, terminal: req.terminal, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr,
          ...(options ? { options } : {}),
        });
        task.pid = created.pid;
      } catch (err) {
        // A shim that died midway gets containerd's `<shim> delete`: it force-deletes what the backend made and
        // unmounts the rootfs. Else a shim of its own goes with the failed task; a group's shim serves others.
        if (client.closed) {
          await deleteShim(shim, this.shimOptions(ns, container.id, bundle)).catch((e) => this.o.log.warn({ ns, id: container.id, err: e }, 'shim delete failed'));
        } else if (!group) await this.call(task, 'Shutdown', { id: container.id, now: true }).catch(() => undefined);
        this.connections.release(client);
        shimLog?.destroy();
        throw err;
      }
      this.tasks.set(k, task);
      this.watch(task);
      return task;
    } catch (err) {
      // The client gets the error too, but an operator reads the daemon's log (dockerd shows only its own).
      this.o.log.warn({ ns, id: container.id, runtime: container.runtime.name, err }, 'task create failed');
      // The cleanup never hides why the create failed.
      try {
        rmSync(bundle, { recursive: true, force: true });
        rmSync(work, { recursive: true, force: true });
      } catch (cleanup) {
        this.o.log.warn({ ns, id: container.id, bundle, err: cleanup }, 'the bundle of a failed create was not removed');
      }
      throw err;
    } finally {
      this.creating.delete(k);
    }
  }

  /** The group a container's shim serves: a namespace's, for berth's own shim when grouping is on. */
  private groupOf(shim: ShimBinary, ns: string): string | undefined {
    return this.o.groupShims && shim.runtime === BERTH_RUNTIME ? `${shim.path ?? shim.runtime}/${ns}` : undefined;
  }

  /** A connection to the group's live shim, or to a shim started for this container (or group). */
  private async shimFor(shim: ShimBinary, ns: string, id: string, bundle: string, options: AnyMessage | undefined, group: string | undefined): Promise<{ address: string; client: TtrpcClient; shimLog?: Socket }> {
    const known = group ? this.groups.get(group) : undefined;
    if (known) {
      try {
        const client = await this.connections.acquire(known, 1000);
        writeFileSync(join(bundle, 'address'), known);
        return { address: known, client };
      } catch (err) {
        this.o.log.warn({ err, group, address: known }, 'group shim unreachable: starting another');
        this.groups.delete(group!);
      }
    }
    // A shim started here logs to this bundle's FIFO.
    sysAddon().mkfifo(join(bundle, 'log'), 0o600);
    const shimLog = this.readShimLog(ns, id, bundle);
    try {
      if (!group) {
        const address = await startShim(shim, this.shimOptions(ns, id, bundle), options);
        return { address, client: await this.connections.acquire(address), shimLog };
      }
      return { ...await this.groupShim(shim, ns, id, bundle, options, group), shimLog };
    } catch (err) {
      shimLog.destroy();
      throw err;
    }
  }

  private async groupShim(shim: ShimBinary, ns: string, id: string, bundle: string, options: AnyMessage | undefined, group: string): Promise<{ address: string; client: TtrpcClient }> {
    let pending = this.starting.get(group);
    if (!pending) {
      pending = startShim(shim, { ...this.shimOptions(ns, id, bundle), group, env: this.groupShimEnv() }, options)
        .then((address) => { this.groups.set(group, address); return address; })
        .finally(() => this.starting.delete(group));
      this.starting.set(group, pending);
    }
    const address = await pending;
    writeFileSync(join(bundle, 'address'), address);
    return { address, client: await this.connections.acquire(address) };
  }

  /** How many VMs the namespace shims started from now on keep booted ahead, as their vm backend reads
   * BERTH_VM_POOL (runtimes/vm/pool.ts: a whole number, else a group shim's 1). */
  vmWarmPoolOfShims(): number {
    if (!this.o.groupShims) return 0;
    const pool = process.env.BERTH_VM_POOL || this.groupShimEnv().BERTH_VM_POOL;
    return pool && Number.isInteger(Number(pool)) && Number(pool) >= 0 ? Number(pool) : 1;
  }

  /** What a group's shim is configured by. The pool is the shim's, whichever class its containers run as; only a
   * group's shim has one (a single container's shim starts with its container: nothing to boot ahead of). berthd's
   * own BERTH_VM_POOL, which the shim inherits, wins (tests, benches). */
  private groupShimEnv(): Record<string, string> {
    const pool = this.o.vmWarmPool?.();
    return pool === undefined || process.env.BERTH_VM_POOL ? {} : { BERTH_VM_POOL: String(pool) };
  }

  /** Deletes the task's init through its shim, stops the shim when it holds nothing else, removes the bundle. */
  async delete(task: Task): Promise<{ pid: number; exitStatus: number; exitedAt: unknown }> {
    const res = await this.call<{ pid: number; exitStatus: number; exitedAt: unknown }>(task, 'Delete', { id: task.id });
    // Forgotten before the shim is told to stop, so its connection closing is not taken for a crash.
    this.tasks.delete(tkey(task.namespace, task.id));
    // A grouped shim stays for the group's next container (it exits by itself once idle for a while).
    if (![...this.groups.values()].includes(task.address)) await this.call(task, 'Shutdown', { id: task.id }).catch(() => undefined);
    this.forget(task);
    return res;
  }

  /** Copies what a shim writes to the bundle's log FIFO into the daemon's log: at debug level, but the lines a
   * shim logs as warnings or errors (logrus `level=error`, pino `"level":50`), which say why a task failed. */
  private readShimLog(ns: string, id: string, bundle: string): Socket {
    const fd = openSync(join(bundle, 'log'), constants.O_RDONLY | constants.O_NONBLOCK);
    const stream = new Socket({ fd, readable: true, writable: false });
    const log = this.o.log.child({ ns, id, shim: true });
    stream.on('data', (d: Buffer) => {
      for (const raw of d.toString().split('\n')) {
        const line = raw.trim();
        if (!line) continue;
        if (/\blevel=(warning|error|fatal|panic)\b|"level":(40|50|60)\b/.test(line)) log.warn(line); else log.debug(line);
      }
    });
    stream.on('error', () => undefined);
    stream.unref();
    return stream;
  }

  private forget(task: Task): void {
    this.connections.release(task.client);
    task.shimLog?.destroy();
    removeSoon(task.bundle);
    removeSoon(join(this.o.root, DIR, task.namespace, task.id));
  }

  /** After a restart: re-attach to live shims, clean up after dead ones. A task that ended while the daemon was
   * down is reported exited again (its shim's own report may have found no daemon, or no subscriber yet).
   * Returns how many tasks were found. */
  async restore(): Promise<number> {
    const base = join(this.o.state, DIR);
    let found = 0;
    for (const ns of safeList(base)) {
      removeLeftAside(join(base, ns));
      removeLeftAside(join(this.o.root, DIR, ns));
      for (const id of safeList(join(base, ns))) {
        found++;
        const bundle = join(base, ns, id);
        let shim: ShimBinary | undefined;
        try {
          const runtime = readFileSync(join(bundle, 'runtime'), 'utf8').trim();
          shim = readShim(bundle, runtime);
          const address = readFileSync(join(bundle, 'address'), 'utf8').trim();
          const client = await this.connections.acquire(address, 1000);
          const task: Task = { namespace: ns, id, runtime, shim, bundle, pid: 0, client, address };
          let state: { status: string; pid: number; exitStatus: number; exitedAt: unknown };
          try {
            task.pid = (await this.call<{ taskPid: number }>(task, 'Connect', { id })).taskPid;
            state = await this.call(task, 'State', { id });
          } catch (err) {
            this.connections.release(client);
            throw err;
          }
          try { task.shimLog = this.readShimLog(ns, id, bundle); } catch { /* no log FIFO: a shim that does not need one */ }
          this.tasks.set(tkey(ns, id), task);
          const group = this.groupOf(shim, ns);
          if (group) this.groups.set(group, address);
          this.watch(task);
          this.o.log.info({ ns, id, pid: task.pid, status: state.status }, 'task re-attached');
          if (state.status === 'STOPPED') {
            this.o.publish(ns, '/tasks/exit', 'containerd.events.TaskExit', { containerId: id, id, pid: state.pid, exitStatus: state.exitStatus, exitedAt: state.exitedAt });
          }
        } catch (err) {
          this.o.log.warn({ ns, id, err }, 'shim gone: cleaning up its task');
          await this.cleanupDead(ns, id, bundle, shim);
        }
      }
    }
    return found;
  }

  private async cleanupDead(ns: string, id: string, bundle: string, shim: ShimBinary | undefined): Promise<void> {
    let exit = { pid: 0, exitStatus: 137, exitedAt: toTimestamp(new Date()) as unknown };
    if (shim) {
      try { exit = await deleteShim(shim, this.shimOptions(ns, id, bundle)); } catch (err) { if (!isNotFound(err)) this.o.log.warn({ err, ns, id }, 'shim delete failed'); }
    }
    this.o.publish(ns, '/tasks/exit', 'containerd.events.TaskExit', { containerId: id, id, pid: exit.pid, exitStatus: exit.exitStatus, exitedAt: exit.exitedAt });
    this.o.publish(ns, '/tasks/delete', 'containerd.events.TaskDelete', { containerId: id, id, pid: exit.pid, exitStatus: exit.exitStatus, exitedAt: exit.exitedAt });
    rmSync(bundle, { recursive: true, force: true });
    rmSync(join(this.o.root, DIR, ns, id), { recursive: true, force: true });
  }

  /** Called when a shim connection drops while the daemon runs: the shim died. */
  watch(task: Task): void {
    void task.client.waitClosed().then(async () => {
      if (this.closing || this.tasks.get(tkey(task.namespace, task.id)) !== task) return;
      this.tasks.delete(tkey(task.namespace, task.id));
      this.o.log.warn({ ns: task.namespace, id: task.id }, 'shim connection lost: cleaning up');
      await this.cleanupDead(task.namespace, task.id, task.bundle, task.shim);
    });
  }

  /** Stops grouped shims that hold no task: they have nothing a restart would need. */
  async stopIdleShims(): Promise<void> {
    const busy = new Set([...this.tasks.values()].map((t) => t.address));
    for (const [group, address] of this.groups) {
      if (busy.has(address)) continue;
      this.groups.delete(group);
      try {
        const client = await TtrpcClient.connect(address, 500);
        await client.call(TASK, 'Shutdown', { id: '', now: true }, { timeoutMs: 1000 }).catch(() => undefined);
        client.close();
      } catch { /* already gone */ }
    }
  }

  closeAll(): void {
    this.closing = true;
    for (const t of this.tasks.values()) t.shimLog?.destroy();
    this.connections.closeAll();
  }
}

const BERTH_RUNTIME = 'io.containerd.berth.v2';
const SHIM_FILE = 'shim.json';

/** The shim a bundle was served by; a bundle without the record (made before it was kept) by its runtime's. */
function readShim(bundle: string, runtime: string): ShimBinary {
  try {
    return JSON.parse(readFileSync(join(bundle, SHIM_FILE), 'utf8')) as ShimBinary;
  } catch {
    return { runtime };
  }
}

/** Names in a directory, but those set aside for removal (remove-soon.ts). */
function safeList(dir: string): string[] {
  try { return readdirSync(dir).filter((name) => !name.startsWith('.')); } catch { return []; }
}
