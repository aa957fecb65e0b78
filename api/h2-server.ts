// The server side of HTTP/2 (RFC 9113) over a stream socket, as much as a gRPC server on a unix socket needs: no
// TLS, no push, no priorities. node:http2 sent a unary answer in two writes (headers and message, then the
// trailers, once its 'wantTrailers' event had run), so every client woke twice per call; here what is queued on a
// connection before the next tick leaves in one write. Flow control: we grant large windows and top them up
// as the application takes the data (not while a stream is paused); our sends wait for the peer's windows.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import {
  ACK, CANCEL, DEFAULT_MAX_FRAME, DEFAULT_WINDOW, END_HEADERS, END_STREAM, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, FrameReader, FrameSizeError, FrameType,
  NO_ERROR, PREFACE, PRIORITY, PROTOCOL_ERROR, SETTINGS_ENABLE_PUSH, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE, STREAM_CLOSED,
  SendQueue, frame, frame32, goAwayFrame, headerFrames, settingsFrame, unpad,
} from './h2-frames.ts';
import { HpackDecoder, encodeHeaders } from './hpack.ts';

/** What a peer may send on one stream, and on the connection, before we grant more. */
const STREAM_WINDOW = 1 << 20;
const CONNECTION_WINDOW = 16 << 20;
/** A header block larger than this (all its frames together) ends the connection. */
const MAX_HEADER_BLOCK = 1 << 20;
/** Queued response bytes past which write() asks the writer to wait for 'drain'. */
const HIGH_WATER = 1 << 20;

export type RequestHeaders = Record<string, string | string[]>;
export type ResponseHeaders = Record<string, string>;

/**
 * One request. Events: 'data' (a DATA payload), 'end' (the peer finished sending), 'drain' (queued response data
 * went out), 'close' (the stream is over: answered in full, or reset; `aborted` says which).
 */
export class H2ServerStream extends EventEmitter {
  closed = false;
  aborted = false;
  private sendWindow: number;
  private readonly pending = new SendQueue();
  private trailers: ResponseHeaders | undefined;
  private ending = false;
  private remoteEnded = false;
  private localEnded = false;
  private paused = false;
  /** Bytes taken from the peer but not yet granted back (held while paused). */
  private owed = 0;

  constructor(private readonly session: H2ServerSession, readonly id: number, readonly headers: RequestHeaders, window: number) {
    super();
    this.sendWindow = window;
  }

  /** Sends the response headers; with endStream, they are the whole answer (gRPC's trailers-only). */
  respond(headers: ResponseHeaders, opts: { endStream?: boolean } = {}): void {
    if (this.closed) return;
    this.session.sendHeaders(this.id, headers, !!opts.endStream);
    if (opts.endStream) { this.localEnded = true; this.maybeClose(); }
  }

  /** Queues response data; false once enough is queued that the writer should wait for 'drain'. */
  write(data: Buffer): boolean {
    if (this.closed || this.ending) return false;
    this.pending.push(data);
    this.session.flush(this);
    return this.pending.bytes < HIGH_WATER;
  }

  /** Ends the response, with trailers once the queued data has gone. */
  end(trailers?: ResponseHeaders): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    this.trailers = trailers;
    this.session.flush(this);
  }

  /** Resets the stream (RST_STREAM `code`): the peer learns we gave up on it. */
  close(code = CANCEL): void {
    if (this.closed) return;
    this.session.send(frame32(FrameType.RstStream, this.id, code));
    this.finish(true);
  }

  pause(): void { this.paused = true; }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.grantOwed();
  }

  /** Sends queued data as the windows allow; returns the connection window it took. */
  drain(connectionWindow: number, maxFrame: number): number {
    let sent = 0;
    for (let chunk; !this.closed && (chunk = this.pending.take(Math.min(this.sendWindow, connectionWindow - sent, maxFrame)));) {
      this.sendWindow -= chunk.length;
      sent += chunk.length;
      this.session.send(frame(FrameType.Data, 0, this.id, chunk));
    }
    if (!this.closed && this.ending && this.pending.empty && !this.localEnded) {
      this.localEnded = true;
      if (this.trailers) this.session.sendHeaders(this.id, this.trailers, true);
      else this.session.send(frame(FrameType.Data, END_STREAM, this.id));
      this.maybeClose();
    }
    if (sent && this.pending.bytes < HIGH_WATER) this.emit('drain');
    return sent;
  }

  addWindow(increment: number): void {
    this.sendWindow += increment;
    if (this.sendWindow > 2 ** 31 - 1) throw new StreamError(this.id, FLOW_CONTROL_ERROR, 'window over 2^31-1');
  }

  onData(data: Buffer, flowBytes: number, endStream: boolean): void {
    if (this.remoteEnded) throw new StreamError(this.id, STREAM_CLOSED, 'DATA after the end of the request');
    this.owed += flowBytes;
    if (data.length) this.emit('data', data);
    if (!this.paused) this.grantOwed();
    if (endStream) this.onEnd();
  }

  onEnd(): void {
    if (this.remoteEnded) return;
    this.remoteEnded = true;
    this.emit('end');
    this.maybeClose();
  }

  finish(aborted: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.aborted = aborted;
    this.pending.clear();
    this.session.forget(this.id);
    this.emit('close');
  }

  private grantOwed(): void {
    // Topped up in batches, not per frame: a WINDOW_UPDATE per DATA frame would double the frames sent.
    if (this.owed >= STREAM_WINDOW / 4 || (this.owed && this.remoteEnded)) {
      if (!this.remoteEnded) this.session.send(frame32(FrameType.WindowUpdate, this.id, this.owed));
      this.owed = 0;
    }
  }

  private maybeClose(): void {
    if (this.localEnded && this.remoteEnded) this.finish(false);
    // Answered in full before the request ended: the rest of it is not wanted (RFC 9113 8.1).
    else if (this.localEnded && !this.closed) { this.session.send(frame32(FrameType.RstStream, this.id, NO_ERROR)); this.finish(false); }
  }
}

