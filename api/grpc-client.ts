// A small gRPC client for containerd's API (unary, server-streaming and bidirectional calls over a unix socket),
// on our own HTTP/2 client (h2-client.ts): a CLI pays for every module it loads, and node:http2 alone cost ~10 ms
// and could not be in the startup snapshot. Wire format: HTTP/2 POST /<service>/<method>, content-type application/grpc,
// each message prefixed by a compressed flag byte and a 4-byte big-endian length; the status comes in the
// trailers (or in the headers of a trailers-only answer).
import { connect } from 'node:net';
import { BerthError, ErrorCode, fromStatus } from './errdefs.ts';
import { Deframer, FrameError, frame } from './grpc-frames.ts';
import { CONVERT, protos } from './proto.ts';
import type protobuf from 'protobufjs';
import { CANCEL, H2Session, NO_ERROR, type Headers } from './h2-client.ts';

export const NAMESPACE_HEADER = 'containerd-namespace';
export const LEASE_HEADER = 'containerd-lease';

type Msg = Record<string, any>;

export interface ApiClientOptions {
  namespace?: string;
  /** Lease the calls run under (content written and snapshots created are attached to it). */
  lease?: string;
  /** Per-call deadline in ms; none by default. */
  timeoutMs?: number;
}

interface Method { path: string; req: protobuf.Type; res: protobuf.Type }

const methods = new Map<string, Method>();

function method(service: string, name: string): Method {
  const key = `${service}/${name}`;
  let m = methods.get(key);
  if (!m) {
    const def = protos().lookupService(service).methods[name];
    if (!def) throw new BerthError(ErrorCode.InvalidArgument, `${service} has no method ${name}`);
    def.resolve();
    m = { path: `/${key}`, req: def.resolvedRequestType!, res: def.resolvedResponseType! };
    methods.set(key, m);
  }
  return m;
}

function statusError(headers: Headers): BerthError | undefined {
  const status = headers['grpc-status'];
  if (status === undefined || status === '0') return undefined;
  let message = String(headers['grpc-message'] ?? '');
  try { message = decodeURIComponent(message); } catch { /* keep as sent */ }
  return fromStatus(Number(status), message || `gRPC status ${status}`);
}

/** A call in progress: responses as an async iterator; send/end for client-streaming calls. */
export interface Call {
  send(msg: Msg): void;
  end(): void;
  cancel(): void;
  [Symbol.asyncIterator](): AsyncIterator<Msg>;
}

export class ApiClient {
  private session: H2Session | undefined;
  private connectError: Error | undefined;
  /** Calls in flight on the shared connection: it keeps the process alive only while there are some. */
  private active = 0;

  constructor(readonly address: string, private readonly opts: ApiClientOptions = {}, private readonly shared?: ApiClient) {}

  /** The same connection, calling with other options (namespace, lease, timeout). */
  with(opts: ApiClientOptions): ApiClient {
    return new ApiClient(this.address, { ...this.opts, ...opts }, this.shared ?? this);
  }

  private connection(): H2Session {
    if (this.shared) return this.shared.connection();
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const session = new H2Session(connect(this.address.replace(/^unix:\/\//, '')));
    session.on('error', (err) => { this.connectError = err; });
    // An idle client must not keep the process alive.
    session.unref();
    this.session = session;
    return session;
  }

  /** Starts a call of any kind. */
  open(service: string, name: string): Call {
    const m = method(service, name);
    const headers: Headers = {
      ':method': 'POST', ':scheme': 'http', ':path': m.path, ':authority': 'localhost', 'content-type': 'application/grpc', te: 'trailers',
    };
    if (this.opts.namespace) headers[NAMESPACE_HEADER] = this.opts.namespace;
    if (this.opts.lease) headers[LEASE_HEADER] = this.opts.lease;
    if (this.opts.timeoutMs) headers['grpc-timeout'] = `${Math.ceil(this.opts.timeoutMs)}m`;
    const session = this.connection();
    const root = this.shared ?? this;
    const stream = session.request(headers);
    if (root.active++ === 0) session.ref();
    const queue: Msg[] = [];
    let done = false;
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    const deframer = new Deframer();
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      failure = err;
      if (--root.active === 0) session.unref();
      wake?.();
    };
    let timer: NodeJS.Timeout | undefined;
    if (this.opts.timeoutMs) {
      timer = setTimeout(() => { stream.close(CANCEL); finish(new BerthError(ErrorCode.DeadlineExceeded, `${m.path}: deadline exceeded after ${this.opts.timeoutMs} ms`)); }, this.opts.timeoutMs);
    }
    stream.on('response', (h) => { const err = statusError(h); if (err) finish(err); });
    stream.on('data', (chunk: Buffer) => {
      try {
        for (const body of deframer.push(chunk)) queue.push(m.res.toObject(m.res.decode(body), CONVERT));
      } catch (err) { finish(err instanceof FrameError ? new BerthError(ErrorCode.Internal, err.message) : err as Error); }
      wake?.();
    });
    stream.on('trailers', (h) => finish(statusError(h)));
    stream.on('close', () => {
      clearTimeout(timer);
      if (!done && stream.rstCode && stream.rstCode !== NO_ERROR) {
        finish(this.unavailable(`stream reset (code ${stream.rstCode})`));
      }
      finish();
    });
    stream.on('error', (err) => finish(this.unavailable(err.message)));
    return {
      send: (msg) => { stream.write(frame(m.req, msg)); },
      end: () => { stream.end(); },
      cancel: () => { if (!stream.closed) stream.close(CANCEL); finish(new BerthError(ErrorCode.Canceled, `${m.path}: cancelled`)); },
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<Msg>> => {
          for (;;) {
            if (queue.length) return { value: queue.shift()!, done: false };
            if (done) {
              if (failure && !(failure instanceof BerthError && failure.code === ErrorCode.Canceled)) throw failure;
              return { value: undefined, done: true };
            }
            await new Promise<void>((resolve) => { wake = resolve; });
            wake = undefined;
          }
        },
        return: async (): Promise<IteratorResult<Msg>> => {
          if (!done && !stream.closed) stream.close(CANCEL);
          finish();
          return { value: undefined, done: true };
        },
      }),
    };
  }

  /** A broken connection: the socket's own error ("connect ENOENT /run/berth/berthd.sock") says it best. */
  private unavailable(detail: string): BerthError {
    const cause = this.connectError ?? this.shared?.connectError;
    return new BerthError(ErrorCode.Unavailable, cause?.message ?? detail);
  }

  /** A unary call. */
  async call<T = Msg>(service: string, name: string, request: Msg = {}): Promise<T> {
    const c = this.open(service, name);
    c.send(request);
    c.end();
    let result: Msg | undefined;
    for await (const msg of c) result ??= msg;
    if (!result) throw new BerthError(ErrorCode.Internal, `${service}/${name}: no response message`);
    return result as T;
  }

  /** A server-streaming call. */
  async *stream<T = Msg>(service: string, name: string, request: Msg = {}): AsyncGenerator<T> {
    const c = this.open(service, name);
    c.send(request);
    c.end();
    for await (const msg of c) yield msg as T;
  }

  close(): void {
    if (!this.shared) this.session?.close();
  }
}
