// berth doctor: what this host can do for berth, each line "ok", "warn" or "fail" with the reason.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, readdirSync } from 'node:fs';
import { vmCensus } from '../../api/vm-census.ts';
import { registerCommand } from '../command.ts';

interface Check { name: string; status: 'ok' | 'warn' | 'fail'; detail: string }

const read = (path: string) => { try { return readFileSync(path, 'utf8'); } catch { return ''; } };

function cgroupMode(): Check {
  const unified = read('/proc/self/mountinfo').split('\n').some((l) => / - cgroup2 /.test(l) && l.split(' ')[4] === '/sys/fs/cgroup');
  if (unified) return { name: 'cgroups', status: 'ok', detail: 'v2 (unified)' };
  const v1 = readdirSync('/sys/fs/cgroup').filter((d) => existsSync(`/sys/fs/cgroup/${d}/cgroup.procs`));
  const hybrid = existsSync('/sys/fs/cgroup/unified/cgroup.controllers');
  return { name: 'cgroups', status: v1.length ? 'ok' : 'fail', detail: `${hybrid ? 'hybrid' : 'v1'}: ${v1.join(', ') || 'no hierarchies mounted'}` };
}

function runtimeCheck(bin: string, args: string[]): Check {
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 5000 });
  if (r.error) return { name: bin, status: 'warn', detail: 'not installed' };
  return { name: bin, status: r.status === 0 ? 'ok' : 'warn', detail: (r.stdout || r.stderr).split('\n')[0]!.trim() };
}

function crunCheck(): Check {
  const c = runtimeCheck('crun', ['--version']);
  const hybrid = existsSync('/sys/fs/cgroup/unified/cgroup.controllers') && !existsSync('/sys/fs/cgroup/hugetlb/cgroup.procs');
  if (c.status === 'ok' && hybrid && /crun version 1\.[0-8]\b/.test(c.detail)) {
    return { ...c, status: 'warn', detail: `${c.detail}: refuses this hybrid cgroup layout unless hugetlb is mounted as a v1 hierarchy` };
  }
  return c;
}

function kvm(): Check {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { name: 'kvm', status: 'warn', detail: '/dev/kvm not usable: VM isolation falls back to emulation (TCG)' };
  }
  const pvm = read('/proc/modules').includes('kvm_pvm');
  return { name: 'kvm', status: pvm ? 'warn' : 'ok', detail: pvm ? '/dev/kvm is nested PVM: stock guest kernels do not boot under it; VMs use TCG' : '/dev/kvm present' };
}

/** The vm runtime's VMs here (running containers, warm in shims' pools) and the accelerator they get. */
function vms(): Check {
  if (!existsSync('/usr/bin/qemu-system-x86_64')) return { name: 'vm', status: 'warn', detail: 'qemu-system-x86_64 not installed: no vm runtime' };
  const { running, warm } = vmCensus();
  // The launcher decides once per host boot whether KVM boots its guests (runtimes/vm/qemu.ts probeAccel).
  let accel = existsSync('/dev/kvm') ? 'not probed yet' : 'tcg (no /dev/kvm)';
  try { accel = (JSON.parse(read('/run/berth/vm-accel.json')) as { accel: string }).accel; } catch { /* not probed */ }
  return { name: 'vm', status: 'ok', detail: `${running + warm} VM(s): ${running} running containers, ${warm} warm in pools; accelerator ${accel}` };
}

export function hostChecks(): Check[] {
  const filesystems = read('/proc/filesystems');
  const status = read('/proc/self/status');
  const userns = Number(read('/proc/sys/user/max_user_namespaces').trim() || 0);
  return [
    { name: 'root', status: process.getuid?.() === 0 ? 'ok' : 'fail', detail: process.getuid?.() === 0 ? 'running as root' : 'berthd and containers need root' },
    cgroupMode(),
    { name: 'overlayfs', status: /\toverlay\n/.test(filesystems) ? 'ok' : 'warn', detail: /\toverlay\n/.test(filesystems) ? 'overlay mounts available' : 'no overlay in /proc/filesystems: use the native snapshotter' },
    { name: 'fuse', status: existsSync('/dev/fuse') ? 'ok' : 'warn', detail: existsSync('/dev/fuse') ? '/dev/fuse present (lazy snapshotter)' : 'no /dev/fuse: no lazy pulls' },
    { name: 'user namespaces', status: userns > 0 ? 'ok' : 'warn', detail: `max_user_namespaces = ${userns}` },
    { name: 'seccomp', status: /^Seccomp:/m.test(status) ? 'ok' : 'warn', detail: /^Seccomp:/m.test(status) ? 'kernel supports seccomp filters' : 'no seccomp support reported' },
    kvm(),
    vms(),
    runtimeCheck('runc', ['--version']),
    crunCheck(),
    runtimeCheck('runsc', ['--version']),
    runtimeCheck('containerd', ['--version']),
  ];
}

registerCommand({
  path: ['doctor'],
  summary: 'check what this host can do for berth (and whether berthd answers)',
  flags: [{ name: 'json', type: 'bool', usage: 'print JSON' }],
  async run(ctx, flags) {
    const checks = hostChecks();
    try {
      const v = await ctx.client().call('containerd.services.version.v1.Version', 'Version');
      checks.push({ name: 'daemon', status: 'ok', detail: `${ctx.address} answers: ${v.version}` });
    } catch (err) {
      checks.push({ name: 'daemon', status: 'warn', detail: `${ctx.address}: ${(err as Error).message}` });
    }
    if (flags.json) return ctx.out.json(checks);
    ctx.out.table(['CHECK', 'STATUS', 'DETAIL'], checks.map((c) => [c.name, c.status, c.detail]));
    return checks.some((c) => c.status === 'fail') ? 1 : 0;
  },
});
