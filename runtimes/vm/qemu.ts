// Launches one micro-VM: QEMU's microvm machine booting berth's guest kernel straight into berth's initramfs
// (the guest agent is PID 1), a virtio-serial port named berth.agent on a unix socket for the agent's ttrpc, and
// optionally a host directory shared over virtio-fs (QEMU's virtiofsd; guest memory is a shared memfd for it), and
// a virtio-net device on a tap QEMU makes in its own network namespace (network.ts connects it to what the runtime's
// hooks put there).
// QEMU and virtiofsd run under berth-pdeath: if the process that launched them dies, so do they. stop() always
// finishes within a bounded time.
// For looking into a guest's boot: BERTH_VM_LOUD=1 keeps the kernel's messages (console.log in the state
// directory), BERTH_VM_APPEND adds words to the kernel command line (e.g. initcall_debug ignore_loglevel).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError, ErrorCode, errInvalidArgument, errNotFound } from '../../api/errdefs.ts';
import { nativeBinary } from '../../api/native-binary.ts';
import { AgentClient, type PingResponse } from './agent-client.ts';
import { vmImage, type VmImage } from './initramfs.ts';
import { TAP_NAME } from './network.ts';

export const QEMU = '/usr/bin/qemu-system-x86_64';
export const VIRTIOFSD = '/usr/lib/qemu/virtiofsd';
export type Accel = 'kvm' | 'tcg';

export interface VmOptions {
  /** Directory for the VM's sockets and logs (kept short: unix socket paths are limited to 107 bytes). */
  stateDir: string;
  memoryMiB?: number;
  cpus?: number;
  /** A host directory the guest mounts over virtio-fs (CreateSandbox's share_tag is `tag`). */
  share?: { hostDir: string; tag?: string };
  /** 'auto' (the default): KVM if this host's cached boot probe says it works, TCG otherwise. */
  accel?: Accel | 'auto';
  /** TCG's translated-code cache (MiB): what an idle emulated VM keeps resident beside its guest memory (QEMU's
   * default, 1 GiB, fills to ~36 MiB by the agent's first answer; 16 saves ~20 MiB of PSS per VM at no
   * measurable boot cost here; a busy guest may want more; at 8, 200 fork+execs of busybox took 3x as long: the
   * translations of the kernel's and busybox's hot paths no longer fit). */
  tcgCacheMiB?: number;
  /** A virtio-net device on a tap (TAP_NAME) in QEMU's network namespace: true by default where /dev/net/tun
   * exists. */
  network?: boolean;
  /** How long the guest may take to answer its first Ping. */
  bootTimeoutMs?: number;
  image?: VmImage;
}

export interface Vm {
  readonly accel: Accel;
  /** QEMU's pid. */
  readonly pid: number;
  /** virtiofsd's pid, with a share. */
  readonly virtiofsdPid?: number;
  readonly agentSocket: string;
  readonly consoleLog: string;
  readonly agent: AgentClient;
  /** The agent's first Ping answer. */
  readonly ready: PingResponse;
  /** The guest has a network device on the tap TAP_NAME in QEMU's network namespace. */
  readonly tap: boolean;
  /** Milliseconds from spawning QEMU to the agent's first answer. */
  readonly bootMs: number;
  /** Resolves when QEMU has exited (a guest power-off, a panic, a kill). */
  readonly exited: Promise<void>;
  /** Kills QEMU and virtiofsd (TERM, then KILL) and removes the sockets: bounded, idempotent. */
  stop(): Promise<void>;
}

export const DEFAULT_TAG = 'berth';
const STOP_GRACE_MS = 1000;

function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** Starts `argv` under berth-pdeath, its output to `logPath`. */
function spawnTied(argv: string[], logPath: string): { child: ChildProcess; exited: Promise<void> } {
  const log = openSync(logPath, 'a');
  const child = spawn(nativeBinary('berth-pdeath'), [String(process.pid), ...argv], { stdio: ['ignore', log, log], env: childEnv() });
  closeSync(log);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve()).once('error', () => resolve());
  });
  return { child, exited };
}

async function stopChild(p: { child: ChildProcess; exited: Promise<void> }, graceMs: number): Promise<void> {
  const alive = () => p.child.exitCode === null && p.child.signalCode === null && p.child.pid !== undefined;
  if (!alive()) return;
  p.child.kill('SIGTERM');
  if (await Promise.race([p.exited.then(() => true), sleep(graceMs).then(() => false)])) return;
  p.child.kill('SIGKILL');
  await Promise.race([p.exited, sleep(graceMs)]);
}

async function waitForPath(path: string, timeoutMs: number, exited: Promise<void>, what: string): Promise<void> {
  let gone = false;
  void exited.then(() => { gone = true; });
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (gone) throw new BerthError(ErrorCode.Unavailable, `${what} exited before creating ${path}`);
    if (Date.now() > deadline) throw new BerthError(ErrorCode.DeadlineExceeded, `${what} did not create ${path} within ${timeoutMs} ms`);
    await sleep(5);
  }
}

