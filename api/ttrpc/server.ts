// A ttrpc server: services are registered by their protobuf name with one handler per method; each
// connection carries many concurrent streams. Unary calls answer with one Response frame; a method with a
// response stream sends Data frames (the last flagged remote-closed), and a method with a request stream
// reads the client's Data frames from ctx.requests. Errors thrown by handlers become google.rpc.Status with
// the gRPC code of their berth error code; unknown services and methods answer UNIMPLEMENTED, as Go's does.
import { mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { BerthError, ErrorCode, GrpcStatus } from '../errdefs.ts';
import { REQUEST, RESPONSE, decode, encode, methodCodec, statusOf, type Msg } from './codec.ts';
import { Flags, FrameReader, MAX_DATA, MessageType, encodeFrame, type Frame } from './frame.ts';

export interface TtrpcContext {
  service: string;
  method: string;
  /** Request metadata; a key may repeat. */
  metadata: Record<string, string[]>;
  /** Absolute deadline (ms since the epoch) from the request's timeout_nano, if any. */
  deadline?: number;
  /** Aborted when the deadline passes, the client goes away or the server closes. */
  signal: AbortSignal;
  /** For methods with a request stream: the client's messages. */
  requests?: AsyncIterable<Msg>;
  /** For methods with a response stream: sends one message. */
  send?: (msg: Msg) => void;
}

export type TtrpcHandler = (request: Msg, ctx: TtrpcContext) => Promise<Msg | void> | Msg | void;

interface StreamState {
  abort: AbortController;
  inbox?: { queue: Msg[]; closed: boolean; wake?: () => void };
  requestType?: import('protobufjs').Type;
}

export class TtrpcServer {
  private readonly services = new Map<string, Record<string, TtrpcHandler>>();
  private readonly sockets = new Set<Socket>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private server: Server | undefined;
  private path: string | undefined;

  register(service: string, handlers: Record<string, TtrpcHandler>): this {
    for (const method of Object.keys(handlers)) {
      if (!methodCodec(service, method)) throw new Error(`ttrpc: ${service} has no method ${method} in berth's protos`);
    }
    this.services.set(service, handlers);
    return this;
  }

  /** Serves a connection handed over by someone else (tests, socket activation). */
  serveSocket(socket: Socket): void {
    this.sockets.add(socket);
    const streams = new Map<number, StreamState>();
    const write = (f: Buffer) => { if (!socket.destroyed) socket.write(f); };
    const respond = (streamId: number, status: { code: number; message: string } | undefined, payload?: Uint8Array) => {
      write(encodeFrame(streamId, MessageType.Response, 0, encode(RESPONSE(), { ...(status ? { status } : {}), payload: payload ?? new Uint8Array() })));
    };
    const reader = new FrameReader(
      (frame) => this.onFrame(frame, streams, write, respond),
      (streamId, type) => {
        if (type === MessageType.Request) respond(streamId, { code: GrpcStatus.RESOURCE_EXHAUSTED, message: `message length exceeds maximum message size of ${MAX_DATA}` });
      },
    );
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    const gone = () => {
      this.sockets.delete(socket);
      for (const s of streams.values()) { s.abort.abort(new BerthError(ErrorCode.Canceled, 'ttrpc: connection closed')); if (s.inbox) { s.inbox.closed = true; s.inbox.wake?.(); } }
      streams.clear();
    };
    socket.on('close', gone);
    socket.on('error', () => socket.destroy());
  }

  private onFrame(frame: Frame, streams: Map<number, StreamState>, write: (f: Buffer) => void,
    respond: (id: number, status: { code: number; message: string } | undefined, payload?: Uint8Array) => void): void {
    const { streamId } = frame;
    if (frame.type === MessageType.Data) {
      const s = streams.get(streamId);
      if (!s?.inbox || !s.requestType) { respond(streamId, { code: GrpcStatus.INVALID_ARGUMENT, message: 'StreamID is no longer active' }); return; }
      if (!(frame.flags & Flags.NoData)) s.inbox.queue.push(decode(s.requestType, frame.data));
      if (frame.flags & Flags.RemoteClosed) s.inbox.closed = true;
      s.inbox.wake?.();
      return;
    }
    if (frame.type !== MessageType.Request) return;
    if (streamId % 2 === 0) { respond(streamId, { code: GrpcStatus.INVALID_ARGUMENT, message: 'StreamID must be odd for client initiated streams' }); return; }
    let req: Msg;
    try { req = decode(REQUEST(), frame.data); } catch (err) {
      respond(streamId, { code: GrpcStatus.INVALID_ARGUMENT, message: `unmarshal request error: ${(err as Error).message}` });
      return;
    }
    const handlers = this.services.get(req.service);
    const handler = handlers?.[req.method];
    if (!handler) {
      respond(streamId, { code: GrpcStatus.UNIMPLEMENTED, message: handlers ? `method ${req.method}` : `service ${req.service}` });
      return;
    }
    const codec = methodCodec(req.service, req.method)!;
    const abort = new AbortController();
    const state: StreamState = { abort };
    const metadata: Record<string, string[]> = {};
    for (const kv of req.metadata ?? []) (metadata[kv.key] ??= []).push(kv.value);
    const ctx: TtrpcContext = { service: req.service, method: req.method, metadata, signal: abort.signal };
    let timer: NodeJS.Timeout | undefined;
    if (req.timeoutNano > 0) {
      const ms = req.timeoutNano / 1e6;
      ctx.deadline = Date.now() + ms;
      timer = setTimeout(() => abort.abort(new BerthError(ErrorCode.DeadlineExceeded, `${req.service}/${req.method}: deadline exceeded`)), ms);
    }
    if (frame.flags & Flags.RemoteOpen) {
      state.requestType = codec.request;
      const inbox: NonNullable<StreamState['inbox']> = { queue: [], closed: false };
      state.inbox = inbox;
      ctx.requests = {
        [Symbol.asyncIterator]: () => ({
          next: async () => {
            for (;;) {
              if (inbox.queue.length) return { value: inbox.queue.shift()!, done: false };
              if (inbox.closed) return { value: undefined, done: true };
              await new Promise<void>((resolve) => { inbox.wake = resolve; });
              inbox.wake = undefined;
            }
          },
        }),
      };
    }
    if (codec.responseStream) {
      ctx.send = (msg) => write(encodeFrame(streamId, MessageType.Data, 0, encode(codec.response, msg)));
    }
    streams.set(streamId, state);
    let body: Msg | undefined;
    try {
      body = frame.flags & Flags.RemoteOpen ? {} : decode(codec.request, req.payload);
    } catch (err) {
      respond(streamId, { code: GrpcStatus.INVALID_ARGUMENT, message: `ttrpc: error unmarshalling payload: ${(err as Error).message}` });
      streams.delete(streamId);
      return;
    }
    const run = Promise.resolve().then(() => handler(body!, ctx)).then(
      (res) => {
        if (codec.responseStream) write(encodeFrame(streamId, MessageType.Data, Flags.RemoteClosed | Flags.NoData, new Uint8Array()));
        else respond(streamId, undefined, encode(codec.response, res ?? {}));
      },
      (err) => respond(streamId, statusOf(abort.signal.aborted && !(err instanceof BerthError) ? abort.signal.reason : err)),
    ).finally(() => {
      clearTimeout(timer);
      streams.delete(streamId);
      this.inFlight.delete(run);
    });
    this.inFlight.add(run);
  }

  /** Listens on a unix socket path (a stale socket file is replaced). */
  async listen(path: string): Promise<void> {
    mkdirSync(dirname(path), { recursive: true });
    rmSync(path, { force: true });
    const server = createServer((socket) => this.serveSocket(socket));
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(path, () => resolve()); });
    this.server = server;
    this.path = path;
  }

  /** Stops accepting, lets calls in flight finish (up to `graceMs`), then closes every connection. */
  async close(graceMs = 2000): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((resolve) => { timer = setTimeout(resolve, graceMs); })]);
    clearTimeout(timer);
    for (const s of this.sockets) s.destroySoon();
    await closed;
    if (this.path) rmSync(this.path, { force: true });
  }
}
