// Compiles the OCI runtime spec's linux.seccomp to a classic BPF program for seccomp(2), as libseccomp
// would on x86_64: the architecture is checked first (x86_64 always; i386 and x32 when listed, each with its own
// syscall numbers), then each listed syscall is compared by number; its rules are tried in order (conditions of
// one rule are ANDed, or ORed when two test the same argument, as runc does; the first rule that matches
// decides) and a syscall none of them matches falls to the default action (or, above the last syscall the
// profile names, ENOSYS: runc's patch). 64-bit arguments are compared as two 32-bit halves. Jumps within an architecture's section
// are local (a syscall's block is skipped as a whole), so any number of syscalls fits BPF's 8-bit jump offsets;
// the sections are reached by long jumps. A name no table knows is skipped, as runc does with libseccomp, and
// so is a name for an architecture that lacks it. SCMP_ACT_NOTIFY rules make the filter return a listener fd
// (seccomp user notification), which berth-init sends to the agent at linux.seccomp.listenerPath.
import { errInvalidArgument } from '../../api/errdefs.ts';
import { SYSCALLS_X32 } from './syscalls-x32.ts';
import { SYSCALLS_X86 } from './syscalls-x86.ts';
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
  /** Names skipped because no architecture has such a syscall. */
  unknown: string[];
  /** Some rule is SCMP_ACT_NOTIFY: loading the filter gives a listener fd for the agent at listenerPath. */
  notify: boolean;
}

const EPERM = 1;
const ENOSYS = 38;
const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
const X32_SYSCALL_BIT = 0x40000000;
const RET = {
  KILL_PROCESS: 0x80000000, KILL_THREAD: 0, TRAP: 0x00030000, ERRNO: 0x00050000, USER_NOTIF: 0x7fc00000, TRACE: 0x7ff00000,
  LOG: 0x7ffc0000, ALLOW: 0x7fff0000,
};
const FLAG_NEW_LISTENER = 8;
const FLAGS: Record<string, number> = { SECCOMP_FILTER_FLAG_TSYNC: 1, SECCOMP_FILTER_FLAG_LOG: 2, SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4 };
/** libseccomp's other architectures (the runtime spec's list): accepted, as runc does, and never reached here, as
 * an x86_64 kernel presents every syscall as x86_64, i386 or x32. */
const OTHER_ARCHES = new Set(['ARM', 'AARCH64', 'MIPS', 'MIPS64', 'MIPS64N32', 'MIPSEL', 'MIPSEL64', 'MIPSEL64N32', 'PPC', 'PPC64', 'PPC64LE',
  'S390', 'S390X', 'PARISC', 'PARISC64', 'RISCV64'].map((a) => `SCMP_ARCH_${a}`));
/** Every architecture a profile may list (`berth-runc features`). */
export const SECCOMP_ARCHES = ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32', ...OTHER_ARCHES].sort();
/** Syscalls the init makes after the filter is in and before the agent has the listener fd (it sends it with
 * sendmsg): notifying them would wait for an agent that cannot answer yet. runc refuses write for that reason. */
const NEVER_NOTIFY = new Set(['write', 'sendmsg']);

// BPF opcodes.
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGT_K = 0x25;
const JGE_K = 0x35;
const RET_K = 0x06;
const JA = 0x05;
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
    case 'SCMP_ACT_NOTIFY': return RET.USER_NOTIF;
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

/** A rule's alternatives: a syscall matching any body gets the rule's action. */
interface CompiledRule { names: string[]; bodies: Insn[][] }

/** One architecture's section: each rule's syscalls by that architecture's numbers (`bit` or-ed in), then the
 * default action. With `enosys` (the architecture is listed), as runc's patch of libseccomp's filter: a syscall
 * numbered above every one the profile names gets ENOSYS, not the default, so a program can tell a syscall
 * newer than the profile (and fall back, as glibc does from clone3) from one the profile denies. */
function section(rules: CompiledRule[], table: Readonly<Record<string, number>>, bit: number, def: number, enosys: boolean): Insn[] {
  const out: Insn[] = [];
  const last = Math.max(-1, ...rules.flatMap((r) => r.names.map((n) => table[n] ?? -1)));
  if (enosys && last > 0) out.push(insn(LD_W_ABS, 0), insn(JGT_K, (last | bit) >>> 0, 0, 1), insn(RET_K, RET.ERRNO | ENOSYS));
  for (const { names, bodies } of rules) {
    for (const name of names) {
      const nr = table[name];
      if (nr === undefined) continue;
      for (const body of bodies) out.push(insn(LD_W_ABS, 0), insn(JEQ_K, (nr | bit) >>> 0, 0, body.length), ...body);
    }
  }
  out.push(insn(RET_K, def));
  return out;
}

