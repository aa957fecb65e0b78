// berthd's HTTP/2 server (api/h2-server.ts) against hostile clients, one attack per test from one connection
// (test/helpers/h2-peer.ts): while it runs, a well-behaved client's unary calls keep answering quickly, the
// daemon's memory (a berthd process: its VmRSS) stays bounded, and the attacker is stopped with the code
// RFC 9113 gives (GOAWAY, a reset, or an HTTP answer). The limits are in api/h2-limits.ts. The timeouts and
// stalled streams are tried on a server in the test process (the timeouts made short).
import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { END_HEADERS, END_STREAM, FrameType, SETTINGS_INITIAL_WINDOW_SIZE, frame, frame32, headerFrames, settingsFrame } from '../../api/h2-frames.ts';
import { serverStream, type ServerCall } from '../../api/grpc.ts';
import { GrpcServer } from '../../api/grpc-server.ts';
import { H2ServerSession } from '../../api/h2-server.ts';
import { HpackDecoder, encodeHeaders } from '../../api/hpack.ts';
import { startDaemonProcess } from '../daemon/helpers.ts';
import { RawPeer, settingsOf } from '../helpers/h2-peer.ts';
import { tempDir } from '../helpers/tmp.ts';

// RFC 9113's codes and settings, as the RFC numbers them.
const NO_ERROR = 0, REFUSED_STREAM = 7, CANCEL = 8, COMPRESSION_ERROR = 9, ENHANCE_YOUR_CALM = 11;
const SETTINGS_MAX_CONCURRENT_STREAMS = 3, SETTINGS_MAX_HEADER_LIST_SIZE = 6;
const LEASES_LIST = '/containerd.services.leases.v1.Leases/List';
const MiB = 1 << 20;

/** A gRPC request's headers, HPACK-encoded (literals only: the same bytes serve any stream). */
const REQUEST = encodeHeaders([[':method', 'POST'], [':scheme', 'http'], [':path', LEASES_LIST], [':authority', 'localhost'],
  ['content-type', 'application/grpc'], ['te', 'trailers'], ['containerd-namespace', 'default']]);

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

interface Outcome { median: number; calls: number; rssGrowth: number }

/**
 * Runs `attack` against a fresh berthd process while a second client calls Leases.List in a loop and the
 * daemon's RSS is sampled. The loop runs as long as the attack, and for 20 calls at least, a call every 5 ms.
 */
async function underAttack(t: ExecutionContext, attack: (path: string) => Promise<void>): Promise<Outcome> {
  t.timeout(50_000);
  const d = await startDaemonProcess(t);
  const pid = d.child.pid!;
  const client = d.client('default');
  for (let i = 0; i < 20; i++) await client.call('containerd.services.leases.v1.Leases', 'List');
  const baseline = rssOf(pid);
  let peak = baseline;
  const sampler = setInterval(() => { peak = Math.max(peak, rssOf(pid)); }, 20);
  let attacking = true;
  const attacked = attack(d.address).finally(() => { attacking = false; });
  const times: number[] = [];
  while (attacking || times.length < 20) {
    const start = performance.now();
    const answered = await Promise.race([client.call('containerd.services.leases.v1.Leases', 'List').then(() => true), new Promise((r) => setTimeout(r, 10_000, false))]);
    times.push(answered ? performance.now() - start : Infinity);
    if (!answered) break; // stalled: no need to wait for more
    await new Promise((r) => setTimeout(r, 5)); // a client that calls now and then, not one that loads the daemon itself
  }
  await attacked;
  clearInterval(sampler);
  peak = Math.max(peak, rssOf(pid));
  times.sort((a, b) => a - b);
  const outcome = { median: times[times.length >> 1]!, calls: times.length, rssGrowth: peak - baseline };
  t.log(`second client: median ${outcome.median.toFixed(2)} ms over ${outcome.calls} calls; berthd RSS +${(outcome.rssGrowth / MiB).toFixed(1)} MiB`);
  return outcome;
}

function holds(t: ExecutionContext, o: Outcome): void {
  t.true(o.median < 20, `the second client's median was ${o.median} ms`);
  t.true(o.rssGrowth < 64 * MiB, `berthd's RSS grew by ${(o.rssGrowth / MiB).toFixed(1)} MiB`);
}

