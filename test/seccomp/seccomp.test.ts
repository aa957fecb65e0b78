// Seccomp filters compiled by berth, installed in real containers by berth-runc (and so by the shim's fast
// path): actions, errno values, argument conditions; bad profiles refused naming the field.
import test from 'ava';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { compileSeccomp } from '../../runtimes/seccomp/compile.ts';
import { type Json, makeBundle } from '../helpers/bundle.ts';
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
  ['listener path', { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/x.sock' }, /listenerPath: seccomp user notification is not supported/],
  ['architecture', { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_AARCH64'] }, /"SCMP_ARCH_AARCH64" is not supported on x86_64/],
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
