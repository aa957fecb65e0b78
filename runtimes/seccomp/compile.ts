// Compiles the OCI runtime spec's linux.seccomp to a classic BPF program for seccomp(2), as libseccomp
// would for x86_64: the architecture is checked first, then each listed syscall is compared by number; its
// rules are tried in order (conditions of one rule are ANDed, the first rule that matches decides) and a syscall
// none of them matches falls to the default action. 64-bit arguments are compared as two 32-bit halves.
// Every jump is local (a syscall's block is skipped as a whole), so any number of syscalls fits BPF's 8-bit
// jump offsets. Syscall names this kernel's headers do not know are skipped, as runc does with libseccomp.
import { errInvalidArgument, errNotImplemented } from '../../api/errdefs.ts';
import { SYSCALLS_X86_64 } from './syscalls-x86_64.ts';

export interface SeccompArg { index: number; value: number; valueTwo?: number; op: string }
export interface SeccompSyscall { names: string[]; action: string; errnoRet?: number; args?: SeccompArg[] }
export interface LinuxSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: SeccompSyscall[];
}

export interface CompiledSeccomp {
  /** struct sock_filter[], 8 bytes each. */
  program: Buffer;
  /** seccomp(2) SECCOMP_SET_MODE_FILTER flags. */
  flags: number;
  /** Names skipped because this kernel has no such syscall. */
  unknown: string[];
}

const EPERM = 1;
const AUDIT_ARCH_X86_64 = 0xc000003e;
const X32_SYSCALL_BIT = 0x40000000;
const RET = {
  KILL_PROCESS: 0x80000000, KILL_THREAD: 0, TRAP: 0x00030000, ERRNO: 0x00050000, TRACE: 0x7ff00000, LOG: 0x7ffc0000, ALLOW: 0x7fff0000,
};
const FLAGS: Record<string, number> = { SECCOMP_FILTER_FLAG_TSYNC: 1, SECCOMP_FILTER_FLAG_LOG: 2, SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4 };
const KNOWN_ARCHES = new Set(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);

// BPF opcodes.
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGT_K = 0x25;
const JGE_K = 0x35;
const RET_K = 0x06;
const AND_K = 0x54;

interface Insn { code: number; jt: number; jf: number; k: number }
const insn = (code: number, k: number, jt = 0, jf = 0): Insn => ({ code, jt, jf, k: k >>> 0 });

function action(name: string, errnoRet: number | undefined, where: string): number {
  switch (name) {
    case 'SCMP_ACT_KILL': case 'SCMP_ACT_KILL_THREAD': return RET.KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS': return RET.KILL_PROCESS;
    case 'SCMP_ACT_TRAP': return RET.TRAP;
    case 'SCMP_ACT_ERRNO': return RET.ERRNO | ((errnoRet ?? EPERM) & 0xffff);
    case 'SCMP_ACT_TRACE': return RET.TRACE | ((errnoRet ?? EPERM) & 0xffff);
    case 'SCMP_ACT_LOG': return RET.LOG;
    case 'SCMP_ACT_ALLOW': return RET.ALLOW;
    case 'SCMP_ACT_NOTIFY': throw errNotImplemented(`${where}: SCMP_ACT_NOTIFY (seccomp user notification) is not supported`);
    default: throw errInvalidArgument(`${where}: unknown seccomp action ${JSON.stringify(name)}`);
  }
}

const hi = (v: number) => Math.floor(v / 0x100000000) >>> 0;
const lo = (v: number) => v >>> 0;

/**
 * Code for one argument condition: falls through when it holds, jumps forward by `fail` (counted from the end
 * of this code) when it does not.
 */
function condition(a: SeccompArg, where: string): (fail: number) => Insn[] {
  if (!Number.isInteger(a.index) || a.index < 0 || a.index > 5) throw errInvalidArgument(`${where}: argument index ${a.index} out of range 0..5`);
  for (const v of [a.value, a.valueTwo ?? 0]) {
    if (!Number.isSafeInteger(v) || v < 0) throw errInvalidArgument(`${where}: argument value ${v} is not an unsigned 64-bit integer berth can represent`);
  }
  const loOff = 16 + 8 * a.index;
  const hiOff = loOff + 4;
  const v = a.value;
  // Each builder returns instructions whose jumps reach `end` = past the code (success) or fail target.
  switch (a.op) {
    case 'SCMP_CMP_EQ':
      return (fail) => [insn(LD_W_ABS, hiOff), insn(JEQ_K, hi(v), 0, 2 + fail), insn(LD_W_ABS, loOff), insn(JEQ_K, lo(v), 0, fail)];
    case 'SCMP_CMP_NE':
      return (fail) => [insn(LD_W_ABS, hiOff), insn(JEQ_K, hi(v), 0, 2), insn(LD_W_ABS, loOff), insn(JEQ_K, lo(v), fail, 0)];
    case 'SCMP_CMP_GT': case 'SCMP_CMP_GE': {
      const cmp = a.op === 'SCMP_CMP_GT' ? JGT_K : JGE_K;
      return (fail) => [insn(LD_W_ABS, hiOff), insn(JGT_K, hi(v), 3, 0), insn(JEQ_K, hi(v), 0, 2 + fail), insn(LD_W_ABS, loOff), insn(cmp, lo(v), 0, fail)];
    }
    case 'SCMP_CMP_LT': case 'SCMP_CMP_LE': {
      // A < v  ⇔  !(A >= v);  A <= v  ⇔  !(A > v)
      const cmp = a.op === 'SCMP_CMP_LT' ? JGE_K : JGT_K;
      return (fail) => [insn(LD_W_ABS, hiOff), insn(JGT_K, hi(v), 3 + fail, 0), insn(JEQ_K, hi(v), 0, 2), insn(LD_W_ABS, loOff), insn(cmp, lo(v), fail, 0)];
    }
    case 'SCMP_CMP_MASKED_EQ': {
      const mask = v;
      const datum = a.valueTwo ?? 0;
      return (fail) => [
        insn(LD_W_ABS, hiOff), insn(AND_K, hi(mask)), insn(JEQ_K, hi(datum), 0, 3 + fail),
        insn(LD_W_ABS, loOff), insn(AND_K, lo(mask)), insn(JEQ_K, lo(datum), 0, fail),
      ];
    }
    default:
      throw errInvalidArgument(`${where}: unknown seccomp operator ${JSON.stringify(a.op)}`);
  }
}