class StreamError extends Error {
  constructor(readonly stream: number, readonly code: number, message: string) { super(message); }
}

/** A client connection: 'stream' for each new request. */
export class H2ServerSession extends EventEmitter {
  closed = false;
  private destroyed = false;
  private readonly streams = new Map<number, H2ServerStream>();
  private readonly decoder = new HpackDecoder();
  private readonly reader = new FrameReader(DEFAULT_MAX_FRAME);
  private prefaceSeen = 0;
  private lastStream = 0;
  private sendWindow = DEFAULT_WINDOW;
  private initialStreamWindow = DEFAULT_WINDOW;
  private maxFrame = DEFAULT_MAX_FRAME;
  private received = 0;
  private headerBlock: { stream: number; parts: Buffer[]; size: number; endStream: boolean } | undefined;
  private out: Buffer[] = [];
  private flushScheduled = false;

  constructor(private readonly socket: Socket) {
    super();
    socket.setNoDelay?.(true);
    this.send(settingsFrame([[SETTINGS_ENABLE_PUSH, 0], [SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW]]));
    this.send(frame32(FrameType.WindowUpdate, 0, CONNECTION_WINDOW - DEFAULT_WINDOW));
    socket.on('data', (chunk: Buffer) => this.onInput(chunk));
    socket.on('error', () => this.destroy());
    socket.on('close', () => this.destroy());
  }

