// gVisor's runsc as a backend of its own: the CLI backend's commands with the flags a probe of this host decided
// (runsc-probe.ts: platform, --ignore-cgroups), and per container the network the spec asks for: the host's when
// the spec has no network namespace, the namespace's interfaces (--network=sandbox) when the spec names one and
// runsc can take them here, else none (loopback only; runsc's own network stack is never on the host's). Stats come
// from `runsc events --stats` (runc's event format: runc-events.ts) with the limits of the sandbox's cgroup. OOM kills are seen by the shim in the sandbox's
// cgroup: runsc 20221219's event stream carries only stats, and a sandbox over its memory limit has its sentry
// killed by the host.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errNotImplemented } from '../../api/errdefs.ts';
import { openCgroup } from '../cgroups/index.ts';
import type { CgroupStats, LinuxResources } from '../cgroups/types.ts';
import type { Monitored } from '../monitor.ts';
import { registerRuntime, type CreateRequest } from '../oci-runtime.ts';
import { CliRuntime } from './cli.ts';
import { cachedRunscHost, probeRunscHost, type RunscHost } from './runsc-probe.ts';

/** Before any probe (a shim deleting what a dead shim left): runsc's own default platform. */
const UNPROBED: RunscHost = { platform: 'ptrace', ignoreCgroups: false, sandboxNetwork: false, rejected: [] };

type Network = 'host' | 'sandbox' | 'none';

/** The --network a container gets: what its spec asks, as far as runsc can give it on this host. */
export function networkFor(spec: { linux?: { namespaces?: Array<{ type: string; path?: string }> } }, host: RunscHost): Network {
  const ns = spec.linux?.namespaces?.find((n) => n.type === 'network');
  if (!ns) return 'host';
  return ns.path && host.sandboxNetwork ? 'sandbox' : 'none';
}

class RunscRuntime extends CliRuntime {
  private host: RunscHost | undefined;
  /** Each container's --network, which create and start (where runsc sets the network up) must agree on. */
  private readonly networks = new Map<string, Network>();
  /** Each container's cgroupsPath: the sandbox's host cgroup, whose limits gVisor's stats leave out. */
  private readonly cgroups = new Map<string, string>();

  protected override async beforeCreate(req: CreateRequest): Promise<void> {
    this.host = await probeRunscHost(this.binary);
    const spec = JSON.parse(readFileSync(join(req.bundle, 'config.json'), 'utf8'));
    this.networks.set(req.id, networkFor(spec, this.host));
    this.cgroups.set(req.id, spec.linux?.cgroupsPath ?? '');
  }

  protected override globalFlags(id: string): string[] {
    const host = this.host ?? cachedRunscHost(this.binary) ?? UNPROBED;
    return [...super.globalFlags(id), `--platform=${host.platform}`, ...(host.ignoreCgroups ? ['--ignore-cgroups'] : []), `--network=${this.networks.get(id) ?? 'none'}`];
  }

  override async create(req: CreateRequest): Promise<Monitored> {
    try {
      return await super.create(req);
    } catch (err) {
      this.networks.delete(req.id);
      throw err;
    }
  }

  override async delete(id: string, force: boolean): Promise<void> {
    await super.delete(id, force);
    this.networks.delete(id);
    this.cgroups.delete(id);
  }

  /** gVisor's own figures (what the sandboxed processes use), with the limits of the host cgroup its sentry runs
   * in, which its events report as 0. */
  override async stats(id: string): Promise<CgroupStats> {
    const s = await super.stats(id);
    const path = this.cgroups.get(id);
    if (!this.host || this.host.ignoreCgroups || path === undefined) return s;
    let limits: CgroupStats;
    try { limits = openCgroup(path, { containerId: id }).stats(); } catch { return s; }
    if (s.memory && limits.memory) Object.assign(s.memory, { limit: limits.memory.limit, swapLimit: limits.memory.swapLimit });
    if (s.pids && limits.pids) s.pids.limit = limits.pids.limit;
    return s;
  }

  /** runsc has no update command: a sandbox's resources are fixed at its start. */
  override async update(_id: string, _resources: LinuxResources): Promise<void> {
    throw errNotImplemented('runsc cannot change the resources of a running sandbox (it has no update command)');
  }
}

registerRuntime('runsc', ({ root, binary, clientRoot, log }) => new RunscRuntime(binary ?? 'runsc', clientRoot ?? root, log));
