// Runtime classes and the trust policy (daemon/policy/): classes probed on this host, rules parsed with their
// line, and decisions enforced by a real berthd at Containers.Create/Update, Tasks.Create and Tasks.Exec, for
// berth's API and Debian's ctr alike. The sandbox is checked from inside: the kernel an untrusted container sees.
import test, { type ExecutionContext } from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { closeSync, constants as fsc, createReadStream, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ApiClient } from '../../api/grpc-client.ts';
import { packAny, unpackAny } from '../../api/proto.ts';
import { passedAnnotations } from '../../daemon/policy/annotations.ts';
import { loadPolicy } from '../../daemon/policy/holder.ts';
import { defaultSpec } from '../helpers/bundle.ts';
import { makeBusyboxRootfs } from '../helpers/rootfs.ts';
import { busyboxImage } from '../helpers/image.ts';
import { tempDir } from '../helpers/tmp.ts';
import { berth, loadImage } from '../cli/helpers.ts';
import { keptLog, REPO, startDaemon, startDaemonProcess } from './helpers.ts';

const run = promisify(execFile);
const CONTAINERS = 'containerd.services.containers.v1.Containers';
const TASKS = 'containerd.services.tasks.v1.Tasks';
const NAMESPACES = 'containerd.services.namespaces.v1.Namespaces';
const SPEC_TYPE = 'types.containerd.io/opencontainers/runtime-spec/1/Spec';
const uid = () => `p${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const HOST_KERNEL = readFileSync('/proc/version', 'utf8');

function configFile(t: ExecutionContext, text: string): string {
  const path = join(tempDir(t), 'config.toml');
  writeFileSync(path, text);
  return path;
}

function readAll(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    createReadStream(path, { encoding: 'utf8' }).on('data', (d) => { out += d; }).on('end', () => resolve(out)).on('error', reject);
  });
}

function fifo(t: ExecutionContext, name: string) {
  const path = join(tempDir(t), name);
  execFileSync('mkfifo', [path]);
  t.teardown(() => { try { closeSync(openSync(path, fsc.O_RDWR | fsc.O_NONBLOCK)); } catch { /* gone */ } });
  return { path, output: readAll(path) };
}

interface CreateOptions { binary?: string; runtime?: string; labels?: Record<string, string>; image?: string; edit?: (spec: any) => void }

async function createContainer(c: ApiClient, ns: string, id: string, args: string[], o: CreateOptions = {}) {
  const spec = defaultSpec(args);
  spec.linux.cgroupsPath = `/berth-policy-test/${ns}-${id}`;
  o.edit?.(spec);
  const options = o.binary ? packAny('containerd.runc.v1.Options', { binaryName: o.binary }) : undefined;
  return (await c.call(CONTAINERS, 'Create', { container: {
    id, labels: o.labels ?? {}, image: o.image ?? '', runtime: { name: o.runtime ?? 'io.containerd.berth.v2', ...(options ? { options } : {}) },
    spec: { typeUrl: SPEC_TYPE, value: Buffer.from(JSON.stringify(spec)) },
  } })).container;
}

/** Runs the container's task to its end; its output and exit status. */
async function runTask(t: ExecutionContext, c: ApiClient, id: string): Promise<{ output: string; status: number }> {
  const rootfs = makeBusyboxRootfs(join(tempDir(t), 'rootfs'));
  const out = fifo(t, 'out');
  await c.call(TASKS, 'Create', { containerId: id, stdout: out.path, rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }] });
  const waiting = c.call(TASKS, 'Wait', { containerId: id });
  await c.call(TASKS, 'Start', { containerId: id });
  const status = (await waiting).exitStatus as number;
  await c.call(TASKS, 'Delete', { containerId: id });
  return { output: await out.output, status };
}

const binaryOf = (container: any) => unpackAny(container.runtime.options).binaryName;
/** runsc chowns the stdio it is given to its sandbox user: the host's /dev/null must never be among it. */
const nullOwner = () => { const s = statSync('/dev/null'); return `${s.uid}:${s.gid}`; };

// The daemons here run on a host that cannot run VMs (the vm class's guest image missing), so that an untrusted
// container's strongest sandbox is gVisor and vm requirements fail closed; test/vm/berthd.vmtest.ts runs the vm
// class where it works.
const NO_VM_DIR = '/nonexistent/berth-vm-image';
process.env.BERTH_VM_DIR = NO_VM_DIR;
const NO_VM = 'the guest image (/nonexistent/berth-vm-image/manifest.json) is not built: run npm run build';

test.serial('runtime classes: the built-ins, each probed on this host; vm where QEMU and the guest image are', (t) => {
  const p = loadPolicy('');
  const classes = Object.fromEntries(p.classes.list().map((c) => [c.name, c]));
  t.deepEqual(Object.keys(classes), ['fast', 'runc', 'crun', 'gvisor', 'vm']);
  t.like(classes.fast, { isolation: 'container', unusable: undefined });
  t.like(classes.runc, { isolation: 'container', unusable: undefined, options: { binaryName: 'runc' } });
  t.like(classes.gvisor, { isolation: 'sandbox', unusable: undefined, options: { binaryName: 'runsc' } });
  t.like(classes.vm, { isolation: 'vm', options: { binaryName: 'vm' }, unusable: NO_VM });
  delete process.env.BERTH_VM_DIR;
  try {
    t.is(loadPolicy('').classes.get('vm')!.unusable, undefined, 'usable where npm run build made the guest image');
  } finally { process.env.BERTH_VM_DIR = NO_VM_DIR; }
  t.is(p.classes.defaultClass, 'fast');
  t.is(p.source, 'built-in default');
  t.deepEqual(p.rules.map((r) => r.name), ['untrusted-namespace', 'untrusted-label', 'untrusted-workload-annotation']);
});

test('a configured class is probed too: a missing binary makes it unusable, and a policy may not name an unknown class', (t) => {
  const p = loadPolicy(configFile(t, '[runtimes]\ndefault_runtime = "fast"\n[runtimes.nowhere]\nisolation = "sandbox"\n[runtimes.nowhere.options]\nBinaryName = "no-such-runtime-binary"\n'));
  t.regex(p.classes.get('nowhere')!.unusable!, /no-such-runtime-binary is not installed/);
  // The strongest usable sandbox is still gVisor, never the unusable class.
  t.is(p.classes.strongestAtLeast('sandbox')?.name, 'gvisor');
});

test('a bad policy is refused naming the file, the line and the problem', (t) => {
  const bad = (text: string, re: RegExp) => t.throws(() => loadPolicy(configFile(t, text)), { message: re });
  bad('[[policy.rules]]\nname = "a"\naction = "require"\nisolation = "hypervisor"\n', /config\.toml:4: rule 1: \(a\) isolation must be one of container, sandbox, vm/);
  bad('[[policy.rules]]\nname = "a"\naction = "allow"\n\n[[policy.rules]]\nname = "b"\nisolation = "sandbox"\nclass = "kata"\n', /config\.toml:8: rule 2: \(b\) class "kata" is not a runtime class/);
  bad('[[policy.rules]]\nname = "a"\nisolation = "sandbox"\nclass = "runc"\n', /rule a requires isolation sandbox but names class runc, which gives container/);
  bad('[[policy.rules]]\nname = "a"\naction = "allow"\n[policy.rules.match]\nnamespacez = ["x"]\n', /config\.toml:5: rule 1: \(a\) match\.namespacez is not something a rule matches on/);
  bad('[[policy.rules]]\nname = "a"\naction = "allow"\nforbid = ["root"]\n', /config\.toml:4: .*forbid: "root" is not one of privileged/);
  bad('[[policy.rules]]\nname = "a"\naction = "allow"\n[[policy.rules]]\nname = "a"\naction = "refuse"\n', /config\.toml:5: rule 2: a rule named a comes earlier/);
  bad('[policy]\nrules = 3\n', /rules must be an array of tables/);
  bad('[runtimes.x]\nisolation = "sandbox"\nbinary = "runsc"\n', /runtimes\.x: unknown key binary/);
  bad('[runtimes]\ndefault_runtime = "nope"\n', /default_runtime "nope" is not a runtime class/);
  bad('[runtimes]\ndefault_runtime = "vm"\n', /default_runtime "vm" cannot run on this host: the guest image/);
  bad('[runtimes.x]\nisolation = "container"\npod_annotations = "a*"\n', /runtimes\.x\.pod_annotations must be a list of strings/);
});

test('warm_pool: [runtimes.vm] sets the vm backend\'s pool and keeps the rest of the built-in; a bad value is refused naming the key', (t) => {
  const p = loadPolicy(configFile(t, '[runtimes.vm]\nwarm_pool = 2\n'));
  t.like(p.classes.get('vm'), { isolation: 'vm', options: { binaryName: 'vm' }, podAnnotations: [], containerAnnotations: [], warmPool: 2 });
  t.is(p.classes.vmWarmPool(), 2);
  t.is(loadPolicy(configFile(t, '[runtimes.vm]\nwarm_pool = 0\n')).classes.vmWarmPool(), 0);
  t.is(loadPolicy('').classes.vmWarmPool(), undefined, 'unset: the shim\'s default');
  const bad = (text: string, re: RegExp) => t.throws(() => loadPolicy(configFile(t, text)), { message: re });
  for (const v of ['-1', '1.5', '17', '1000000', '"2"', 'true']) bad(`[runtimes.vm]\nwarm_pool = ${v}\n`, /config\.toml: runtimes\.vm\.warm_pool must be a whole number from 0 to 16/);
  bad('[runtimes.gvisor]\nwarm_pool = 1\n', /runtimes\.gvisor\.warm_pool: only a class served by berth's vm backend/);
  bad('[runtimes.vm]\nwarm_pool = 1\n[runtimes.big-vm]\nisolation = "vm"\nwarm_pool = 3\n[runtimes.big-vm.options]\nBinaryName = "vm"\n', /different warm_pool values \(1, 3\): a shim has one warm pool/);
  bad('[runtimes.mine]\nwarm_pool = 1\n', /runtimes\.mine\.isolation must be one of/);
});

test('vm fails closed: configuring the class cannot make it usable, and a client naming the vm backend gets the vm class', (t) => {
  const p = loadPolicy(configFile(t, '[runtimes.vm]\nisolation = "vm"\n[runtimes.vm.options]\nBinaryName = "runc"\n'));
  t.is(p.classes.get('vm')!.unusable, NO_VM);
  t.is(p.classes.strongestAtLeast('vm'), undefined);
  const d = loadPolicy('').decide({ namespace: 'default', namespaceLabels: {}, image: '', labels: {}, facts: { privileged: false, hostNamespaces: [], bindSources: [], devices: false, addedCapabilities: [], annotations: {} },
    runtime: 'io.containerd.berth.v2', options: packAny('containerd.runc.v1.Options', { binaryName: 'vm' }) });
  t.like(d, { verdict: 'refuse', why: `runtime class vm cannot run on this host: ${NO_VM}` });
});

test('annotations reach a runtime as its class passes them: globs stop at "/", a pod sandbox gets the pod\'s, CRI\'s own always pass', (t) => {
  const cls = (pod?: string[], container?: string[]) => ({ name: 'x', runtimeType: 'io.containerd.berth.v2', options: {}, isolation: 'container' as const,
    ...(pod ? { podAnnotations: pod } : {}), ...(container ? { containerAnnotations: container } : {}) });
  const sent = { 'example.com/a': '1', 'example.com/a/b': '2', 'pod.example/x': '3', 'dev.gvisor.spec.mount.m.share': 'shared', 'io.kubernetes.cri.sandbox-id': 's' };
  t.is(passedAnnotations(cls(), sent), undefined, 'a class listing neither passes all');
  t.deepEqual(passedAnnotations(cls([], []), sent), { 'io.kubernetes.cri.sandbox-id': 's' });
  t.deepEqual(passedAnnotations(cls(['pod.example/*'], ['example.com/?']), sent), { 'example.com/a': '1', 'pod.example/x': '3', 'io.kubernetes.cri.sandbox-id': 's' });
  const sandbox = { ...sent, 'io.kubernetes.cri.container-type': 'sandbox' };
  t.deepEqual(passedAnnotations(cls(['pod.example/*'], ['example.com/*']), sandbox), { 'pod.example/x': '3', 'io.kubernetes.cri.sandbox-id': 's', 'io.kubernetes.cri.container-type': 'sandbox' });
  t.deepEqual(loadPolicy('').classes.get('gvisor')!.containerAnnotations, [], 'gVisor gets no client annotation');
});

test.serial('built-in default: an untrusted namespace asking for runc is upgraded to gVisor, and the container sees gVisor\'s kernel, not the host\'s', async (t) => {
  const { log, entries } = keptLog();
  const d = await startDaemon(t, {}, log);
  const c = d.client('untrusted');
  await d.client().call(NAMESPACES, 'Create', { namespace: { name: 'untrusted', labels: { 'berth.io/trust': 'untrusted' } } });
  const sub = d.daemon.ctx.events.subscribe(['topic=="/policy/decision"']);
  const id = uid();
  const created = await createContainer(c, 'untrusted', id, ['/bin/sh', '-c', 'cat /proc/version; dmesg | head -3'], { binary: 'runc' });
  t.is(created.runtime.name, 'io.containerd.berth.v2');
  t.is(binaryOf(created), 'runsc');
  t.is(created.labels['berth.io/isolation'], 'gvisor; rule=untrusted-namespace');
  const { output, status } = await runTask(t, c, id);
  t.is(status, 0, output);
  const [version] = output.split('\n');
  t.not(`${version}\n`, HOST_KERNEL, 'the container sees another kernel than the host\'s');
  t.regex(output, /gVisor/i, 'gVisor\'s dmesg');
  const ev = (await sub[Symbol.asyncIterator]().next()).value;
  t.is(ev.topic, '/policy/decision');
  t.like(unpackAny(ev.event), { containerId: id, operation: 'containers.create', verdict: 'upgrade', rule: 'untrusted-namespace', runtimeClass: 'gvisor', isolation: 'sandbox' });
  t.true(entries().some((e) => e.msg === 'policy decision' && e.id === id && e.verdict === 'upgrade'));
  sub.close();
  // The same container in a trusted namespace runs as asked, on the host's kernel.
  const trusted = d.client('trusted');
  const id2 = uid();
  const c2 = await createContainer(trusted, 'trusted', id2, ['/bin/cat', '/proc/version'], { binary: 'runc' });
  t.is(binaryOf(c2), 'runc');
  t.is(c2.labels['berth.io/isolation'], 'runc; rule=none');
  t.is((await runTask(t, trusted, id2)).output, HOST_KERNEL);
});

test.serial('untrusted containers may not be privileged nor share the host\'s network; the error names the rule', async (t) => {
  const d = await startDaemon(t);
  const c = d.client('default');
  const untrusted = { 'berth.io/trust': 'untrusted' };
  const privileged = await t.throwsAsync(createContainer(c, 'default', uid(), ['/bin/true'], {
    labels: untrusted, edit: (s) => { for (const set of ['bounding', 'effective', 'permitted']) s.process.capabilities[set].push('CAP_SYS_ADMIN'); },
  }));
  t.regex(privileged!.message, /policy: container \w+: rule untrusted-label forbids privileged \(CAP_SYS_ADMIN\)/);
  t.is((privileged as any).code, 'failed precondition');
  const hostNet = await t.throwsAsync(createContainer(c, 'default', uid(), ['/bin/true'], {
    edit: (s) => { s.annotations = { 'io.kubernetes.cri.untrusted-workload': 'true' }; s.linux.namespaces = s.linux.namespaces.filter((n: any) => n.type !== 'network'); },
  }));
  t.regex(hostNet!.message, /rule untrusted-workload-annotation forbids host namespaces \(network\)/);
  t.deepEqual((await c.call(CONTAINERS, 'List', {})).containers, [], 'nothing was created');
  // A trusted container may still be privileged.
  const ok = await createContainer(c, 'default', uid(), ['/bin/true'], { edit: (s) => s.process.capabilities.bounding.push('CAP_SYS_ADMIN') });
  t.is(ok.labels['berth.io/isolation'], 'fast; rule=none');
  // An update cannot turn a trusted container untrusted on the host's kernel: its runtime cannot change.
  const upd = await t.throwsAsync(c.call(CONTAINERS, 'Update', { container: { id: ok.id, labels: untrusted }, updateMask: { paths: ['labels.berth.io/trust'] } }));
  t.regex(upd!.message, /rule untrusted-label forbids privileged/);
});

test.serial('configured policy: an image from a registry off the allow list is sandboxed; on_weaker = "refuse" refuses; a vm requirement is refused here, never run on runc', async (t) => {
  const path = configFile(t, `
