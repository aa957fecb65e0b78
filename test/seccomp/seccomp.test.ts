// Seccomp filters compiled by berth, installed in real containers by berth-runc (and so by the shim's fast
// path): actions, errno values, argument conditions; bad profiles refused naming the field.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { compileSeccomp } from '../../runtimes/seccomp/compile.ts';
import { type Json, makeBundle } from '../helpers/bundle.ts';
import { helperBinary } from '../helpers/seccomp.ts';
import { tempDir } from '../helpers/tmp.ts';
import { berthRunc, cgroupDirsOf, runtimeRoot, uniqueId } from '../runtime/helpers.ts';

function runWith(t: any, seccomp: Json, script: string) {
  const root = runtimeRoot(t);
  const bundle = makeBundle(join(tempDir(t), 'b'), { args: ['/bin/sh', '-c', script], edit: (s) => { s.linux.seccomp = seccomp; } });
  return berthRunc(root, ['run', '--bundle', bundle.dir, uniqueId('sc')]);
}

const allowAll = (extra: Json[]) => ({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: extra });

test('SCMP_ACT_ERRNO with errnoRet: the call fails with that errno, everything else works', (t) => {
  const r = runWith(t, allowAll([{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }]), 'mkdir /tmp/x; echo rc=$?; echo still-running');
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /rc=1\nstill-running/);
  t.regex(r.stderr, /Permission denied/, 'EACCES (13) as the message busybox prints');
});

test('a default ERRNO with an allow list: unlisted calls fail, the listed ones work', (t) => {
  // Enough for busybox sh to start, print and exit; uname is not listed.
  const allowed = ['execve', 'brk', 'arch_prctl', 'set_tid_address', 'set_robust_list', 'rseq', 'prlimit64', 'mprotect', 'mmap', 'munmap',
    'getuid', 'geteuid', 'getgid', 'getegid', 'getpid', 'getppid', 'rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn', 'ioctl', 'write',
    'writev', 'read', 'close', 'fcntl', 'exit_group', 'exit', 'stat', 'newfstatat', 'fstat', 'lstat', 'openat', 'open', 'getcwd', 'wait4',
    'clone', 'fork', 'vfork', 'dup2', 'dup3', 'access', 'faccessat', 'faccessat2', 'readlink', 'sigaltstack', 'getrandom', 'futex', 'uname'];
  const ok = runWith(t, { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: allowed, action: 'SCMP_ACT_ALLOW' }] }, 'echo hello; uname -s');
  t.is(ok.status, 0, ok.stderr);
  t.is(ok.stdout, 'hello\nLinux\n');
  // busybox prints what uname(2) filled in: nothing when the call is refused.
  const denied = runWith(t, { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: allowed.filter((n) => n !== 'uname'), action: 'SCMP_ACT_ALLOW' }] }, 'echo hello; uname -s');
  t.is(denied.stdout, 'hello\n\n');
});

test('argument conditions: EQ, NE and MASKED_EQ; several rules for one syscall are ORed', (t) => {
  // kill(pid, sig): deny signal 0 probes to any pid (kill -0), allow real signals.
  const rules = allowAll([{ names: ['kill'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index: 1, value: 0, op: 'SCMP_CMP_EQ' }] }]);
  const probe = runWith(t, rules, 'kill -0 $$; echo probe=$?; kill -USR1 $$ 2>/dev/null; echo never');
  t.regex(probe.stdout, /probe=1/);
  // MASKED_EQ: deny open*(…, flags) with O_CREAT (0x40) set, anywhere in the 64-bit flags.
  const masked = allowAll([{ names: ['openat', 'open'], action: 'SCMP_ACT_ERRNO', errnoRet: 30, args: [{ index: 2, value: 0x40, valueTwo: 0x40, op: 'SCMP_CMP_MASKED_EQ' }] }, { names: ['open'], action: 'SCMP_ACT_ERRNO', errnoRet: 30, args: [{ index: 1, value: 0x40, valueTwo: 0x40, op: 'SCMP_CMP_MASKED_EQ' }] }]);
  const m = runWith(t, masked, 'echo x > /tmp/new 2>/dev/null; echo create=$?; read line < /etc/passwd; echo read=$?');
  t.regex(m.stdout, /create=1\nread=0/);
  // NE with a high bit: deny write() to any fd other than 1.
  const ne = runWith(t, allowAll([{ names: ['write'], action: 'SCMP_ACT_ERRNO', errnoRet: 9, args: [{ index: 0, value: 1, op: 'SCMP_CMP_NE' }] }]), 'echo to-stdout; ls /nonexistent');
  t.is(ne.stdout, 'to-stdout\n');
  t.is(ne.stderr, '', 'ls writes its error to fd 2 itself: refused');
});

