// The fast path: the shim plans the container in process (runtimes/oci) and starts native/berth-init under
// berth-monitor itself. No runtime CLI process per operation.
import { join } from 'node:path';
import { errInternal } from '../../api/errdefs.ts';
import type { CgroupStats, LinuxResources } from '../cgroups/types.ts';
import { Runtime } from '../native/container.ts';
import { registerRuntime, type CreateRequest, type ExecRequest, type OciRuntime } from '../oci-runtime.ts';
import { consolePaths, type Monitored } from '../monitor.ts';

class FastRuntime implements OciRuntime {
  readonly name = 'fast';
  private readonly runtime: Runtime;

  constructor(readonly root: string) {
    this.runtime = new Runtime(root);
  }

  async create(req: CreateRequest): Promise<Monitored> {
    const { monitored } = await this.runtime.create(req.id, {
      bundle: req.bundle, noPivot: req.noPivot, monitor: {
        exitFile: join(req.stateDir, 'init.exit'), stdio: req.stdio, ...(req.terminal ? { console: consolePaths(req.stateDir, 'init') } : {}),
      },
    });
    if (!monitored) throw errInternal('fast runtime: the init was not monitored');
    return monitored;
  }

  start(id: string): Promise<void> {
    return this.runtime.start(id);
  }

  async exec(req: ExecRequest): Promise<Monitored> {
    let monitored: Monitored | undefined;
    const exitFile = join(req.stateDir, `${req.execId}.exit`);
    await this.runtime.exec(req.id, req.process, {
      monitor: { exitFile, stdio: req.stdio, ...(req.terminal ? { console: consolePaths(req.stateDir, req.execId) } : {}) }, onMonitor: (m) => { monitored = m; } });
    if (!monitored) throw errInternal('fast runtime: the exec was not monitored');
    return monitored;
  }

  async kill(id: string, signal: number, all: boolean): Promise<void> {
    await this.runtime.kill(id, signal, all);
  }

  delete(id: string, force: boolean): Promise<void> {
    return this.runtime.delete(id, force);
  }

  pause(id: string): Promise<void> {
    return this.runtime.pause(id);
  }

  resume(id: string): Promise<void> {
    return this.runtime.resume(id);
  }

  async pids(id: string): Promise<number[]> {
    return this.runtime.cgroup(this.runtime.store.read(id)).pids();
  }

  async stats(id: string): Promise<CgroupStats> {
    return this.runtime.cgroup(this.runtime.store.read(id)).stats();
  }

  async update(id: string, resources: LinuxResources): Promise<void> {
    await this.runtime.cgroup(this.runtime.store.read(id)).update(resources);
  }
}

registerRuntime('fast', ({ root }) => new FastRuntime(root));
