// A gRPC server for berthd's API (unary, server-streaming, client-streaming and bidirectional calls over a unix
// socket, HTTP/2 without TLS as containerd serves it), on our own HTTP/2 server (h2-server.ts). berthd used
// grpc-js, then node:http2; a unary answer now leaves in one write, headers, message and trailers. Wire format,
// as in grpc-client.ts: POST /<service>/<method>, content-type application/grpc, messages prefixed by a compressed-flag byte and a 4-byte
// big-endian length, the status in trailers (or trailers-only when nothing else was sent), percent-encoded
// grpc-message, deadlines from grpc-timeout.
import { createServer, type Server } from 'node:net';
import { Duplex } from 'node:stream';
import type protobuf from 'protobufjs';
import { GrpcStatus, grpcStatusOf } from './errdefs.ts';
import { Deframer, FrameError, frame } from './grpc-frames.ts';
import { H2ServerSession, type H2ServerStream, type RequestHeaders, type ResponseHeaders } from './h2-server.ts';
import { CONVERT, protos } from './proto.ts';

const MAX_MESSAGE = 16 << 20;
/** Partial request messages held for one connection, all its calls together: what a client could otherwise make
 * us hold is a message short of the limit on each of its streams. One message of the largest size fits, with room. */
const MAX_PARTIAL_PER_CONNECTION = 20 << 20;

/** What a connection's calls hold between them. */
interface ConnectionBudget { partial: number }

type Msg = Record<string, any>;

/** Request metadata: the call's headers, by lowercase name; `-bin` headers as bytes. */
export class Metadata {
  constructor(private readonly headers: RequestHeaders) {}
  get(key: string): (string | Buffer)[] {
    const v = this.headers[key.toLowerCase()];
    if (v === undefined) return [];
    const values = Array.isArray(v) ? v : [v];
    return key.endsWith('-bin') ? values.map((x) => Buffer.from(x, 'base64')) : values;
  }
}

/** The wire form of a status message: UTF-8, percent-encoded outside printable ASCII (and '%' itself). */
function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** grpc-timeout ("100m", "5S", ...) in milliseconds. */
function timeoutMs(value: string | string[] | undefined): number | undefined {
  const m = typeof value === 'string' ? /^(\d{1,8})([HMSmun])$/.exec(value) : null;
  if (!m) return undefined;
  const scale = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 }[m[2] as 'H'];
  return Number(m[1]) * scale;
}

/**
 * One call: its request messages on the readable side (and `request`, the first, for unary and server-streaming
 * calls), responses written to the writable side; end() finishes with OK, fail() with an error's status.
 * 'cancelled' is emitted when the client goes away or the deadline passes.
 */
export class ServerCall extends Duplex {
  request: Msg = {};
  cancelled = false;
  readonly metadata: Metadata;
  private headersSent = false;
  private finished = false;
  private failure: { code: number; message: string } | undefined;
  private inputEnded = false;
  private readonly deframer = new Deframer(MAX_MESSAGE);
  private readonly startedAt: number;

  constructor(private readonly stream: H2ServerStream, headers: RequestHeaders, private readonly req: protobuf.Type, private readonly res: protobuf.Type,
    private readonly budget: ConnectionBudget, private readonly observer?: MethodObserver) {
    // One message read ahead at most: the stream pauses (and holds the client's window) while the handler is busy.
    // One written ahead at most: a handler that waits for 'drain' does not read more while the client reads nothing.
    super({ objectMode: true, allowHalfOpen: true, autoDestroy: false, readableHighWaterMark: 1, writableHighWaterMark: 1 });
    this.metadata = new Metadata(headers);
    this.startedAt = observer ? performance.now() : 0;
    // A write after the client left must not throw in a handler that has not noticed yet.
    this.on('error', () => undefined);
    stream.on('data', (chunk: Buffer) => this.receive(chunk));
    stream.on('end', () => this.endInput());
    stream.on('close', () => {
      this.releasePartial();
      if (!this.finished) { this.finish(GrpcStatus.CANCELLED, ''); this.cancel(); }
      this.destroy();
      this.emit('drain'); // handlers waiting to write more wake up, and find the call over
    });
    const deadline = timeoutMs(headers['grpc-timeout'] as string | undefined);
    if (deadline !== undefined) {
      const timer = setTimeout(() => this.finish(GrpcStatus.DEADLINE_EXCEEDED, 'deadline exceeded'), deadline);
      timer.unref();
      stream.once('close', () => clearTimeout(timer));
    }
  }

  private receive(chunk: Buffer): void {
    if (this.finished) return;
    const held = this.deframer.buffered;
    let bodies: Buffer[] | FrameError;
    try {
      bodies = this.deframer.push(chunk);
    } catch (err) {
      bodies = err as FrameError;
    }
    this.budget.partial += this.deframer.buffered - held;
    if (bodies instanceof FrameError) {
      this.releasePartial();
      return this.finish(bodies.kind === 'too-large' ? GrpcStatus.RESOURCE_EXHAUSTED : GrpcStatus.UNIMPLEMENTED, bodies.message);
    }
    if (this.budget.partial > MAX_PARTIAL_PER_CONNECTION) {
      this.releasePartial();
      return this.finish(GrpcStatus.RESOURCE_EXHAUSTED, `the connection's calls hold over ${MAX_PARTIAL_PER_CONNECTION} bytes of partial messages`);
    }
    for (const body of bodies) {
      let msg: Msg;
      try {
        msg = this.req.toObject(this.req.decode(body), CONVERT);
      } catch (err) {
        return this.finish(GrpcStatus.INTERNAL, `cannot decode the request message: ${(err as Error).message}`);
      }
      if (!this.push(msg)) this.stream.pause();
    }
  }