  /** Frames queued in one go (before the next tick) leave together. */
  send(data: Buffer): void {
    if (this.destroyed) return;
    this.out.push(data);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(() => {
      this.flushScheduled = false;
      if (this.destroyed || !this.out.length) return;
      const batch = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out);
      this.out = [];
      this.socket.write(batch);
    });
  }

  sendHeaders(stream: number, headers: ResponseHeaders, endStream: boolean): void {
    for (const f of headerFrames(stream, encodeHeaders(Object.entries(headers)), endStream, this.maxFrame)) this.send(f);
  }

  flush(stream: H2ServerStream): void {
    this.sendWindow -= stream.drain(this.sendWindow, this.maxFrame);
  }

  forget(id: number): void {
    this.streams.delete(id);
    if (this.closed && !this.streams.size) this.endSocket();
  }

  /** No new streams; the connection ends once those open are done (GOAWAY, then the socket). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.send(goAwayFrame(this.lastStream, NO_ERROR));
    if (!this.streams.size) this.endSocket();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.closed = true;
    for (const s of [...this.streams.values()]) s.finish(true);
    this.socket.destroy();
    this.emit('close');
  }

  /** After what is queued has been written (ticks keep order); 'close' comes with the socket's. */
  private endSocket(): void {
    process.nextTick(() => { if (!this.destroyed) this.socket.end(); });
  }

  private onInput(chunk: Buffer): void {
    try {
      if (this.prefaceSeen < PREFACE.length) {
        const n = Math.min(PREFACE.length - this.prefaceSeen, chunk.length);
        if (!chunk.subarray(0, n).equals(PREFACE.subarray(this.prefaceSeen, this.prefaceSeen + n))) throw new Error('not an HTTP/2 client preface');
        this.prefaceSeen += n;
        chunk = chunk.subarray(n);
      }
      for (const f of this.reader.frames(chunk)) {
        try {
          this.onFrame(f.type, f.flags, f.stream, f.payload);
        } catch (err) {
          if (!(err instanceof StreamError)) throw err;
          this.send(frame32(FrameType.RstStream, err.stream, err.code));
          this.streams.get(err.stream)?.finish(true);
        }
      }
    } catch (err) {
      this.send(goAwayFrame(this.lastStream, err instanceof FrameSizeError ? FRAME_SIZE_ERROR : PROTOCOL_ERROR));
      if (this.out.length) this.socket.write(Buffer.concat(this.out.splice(0)));
      this.destroy();
    }
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.headerBlock && type !== FrameType.Continuation) throw new Error('expected CONTINUATION');
    switch (type) {
      case FrameType.Data: {
        this.received += payload.length;
        if (this.received >= CONNECTION_WINDOW / 4) { this.send(frame32(FrameType.WindowUpdate, 0, this.received)); this.received = 0; }
        const s = this.streams.get(id);
        if (!s) { if (id > this.lastStream) throw new Error('DATA on an idle stream'); break; }
        s.onData(unpad(payload, flags), payload.length, (flags & END_STREAM) !== 0);
        break;
      }
      case FrameType.Headers: {
        if (!id || id % 2 === 0) throw new Error('HEADERS on an invalid stream id');
        let block = unpad(payload, flags);
        if (flags & PRIORITY) block = block.subarray(5);
        this.headerBlock = { stream: id, parts: [block], size: block.length, endStream: (flags & END_STREAM) !== 0 };
        if (flags & END_HEADERS) this.endHeaders();
        break;
      }
      case FrameType.Continuation:
        if (!this.headerBlock || this.headerBlock.stream !== id) throw new Error('unexpected CONTINUATION');
        this.headerBlock.parts.push(payload);
        this.headerBlock.size += payload.length;
        if (this.headerBlock.size > MAX_HEADER_BLOCK) throw new Error('header block too large');
        if (flags & END_HEADERS) this.endHeaders();
        break;
      case FrameType.RstStream:
        this.streams.get(id)?.finish(true);
        break;
      case FrameType.Settings:
        if (id) throw new Error('SETTINGS on a stream');
        if (!(flags & ACK)) this.onSettings(payload);
        break;
      case FrameType.Ping:
        if (payload.length !== 8) throw new Error('PING of the wrong size');
        if (!(flags & ACK)) this.send(frame(FrameType.Ping, ACK, 0, payload));
        break;
      case FrameType.GoAway:
        this.closed = true;
        if (!this.streams.size) this.endSocket();
        break;
      case FrameType.WindowUpdate: {
        const increment = payload.readUInt32BE(0) & 0x7fffffff;
        if (!increment) throw new StreamError(id, PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
        if (id === 0) {
          this.sendWindow += increment;
          for (const s of this.streams.values()) this.flush(s);
        } else {
          const s = this.streams.get(id);
          if (s) { s.addWindow(increment); this.flush(s); }
        }
        break;
      }
      case FrameType.PushPromise:
        throw new Error('PUSH_PROMISE from a client');
      default: // PRIORITY and unknown frame types are ignored
    }
  }

  private endHeaders(): void {
    const { stream: id, parts, endStream } = this.headerBlock!;
    this.headerBlock = undefined;
    // Decoded in every case: the dynamic table must follow every block.
    const list = this.decoder.decode(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    const existing = this.streams.get(id);
    if (existing) {
      // Trailers from the client: only the end of its request matters.
      if (!endStream) throw new StreamError(id, PROTOCOL_ERROR, 'a second header block without END_STREAM');
      existing.onEnd();
      return;
    }
    if (id <= this.lastStream) throw new Error(`HEADERS for stream ${id}, not above the last (${this.lastStream})`);
    this.lastStream = id;
    if (this.closed) { this.send(frame32(FrameType.RstStream, id, 7 /* REFUSED_STREAM */)); return; }
    const headers: RequestHeaders = {};
    for (const [name, value] of list) {
      const had = headers[name];
      headers[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
    }
    const stream = new H2ServerStream(this, id, headers, this.initialStreamWindow);
    this.streams.set(id, stream);
    this.emit('stream', stream);
    if (endStream) stream.onEnd();
  }

  private onSettings(payload: Buffer): void {
    if (payload.length % 6) throw new Error('SETTINGS of the wrong size');
    for (let off = 0; off < payload.length; off += 6) {
      const id = payload.readUInt16BE(off);
      const value = payload.readUInt32BE(off + 2);
      if (id === SETTINGS_INITIAL_WINDOW_SIZE) {
        if (value > 2 ** 31 - 1) throw new Error('initial window over 2^31-1');
        for (const s of this.streams.values()) s.addWindow(value - this.initialStreamWindow);
        this.initialStreamWindow = value;
      } else if (id === SETTINGS_MAX_FRAME_SIZE) {
        if (value < DEFAULT_MAX_FRAME || value > (1 << 24) - 1) throw new Error('invalid SETTINGS_MAX_FRAME_SIZE');
        this.maxFrame = value;
      }
    }
    this.send(frame(FrameType.Settings, ACK, 0));
    for (const s of this.streams.values()) this.flush(s);
  }
}
