// The vm backend: each container runs in a micro-VM (runtimes/vm/), driven through berth's guest agent. A
// container has a sandbox VM of its own, or shares its pod's (its group annotation), taken from the shim's warm
// pool or booted; the sandbox goes when its last container is deleted. Plans, cgroup writes and stats parsing are
// made here on the host; the agent executes them. A spec the guest cannot honour is refused before any VM boots.
// Hooks of the runtime's namespace (prestart, createRuntime, poststart, poststop) run on the host, as runc runs
// them, with the pid of the sandbox's QEMU in their state: its network namespace is the sandbox's (qemu.ts), so a
// network hook (Docker's libnetwork-setkey) configures that one, never the host's; after the hooks, what it put there
// is connected to the guest (vm/network.ts), in the network namespace the sandbox's containers share.
import { resolve } from 'node:path';
import { ErrorCode, codeOf, errNotFound } from '../../api/errdefs.ts';
import { withDefaultDevices } from '../cgroups/device-rules.ts';
import type { CgroupStats, LinuxResources } from '../cgroups/types.ts';
import type { Monitored } from '../monitor.ts';
import { registerRuntime, type CreateRequest, type ExecRequest, type OciRuntime } from '../oci-runtime.ts';
import { runHooks } from '../native/hooks.ts';
import { GROUP_ANNOTATIONS, type Spec, type State } from '../oci/spec.ts';
import { GuestCgroup, guestCgroup, guestStats } from '../vm/guest-cgroup.ts';
import { loadGuestSpec, planGuestContainer, planGuestExec } from '../vm/guest-plan.ts';
import { WarmPool, poolSizeFromEnv } from '../vm/pool.ts';
import { Sandbox, sweepDeadSandboxes } from '../vm/sandbox.ts';
import { DEFAULT_MEMORY_MIB, vmSizeOf } from '../vm/sizing.ts';
import { AGENT_CALL_TIMEOUT_MS, followVmProcess } from '../vm/vm-process.ts';

interface VmContainer {
  id: string;
  bundle: string;
  sandbox: Sandbox;
  spec: Spec;
  cgroup: GuestCgroup;
  pid: number;
}

/** What a shim process holds (openRuntime makes a backend object per Create; they all share this): its pod
 * groups' sandboxes, its warm pool, its containers. */
const shim = {
  sandboxes: new Map<string, Promise<Sandbox>>(),
  pool: undefined as WarmPool | undefined,
  containers: new Map<string, VmContainer>(),
};

/** Containers of one pod (a group by annotation, as the shim groups them) share a sandbox; any other container
 * has one of its own, even in a shim that serves a whole namespace (berthd's warm shims). */
function podOf(spec: Spec, id: string): string {
  for (const a of GROUP_ANNOTATIONS) if (spec.annotations?.[a]) return `pod/${spec.annotations[a]}`;
  return `container/${id}`;
}

const timeout = { timeoutMs: AGENT_CALL_TIMEOUT_MS };

class VmRuntime implements OciRuntime {
  readonly name = 'vm';

  constructor(readonly root: string) {}

  private container(id: string): VmContainer {
    const c = shim.containers.get(id);
    if (!c) throw errNotFound(`container ${id}: not found in the vm runtime`);
    return c;
  }

  /** The pod's sandbox, else one from the pool (or booted now). Concurrent creates of one pod wait for the same. */
  private async sandboxFor(spec: Spec, id: string): Promise<Sandbox> {
    const pod = podOf(spec, id);
    const known = shim.sandboxes.get(pod);
    if (known) return known;
    shim.pool ??= new WarmPool(this.root, poolSizeFromEnv(), { memoryMiB: DEFAULT_MEMORY_MIB, vcpus: 1 });
    const taking = shim.pool.take(vmSizeOf(spec)).then(({ sandbox }) => {
      sandbox.pod = pod;
      void sandbox.ended.then(() => { if (shim.sandboxes.get(pod) === taking) shim.sandboxes.delete(pod); });
      return sandbox;
    });
    shim.sandboxes.set(pod, taking);
    taking.catch(() => { if (shim.sandboxes.get(pod) === taking) shim.sandboxes.delete(pod); });
    return taking;
  }