test.serial('repeated header fields: a 63 KiB block of one field repeated is answered 431, quickly; bad HPACK is COMPRESSION_ERROR', async (t) => {
  let peer!: RawPeer;
  const o = await underAttack(t, async (path) => {
    peer = await RawPeer.open(path);
    // One field into the dynamic table, then 1-byte references to it (index 62): 64 Ki fields per block.
    const first = Buffer.concat([Buffer.from([0x40, 3, ...Buffer.from('x-a'), 1, 0x62]), Buffer.alloc(63 * 1024, 0xbe)]);
    for (let i = 0; i < 8; i++) {
      const block = i === 0 ? first : Buffer.alloc(63 * 1024, 0xbe);
      await peer.write(Buffer.concat(headerFrames(2 * i + 1, block, true, 16_384)));
    }
    await peer.until(() => peer.framesOf(FrameType.Headers).length >= 8 || peer.closed, 30_000);
    await peer.write(frame(FrameType.Headers, END_HEADERS | END_STREAM, 101, Buffer.from([0xff, 0xff, 0x7f]))); // index 16 510
    await peer.until(() => peer.closed, 5000);
  });
  holds(t, o);
  const answers = peer.framesOf(FrameType.Headers).map((f) => new HpackDecoder().decode(f.payload));
  t.is(answers.length, 8);
  for (const a of answers) t.deepEqual(a, [[':status', '431']]);
  t.is(peer.goAway, COMPRESSION_ERROR);
  t.regex(peer.goAwayReason!, /index 16510 does not exist/);
});

test.serial('CONTINUATION flood: empty CONTINUATION frames without end are cut off with ENHANCE_YOUR_CALM', async (t) => {
  let peer!: RawPeer;
  const o = await underAttack(t, async (path) => {
    peer = await RawPeer.open(path);
    await peer.write(frame(FrameType.Headers, 0, 1, REQUEST));
    const empty = frame(FrameType.Continuation, 0, 1);
    await peer.pump(() => empty, (24 * MiB) / 9);
    await peer.until(() => peer.closed, 5000);
  });
  holds(t, o);
  t.is(peer.goAway, ENHANCE_YOUR_CALM);
  t.regex(peer.goAwayReason!, /CONTINUATION/);
});

test.serial('PING and SETTINGS flood from a peer that never reads: cut off with ENHANCE_YOUR_CALM, memory bounded', async (t) => {
  let peer!: RawPeer;
  let sent = 0;
  const o = await underAttack(t, async (path) => {
    peer = await RawPeer.open(path, { read: false });
    const ping = frame(FrameType.Ping, 0, 0, Buffer.alloc(8, 1));
    const settings = settingsFrame([]);
    sent = await peer.pump((i) => (i % 2 ? settings : ping), (64 * MiB) / 13);
    peer.read(); // now it reads: the GOAWAY is at the end of what it did not read
    await peer.until(() => peer.closed, 10_000);
  });
  holds(t, o);
  t.true(sent < (64 * MiB) / 13, 'the server stopped taking frames');
  t.is(peer.goAway, ENHANCE_YOUR_CALM);
  t.regex(peer.goAwayReason!, /does not read/);
});

test.serial('SETTINGS_INITIAL_WINDOW_SIZE repeated in large SETTINGS frames, with many streams open: ENHANCE_YOUR_CALM', async (t) => {
  let peer!: RawPeer;
  const o = await underAttack(t, async (path) => {
    peer = await RawPeer.open(path);
    await peer.pump((i) => frame(FrameType.Headers, END_HEADERS, 2 * i + 1, REQUEST), 1000);
    const big = (v: number) => settingsFrame(Array.from({ length: 2730 }, (_, i): [number, number] => [SETTINGS_INITIAL_WINDOW_SIZE, v + (i % 2)]));
    const frames = [big(65_535), big(1 << 20)];
    await peer.pump((i) => frames[i % 2]!, 300);
    await peer.until(() => peer.closed, 5000);
  });
  holds(t, o);
  t.is(peer.goAway, ENHANCE_YOUR_CALM);
  t.regex(peer.goAwayReason!, /settings in one SETTINGS frame/);
});

test.serial('rapid reset: streams opened and reset at once get GOAWAY ENHANCE_YOUR_CALM after a burst', async (t) => {
  let peer!: RawPeer;
  let pairs = 0;
  const o = await underAttack(t, async (path) => {
    peer = await RawPeer.open(path);
    const id = (i: number) => 2 * i + 1;
    pairs = await peer.pump((i) => Buffer.concat([frame(FrameType.Headers, END_HEADERS | END_STREAM, id(i), REQUEST), frame32(FrameType.RstStream, id(i), CANCEL)]), 100_000);
    await peer.until(() => peer.closed, 5000);
  });
  holds(t, o);
  t.true(pairs < 100_000, 'the server stopped taking streams');
  t.is(peer.goAway, ENHANCE_YOUR_CALM);
  t.regex(peer.goAwayReason!, /reset before they were answered/);
});

