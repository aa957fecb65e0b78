// A small HTTP/2 client (RFC 9113) over any stream socket: what gRPC over a unix socket needs, and no more (no
// TLS, no push, no priorities). node:http2 does the same job but takes ~10 ms to load, which every CLI command
// paid; this module is part of the CLI's startup snapshot. Flow control: we grant the server large windows and
// top them up as data arrives; our sends wait for the server's windows.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import {
  ACK, CANCEL, DEFAULT_MAX_FRAME, DEFAULT_WINDOW, END_STREAM, END_HEADERS, FrameReader, FrameType as Type, NO_ERROR, PREFACE, PRIORITY, PROTOCOL_ERROR,
  SETTINGS_ENABLE_PUSH, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE, SendQueue, frame, frame32, goAwayFrame, headerFrames, settingsFrame, unpad,
} from './h2-frames.ts';
import { HpackDecoder, encodeHeaders, type HeaderList } from './hpack.ts';

/** What we let the server send before we top the window up (per stream, and for the connection). */
const RECEIVE_WINDOW = 1 << 30;
export { CANCEL, NO_ERROR } from './h2-frames.ts';

export type Headers = Record<string, string>;

const toHeaders = (list: HeaderList): Headers => Object.fromEntries(list);

/** One request: 'response' (first headers), 'data', 'trailers', then 'close'; 'error' on a broken connection. */
export class H2Stream extends EventEmitter {
  rstCode: number | undefined;
  closed = false;
  sendWindow: number;
  private readonly pending = new SendQueue();
  private endRequested = false;
  private endSent = false;
  private responded = false;
  private received = 0;

  constructor(private readonly session: H2Session, readonly id: number, window: number) {
    super();
    this.sendWindow = window;
  }

  write(data: Buffer): void {
    if (this.closed || this.endRequested || !data.length) return;
    this.pending.push(data);
    this.session.flush(this);
  }

  end(): void {
    if (this.closed || this.endRequested) return;
    this.endRequested = true;
    this.session.flush(this);
  }

  /** Resets the stream (RST_STREAM with `code`). */
  close(code = CANCEL): void {
    if (this.closed) return;
    this.reset(code);
    this.finish(code);
  }

  private reset(code: number): void {
    this.session.send(frame32(Type.RstStream, this.id, code));
  }

  /** The server has answered in full: a request body it did not wait for is not sent (RFC 9113 8.1). */
  private remoteEnded(): void {
    if (!this.endSent) { this.endSent = true; this.pending.clear(); this.reset(NO_ERROR); }
    this.finish();
  }

  /** Sends DATA frames as the windows allow; the last carries END_STREAM once end() was called. Returns the
   * bytes taken from the connection's window. */
  drain(connectionWindow: number, maxFrame: number): number {
    let sent = 0;
    for (let chunk; !this.closed && (chunk = this.pending.take(Math.min(this.sendWindow, connectionWindow - sent, maxFrame)));) {
      this.sendWindow -= chunk.length;
      sent += chunk.length;
      const last = this.endRequested && this.pending.empty;
      this.session.send(frame(Type.Data, last ? END_STREAM : 0, this.id, chunk));
      if (last) this.endSent = true;
    }
    if (!this.closed && this.endRequested && !this.endSent && this.pending.empty) {
      this.endSent = true;
      this.session.send(frame(Type.Data, END_STREAM, this.id));
    }
    return sent;
  }

  onHeaders(list: HeaderList, endStream: boolean): void {
    const headers = toHeaders(list);
    if (!this.responded) { this.responded = true; this.emit('response', headers); } else this.emit('trailers', headers);
    if (endStream) this.remoteEnded();
  }

  onData(data: Buffer, endStream: boolean): void {
    if (data.length) this.emit('data', data);
    this.received += data.length;
    if (this.received >= RECEIVE_WINDOW / 2 && !endStream) {
      this.session.grant(this.id, this.received);
      this.received = 0;
    }
    if (endStream) this.remoteEnded();
  }

  finish(rstCode?: number, error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.rstCode = rstCode;
    this.session.forget(this.id);
    if (error) this.emit('error', error);
    this.emit('close');
  }
}

export class H2Session extends EventEmitter {
  closed = false;
  destroyed = false;
  private readonly streams = new Map<number, H2Stream>();
  private readonly decoder = new HpackDecoder();
  private nextId = 1;
  private readonly reader = new FrameReader(DEFAULT_MAX_FRAME);
  private sendWindow = DEFAULT_WINDOW;
  private initialStreamWindow = DEFAULT_WINDOW;
  private maxFrame = DEFAULT_MAX_FRAME;
  private received = 0;
  /** A header block continued in CONTINUATION frames: stream, parts so far, END_STREAM seen. */
  private headerBlock: { stream: number; parts: Buffer[]; endStream: boolean } | undefined;