  async create(req: CreateRequest): Promise<Monitored> {
    const spec = loadGuestSpec(req.bundle);
    const cgroup = new GuestCgroup(guestCgroup(spec.linux?.cgroupsPath, req.id).dir);
    // Resources are converted (the device rules with the defaults every container gets, as on the host, compiled
    // to the program the agent attaches before the init is cloned into the cgroup) and the plan made once on the
    // host's paths (so checked: mount options, bind sources, seccomp) before a VM is taken.
    const { writes, deviceProgram } = cgroup.plan(withDefaultDevices(spec.linux?.resources, spec.linux?.devices));
    const rootfs = resolve(req.bundle, spec.root!.path);
    planGuestContainer(req.id, { ...spec, root: { ...spec.root!, path: rootfs } }, { noPivot: req.noPivot });
    const sandbox = await this.sandboxFor(spec, req.id);
    sandbox.containers.add(req.id);
    let created = false;
    try {
      const guestSpec = sandbox.share.addContainer(req.id, spec, rootfs);
      const planned = planGuestContainer(req.id, guestSpec, { noPivot: req.noPivot });
      const stdio = { stdin: !!req.stdio.stdin, stdout: !!req.stdio.stdout, stderr: !!req.stdio.stderr };
      const { pid } = await sandbox.agent.createContainer({
        containerId: req.id, initPlan: planned.initPlan, terminal: !!req.terminal, stdio, cgroupPath: planned.cgroupPath, deviceProgram,
      }, timeout);
      created = true;
      if (writes.length) await sandbox.agent.updateContainer(req.id, { writes }, timeout);
      const c: VmContainer = { id: req.id, bundle: req.bundle, sandbox, spec, cgroup, pid };
      await runHooks('prestart', spec.hooks?.prestart, hookState(c, 'creating'));
      await runHooks('createRuntime', spec.hooks?.createRuntime, hookState(c, 'creating'));
      // QEMU's network namespace is berth's own, made empty at launch: only these hooks put anything there, so
      // without them there is nothing to look for (reading it costs three nsenter runs).
      if (spec.hooks?.prestart?.length || spec.hooks?.createRuntime?.length) await sandbox.connectNetwork();
      await sandbox.relayDns(spec);
      shim.containers.set(req.id, c);
      return followVmProcess({ agent: sandbox.agent, containerId: req.id, execId: '', pid, stdio: req.stdio, terminal: !!req.terminal, lost: sandbox.ended });
    } catch (err) {
      if (created) await sandbox.agent.removeContainer(req.id, timeout).catch(() => undefined);
      await this.release(sandbox, req.id);
      throw err;
    }
  }

  /** Unbinds the container's files from the share; a sandbox left with no container goes. */
  private async release(sandbox: Sandbox, id: string): Promise<void> {
    shim.containers.delete(id);
    sandbox.containers.delete(id);
    sandbox.oomKills.delete(id);
    await sandbox.share.removeContainer(id).catch(() => undefined);
    if (sandbox.containers.size === 0) {
      shim.sandboxes.delete(sandbox.pod);
      await sandbox.destroy();
      shim.pool?.refill();
    }
  }

  async start(id: string): Promise<void> {
    const c = this.container(id);
    await c.sandbox.agent.startContainer(id, timeout);
    await runHooks('poststart', c.spec.hooks?.poststart, hookState(c, 'running')).catch(warn);
  }

  async exec(req: ExecRequest): Promise<Monitored> {
    const c = this.container(req.id);
    const plan = planGuestExec(req.id, req.execId, c.spec, { ...req.process, terminal: !!req.terminal }, c.pid);
    const stdio = { stdin: !!req.stdio.stdin, stdout: !!req.stdio.stdout, stderr: !!req.stdio.stderr };
    const { pid } = await c.sandbox.agent.execProcess({ containerId: req.id, execId: req.execId, execPlan: plan, terminal: !!req.terminal, stdio }, timeout);
    return followVmProcess({ agent: c.sandbox.agent, containerId: req.id, execId: req.execId, pid, stdio: req.stdio, terminal: !!req.terminal, lost: c.sandbox.ended });
  }