[[policy.rules]]
name = "vm-only"
isolation = "vm"
[policy.rules.match]
namespaces = ["secret*"]

[[policy.rules]]
name = "strict"
isolation = "sandbox"
class = "gvisor"
on_weaker = "refuse"
[policy.rules.match]
labels = { tier = "strict" }

[[policy.rules]]
name = "foreign-registries"
isolation = "sandbox"
forbid = ["privileged", "host_namespaces", "devices"]
force = ["no_new_privileges", "seccomp"]
[policy.rules.match]
registries_not_in = ["registry.internal", "127.0.0.1:*"]
`);
  const d = await startDaemon(t, { configFile: path });
  const c = d.client('default');
  const foreign = await createContainer(c, 'default', uid(), ['/bin/true'], { image: 'docker.io/library/busybox:latest', binary: 'runc', edit: (s) => { s.process.noNewPrivileges = false; } });
  t.is(binaryOf(foreign), 'runsc');
  t.is(foreign.labels['berth.io/isolation'], 'gvisor; rule=foreign-registries');
  const spec = JSON.parse(Buffer.from(foreign.spec.value).toString());
  t.true(spec.process.noNewPrivileges, 'no_new_privileges forced');
  t.is(spec.linux.seccomp.defaultAction, 'SCMP_ACT_ERRNO', 'a seccomp profile forced');
  const internal = await createContainer(c, 'default', uid(), ['/bin/true'], { image: '127.0.0.1:5000/app:1', binary: 'runc' });
  t.is(binaryOf(internal), 'runc');
  t.is(internal.labels['berth.io/isolation'], 'runc; rule=none');
  const strict = await t.throwsAsync(createContainer(c, 'default', uid(), ['/bin/true'], { labels: { tier: 'strict' }, binary: 'crun' }));
  t.regex(strict!.message, /rule strict requires isolation sandbox \(class gvisor\); runtime io\.containerd\.berth\.v2 \(class crun, isolation container\) is weaker/);
  // Asking for the class by name (as `ctr run --runtime gvisor` does) satisfies it.
  const named = await createContainer(c, 'default', uid(), ['/bin/true'], { labels: { tier: 'strict' }, runtime: 'gvisor' });
  t.is(named.runtime.name, 'io.containerd.berth.v2');
  t.is(binaryOf(named), 'runsc');
  const vm = await t.throwsAsync(createContainer(d.client('secret-stuff'), 'secret-stuff', uid(), ['/bin/true'], { binary: 'runc' }));
  t.regex(vm!.message, /rule vm-only requires isolation vm, and no runtime class on this host gives it \(vm: the guest image/);
  t.deepEqual((await d.client('secret-stuff').call(CONTAINERS, 'List', {})).containers, []);
  const askedVm = await t.throwsAsync(createContainer(c, 'default', uid(), ['/bin/true'], { runtime: 'vm' }));
  t.regex(askedVm!.message, /runtime class vm cannot run on this host: the guest image/);
});

test.serial('a task cannot weaken its container\'s runtime, and an exec cannot ask for privileges its container lacks', async (t) => {
  const d = await startDaemon(t);
  const c = d.client('default');
  const id = uid();
  await createContainer(c, 'default', id, ['/bin/sleep', '100'], { labels: { 'berth.io/trust': 'untrusted' } });
  const rootfs = makeBusyboxRootfs(join(tempDir(t), 'rootfs'));
  // Task options asking for runc are overridden by the class's: the task still runs in gVisor.
  const ownerBefore = nullOwner();
  await c.call(TASKS, 'Create', { containerId: id, options: packAny('containerd.runc.v1.Options', { binaryName: 'runc' }), rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }] });
  await c.call(TASKS, 'Start', { containerId: id });
  t.is(nullOwner(), ownerBefore, "the host's /dev/null keeps its owner (the task has no stdio at all)");
  const out = fifo(t, 'exec-out');
  const base = defaultSpec(['/bin/cat', '/proc/version']).process;
  await c.call(TASKS, 'Exec', { containerId: id, execId: 'plain', stdout: out.path, spec: { typeUrl: SPEC_TYPE, value: Buffer.from(JSON.stringify(base)) } });
  await c.call(TASKS, 'Start', { containerId: id, execId: 'plain' });
  t.not(await out.output, HOST_KERNEL, 'the exec runs in the sandbox too');
  const more = structuredClone(base);
  for (const set of ['bounding', 'effective', 'permitted']) more.capabilities[set].push('CAP_SYS_ADMIN', 'CAP_NET_ADMIN');
  const err = await t.throwsAsync(c.call(TASKS, 'Exec', { containerId: id, execId: 'root', spec: { typeUrl: SPEC_TYPE, value: Buffer.from(JSON.stringify(more)) } }));
  t.regex(err!.message, /policy: container \w+: exec root asks for capabilities the container lacks \(CAP_NET_ADMIN, CAP_SYS_ADMIN\)/);
  await c.call(TASKS, 'Kill', { containerId: id, signal: 9 });
  await c.call(TASKS, 'Wait', { containerId: id });
  await c.call(TASKS, 'Delete', { containerId: id });
});

test.serial('Debian\'s ctr with --runtime io.containerd.runc.v2 in an untrusted namespace: upgraded to gVisor; --privileged and --net-host refused', async (t) => {
  const d = await startDaemonProcess(t);
  const ctr = async (...args: string[]) => (await run('ctr', ['-a', d.address, '-n', 'untrusted', ...args], { encoding: 'utf8' })).stdout;
  await ctr('namespaces', 'create', 'untrusted', 'berth.io/trust=untrusted');
  const archive = join(tempDir(t), 'busybox.tar');
  await run(process.execPath, ['--import', 'tsx', join(REPO, 'scripts', 'demo-image.ts'), archive, 'policy']);
  await ctr('images', 'import', '--base-name', 'berth.local/busybox', archive);
  const image = 'berth.local/busybox:policy';
  const out = await ctr('run', '--rm', '--runtime', 'io.containerd.runc.v2', image, 'ctr-untrusted', 'cat', '/proc/version');
  t.not(out, HOST_KERNEL);
  t.regex(out, /^Linux version 4\.4\.0/, 'gVisor\'s kernel version');
  const priv = await t.throwsAsync(ctr('run', '--rm', '--privileged', '--runtime', 'io.containerd.runc.v2', image, 'ctr-priv', 'true'));
  t.regex((priv as any).stderr, /failed precondition.*rule untrusted-namespace forbids privileged|rule untrusted-namespace forbids privileged.*failed precondition/);
  const net = await t.throwsAsync(ctr('run', '--rm', '--net-host', '--runtime', 'io.containerd.runc.v2', image, 'ctr-net', 'true'));
  t.regex((net as any).stderr, /rule untrusted-namespace forbids host namespaces \(network\)/);
  t.is((await ctr('containers', 'ls', '-q')).trim(), '');
});

test.serial('SIGHUP reloads the policy; a broken file keeps the policy in force and says why; a bad policy stops berthd at start', async (t) => {
  const good = '[[policy.rules]]\nname = "everything-sandboxed"\nisolation = "sandbox"\n';
  const path = configFile(t, good);
  const d = await startDaemonProcess(t, {}, ['--config', path, '--log-level', 'info']);
  const c = d.client('default');
  t.is(binaryOf(await createContainer(c, 'default', uid(), ['/bin/true'], { binary: 'runc' })), 'runsc');
  writeFileSync(path, '[[policy.rules]]\nname = "broken"\nisolation = "sideways"\n');
  d.child.kill('SIGHUP');
  for (let i = 0; i < 100 && !/policy reload refused/.test(d.stderr()); i++) await new Promise((r) => setTimeout(r, 20));
  t.regex(d.stderr(), /"error":"[^"]*config\.toml:3: rule 1: \(broken\) isolation must be one of[^\n]*policy reload refused: the policy in force stays/);
  t.is(binaryOf(await createContainer(c, 'default', uid(), ['/bin/true'], { binary: 'runc' })), 'runsc', 'the old policy stays');
  writeFileSync(path, '[[policy.rules]]\nname = "all-allowed"\naction = "allow"\n');
  d.child.kill('SIGHUP');
  for (let i = 0; i < 100 && !/policy reloaded/.test(d.stderr()); i++) await new Promise((r) => setTimeout(r, 20));
  const after = await createContainer(c, 'default', uid(), ['/bin/true'], { binary: 'runc' });
  t.is(binaryOf(after), 'runc');
  t.is(after.labels['berth.io/isolation'], 'runc; rule=all-allowed');
  // At start, a bad policy stops berthd with the line and the problem.
  const bad = configFile(t, '[[policy.rules]]\nname = "x"\naction = "maybe"\n');
  const err = await t.throwsAsync(run(process.execPath, [join(REPO, 'dist', 'berthd.mjs'), '--config', bad, '--root', join(tempDir(t), 'r'), '--state', join(tempDir(t), 's'), '--address', join(tempDir(t), 'sock')]));
  t.regex((err as any).stderr, /berthd: .*config\.toml:3: rule 1: \(x\) action must be "allow", "require" or "refuse"/);
});

test.serial('berth runtimes ls, policy show, policy explain, policy check; berth run --trust untrusted runs in gVisor, --runtime-class picks a class', async (t) => {
  const d = await startDaemon(t);
  await loadImage(t, d.client('default'), 'busybox:policy', await busyboxImage({ tag: 'policy' }));
  const ls = await berth(d.address, ['runtimes', 'ls']);
  t.is(ls.code, 0, ls.stderr);
  t.regex(ls.stdout, /fast \(default\)\s+container\s+io\.containerd\.berth\.v2\s+fast\s+-\s+yes/);
  t.regex(ls.stdout, /gvisor\s+sandbox\s+io\.containerd\.berth\.v2\s+runsc\s+-\s+yes/);
  // WARM: the VMs each namespace shim keeps booted ahead (1 unless configured, or BERTH_VM_POOL in berthd's env).
  t.regex(ls.stdout, new RegExp(`\\nvm\\s+vm\\s+io\\.containerd\\.berth\\.v2\\s+vm\\s+${process.env.BERTH_VM_POOL || 1}\\s+no: the guest image`));
  // plugins ls lists the classes too, each with its isolation; an unusable one skipped, saying why.
  const plugins = await berth(d.address, ['plugins', 'ls']);
  t.is(plugins.code, 0, plugins.stderr);
  t.regex(plugins.stdout, /berth\.runtime-class\.v1\s+fast\s+linux\/amd64\s+container\s+ok/);
  t.regex(plugins.stdout, /berth\.runtime-class\.v1\s+gvisor\s+linux\/amd64\s+sandbox\s+ok/);
  t.regex(plugins.stdout, /berth\.runtime-class\.v1\s+vm\s+linux\/amd64\s+vm\s+skip: the guest image \(\/nonexistent\/berth-vm-image\/manifest\.json\) is not built: run npm run build\n/);
  t.regex(plugins.stdout, /io\.containerd\.grpc\.v1\s+policy\s+-\s+-\s+ok/);
  const show = await berth(d.address, ['policy', 'show']);
  t.regex(show.stdout, /^policy: built-in default/);
  t.regex(show.stdout, /- untrusted-namespace: require isolation sandbox, upgrade a weaker runtime\n\s+match \{"namespaceLabels":\{"berth.io\/trust":"untrusted"\}\}\n\s+forbid privileged, host_namespaces/);
  const explain = await berth(d.address, ['policy', 'explain', 'docker.io/library/busybox', '--label', 'berth.io/trust=untrusted']);
  t.is(explain.code, 0, explain.stderr);
  t.regex(explain.stdout, /rule:\s+untrusted-label\ndecision: upgrade\nruns as:\s+gvisor \(isolation sandbox\)/);
  const refused = await berth(d.address, ['policy', 'explain', 'busybox', '--label', 'berth.io/trust=untrusted', '--privileged']);
  t.is(refused.code, 1);
  t.regex(refused.stdout, /decision: refuse\nwhy:\s+rule untrusted-label forbids privileged/);
  t.regex((await berth(d.address, ['policy', 'explain', 'busybox', '--namespace', 'other'])).stdout, /rule:\s+none\ndecision: allow\nruns as:\s+fast/);
  const good = configFile(t, '[[rules]]\nname = "all"\nisolation = "sandbox"\n');
  t.regex((await berth(d.address, ['policy', 'check', good])).stdout, /1 rule\(s\): all/);
  const badFile = configFile(t, '[[rules]]\nname = "all"\nisolation = "sandbox"\nclass = "kata"\n');
  const bad = await berth(d.address, ['policy', 'check', badFile]);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /config\.toml:4: rule 1: \(all\) class "kata" is not a runtime class/);
  const run = await berth(d.address, ['run', '--rm', '--trust', 'untrusted', '--runc-binary', 'runc', 'busybox:policy', 'cli-untrusted', 'cat', '/proc/version']);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /^Linux version 4\.4\.0/, 'gVisor\'s kernel');
  const byClass = await berth(d.address, ['run', '--rm', '--runtime-class', 'gvisor', 'busybox:policy', 'cli-class', 'cat', '/proc/version']);
  t.regex(byClass.stdout, /^Linux version 4\.4\.0/);
  const vm = await berth(d.address, ['run', '--rm', '--runtime-class', 'vm', 'busybox:policy', 'cli-vm', 'true']);
  t.not(vm.code, 0);
  t.regex(vm.stderr, /runtime class vm cannot run on this host: the guest image/);
  t.is((await berth(d.address, ['containers', 'ls', '-q'])).stdout, '');
});

/** Creates the container's task (runs /bin/true), returns the spec its shim got in the bundle, then runs it out. */
async function bundleSpec(t: ExecutionContext, d: Awaited<ReturnType<typeof startDaemon>>, ns: string, id: string): Promise<any> {
  const c = d.client(ns);
  const rootfs = makeBusyboxRootfs(join(tempDir(t), 'rootfs'));
  await c.call(TASKS, 'Create', { containerId: id, rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }] });
  const spec = JSON.parse(readFileSync(join(d.daemon.ctx.tasks.bundleDir(ns, id), 'config.json'), 'utf8'));
  const waiting = c.call(TASKS, 'Wait', { containerId: id });
  await c.call(TASKS, 'Start', { containerId: id });
  await waiting;
  await c.call(TASKS, 'Delete', { containerId: id });
  return spec;
}

test.serial('a class\'s pod_annotations and container_annotations decide which annotations reach its runtime; the record keeps them all', async (t) => {
  const d = await startDaemon(t, { configFile: configFile(t, '[runtimes.annotated]\nisolation = "container"\ncontainer_annotations = ["example.com/*"]\npod_annotations = ["pod.example/*"]\n') });
  const c = d.client('default');
  const sent = { 'example.com/keep': '1', 'example.com/not/this': '2', 'pod.example/p': '3', 'other.org/drop': '4', 'dev.gvisor.spec.mount.m.share': 'shared', 'io.kubernetes.cri.container-name': 'web' };
  const annotate = (s: any) => { s.annotations = sent; };
  const id = uid();
  await createContainer(c, 'default', id, ['/bin/true'], { runtime: 'annotated', edit: annotate });
  t.deepEqual((await bundleSpec(t, d, 'default', id)).annotations, { 'example.com/keep': '1', 'pod.example/p': '3', 'io.kubernetes.cri.container-name': 'web' });
  t.deepEqual(JSON.parse(Buffer.from((await c.call(CONTAINERS, 'Get', { id })).container.spec.value).toString()).annotations, sent, 'the record keeps what the client sent');
  // gVisor passes none a client wrote; a class listing neither (fast) passes them all, as containerd does.
  const g = uid();
  await createContainer(c, 'default', g, ['/bin/true'], { runtime: 'gvisor', edit: annotate });
  t.deepEqual((await bundleSpec(t, d, 'default', g)).annotations, { 'io.kubernetes.cri.container-name': 'web' });
  const f = uid();
  await createContainer(c, 'default', f, ['/bin/true'], { edit: annotate });
  t.deepEqual((await bundleSpec(t, d, 'default', f)).annotations, sent);
});

test.serial('default_runtime: a container naming no runtime runs as the configured class; an invalid default stops berthd at start', async (t) => {
  const d = await startDaemon(t, { configFile: configFile(t, '[runtimes]\ndefault_runtime = "gvisor"\n') });
  const c = d.client('default');
  const id = uid();
  const spec = defaultSpec(['/bin/cat', '/proc/version']);
  spec.linux.cgroupsPath = `/berth-policy-test/default-${id}`;
  const created = (await c.call(CONTAINERS, 'Create', { container: { id, spec: { typeUrl: SPEC_TYPE, value: Buffer.from(JSON.stringify(spec)) } } })).container;
  t.is(created.runtime.name, 'io.containerd.berth.v2');
  t.is(binaryOf(created), 'runsc');
  t.is(created.labels['berth.io/isolation'], 'gvisor; rule=none');
  const { output, status } = await runTask(t, c, id);
  t.is(status, 0);
  t.regex(output, /^Linux version 4\.4\.0/, 'gVisor\'s kernel');
  // A container naming a runtime runs as it asked.
  t.is((await createContainer(c, 'default', uid(), ['/bin/true'])).labels['berth.io/isolation'], 'fast; rule=none');
  const start = async (text: string) => {
    const err = await t.throwsAsync(run(process.execPath, [join(REPO, 'dist', 'berthd.mjs'), '--config', configFile(t, text), '--root', join(tempDir(t), 'r'), '--state', join(tempDir(t), 's'), '--address', join(tempDir(t), 'sock')]));
    return (err as any).stderr as string;
  };
  t.regex(await start('[runtimes]\ndefault_runtime = "nope"\n'), /berthd: .*config\.toml: runtimes\.default_runtime "nope" is not a runtime class \(fast, runc, crun, gvisor, vm\)/);
  t.regex(await start('[runtimes]\ndefault_runtime = "vm"\n'), /berthd: .*config\.toml: default_runtime "vm" cannot run on this host: the guest image/);
});

test('the README\'s example policy loads as written', (t) => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const start = readme.indexOf('[runtimes]\ndefault_runtime');
  const p = loadPolicy(configFile(t, readme.slice(start, readme.indexOf('```', start))));
  t.deepEqual(p.rules.map((r) => [r.name, r.action, r.class]), [['trusted', 'allow', undefined], ['everything-else', 'require', 'gvisor']]);
  t.like(p.classes.get('sandboxed'), { isolation: 'sandbox', options: { binaryName: 'runsc' }, unusable: undefined });
});
