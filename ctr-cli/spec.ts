// The OCI spec `berth run` sends, built the way containerd's client builds it: containerd's default Linux spec
// (oci.populateDefaultUnixSpec: capabilities, masked and readonly paths, mounts, rlimits, device deny-all,
// cgroups path /<namespace>/<id>), then the image's config (env, entrypoint and cmd, working dir, user), then
// the command line's options.
import { errInvalidArgument } from '../api/errdefs.ts';

export type Spec = Record<string, any>;

import { DEFAULT_CAPS } from '../api/oci-defaults/capabilities.ts';

const ALL_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK',
  'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

export function defaultSpec(namespace: string, id: string): Spec {
  return {
    ociVersion: '1.0.2-dev',
    root: { path: 'rootfs' },
    process: {
      cwd: '/', noNewPrivileges: true, user: { uid: 0, gid: 0 },
      args: [],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      capabilities: { bounding: [...DEFAULT_CAPS], permitted: [...DEFAULT_CAPS], effective: [...DEFAULT_CAPS] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
    },
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    ],
    linux: {
      maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
      cgroupsPath: `/${namespace}/${id}`,
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: ['pid', 'ipc', 'uts', 'mount', 'network'].map((type) => ({ type })),
    },
  };
}

export interface ImageConfig {
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  User?: string;
}

/** Applies an image's config; `args` (from the command line) replace Cmd, as with ctr. */
export function withImageConfig(spec: Spec, config: ImageConfig, args: string[]): void {
  const env = new Map<string, string>();
  for (const e of [...spec.process.env, ...(config.Env ?? [])]) env.set(e.split('=')[0]!, e);
  spec.process.env = [...env.values()];
  spec.process.args = [...(config.Entrypoint ?? []), ...(args.length ? args : config.Cmd ?? [])];
  if (spec.process.args.length === 0) throw errInvalidArgument('no command: the image has no Entrypoint or Cmd; give one after the container id');
  if (config.WorkingDir) spec.process.cwd = config.WorkingDir;
  if (config.User) withUser(spec, config.User);
}

export function withUser(spec: Spec, user: string): void {
  const [u, g] = user.split(':');
  if (!/^\d+$/.test(u ?? '') || (g !== undefined && !/^\d+$/.test(g))) {
    throw errInvalidArgument(`user ${JSON.stringify(user)}: berth resolves numeric uid[:gid] only (names need the image's /etc/passwd)`);
  }
  spec.process.user = { uid: Number(u), gid: Number(g ?? 0) };
}

export function withPrivileged(spec: Spec): void {
  for (const set of ['bounding', 'permitted', 'effective'] as const) spec.process.capabilities[set] = [...ALL_CAPS];
  spec.linux.maskedPaths = [];
  spec.linux.readonlyPaths = [];
  spec.linux.resources.devices = [{ allow: true, access: 'rwm' }];
  spec.mounts = spec.mounts.map((m: any) => (m.type === 'sysfs' ? { ...m, options: m.options.filter((o: string) => o !== 'ro') } : m));
}

export function withCaps(spec: Spec, add: string[], drop: string[]): void {
  const norm = (c: string) => (c.toUpperCase().startsWith('CAP_') ? c.toUpperCase() : `CAP_${c.toUpperCase()}`);
  for (const set of ['bounding', 'permitted', 'effective'] as const) {
    let caps: string[] = spec.process.capabilities[set];
    if (drop.some((d) => norm(d) === 'CAP_ALL')) caps = [];
    caps = caps.filter((c) => !drop.map(norm).includes(c));
    for (const a of add.map(norm)) {
      if (a === 'CAP_ALL') caps = [...ALL_CAPS];
      else if (!ALL_CAPS.includes(a)) throw errInvalidArgument(`unknown capability ${JSON.stringify(a)}`);
      else if (!caps.includes(a)) caps.push(a);
    }
    spec.process.capabilities[set] = caps;
  }
}

/** --mount type=bind,src=/a,dst=/b,options=rbind:ro (ctr's syntax). */
export function parseMount(s: string): { destination: string; type: string; source: string; options: string[] } {
  const fields = Object.fromEntries(s.split(',').map((kv) => { const i = kv.indexOf('='); return [kv.slice(0, i), kv.slice(i + 1)]; }));
  const destination = fields.dst ?? fields.destination ?? fields.target;
  if (!destination) throw errInvalidArgument(`--mount ${JSON.stringify(s)}: dst= is required`);
  return { destination, type: fields.type ?? 'bind', source: fields.src ?? fields.source ?? '', options: fields.options ? fields.options.split(':') : [] };
}

/** As containerd's oci.WithTTY: the process gets a terminal, and TERM for it. */
export function withTty(spec: Spec, size?: { width: number; height: number }): void {
  spec.process.terminal = true;
  if (size) spec.process.consoleSize = size;
  spec.process.env = [...spec.process.env.filter((e: string) => !e.startsWith('TERM=')), 'TERM=xterm'];
}
