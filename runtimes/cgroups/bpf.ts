// The bpf(2) calls cgroup v2 device control needs, made through ffi-rs (Node has no bpf binding). ffi-rs is
// loaded on first use only, so hosts and containers that never touch v2 devices pay nothing for it.
import { errInternal, errInvalidArgument } from '../../api/errdefs.ts';
import { libc as lib } from '../../api/libc.ts';

const SYS_BPF = 321; // x86_64
const ATTR_SIZE = 144; // sizeof(union bpf_attr) in the kernel headers this was written against
const BPF_PROG_LOAD = 5;
const BPF_PROG_ATTACH = 8;
const BPF_PROG_DETACH = 9;
const BPF_PROG_GET_FD_BY_ID = 13;
const BPF_PROG_QUERY = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE = 15;
export const BPF_CGROUP_DEVICE = 6;
const BPF_F_ALLOW_MULTI = 2;

/** A block of C heap memory with its address (for pointers inside bpf_attr) and a zero-copy view. */
class CMemory {
  readonly ext: unknown;
  readonly addr: number;
  readonly view: Buffer;
  constructor(size: number) {
    const { load, DataType, createExternalBuffer } = lib();
    this.ext = load({ library: 'libc', funcName: 'calloc', retType: DataType.External, paramsType: [DataType.I64, DataType.I64], paramsValue: [1, size] });
    // labs() returns its (positive, user-space) argument unchanged: the cheapest way to read a pointer's value.
    this.addr = load({ library: 'libc', funcName: 'labs', retType: DataType.I64, paramsType: [DataType.External], paramsValue: [this.ext] }) as number;
    if (!this.addr) throw errInternal(`bpf: cannot allocate ${size} bytes`);
    this.view = createExternalBuffer(this.ext as never, size);
  }
  free(): void {
    const { load, DataType } = lib();
    load({ library: 'libc', funcName: 'free', retType: DataType.Void, paramsType: [DataType.External], paramsValue: [this.ext] });
  }
}

function withMemory<T>(sizes: number[], fn: (...mem: CMemory[]) => T): T {
  const mems = sizes.map((s) => new CMemory(s));
  try { return fn(...mems); } finally { for (const m of mems) m.free(); }
}

function bpf(cmd: number, attr: CMemory, what: string): number {
  const { load, DataType } = lib();
  const r = load({
    library: 'libc', funcName: 'syscall', retType: DataType.I64, errno: true,
    paramsType: [DataType.I64, DataType.I64, DataType.I64, DataType.I64], paramsValue: [SYS_BPF, cmd, attr.addr, ATTR_SIZE],
  }) as unknown as { value: number; errnoCode: number; errnoMessage: string };
  if (r.value < 0) throw Object.assign(errInternal(`bpf ${what}: ${r.errnoMessage}`), { errno: r.errnoCode });
  return r.value;
}

/** Loads a BPF_PROG_TYPE_CGROUP_DEVICE program; returns its fd. The verifier's log goes into the error. */
export function loadDeviceProgram(insns: Buffer): number {
  return withMemory([ATTR_SIZE, insns.length, 8, 65536], (attr, code, license, log) => {
    insns.copy(code.view);
    license.view.write('Apache\0');
    const a = attr.view;
    a.writeUInt32LE(BPF_PROG_TYPE_CGROUP_DEVICE, 0);
    a.writeUInt32LE(insns.length / 8, 4);
    a.writeBigUInt64LE(BigInt(code.addr), 8);
    a.writeBigUInt64LE(BigInt(license.addr), 16);
    a.writeUInt32LE(1, 24); // log_level
    a.writeUInt32LE(65536, 28);
    a.writeBigUInt64LE(BigInt(log.addr), 32);
    a.writeUInt32LE(BPF_CGROUP_DEVICE, 68); // expected_attach_type
    try {
      return bpf(BPF_PROG_LOAD, attr, 'load device program');
    } catch (err) {
      const text = log.view.toString('utf8', 0, log.view.indexOf(0));
      throw errInvalidArgument(`${(err as Error).message}${text ? `: verifier: ${text.trim().split('\n').slice(-3).join(' | ')}` : ''}`, err);
    }
  });
}

export function attachProgram(cgroupFd: number, progFd: number): void {
  withMemory([ATTR_SIZE], (attr) => {
    attr.view.writeUInt32LE(cgroupFd, 0);
    attr.view.writeUInt32LE(progFd, 4);
    attr.view.writeUInt32LE(BPF_CGROUP_DEVICE, 8);
    attr.view.writeUInt32LE(BPF_F_ALLOW_MULTI, 12);
    bpf(BPF_PROG_ATTACH, attr, 'attach device program');
  });
}

export function detachProgram(cgroupFd: number, progFd: number): void {
  withMemory([ATTR_SIZE], (attr) => {
    attr.view.writeUInt32LE(cgroupFd, 0);
    attr.view.writeUInt32LE(progFd, 4);
    attr.view.writeUInt32LE(BPF_CGROUP_DEVICE, 8);
    bpf(BPF_PROG_DETACH, attr, 'detach device program');
  });
}

/** Ids of the device programs attached directly to this cgroup. */
export function attachedPrograms(cgroupFd: number): number[] {
  const max = 64;
  return withMemory([ATTR_SIZE, max * 4], (attr, ids) => {
    attr.view.writeUInt32LE(cgroupFd, 0);
    attr.view.writeUInt32LE(BPF_CGROUP_DEVICE, 4);
    attr.view.writeBigUInt64LE(BigInt(ids.addr), 16);
    attr.view.writeUInt32LE(max, 24);
    bpf(BPF_PROG_QUERY, attr, 'query device programs');
    const count = attr.view.readUInt32LE(24);
    return Array.from({ length: Math.min(count, max) }, (_, i) => ids.view.readUInt32LE(i * 4));
  });
}

export function programFdById(id: number): number {
  return withMemory([ATTR_SIZE], (attr) => {
    attr.view.writeUInt32LE(id, 0);
    return bpf(BPF_PROG_GET_FD_BY_ID, attr, `open program ${id}`);
  });
}
