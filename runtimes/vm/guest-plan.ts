// Planning a container for a VM. The guest mounts the VM's shared directory (virtio-fs) at the same path the
// host serves it from, so a path under it names the same file on both sides: the container's rootfs (the
// mounted snapshot, bound in) and the spec's bind-mount sources are bound below it on the host, and the plan,
// made here by runtimes/oci/plan.ts, names them by those paths. The guest's writes land in the snapshot's upper
// directory. Everything the guest cannot reach (host namespaces, hooks to run in the container's namespaces, a
// seccomp agent on the host) is refused here, before any VM boots. A container that asks for a network namespace
// of its own joins the sandbox's (the agent's, at GUEST_SANDBOX_NETNS) instead: a VM is a pod, its containers share
// its network, which the host configures after the container's hooks ran (runtimes/vm/network.ts).
import { closeSync, mkdirSync, openSync, readdirSync, statSync } from 'node:fs';
import { join, posix, resolve } from 'node:path';
import { errInvalidArgument, errNotImplemented } from '../../api/errdefs.ts';
import { MS, mount } from '../../api/libc.ts';
import { unmountAll } from '../../api/mounting.ts';
import { removeTree } from '../../api/remove-soon.ts';
import { buildExecPlan, buildPlan, parseMountOptions } from '../oci/plan.ts';
import type { Process, Spec } from '../oci/spec.ts';
import { loadBundle, validateProcess } from '../oci/validate.ts';
import { guestCgroup } from './guest-cgroup.ts';

/** Where the agent keeps a container's files in the guest (its exec FIFO, console sockets). */
export const GUEST_STATE_DIR = '/run/berth-agent';
/** The sandbox's network namespace in the guest (CreateSandbox makes it: agent.proto). */
export const GUEST_SANDBOX_NETNS = '/run/berth/sandbox.netns';

export interface GuestContainer {
  id: string;
  spec: Spec;
  /** The container's cgroup directory in the guest. */
  cgroupPath: string;
  /** The init plan for the guest. */
  initPlan: Buffer;
}

/** Reads and checks the bundle for a VM: everything refused here is refused before a VM boots. */
export function loadGuestSpec(bundle: string): Spec {
  const { spec } = loadBundle(bundle);
  if (!spec.process) throw errInvalidArgument('config.json: process: required to create a container');
  // Hooks of the runtime's namespace run on the host (runtimes/backends/vm.ts); the container's are in the guest,
  // where a host path means nothing.
  const inContainer = (['createContainer', 'startContainer'] as const).filter((kind) => spec.hooks?.[kind]?.length);
  if (inContainer.length) throw errNotImplemented(`config.json: hooks (${inContainer.join(', ')}): the vm runtime cannot run hooks in the container's namespaces (they are in the guest; the hook is a host path)`);
  for (const ns of spec.linux?.namespaces ?? []) {
    if (ns.path) throw errNotImplemented(`config.json: linux.namespaces: the ${ns.type} namespace at ${ns.path} is the host's: a container in a VM cannot join it`);
  }
  if ((spec.linux?.seccomp as { listenerPath?: string } | undefined)?.listenerPath) {
    throw errNotImplemented('config.json: linux.seccomp.listenerPath: a seccomp agent on the host cannot serve a container in a VM');
  }
  return spec;
}

/**
 * A VM's shared directory. virtiofsd serves it from the host's mount namespace (chrooted into it, no namespace of
 * its own), so binds made below it after the VM booted reach the guest.
 */
export class Share {
  private constructor(readonly dir: string) {}

  static create(dir: string): Share {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return new Share(dir);
  }

  /** A share some other process made (its sandbox is gone: see sweepDeadSandboxes). */
  static open(dir: string): Share {
    return new Share(dir);
  }

  containerIds(): string[] {
    try { return readdirSync(this.dir); } catch { return []; }
  }

  containerDir(id: string): string {
    return join(this.dir, id);
  }

