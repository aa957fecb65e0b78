// What the container observes, beside runc: the same bundle run under runc and under berth-runc, and what the
// process inside sees compared line by line: identity, capabilities, mounts, masked and read-only paths,
// rlimits, no_new_privs, seccomp, and the limits that kill or stop it.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBundle, type Json } from '../helpers/bundle.ts';
import { tempDir } from '../helpers/tmp.ts';
import { CLI, uniqueId } from './helpers.ts';

const RUNTIMES: [string, string[]][] = [['runc', ['runc']], ['berth-runc', [process.execPath, CLI]]];

test.after.always(() => {
  for (const h of readdirSync('/sys/fs/cgroup')) { try { rmdirSync(join('/sys/fs/cgroup', h, 'observed')); } catch { /* in use or absent */ } }
});

interface Seen { status: number; stdout: string; stderr: string }

/** `run` of a bundle whose process is `sh -c script`, output through files (never pipes a container keeps). */
function observe(t: Parameters<typeof tempDir>[0], bin: string[], script: string, edit?: (s: Json) => void): Seen {
  const dir = tempDir(t, 'observed-');
  const bundle = makeBundle(join(dir, 'b'), { args: ['sh', '-c', script], edit: (s) => { s.linux.cgroupsPath = `/observed/${uniqueId('o')}`; edit?.(s); } });
  const out = mkdtempSync(join(tmpdir(), 'observed-out-'));
  const fds = [openSync(join(out, 'o'), 'w'), openSync(join(out, 'e'), 'w')];
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  try {
    const r = spawnSync(bin[0]!, [...bin.slice(1), '--root', join(dir, 'root'), 'run', '--bundle', bundle.dir, uniqueId('run')],
      { stdio: ['ignore', fds[0]!, fds[1]!], env, timeout: 60000 });
    return { status: r.status ?? -1, stdout: readFileSync(join(out, 'o'), 'utf8'), stderr: readFileSync(join(out, 'e'), 'utf8') };
  } finally {
    fds.forEach((fd) => closeSync(fd));
    rmSync(out, { recursive: true, force: true });
  }
}

function sideBySide(title: string, script: string, edit?: (s: Json) => void, view: (s: Seen) => unknown = (s) => [s.status, s.stdout]) {
  test.serial(title, (t) => {
    const seen = Object.fromEntries(RUNTIMES.map(([name, bin]) => [name, observe(t, bin, script, edit)]));
    t.log(`runc: status ${seen.runc!.status}\n${seen.runc!.stdout}`);
    t.deepEqual(view(seen['berth-runc']!), view(seen.runc!));
  });
}

sideBySide('identity: hostname, pid 1, uid, gid and supplementary groups, cwd, env',
  'hostname; echo pid $$; id -u; id -g; id -G; pwd; echo "$GREETING"',
  (s) => { s.process.user = { uid: 1000, gid: 1000, additionalGids: [10, 20] }; s.process.cwd = '/tmp'; s.process.env.push('GREETING=hi'); s.hostname = 'observed'; });

sideBySide('capabilities: all five sets, default and a custom set with ambient',
  'grep ^Cap /proc/self/status');
sideBySide('capabilities: a custom set with ambient ones',
  'grep ^Cap /proc/self/status',
  (s) => {
    s.process.capabilities = {
      bounding: ['CAP_CHOWN', 'CAP_NET_BIND_SERVICE', 'CAP_KILL'], effective: ['CAP_CHOWN', 'CAP_NET_BIND_SERVICE'], permitted: ['CAP_CHOWN', 'CAP_NET_BIND_SERVICE'],
      inheritable: ['CAP_NET_BIND_SERVICE'], ambient: ['CAP_NET_BIND_SERVICE'],
    };
  });

// Mount ids and device numbers differ from run to run; what the process sees is the tree: where, what, how.
sideBySide('mountinfo: the same mount points, filesystem types and options',
  'awk \'{ sep = 0; for (i = 7; i <= NF; i++) if ($i == "-") sep = i; print $5, $6, $(sep + 1) }\' /proc/self/mountinfo');

sideBySide('masked paths cannot be read, read-only paths cannot be written',
  'for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /sys/firmware /proc/scsi /proc/acpi; do ' +
    'if [ -d $p ]; then echo "$p: $(ls $p | wc -l) entries"; else echo "$p: $(wc -c < $p 2>/dev/null || echo unreadable) bytes"; fi; done; ' +
    'for p in /proc/sys/kernel/domainname /proc/sysrq-trigger /proc/irq/default_smp_affinity; do (echo x > $p) 2>/dev/null && echo "$p writable" || echo "$p read-only"; done; ' +
    'touch /newfile 2>/dev/null && echo root writable || echo root read-only');

sideBySide('rlimits and no_new_privs',
  'cat /proc/self/limits; grep NoNewPrivs /proc/self/status',
  (s) => { s.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 512, hard: 1024 }, { type: 'RLIMIT_NPROC', soft: 100, hard: 200 }, { type: 'RLIMIT_CORE', soft: 0, hard: 0 }]; });

sideBySide('seccomp: a rule returning EPERM for mkdir and one with an errnoRet',
  'mkdir /tmp/d 2>&1; echo mkdir=$?; rmdir /tmp 2>&1; echo rmdir=$?; echo still running',
  (s) => {
    s.linux.seccomp = {
      defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }, { names: ['rmdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }],
    };
  });

sideBySide('a memory limit kills the process that exceeds it',
  'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived',
  (s) => { s.linux.resources = { ...s.linux.resources, memory: { limit: 32 * 1024 * 1024, swap: 32 * 1024 * 1024 } }; },
  (s) => [s.status === 137 || /Killed/.test(s.stderr), s.stdout]);

sideBySide('a pids limit stops forks',
  'for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; echo started all',
  (s) => { s.linux.resources = { ...s.linux.resources, pids: { limit: 4 } }; },
  (s) => [s.status !== 0, /can't fork|Resource temporarily unavailable/.test(s.stderr), s.stdout]);

sideBySide('exit statuses: a plain exit and death by a signal inside, and the status the runtime reports',
  'sh -c "exit 7"; echo inner=$?; sh -c "kill -TERM \\$\\$"; echo killed=$?; exit 3');
