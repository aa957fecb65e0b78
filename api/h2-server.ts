// The server side of HTTP/2 (RFC 9113) over a stream socket, as much as a gRPC server on a unix socket needs: no
// TLS, no push, no priorities. node:http2 sent a unary answer in two writes (headers and message, then the
// trailers, once its 'wantTrailers' event had run), so every client woke twice per call; here what is queued on a
// connection before the next tick leaves in one write. Flow control: we grant large windows and top them up
// as the application takes the data (not while a stream is paused); our sends wait for the peer's windows.
// Hostile peers: every resource a peer can make us hold or spend is bounded (see h2-limits.ts), and a peer that
// goes past a bound on purpose gets GOAWAY with ENHANCE_YOUR_CALM.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import {
  ACK, CANCEL, COMPRESSION_ERROR, DEFAULT_MAX_FRAME, DEFAULT_WINDOW, END_HEADERS, END_STREAM, ENHANCE_YOUR_CALM, FLOW_CONTROL_ERROR,
  FRAME_SIZE_ERROR, FrameReader, FrameSizeError, FrameType, NO_ERROR, PREFACE, PRIORITY, PROTOCOL_ERROR, REFUSED_STREAM,
  SETTINGS_ENABLE_PUSH, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_MAX_FRAME_SIZE,
  SETTINGS_MAX_HEADER_LIST_SIZE, STREAM_CLOSED, SendQueue, frame, frame32, goAwayFrame, headerFrames, settingsFrame, unpad,
} from './h2-frames.ts';
import {
  CONNECTION_WINDOW, ConnectionError, HANDSHAKE_TIMEOUT, HIGH_WATER, IDLE_TIMEOUT, LAST_WORDS_GRACE, MAX_CONTINUATIONS, MAX_HEADER_BLOCK,
  MAX_HEADER_LIST, MAX_QUEUED, MAX_SETTINGS_PER_FRAME, MAX_STREAMS, MAX_WINDOW, OUTPUT_LIMIT, ResetBudget, STREAM_WINDOW, UnreadControl,
} from './h2-limits.ts';
import { HeaderListTooLarge, HpackDecoder, HpackError, encodeHeaders } from './hpack.ts';

export type RequestHeaders = Record<string, string | string[]>;
export type ResponseHeaders = Record<string, string>;

export interface H2ServerOptions {
  handshakeTimeoutMs?: number;
  idleTimeoutMs?: number;
}

/**
 * One request. Events: 'data' (a DATA payload), 'end' (the peer finished sending), 'drain' (queued response data
 * went out), 'close' (the stream is over: answered in full, or reset; `aborted` says which).
 */
export class H2ServerStream extends EventEmitter {
  closed = false;
  aborted = false;
  private sendWindow: number;
  /** The peer's initial window that sendWindow includes: a SETTINGS change applies when the stream next sends. */
  private windowBase: number;
  private recvWindow = STREAM_WINDOW;
  private readonly pending = new SendQueue();
  private trailers: ResponseHeaders | undefined;
  private ending = false;
  private remoteEnded = false;
  private localEnded = false;
  private paused = false;
  /** Bytes taken from the peer but not yet granted back (held while paused). */
  private owed = 0;