/** Programs compiled lately, by profile: a shim serving many containers mostly sees the same one (containerd's
 * default), and compiling it costs ~0.5 ms warm. */
const recent = new Map<string, CompiledSeccomp>();
const RECENT_MAX = 8;

export function compileSeccomp(s: LinuxSeccomp): CompiledSeccomp {
  const key = JSON.stringify(s);
  const known = recent.get(key);
  if (known) return known;
  const compiled = compileProfile(s);
  if (recent.size >= RECENT_MAX) recent.delete(recent.keys().next().value!);
  recent.set(key, compiled);
  return compiled;
}

function compileProfile(s: LinuxSeccomp): CompiledSeccomp {
  if (s.listenerPath) throw errNotImplemented('linux.seccomp.listenerPath: seccomp user notification is not supported');
  const def = action(s.defaultAction, s.defaultErrnoRet, 'linux.seccomp.defaultAction');
  for (const arch of s.architectures ?? []) {
    if (!KNOWN_ARCHES.has(arch)) throw errInvalidArgument(`linux.seccomp.architectures: ${JSON.stringify(arch)} is not supported on x86_64 (have ${[...KNOWN_ARCHES].join(', ')})`);
  }
  let flags = 0;
  for (const f of s.flags ?? []) {
    if (FLAGS[f] === undefined) throw errInvalidArgument(`linux.seccomp.flags: unknown flag ${JSON.stringify(f)}`);
    flags |= FLAGS[f]!;
  }
  // Syscalls of other architectures are not filtered rule by rule: with a permissive default they would slip
  // through, so they are killed; with a restrictive default they get that default.
  const foreign = def === RET.ALLOW || def === RET.LOG ? RET.KILL_PROCESS : def;
  const out: Insn[] = [
    insn(LD_W_ABS, 4), insn(JEQ_K, AUDIT_ARCH_X86_64, 1, 0), insn(RET_K, foreign),
    insn(LD_W_ABS, 0), insn(JGE_K, X32_SYSCALL_BIT, 0, 1), insn(RET_K, foreign),
  ];
  const unknown: string[] = [];
  (s.syscalls ?? []).forEach((rule, i) => {
    const where = `linux.seccomp.syscalls[${i}]`;
    if (!Array.isArray(rule.names) || rule.names.length === 0) throw errInvalidArgument(`${where}.names must list at least one syscall`);
    const ret = action(rule.action, rule.errnoRet, `${where}.action`);
    const conds = (rule.args ?? []).map((a, j) => condition(a, `${where}.args[${j}]`));
    // The rule's body: all conditions, then the action; a failed condition skips to the end of the body.
    const body: Insn[] = [];
    let remaining = conds.reduce((n, c) => n + c(0).length, 0) + 1;
    for (const c of conds) {
      const len = c(0).length;
      remaining -= len;
      body.push(...c(remaining));
    }
    body.push(insn(RET_K, ret));
    if (body.length > 250) throw errInvalidArgument(`${where}: too many argument conditions for one rule`);
    for (const name of rule.names) {
      const nr = SYSCALLS_X86_64[name];
      if (nr === undefined) { unknown.push(name); continue; }
      out.push(insn(LD_W_ABS, 0), insn(JEQ_K, nr, 0, body.length), ...body);
    }
  });
  out.push(insn(RET_K, def));
  if (out.length > 4096) throw errInvalidArgument(`linux.seccomp: the filter needs ${out.length} BPF instructions, more than the kernel's 4096`);
  const program = Buffer.alloc(out.length * 8);
  out.forEach((x, i) => {
    program.writeUInt16LE(x.code, i * 8);
    program.writeUInt8(x.jt, i * 8 + 2);
    program.writeUInt8(x.jf, i * 8 + 3);
    program.writeUInt32LE(x.k, i * 8 + 4);
  });
  return { program, flags, unknown };
}
