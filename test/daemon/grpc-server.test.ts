// berthd's gRPC transport (api/grpc-server.ts) on the wire: statuses in trailers or trailers-only answers,
// percent-encoded messages, unknown methods, deadlines, oversized and compressed messages, cancellation, and
// the three kinds of streaming. (containerd's own ctr talking to berthd is test/daemon/ctr-interop.test.ts.)
import test, { type ExecutionContext } from 'ava';
import http2 from 'node:http2';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ApiClient } from '../../api/grpc-client.ts';
import { bidiStream, serverStream, unary, type ServerCall } from '../../api/grpc.ts';
import { GrpcServer } from '../../api/grpc-server.ts';
import { BerthError, ErrorCode, errNotFound } from '../../api/errdefs.ts';
import { tempDir } from '../helpers/tmp.ts';

const VERSION = 'containerd.services.version.v1.Version';
const EVENTS = 'containerd.services.events.v1.Events';
const CONTENT = 'containerd.services.content.v1.Content';

interface Served { path: string; server: GrpcServer; calls: ServerCall[] }

interface Impl {
  version?: Parameters<typeof unary>[0];
  subscribe?: Parameters<typeof serverStream>[0];
  write?: Parameters<typeof bidiStream>[0];
}

/** A server with the handlers given; `calls` collects each call as it starts. */
async function serve(t: ExecutionContext, impl: Impl): Promise<Served> {
  const path = join(tempDir(t, 'grpc-'), 'api.sock');
  const server = new GrpcServer();
  const calls: ServerCall[] = [];
  const { version, subscribe, write } = impl;
  if (version) server.addService(VERSION, { Version: unary((req, call) => { calls.push(call); return version(req, call); }) });
  if (subscribe) server.addService(EVENTS, { Subscribe: serverStream((req, call) => { calls.push(call); return subscribe(req, call); }) });
  if (write) server.addService(CONTENT, { Write: bidiStream((call) => { calls.push(call); return write(call); }) });
  await server.listen(path);
  t.teardown(() => server.close(100));
  return { path, server, calls };
}

/** One raw HTTP/2 request: the response headers, body and trailers as the client sees them. */
async function raw(path: string, method: string, body: Buffer, headers: http2.OutgoingHttpHeaders = {}) {
  const session = http2.connect('http://localhost', { createConnection: () => connect(path) });
  try {
    return await new Promise<{ headers: http2.IncomingHttpHeaders; trailers?: http2.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers', ...headers });
      let h: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders | undefined;
      const chunks: Buffer[] = [];
      req.on('response', (x) => { h = x; });
      req.on('trailers', (x) => { trailers = x; });
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve({ headers: h, ...(trailers ? { trailers } : {}), body: Buffer.concat(chunks) }));
      req.on('error', reject);
      req.end(body);
    });
  } finally {
    session.close();
  }
}
const EMPTY = Buffer.from([0, 0, 0, 0, 0]);

test('a unary call answers its message with OK in the trailers', async (t) => {
  const s = await serve(t, { version: () => ({ version: '9.9', revision: 'r' }) });
  const c = new ApiClient(`unix://${s.path}`);
  t.deepEqual(await c.call(VERSION, 'Version'), { version: '9.9', revision: 'r' });
  const r = await raw(s.path, `/${VERSION}/Version`, EMPTY);
  t.is(r.headers['content-type'], 'application/grpc');
  t.is(r.trailers?.['grpc-status'], '0');
  t.true(r.body.length > 5);
  c.close();
});

test('an error before any message is a trailers-only answer: mapped code, percent-encoded message', async (t) => {
  const s = await serve(t, { version: () => { throw errNotFound('image "ünïcode 100%" not found'); } });
  const r = await raw(s.path, `/${VERSION}/Version`, EMPTY);
  t.is(r.headers['grpc-status'], '5');
  t.is(r.headers['grpc-message'], 'image "%C3%BCn%C3%AFcode 100%25" not found');
  t.is(r.trailers, undefined);
  t.is(r.body.length, 0);
  const c = new ApiClient(`unix://${s.path}`);
  const err = await t.throwsAsync(c.call(VERSION, 'Version'));
  t.true(err instanceof BerthError && err.code === ErrorCode.NotFound);
  t.is(err!.message, 'image "ünïcode 100%" not found');
  c.close();
});