test.serial('MAX_CONCURRENT_STREAMS is advertised; streams past it are refused, and a peer that keeps opening is cut off', async (t) => {
  let peer!: RawPeer;
  const o = await underAttack(t, async (path) => {
    peer = await RawPeer.open(path);
    await peer.pump((i) => frame(FrameType.Headers, END_HEADERS, 2 * i + 1, REQUEST), 30_000);
    await peer.until(() => peer.closed, 5000);
  });
  holds(t, o);
  const settings = settingsOf(peer.framesOf(FrameType.Settings).find((f) => !(f.flags & 1))!);
  t.is(settings.get(SETTINGS_MAX_CONCURRENT_STREAMS), 1000);
  t.is(settings.get(SETTINGS_MAX_HEADER_LIST_SIZE), 64 << 10);
  const refused = peer.framesOf(FrameType.RstStream).filter((f) => f.payload.readUInt32BE(0) === REFUSED_STREAM);
  t.true(refused.length > 0);
  t.true(refused.every((f) => f.stream > 2 * 1000), 'the first 1000 streams were served');
  t.is(peer.goAway, ENHANCE_YOUR_CALM);
  t.regex(peer.goAwayReason!, /refused, over the 1000 open at once/);
});

test.serial('partial messages on many streams: past 20 MiB held for one connection, calls end RESOURCE_EXHAUSTED', async (t) => {
  let peer!: RawPeer;
  const o = await underAttack(t, async (path) => {
    peer = await RawPeer.open(path);
    const partial = Buffer.alloc(15 * MiB);
    partial.writeUInt32BE(16 * MiB, 1); // a 16 MiB message, 15 MiB of it sent
    for (let i = 0; i < 6; i++) { // 90 MiB held without a bound
      await peer.write(frame(FrameType.Headers, END_HEADERS, 2 * i + 1, REQUEST));
      await peer.sendData(2 * i + 1, partial);
    }
  });
  holds(t, o);
  const statuses = peer.framesOf(FrameType.Headers).map((f) => new Map(new HpackDecoder().decode(f.payload)).get('grpc-status'));
  t.true(statuses.length >= 4 && statuses.every((s) => s === '8'), `statuses: ${statuses.join(',')}`);
});

test.serial('a peer that never completes the handshake is dropped; one with no stream open is sent GOAWAY when idle; an open stream is not', async (t) => {
  const path = join(tempDir(t, 'h2a-'), 's.sock');
  const server = createServer((socket) => { new H2ServerSession(socket, { handshakeTimeoutMs: 300, idleTimeoutMs: 300 }); });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.teardown(() => new Promise<void>((resolve) => { server.close(() => resolve()); }));
  const bare = connect(path); // says nothing
  const bareClosed = new Promise<number>((resolve) => { const start = performance.now(); bare.on('close', () => resolve(performance.now() - start)); bare.on('error', () => undefined); bare.resume(); });
  const idle = await RawPeer.open(path);
  const busy = await RawPeer.open(path);
  await busy.write(frame(FrameType.Headers, END_HEADERS, 1, REQUEST));
  t.true(await idle.until(() => idle.closed, 3000), 'the idle connection was closed');
  t.is(idle.goAway, NO_ERROR);
  t.true((await bareClosed) < 3000);
  await new Promise((r) => setTimeout(r, 700));
  t.false(busy.closed, 'a connection with a stream open stays');
  busy.destroy();
});

test.serial('streams stalled at a zero window: handlers stay one message ahead, and past 64 MiB queued a connection\'s streams are reset', async (t) => {
  const path = join(tempDir(t, 'h2a-'), 's.sock');
  const server = new GrpcServer();
  const written = new Map<ServerCall, number>();
  const chunk = Buffer.alloc(256 << 10, 1);
  server.addService('containerd.services.content.v1.Content', { Read: serverStream(async (_req, call) => {
    written.set(call, 0);
    while (!call.cancelled) {
      written.set(call, written.get(call)! + 1);
      if (!call.write({ offset: 0, data: chunk })) await new Promise((resolve) => call.once('drain', resolve));
    }
  }) });
  await server.listen(path);
  t.teardown(() => server.close(100));
  const peer = await RawPeer.open(path);
  await peer.write(settingsFrame([[SETTINGS_INITIAL_WINDOW_SIZE, 0]])); // it grants nothing, and reads nothing of it
  const read = encodeHeaders([[':method', 'POST'], [':scheme', 'http'], [':path', '/containerd.services.content.v1.Content/Read'], [':authority', 'l'],
    ['content-type', 'application/grpc'], ['containerd-namespace', 'default']]);
  const streams = 80;
  for (let i = 0; i < streams; i++) await peer.write(Buffer.concat([frame(FrameType.Headers, END_HEADERS, 2 * i + 1, read), frame(FrameType.Data, END_STREAM, 2 * i + 1, Buffer.alloc(5))]));
  await peer.until(() => written.size === streams && peer.framesOf(FrameType.RstStream).length > 0, 10_000);
  await new Promise((r) => setTimeout(r, 200));
  const most = Math.max(...written.values());
  t.true(most <= (1 << 20) / chunk.length + 2, `a handler wrote ${most} messages to a stream with no window`);
  const resets = peer.framesOf(FrameType.RstStream).filter((f) => f.payload.readUInt32BE(0) === ENHANCE_YOUR_CALM);
  t.true(resets.length > 0 && resets.length < streams, `${resets.length} streams reset`);
  peer.destroy();
});