test('comparisons GT, GE, LT, LE on the 64-bit argument as libseccomp does', (t) => {
  // Deny getpriority(which, who) by the value of `which` (0..2), one operator at a time.
  const cases: [string, number, string][] = [['SCMP_CMP_GT', 0, '1,1,0'], ['SCMP_CMP_GE', 1, '1,1,0'], ['SCMP_CMP_LT', 1, '0,1,1'], ['SCMP_CMP_LE', 0, '0,1,1']];
  for (const [op, value] of cases) {
    const r = runWith(t, allowAll([{ names: ['setpriority'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index: 1, value: 2 ** 33, op }] }]), 'renice -n 1 -p $$ >/dev/null 2>&1; echo rc=$?');
    // pid ($$ = 1) is far below 2^33: GT/GE deny nothing, LT/LE deny the call.
    t.regex(r.stdout, op === 'SCMP_CMP_GT' || op === 'SCMP_CMP_GE' ? /rc=0/ : /rc=1/, `${op} ${value}`);
  }
});

test('SCMP_ACT_KILL_PROCESS: the container dies by SIGSYS (run exits 159)', (t) => {
  const r = runWith(t, allowAll([{ names: ['uname'], action: 'SCMP_ACT_KILL_PROCESS' }]), 'uname');
  t.is(r.status, 128 + 31);
});

const badProfiles: [string, Json, RegExp][] = [
  ['unknown action', { defaultAction: 'SCMP_ACT_BOGUS' }, /linux\.seccomp\.defaultAction: unknown seccomp action "SCMP_ACT_BOGUS"/],
  ['unknown operator', allowAll([{ names: ['kill'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, op: 'SCMP_CMP_ABOUT' }] }]), /linux\.seccomp\.syscalls\[0\]\.args\[0\]: unknown seccomp operator "SCMP_CMP_ABOUT"/],
  ['argument index', allowAll([{ names: ['kill'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }]), /args\[0\]: argument index 6 out of range 0\.\.5/],
  ['architecture', { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_VAX'] }, /linux\.seccomp\.architectures: "SCMP_ARCH_VAX" is not a seccomp architecture/],
  ['flag', { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_MAGIC'] }, /unknown flag "SECCOMP_FILTER_FLAG_MAGIC"/],
];
for (const [what, profile, message] of badProfiles) {
  test(`refused: seccomp ${what}`, (t) => {
    const root = runtimeRoot(t);
    const bundle = makeBundle(join(tempDir(t), 'b'), { edit: (s) => { s.linux.seccomp = profile; } });
    const id = uniqueId('bad');
    const r = berthRunc(root, ['create', '--bundle', bundle.dir, id]);
    t.not(r.status, 0);
    t.regex(r.stderr, message);
    t.false(existsSync(join(root, id)));
    t.deepEqual(cgroupDirsOf(id), []);
  });
}

test('unknown syscall names are skipped, as runc does', (t) => {
  const c = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['no_such_call', 'getpid'], action: 'SCMP_ACT_ERRNO' }] });
  t.deepEqual(c.unknown, ['no_such_call']);
  t.is(c.program.length % 8, 0);
});

// Each x86 syscall ABI of an x86_64 process, through abi-mkdir (mounted into the container): a listed
// architecture gets the rule by its own syscall numbers; an unlisted one is killed (the default allows).
const ENOMSG = 42;
/** Why a 64-bit process cannot make i386 syscalls here, if it cannot (int $0x80 faults under some hypervisors). */
const noI386 = (() => {
  const r = spawnSync(helperBinary('abi-mkdir'), ['i386', '/proc/berth-probe-i386']);
  return r.status === 0 ? undefined : `this machine gives 64-bit processes no int $0x80 (the probe died by ${r.signal ?? `status ${r.status}`})`;
})();
for (const abi of ['x32', 'i386'] as const) {
  const arch = abi === 'x32' ? 'SCMP_ARCH_X32' : 'SCMP_ARCH_X86';
  const skip = abi === 'i386' ? noI386 : undefined;
  (skip ? test.skip : test)(`${arch} listed: ${abi} syscalls are filtered by their own numbers; not listed: killed${skip ? ` (skipped: ${skip})` : ''}`, (t) => {
    const run = (architectures: string[], which: string = abi) => runWithHelper(t, { defaultAction: 'SCMP_ACT_ALLOW', architectures, syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOMSG }] }, 'abi-mkdir', [which, '/dev/shm/made']);
    const listed = run(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    t.is(listed.status, 0, listed.stderr);
    t.is(listed.stdout, `${ENOMSG}\n`);
    const native = run(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'], 'x86_64');
    t.is(native.stdout, `${ENOMSG}\n`);
    t.is(run(['SCMP_ARCH_X86_64']).status, 128 + 31, 'SIGSYS');
  });
}

