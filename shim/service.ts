// containerd.task.v2.Task for every container this shim runs (one, or a group sharing the shim).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { BerthError, ErrorCode, codeOf, errAlreadyExists, errFailedPrecondition, errNotFound, errNotImplemented } from '../api/errdefs.ts';
import type { Mount } from '../api/mount.ts';
import { toTimestamp, unpackAny, type AnyMessage } from '../api/proto.ts';
import type { TtrpcHandler } from '../api/ttrpc/server.ts';
import { openRuntime } from '../runtimes/oci-runtime.ts';
import type { Process } from '../runtimes/oci/spec.ts';
import '../runtimes/backends/index.ts';
import { ShimContainer } from './container.ts';
import type { EventPublisher } from './events.ts';
import { ShimProcess, type ExitInfo } from './process.ts';
import { detachAll, mountAll, unmountAll } from '../api/mounting.ts';
import { metricsAny } from './metrics.ts';
import { stdioOf } from './stdio.ts';
import { openCgroup } from '../runtimes/cgroups/index.ts';
import type { CgroupManager } from '../runtimes/cgroups/types.ts';
import { readFileSync } from 'node:fs';

/** The container's cgroup as its spec names it (every backend here uses the cgroupfs layout). */
function cgroupOf(bundle: string, id: string): CgroupManager | undefined {
  try {
    const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { linux?: { cgroupsPath?: string } };
    return openCgroup(spec.linux?.cgroupsPath ?? '', { containerId: id });
  } catch {
    return undefined;
  }
}

const EV = 'containerd.events.';
/** How often a running container's memory cgroup is checked for OOM kills. */
const OOM_POLL_MS = 1000;

export interface ShimServiceOptions {
  namespace: string;
  /** Where backends keep their state: <stateRoot>/<backend>/<namespace>. */
  stateRoot: string;
  events: EventPublisher;
  log: Logger;
  /** Called when the last container is gone and Shutdown was asked for. */
  onShutdown: () => void;
  /** Exit this long after the last container is gone, even without Shutdown (grouped shims). */
  idleExitMs?: number;
}

/** What berth's shim reads of containerd's runc options (containerd.runc.v1.Options). */
function runtimeOptions(options: AnyMessage | null | undefined): { binaryName?: string; noPivot?: boolean; root?: string } {
  if (!options?.typeUrl) return {};
  const o = unpackAny<{ binaryName?: string; noPivotRoot?: boolean; root?: string }>(options);
  return { binaryName: o.binaryName || undefined, noPivot: !!o.noPivotRoot, root: o.root || undefined };
}

const exitedAt = (e: ExitInfo | undefined) => (e ? toTimestamp(e.exitedAt) : null);

