// A container's cgroup in the guest, as the host plans it: the guest mounts one pure cgroup v2 hierarchy at
// /sys/fs/cgroup, so the container's directory follows runc's cgroupsPath rules on that layout. The v2 code
// (runtimes/cgroups/v2-apply.ts, v2-stats.ts) converts OCI resources into the writes the agent performs and
// parses the files it returns, against a description of the guest kernel's cgroup directory. Device rules are
// compiled here to the eBPF program the agent attaches (cgroup v2 has no devices files).
import { errInvalidArgument } from '../../api/errdefs.ts';
import { compileDeviceRules } from '../cgroups/devices-bpf.ts';
import { normalizeCgroupsPath, parseLayout } from '../cgroups/layout.ts';
import type { CgroupStats, LinuxResources } from '../cgroups/types.ts';
import { applyV2 } from '../cgroups/v2-apply.ts';
import type { CgroupDir } from '../cgroups/v2-dir.ts';
import { v2Stats } from '../cgroups/v2-stats.ts';
import { V2Cgroup } from '../cgroups/v2.ts';
import { validateResources } from '../cgroups/validate.ts';

/** The guest's mounts as its agent makes them: cgroup2 alone. */
export const GUEST_LAYOUT = parseLayout('30 20 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n');

/** The container's cgroup in the guest, for its paths only (its directory, and what the plan binds at the
 * spec's cgroup mount): the guest's cgroupfs is reached through the agent, never from the host. A relative
 * cgroupsPath lands below the guest's root cgroup, where the agent runs. */
export function guestCgroup(cgroupsPath: string | undefined, containerId: string): V2Cgroup {
  return new V2Cgroup({ cgroupsPath: normalizeCgroupsPath(cgroupsPath ?? '', containerId), layout: GUEST_LAYOUT, own: { '': '/' } });
}

export interface CgroupWrite { file: string; value: string }

/** What the agent applies to a container's guest cgroup: file writes, and the device rules compiled to the
 * eBPF program it loads and attaches (replacing the one there) when the resources name devices. */
export interface GuestResources { writes: CgroupWrite[]; deviceProgram?: Buffer }

/** The largest device program the agent loads (native/agent/devices.c's DEVICE_PROG_MAX_INSNS): the kernel's
 * classic BPF_MAXINSNS, some 400 device rules. */
export const DEVICE_PROGRAM_MAX_INSNS = 4096;

// What a non-root cgroup directory holds in berth's guest kernel (native/guest-kernel/berth-guest.config) with
// every controller delegated to it; files not listed here are refused as they would be by the kernel. The guest
// has no block devices, huge pages, RDMA or misc resources, so it has none of their controllers: a spec that
// limits them is refused before a VM boots.
const CONTROLLERS = 'cpuset cpu memory pids';
const FILES = new Set([
  'cgroup.controllers', 'cgroup.events', 'cgroup.freeze', 'cgroup.kill', 'cgroup.max.depth', 'cgroup.max.descendants', 'cgroup.pressure',
  'cgroup.procs', 'cgroup.stat', 'cgroup.subtree_control', 'cgroup.threads', 'cgroup.type', 'cpu.pressure', 'io.pressure', 'memory.pressure',
  'cpu.stat', 'cpu.idle', 'cpu.max', 'cpu.max.burst', 'cpu.weight', 'cpu.weight.nice',
  'cpuset.cpus', 'cpuset.cpus.effective', 'cpuset.cpus.partition', 'cpuset.mems', 'cpuset.mems.effective',
  'memory.current', 'memory.events', 'memory.events.local', 'memory.high', 'memory.low', 'memory.max', 'memory.min',
  'memory.oom.group', 'memory.peak', 'memory.reclaim', 'memory.stat', 'memory.swap.current', 'memory.swap.events', 'memory.swap.high',
  'memory.swap.max', 'pids.current', 'pids.events', 'pids.max', 'pids.peak',
]);
const DEFAULTS: Record<string, string> = {
  'cgroup.controllers': CONTROLLERS, 'cpu.max': 'max 100000', 'memory.max': 'max', 'memory.swap.max': 'max', 'pids.max': 'max',
};

/**
 * The guest directory of one container as far as the host knows it: the host is its only writer, so what it
 * wrote last is what a file holds. Writes are collected for the agent (UpdateContainer).
 */
export class GuestCgroup {
  private readonly current = new Map<string, string>();

  constructor(readonly path: string) {}

  /** What applies `resources` (validated first: nothing is collected from a bad request). */
  plan(resources: LinuxResources, update = false, usage?: { memoryCurrent?: number }): GuestResources {
    validateResources(resources);
    const writes: CgroupWrite[] = [];
    let deviceProgram: Buffer | undefined;
    const known = new Map(this.current);
    if (usage?.memoryCurrent !== undefined) known.set('memory.current', String(usage.memoryCurrent));
    const dir: CgroupDir = {
      path: this.path,
      read: (file) => known.get(file) ?? DEFAULTS[file] ?? (FILES.has(file) ? '' : undefined),
      exists: (file) => FILES.has(file),
      write: (file, value) => {
        if (!FILES.has(file)) throw errInvalidArgument(`cgroup ${file}: the guest kernel does not provide it`);
        writes.push({ file, value: String(value) });
        known.set(file, String(value));
      },
      list: () => [...FILES],
      // Compiled here, loaded by the agent: the guest kernel checks the container's device use as the host's would.
      devices: (rules) => {
        deviceProgram = compileDeviceRules(rules);
        const insns = deviceProgram.length / 8;
        if (insns > DEVICE_PROGRAM_MAX_INSNS) {
          throw errInvalidArgument(`linux.resources.devices: ${rules.length} rules compile to ${insns} eBPF instructions, more than the guest agent loads (${DEVICE_PROGRAM_MAX_INSNS})`);
        }
      },
    };
    applyV2(dir, resources, update);
    for (const w of writes) this.current.set(w.file, w.value);
    return { writes, ...(deviceProgram ? { deviceProgram } : {}) };
  }
}

/** Statistics from the raw files StatsContainer returned. */
export function guestStats(path: string, files: { name: string; content: Uint8Array | string }[]): CgroupStats {
  const byName = new Map(files.map((f) => [f.name, Buffer.from(f.content).toString('utf8')]));
  if (!byName.has('cgroup.controllers')) byName.set('cgroup.controllers', CONTROLLERS);
  return v2Stats({
    path, read: (file) => byName.get(file), exists: (file) => byName.has(file), list: () => [...byName.keys()],
    write: () => { throw errInvalidArgument('guest cgroup statistics are read-only'); }, devices: () => undefined,
  });
}