/** Runs test/helpers/<helper>.c (mounted at /<helper>) with `args` in a container under `seccomp`. */
function runWithHelper(t: any, seccomp: Json, helper: string, args: string[]) {
  const root = runtimeRoot(t);
  const bundle = makeBundle(join(tempDir(t), 'b'), {
    args: [`/${helper}`, ...args],
    edit: (s) => { s.linux.seccomp = seccomp; s.mounts.push({ destination: `/${helper}`, type: 'bind', source: helperBinary(helper), options: ['bind', 'ro'] }); },
  });
  return berthRunc(root, ['run', '--bundle', bundle.dir, uniqueId('hlp')]);
}

test('architectures: i386 numbers in the i386 section (names only i386 has, too); other libseccomp architectures accepted', (t) => {
  const words = (p: Buffer) => Array.from({ length: p.length / 8 }, (_, i) => ({ code: p.readUInt16LE(i * 8), k: p.readUInt32LE(i * 8 + 4) }));
  const jeqs = (p: Buffer) => words(p).filter((w) => w.code === 0x15).map((w) => w.k);
  const profile = (architectures: string[]) => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', architectures, syscalls: [{ names: ['mkdir', 'socketcall'], action: 'SCMP_ACT_ERRNO' }] });
  const only64 = profile(['SCMP_ARCH_X86_64']);
  const with32 = profile(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_S390X']);
  t.false(jeqs(only64.program).includes(0x40000003), 'no i386 section unless listed');
  t.deepEqual(only64.unknown, [], 'socketcall is an i386 syscall: known, just not on x86_64');
  const i386At = jeqs(with32.program).indexOf(0x40000003);
  t.true(i386At > 0);
  // mkdir is 83 on x86_64, 39 on i386; socketcall (i386's 102) has no x86_64 number.
  t.true(jeqs(with32.program).includes(83));
  t.true(jeqs(with32.program).includes(39) && jeqs(with32.program).includes(102));
  t.false(jeqs(only64.program).includes(102));
});

const GETPGID = 121;
test('two conditions on the same argument are alternatives, as runc has libseccomp take them', (t) => {
  const profile = allowAll([{ names: ['getpgid'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOMSG, args: [{ index: 0, value: 1337, op: 'SCMP_CMP_EQ' }, { index: 0, value: 2020, op: 'SCMP_CMP_EQ' }] }]);
  for (const [pid, expected] of [['1337', ENOMSG], ['2020', ENOMSG], ['0', 0]] as const) {
    const r = runWithHelper(t, profile, 'raw-syscall', [String(GETPGID), pid]);
    t.is(r.stdout, `${expected}\n`, `getpgid(${pid}): ${r.stderr}`);
  }
});

test('with a restrictive default, a syscall numbered above every one the profile names gets ENOSYS (runc\'s patch); one below gets the default', (t) => {
  const allowed = ['execve', 'brk', 'arch_prctl', 'set_tid_address', 'set_robust_list', 'rseq', 'prlimit64', 'mprotect', 'mmap', 'munmap',
    'readlinkat', 'readlink', 'newfstatat', 'fstat', 'write', 'exit_group', 'getrandom', 'uname', 'getpgid'];
  const profile = { defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: allowed, action: 'SCMP_ACT_ALLOW' }] };
  const above = runWithHelper(t, profile, 'raw-syscall', ['1000']);
  t.is(above.stdout, '38\n', above.stderr);
  const below = runWithHelper(t, profile, 'raw-syscall', ['110']); // getppid: not listed, below rseq (334)
  t.is(below.stdout, '1\n', below.stderr);
  // defaultErrnoRet is what the calls below the last get.
  const enxio = runWithHelper(t, { ...profile, defaultErrnoRet: 6 }, 'raw-syscall', ['110']);
  t.is(enxio.stdout, '6\n', enxio.stderr);
});

test('a startContainer hook runs under the container\'s filter: killed by it, the run fails naming the signal', (t) => {
  const root = runtimeRoot(t);
  const bundle = makeBundle(join(tempDir(t), 'b'), {
    args: ['/bin/true'],
    edit: (s) => {
      s.linux.seccomp = allowAll([{ names: ['mkdir'], action: 'SCMP_ACT_KILL' }]);
      s.hooks = { startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'mkdir /dev/shm/foo'] }] };
    },
  });
  const r = berthRunc(root, ['run', '--bundle', bundle.dir, uniqueId('hk')]);
  t.not(r.status, 0);
  t.regex(r.stderr, /error running hook: startContainer hook \/bin\/sh killed by signal 31 \(bad system call\)/);
});
