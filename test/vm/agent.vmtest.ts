// berth's guest agent in a real micro-VM (TCG here): one VM serves the checks in order (each boot costs seconds
// of emulated CPU), a second one is booted by a child process that is then killed.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeFrame, MessageType } from '../../api/ttrpc/frame.ts';
import { encode, REQUEST, decode, RESPONSE } from '../../api/ttrpc/codec.ts';
import { vmImage } from '../../runtimes/vm/initramfs.ts';
import { GUEST_CONFIG, kernelSource } from '../../runtimes/vm/guest-kernel.ts';
import { launchVm, type Vm } from '../../runtimes/vm/qemu.ts';
import { AgentClient } from '../../runtimes/vm/agent-client.ts';
import { buildExecPlan, buildPlan } from '../../runtimes/oci/plan.ts';
import type { Process, Spec } from '../../runtimes/oci/spec.ts';
import type { CgroupManager } from '../../runtimes/cgroups/types.ts';
import { withDefaultDevices } from '../../runtimes/cgroups/device-rules.ts';
import { compileDeviceRules } from '../../runtimes/cgroups/devices-bpf.ts';
import { defaultSpec } from '../helpers/bundle.ts';
import { makeBusyboxRootfs } from '../helpers/rootfs.ts';
import { dnsAddresses, dnsAnswer, dnsQuery, dnsQuestion } from '../helpers/dns.ts';

const skip = !kernelSource() ? 'no /usr/src/linux-source-*.tar.xz to build the guest kernel from (scripts/setup.sh installs linux-source-6.1)' : undefined;
const state = mkdtempSync('/tmp/berth-vmt-');
let vm: Vm | undefined;

// The guest mounts the share where the host serves it from, so a path below it names the same file on both sides.
const share = join(state, 'share');

test.before(async () => {
  if (skip) return;
  mkdirSync(share);
  vm = await launchVm({ stateDir: join(state, 'vm'), memoryMiB: 256, share: { hostDir: share } });
  await vm.agent.createSandbox({ shareTag: 'berth', shareMount: share, hostname: 'sandbox' });
});

const cgroupOf = (id: string) => `/sys/fs/cgroup/berth/${id}`;
const fifoOf = (id: string) => `/run/berth-agent/${id}/exec.fifo`;

/** A busybox container in the share and its init plan for the guest (born in its cgroup, no go-ahead needed). */
function guestContainer(id: string, args: string[], edit?: (spec: Spec) => void): { spec: Spec; initPlan: Buffer; rootfs: string } {
  const rootfs = makeBusyboxRootfs(join(share, id, 'rootfs'));
  const spec = defaultSpec(args) as Spec;
  spec.root!.readonly = false;
  edit?.(spec);
  const cgroup = { paths: { '': cgroupOf(id) } } as unknown as CgroupManager;
  const initPlan = buildPlan({ spec, rootfs, mode: 'create', execFifo: fifoOf(id), cgroup, cloneInto: cgroupOf(id), proceed: true });
  return { spec, initPlan, rootfs };
}

function execPlan(spec: Spec, args: string[], containerPid: number, terminal?: string): Buffer {
  const process: Process = { ...spec.process!, args, terminal: !!terminal };
  return buildExecPlan({ process, containerPid, namespaces: (spec.linux?.namespaces ?? []).map((n) => n.type), mode: 'create', ...(terminal ? { consoleSocket: terminal } : {}) });
}

test.after.always(async () => {
  await vm?.stop();
  rmSync(state, { recursive: true, force: true });
});

const it = skip ? test.serial.skip : test.serial;
if (skip) console.log(`skipped: ${skip}`);

it('the agent answers Ping with the guest kernel release, on the accelerator the launcher recorded', (t) => {
  t.is(vm!.ready.kernelRelease, vmImage().kernelRelease);
  t.deepEqual(vm!.ready.containers, []);
  t.true(vm!.accel === 'tcg' || vm!.accel === 'kvm');
  t.log(`boot to agent-ready: ${vm!.bootMs} ms on ${vm!.accel}`);
});

