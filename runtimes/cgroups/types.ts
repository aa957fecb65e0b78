// The cgroup part's public shapes: the OCI runtime-spec `linux.resources` object as config.json carries it,
// the statistics a manager reports, and the one interface every host layout (v1, v2, hybrid) implements.

export type CgroupMode = 'v1' | 'v2' | 'hybrid';

export interface LinuxMemory {
  limit?: number;
  reservation?: number;
  /** Memory + swap together (runc semantics), -1 for unlimited. */
  swap?: number;
  kernel?: number;
  kernelTCP?: number;
  swappiness?: number;
  disableOOMKiller?: boolean;
  useHierarchy?: boolean;
  checkBeforeUpdate?: boolean;
}

export interface LinuxCPU {
  shares?: number;
  quota?: number;
  burst?: number;
  period?: number;
  realtimeRuntime?: number;
  realtimePeriod?: number;
  cpus?: string;
  mems?: string;
  idle?: number;
}

export interface LinuxPids {
  limit: number;
}

export interface LinuxWeightDevice {
  major: number;
  minor: number;
  weight?: number;
  leafWeight?: number;
}

export interface LinuxThrottleDevice {
  major: number;
  minor: number;
  rate: number;
}

export interface LinuxBlockIO {
  weight?: number;
  leafWeight?: number;
  weightDevice?: LinuxWeightDevice[];
  throttleReadBpsDevice?: LinuxThrottleDevice[];
  throttleWriteBpsDevice?: LinuxThrottleDevice[];
  throttleReadIOPSDevice?: LinuxThrottleDevice[];
  throttleWriteIOPSDevice?: LinuxThrottleDevice[];
}

export interface LinuxHugepageLimit {
  /** "2MB", "1GB", ... as in the hugetlb file names. */
  pageSize: string;
  limit: number;
}

export interface LinuxInterfacePriority {
  name: string;
  priority: number;
}

export interface LinuxNetwork {
  classID?: number;
  priorities?: LinuxInterfacePriority[];
}

export interface LinuxRdma {
  hcaHandles?: number;
  hcaObjects?: number;
}

export interface LinuxDeviceCgroup {
  allow: boolean;
  /** 'a' (all), 'c' or 'b'; absent means all. */
  type?: string;
  /** Absent or -1 means any. */
  major?: number;
  minor?: number;
  /** Some of "rwm"; absent means "rwm". */
  access?: string;
}

/** OCI runtime-spec `linux.resources`. */
export interface LinuxResources {
  devices?: LinuxDeviceCgroup[];
  memory?: LinuxMemory;
  cpu?: LinuxCPU;
  pids?: LinuxPids;
  blockIO?: LinuxBlockIO;
  hugepageLimits?: LinuxHugepageLimit[];
  network?: LinuxNetwork;
  rdma?: Record<string, LinuxRdma>;
  /** cgroup v2 file name → value, written as is. */
  unified?: Record<string, string>;
}

export interface MemoryStats {
  usage: number;
  maxUsage: number;
  /** Bytes; Number.MAX_SAFE_INTEGER style huge values mean "no limit" (see `unlimited`). */
  limit: number;
  cache: number;
  rss: number;
  /** Swap alone (v2 swap.current; v1 memsw usage minus memory usage). */
  swap: number;
  swapLimit: number;
  failcnt: number;
  /** Raw memory.stat keys. */
  raw: Record<string, number>;
  /** v1's other counters, each with usage, max usage, failcnt and limit: memory+swap (memsw), kernel (kmem),
   * kernel TCP (kmem.tcp); absent where the kernel has no such files. */
  memsw?: MemoryCounter;
  kernel?: MemoryCounter;
  kernelTCP?: MemoryCounter;
}

export interface MemoryCounter { usage: number; maxUsage: number; failcnt: number; limit: number }

export interface CpuStats {
  usageTotal: number;
  usageUser: number;
  usageSystem: number;
  /** Nanoseconds per CPU (v1 only; empty on v2, which has no per-cpu accounting). */
  perCpu: number[];
  /** v1 per-CPU split (cpuacct.usage_percpu_user/_sys), where the kernel has it. */
  perCpuUser?: number[];
  perCpuKernel?: number[];
  throttling: { periods: number; throttledPeriods: number; throttledTime: number };
}

export interface PidsStats {
  current: number;
  /** 0 means no limit. */
  limit: number;
}

export interface BlkioEntry {
  major: number;
  minor: number;
  op: string;
  value: number;
}

export interface CgroupStats {
  memory?: MemoryStats;
  cpu?: CpuStats;
  pids?: PidsStats;
  /** v1 blkio.throttle.io_service_bytes(_recursive) / v2 io.stat rbytes+wbytes as Read/Write entries. */
  blkio?: { ioServiceBytes: BlkioEntry[]; ioServiced: BlkioEntry[] };
  hugetlb?: Record<string, { usage: number; maxUsage: number; failcnt: number }>;
  /** The cpuset in use (v1 cpuset controller, or v2 cpuset.*.effective). */
  cpuset?: { cpus: number[]; mems: number[]; flags: Record<string, number> };
}

/** A container's cgroup across every hierarchy in use. Every method is synchronous fs work except freeze/thaw/destroy. */
export interface CgroupManager {
  readonly cgroupsPath: string;
  /** Directories in use, keyed by controller name ('' for the unified hierarchy). */
  readonly paths: Readonly<Record<string, string>>;
  create(resources?: LinuxResources): void;
  /** Moves pid into every hierarchy's directory but those in `bornIn`, where it already is (it was forked
   * there, or cloned into it). */
  addProcess(pid: number, bornIn?: ReadonlySet<string>): void;
  update(resources: LinuxResources): void;
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  isFrozen(): boolean;
  pids(): number[];
  stats(): CgroupStats;
  oomKillCount(): number;
  killAll(signal: number | string): void;
  destroy(): Promise<void>;
  exists(): boolean;
}
