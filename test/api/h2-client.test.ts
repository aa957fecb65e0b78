// berth's HTTP/2 client and HPACK decoder: RFC 7541's own examples, then node:http2 (nghttp2) as the server on a
// unix socket: windows smaller than the messages both ways, padded frames, header blocks split into
// CONTINUATION frames, trailers, resets, a server going away, and a connection that cannot be made.
import test from 'ava';
import http2 from 'node:http2';
import { connect } from 'node:net';
import { join } from 'node:path';
import { H2Session, type H2Stream, type Headers } from '../../api/h2-client.ts';
import { HpackDecoder, encodeHeaders } from '../../api/hpack.ts';
import { tempDir } from '../helpers/tmp.ts';

test('HPACK: RFC 7541 C.4 (Huffman) and C.6 (eviction from a 256-octet table) decode as the RFC says', (t) => {
  const d = new HpackDecoder();
  t.deepEqual(d.decode(Buffer.from('828684418cf1e3c2e5f23a6ba0ab90f4ff', 'hex')), [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']]);
  t.deepEqual(d.decode(Buffer.from('828684be5886a8eb10649cbf', 'hex')).at(-1), ['cache-control', 'no-cache']);
  t.deepEqual(d.decode(Buffer.from('828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf', 'hex')).at(-1), ['custom-key', 'custom-value']);
  const small = new HpackDecoder(256);
  const first = small.decode(Buffer.from('488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3', 'hex'));
  t.deepEqual(first, [[':status', '302'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com']]);
  const second = small.decode(Buffer.from('4883640effc1c0bf', 'hex'));
  t.deepEqual(second, [[':status', '307'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com']]);
  t.throws(() => new HpackDecoder().decode(Buffer.from('be', 'hex')), { message: /index 62 does not exist/ });
  t.throws(() => new HpackDecoder().decode(Buffer.from('0083ffffff', 'hex')), { message: /Huffman/ }, 'all ones is padding, not a code');
  t.deepEqual(new HpackDecoder().decode(encodeHeaders([[':path', '/a'], ['x-long', 'v'.repeat(300)]])), [[':path', '/a'], ['x-long', 'v'.repeat(300)]]);
});

async function server(t: import('ava').ExecutionContext, handler: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void, options: http2.ServerOptions = {}): Promise<string> {
  const path = join(tempDir(t), 'h2.sock');
  const srv = http2.createServer(options);
  srv.on('stream', (stream, headers) => { stream.on('error', () => undefined); handler(stream, headers); });
  await new Promise<void>((resolve) => srv.listen(path, resolve));
  t.teardown(() => new Promise<void>((resolve) => srv.close(() => resolve())));
  return path;
}

interface Outcome { headers?: Headers; trailers?: Headers; body: Buffer; rstCode?: number; error?: string }

function collect(stream: H2Stream): Promise<Outcome> {
  const out: Outcome = { body: Buffer.alloc(0) };
  const chunks: Buffer[] = [];
  stream.on('response', (h) => { out.headers = h; });
  stream.on('trailers', (h) => { out.trailers = h; });
  stream.on('data', (d: Buffer) => chunks.push(d));
  stream.on('error', (e: Error) => { out.error = e.message; });
  return new Promise((resolve) => stream.on('close', () => { out.body = Buffer.concat(chunks); out.rstCode = stream.rstCode; resolve(out); }));
}

const post = (path: string): Headers => ({ ':method': 'POST', ':scheme': 'http', ':path': path, ':authority': 'localhost' });

test('bodies larger than every window go both ways, in padded frames, with trailers after', async (t) => {
  const big = Buffer.alloc(5 << 20, 7);
  const path = await server(t, (stream) => {
    const parts: Buffer[] = [];
    stream.on('data', (d: Buffer) => parts.push(d));
    stream.on('end', () => {
      const got = Buffer.concat(parts);
      stream.respond({ ':status': 200, 'x-got': String(got.length) }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'fine, thanks' }));
      stream.end(Buffer.concat([got, got]));
    });
  }, { paddingStrategy: http2.constants.PADDING_STRATEGY_MAX, settings: { initialWindowSize: 16_384 } });
  const session = new H2Session(connect(path));
  t.teardown(() => session.close());
  const stream = session.request(post('/echo'));
  const done = collect(stream);
  stream.write(big);
  stream.end();
  const out = await done;
  t.is(out.error, undefined);
  t.is(out.headers?.['x-got'], String(big.length), 'the server received all of it through its 16 KiB window');
  t.is(out.body.length, 2 * big.length, 'and all of its answer came through');
  t.true(out.body.every((b) => b === 7));
  t.like(out.trailers, { 'grpc-status': '0', 'grpc-message': 'fine, thanks' });
});

test('a header block too big for one frame arrives in CONTINUATION frames; many streams share the connection', async (t) => {
  const path = await server(t, (stream, headers) => {
    stream.respond({ ':status': 200, 'x-echo': String(headers[':path']), 'x-big': 'b'.repeat(40_000) });
    stream.end('ok');
  }, { maxSendHeaderBlockLength: 1 << 20 });
  const session = new H2Session(connect(path));
  t.teardown(() => session.close());
  const outs = await Promise.all(Array.from({ length: 20 }, (_, i) => {
    const s = session.request(post(`/n${i}`));
    const done = collect(s);
    s.end();
    return done;
  }));
  for (const [i, out] of outs.entries()) {
    t.is(out.headers?.['x-echo'], `/n${i}`);
    t.is(out.headers?.['x-big']?.length, 40_000);
    t.is(out.body.toString(), 'ok');
  }
});

test('a reset stream reports its code; a server going away mid-request fails it; no daemon is an error naming the socket', async (t) => {
  const path = await server(t, (stream, headers) => {
    if (headers[':path'] === '/reset') stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    else { stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR); stream.session?.destroy(); }
  });
  const session = new H2Session(connect(path));
  const reset = session.request(post('/reset'));
  const resetOut = collect(reset);
  reset.end();
  t.is((await resetOut).rstCode, http2.constants.NGHTTP2_REFUSED_STREAM);
  const gone = session.request(post('/goaway'));
  const goneOut = collect(gone);
  gone.end();
  t.regex((await goneOut).error ?? '', /going away|closed the connection/);

  const nowhere = new H2Session(connect(join(tempDir(t), 'none.sock')));
  const errors: string[] = [];
  nowhere.on('error', (e: Error) => errors.push(e.message));
  const s = nowhere.request(post('/x'));
  const out = collect(s);
  s.end();
  t.regex((await out).error ?? '', /connect ENOENT .*none\.sock/);
  t.regex(errors[0] ?? '', /connect ENOENT/);
});
