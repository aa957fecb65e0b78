// cgroup v2 device control: the OCI device rules compiled to a BPF_PROG_TYPE_CGROUP_DEVICE program and
// attached to the container's cgroup, replacing any program attached there before.
import { closeSync, openSync } from 'node:fs';
import { ioError } from './files.ts';
import { attachedPrograms, attachProgram, detachProgram, loadDeviceProgram, programFdById } from './bpf.ts';
import { emulateDeviceRules } from './device-rules.ts';
import type { LinuxDeviceCgroup } from './types.ts';

// struct bpf_cgroup_dev_ctx { u32 access_type /* access << 16 | type */; u32 major; u32 minor; }
const DEV_BLOCK = 1;
const DEV_CHAR = 2;
const ACC = { m: 1, r: 2, w: 4 } as const;

function insn(code: number, dst: number, src: number, off: number, imm: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(code, 0);
  b.writeUInt8((src << 4) | dst, 1);
  b.writeInt16LE(off, 2);
  b.writeInt32LE(imm, 4);
  return b;
}
const LDX_W = 0x61; // r_dst = *(u32 *)(r_src + off)
const AND32_K = 0x54;
const RSH32_K = 0x74;
const MOV32_X = 0xbc;
const MOV32_K = 0xb4;
const JNE_K = 0x55;
const JEQ_K = 0x15;
const EXIT = 0x95;

function accessMask(access: string): number {
  let mask = 0;
  for (const ch of access) mask |= ACC[ch as keyof typeof ACC] ?? 0;
  return mask;
}

/**
 * Compiles the rules as the v1 controller would hold them (device-rules.ts): each exception to the default
 * verdict is a block of checks, and the default closes the program. As the kernel's v1 check: an allow
 * exception must grant every requested access; a deny exception matches when it takes any of them away.
 */
export function compileDeviceRules(rules: LinuxDeviceCgroup[]): Buffer {
  const { defaultAllow, exceptions } = emulateDeviceRules(rules);
  const out: Buffer[] = [
    insn(LDX_W, 2, 1, 0, 0), insn(AND32_K, 2, 0, 0, 0xffff), // r2 = device type
    insn(LDX_W, 3, 1, 0, 0), insn(RSH32_K, 3, 0, 0, 16), // r3 = requested access
    insn(LDX_W, 4, 1, 4, 0), // r4 = major
    insn(LDX_W, 5, 1, 8, 0), // r5 = minor
  ];
  for (const e of exceptions) {
    // Each check is [code, dst, imm]; every failed check jumps past this exception's two-instruction verdict.
    const checks: Array<[number, number, number]> = [[JNE_K, 2, e.type === 'b' ? DEV_BLOCK : DEV_CHAR]];
    const mask = accessMask(e.access);
    if (!defaultAllow && mask !== 7) checks.push([MOV32_X, 1, 3], [AND32_K, 1, ~mask & 7], [JNE_K, 1, 0]);
    if (defaultAllow && mask !== 7) checks.push([MOV32_X, 1, 3], [AND32_K, 1, mask], [JEQ_K, 1, 0]);
    if (e.major !== -1) checks.push([JNE_K, 4, e.major]);
    if (e.minor !== -1) checks.push([JNE_K, 5, e.minor]);
    const len = checks.length + 2;
    checks.forEach(([code, reg, imm], i) => {
      if (code === MOV32_X) out.push(insn(MOV32_X, reg, imm, 0, 0));
      else if (code === AND32_K) out.push(insn(AND32_K, reg, 0, 0, imm));
      else out.push(insn(code, reg, 0, len - i - 1, imm));
    });
    out.push(insn(MOV32_K, 0, 0, 0, defaultAllow ? 0 : 1), insn(EXIT, 0, 0, 0, 0));
  }
  out.push(insn(MOV32_K, 0, 0, 0, defaultAllow ? 1 : 0), insn(EXIT, 0, 0, 0, 0));
  return Buffer.concat(out);
}

/** Loads the rules' program, attaches it to `dir`, then detaches whatever device programs were there before. */
export function applyDeviceProgram(dir: string, rules: LinuxDeviceCgroup[]): void {
  let cgroupFd: number;
  try { cgroupFd = openSync(dir, 'r'); } catch (err) { throw ioError(err, `open cgroup ${dir}`); }
  try {
    const before = attachedPrograms(cgroupFd);
    const progFd = loadDeviceProgram(compileDeviceRules(rules));
    try { attachProgram(cgroupFd, progFd); } finally { closeSync(progFd); }
    for (const id of before) {
      const fd = programFdById(id);
      try { detachProgram(cgroupFd, fd); } finally { closeSync(fd); }
    }
  } finally {
    closeSync(cgroupFd);
  }
}
