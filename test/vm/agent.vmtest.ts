// berth's guest agent in a real micro-VM (TCG here): one VM serves the checks in order (each boot costs seconds
// of emulated CPU), a second one is booted by a child process that is then killed.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeFrame, MessageType } from '../../api/ttrpc/frame.ts';
import { encode, REQUEST, decode, RESPONSE } from '../../api/ttrpc/codec.ts';
import { cloudKernel, vmImage } from '../../runtimes/vm/initramfs.ts';
import { launchVm, type Vm } from '../../runtimes/vm/qemu.ts';
import { AgentClient } from '../../runtimes/vm/agent-client.ts';

const skip = !cloudKernel() ? 'no Debian cloud kernel in /boot (scripts/setup.sh installs linux-image-cloud-amd64)' : undefined;
const state = mkdtempSync('/tmp/berth-vmt-');
let vm: Vm | undefined;

test.before(async () => {
  if (skip) return;
  vm = await launchVm({ stateDir: join(state, 'vm'), memoryMiB: 256 });
});

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