  constructor(private readonly socket: Socket) {
    super();
    socket.setNoDelay?.(true);
    const settings = settingsFrame([[SETTINGS_ENABLE_PUSH, 0], [SETTINGS_INITIAL_WINDOW_SIZE, RECEIVE_WINDOW]]);
    socket.write(Buffer.concat([PREFACE, settings, frame32(Type.WindowUpdate, 0, RECEIVE_WINDOW - DEFAULT_WINDOW)]));
    socket.on('data', (chunk: Buffer) => this.onInput(chunk));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy(new Error('the daemon closed the connection'), true));
  }

  request(headers: Headers): H2Stream {
    if (this.closed) throw new Error('HTTP/2 session is closed');
    const id = this.nextId;
    this.nextId += 2;
    const stream = new H2Stream(this, id, this.initialStreamWindow);
    this.streams.set(id, stream);
    for (const f of headerFrames(id, encodeHeaders(Object.entries(headers)), false, this.maxFrame)) this.send(f);
    return stream;
  }

  ref(): void { this.socket.ref(); }
  unref(): void { this.socket.unref(); }

  /** Ends the session once its streams are done (GOAWAY, then the socket). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.send(goAwayFrame(0, NO_ERROR));
    if (!this.streams.size) this.socket.end();
  }

  send(data: Buffer): void {
    if (!this.destroyed) this.socket.write(data);
  }

  flush(stream: H2Stream): void {
    this.sendWindow -= stream.drain(this.sendWindow, this.maxFrame);
  }

  grant(stream: number, bytes: number): void {
    this.send(frame32(Type.WindowUpdate, stream, bytes));
  }

  forget(id: number): void {
    this.streams.delete(id);
    if (this.closed && !this.streams.size) this.socket.end();
  }

  /** The connection is gone: a failure is reported, and so is a close that cuts requests short. */
  private destroy(err: Error, closedByPeer = false): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.closed = true;
    const open = [...this.streams.values()];
    // Each open stream gets the error too: a session without a listener is not worth a crash.
    if ((!closedByPeer || open.length) && this.listenerCount('error')) this.emit('error', err);
    for (const s of open) s.finish(undefined, err);
    this.socket.destroy();
  }

  private onInput(chunk: Buffer): void {
    try {
      for (const f of this.reader.frames(chunk)) this.onFrame(f.type, f.flags, f.stream, f.payload);
    } catch (err) {
      this.send(goAwayFrame(0, PROTOCOL_ERROR));
      this.destroy(new Error(`HTTP/2 protocol error: ${(err as Error).message}`));
    }
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.headerBlock && type !== Type.Continuation) throw new Error('expected CONTINUATION');
    switch (type) {
      case Type.Data: {
        const data = unpad(payload, flags);
        this.received += payload.length;
        if (this.received >= RECEIVE_WINDOW / 2) { this.grant(0, this.received); this.received = 0; }
        this.streams.get(id)?.onData(data, (flags & END_STREAM) !== 0);
        break;
      }
      case Type.Headers: {
        let block = unpad(payload, flags);
        if (flags & PRIORITY) block = block.subarray(5);
        this.headerBlock = { stream: id, parts: [block], endStream: (flags & END_STREAM) !== 0 };
        if (flags & END_HEADERS) this.endHeaders();
        break;
      }
      case Type.Continuation:
        if (!this.headerBlock || this.headerBlock.stream !== id) throw new Error('unexpected CONTINUATION');
        this.headerBlock.parts.push(payload);
        if (flags & END_HEADERS) this.endHeaders();
        break;
      case Type.RstStream:
        this.streams.get(id)?.finish(payload.readUInt32BE(0));
        break;
      case Type.Settings:
        if (!(flags & ACK)) this.onSettings(payload);
        break;
      case Type.Ping:
        if (!(flags & ACK)) this.send(frame(Type.Ping, ACK, 0, payload));
        break;
      case Type.GoAway: {
        const last = payload.readUInt32BE(0) & 0x7fffffff;
        this.closed = true;
        for (const [sid, s] of this.streams) if (sid > last) s.finish(undefined, new Error(`the server is going away (code ${payload.readUInt32BE(4)})`));
        break;
      }
      case Type.WindowUpdate: {
        const increment = payload.readUInt32BE(0) & 0x7fffffff;
        if (id === 0) this.sendWindow += increment;
        else { const s = this.streams.get(id); if (s) s.sendWindow += increment; }
        for (const s of this.streams.values()) this.flush(s);
        break;
      }
      case Type.PushPromise:
        throw new Error('PUSH_PROMISE though push is disabled');
      default: // PRIORITY and unknown frame types are ignored
    }
  }

  private endHeaders(): void {
    const { stream, parts, endStream } = this.headerBlock!;
    this.headerBlock = undefined;
    // Decoded even for a stream we no longer track: the dynamic table must follow every block.
    const headers = this.decoder.decode(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    this.streams.get(stream)?.onHeaders(headers, endStream);
  }

  private onSettings(payload: Buffer): void {
    for (let off = 0; off + 6 <= payload.length; off += 6) {
      const id = payload.readUInt16BE(off);
      const value = payload.readUInt32BE(off + 2);
      if (id === SETTINGS_INITIAL_WINDOW_SIZE) {
        for (const s of this.streams.values()) s.sendWindow += value - this.initialStreamWindow;
        this.initialStreamWindow = value;
      } else if (id === SETTINGS_MAX_FRAME_SIZE) {
        this.maxFrame = value;
      }
    }
    this.send(frame(Type.Settings, ACK, 0));
    for (const s of this.streams.values()) this.flush(s);
  }
}

