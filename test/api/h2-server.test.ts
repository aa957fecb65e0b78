// Our HTTP/2 server (api/h2-server.ts) against node:http2's client, and against raw bytes: flow control both
// ways with small windows, PING, a bad preface, a reset from the client, and a whole answer in one write.
import test from 'ava';
import http2 from 'node:http2';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { H2ServerSession, type H2ServerStream } from '../../api/h2-server.ts';
import { PREFACE, FrameType, END_STREAM, END_HEADERS, frame, settingsFrame } from '../../api/h2-frames.ts';
import { encodeHeaders } from '../../api/hpack.ts';
import { tempDir } from '../helpers/tmp.ts';

/** A server that answers each request with `answer`; the streams it saw are collected. */
async function serve(t: Parameters<typeof tempDir>[0], answer: (s: H2ServerStream, body: Buffer) => void): Promise<{ path: string; streams: H2ServerStream[] }> {
  const path = join(tempDir(t, 'h2s-'), 's.sock');
  const streams: H2ServerStream[] = [];
  const server: Server = createServer((socket) => {
    new H2ServerSession(socket).on('stream', (s: H2ServerStream) => {
      streams.push(s);
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => answer(s, Buffer.concat(chunks)));
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.teardown(() => new Promise<void>((resolve) => { server.close(() => resolve()); }));
  return { path, streams };
}

function client(path: string, settings: http2.Settings = {}): http2.ClientHttp2Session {
  return http2.connect('http://localhost', { createConnection: () => connect(path), settings });
}

test('bodies larger than every window go both ways to a client with small windows; trailers come after', async (t) => {
  const { path } = await serve(t, (s, body) => {
    s.respond({ ':status': '200', 'x-got': String(body.length) });
    // Several writes, most of them before the client has granted any window.
    for (let i = 0; i < 4; i++) s.write(body.subarray(i * body.length / 4, (i + 1) * body.length / 4));
    s.end({ 'x-end': 'yes' });
  });
  const session = client(path, { initialWindowSize: 16_384 });
  t.teardown(() => session.close());
  const sent = Buffer.alloc(3 << 20, 7);
  sent.writeUInt32BE(0xdeadbeef, sent.length - 4);
  const got = await new Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': '/echo' });
    const chunks: Buffer[] = [];
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => { headers = h; });
    req.on('trailers', (h) => { trailers = h; });
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => resolve({ headers, trailers, body: Buffer.concat(chunks) }));
    req.on('error', reject);
    req.end(sent);
  });
  t.is(got.headers['x-got'], String(sent.length));
  t.true(got.body.equals(sent));
  t.is(got.trailers['x-end'], 'yes');
});

test('PING is answered; many streams share one connection', async (t) => {
  const { path } = await serve(t, (s) => { s.respond({ ':status': '200' }); s.end({ 'x-path': String(s.headers[':path']) }); });
  const session = client(path);
  t.teardown(() => session.close());
  await new Promise((resolve) => session.once('connect', resolve));
  await new Promise<void>((resolve, reject) => session.ping((err) => (err ? reject(err) : resolve())));
  const paths = await Promise.all(Array.from({ length: 20 }, (_, i) => new Promise<string>((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': `/p${i}` });
    req.on('trailers', (h) => resolve(String(h['x-path'])));
    req.on('error', reject);
    req.resume();
    req.end();
  })));
  t.deepEqual(paths, Array.from({ length: 20 }, (_, i) => `/p${i}`));
});

test('a client that resets its stream closes it on our side as aborted', async (t) => {
  const { path, streams } = await serve(t, () => undefined);
  const session = client(path);
  t.teardown(() => session.close());
  const req = session.request({ ':method': 'POST', ':path': '/slow' });
  req.write('partial');
  while (!streams.length) await new Promise((r) => setTimeout(r, 5));
  const closed = new Promise<void>((resolve) => streams[0]!.once('close', () => resolve()));
  req.close(http2.constants.NGHTTP2_CANCEL);
  await closed;
  t.true(streams[0]!.aborted);
});

test('something that is not HTTP/2 is refused with GOAWAY and the connection ends', async (t) => {
  const { path } = await serve(t, () => undefined);
  const sock = connect(path);
  const received: Buffer[] = [];
  sock.on('data', (d: Buffer) => received.push(d));
  sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise((resolve) => sock.on('close', resolve));
  const all = Buffer.concat(received);
  const types: number[] = [];
  for (let off = 0; off + 9 <= all.length; off += 9 + all.readUIntBE(off, 3)) types.push(all[off + 3]!);
  t.true(types.includes(FrameType.GoAway));
});

test('a whole answer (headers, message, trailers) leaves in one write', async (t) => {
  const { path } = await serve(t, (s) => { s.respond({ ':status': '200' }); s.write(Buffer.from('hello')); s.end({ 'grpc-status': '0' }); });
  const sock = connect(path);
  t.teardown(() => sock.destroy());
  const chunks: Buffer[] = [];
  let wake: (() => void) | undefined;
  sock.on('data', (d: Buffer) => { chunks.push(d); wake?.(); });
  const next = () => new Promise<Buffer>((resolve) => { if (chunks.length) resolve(chunks.shift()!); else wake = () => { wake = undefined; resolve(chunks.shift()!); }; });
  sock.write(Buffer.concat([PREFACE, settingsFrame([])]));
  await next(); // our SETTINGS and connection WINDOW_UPDATE
  const block = encodeHeaders([[':method', 'POST'], [':scheme', 'http'], [':path', '/x'], [':authority', 'l']]);
  sock.write(frame(FrameType.Headers, END_HEADERS | END_STREAM, 1, block));
  let answer = await next();
  // The SETTINGS ack may come first, on its own.
  if (answer.length >= 9 && answer[3] === FrameType.Settings) answer = answer.length > 9 ? answer.subarray(9) : await next();
  const types: number[] = [];
  for (let off = 0; off + 9 <= answer.length; off += 9 + answer.readUIntBE(off, 3)) types.push(answer[off + 3]!);
  t.deepEqual(types, [FrameType.Headers, FrameType.Data, FrameType.Headers]);
});