function qemuArgs(o: Required<Pick<VmOptions, 'memoryMiB' | 'cpus' | 'tcgCacheMiB' | 'network'>> & { accel: Accel; image: VmImage; agentSocket: string; consoleLog: string; fsSocket?: string; tag: string }): string[] {
  // Rings at the size QEMU's devices declare (its MMIO transport offers 1024 entries, and virtio-console fills each
  // with a page: native/guest-kernel/patches; virtio-net's rings too: bench:vm-net moved 145-155 MiB/s with 128
  // entries, 148-177 with 1024, within its noise, for up to 4 MiB more of receive buffers). Per-CPU memory in pages, not 2 MiB units: each new per-CPU chunk
  // carries a zeroed memcg array twice its unit's size, 4 MiB of every guest's memory with 2 MiB units.
  const append = ['console=ttyS0', ...(process.env.BERTH_VM_LOUD ? [] : ['quiet']), 'panic=-1', 'reboot=t', 'rdinit=/init',
    'virtio_mmio.max_queue_size=128', 'percpu_alloc=page',
    ...(process.env.BERTH_VM_APPEND ? [process.env.BERTH_VM_APPEND] : [])];
  // Emulated, the guest's TSC calibration against the PIT can time out and leave the kernel without a
  // clocksource: give it the TSC's rate instead. An emulated CPU does not speculate: its guest needs no
  // mitigations (they cost boot time).
  if (o.accel === 'tcg') append.push('tsc_early_khz=2000000', 'mitigations=off');
  const args = [
    '-M', 'microvm,memory-backend=mem', '-accel', o.accel === 'tcg' ? `tcg,tb-size=${o.tcgCacheMiB}` : o.accel, '-cpu', o.accel === 'kvm' ? 'host' : 'max',
    '-m', `${o.memoryMiB}M`, '-smp', String(o.cpus),
    '-object', `memory-backend-memfd,id=mem,size=${o.memoryMiB}M,share=on`,
    '-nodefaults', '-no-user-config', '-nographic', '-no-reboot', '-display', 'none',
    // virtio 1.0 over MMIO: virtiofsd (libvhost-user) refuses legacy devices, microvm's default.
    '-global', 'virtio-mmio.force-legacy=false',
    '-serial', `file:${o.consoleLog}`,
    '-kernel', o.image.kernel, '-initrd', o.image.initramfs, '-append', append.join(' '),
    '-device', 'virtio-serial-device,max_ports=2',
    // The guest reports the pages it frees (the agent sets the block size) and QEMU drops them from the memfd: a
    // VM keeps resident what its guest uses now, not the most it ever touched.
    '-device', 'virtio-balloon-device,free-page-reporting=on',
    '-chardev', `socket,id=agent,path=${o.agentSocket},server=on,wait=off`,
    '-device', 'virtserialport,chardev=agent,name=berth.agent',
  ];
  if (o.fsSocket) args.push('-chardev', `socket,id=fs,path=${o.fsSocket}`, '-device', `vhost-user-fs-device,chardev=fs,tag=${o.tag}`);
  // The tap is made where QEMU runs (its own network namespace) and stays down until network.ts connects it.
  if (o.network) args.push('-netdev', `tap,id=net,ifname=${TAP_NAME},script=no,downscript=no,vhost=off`, '-device', 'virtio-net-device,netdev=net');
  return args;
}