/** Sends raw bytes on a connection of our own (the agent serves one host at a time) and collects the frames back. */
async function rawExchange(bytes: Buffer, frames: number): Promise<{ streamId: number; type: number; data: Buffer }[]> {
  vm!.agent.close();
  await sleep(100);
  const sock = connect(vm!.agentSocket);
  const got: { streamId: number; type: number; data: Buffer }[] = [];
  let buf = Buffer.alloc(0);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${frames} frames back`)), 10_000);
    sock.on('connect', () => sock.write(bytes));
    sock.on('error', reject);
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 10 && buf.length >= 10 + buf.readUInt32BE(0)) {
        const len = buf.readUInt32BE(0);
        got.push({ streamId: buf.readUInt32BE(4), type: buf[8]!, data: buf.subarray(10, 10 + len) });
        buf = buf.subarray(10 + len);
      }
      if (got.length >= frames) { clearTimeout(timer); resolve(); }
    });
  });
  sock.destroy();
  return got;
}

it('a malformed request and an unknown method get error statuses, and the agent serves on', async (t) => {
  const request = (method: string) => Buffer.from(encode(REQUEST(), { service: 'berth.agent.v1.Agent', method, payload: Buffer.alloc(0) }));
  const bytes = Buffer.concat([
    encodeFrame(1, MessageType.Request, 0, Buffer.from([0x0a, 0xff, 0xff])), // a string field longer than the message
    encodeFrame(3, MessageType.Request, 0, request('NoSuchMethod')),
    encodeFrame(5, MessageType.Request, 0, Buffer.from(encode(REQUEST(), { service: 'other.Service', method: 'Ping' }))),
    encodeFrame(7, MessageType.Request, 0, request('CreateSandbox').subarray(0, 0)), // empty envelope
    encodeFrame(9, MessageType.Request, 0, request('Ping')),
  ]);
  const frames = await rawExchange(bytes, 5);
  const status = (id: number) => decode(RESPONSE(), frames.find((f) => f.streamId === id)!.data).status;
  t.is(status(1)?.code, 3, 'malformed envelope: INVALID_ARGUMENT');
  t.is(status(3)?.code, 12, 'unknown method: UNIMPLEMENTED');
  t.regex(status(3)?.message ?? '', /NoSuchMethod/);
  t.is(status(5)?.code, 12, 'unknown service: UNIMPLEMENTED');
  t.is(status(7)?.code, 12, 'an envelope without a method names none');
  t.falsy(status(9)?.code, 'Ping on the same connection still answered');
  // A new connection (the host reconnecting) is served too.
  const again = await AgentClient.connect(vm!.agentSocket);
  (vm as { agent: AgentClient }).agent = again;
  t.is((await again.waitReady(10_000)).kernelRelease, vmImage().kernelRelease);
});

/** Alive and not a zombie. */
function running(pid: number): boolean {
  try { return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8')); } catch { return false; }
}

it('when the process that launched a VM is killed, its QEMU and virtiofsd die too', async (t) => {
  const share = join(state, 'pdeath-share');
  mkdirSync(share, { recursive: true });
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const child = spawn(process.execPath, ['--import', 'tsx', join(dirname(fileURLToPath(import.meta.url)), 'launch-child.ts'), join(state, 'pd'), share], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c) => { out += c; if (out.includes('\n')) resolve(out); });
    child.once('exit', (code) => reject(new Error(`launcher exited (${code}) before its VM was up`)));
  });
  const pids = JSON.parse(line) as { qemu: number; virtiofsd: number };
  t.true(running(pids.qemu) && running(pids.virtiofsd), 'QEMU and virtiofsd run while their launcher lives');
  child.kill('SIGKILL');
  const deadline = Date.now() + 5000;
  while ((running(pids.qemu) || running(pids.virtiofsd)) && Date.now() < deadline) await sleep(20);
  t.false(running(pids.qemu), 'QEMU is gone');
  t.false(running(pids.virtiofsd), 'virtiofsd is gone');
  t.false(existsSync(`/proc/${pids.qemu}/exe`));
});

it('a container from a host-made plan runs in the guest: output, exit status, guest kernel, writes in the share', async (t) => {
  const agent = vm!.agent;
  const c = guestContainer('c1', ['/bin/sh', '-c', 'uname -r; hostname; echo oops >&2; echo from-the-guest > /written; exit 3']);
  const { pid } = await agent.createContainer({ containerId: 'c1', initPlan: c.initPlan, cgroupPath: cgroupOf('c1'), stdio: { stdout: true, stderr: true } });
  t.true(pid > 1);
  t.deepEqual((await agent.ping()).containers, ['c1']);
  const ref = { containerId: 'c1' };
  const out = agent.readAll(ref, 'stdout');
  const err = agent.readAll(ref, 'stderr');
  const waited = agent.waitProcess(ref);
  await agent.startContainer('c1');
  t.is((await waited).exitStatus, 3);
  t.is((await out).toString(), `${vmImage().kernelRelease}\nberth\n`);
  t.is((await err).toString(), 'oops\n');
  t.is(readFileSync(join(c.rootfs, 'written'), 'utf8'), 'from-the-guest\n', 'the guest wrote into the host directory');
  await t.throwsAsync(agent.startContainer('c1'), { message: /not created|was started/ });
  await agent.removeContainer('c1');
  t.deepEqual((await agent.ping()).containers, []);
});

const goodInterface = { name: 'eth0', mac: '02:42:ac:14:00:02', mtu: 1500, addresses: [{ address: '172.20.0.2', prefixLen: 16 }] };
const goodRoute = { destination: '', gateway: '172.20.0.1', device: 'eth0', source: '', scope: 0, metric: 0 };

it('ConfigureNetwork refuses bad input with an error naming the field, before changing anything', async (t) => {
  const agent = vm!.agent;
  const refused = async (config: Parameters<AgentClient['configureNetwork']>[0], message: RegExp) => {
    const err = await t.throwsAsync(agent.configureNetwork(config));
    t.regex(err!.message, message);
    t.regex(err!.message, /^(?!.*free network device)/, 'refused before looking at the devices');
  };
  const iface = (edit: Partial<typeof goodInterface>) => ({ interfaces: [{ ...goodInterface, ...edit }], routes: [] });
  await refused(iface({ addresses: [{ address: '172.20.0.2', prefixLen: 33 }] }), /interfaces\[0\] \(eth0\): addresses\[0\]: prefix_len 33 is more than 32 for an IPv4 address/);
  await refused(iface({ addresses: [{ address: 'fd00::2', prefixLen: 129 }] }), /prefix_len 129 is more than 128 for an IPv6 address/);
  await refused(iface({ addresses: [{ address: '300.1.1.1', prefixLen: 8 }] }), /addresses\[0\]: "300\.1\.1\.1" is not an IPv4 or IPv6 address/);
  await refused(iface({ mac: '02:42:ac:14:00' }), /interfaces\[0\] \(eth0\): mac "02:42:ac:14:00": want a unicast address/);
  await refused(iface({ mac: '01:00:5e:00:00:01' }), /mac "01:00:5e:00:00:01": want a unicast address/);
  await refused(iface({ mtu: 0 }), /interfaces\[0\] \(eth0\): mtu 0: want 68 to 65535/);
  await refused(iface({ name: 'lo' }), /interfaces\[0\]: name "lo": want a device name/);
  await refused(iface({ name: 'a/b' }), /name "a\/b"/);
  await refused({ interfaces: [goodInterface, goodInterface], routes: [] }, /interfaces\[1\]: name eth0 is taken by interfaces\[0\]/);
  await refused({ interfaces: [goodInterface], routes: [{ ...goodRoute, device: 'eth1' }] }, /routes\[0\]: device "eth1" is not one of the request's interfaces/);
  await refused({ interfaces: [goodInterface], routes: [{ ...goodRoute, gateway: '' }] }, /routes\[0\]: a default route needs a gateway/);
  await refused({ interfaces: [goodInterface], routes: [{ ...goodRoute, destination: '10.0.0.0' }] }, /routes\[0\]: destination "10\.0\.0\.0": want address\/prefix_len/);
  await refused({ interfaces: [goodInterface], routes: [{ ...goodRoute, destination: '10.0.0.0/40' }] }, /routes\[0\]: destination 10\.0\.0\.0\/40: the prefix is more than 32/);
  await refused({ interfaces: [goodInterface], routes: [{ ...goodRoute, destination: '10.0.0.0/8', gateway: 'fd00::1' }] }, /routes\[0\]: the destination, gateway and source are not all IPv4/);
});

it('ConfigureNetwork: a route the kernel refuses undoes the rest; then the device, configured, is what a container in the sandbox\'s namespace sees', async (t) => {
  const agent = vm!.agent;
  const unreachable = { ...goodRoute, destination: '10.9.0.0/16', gateway: '192.168.77.1' };
  await t.throwsAsync(agent.configureNetwork({ interfaces: [goodInterface], routes: [unreachable] }),
    { message: /routes\[0\]: adding 10\.9\.0\.0\/16 via 192\.168\.77\.1 dev eth0: Network is unreachable/ });
  // The device went back: the same request without the bad route takes it.
  await agent.configureNetwork({ interfaces: [goodInterface], routes: [goodRoute] });
  const c = guestContainer('c-net', ['/bin/sh', '-c', 'ip addr show eth0; ip route; echo ---; cat /proc/net/dev'], (spec) => {
    spec.linux!.namespaces = spec.linux!.namespaces!.map((ns) => (ns.type === 'network' ? { type: 'network', path: '/run/berth/sandbox.netns' } : ns));
  });
  await agent.createContainer({ containerId: 'c-net', initPlan: c.initPlan, cgroupPath: cgroupOf('c-net'), stdio: { stdout: true } });
  const out = agent.readAll({ containerId: 'c-net' });
  const waited = agent.waitProcess({ containerId: 'c-net' });
  await agent.startContainer('c-net');
  t.is((await waited).exitStatus, 0);
  const text = (await out).toString();
  await agent.removeContainer('c-net');
  t.regex(text, /link\/ether 02:42:ac:14:00:02 /);
  t.regex(text, /mtu 1500 /);
  t.regex(text, /inet 172\.20\.0\.2\/16 brd 172\.20\.255\.255 /);
  t.regex(text, /^default via 172\.20\.0\.1 dev eth0/m);
  const devices = text.split('---\n')[1]!.split('\n').slice(2).filter(Boolean).map((l) => l.trim().split(':')[0]).sort();
  t.deepEqual(devices, ['eth0', 'lo'], "the sandbox's namespace has loopback and the configured device");
  await t.throwsAsync(agent.configureNetwork({ interfaces: [goodInterface], routes: [] }), { message: /the guest has 0 free network device\(s\) for 1 interface\(s\)/ });
});

it('RelayDns refuses what is not a loopback address, and more than three; AnswerDnsQuery refuses an id nobody waits on', async (t) => {
  const agent = vm!.agent;
  await t.throwsAsync(agent.relayDns([]), { message: /RelayDns: no addresses/ });
  await t.throwsAsync(agent.relayDns(['10.0.0.1']), { message: /RelayDns: addresses\[0\] 10\.0\.0\.1 is not a loopback address \(127\.0\.0\.0\/8 or ::1\)/ });
  await t.throwsAsync(agent.relayDns(['127.0.0.11', 'ns.example']), { message: /addresses\[1\] ns\.example is not a loopback address/ });
  await t.throwsAsync(agent.relayDns(['fd00::1']), { message: /addresses\[0\] fd00::1 is not a loopback address/ });
  await t.throwsAsync(agent.relayDns(['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4']), { message: /RelayDns: more than 3 addresses/ });
  await t.throwsAsync(agent.answerDnsQuery(4242, dnsQuery(1, 'x.test')), { message: /AnswerDnsQuery: no query 4242 waits for an answer/ });
});

it("RelayDns: a container's queries to relayed loopback addresses, over UDP (nslookup, IPv4 and IPv6) and TCP (nc), come to the host, and its answers go back (SERVFAIL when it has none)", async (t) => {
  const agent = vm!.agent;
  await agent.relayDns(['127.0.0.11', '::1']);
  await agent.relayDns(['127.0.0.11']); // served already: kept
  const names = { 'web.berth.test': '10.1.2.3', 'six.berth.test': '10.7.8.9', 'tcp.berth.test': '10.4.5.6' };
  const asked: string[] = [];
  void (async () => {
    for (;;) {
      let q;
      try { q = await agent.readDnsQuery(); } catch { return; }
      const { name, type } = dnsQuestion(q.message);
      asked.push(`${q.server} ${q.tcp ? 'tcp' : 'udp'} ${name} ${type}`);
      // The host has no answer for fail.*: the client hears SERVFAIL rather than waiting out its timeout.
      await agent.answerDnsQuery(q.id, name.startsWith('fail.') ? Buffer.alloc(0) : dnsAnswer(q.message, names));
    }
  })();
  const c = guestContainer('c-dns', ['/bin/sh', '-c',
    'nslookup web.berth.test 127.0.0.11; nslookup six.berth.test ::1; nslookup nosuch.berth.test 127.0.0.11; nslookup fail.berth.test 127.0.0.11; echo ---; nc 127.0.0.11 53 < /query.bin | od -An -v -tx1'], (spec) => {
    spec.linux!.namespaces = spec.linux!.namespaces!.map((ns) => (ns.type === 'network' ? { type: 'network', path: '/run/berth/sandbox.netns' } : ns));
  });
  const query = dnsQuery(0x4b1d, 'tcp.berth.test');
  writeFileSync(join(c.rootfs, 'query.bin'), Buffer.concat([Buffer.from([0, query.length]), query]));
  await agent.createContainer({ containerId: 'c-dns', initPlan: c.initPlan, cgroupPath: cgroupOf('c-dns'), stdio: { stdout: true } });
  const out = agent.readAll({ containerId: 'c-dns' });
  const waited = agent.waitProcess({ containerId: 'c-dns' });
  await agent.startContainer('c-dns');
  await waited;
  const [udp, tcp] = (await out).toString().split('---\n') as [string, string];
  await agent.removeContainer('c-dns');
  t.regex(udp, /Name:\s+web\.berth\.test\s+Address:\s+10\.1\.2\.3/, udp);
  t.regex(udp, /Name:\s+six\.berth\.test\s+Address:\s+10\.7\.8\.9/, udp);
  t.regex(udp, /can't find nosuch\.berth\.test: (Non-existent domain|NXDOMAIN)/, udp);
  t.regex(udp, /can't find fail\.berth\.test: SERVFAIL/, udp);
  const answer = Buffer.from(tcp.replace(/\s+/g, ''), 'hex');
  t.is(answer.readUInt16BE(0), answer.length - 2, 'the answer comes with its TCP length prefix');
  t.is(dnsQuestion(answer.subarray(2)).id, 0x4b1d);
  t.deepEqual(dnsAddresses(answer.subarray(2)), ['10.4.5.6']);
  t.true(asked.includes('127.0.0.11 udp web.berth.test 1'), asked.join('; '));
  t.true(asked.includes('::1 udp six.berth.test 1'), asked.join('; '));
  t.true(asked.includes('127.0.0.11 tcp tcp.berth.test 1'), asked.join('; '));
});

/** How much of the guest's memory QEMU holds resident (KiB): the Rss of its memfd mapping. */
function guestResidentKiB(qemuPid: number): number {
  const smaps = readFileSync(`/proc/${qemuPid}/smaps`, 'utf8').split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/);
  const mapping = smaps.find((m) => m.split('\n')[0]!.includes('memfd:memory-backend'));
  return Number(mapping?.match(/^Rss:\s+(\d+)/m)?.[1] ?? NaN);
}

it('memory a container touched and freed goes back to the host: QEMU does not keep it resident', async (t) => {
  const agent = vm!.agent;
  const c = guestContainer('c-mem', ['/bin/sh', '-c', 'dd if=/dev/zero of=/dev/shm/big bs=1M count=32 2>/dev/null && sleep 2; rm /dev/shm/big']);
  await agent.createContainer({ containerId: 'c-mem', initPlan: c.initPlan, cgroupPath: cgroupOf('c-mem') });
  const before = guestResidentKiB(vm!.pid);
  const waited = agent.waitProcess({ containerId: 'c-mem' });
  await agent.startContainer('c-mem');
  let peak = before;
  let done = false;
  void waited.finally(() => { done = true; });
  while (!done) { peak = Math.max(peak, guestResidentKiB(vm!.pid)); await sleep(100); }
  t.is((await waited).exitStatus, 0);
  await agent.removeContainer('c-mem');
  t.true(peak - before >= 24 * 1024, `the 32 MiB file was resident in QEMU (before ${before} KiB, peak ${peak} KiB)`);
  // The guest reports free pages after a short delay (2 s in the kernel), then QEMU drops them.
  let now = peak;
  for (const deadline = Date.now() + 20_000; Date.now() < deadline && peak - now < 24 * 1024; await sleep(250)) now = guestResidentKiB(vm!.pid);
  t.true(peak - now >= 24 * 1024, `freed, it left QEMU (peak ${peak} KiB, now ${now} KiB)`);
});

it('exec with stdin, a terminal, signals, list, update, stats, pause and resume', async (t) => {
  const agent = vm!.agent;
  const c = guestContainer('c2', ['/bin/sleep', '1000']);
  const { pid } = await agent.createContainer({ containerId: 'c2', initPlan: c.initPlan, cgroupPath: cgroupOf('c2') });
  await agent.startContainer('c2');
  t.deepEqual(await agent.listProcesses('c2'), [pid]);

  // stdin through to the process and its end.
  const e1 = { containerId: 'c2', execId: 'e1' };
  await agent.execProcess({ ...e1, execPlan: execPlan(c.spec, ['/bin/sh', '-c', 'cat; echo done'], pid), stdio: { stdin: true, stdout: true } });
  const out = agent.readAll(e1);
  t.is(await agent.writeStdin(e1, Buffer.from('hello\n')), 6);
  await agent.closeStdin(e1);
  t.is((await out).toString(), 'hello\ndone\n');
  t.is((await agent.waitProcess(e1)).exitStatus, 0);
  await t.throwsAsync(agent.execProcess({ ...e1, execPlan: execPlan(c.spec, ['/bin/true'], pid) }), { message: /already exists/ });

  // A terminal: the process's stdio is a pty whose size the host sets.
  const tty = { containerId: 'c2', execId: 'tty' };
  await agent.execProcess({ ...tty, terminal: true, execPlan: execPlan(c.spec, ['/bin/sh', '-c', 'read x; tty; stty size; echo got $x'], pid, '/run/berth-agent/c2/tty.console') });
  const ttyOut = agent.readAll(tty);
  await agent.ttyWinResize({ ...tty, rows: 33, columns: 101 });
  await agent.writeStdin(tty, Buffer.from('line\n'));
  t.is((await agent.waitProcess(tty)).exitStatus, 0);
  const screen = (await ttyOut).toString();
  t.regex(screen, /\/dev\/pts\/\d+/);
  t.regex(screen, /33 101/);
  t.regex(screen, /got line/);

  // Update writes cgroup files; stats returns them raw.
  await agent.updateContainer('c2', { writes: [{ file: 'memory.max', value: '67108864' }, { file: 'pids.max', value: '50' }] });
  const stats = await agent.statsContainer('c2');
  t.is(stats.get('memory.max')?.toString().trim(), '67108864');
  t.is(stats.get('pids.max')?.toString().trim(), '50');
  t.regex(stats.get('cpu.stat')?.toString() ?? '', /usage_usec \d+/);
  await t.throwsAsync(agent.updateContainer('c2', { writes: [{ file: '../../cgroup.procs', value: '1' }] }), { message: /names no cgroup file/ });

  // Pause: a ticking process stops ticking until resumed.
  const ticker = { containerId: 'c2', execId: 'ticker' };
  await agent.execProcess({ ...ticker, execPlan: execPlan(c.spec, ['/bin/sh', '-c', 'while :; do echo t; sleep 0.05; done'], pid), stdio: { stdout: true } });
  t.true((await agent.readStdout(ticker)).length > 0);
  const listed = await agent.listProcesses('c2');
  t.true(listed.includes(pid) && listed.length >= 2, `sleep and the ticker: ${listed}`);
  await agent.pauseContainer('c2');
  // What was written before the freeze may still come; then nothing.
  for (let i = 0; i < 5; i++) if (!(await agent.readStdout(ticker, 65536, { timeoutMs: 400 }).catch(() => undefined))) break;
  await t.throwsAsync(agent.readStdout(ticker, 65536, { timeoutMs: 800 }), { message: /deadline/ }, 'no output while paused');
  await agent.resumeContainer('c2');
  t.true((await agent.readStdout(ticker)).length > 0, 'output again once resumed');

  // Signals: one process, then every process of the container.
  await agent.signalProcess({ ...ticker, signal: 9 });
  t.is((await agent.waitProcess(ticker)).exitStatus, 137);
  await agent.signalProcess({ containerId: 'c2', signal: 9, all: true });
  t.is((await agent.waitProcess({ containerId: 'c2' })).exitStatus, 137);
  await t.throwsAsync(agent.signalProcess({ containerId: 'c2', signal: 15 }), { message: /not running/ });
  await agent.removeContainer('c2');
});

it('bad requests get clear errors: unknown container, bad plan, terminal without a console', async (t) => {
  const agent = vm!.agent;
  await t.throwsAsync(agent.startContainer('nope'), { message: /container nope not found/ });
  await t.throwsAsync(agent.waitProcess({ containerId: 'nope' }), { message: /not found/ });
  await t.throwsAsync(agent.createContainer({ containerId: 'bad', initPlan: Buffer.from('version\0' + '9'), cgroupPath: cgroupOf('bad') }), { message: /plan/ });
  await t.throwsAsync(agent.createContainer({ containerId: 'bad', initPlan: Buffer.from('version\x001\x002\x00'), cgroupPath: cgroupOf('bad') }), { message: /version|plan/ });
  const c = guestContainer('c4', ['/bin/true']);
  await t.throwsAsync(agent.createContainer({ containerId: 'c4', initPlan: c.initPlan, terminal: true, cgroupPath: cgroupOf('c4') }), { message: /console socket/ });
  await t.throwsAsync(agent.createContainer({ containerId: 'x/y', initPlan: c.initPlan, cgroupPath: cgroupOf('c4') }), { message: /container_id/ });
  for (const cgroupPath of ['/sys/fs/cgroup/', '/sys/fs/cgroup/a/..', '/sys/fs/cgroup//x', '/tmp/x']) {
    await t.throwsAsync(agent.createContainer({ containerId: 'c4', initPlan: c.initPlan, cgroupPath }), { message: /not below \/sys\/fs\/cgroup/ }, cgroupPath);
  }
  const missing = guestContainer('c5', ['/no/such/program']);
  await t.throwsAsync(agent.createContainer({ containerId: 'c5', initPlan: missing.initPlan, cgroupPath: cgroupOf('c5') }), { message: /no\/such\/program|not found|no such file/i });
  const left = (await agent.ping()).containers;
  for (const id of ['bad', 'c4', 'c5']) t.false(left.includes(id), `failed creation of ${id} left nothing behind`);
});

// Device programs need CONFIG_CGROUP_BPF in the guest kernel, built from this config.
const noCgroupBpf = !/^CONFIG_CGROUP_BPF=y$/m.test(readFileSync(GUEST_CONFIG, 'utf8'));
const itBpf = noCgroupBpf ? test.serial.skip : it;
if (noCgroupBpf) console.log(`skipped device programs: ${GUEST_CONFIG} has no CONFIG_CGROUP_BPF=y`);

/** Reads a process's stdout until `text` has come. */
async function readUntil(agent: AgentClient, ref: { containerId: string; execId?: string }, text: string): Promise<string> {
  let out = '';
  while (!out.includes(text)) {
    const chunk = await agent.readStdout(ref, 65536, { timeoutMs: 20_000 });
    if (!chunk.length) break;
    out += chunk.toString();
  }
  return out;
}

itBpf("device rules: the host's program, attached before the init runs, refuses /dev/full but not /dev/null, to execs too; an update replaces it", async (t) => {
  const agent = vm!.agent;
  // Deny all, then the defaults every container gets, but none for /dev/full: listed, its node is made, its use refused.
  const denyFull = compileDeviceRules(withDefaultDevices({ devices: [{ allow: false, access: 'rwm' }] }, [{ path: '/dev/full' }]).devices!);
  const check = '(echo x > /dev/full) 2>&1; echo x > /dev/null && echo null-ok';
  const c = guestContainer('c7', ['/bin/sh', '-c', `${check}; exec sleep 1000`]);
  const { pid } = await agent.createContainer({ containerId: 'c7', initPlan: c.initPlan, cgroupPath: cgroupOf('c7'), stdio: { stdout: true }, deviceProgram: denyFull });
  await agent.startContainer('c7');
  const init = await readUntil(agent, { containerId: 'c7' }, 'null-ok');
  t.regex(init, /\/dev\/full: Operation not permitted/, init);
  t.regex(init, /null-ok/);
  const exec = async (execId: string) => {
    const ref = { containerId: 'c7', execId };
    await agent.execProcess({ ...ref, execPlan: execPlan(c.spec, ['/bin/sh', '-c', check], pid), stdio: { stdout: true } });
    const out = (await agent.readAll(ref)).toString();
    await agent.waitProcess(ref);
    return out;
  };
  t.regex(await exec('e1'), /\/dev\/full: Operation not permitted\nnull-ok/, "an exec is in the container's cgroup, under its rules");
  // A bad program is refused and the rules stay.
  await t.throwsAsync(agent.updateContainer('c7', { deviceProgram: Buffer.from('9500000000000000', 'hex') }), { message: /UpdateContainer: device program: loading it: [^:]+: verifier: .*R0 !read_ok/ });
  t.regex(await exec('e2'), /Operation not permitted/);
  const allowFull = compileDeviceRules(withDefaultDevices({ devices: [{ allow: false, access: 'rwm' }] }).devices!);
  await agent.updateContainer('c7', { deviceProgram: allowFull });
  const after = await exec('e3');
  t.regex(after, /No space left on device\nnull-ok/, `the old program is detached, /dev/full is writable: ${after}`);
  await agent.removeContainer('c7');
});

itBpf('device programs that are malformed, too long or refused by the verifier fail CreateContainer with the reason, leaving nothing', async (t) => {
  const agent = vm!.agent;
  const c = guestContainer('c8', ['/bin/true']);
  const create = (deviceProgram: Buffer, cgroupPath = cgroupOf('c8')) => agent.createContainer({ containerId: 'c8', initPlan: c.initPlan, cgroupPath, deviceProgram });
  await t.throwsAsync(create(Buffer.alloc(12)), { message: /device program: 12 bytes are not 1 to 4096 eBPF instructions of 8 bytes/ });
  await t.throwsAsync(create(Buffer.alloc(4097 * 8)), { message: /device program: 32776 bytes are not 1 to 4096 eBPF instructions/ });
  const refused = await t.throwsAsync(create(Buffer.from('9500000000000000', 'hex')), { message: /CreateContainer: device program: loading it: [^:]+: verifier: .*R0 !read_ok/ });
  t.log(refused?.message);
  await t.throwsAsync(create(compileDeviceRules([]), ''), { message: /a device_program needs a cgroup_path/ });
  t.false((await agent.ping()).containers.includes('c8'));
});

it('an OOM kill in a container is reported by GetOOMEvent', async (t) => {
  const agent = vm!.agent;
  const c = guestContainer('c6', ['/bin/sh', '-c', 'x=$(head -c 67108864 /dev/zero | tr "\\000" a); echo survived']);
  const event = agent.getOOMEvent();
  await agent.createContainer({ containerId: 'c6', initPlan: c.initPlan, cgroupPath: cgroupOf('c6'), stdio: { stdout: true } });
  await agent.updateContainer('c6', { writes: [{ file: 'memory.max', value: String(16 << 20) }, { file: 'memory.swap.max', value: '0' }] });
  await agent.startContainer('c6');
  t.is(await event, 'c6');
  t.not((await agent.readAll({ containerId: 'c6' })).toString(), 'survived\n');
  t.regex((await agent.statsContainer('c6')).get('memory.events')?.toString() ?? '', /oom_kill [1-9]/);
  await agent.removeContainer('c6');
});

it('random payloads for every method are answered with statuses, and the agent serves on', async (t) => {
  const methods = ['Ping', 'CreateSandbox', 'CreateContainer', 'StartContainer', 'RemoveContainer', 'ExecProcess', 'SignalProcess', 'WaitProcess',
    'ListProcesses', 'UpdateContainer', 'StatsContainer', 'PauseContainer', 'ResumeContainer', 'WriteStdin', 'ReadStdout', 'ReadStderr',
    'CloseStdin', 'TtyWinResize', 'ConfigureNetwork', 'RelayDns', 'AnswerDnsQuery'];
  // A deterministic generator: the same bytes every run.
  let seed = 42;
  const rand = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  const frames: Buffer[] = [];
  let id = 1;
  for (const method of methods) {
    for (let i = 0; i < 8; i++) {
      const payload = Buffer.from(Array.from({ length: rand() % 40 }, () => rand() & 0xff));
      frames.push(encodeFrame(id, MessageType.Request, 0, Buffer.from(encode(REQUEST(), { service: 'berth.agent.v1.Agent', method, payload }))));
      id += 2;
    }
  }
  frames.push(encodeFrame(id, MessageType.Request, 0, Buffer.from(encode(REQUEST(), { service: 'berth.agent.v1.Agent', method: 'Ping' }))));
  // Long-polls on processes that do not exist are refused at once, so every request gets its answer.
  const got = await rawExchange(Buffer.concat(frames), frames.length);
  t.is(new Set(got.map((f) => f.streamId)).size, frames.length);
  const again = await AgentClient.connect(vm!.agentSocket);
  (vm as { agent: AgentClient }).agent = again;
  t.is((await again.waitReady(10_000)).kernelRelease, vmImage().kernelRelease);
});

it('the launcher refuses bad sizes and paths before starting anything', async (t) => {
  await t.throwsAsync(launchVm({ stateDir: join(state, 'bad'), memoryMiB: 10 }), { message: /memory 10 MiB: want an integer of at least 64/ });
  await t.throwsAsync(launchVm({ stateDir: join(state, 'bad'), cpus: 0 }), { message: /cpus 0/ });
  await t.throwsAsync(launchVm({ stateDir: join(state, 'bad'), tcgCacheMiB: 0.5 }), { message: /tcgCacheMiB/ });
  await t.throwsAsync(launchVm({ stateDir: join(state, 'x'.repeat(120)) }), { message: /too long for a unix socket path/ });
});

it('DestroySandbox powers the guest off: QEMU exits', async (t) => {
  await vm!.agent.destroySandbox();
  const exited = await Promise.race([vm!.exited.then(() => true), sleep(15_000).then(() => false)]);
  t.true(exited, 'QEMU exited after the power-off');
});