export class ShimService {
  private readonly containers = new Map<string, ShimContainer>();
  private shuttingDown = false;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ShimServiceOptions) {}

  /** A shared (grouped) shim left with no containers exits after a while rather than at once: the next
   * container of its group then finds it warm. */
  private armIdleExit(): void {
    clearTimeout(this.idleTimer);
    if (this.containers.size > 0 || !this.opts.idleExitMs) return;
    this.idleTimer = setTimeout(() => { if (this.containers.size === 0) this.opts.onShutdown(); }, this.opts.idleExitMs);
  }

  get size(): number {
    return this.containers.size;
  }

  private container(id: string): ShimContainer {
    const c = this.containers.get(id);
    if (!c) throw errNotFound(`container ${id}: not found in this shim`);
    return c;
  }

  private process(id: string, execId: string): { c: ShimContainer; p: ShimProcess } {
    const c = this.container(id);
    const p = c.process(execId);
    if (!p) throw errNotFound(`process ${execId} of container ${id}: not found`);
    return { c, p };
  }

  private publish(topic: string, type: string, event: object): void {
    this.opts.events.publish(topic, EV + type, event);
  }

  private onExit = (c: ShimContainer) => (p: ShimProcess, e: ExitInfo) => {
    // What its watcher said: a monitor's errors, or why a VM's process ended with its VM (agent death, panic).
    const why = p.monitored?.stderr().trim();
    if (why) this.opts.log.warn({ id: p.id, exitStatus: e.status, why }, 'process ended');
    if (!p.execId) {
      clearInterval(c.oomWatch);
      this.checkOom(c);
    }
    this.publish('/tasks/exit', 'TaskExit', { containerId: c.id, id: p.id, pid: p.pid, exitStatus: e.status, exitedAt: toTimestamp(e.exitedAt) });
    // When the init ends, processes exec'd into it are gone with its pid namespace; the ones still tracked
    // as running are reported by their own monitors.
  };

  /** Publishes /tasks/oom once per new OOM kill in the container's memory cgroup. */
  private checkOom(c: ShimContainer): void {
    let kills = 0;
    try {
      kills = c.runtime.oomKillCount ? c.runtime.oomKillCount(c.id) : (c.cgroup ??= cgroupOf(c.bundle, c.id))?.oomKillCount() ?? 0;
    } catch { return; }
    if (kills > c.oomKills) {
      c.oomKills = kills;
      this.publish('/tasks/oom', 'TaskOOM', { containerId: c.id });
    }
  }

  handlers(): Record<string, TtrpcHandler> {
    return {
      Create: async (req) => {
        if (this.containers.has(req.id)) throw errAlreadyExists(`container ${req.id}: already exists in this shim`);
        clearTimeout(this.idleTimer);
        if (req.checkpoint) throw errNotImplemented('restoring from a checkpoint is not supported');
        const { binaryName, noPivot, root } = runtimeOptions(req.options);
        const runtimeRoot = join(this.opts.stateRoot, binaryName ? binaryName.replace(/\//g, '_') : 'fast', this.opts.namespace);
        // A runtime CLI logs to the bundle's state dir: a failed create reports the runtime's last error from it.
        const runtime = openRuntime(binaryName, runtimeRoot, { ...(root ? { clientRoot: root } : {}), log: join(ShimContainer.stateDirOf(req.bundle), 'log.json') });
        const rootfs: Mount[] = (req.rootfs ?? []).map((m: Mount) => ({ type: m.type, source: m.source, target: m.target, options: m.options }));
        const io = stdioOf(req, ShimContainer.stateDirOf(req.bundle), 'init');
        const stdio = io.stdio;
        const init = new ShimProcess(req.id, '', req, io, !!req.terminal);
        const c = new ShimContainer(req.id, req.bundle, runtime, init, rootfs);
        if (rootfs.length) await mountAll(rootfs, join(req.bundle, 'rootfs'));
        let created = false;
        try {
          const m = await runtime.create({ id: req.id, bundle: req.bundle, stdio, terminal: !!req.terminal, stateDir: c.stateDir, noPivot });
          created = true;
          init.pid = await m.pid;
          await io.logger?.start(req.id, this.opts.namespace);
          // What `shim delete` needs if this shim dies.
          writeFileSync(join(c.stateDir, 'runtime.json'), JSON.stringify({ binaryName, root: runtime.root, pid: init.pid }));
          init.watch(m, this.onExit(c));
        } catch (err) {
          io.logger?.release();
          if (created) await runtime.delete(req.id, true).catch(() => undefined);
          if (rootfs.length) await unmountAll(join(req.bundle, 'rootfs')).catch(() => undefined);
          c.removeState();
          throw err;
        }
        this.containers.set(req.id, c);
        // For OOM checks only: found after the answer, off the container's way.
        setImmediate(() => { c.cgroup ??= cgroupOf(req.bundle, req.id); });
        this.publish('/tasks/create', 'TaskCreate', {
          containerId: req.id, bundle: req.bundle, rootfs: req.rootfs ?? [], pid: init.pid, checkpoint: '',
          io: { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: !!req.terminal },
        });
        return { pid: init.pid };
      },

      Start: async (req) => {
        const { c, p } = this.process(req.id, req.execId);
        if (p.status !== 'CREATED') throw errFailedPrecondition(`process ${p.id} is ${p.status.toLowerCase()}, not created`);
        if (!req.execId) {
          // An exit while Start runs is reported after the start event; one before it (killed, or died while
          // waiting to start) is reported at once.
          p.holdExitUntilStarted();
          try {
            await c.runtime.start(c.id);
          } catch (err) {
            p.markStarted();
            throw err;
          }
          if (!p.exit) p.status = 'RUNNING';
          this.publish('/tasks/start', 'TaskStart', { containerId: c.id, pid: p.pid });
          c.oomWatch = setInterval(() => this.checkOom(c), OOM_POLL_MS);
          c.oomWatch.unref();
          p.markStarted();
          return { pid: p.pid };
        }
        p.holdExitUntilStarted();
        try {
          const m = await c.runtime.exec({ id: c.id, execId: req.execId, process: p.spec!, stdio: p.stdio, terminal: p.terminal, stateDir: c.stateDir });
          p.pid = await m.pid;
          p.watch(m, this.onExit(c));
          await p.io.logger?.start(c.id, this.opts.namespace);
        } catch (err) {
          p.io.logger?.release();
          p.markStarted();
          throw err;
        }
        if (!p.exit) p.status = 'RUNNING';
        this.publish('/tasks/exec-started', 'TaskExecStarted', { containerId: c.id, execId: req.execId, pid: p.pid });
        p.markStarted();
        return { pid: p.pid };
      },

      State: (req) => {
        const { c, p } = this.process(req.id, req.execId);
        return {
          id: p.id, bundle: c.bundle, pid: p.pid, status: p.status, stdin: p.uris.stdin ?? '', stdout: p.uris.stdout ?? '',
          stderr: p.uris.stderr ?? '', terminal: p.terminal, exitStatus: p.exit?.status ?? 0, exitedAt: exitedAt(p.exit), execId: req.execId,
        };
      },

      Delete: async (req) => {
        const { c, p } = this.process(req.id, req.execId);
        if (p.status === 'RUNNING' || p.status === 'PAUSED') throw errFailedPrecondition(`process ${p.id} is ${p.status.toLowerCase()}: kill it before deleting`);
        if (req.execId) {
          c.execs.delete(req.execId);
          return { pid: p.pid, exitStatus: p.exit?.status ?? 0, exitedAt: exitedAt(p.exit) };
        }
        await c.runtime.delete(c.id, p.status === 'CREATED');
        if (c.rootfs.length) detachAll(join(c.bundle, 'rootfs'));
        c.removeState();
        this.containers.delete(c.id);
        const exit = p.exit ?? { status: 137, exitedAt: new Date() };
        this.publish('/tasks/delete', 'TaskDelete', { containerId: c.id, pid: p.pid, exitStatus: exit.status, exitedAt: toTimestamp(exit.exitedAt), id: c.id });
        if (this.shuttingDown && this.containers.size === 0) this.opts.onShutdown();
        else this.armIdleExit();
        return { pid: p.pid, exitStatus: exit.status, exitedAt: toTimestamp(exit.exitedAt) };
      },

      Pids: async (req) => {
        const c = this.container(req.id);
        const pids = await c.runtime.pids(c.id);
        return { processes: pids.map((pid) => ({ pid })) };
      },

      Pause: async (req) => {
        const c = this.container(req.id);
        await c.runtime.pause(c.id);
        c.init.status = 'PAUSED';
        this.publish('/tasks/paused', 'TaskPaused', { containerId: c.id });
        return {};
      },

      Resume: async (req) => {
        const c = this.container(req.id);
        await c.runtime.resume(c.id);
        if (c.init.status === 'PAUSED') c.init.status = 'RUNNING';
        this.publish('/tasks/resumed', 'TaskResumed', { containerId: c.id });
        return {};
      },

      Kill: async (req) => {
        const { c, p } = this.process(req.id, req.execId);
        if (p.status === 'STOPPED' && !req.all) throw errNotFound(`process ${p.id}: already finished`);
        if (req.execId) {
          if (p.status === 'CREATED') throw errFailedPrecondition(`process ${p.id} is not started`);
          try { await p.monitored!.signal(req.signal); } catch { throw errNotFound(`process ${p.id}: already finished`); }
          return {};
        }
        await c.runtime.kill(c.id, req.signal, !!req.all);
        return {};
      },

      Exec: (req) => {
        const c = this.container(req.id);
        if (c.execs.has(req.execId)) throw errAlreadyExists(`exec ${req.execId} in container ${req.id}: already exists`);
        if (!req.spec?.value) throw new BerthError(ErrorCode.InvalidArgument, 'exec: the process spec is required');
        const spec = JSON.parse(Buffer.from(req.spec.value).toString('utf8')) as Process;
        const io = stdioOf(req, c.stateDir, req.execId);
        c.execs.set(req.execId, new ShimProcess(c.id, req.execId, req, io, !!req.terminal, spec));
        this.publish('/tasks/exec-added', 'TaskExecAdded', { containerId: c.id, execId: req.execId });
        return {};
      },

      // A terminal's pty master is held by the process's berth-monitor: requests go to its control FIFO. As
      // containerd's shim, a resize of a process without a terminal is a no-op.
      ResizePty: (req) => {
        const { p } = this.process(req.id, req.execId);
        if (p.terminal) p.monitored?.resize(req.width, req.height);
        return {};
      },

      // Without a terminal the container reads its stdin FIFO directly and sees EOF when the client closes its
      // end; with one, the monitor stops copying stdin into the pty.
      CloseIO: (req) => {
        const { p } = this.process(req.id, req.execId);
        if (req.stdin && p.terminal) p.monitored?.closeStdin();
        return {};
      },

      Update: async (req) => {
        const c = this.container(req.id);
        if (!req.resources?.value) throw new BerthError(ErrorCode.InvalidArgument, 'update: resources are required');
        await c.runtime.update(c.id, JSON.parse(Buffer.from(req.resources.value).toString('utf8')));
        return {};
      },

      Wait: async (req, ctx) => {
        const { p } = this.process(req.id, req.execId);
        const exit = await Promise.race([p.exited, new Promise<never>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)))]);
        return { exitStatus: exit.status, exitedAt: toTimestamp(exit.exitedAt) };
      },

      Connect: (req) => {
        const c = this.containers.get(req.id);
        return { shimPid: process.pid, taskPid: c?.init.pid ?? 0, version: 'v2' };
      },

      Shutdown: (req) => {
        clearTimeout(this.idleTimer);
        this.shuttingDown = true;
        if (req.now || this.containers.size === 0) setImmediate(() => this.opts.onShutdown());
        return {};
      },

      Stats: async (req) => {
        const c = this.container(req.id);
        try {
          return { stats: metricsAny(await c.runtime.stats(c.id)) };
        } catch (err) {
          // A runtime CLI without `events` (crun): the container's cgroup, read as containerd's runc shim does.
          if (codeOf(err) !== ErrorCode.NotImplemented) throw err;
          const cgroup = c.cgroup ??= cgroupOf(c.bundle, c.id);
          if (!cgroup) throw err;
          return { stats: metricsAny(cgroup.stats()) };
        }
      },
      Checkpoint: () => { throw errNotImplemented('checkpoint is not supported: berth has no CRIU integration'); },
    };
  }
}
