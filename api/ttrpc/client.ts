// A ttrpc client over one unix socket connection: many concurrent calls (odd stream ids), metadata,
// deadlines sent as timeout_nano, errors rebuilt from google.rpc.Status, server-streaming calls as async
// iterators. When the connection drops every pending call fails with UNAVAILABLE naming the address.
import { connect, type Socket } from 'node:net';
import { BerthError, ErrorCode } from '../errdefs.ts';
import { REQUEST, RESPONSE, decode, encode, errorOf, methodCodec, type Msg } from './codec.ts';
import { Flags, FrameReader, MessageType, encodeFrame, type Frame } from './frame.ts';

export interface CallOptions {
  /** Metadata pairs, e.g. { 'containerd-namespace-ttrpc': 'default' }. */
  metadata?: Record<string, string>;
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface Pending {
  onFrame(f: Frame): void;
  fail(err: Error): void;
}

export const NAMESPACE_KEY = 'containerd-namespace-ttrpc';

export class TtrpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedError: Error | undefined;
  private readonly closeWaiters: (() => void)[] = [];

  private constructor(private readonly socket: Socket, readonly address: string) {
    const reader = new FrameReader(
      (f) => this.pending.get(f.streamId)?.onFrame(f),
      (streamId, _type, length) => this.pending.get(streamId)?.fail(new BerthError(ErrorCode.ResourceExhausted, `ttrpc: message length ${length} exceeds the maximum of 4 MiB`)),
    );
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    socket.on('error', (err) => { this.closedError ??= err; });
    socket.on('close', () => {
      const err = new BerthError(ErrorCode.Unavailable, `ttrpc: connection to ${this.address} closed${this.closedError ? `: ${this.closedError.message}` : ''}`);
      this.closedError = err;
      for (const p of [...this.pending.values()]) p.fail(err);
      this.pending.clear();
      for (const w of this.closeWaiters.splice(0)) w();
    });
  }

  /** Connects to `unix:///path`, `unix://path` or a plain path. */
  static connect(address: string, timeoutMs = 5000): Promise<TtrpcClient> {
    const path = address.replace(/^unix:\/\//, '');
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      const timer = setTimeout(() => { socket.destroy(); reject(new BerthError(ErrorCode.DeadlineExceeded, `ttrpc: connecting to ${address} timed out`)); }, timeoutMs);
      socket.once('connect', () => { clearTimeout(timer); resolve(new TtrpcClient(socket, address)); });
      socket.once('error', (err) => { clearTimeout(timer); reject(new BerthError(ErrorCode.Unavailable, `ttrpc: cannot connect to ${address}: ${err.message}`)); });
    });
  }

  get closed(): boolean {
    return this.socket.destroyed;
  }

  /** Resolves when the connection is gone. */
  waitClosed(): Promise<void> {
    return this.closed ? Promise.resolve() : new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  private start(service: string, method: string, request: Msg, opts: CallOptions, flags: number): { id: number; codec: NonNullable<ReturnType<typeof methodCodec>> } {
    if (this.closedError || this.socket.destroyed) throw this.closedError ?? new BerthError(ErrorCode.Unavailable, `ttrpc: connection to ${this.address} closed`);
    const codec = methodCodec(service, method);
    if (!codec) throw new BerthError(ErrorCode.InvalidArgument, `ttrpc: ${service}/${method} is not in berth's protos`);
    const id = this.nextId;
    this.nextId += 2;
    const metadata = Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value }));
    const envelope = {
      service, method, payload: encode(codec.request, request), metadata,
      ...(opts.timeoutMs ? { timeoutNano: Math.round(opts.timeoutMs * 1e6) } : {}),
    };
    this.socket.write(encodeFrame(id, MessageType.Request, flags, encode(REQUEST(), envelope)));
    return { id, codec };
  }

  /** A unary call. */
  call<T = Msg>(service: string, method: string, request: Msg = {}, opts: CallOptions = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let id: number;
      let codec;
      try { ({ id, codec } = this.start(service, method, request, opts, 0)); } catch (err) { reject(err); return; }
      const cleanup = this.guard(id, opts, reject);
      this.pending.set(id, {
        onFrame: (f) => {
          if (f.type !== MessageType.Response) return;
          cleanup();
          try {
            const res = decode(RESPONSE(), f.data);
            const err = errorOf(res.status);
            if (err) reject(err);
            else resolve(decode(codec.response, res.payload) as T);
          } catch (err) { reject(err); }
        },
        fail: (err) => { cleanup(); reject(err); },
      });
    });
  }

  /** A server-streaming call: the response messages, in order. */
  async *stream<T = Msg>(service: string, method: string, request: Msg = {}, opts: CallOptions = {}): AsyncGenerator<T> {
    const { id, codec } = this.start(service, method, request, opts, Flags.RemoteClosed);
    const queue: Msg[] = [];
    let done = false;
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    const finish = (err?: Error) => { done = true; failure = err; cleanup(); wake?.(); };
    const cleanup = this.guard(id, opts, (err) => finish(err));
    this.pending.set(id, {
      onFrame: (f) => {
        try {
          if (f.type === MessageType.Data) {
            if (!(f.flags & Flags.NoData)) queue.push(decode(codec.response, f.data));
            if (f.flags & Flags.RemoteClosed) finish();
          } else if (f.type === MessageType.Response) {
            finish(errorOf(decode(RESPONSE(), f.data).status));
          }
        } catch (err) { finish(err as Error); }
        wake?.();
      },
      fail: (err) => finish(err),
    });
    try {
      for (;;) {
        if (queue.length) { yield queue.shift() as T; continue; }
        if (done) { if (failure) throw failure; return; }
        await new Promise<void>((resolve) => { wake = resolve; });
        wake = undefined;
      }
    } finally {
      this.pending.delete(id);
    }
  }

  /** Deadline and abort handling for one stream; returns the cleanup. */
  private guard(id: number, opts: CallOptions, fail: (err: Error) => void): () => void {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => { this.pending.delete(id); fail(new BerthError(ErrorCode.Canceled, 'ttrpc: call cancelled')); };
    if (opts.timeoutMs) {
      timer = setTimeout(() => { this.pending.delete(id); fail(new BerthError(ErrorCode.DeadlineExceeded, `ttrpc: deadline of ${opts.timeoutMs} ms exceeded`)); }, opts.timeoutMs);
    }
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    return () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      this.pending.delete(id);
    };
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }
}
