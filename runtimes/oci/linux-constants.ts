// Kernel constants the planner turns spec names into (linux/capability.h, sys/mount.h, sched.h,
// sys/resource.h). Facts, so the C side receives numbers only.

/** Capability names in bit order (CAP_CHOWN = 0 ... CAP_CHECKPOINT_RESTORE = 40). */
export const CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
] as const;

/** Namespace type → CLONE_NEW* flag. */
export const NAMESPACE_FLAGS: Record<string, number> = {
  mount: 0x00020000, uts: 0x04000000, ipc: 0x08000000, user: 0x10000000, pid: 0x20000000, network: 0x40000000,
  cgroup: 0x02000000, time: 0x00000080,
};

/** Namespace type → its /proc/<pid>/ns/ file name. */
export const NAMESPACE_FILES: Record<string, string> = {
  mount: 'mnt', uts: 'uts', ipc: 'ipc', user: 'user', pid: 'pid', network: 'net', cgroup: 'cgroup', time: 'time',
};

export const MS = {
  RDONLY: 1, NOSUID: 2, NODEV: 4, NOEXEC: 8, SYNCHRONOUS: 16, REMOUNT: 32, MANDLOCK: 64, DIRSYNC: 128,
  NOSYMFOLLOW: 256, NOATIME: 1024, NODIRATIME: 2048, BIND: 4096, MOVE: 8192, REC: 16384, SILENT: 32768,
  POSIXACL: 1 << 16, UNBINDABLE: 1 << 17, PRIVATE: 1 << 18, SLAVE: 1 << 19, SHARED: 1 << 20, RELATIME: 1 << 21,
  I_VERSION: 1 << 23, STRICTATIME: 1 << 24, LAZYTIME: 1 << 25,
} as const;

/** Mount option → [flags to set, flags to clear]. */
export const MOUNT_FLAG_OPTIONS: Record<string, [number, number]> = {
  ro: [MS.RDONLY, 0], rw: [0, MS.RDONLY], nosuid: [MS.NOSUID, 0], suid: [0, MS.NOSUID], nodev: [MS.NODEV, 0],
  dev: [0, MS.NODEV], noexec: [MS.NOEXEC, 0], exec: [0, MS.NOEXEC], sync: [MS.SYNCHRONOUS, 0],
  async: [0, MS.SYNCHRONOUS], dirsync: [MS.DIRSYNC, 0], remount: [MS.REMOUNT, 0], mand: [MS.MANDLOCK, 0],
  nomand: [0, MS.MANDLOCK], noatime: [MS.NOATIME, 0], atime: [0, MS.NOATIME], nodiratime: [MS.NODIRATIME, 0],
  diratime: [0, MS.NODIRATIME], bind: [MS.BIND, 0], rbind: [MS.BIND | MS.REC, 0], relatime: [MS.RELATIME, 0],
  norelatime: [0, MS.RELATIME], strictatime: [MS.STRICTATIME, 0], nostrictatime: [0, MS.STRICTATIME],
  nosymfollow: [MS.NOSYMFOLLOW, 0], symfollow: [0, MS.NOSYMFOLLOW], lazytime: [MS.LAZYTIME, 0], nolazytime: [0, MS.LAZYTIME],
  acl: [MS.POSIXACL, 0], noacl: [0, MS.POSIXACL], iversion: [MS.I_VERSION, 0], noiversion: [0, MS.I_VERSION],
  silent: [MS.SILENT, 0], loud: [0, MS.SILENT], defaults: [0, 0],
};

/** mount_setattr(2) attributes (linux/mount.h). */
export const MOUNT_ATTR = {
  RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, ATIME: 0x70, RELATIME: 0, NOATIME: 0x10, STRICTATIME: 0x20,
  NODIRATIME: 0x80, NOSYMFOLLOW: 0x200000,
} as const;

/** Recursive mount options (runc 1.1's list) → [attributes to set, attributes to clear], applied to the mount and
 * everything below it with mount_setattr(AT_RECURSIVE). An access-time mode is a field: setting one clears the
 * field first (mount_setattr(2)). */
export const RECURSIVE_MOUNT_OPTIONS: Record<string, [number, number]> = {
  rro: [MOUNT_ATTR.RDONLY, 0], rrw: [0, MOUNT_ATTR.RDONLY], rnosuid: [MOUNT_ATTR.NOSUID, 0], rsuid: [0, MOUNT_ATTR.NOSUID],
  rnodev: [MOUNT_ATTR.NODEV, 0], rdev: [0, MOUNT_ATTR.NODEV], rnoexec: [MOUNT_ATTR.NOEXEC, 0], rexec: [0, MOUNT_ATTR.NOEXEC],
  rnodiratime: [MOUNT_ATTR.NODIRATIME, 0], rdiratime: [0, MOUNT_ATTR.NODIRATIME],
  rrelatime: [MOUNT_ATTR.RELATIME, MOUNT_ATTR.ATIME], rnorelatime: [MOUNT_ATTR.STRICTATIME, MOUNT_ATTR.ATIME],
  rnoatime: [MOUNT_ATTR.NOATIME, MOUNT_ATTR.ATIME], ratime: [0, MOUNT_ATTR.ATIME],
  rstrictatime: [MOUNT_ATTR.STRICTATIME, MOUNT_ATTR.ATIME], rnostrictatime: [0, MOUNT_ATTR.ATIME],
  rnosymfollow: [MOUNT_ATTR.NOSYMFOLLOW, 0], rsymfollow: [0, MOUNT_ATTR.NOSYMFOLLOW],
};

/** Options that change how berth makes the mount rather than the mount itself: tmpcopyup (a tmpfs starts with
 * a copy of what the directory it covers holds). */
export const MOUNT_EXTENSION_OPTIONS = ['tmpcopyup'] as const;

export const PROPAGATION_OPTIONS: Record<string, number> = {
  private: MS.PRIVATE, rprivate: MS.PRIVATE | MS.REC, shared: MS.SHARED, rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE, rslave: MS.SLAVE | MS.REC, unbindable: MS.UNBINDABLE, runbindable: MS.UNBINDABLE | MS.REC,
};

export const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0, RLIMIT_FSIZE: 1, RLIMIT_DATA: 2, RLIMIT_STACK: 3, RLIMIT_CORE: 4, RLIMIT_RSS: 5, RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7, RLIMIT_MEMLOCK: 8, RLIMIT_AS: 9, RLIMIT_LOCKS: 10, RLIMIT_SIGPENDING: 11, RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13, RLIMIT_RTPRIO: 14, RLIMIT_RTTIME: 15,
};
