// A sandbox: one booted VM, its shared directory and the containers it runs. A shim runs all its vm containers in
// one sandbox (a shim serves one container, or one group: a pod shares a VM, as Kata shares one per pod); a
// warm pool (pool.ts) keeps sandboxes booted ahead, so that a start costs agent calls, not a boot. Its network is
// what the runtime's hooks gave QEMU's namespace, connected once (network.ts).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError, ErrorCode, codeOf } from '../../api/errdefs.ts';
import { removeTree } from '../../api/remove-soon.ts';
import type { AgentClient } from './agent-client.ts';
import { processStartTime } from '../proc.ts';
import { Share } from './guest-plan.ts';
import { DnsRelay, loopbackNameservers } from './dns-relay.ts';
import { connectSandboxNetwork } from './network.ts';
import { launchVm, type Vm } from './qemu.ts';
import type { VmSize } from './sizing.ts';
import type { Spec } from '../oci/spec.ts';
import { AGENT_CALL_TIMEOUT_MS } from './vm-process.ts';

const SHARE_TAG = 'berth';

let sandboxes = 0;

export class Sandbox {
  readonly containers = new Set<string>();
  /** The pod (or lone container) it serves. */
  pod = '';
  /** Resolves, with why, when the VM has ended (destroyed, agent death, guest panic, QEMU killed). */
  readonly ended: Promise<string>;
  private destroying: Promise<void> | undefined;
  /** Connecting the network, in turn for concurrent creates; true once connected. */
  private networking: Promise<boolean> = Promise.resolve(false);
  /** The DNS relay for loopback nameservers, once a container has one. */
  private dns: Promise<DnsRelay | undefined> = Promise.resolve(undefined);

  /** OOM kills per container, as the agent reports them (GetOOMEvent). */
  readonly oomKills = new Map<string, number>();

  private constructor(readonly vm: Vm, readonly share: Share, readonly size: VmSize, readonly dir: string) {
    this.ended = vm.exited.then(() => (this.destroying ? 'the sandbox was destroyed' : `the VM ended (guest panic, agent death or QEMU killed; console: ${consoleTail(vm.consoleLog)})`));
    void this.watchOom();
  }

  /** Counts the agent's OOM events until the VM is gone (a long poll: one call waits at a time). */
  private async watchOom(): Promise<void> {
    for (;;) {
      let id: string;
      try { id = await this.vm.agent.getOOMEvent(); } catch { return; }
      if (id) this.oomKills.set(id, (this.oomKills.get(id) ?? 0) + 1);
    }
  }

  get agent(): AgentClient {
    return this.vm.agent;
  }

  /** Connects what the hooks put in QEMU's network namespace to the guest, unless done already; with nothing
   * there, nothing changes (a later container's hooks may still add it). */
  connectNetwork(): Promise<void> {
    const turn = this.networking.catch(() => false).then((connected) => connected || connectSandboxNetwork(this.vm.pid, this.vm.tap, this.vm.agent));
    this.networking = turn;
    return turn.then(() => undefined);
  }

  /** Relays the container's loopback nameservers (Docker's embedded resolver) to the guest: dns-relay.ts. */
  relayDns(spec: Pick<Spec, 'mounts'>): Promise<void> {
    const servers = loopbackNameservers(spec);
    if (!servers.length) return Promise.resolve();
    const turn = this.dns.catch(() => undefined).then(async (relay) => {
      // A relay that ended (its forwarder killed again and again) starts afresh: the agent keeps its addresses.
      if (!relay || relay.stopped) return DnsRelay.start(this.vm.pid, this.vm.agent, servers);
      await relay.add(servers);
      return relay;
    });
    this.dns = turn;
    return turn.then(() => undefined, (err: Error) => {
      throw new BerthError(codeOf(err) === ErrorCode.Unknown ? ErrorCode.Internal : codeOf(err), `vm: DNS for the nameserver ${servers.join(', ')} of the container's resolv.conf: ${err.message}`);
    });
  }

  /** Boots a VM whose state and share live under `root` (sandbox-<shim pid>-<n>), and waits until its agent
   * serves the share. */
  static async boot(root: string, size: VmSize): Promise<Sandbox> {
    const dir = join(root, `sandbox-${process.pid}-${++sandboxes}`);
    const share = Share.create(join(dir, 'share'));
    let vm: Vm | undefined;
    try {
      vm = await launchVm({ stateDir: dir, memoryMiB: size.memoryMiB, cpus: size.vcpus, share: { hostDir: share.dir, tag: SHARE_TAG } });
      await vm.agent.createSandbox({ shareTag: SHARE_TAG, shareMount: share.dir }, { timeoutMs: AGENT_CALL_TIMEOUT_MS });
      // Which accelerator the VM got, and what it cost (berth doctor and the benchmarks read it).
      writeFileSync(join(dir, 'sandbox.json'), JSON.stringify({
        accel: vm.accel, bootMs: vm.bootMs, memoryMiB: size.memoryMiB, vcpus: size.vcpus, qemuPid: vm.pid, kernelRelease: vm.ready.kernelRelease,
      }));
      return new Sandbox(vm, share, size, dir);
    } catch (err) {
      await vm?.stop().catch(() => undefined);
      await share.close();
      await removeTree(dir);
      throw err instanceof BerthError ? err : new BerthError(ErrorCode.Unavailable, `vm: booting a sandbox: ${(err as Error).message}`);
    }
  }

  /** Stops the VM (bounded) and removes the share and the state. The guest is not asked to power off first:
   * nothing of a container's lives only in the guest (virtio-fs writes go through to the host at once, no
   * writeback cache), so its power-off would only add a round trip to every last Delete. */
  destroy(): Promise<void> {
    this.destroying ??= (async () => {
      await this.vm.stop().catch(() => undefined);
      (await this.dns.catch(() => undefined))?.stop();
      for (const id of this.containers) await this.share.removeContainer(id).catch(() => undefined);
      await this.share.close();
      await removeTree(this.dir);
    })();
    return this.destroying;
  }
}

function consoleTail(path: string): string {
  try { return JSON.stringify(readFileSync(path, 'utf8').slice(-400)); } catch { return '(none)'; }
}

/** Removes what sandboxes of shims that are gone left under `root` (their VMs died with them): the binds in
 * their shares, then their directories. */
export async function sweepDeadSandboxes(root: string): Promise<void> {
  let names: string[];
  try { names = readdirSync(root); } catch { return; }
  for (const name of names) {
    const pid = Number(/^sandbox-(\d+)-\d+$/.exec(name)?.[1]);
    if (!pid || pid === process.pid || alive(pid)) continue;
    const share = Share.open(join(root, name, 'share'));
    for (const id of share.containerIds()) await share.removeContainer(id).catch(() => undefined);
    await share.close();
    await removeTree(join(root, name));
  }
}

/** A zombie counts as gone: its VMs died with it (parent-death signal) even if nobody has reaped it yet. */
const alive = (pid: number) => processStartTime(pid) !== undefined;