function compileProfile(s: LinuxSeccomp): CompiledSeccomp {
  if (s.defaultAction === 'SCMP_ACT_NOTIFY') throw errInvalidArgument('linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action (the container could not even send its listener fd)');
  const def = action(s.defaultAction, s.defaultErrnoRet, 'linux.seccomp.defaultAction');
  const arches = new Set(s.architectures ?? []);
  for (const arch of arches) {
    if (!SECCOMP_ARCHES.includes(arch)) {
      throw errInvalidArgument(`linux.seccomp.architectures: ${JSON.stringify(arch)} is not a seccomp architecture`);
    }
  }
  let flags = 0;
  for (const f of s.flags ?? []) {
    if (FLAGS[f] === undefined) throw errInvalidArgument(`linux.seccomp.flags: unknown flag ${JSON.stringify(f)}`);
    flags |= FLAGS[f]!;
  }
  const unknown: string[] = [];
  let notify = false;
  const rules: CompiledRule[] = (s.syscalls ?? []).map((rule, i) => {
    const where = `linux.seccomp.syscalls[${i}]`;
    if (!Array.isArray(rule.names) || rule.names.length === 0) throw errInvalidArgument(`${where}.names must list at least one syscall`);
    const ret = action(rule.action, rule.errnoRet, `${where}.action`);
    if (ret === RET.USER_NOTIF) {
      notify = true;
      const never = rule.names.find((n) => NEVER_NOTIFY.has(n));
      if (never) throw errInvalidArgument(`${where}: SCMP_ACT_NOTIFY cannot be used for the ${never} syscall`);
    }
    const args = rule.args ?? [];
    const conds = args.map((a, j) => condition(a, `${where}.args[${j}]`));
    // Conditions are ANDed, unless two test the same argument: then, as runc has libseccomp do, each condition
    // is a rule of its own (ORed).
    const sameArgTwice = new Set(args.map((a) => a.index)).size < args.length;
    const bodies = (sameArgTwice ? conds.map((c) => [c]) : [conds]).map((group) => {
      // A body: its conditions, then the action; a failed condition skips to the end of the body.
      const body: Insn[] = [];
      let remaining = group.reduce((n, c) => n + c(0).length, 0) + 1;
      for (const c of group) {
        remaining -= c(0).length;
        body.push(...c(remaining));
      }
      body.push(insn(RET_K, ret));
      if (body.length > 250) throw errInvalidArgument(`${where}: too many argument conditions for one rule`);
      return body;
    });
    for (const name of rule.names) {
      if (SYSCALLS_X86_64[name] === undefined && SYSCALLS_X86[name] === undefined && SYSCALLS_X32[name] === undefined) unknown.push(name);
    }
    return { names: rule.names, bodies };
  });
  if (notify) {
    if (!s.listenerPath) throw errInvalidArgument('linux.seccomp.listenerPath: required by SCMP_ACT_NOTIFY rules (the agent that gets the listener fd)');
    flags |= FLAG_NEW_LISTENER;
  }
  // Syscalls of architectures not listed are not filtered rule by rule: with a permissive default they would
  // slip through, so they are killed; with a restrictive default they get that default.
  const foreign = def === RET.ALLOW || def === RET.LOG ? RET.KILL_PROCESS : def;
  // runc's ENOSYS patch is for restrictive defaults only (a tracer handles new syscalls itself), and moot when the
  // default is ENOSYS already.
  const enosys = def !== RET.ALLOW && def !== RET.LOG && (def & 0xffff0000) !== RET.TRACE && def !== (RET.ERRNO | ENOSYS);
  const x32 = arches.has('SCMP_ARCH_X32') ? section(rules, SYSCALLS_X32, X32_SYSCALL_BIT, def, enosys) : [insn(RET_K, foreign)];
  const x86 = arches.has('SCMP_ARCH_X86') ? section(rules, SYSCALLS_X86, 0, def, enosys) : [];
  // x86_64 and x32 share the audit arch; x32 numbers carry X32_SYSCALL_BIT.
  const native = section(rules, SYSCALLS_X86_64, 0, def, enosys && arches.has('SCMP_ARCH_X86_64'));
  const x86_64 = [insn(LD_W_ABS, 0), insn(JGE_K, X32_SYSCALL_BIT, 0, 1), insn(JA, native.length), ...native, ...x32];
  const head = x86.length
    ? [insn(LD_W_ABS, 4), insn(JEQ_K, AUDIT_ARCH_X86_64, 3, 0), insn(JEQ_K, AUDIT_ARCH_I386, 1, 0), insn(RET_K, foreign), insn(JA, x86_64.length)]
    : [insn(LD_W_ABS, 4), insn(JEQ_K, AUDIT_ARCH_X86_64, 1, 0), insn(RET_K, foreign)];
  const out = [...head, ...x86_64, ...x86];
  if (out.length > 4096) throw errInvalidArgument(`linux.seccomp: the filter needs ${out.length} BPF instructions, more than the kernel's 4096`);
  const program = Buffer.alloc(out.length * 8);
  out.forEach((x, i) => {
    program.writeUInt16LE(x.code, i * 8);
    program.writeUInt8(x.jt, i * 8 + 2);
    program.writeUInt8(x.jf, i * 8 + 3);
    program.writeUInt32LE(x.k, i * 8 + 4);
  });
  return { program, flags, unknown, notify };
}
