// gVisor's runsc as a backend of its own: the CLI backend's commands with the flags a probe of this host decided
// (runsc-probe.ts: platform, --ignore-cgroups), and per container the network the spec asks for: the host's when
// the spec has no network namespace, the namespace's interfaces (--network=sandbox) when the spec names one and
// runsc can take them here, else none (loopback only; runsc's own network stack is never on the host's). Stats come
// from `runsc events --stats` (runc's event format: runc-events.ts). OOM kills are seen by the shim in the sandbox's
// cgroup: runsc 20221219's event stream carries only stats, and a sandbox over its memory limit has its sentry
// killed by the host.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errNotImplemented } from '../../api/errdefs.ts';
import type { LinuxResources } from '../cgroups/types.ts';
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

  protected override async beforeCreate(req: CreateRequest): Promise<void> {
    this.host = await probeRunscHost(this.binary);
    const spec = JSON.parse(readFileSync(join(req.bundle, 'config.json'), 'utf8'));
    this.networks.set(req.id, networkFor(spec, this.host));
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
  }

  /** runsc has no update command: a sandbox's resources are fixed at its start. */
  override async update(_id: string, _resources: LinuxResources): Promise<void> {
    throw errNotImplemented('runsc cannot change the resources of a running sandbox (it has no update command)');
  }
}

registerRuntime('runsc', ({ root, binary, clientRoot, log }) => new RunscRuntime(binary ?? 'runsc', clientRoot ?? root, log));