  /**
   * Binds the container's rootfs and the sources of its bind mounts below the share and returns the spec with
   * those sources renamed (root.path too). Undone by removeContainer.
   */
  addContainer(id: string, spec: Spec, rootfs: string): Spec {
    const dir = this.containerDir(id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    try {
      const root = join(dir, 'rootfs');
      bind(rootfs, root, false);
      const mounts = (spec.mounts ?? []).map((m, i) => {
        const { flags } = parseMountOptions(m.options);
        if (m.type !== 'bind' && !(flags & MS.bind)) return m;
        const source = resolve(m.source ?? '');
        const target = join(dir, 'mounts', String(i));
        bind(source, target, (m.options ?? []).includes('rbind'), `config.json: mounts[${i}] (${posix.normalize(m.destination)})`);
        return { ...m, source: target };
      });
      return { ...spec, root: { ...spec.root!, path: root }, mounts };
    } catch (err) {
      void this.removeContainer(id);
      throw err;
    }
  }

  /** Unmounts what addContainer bound and removes the directories, never entering a mount left behind. */
  async removeContainer(id: string): Promise<void> {
    const dir = this.containerDir(id);
    const mounts = join(dir, 'mounts');
    let names: string[] = [];
    try { names = readdirSync(mounts); } catch { /* none */ }
    for (const name of names) await unmountAll(join(mounts, name)).catch(() => undefined);
    await unmountAll(join(dir, 'rootfs')).catch(() => undefined);
    await removeTree(dir);
  }

  async close(): Promise<void> {
    await removeTree(this.dir);
  }
}

/** A bind of `source` at `target` (made a file or a directory as the source is). */
function bind(source: string, target: string, recursive: boolean, field = 'root.path'): void {
  let isDir: boolean;
  try { isDir = statSync(source).isDirectory(); } catch { throw errInvalidArgument(`${field}: bind source ${source} does not exist`); }
  mkdirSync(posix.dirname(target), { recursive: true });
  if (isDir) mkdirSync(target);
  else closeSync(openSync(target, 'w'));
  mount(source, target, '', MS.bind | (recursive ? MS.rec : 0), '');
}

/** The guest paths of one process's agent-side files. */
export function guestProcessPaths(id: string, execId: string): { execFifo: string; consoleSocket: string } {
  const dir = posix.join(GUEST_STATE_DIR, id);
  return { execFifo: posix.join(dir, 'exec.fifo'), consoleSocket: posix.join(dir, `${execId || 'init'}.console`) };
}

/** The init plan for a container whose rootfs and bind sources are already in the share (see addContainer). */
export function planGuestContainer(id: string, spec: Spec, opts: { noPivot?: boolean } = {}): GuestContainer {
  spec = inSandboxNetwork(spec);
  const cgroup = guestCgroup(spec.linux?.cgroupsPath, id);
  const cgroupPath = cgroup.dir;
  const paths = guestProcessPaths(id, '');
  const initPlan = buildPlan({
    spec, rootfs: spec.root!.path, mode: 'create', execFifo: paths.execFifo, cgroup, noPivot: opts.noPivot,
    ...(spec.process?.terminal ? { consoleSocket: paths.consoleSocket } : {}),
    // The agent makes the cgroup before the plan runs: the init is born in it and needs no go-ahead.
    cloneInto: cgroupPath, proceed: true,
  });
  return { id, spec, cgroupPath, initPlan };
}

/** The spec with a new network namespace replaced by the sandbox's, joined by path (loadGuestSpec refused any
 * other path). */
function inSandboxNetwork(spec: Spec): Spec {
  const namespaces = spec.linux?.namespaces;
  if (!namespaces?.some((ns) => ns.type === 'network')) return spec;
  return { ...spec, linux: { ...spec.linux, namespaces: namespaces.map((ns) => (ns.type === 'network' ? { type: 'network', path: GUEST_SANDBOX_NETNS } : ns)) } };
}

/** The plan of a process exec'd into a container whose init has `containerPid` in the guest. */
export function planGuestExec(id: string, execId: string, spec: Spec, process: Process, containerPid: number): Buffer {
  validateProcess(process);
  const seccomp = spec.linux?.seccomp as Parameters<typeof buildExecPlan>[0]['seccomp'];
  return buildExecPlan({
    process, containerPid, namespaces: (spec.linux?.namespaces ?? []).map((ns) => ns.type), mode: 'create',
    ...(seccomp ? { seccomp } : {}), ...(process.terminal ? { consoleSocket: guestProcessPaths(id, execId).consoleSocket } : {}),
  });
}