  constructor(private readonly session: H2ServerSession, readonly id: number, readonly headers: RequestHeaders) {
    super();
    this.sendWindow = this.windowBase = session.peerInitialWindow;
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
    this.session.queued += data.length;
    if (this.session.queued > MAX_QUEUED) { this.close(ENHANCE_YOUR_CALM); return false; }
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

  /** Data waiting: for the connection or the socket ('connection'), or for this stream's own window ('stream'). */
  get waitingFor(): 'connection' | 'stream' | undefined {
    if (this.closed || this.pending.empty) return undefined;
    return this.syncWindow() > 0 ? 'connection' : 'stream';
  }

  /** Sends queued data as the windows (and `room`, what the socket may still take) allow; returns what it sent. */
  drain(room: number, maxFrame: number): number {
    let sent = 0;
    const window = this.syncWindow();
    for (let chunk; !this.closed && (chunk = this.pending.take(Math.min(window - sent, room - sent, maxFrame)));) {
      sent += chunk.length;
      this.session.send(frame(FrameType.Data, 0, this.id, chunk));
    }
    this.sendWindow -= sent;
    this.session.queued -= sent;
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
    if (this.syncWindow() > MAX_WINDOW) throw new StreamError(this.id, FLOW_CONTROL_ERROR, 'window over 2^31-1');
  }

  onData(data: Buffer, flowBytes: number, endStream: boolean): void {
    if (this.remoteEnded) throw new StreamError(this.id, STREAM_CLOSED, 'DATA after the end of the request');
    if ((this.recvWindow -= flowBytes) < 0) throw new StreamError(this.id, FLOW_CONTROL_ERROR, 'DATA beyond the window we granted');
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
    this.session.queued -= this.pending.bytes;
    this.pending.clear();
    this.session.grant(this.owed);
    this.owed = 0;
    this.session.forget(this);
    this.emit('close');
  }

  /** The window with the peer's latest initial window applied (a change beyond 2^31-1 resets the stream). */
  private syncWindow(): number {
    const initial = this.session.peerInitialWindow;
    if (initial !== this.windowBase) {
      this.sendWindow += initial - this.windowBase;
      this.windowBase = initial;
      if (this.sendWindow > MAX_WINDOW) { this.close(FLOW_CONTROL_ERROR); return 0; }
    }
    return this.sendWindow;
  }

  private grantOwed(): void {
    // Topped up in batches, not per frame: a WINDOW_UPDATE per DATA frame would double the frames sent.
    if (this.owed >= STREAM_WINDOW / 4 || (this.owed && this.remoteEnded)) {
      if (!this.remoteEnded) {
        this.session.send(frame32(FrameType.WindowUpdate, this.id, this.owed));
        this.recvWindow += this.owed;
      }
      this.session.grant(this.owed);
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
  /** The peer's SETTINGS_INITIAL_WINDOW_SIZE, which streams apply lazily (h2-limits.ts: walking them per change
   * let a peer spend our time at will). */
  peerInitialWindow = DEFAULT_WINDOW;
  /** Response bytes the streams hold, waiting for windows or the socket (bounded: h2-limits.ts). */
  queued = 0;
  private destroyed = false;
  private readonly streams = new Map<number, H2ServerStream>();
  /** Streams with data waiting for the connection window or the socket to drain; and for their own windows (kept
   * apart, so that a connection WINDOW_UPDATE does not walk streams it cannot help). */
  private readonly blocked = new Set<H2ServerStream>();
  private readonly starved = new Set<H2ServerStream>();
  private readonly decoder = new HpackDecoder();
  private readonly reader = new FrameReader(DEFAULT_MAX_FRAME);
  private readonly resets = new ResetBudget();
  private readonly unreadControl = new UnreadControl();
  private prefaceSeen = 0;
  private settingsSeen = false;
  private lastStream = 0;
  private sendWindow = DEFAULT_WINDOW;
  private recvWindow = CONNECTION_WINDOW;
  private maxFrame = DEFAULT_MAX_FRAME;
  /** Connection window the application has taken back, not yet granted. */
  private granted = 0;
  private headerBlock: { stream: number; parts: Buffer[]; size: number; continuations: number; endStream: boolean } | undefined;
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  private readonly handshakeTimer: NodeJS.Timeout;
  private idleTimer: NodeJS.Timeout | undefined;
  private idleSince = performance.now();
  private readonly idleTimeoutMs: number;

  constructor(private readonly socket: Socket, opts: H2ServerOptions = {}) {
    super();
    socket.setNoDelay?.(true);
    this.idleTimeoutMs = opts.idleTimeoutMs ?? IDLE_TIMEOUT;
    this.send(settingsFrame([[SETTINGS_ENABLE_PUSH, 0], [SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS], [SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW],
      [SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST]]));
    this.send(frame32(FrameType.WindowUpdate, 0, CONNECTION_WINDOW - DEFAULT_WINDOW));
    // A peer that never speaks HTTP/2 is dropped without a word.
    this.handshakeTimer = setTimeout(() => this.destroy(), opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT).unref();
    socket.on('data', (chunk: Buffer) => this.onInput(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('error', () => this.destroy());
    socket.on('close', () => this.destroy());
  }

  /** Frames queued in one go (before the next tick) leave together. */
  send(data: Buffer): void {
    if (this.destroyed) return;
    this.out.push(data);
    this.outBytes += data.length;
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(() => {
      this.flushScheduled = false;
      if (this.destroyed || !this.out.length) return;
      const batch = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out);
      this.out = [];
      this.outBytes = 0;
      // A peer that does not read: we stop reading it too, until what we wrote has gone.
      if (!this.socket.write(batch) && this.socket.writableLength > OUTPUT_LIMIT) this.socket.pause();
    });
  }

  sendHeaders(stream: number, headers: ResponseHeaders, endStream: boolean): void {
    for (const f of headerFrames(stream, encodeHeaders(Object.entries(headers)), endStream, this.maxFrame)) this.send(f);
  }

  flush(stream: H2ServerStream): void {
    const room = OUTPUT_LIMIT - this.socket.writableLength - this.outBytes;
    this.sendWindow -= stream.drain(Math.min(this.sendWindow, room), this.maxFrame);
    const waiting = stream.waitingFor;
    if (waiting === 'connection') this.blocked.add(stream); else if (this.blocked.size) this.blocked.delete(stream);
    if (waiting === 'stream') this.starved.add(stream); else if (this.starved.size) this.starved.delete(stream);
  }

  forget(stream: H2ServerStream): void {
    this.streams.delete(stream.id);
    if (this.blocked.size) this.blocked.delete(stream);
    if (this.starved.size) this.starved.delete(stream);
    if (!this.streams.size) this.idleSince = performance.now();
    if (this.closed && !this.streams.size) this.endSocket();
  }

  /** Connection window the application has taken back (granted in batches, as streams do). */
  grant(bytes: number): void {
    this.granted += bytes;
    if (this.granted >= CONNECTION_WINDOW / 4) {
      this.send(frame32(FrameType.WindowUpdate, 0, this.granted));
      this.recvWindow += this.granted;
      this.granted = 0;
    }
  }

  /** No new streams; the connection ends once those open are done (GOAWAY, then the socket). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.send(goAwayFrame(this.lastStream, NO_ERROR));
    if (!this.streams.size) this.endSocket();
  }

  /** Ends the connection now; `lastWords` (a GOAWAY) are written first, for a peer that reads them soon enough. */
  destroy(lastWords?: Buffer): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.closed = true;
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.idleTimer);
    for (const s of [...this.streams.values()]) s.finish(true);
    if (lastWords) {
      // Nothing is read until the GOAWAY is out; then what the peer still sends is read and dropped (closing
      // on unread input would reset the connection, and the GOAWAY with it) until it closes, or the grace ends.
      this.socket.pause();
      this.socket.end(lastWords, () => this.socket.resume());
      setTimeout(() => this.socket.destroy(), LAST_WORDS_GRACE).unref();
    } else {
      this.socket.destroy();
    }
    this.emit('close');
  }

  /** After what is queued has been written (ticks keep order); 'close' comes with the socket's. */
  private endSocket(): void {
    process.nextTick(() => { if (!this.destroyed) this.socket.end(); });
  }

  private onDrain(): void {
    if (this.destroyed) return;
    this.socket.resume();
    this.flushBlocked();
  }

  /** Streams waiting for the connection, in turn, while its window and the socket have room. */
  private flushBlocked(): void {
    for (const s of this.blocked) {
      if (this.sendWindow <= 0 || this.socket.writableLength + this.outBytes >= OUTPUT_LIMIT) break;
      this.flush(s);
    }
  }

  /** Frames answering the peer's (acks, resets): a peer that reads none of them is cut off (h2-limits.ts). */
  private sendControl(data: Buffer): void {
    this.unreadControl.charge(this.socket.writableLength);
    this.send(data);
  }

  private onIdle(): void {
    // Re-armed in full when streams came and went meanwhile: a connection may stay up to twice the timeout.
    if (!this.streams.size && performance.now() - this.idleSince >= this.idleTimeoutMs) this.close();
    else this.idleTimer!.refresh();
  }

  private onInput(chunk: Buffer): void {
    if (this.destroyed) return;
    try {
      if (this.prefaceSeen < PREFACE.length) {
        const n = Math.min(PREFACE.length - this.prefaceSeen, chunk.length);
        if (!chunk.subarray(0, n).equals(PREFACE.subarray(this.prefaceSeen, this.prefaceSeen + n))) throw new Error('not an HTTP/2 client preface');
        this.prefaceSeen += n;
        chunk = chunk.subarray(n);
      }
      for (const f of this.reader.frames(chunk)) {
        if (this.destroyed) return;
        try {
          this.onFrame(f.type, f.flags, f.stream, f.payload);
        } catch (err) {
          if (!(err instanceof StreamError)) throw err;
          this.sendControl(frame32(FrameType.RstStream, err.stream, err.code));
          this.streams.get(err.stream)?.finish(true);
        }
      }
    } catch (err) {
      const code = err instanceof ConnectionError ? err.code : err instanceof FrameSizeError ? FRAME_SIZE_ERROR
        : err instanceof HpackError ? COMPRESSION_ERROR : PROTOCOL_ERROR;
      this.send(goAwayFrame(this.lastStream, code, (err as Error).message?.slice(0, 200)));
      const lastWords = Buffer.concat(this.out.splice(0));
      this.destroy(lastWords);
    }
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.headerBlock && type !== FrameType.Continuation) throw new Error('expected CONTINUATION');
    if (!this.settingsSeen) {
      if (type !== FrameType.Settings || flags & ACK) throw new Error('the connection does not start with SETTINGS');
      this.settingsSeen = true;
      clearTimeout(this.handshakeTimer);
      this.idleTimer = setTimeout(() => this.onIdle(), this.idleTimeoutMs).unref();
    }
    switch (type) {
      case FrameType.Data: {
        if ((this.recvWindow -= payload.length) < 0) throw new ConnectionError(FLOW_CONTROL_ERROR, 'DATA beyond the connection window we granted');
        const s = this.streams.get(id);
        if (!s) {
          if (id > this.lastStream || !id) throw new Error('DATA on an idle stream');
          this.grant(payload.length); // for a stream that is over: nobody will take it
          break;
        }
        s.onData(unpad(payload, flags), payload.length, (flags & END_STREAM) !== 0);
        break;
      }
      case FrameType.Headers: {
        if (!id || id % 2 === 0) throw new Error('HEADERS on an invalid stream id');
        let block = unpad(payload, flags);
        if (flags & PRIORITY) block = block.subarray(5);
        this.headerBlock = { stream: id, parts: [block], size: 9 + payload.length, continuations: 0, endStream: (flags & END_STREAM) !== 0 };
        if (flags & END_HEADERS) this.endHeaders();
        break;
      }
      case FrameType.Continuation: {
        const b = this.headerBlock;
        if (!b || b.stream !== id) throw new Error('unexpected CONTINUATION');
        b.parts.push(payload);
        // Counted with each frame's header: empty CONTINUATIONs cost us a frame each and add no bytes.
        b.size += 9 + payload.length;
        if (++b.continuations > MAX_CONTINUATIONS) throw new ConnectionError(ENHANCE_YOUR_CALM, `a header block in more than ${MAX_CONTINUATIONS} CONTINUATION frames`);
        if (b.size > MAX_HEADER_BLOCK) throw new ConnectionError(ENHANCE_YOUR_CALM, `a header block over ${MAX_HEADER_BLOCK} bytes`);
        if (flags & END_HEADERS) this.endHeaders();
        break;
      }
      case FrameType.RstStream: {
        if (payload.length !== 4) throw new FrameSizeError('RST_STREAM of the wrong size');
        if (!id) throw new Error('RST_STREAM on stream 0');
        const s = this.streams.get(id);
        if (s) { this.resets.charge('reset before they were answered'); s.finish(true); }
        break;
      }
      case FrameType.Settings:
        if (id) throw new Error('SETTINGS on a stream');
        if (flags & ACK) { if (payload.length) throw new FrameSizeError('SETTINGS ack with a payload'); }
        else this.onSettings(payload);
        break;
      case FrameType.Ping:
        if (payload.length !== 8) throw new FrameSizeError('PING of the wrong size');
        if (id) throw new Error('PING on a stream');
        if (!(flags & ACK)) this.sendControl(frame(FrameType.Ping, ACK, 0, payload));
        break;
      case FrameType.GoAway:
        this.closed = true;
        if (!this.streams.size) this.endSocket();
        break;
      case FrameType.WindowUpdate: {
        if (payload.length !== 4) throw new FrameSizeError('WINDOW_UPDATE of the wrong size');
        const increment = payload.readUInt32BE(0) & 0x7fffffff;
        if (!increment) throw new StreamError(id, PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
        if (id === 0) {
          this.sendWindow += increment;
          if (this.sendWindow > MAX_WINDOW) throw new ConnectionError(FLOW_CONTROL_ERROR, 'connection window over 2^31-1');
          this.flushBlocked();
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
    let list;
    try {
      list = this.decoder.decode(parts.length === 1 ? parts[0]! : Buffer.concat(parts), MAX_HEADER_LIST);
    } catch (err) {
      if (!(err instanceof HeaderListTooLarge)) throw err;
      list = undefined;
    }
    const existing = this.streams.get(id);
    if (existing) {
      // Trailers from the client: only the end of its request matters.
      if (!endStream || !list) throw new StreamError(id, PROTOCOL_ERROR, 'a second header block without END_STREAM, or too large');
      existing.onEnd();
      return;
    }
    if (id <= this.lastStream) throw new Error(`HEADERS for stream ${id}, not above the last (${this.lastStream})`);
    this.lastStream = id;
    if (this.closed) { this.sendControl(frame32(FrameType.RstStream, id, REFUSED_STREAM)); return; }
    if (!list) return this.refuse(id, endStream, 'with headers over the limit', ':status', '431');
    if (this.streams.size >= MAX_STREAMS) return this.refuse(id, endStream, `over the ${MAX_STREAMS} open at once`);
    // Repeated fields become arrays, appended to in place (copying the list per field was quadratic).
    const headers: RequestHeaders = Object.create(null);
    for (const [name, value] of list) {
      const had = headers[name];
      if (had === undefined) headers[name] = value;
      else if (Array.isArray(had)) had.push(value);
      else headers[name] = [had, value];
    }
    const stream = new H2ServerStream(this, id, headers);
    this.streams.set(id, stream);
    this.emit('stream', stream);
    if (endStream) stream.onEnd();
  }

  /** A stream we will not serve: REFUSED_STREAM, or an HTTP answer (431) when retrying would not help. */
  private refuse(id: number, endStream: boolean, why: string, ...status: [] | [':status', string]): void {
    this.resets.charge(`refused, ${why}`);
    if (!status.length) { this.sendControl(frame32(FrameType.RstStream, id, REFUSED_STREAM)); return; }
    this.sendHeaders(id, { [status[0]]: status[1] }, true);
    if (!endStream) this.sendControl(frame32(FrameType.RstStream, id, NO_ERROR));
  }

  private onSettings(payload: Buffer): void {
    if (payload.length % 6) throw new FrameSizeError('SETTINGS of the wrong size');
    if (payload.length / 6 > MAX_SETTINGS_PER_FRAME) throw new ConnectionError(ENHANCE_YOUR_CALM, `over ${MAX_SETTINGS_PER_FRAME} settings in one SETTINGS frame`);
    const before = this.peerInitialWindow;
    for (let off = 0; off < payload.length; off += 6) {
      const id = payload.readUInt16BE(off);
      const value = payload.readUInt32BE(off + 2);
      if (id === SETTINGS_INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW) throw new ConnectionError(FLOW_CONTROL_ERROR, 'initial window over 2^31-1');
        this.peerInitialWindow = value;
      } else if (id === SETTINGS_MAX_FRAME_SIZE) {
        if (value < DEFAULT_MAX_FRAME || value > (1 << 24) - 1) throw new Error('invalid SETTINGS_MAX_FRAME_SIZE');
        this.maxFrame = value;
      }
    }
    this.sendControl(frame(FrameType.Settings, ACK, 0));
    // Streams waiting for their own windows may have one now (each sends, or moves to wait for the connection).
    if (this.peerInitialWindow > before) for (const s of this.starved) this.flush(s);
  }
}