/** Boots a VM and waits for its agent. On any failure everything started is stopped again. */
export async function launchVm(opts: VmOptions): Promise<Vm> {
  if (!existsSync(QEMU)) throw errNotFound(`${QEMU} is not installed (scripts/setup.sh installs qemu-system-x86)`);
  const image = opts.image ?? vmImage();
  const memoryMiB = opts.memoryMiB ?? 256;
  const cpus = opts.cpus ?? 1;
  if (!Number.isInteger(memoryMiB) || memoryMiB < 64) throw errInvalidArgument(`vm: memory ${memoryMiB} MiB: want an integer of at least 64`);
  if (!Number.isInteger(cpus) || cpus < 1) throw errInvalidArgument(`vm: cpus ${cpus}: want a positive integer`);
  if (opts.tcgCacheMiB !== undefined && (!Number.isInteger(opts.tcgCacheMiB) || opts.tcgCacheMiB < 1)) throw errInvalidArgument(`vm: tcgCacheMiB ${opts.tcgCacheMiB}: want a positive integer`);
  mkdirSync(opts.stateDir, { recursive: true });
  const agentSocket = join(opts.stateDir, 'agent.sock');
  const fsSocket = opts.share ? join(opts.stateDir, 'fs.sock') : undefined;
  if (Buffer.byteLength(agentSocket) > 107) throw errInvalidArgument(`vm: state directory ${opts.stateDir} is too long for a unix socket path`);
  const consoleLog = join(opts.stateDir, 'console.log');
  const vmmLog = join(opts.stateDir, 'vmm.log');
  for (const f of [agentSocket, fsSocket, consoleLog, vmmLog]) if (f) rmSync(f, { force: true });
  const accel = opts.accel && opts.accel !== 'auto' ? opts.accel : await probeAccel(image);
  const network = (opts.network ?? true) && existsSync('/dev/net/tun');

  const started = Date.now();
  let fsd: ReturnType<typeof spawnTied> | undefined;
  let qemu: ReturnType<typeof spawnTied> | undefined;
  let agent: AgentClient | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () => stopping ??= (async () => {
    agent?.close();
    if (qemu) await stopChild(qemu, STOP_GRACE_MS);
    // virtiofsd leaves once QEMU hangs up; a short grace, then it is stopped too.
    if (fsd) await Promise.race([fsd.exited, sleep(200)]).then(() => stopChild(fsd!, STOP_GRACE_MS));
    for (const f of [agentSocket, fsSocket]) if (f) rmSync(f, { force: true });
  })();
  try {
    if (opts.share) {
      if (!existsSync(VIRTIOFSD)) throw errNotFound(`${VIRTIOFSD} is not installed (qemu-system-common ships it)`);
      fsd = spawnTied([VIRTIOFSD, `--socket-path=${fsSocket}`, '-o', `source=${opts.share.hostDir}`, '-o', 'cache=auto', '-o', 'sandbox=chroot',
        '-o', 'xattr', '-o', 'announce_submounts', '--thread-pool-size=1'], vmmLog);
      await waitForPath(fsSocket!, 5000, fsd.exited, 'virtiofsd');
    }
    // QEMU gets a network namespace of its own: it reaches no host network, and the network an OCI hook configures
    // through its pid (Docker's libnetwork-setkey) is the sandbox's, never the host's. unshare execs QEMU: same pid.
    qemu = spawnTied(['/usr/bin/unshare', '--net', '--', QEMU, ...qemuArgs({ memoryMiB, cpus, tcgCacheMiB: opts.tcgCacheMiB ?? 16, network, accel, image, agentSocket, consoleLog, fsSocket, tag: opts.share?.tag ?? DEFAULT_TAG })], vmmLog);
    await waitForPath(agentSocket, 5000, qemu.exited, 'QEMU');
    agent = await connectAgent(agentSocket, 5000);
    let qemuGone = false;
    void qemu.exited.then(() => { qemuGone = true; agent?.close(); });
    const ready = await agent.waitReady(opts.bootTimeoutMs ?? (accel === 'kvm' ? 10_000 : 30_000), { intervalMs: 50 }).catch((err: Error) => {
      throw new BerthError(ErrorCode.Unavailable, `vm: ${qemuGone ? 'QEMU exited' : 'the guest agent did not answer'} (${err.message}); console: ${tail(consoleLog)} vmm: ${tail(vmmLog)}`);
    });
    const bootMs = Date.now() - started;
    return { accel, pid: qemu.child.pid!, virtiofsdPid: fsd?.child.pid, agentSocket, consoleLog, agent, ready, tap: network, bootMs, exited: qemu.exited, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** QEMU binds the socket a moment before it listens: connection refused until then. */
async function connectAgent(path: string, timeoutMs: number): Promise<AgentClient> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await AgentClient.connect(path, timeoutMs);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(5);
    }
  }
}

function tail(path: string): string {
  try { return JSON.stringify(readFileSync(path, 'utf8').slice(-600)); } catch { return '(none)'; }
}

/** The host's accelerator for these guests, decided once per host boot by booting one guest with KVM under a
 * deadline (stock kernels hang under nested PVM), cached in /run/berth. TCG where /dev/kvm is absent. */
export const ACCEL_CACHE = '/run/berth/vm-accel.json';
const PROBE_TIMEOUT_MS = 8000;

let probing: Promise<Accel> | undefined;

/** One probe per process at a time: VMs launched together wait for the same answer. */
export function probeAccel(image: VmImage = vmImage()): Promise<Accel> {
  if (!existsSync('/dev/kvm')) return Promise.resolve('tcg');
  try {
    const cached = JSON.parse(readFileSync(ACCEL_CACHE, 'utf8')) as { accel: Accel; kernel: string };
    if (cached.kernel === image.kernel) return Promise.resolve(cached.accel);
  } catch { /* not probed yet */ }
  probing ??= (async () => {
    const stateDir = join('/run/berth', `vm-probe-${process.pid}`);
    let accel: Accel = 'tcg';
    try {
      const vm = await launchVm({ stateDir, accel: 'kvm', image, memoryMiB: 128, network: false, bootTimeoutMs: PROBE_TIMEOUT_MS });
      await vm.stop();
      accel = 'kvm';
    } catch { /* hung or refused: TCG */ }
    rmSync(stateDir, { recursive: true, force: true });
    mkdirSync('/run/berth', { recursive: true });
    writeFileSync(`${ACCEL_CACHE}.${process.pid}`, JSON.stringify({ accel, kernel: image.kernel }));
    renameSync(`${ACCEL_CACHE}.${process.pid}`, ACCEL_CACHE);
    return accel;
  })().finally(() => { probing = undefined; });
  return probing;
}