  async kill(id: string, signal: number, all: boolean): Promise<void> {
    const c = this.container(id);
    try {
      await c.sandbox.agent.signalProcess({ containerId: id, signal, all }, timeout);
    } catch (err) {
      // A guest that does not answer cannot be asked: SIGKILL ends it (the container with it), bounded.
      if (signal !== 9 || !isUnresponsive(err)) throw err;
      await c.sandbox.destroy();
    }
  }

  async delete(id: string, force: boolean): Promise<void> {
    const c = shim.containers.get(id);
    if (!c) return this.deleteAfterShim();
    try {
      await c.sandbox.agent.removeContainer(id, timeout);
    } catch (err) {
      if (!force && !isUnresponsive(err)) throw err;
      // The guest no longer answers: nothing in it can be trusted to end; the VM goes with its containers.
      if (isUnresponsive(err)) await c.sandbox.destroy();
    }
    await this.release(c.sandbox, id);
    await runHooks('poststop', c.spec.hooks?.poststop, hookState(c, 'stopped')).catch(warn);
  }

  /** `shim delete` of a container whose shim died (its VM died with it): the binds and directories of the
   * sandboxes dead shims left under the root go. */
  private deleteAfterShim(): Promise<void> {
    return sweepDeadSandboxes(this.root);
  }

  async pause(id: string): Promise<void> {
    await this.container(id).sandbox.agent.pauseContainer(id, timeout);
  }

  async resume(id: string): Promise<void> {
    await this.container(id).sandbox.agent.resumeContainer(id, timeout);
  }

  pids(id: string): Promise<number[]> {
    return this.container(id).sandbox.agent.listProcesses(id, timeout);
  }

  async update(id: string, resources: LinuxResources): Promise<void> {
    const c = this.container(id);
    const usage = resources.memory?.checkBeforeUpdate ? { memoryCurrent: (await this.stats(id)).memory?.usage } : undefined;
    // Devices in an update replace the container's rules as given, without the defaults (as on the host).
    const update = c.cgroup.plan(resources, true, usage);
    if (update.writes.length || update.deviceProgram) await c.sandbox.agent.updateContainer(id, update, timeout);
  }

  oomKillCount(id: string): number {
    return this.container(id).sandbox.oomKills.get(id) ?? 0;
  }

  async stats(id: string): Promise<CgroupStats> {
    const c = this.container(id);
    const files = await c.sandbox.agent.statsContainer(id, timeout);
    return guestStats(`the guest's cgroup of ${id}`, [...files].map(([name, content]) => ({ name, content })));
  }
}

/** A hook's stdin: the container's state, with the pid of its sandbox's QEMU (0 once stopped). */
function hookState(c: VmContainer, status: State['status']): State {
  return { ociVersion: c.spec.ociVersion ?? '1.0.2', id: c.id, status, pid: status === 'stopped' ? 0 : c.sandbox.vm.pid, bundle: c.bundle, annotations: c.spec.annotations ?? {} };
}

/** A hook that fails after the container started does not stop it (runc warns too): the shim's stderr says so. */
function warn(err: unknown): void {
  process.stderr.write(`vm runtime: warning: ${(err as Error).message}\n`);
}

function isUnresponsive(err: unknown): boolean {
  const code = codeOf(err);
  return code === ErrorCode.DeadlineExceeded || code === ErrorCode.Unavailable;
}

/** The shim is exiting: its sandboxes (pooled or in use) go, with their shares. */
async function closeSandboxes(): Promise<void> {
  await shim.pool?.close();
  await Promise.all([...shim.sandboxes.values()].map((s) => s.then((sandbox) => sandbox.destroy(), () => undefined)));
}

registerRuntime('vm', ({ root }) => new VmRuntime(root), closeSandboxes);
