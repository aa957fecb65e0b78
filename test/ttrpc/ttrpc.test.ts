// berth's ttrpc client against berth's ttrpc server, over a real unix socket.
import test from 'ava';
import { connect } from 'node:net';
import { join } from 'node:path';
import { BerthError, ErrorCode, errNotFound } from '../../api/errdefs.ts';
import { TtrpcClient } from '../../api/ttrpc/client.ts';
import { MessageType } from '../../api/ttrpc/frame.ts';
import { TtrpcServer } from '../../api/ttrpc/server.ts';
import { decode, RESPONSE } from '../../api/ttrpc/codec.ts';
import { tempDir } from '../helpers/tmp.ts';

const TASK = 'containerd.task.v2.Task';
const EVENTS = 'containerd.services.events.v1.Events';

async function serve(t: Parameters<typeof tempDir>[0], setup: (s: TtrpcServer) => void) {
  const server = new TtrpcServer();
  setup(server);
  const path = join(tempDir(t), 'ttrpc.sock');
  await server.listen(path);
  t.teardown(() => server.close(100));
  const client = await TtrpcClient.connect(`unix://${path}`);
  t.teardown(() => client.close());
  return { server, client, path };
}

test('unary calls carry requests, responses and metadata', async (t) => {
  const { client } = await serve(t, (s) => s.register(TASK, {
    State: (req, ctx) => ({ id: req.id, bundle: ctx.metadata['containerd-namespace-ttrpc']?.[0] ?? '', pid: 42, status: 'RUNNING', execId: req.execId }),
  }));
  const res = await client.call(TASK, 'State', { id: 'c1', execId: 'e1' }, { metadata: { 'containerd-namespace-ttrpc': 'ns1' } });
  t.like(res, { id: 'c1', bundle: 'ns1', pid: 42, status: 'RUNNING', execId: 'e1' });
});

test('errors keep their code; unknown services and methods are UNIMPLEMENTED', async (t) => {
  const { client } = await serve(t, (s) => s.register(TASK, {
    Pids: () => { throw errNotFound('container c9: not found'); },
  }));
  const err = await t.throwsAsync(client.call(TASK, 'Pids', { id: 'c9' }));
  t.true(err instanceof BerthError);
  t.is((err as BerthError).code, ErrorCode.NotFound);
  t.is(err!.message, 'container c9: not found');
  const unimpl = await t.throwsAsync(client.call(TASK, 'Stats', { id: 'c9' }));
  t.is((unimpl as BerthError).code, ErrorCode.NotImplemented);
  t.is(unimpl!.message, 'method Stats');
  const nosvc = await t.throwsAsync(client.call(EVENTS, 'Publish', { topic: '/x' }));
  t.is((nosvc as BerthError).code, ErrorCode.NotImplemented);
  t.regex(nosvc!.message, /service containerd\.services\.events\.v1\.Events/);
});

test('deadlines travel as timeout_nano and end the handler\'s wait', async (t) => {
  let seenDeadline = 0;
  let called!: () => void;
  const handlerRan = new Promise<void>((resolve) => { called = resolve; });
  const { client } = await serve(t, (s) => s.register(TASK, {
    Wait: async (_req, ctx) => {
      seenDeadline = ctx.deadline ?? 0;
      called();
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      throw ctx.signal.reason;
    },
  }));
  const started = Date.now();
  const err = await t.throwsAsync(client.call(TASK, 'Wait', { id: 'x' }, { timeoutMs: 150 }));
  t.is((err as BerthError).code, ErrorCode.DeadlineExceeded);
  const ended = Date.now();
  t.true(ended - started < 1000);
  await handlerRan; // on a loaded machine the server may get the request only after the client gave up
  // timeout_nano is relative: the server's deadline is its receive time (somewhere in [started, ended]) + 150 ms.
  t.true(seenDeadline >= started + 140 && seenDeadline <= Date.now() + 160, `the server saw the deadline (${seenDeadline - started} ms after the call)`);
});

test('hundreds of interleaved calls on one connection each get their own answer', async (t) => {
  const { client } = await serve(t, (s) => s.register(TASK, {
    Start: async (req) => { await new Promise((r) => setTimeout(r, Math.random() * 20)); return { pid: Number(req.execId) }; },
  }));
  const ids = Array.from({ length: 500 }, (_, i) => i + 1);
  const answers = await Promise.all(ids.map((i) => client.call(TASK, 'Start', { id: 'c', execId: String(i) })));
  t.deepEqual(answers.map((a) => a.pid), ids);
});

test('server-streaming responses arrive in order and end cleanly', async (t) => {
  const { client } = await serve(t, (s) => s.register(EVENTS, {
    Subscribe: async (req, ctx) => {
      for (let i = 0; i < 5; i++) ctx.send!({ topic: `/n/${i}`, namespace: req.filters[0] });
    },
  }));
  const got: string[] = [];
  for await (const env of client.stream(EVENTS, 'Subscribe', { filters: ['ns'] })) got.push(`${env.namespace}${env.topic}`);
  t.deepEqual(got, ['ns/n/0', 'ns/n/1', 'ns/n/2', 'ns/n/3', 'ns/n/4']);
});

test('a frame over 4 MiB is refused with RESOURCE_EXHAUSTED and the connection keeps working', async (t) => {
  const { path, client } = await serve(t, (s) => s.register(TASK, { Connect: () => ({ shimPid: 7 }) }));
  const tooBig = await t.throwsAsync(client.call(TASK, 'Update', { id: 'x', annotations: { big: 'x'.repeat(5 << 20) } }));
  t.regex(tooBig!.message, /exceeds the maximum/);
  // A raw peer sends an oversized request frame: the server answers that stream and goes on.
  const raw = connect(path);
  await new Promise((r) => raw.once('connect', r));
  const header = Buffer.alloc(10);
  header.writeUInt32BE((4 << 20) + 1, 0);
  header.writeUInt32BE(1, 4);
  header[8] = MessageType.Request;
  const answer = new Promise<Buffer>((resolve) => raw.once('data', resolve));
  raw.write(header);
  raw.write(Buffer.alloc((4 << 20) + 1));
  const frame = await answer;
  t.is(frame.readUInt32BE(4), 1);
  t.is(frame[8], MessageType.Response);
  t.is(decode(RESPONSE(), frame.subarray(10)).status.code, 8);
  raw.destroy();
  t.is((await client.call(TASK, 'Connect', { id: 'x' })).shimPid, 7);
});

test('calls pending when the connection drops fail as unavailable', async (t) => {
  const { server, client } = await serve(t, (s) => s.register(TASK, { Wait: () => new Promise(() => undefined) }));
  const pending = client.call(TASK, 'Wait', { id: 'x' });
  await new Promise((r) => setTimeout(r, 50));
  await server.close(10);
  const err = await t.throwsAsync(pending);
  t.is((err as BerthError).code, ErrorCode.Unavailable);
  await t.throwsAsync(client.call(TASK, 'Connect', { id: 'x' }), { message: /closed/ });
});
