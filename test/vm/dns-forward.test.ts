// berth-dns-forward (native/dns_forward.c), which asks a vm sandbox's loopback nameserver from QEMU's network
// namespace: here from a network namespace of the test's own, with a DNS server on 127.0.0.11 in it.
import test from 'ava';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { nativeBinary } from '../../api/native-binary.ts';
import { dnsAddresses, dnsQuery, dnsQuestion } from '../helpers/dns.ts';

const NS = `berth-dnsfwd-${process.pid}`;
const NS_PATH = `/run/netns/${NS}`;
let server: ChildProcess | undefined;

test.before(async () => {
  execFileSync('ip', ['netns', 'add', NS]);
  execFileSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  server = spawn('ip', ['netns', 'exec', NS, process.execPath, '--import', 'tsx', new URL('../helpers/dns-server.ts', import.meta.url).pathname,
    '127.0.0.11', JSON.stringify({ 'web.test': '10.1.2.3', 'tcp.test': '10.4.5.6' })], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await once(server.stdout!, 'data') as [Buffer];
  if (!line.toString().includes('ready')) throw new Error(`the DNS server said ${line}`);
});

test.after.always(() => {
  server?.kill('SIGKILL');
  execFileSync('ip', ['netns', 'delete', NS]);
});

function frame(id: number, server: string, message: Buffer, tcp = false): Buffer {
  const head = Buffer.alloc(10);
  head.writeUInt32BE(6 + server.length + message.length, 0);
  head.writeUInt32BE(id, 4);
  head[8] = tcp ? 1 : 0;
  head[9] = server.length;
  return Buffer.concat([head, Buffer.from(server), message]);
}

/** Runs the forwarder on `input` and collects its answers (id → message) and how it ended. */
async function forward(input: Buffer, nsPath = NS_PATH): Promise<{ answers: Map<number, Buffer>; code: number | null; stderr: string }> {
  const child = spawn(nativeBinary('berth-dns-forward'), [nsPath], { stdio: ['pipe', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => chunks.push(c));
  child.stderr.on('data', (c: Buffer) => { stderr += c; });
  child.stdin.on('error', () => undefined);
  child.stdin.end(input);
  const [code] = await once(child, 'close') as [number | null];
  const out = Buffer.concat(chunks);
  const answers = new Map<number, Buffer>();
  for (let off = 0; off + 4 <= out.length; off += 4 + out.readUInt32BE(off)) answers.set(out.readUInt32BE(off + 4), out.subarray(off + 8, off + 4 + out.readUInt32BE(off)));
  return { answers, code, stderr };
}

test('questions over UDP and TCP, many at once, get their own answers from the server in the namespace', async (t) => {
  const many = Array.from({ length: 20 }, (_, i) => frame(100 + i, '127.0.0.11', dnsQuery(0x1000 + i, 'web.test')));
  const { answers, code } = await forward(Buffer.concat([...many, frame(7, '127.0.0.11', dnsQuery(0x77, 'tcp.test'), true)]));
  t.is(code, 0, 'it ends with its input');
  for (let i = 0; i < 20; i++) {
    const a = answers.get(100 + i)!;
    t.is(dnsQuestion(a).id, 0x1000 + i);
    t.deepEqual(dnsAddresses(a), ['10.1.2.3']);
  }
  t.deepEqual(dnsAddresses(answers.get(7)!), ['10.4.5.6']);
});

test('a question nobody answers gets an empty answer: no server on the address, a server that stays silent, no IP address', async (t) => {
  const started = Date.now();
  const { answers } = await forward(Buffer.concat([
    frame(1, '127.0.0.12', dnsQuery(1, 'web.test')),
    frame(2, '127.0.0.11', dnsQuery(2, 'silent.test')),
    frame(3, 'ns.example', dnsQuery(3, 'web.test')),
    frame(4, '127.0.0.12', dnsQuery(4, 'web.test'), true),
  ]));
  t.deepEqual([...answers.keys()].sort(), [1, 2, 3, 4]);
  for (const a of answers.values()) t.is(a.length, 0);
  t.true(Date.now() - started < 8000, 'the silent server is given up on in bounded time');
});

test('a malformed frame or a namespace that is not there ends it with a message naming the problem', async (t) => {
  const short = Buffer.alloc(8);
  short.writeUInt32BE(2, 0);
  const bad = await forward(short);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /berth-dns-forward: a malformed query frame/);
  const gone = await forward(Buffer.alloc(0), '/run/netns/berth-no-such-ns');
  t.is(gone.code, 1);
  t.regex(gone.stderr, /entering the network namespace \/run\/netns\/berth-no-such-ns: No such file or directory/);
});