test('an unknown method answers UNIMPLEMENTED naming it', async (t) => {
  const s = await serve(t, { version: () => ({}) });
  const r = await raw(s.path, '/containerd.services.sandbox.v1.Store/Create', EMPTY);
  t.is(r.headers['grpc-status'], '12');
  t.regex(decodeURIComponent(String(r.headers['grpc-message'])), /unknown method \/containerd\.services\.sandbox\.v1\.Store\/Create/);
});

test('a call past its grpc-timeout ends DEADLINE_EXCEEDED and the handler sees it cancelled', async (t) => {
  const s = await serve(t, { version: () => new Promise(() => undefined) });
  const r = await raw(s.path, `/${VERSION}/Version`, EMPTY, { 'grpc-timeout': '150m' });
  t.is(r.headers['grpc-status'], '4');
  t.true(s.calls[0]!.cancelled);
});

test('oversized and compressed request messages are refused with their status', async (t) => {
  const s = await serve(t, { version: () => ({}) });
  const big = Buffer.alloc(5);
  big.writeUInt32BE((16 << 20) + 1, 1);
  t.is((await raw(s.path, `/${VERSION}/Version`, big)).headers['grpc-status'], '8');
  t.is((await raw(s.path, `/${VERSION}/Version`, Buffer.from([1, 0, 0, 0, 0]))).headers['grpc-status'], '12');
});

test('a server stream sends its messages, then the error that ended it', async (t) => {
  const s = await serve(t, {
    subscribe: async (_req, call) => {
      for (const topic of ['/a', '/b']) call.write({ topic, namespace: 'n' });
      throw new BerthError(ErrorCode.Unavailable, 'the exchange went away');
    },
  });
  const c = new ApiClient(`unix://${s.path}`);
  const got: string[] = [];
  const err = await t.throwsAsync(async () => { for await (const m of c.stream<any>(EVENTS, 'Subscribe', {})) got.push(m.topic); });
  t.deepEqual(got, ['/a', '/b']);
  t.true(err instanceof BerthError && err.code === ErrorCode.Unavailable, err?.message);
  c.close();
});

test('a client that goes away cancels the call: the handler sees cancelled and close', async (t) => {
  let closed = false;
  const s = await serve(t, {
    subscribe: async (_req, call) => {
      call.on('close', () => { closed = true; });
      call.write({ topic: '/first' });
      await new Promise((resolve) => call.once('cancelled', resolve));
    },
  });
  const c = new ApiClient(`unix://${s.path}`);
  for await (const m of c.stream<any>(EVENTS, 'Subscribe', {})) { t.is(m.topic, '/first'); break; }
  const deadline = Date.now() + 2000;
  while (!closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.true(s.calls[0]!.cancelled);
  t.true(closed);
  c.close();
});

test('a bidirectional stream answers each message as it comes, and ends when the client does', async (t) => {
  const s = await serve(t, {
    write: async (call) => {
      for await (const m of call) call.write({ action: m.action, offset: (m.data as Buffer).length });
    },
  });
  const c = new ApiClient(`unix://${s.path}`);
  const call = c.open(CONTENT, 'Write');
  const answers: number[] = [];
  for (const n of [3, 1 << 20, 7]) {
    call.send({ action: 'WRITE', ref: 'r', data: Buffer.alloc(n) });
    const it = call[Symbol.asyncIterator]();
    answers.push(Number((await it.next()).value.offset));
  }
  call.end();
  t.deepEqual(answers, [3, 1 << 20, 7]);
  c.close();
});