  override _read(): void { this.stream.resume(); }

  private releasePartial(): void {
    this.budget.partial -= this.deframer.buffered;
    this.deframer.clear();
  }

  /** The end of the request messages: the client's, or a cancelled call's (a reader waiting is not left hanging). */
  private endInput(): void {
    if (this.inputEnded) return;
    this.inputEnded = true;
    this.push(null);
  }

  override _write(msg: Msg, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.finished || this.stream.closed) return cb();
    this.sendHeaders();
    if (this.stream.write(frame(this.res, msg))) cb();
    else this.stream.once('drain', () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    const { code, message } = this.failure ?? { code: GrpcStatus.OK, message: '' };
    this.finish(code, message);
    cb();
  }

  /** A unary call's whole answer, at once: headers, the message and OK leave together (the stream machinery
   * would put the trailers a tick later, in a write of their own). */
  reply(msg: Msg): void {
    if (this.finished || this.stream.closed || this.writableEnded) return;
    this.sendHeaders();
    this.stream.write(frame(this.res, msg));
    this.finish(GrpcStatus.OK, '');
  }

  /** Ends the call, once what was written is sent, with `err`'s status (code mapped as containerd's errdefs). */
  fail(err: unknown): void {
    this.failure = { code: grpcStatusOf(err), message: err instanceof Error ? err.message : String(err) };
    if (!this.writableEnded) this.end();
  }

  private sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.stream.respond({ ':status': '200', 'content-type': 'application/grpc' });
  }

  private finish(code: number, message: string): void {
    if (this.finished) return;
    this.finished = true;
    this.observer?.finished(code, this.startedAt);
    if (code === GrpcStatus.DEADLINE_EXCEEDED) this.cancel();
    if (this.stream.closed) return;
    const status: ResponseHeaders = { 'grpc-status': String(code) };
    if (message) status['grpc-message'] = encodeGrpcMessage(message);
    if (!this.headersSent) {
      // Trailers-only: the status rides in the only headers sent.
      this.headersSent = true;
      this.stream.respond({ ':status': '200', 'content-type': 'application/grpc', ...status }, { endStream: true });
      return;
    }
    this.stream.end(status);
  }

  private cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.endInput();
    this.emit('cancelled');
  }
}

export type MethodHandler = (call: ServerCall) => void;
export type ServiceImplementation = Record<string, MethodHandler>;

/** gRPC's kinds of method, named as Prometheus' gRPC metrics label them. */
export type CallKind = 'unary' | 'server_stream' | 'client_stream' | 'bidi_stream';

/** Told of every call's end, with its status code and `performance.now()` at its start: it runs on every call,
 * so it must not allocate, write or wait (berthd's metrics count into arrays made once per method). */
export interface MethodObserver { finished(code: number, startedAt: number): void }

/** Watches the calls of a server: asked once per method served for the observer of that method's calls. */
export interface CallObserver { method(service: string, method: string, kind: CallKind): MethodObserver }

interface Route { handler: MethodHandler; req: protobuf.Type; res: protobuf.Type; requestStream: boolean; observer: MethodObserver | undefined }

export class GrpcServer {
  private readonly routes = new Map<string, Route>();
  private readonly sessions = new Set<H2ServerSession>();
  private readonly server: Server = createServer((socket) => {
    const session = new H2ServerSession(socket);
    const budget: ConnectionBudget = { partial: 0 };
    this.sessions.add(session);
    session.once('close', () => this.sessions.delete(session));
    session.on('stream', (stream: H2ServerStream) => this.dispatch(stream, budget));
  });

  constructor(private readonly observer?: CallObserver) {}

  /** Serves `fullName` (as in berth's .proto files) with `impl`, one handler per method name. */
  addService(fullName: string, impl: ServiceImplementation): this {
    const service = protos().lookupService(fullName);
    for (const method of Object.values(service.methods)) {
      const handler = impl[method.name];
      if (!handler) continue; // unimplemented methods answer UNIMPLEMENTED
      method.resolve();
      const kind: CallKind = method.requestStream ? (method.responseStream ? 'bidi_stream' : 'client_stream') : method.responseStream ? 'server_stream' : 'unary';
      this.routes.set(`/${fullName}/${method.name}`, {
        handler, req: method.resolvedRequestType!, res: method.resolvedResponseType!, requestStream: !!method.requestStream,
        observer: this.observer?.method(fullName, method.name, kind),
      });
    }
    return this;
  }

  private dispatch(stream: H2ServerStream, budget: ConnectionBudget): void {
    const path = String(stream.headers[':path']);
    const route = this.routes.get(path);
    if (!route) {
      stream.respond({ ':status': '200', 'content-type': 'application/grpc', 'grpc-status': String(GrpcStatus.UNIMPLEMENTED), 'grpc-message': encodeGrpcMessage(`unknown method ${path}`) }, { endStream: true });
      return;
    }
    const call = new ServerCall(stream, stream.headers, route.req, route.res, budget, route.observer);
    if (route.requestStream) { route.handler(call); return; }
    // Unary and server-streaming: the handler starts with the request message in hand.
    let got = false;
    call.once('data', (msg: Msg) => { got = true; call.request = msg; });
    call.once('end', () => {
      if (call.cancelled) return;
      if (!got) call.request = {};
      route.handler(call);
    });
    call.resume();
  }

  listen(path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(path, () => { this.server.off('error', reject); resolve(); });
    });
  }

  /** Stops accepting; calls in flight get `graceMs` to finish, then every connection is closed. */
  async close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sessions) s.close();
    const timer = setTimeout(() => { for (const s of this.sessions) s.destroy(); }, graceMs);
    await closed;
    clearTimeout(timer);
  }
}
