// The vm backend through containerd-shim-berth-v2 (containerd's runc options binary_name "vm"): the task API tests
// every backend passes (test/shim/backend-suite.ts), proof that the container runs in a VM, warm pool, groups
// sharing a VM, and the faults: a bad spec refused before a VM boots, a network hook leaving more than the VM can
// connect, a killed shim taking its VM along, a guest that stops answering, a VM that dies under its container. Each test boots its own VMs (TCG: keep them few).
import test from 'ava';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { constants, copyFileSync, createWriteStream, existsSync, mkdirSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { release } from 'node:os';
import { join } from 'node:path';
import { unpackAny } from '../../api/proto.ts';
import { makeBundle } from '../helpers/bundle.ts';
import { backendSuite, oomSuite, uid } from '../shim/backend-suite.ts';
import { BERTH_SHIM, shimHarness } from '../shim/helpers.ts';
import { REPO } from '../daemon/helpers.ts';
import { vmImage } from '../../runtimes/vm/initramfs.ts';

const VM = 'vm';
const MiB = 1024 * 1024;

function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** QEMU and virtiofsd processes a shim started (their state lives in its sandbox-<shim pid>-<n> directories). */
function vmProcesses(shimPid: number): { pid: number; args: string }[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out.split('\n').map((l) => /^\s*(\d+) (.*)$/.exec(l)).filter((m): m is RegExpExecArray => !!m)
    .map((m) => ({ pid: Number(m[1]), args: m[2]! }))
    .filter((p) => p.args.includes(`/sandbox-${shimPid}-`) && /qemu-system|virtiofsd/.test(p.args) && !p.args.includes('berth-pdeath'));
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test.before(() => {
  vmImage(); // a clear error if npm run build has not made the guest image
});

backendSuite(VM, VM);
oomSuite(VM, VM);

test.serial('vm: the container runs on the guest kernel, sees the guest memory and its rootfs over virtio-fs; writes land in the bundle rootfs', async (t) => {
  const h = await shimHarness(t);
  const id = uid();
  const bundle = makeBundle(join(h.dir, id), {
    args: ['/bin/sh', '-c', 'uname -r; grep MemTotal /proc/meminfo; grep " / " /proc/mounts | head -1; echo guest > /written-in-vm'],
    edit: (s) => { s.root.readonly = false; s.linux.cgroupsPath = `/${id}`; s.linux.resources = { memory: { limit: 128 * 1024 * 1024 } }; },
  });
  const client = await h.start(bundle.dir, id);
  const io = h.fifos('init');
  await h.call(client, 'Create', { id, bundle: bundle.dir, stdout: io.stdout, stderr: io.stderr, options: h.options(VM) });
  const waiting = h.call(client, 'Wait', { id });
  await h.call(client, 'Start', { id });
  t.is((await waiting).exitStatus, 0, await io.errors);
  const [kernel, mem, root] = (await io.output).trim().split('\n');
  t.is(kernel, vmImage().kernelRelease, "uname -r is the guest kernel's");
  t.not(kernel, release());
  const memKiB = Number(/MemTotal:\s+(\d+) kB/.exec(mem ?? '')?.[1]);
  t.true(memKiB > 0 && memKiB < (128 + 64) * 1024, `the guest is sized from the memory limit: ${mem}`);
  t.regex(root ?? '', / virtiofs /, 'the rootfs comes over virtio-fs');
  t.is(readFileSync(join(bundle.rootfs, 'written-in-vm'), 'utf8'), 'guest\n', "the guest's write is in the bundle's rootfs on the host");
  // The VM is gone with its only container.
  const shimPid = (await h.call(client, 'Connect', { id })).shimPid;
  const sandboxes = readdirSync(`/run/berth/vm/${h.ns}`).filter((n) => n.startsWith(`sandbox-${shimPid}-`));
  t.is(sandboxes.length, 1);
  const info = JSON.parse(readFileSync(`/run/berth/vm/${h.ns}/${sandboxes[0]}/sandbox.json`, 'utf8'));
  t.true(info.accel === 'tcg' || info.accel === 'kvm', `accelerator recorded: ${info.accel}`);
  t.log(`accelerator ${info.accel}, boot to agent ${info.bootMs} ms`);
  await h.call(client, 'Delete', { id });
  await until('the VM to end', () => vmProcesses(shimPid).length === 0, 10_000);
  t.false(existsSync(`/run/berth/vm/${h.ns}/${sandboxes[0]}`), "the sandbox's directory is removed");
});

test.serial('vm: Stats parse the guest cgroup files, Update writes them; a volume is shared both ways; the stdin of an exec reaches it to its end; an exec with a terminal is resized; host processes are invisible', async (t) => {
  const h = await shimHarness(t);
  const id = uid();
  const volume = join(h.dir, 'volume');
  mkdirSync(volume);
  writeFileSync(join(volume, 'from-host'), 'hello guest\n');
  // A host process the container must not see, whatever its pid namespace would show.
  const marker = spawn('/bin/sleep', ['4242.5'], { stdio: 'ignore' });
  t.teardown(() => marker.kill('SIGKILL'));
  const bundle = makeBundle(join(h.dir, id), {
    args: ['/bin/sh', '-c', 'x=0; while [ $x -lt 3000 ]; do x=$((x+1)); done; sleep 1000'],
    edit: (s) => {
      s.linux.cgroupsPath = `/${id}`;
      s.linux.resources = { memory: { limit: 64 * MiB }, pids: { limit: 50 } };
      s.mounts.push({ destination: '/data', type: 'bind', source: volume, options: ['rbind', 'rw'] });
    },
  });
  const client = await h.start(bundle.dir, id);
  await h.call(client, 'Create', { id, bundle: bundle.dir, options: h.options(VM) });
  await h.call(client, 'Start', { id });
  await new Promise((r) => setTimeout(r, 500));
  const metrics = async () => unpackAny((await h.call(client, 'Stats', { id })).stats);
  const m = await metrics();
  t.is(m.memory.usage.limit, 64 * MiB, "the limit from the guest's memory.max");
  t.true(m.memory.usage.usage > 0, `memory usage ${m.memory.usage.usage}`);
  t.true(m.cpu.usage.total > 0, `cpu ${m.cpu.usage.total}`);
  t.true(m.pids.current >= 1, `pids ${m.pids.current}`);
  t.is(m.pids.limit, 50);
  const resources = (r: object) => ({ typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources', value: Buffer.from(JSON.stringify(r)) });
  await h.call(client, 'Update', { id, resources: resources({ memory: { limit: 96 * MiB }, pids: { limit: 20 } }) });
  const updated = await metrics();
  t.is(updated.memory.usage.limit, 96 * MiB);
  t.is(updated.pids.limit, 20);
  await t.throwsAsync(h.call(client, 'Update', { id, resources: resources({ cpu: { realtimeRuntime: 1000 } }) }), { message: /realtime/ });

  const run = async (execId: string, args: string[], terminal = false, stdin?: string) => {
    const io = h.fifos(execId);
    const spec = { ...bundle.spec.process, args, terminal };
    await h.call(client, 'Exec', { id, execId, terminal, stdout: io.stdout, ...(terminal ? {} : { stderr: io.stderr }), ...(stdin ? { stdin } : {}), spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Process', value: Buffer.from(JSON.stringify(spec)) } });
    const waiting = h.call(client, 'Wait', { id, execId });
    await h.call(client, 'Start', { id, execId });
    return { io, waiting };
  };
  const shared = await run('vol', ['/bin/sh', '-c', 'cat /data/from-host; echo from-guest > /data/from-guest; ps -o args | grep -c "424[2]\\.5"; ls /proc | grep -c "^[0-9]"']);
  t.is((await shared.waiting).exitStatus, 0);
  const [fromHost, markerSeen, procs] = (await shared.io.output).trim().split('\n');
  t.is(fromHost, 'hello guest');
  t.is(readFileSync(join(volume, 'from-guest'), 'utf8'), 'from-guest\n', 'the guest wrote into the host volume');
  t.is(markerSeen, '0', 'the host process is not there');
  t.true(Number(procs) < 10, `${procs} processes visible`);

  // stdin from the client's FIFO, to its end: what the client wrote, then EOF when it closed its side.
  const stdin = join(h.dir, 'stdin');
  execFileSync('mkfifo', [stdin]);
  const catted = await run('cat', ['/bin/sh', '-c', 'cat; echo "<eof>"'], false, stdin);
  const writer = createWriteStream(stdin);
  writer.end('line one\nline two\n');
  t.is((await catted.waiting).exitStatus, 0);
  t.is(await catted.io.output, 'line one\nline two\n<eof>\n');

  const tty = await run('tty', ['/bin/sh', '-c', 'sleep 1; stty size'], true);
  await h.call(client, 'ResizePty', { id, execId: 'tty', width: 123, height: 45 });
  t.is((await tty.waiting).exitStatus, 0);
  t.is((await tty.io.output).trim(), '45 123', 'the pty has the size ResizePty gave');
  await h.call(client, 'Kill', { id, signal: 9 });
  await h.call(client, 'Wait', { id });
  await h.call(client, 'Delete', { id });
});

test.serial("vm: the spec's device rules hold in the guest: /dev/full, listed but not allowed, refuses a write (EPERM) while /dev/null takes it, for an exec too; allowed by Update, it is full (ENOSPC)", async (t) => {
  const h = await shimHarness(t);
  const id = uid();
  // containerd's usual rules (deny all; mknod; the default devices, ptys, tun) without c 1:7; /dev/full is listed
  // in linux.devices, so its node is made and it gets no default rule.
  const usual = [[1, 3], [1, 8], [1, 5], [1, 9], [5, 0], [5, 1], [5, 2], [136, -1], [10, 200]]
    .map(([major, minor]) => ({ allow: true, type: 'c', major, minor, access: 'rwm' }));
  const devices = [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', access: 'm' }, { allow: true, type: 'b', access: 'm' }, ...usual];
  const bundle = makeBundle(join(h.dir, id), {
    args: ['/bin/sh', '-c', '(echo x > /dev/full) 2>&1; echo x > /dev/null && echo null-ok; exec sleep 1000'],
    edit: (s) => {
      s.linux.cgroupsPath = `/${id}`;
      s.linux.resources = { devices };
      s.linux.devices = [{ path: '/dev/full', type: 'c', major: 1, minor: 7, fileMode: 0o666, uid: 0, gid: 0 }];
    },
  });
  const client = await h.start(bundle.dir, id);
  const io = h.fifos('init');
  await h.call(client, 'Create', { id, bundle: bundle.dir, stdout: io.stdout, stderr: io.stderr, options: h.options(VM) });
  await h.call(client, 'Start', { id });
  const check = async (execId: string) => {
    const out = h.fifos(execId);
    const spec = { ...bundle.spec.process, args: ['/bin/sh', '-c', 'ls -l /dev/full; (echo x > /dev/full) 2>&1; echo x > /dev/null && echo null-ok'] };
    await h.call(client, 'Exec', { id, execId, stdout: out.stdout, stderr: out.stderr, spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Process', value: Buffer.from(JSON.stringify(spec)) } });
    const waiting = h.call(client, 'Wait', { id, execId });
    await h.call(client, 'Start', { id, execId });
    await waiting;
    return out.output;
  };
  const denied = await check('denied');
  t.regex(denied, /^crw-rw-rw-\s+1 root\s+root\s+1,\s+7 .*\/dev\/full$/m, `the node is there: ${denied}`);
  t.regex(denied, /\/dev\/full: Operation not permitted\nnull-ok\n$/, 'an exec is refused /dev/full, /dev/null works');
  const resources = { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources', value: Buffer.from(JSON.stringify({ devices: [...devices, { allow: true, type: 'c', major: 1, minor: 7, access: 'rw' }] })) };
  await h.call(client, 'Update', { id, resources });
  const allowed = await check('allowed');
  t.regex(allowed, /No space left on device\nnull-ok\n$/, `allowed by Update, /dev/full is full: ${allowed}`);
  await h.call(client, 'Kill', { id, signal: 9 });
  await h.call(client, 'Wait', { id });
  t.regex(await io.output, /^(\/bin\/)?sh: can't create \/dev\/full: Operation not permitted\nnull-ok\n$/, 'the init met the rules from its start');
  await h.call(client, 'Delete', { id });
});

test.serial('vm: even with every capability a container reaches no host path but its share, no host disk, and loads modules only into the guest kernel', async (t) => {
  const h = await shimHarness(t);
  const id = uid();
  const marker = `berth-escape-${id}`;
  const bundle = makeBundle(join(h.dir, id), {
    // The only filesystem the host gives the guest is the share (virtio-fs): mounted again it shows what is below
    // it, never the host's root; the guest has no block device; /tmp is the container's own; a module loads into
    // the guest's kernel (this host's kernel takes none).
    args: ['/bin/sh', '-c', `mkdir -p /mnt && mount -t virtiofs berth /mnt && ls /mnt | tr "\\n" " "; echo; echo x > /tmp/${marker}; ls /sys/block | grep -cE "^(vd|sd|nvme|xvd)"; insmod /dummy.ko && grep -c "^dummy " /proc/modules; true`],
    edit: (s) => {
      s.root.readonly = false;
      s.linux.cgroupsPath = `/${id}`;
      const all = ['CAP_SYS_ADMIN', 'CAP_MKNOD', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_DAC_OVERRIDE', 'CAP_CHOWN', 'CAP_SETUID', 'CAP_SETGID'];
      for (const set of ['bounding', 'effective', 'permitted']) s.process.capabilities[set] = all;
      delete s.linux.seccomp;
      s.linux.maskedPaths = [];
      s.linux.readonlyPaths = [];
    },
  });
  copyFileSync(join(vmImage().modulesDir, 'dummy.ko'), join(bundle.rootfs, 'dummy.ko'));
  const client = await h.start(bundle.dir, id);
  const io = h.fifos('init');
  await h.call(client, 'Create', { id, bundle: bundle.dir, stdout: io.stdout, stderr: io.stderr, options: h.options(VM) });
  const waiting = h.call(client, 'Wait', { id });
  await h.call(client, 'Start', { id });
  t.is((await waiting).exitStatus, 0);
  const [share, disks, dummy] = (await io.output).trim().split('\n');
  t.is(dummy, '1', `the module is loaded in the guest's kernel (stderr: ${await io.errors})`);
  t.false(existsSync('/proc/modules') && /^dummy /m.test(readFileSync('/proc/modules', 'utf8')), "and not in the host's");
  t.regex(share!, /\bbin\b/, `the share mounted again (stderr: ${await io.errors})`);
  const hostOnly = readdirSync('/').filter((n) => !existsSync(join(bundle.rootfs, n)));
  t.true(hostOnly.length > 0 && hostOnly.every((n) => !share!.split(' ').includes(n)), `none of the host's root (${hostOnly.join(' ')}) in: ${share}`);
  t.is(disks, '0', 'no block device in the guest');
  t.false(existsSync(`/tmp/${marker}`), "the container's /tmp is not the host's");
  await h.call(client, 'Delete', { id });
});

test.serial('vm: a spec the guest cannot honour (hooks, bad resources, a missing bind source, more device rules than the agent loads) is refused before any VM boots', async (t) => {
  const h = await shimHarness(t);
  const id = uid();
  const bundle = makeBundle(join(h.dir, id), { edit: (s) => { s.linux.cgroupsPath = `/${id}`; s.hooks = { createContainer: [{ path: '/bin/true' }] }; } });
  const client = await h.start(bundle.dir, id);
  await t.throwsAsync(h.call(client, 'Create', { id, bundle: bundle.dir, options: h.options(VM) }), { message: /hooks \(createContainer\): the vm runtime cannot run hooks in the container's namespaces/ });
  const bad = makeBundle(join(h.dir, `${id}-r`), { edit: (s) => { s.linux.cgroupsPath = `/${id}-r`; s.linux.resources = { memory: { limit: 64 << 20, swap: 1 << 20 } }; } });
  await t.throwsAsync(h.call(client, 'Create', { id: `${id}-r`, bundle: bad.dir, options: h.options(VM) }), { message: /memory\+swap must be ≥ memory\.limit/ });
  const noSource = makeBundle(join(h.dir, `${id}-m`), { edit: (s) => { s.linux.cgroupsPath = `/${id}-m`; s.mounts.push({ destination: '/data', type: 'bind', source: '/nonexistent/berth-source', options: ['rbind'] }); } });
  await t.throwsAsync(h.call(client, 'Create', { id: `${id}-m`, bundle: noSource.dir, options: h.options(VM) }), { message: /mounts\[\d+\] \(\/data\): bind source \/nonexistent\/berth-source does not exist/ });
  const many = Array.from({ length: 600 }, (_, minor) => ({ allow: true, type: 'c', major: 200, minor, access: 'rw' }));
  const tooMany = makeBundle(join(h.dir, `${id}-d`), { edit: (s) => { s.linux.cgroupsPath = `/${id}-d`; s.linux.resources = { devices: [...s.linux.resources.devices, ...many] }; } });
  await t.throwsAsync(h.call(client, 'Create', { id: `${id}-d`, bundle: tooMany.dir, options: h.options(VM) }), { message: /linux\.resources\.devices: \d+ rules compile to \d+ eBPF instructions, more than the guest agent loads \(4096\)/ });
  const shimPid = (await h.call(client, 'Connect', {})).shimPid;
  t.deepEqual(vmProcesses(shimPid), [], 'no VM was started');
});

test.serial('vm: hooks of the runtime namespace run on the host with the pid of the sandbox\'s QEMU, whose network namespace is not the host\'s', async (t) => {
  const h = await shimHarness(t);
  const id = uid();
  const log = join(h.dir, `${id}-hooks.log`);
  // Each hook logs its kind, the pid in its state, that pid's command and network namespace.
  const script = `s=$(cat); pid=$(echo "$s" | sed -n 's/.*"pid":\\([0-9]*\\).*/\\1/p'); echo "$1 $pid $(cat /proc/$pid/comm 2>/dev/null) $(readlink /proc/$pid/ns/net)" >> ${log}`;
  const hook = (kind: string) => [{ path: '/bin/sh', args: ['sh', '-c', script, 'sh', kind] }];
  const bundle = makeBundle(join(h.dir, id), { args: ['/bin/true'], edit: (s) => {
    s.linux.cgroupsPath = `/${id}`;
    s.hooks = { prestart: hook('prestart'), createRuntime: hook('createRuntime'), poststart: hook('poststart'), poststop: hook('poststop') };
  } });
  const client = await h.start(bundle.dir, id);
  await h.call(client, 'Create', { id, bundle: bundle.dir, options: h.options(VM) });
  const waiting = h.call(client, 'Wait', { id });
  await h.call(client, 'Start', { id });
  t.is((await waiting).exitStatus, 0);
  await h.call(client, 'Delete', { id });
  const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => l.split(' '));
  t.deepEqual(lines.map((l) => l[0]), ['prestart', 'createRuntime', 'poststart', 'poststop']);
  const [pid, comm, netns] = lines[0]!.slice(1);
  t.regex(comm ?? '', /^qemu-system/, `the state's pid ${pid} is the sandbox's QEMU`);
  t.regex(netns ?? '', /^net:\[\d+\]$/);
  t.not(netns, execFileSync('readlink', ['/proc/self/ns/net'], { encoding: 'utf8' }).trim(), "QEMU's network namespace is its own");
  t.deepEqual(lines.slice(1, 3).map((l) => l[1]), [pid, pid]);
  t.is(lines[3]![1], '0', 'poststop: the container is stopped');
});

test.serial('vm: a network hook that leaves two interfaces in QEMU\'s namespace fails Create, naming them, and leaves nothing behind', async (t) => {
  const h = await shimHarness(t);
  const id = uid();
  // A veth pair made inside QEMU's namespace: two interfaces for a VM with one network device.
  const script = 's=$(cat); pid=$(echo "$s" | sed -n \'s/.*"pid":\\([0-9]*\\).*/\\1/p\'); nsenter --net=/proc/$pid/ns/net ip link add berth-a type veth peer name berth-b';
  const bundle = makeBundle(join(h.dir, id), { args: ['/bin/true'], edit: (s) => {
    s.linux.cgroupsPath = `/${id}`;
    s.hooks = { prestart: [{ path: '/bin/sh', args: ['sh', '-c', script] }] };
  } });
  const client = await h.start(bundle.dir, id);
  await t.throwsAsync(h.call(client, 'Create', { id, bundle: bundle.dir, options: h.options(VM) }),
    { message: /the sandbox's network: QEMU's namespace has 2 interfaces \(berth-[ab], berth-[ab]\): a VM has one network device/ });
  const shimPid = (await h.call(client, 'Connect', {})).shimPid;
  await until('the VM to end', () => vmProcesses(shimPid).length === 0, 10_000);
  t.deepEqual(readdirSync(`/run/berth/vm/${h.ns}`).filter((n) => n.startsWith(`sandbox-${shimPid}-`)), []);
  t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes(`/sandbox-${shimPid}-`), 'no bind left');
});

test.serial('vm: a container whose program is not there fails Create with the reason from the guest, and its VM is gone', async (t) => {
  const h = await shimHarness(t);
  const id = uid();
  const bundle = makeBundle(join(h.dir, id), { args: ['/no/such/program'], edit: (s) => { s.linux.cgroupsPath = `/${id}`; } });
  const client = await h.start(bundle.dir, id);
  await t.throwsAsync(h.call(client, 'Create', { id, bundle: bundle.dir, options: h.options(VM) }), { message: /exec: "\/no\/such\/program": executable file not found in \$PATH/ });
  const shimPid = (await h.call(client, 'Connect', {})).shimPid;
  await until('the VM to end', () => vmProcesses(shimPid).length === 0, 10_000);
  t.deepEqual(readdirSync(`/run/berth/vm/${h.ns}`).filter((n) => n.startsWith(`sandbox-${shimPid}-`)), []);
  t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes(`/sandbox-${shimPid}-`), 'no bind left');
});

test.serial('vm: containers of one pod share a VM, others get their own; a grouped shim keeps a warm VM that the next container starts in', async (t) => {
  process.env.BERTH_SHIM_GROUP = `vm-group-${uid()}`;
  process.env.BERTH_VM_POOL = '1';
  t.teardown(() => { delete process.env.BERTH_SHIM_GROUP; delete process.env.BERTH_VM_POOL; });
  const h = await shimHarness(t);
  let client: Awaited<ReturnType<typeof h.start>> | undefined;
  const run = async (id: string, annotations: Record<string, string>) => {
    const bundle = makeBundle(join(h.dir, id), {
      args: ['/bin/sh', '-c', 'cat /proc/sys/kernel/random/boot_id; sleep 1000'], edit: (s) => { s.linux.cgroupsPath = `/${id}`; s.annotations = annotations; },
    });
    client ??= await h.start(bundle.dir, id);
    const log = join(h.dir, `${id}.log`);
    await h.call(client, 'Create', { id, bundle: bundle.dir, stdout: `file://${log}`, options: h.options(VM) });
    await h.call(client, 'Start', { id });
    await until(`${id}'s output`, () => readFileSync(log, 'utf8').includes('\n'), 30_000);
    return readFileSync(log, 'utf8').trim();
  };
  const pod = { 'io.kubernetes.cri.sandbox-id': `pod-${uid()}` };
  const [a, b, c] = ['a', 'b', 'c'].map((n) => `${n}-${uid()}`);
  const bootA = await run(a!, pod);
  t.regex(bootA, /^[0-9a-f-]{36}$/);
  t.is(await run(b!, pod), bootA, 'both containers of the pod run in one VM (one boot id)');
  const shimPid = (await h.call(client!, 'Connect', {})).shimPid;
  const qemus = () => vmProcesses(shimPid).filter((p) => p.args.includes('qemu-system')).map((p) => p.pid);
  // The pool boots one more VM behind the one in use.
  await until('the warm VM', () => qemus().length === 2, 60_000);
  const before = qemus();
  const doctor = JSON.parse(execFileSync(join(REPO, 'dist', 'berth'), ['doctor', '--json'], { encoding: 'utf8', env: childEnv() }));
  const vmCheck = (doctor as { name: string; detail: string }[]).find((c) => c.name === 'vm')!;
  t.true(Number(/(\d+) running containers/.exec(vmCheck.detail)?.[1]) >= 1 && Number(/(\d+) warm in pools/.exec(vmCheck.detail)?.[1]) >= 1, `berth doctor counts VMs: ${vmCheck.detail}`);
  const bootC = await run(c!, {});
  t.not(bootC, bootA, 'a container of no pod has a VM of its own');
  const now = qemus();
  t.true(now.filter((pid) => before.includes(pid)).length === 2, 'it started in the warm VM, booted before it was asked for');
  for (const id of [a!, b!, c!]) {
    const waiting = h.call(client!, 'Wait', { id });
    await h.call(client!, 'Kill', { id, signal: 9 });
    t.is((await waiting).exitStatus, 137);
    await h.call(client!, 'Delete', { id });
  }
  await until('the VMs in use to end, the pool refilled', () => qemus().length === 1, 60_000);
});

test.serial('vm: kill -9 of the shim takes its QEMU and virtiofsd along; shim delete removes what is left', async (t) => {
  const h = await shimHarness(t);
  const id = uid();
  const bundle = makeBundle(join(h.dir, id), { args: ['/bin/sleep', '1000'], edit: (s) => { s.linux.cgroupsPath = `/${id}`; } });
  const client = await h.start(bundle.dir, id);
  await h.call(client, 'Create', { id, bundle: bundle.dir, options: h.options(VM) });
  await h.call(client, 'Start', { id });
  const shimPid = (await h.call(client, 'Connect', {})).shimPid;
  const vms = vmProcesses(shimPid);
  t.true(vms.some((p) => p.args.includes('qemu-system')) && vms.some((p) => p.args.includes('virtiofsd')), JSON.stringify(vms));
  process.kill(shimPid, 'SIGKILL');
  await until('QEMU and virtiofsd to die with the shim', () => vmProcesses(shimPid).length === 0, 10_000);
  const env = childEnv();
  const del = spawnSync(process.execPath, [BERTH_SHIM, '-namespace', h.ns, '-address', join(h.dir, 'grpc.sock'), '-id', id, '-bundle', bundle.dir, 'delete'], { cwd: bundle.dir, env });
  t.is(del.status, 0, del.stderr.toString());
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  t.false(mounts.includes(`/sandbox-${shimPid}-`), 'no bind left in the dead shim\'s share');
  t.deepEqual(readdirSync(`/run/berth/vm/${h.ns}`).filter((n) => n.startsWith(`sandbox-${shimPid}-`)), [], 'its sandbox directories are gone');
});

test.serial('vm: a guest that stops answering: Kill and Delete still finish in bounded time; a VM that dies ends its task with 137', async (t) => {
  const h = await shimHarness(t);
  const start = async (id: string) => {
    const bundle = makeBundle(join(h.dir, id), { args: ['/bin/sleep', '1000'], edit: (s) => { s.linux.cgroupsPath = `/${id}`; } });
    const client = await h.start(bundle.dir, id);
    await h.call(client, 'Create', { id, bundle: bundle.dir, options: h.options(VM) });
    await h.call(client, 'Start', { id });
    const shimPid = (await h.call(client, 'Connect', {})).shimPid;
    const qemu = vmProcesses(shimPid).find((p) => p.args.includes('qemu-system'))!;
    return { client, shimPid, qemu };
  };
  const frozen = uid();
  const f = await start(frozen);
  process.kill(f.qemu.pid, 'SIGSTOP');
  t.teardown(() => { try { process.kill(f.qemu.pid, 'SIGCONT'); } catch { /* gone */ } });
  const waiting = h.call(f.client, 'Wait', { id: frozen });
  const began = Date.now();
  await h.call(f.client, 'Kill', { id: frozen, signal: 9 });
  t.is((await waiting).exitStatus, 137);
  await h.call(f.client, 'Delete', { id: frozen });
  t.true(Date.now() - began < 30_000, `Kill and Delete took ${Date.now() - began} ms`);
  await until('the frozen VM to be killed', () => vmProcesses(f.shimPid).length === 0, 10_000);

  const dying = uid();
  const d = await start(dying);
  // The shim logs to the bundle's log FIFO; the harness holds it open without reading: this reads it.
  let log = '';
  const logFd = openSync(join(h.dir, dying, 'log'), constants.O_RDONLY | constants.O_NONBLOCK);
  const logReader = new Socket({ fd: logFd, readable: true, writable: false }).on('data', (chunk) => { log += chunk; });
  t.teardown(() => logReader.destroy());
  const waitingD = h.call(d.client, 'Wait', { id: dying });
  process.kill(d.qemu.pid, 'SIGKILL');
  t.is((await waitingD).exitStatus, 137, 'the task ends when its VM dies');
  await until('the shim to log why', () => log.includes('the VM ended'), 5000);
  t.regex(log, /"why":"the VM ended \(guest panic, agent death or QEMU killed/);
  t.is((await h.call(d.client, 'State', { id: dying })).status, 'STOPPED');
  await h.call(d.client, 'Delete', { id: dying });
});
