// OCI bundles for tests and benchmarks: a busybox rootfs plus a config.json shaped like `runc spec`'s default
// (non-terminal), with per-test overrides.
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { makeBusyboxRootfs } from './rootfs.ts';

export type Json = any;

export function defaultSpec(args: string[] = ['/bin/true']): Json {
  const caps = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args,
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps, ambient: caps },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'berth',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

export interface Bundle { dir: string; rootfs: string; spec: Json }

/**
 * Creates `dir` with rootfs/ (busybox) and config.json. `edit` may change the spec in place before it is
 * written; pass `rawConfig` to write config.json verbatim (for invalid-input tests).
 */
export function makeBundle(dir: string, opts: { args?: string[]; edit?: (spec: Json) => void; rawConfig?: string } = {}): Bundle {
  mkdirSync(dir, { recursive: true });
  const rootfs = makeBusyboxRootfs(join(dir, 'rootfs'));
  const spec = defaultSpec(opts.args);
  opts.edit?.(spec);
  writeFileSync(join(dir, 'config.json'), opts.rawConfig ?? JSON.stringify(spec, null, 2));
  return { dir, rootfs, spec };
}

/** Rewrites config.json of an existing bundle. */
export function writeSpec(bundle: Bundle): void {
  writeFileSync(join(bundle.dir, 'config.json'), JSON.stringify(bundle.spec, null, 2));
}
