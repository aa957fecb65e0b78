// A raw HTTP/2 client for attacking a server: it writes whatever frames it is given (api/h2-frames.ts builds
// them), keeps every frame the server sends, follows the server's flow-control windows for the DATA it is asked
// to send, and can leave the server's output unread (a peer that never reads).
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import {
  FrameReader, FrameType, PREFACE, SETTINGS_INITIAL_WINDOW_SIZE, DEFAULT_WINDOW, frame, settingsFrame,
} from '../../api/h2-frames.ts';

export interface Frame { type: number; flags: number; stream: number; payload: Buffer }

export class RawPeer extends EventEmitter {
  readonly frames: Frame[] = [];
  closed = false;
  private readonly reader = new FrameReader(1 << 24);
  private connWindow = DEFAULT_WINDOW;
  private initialWindow = DEFAULT_WINDOW;
  private readonly streamWindows = new Map<number, number>();
  readonly done: Promise<void>;

  private constructor(readonly sock: Socket) {
    super();
    this.done = new Promise((resolve) => sock.once('close', () => { this.closed = true; this.emit('change'); resolve(); }));
    sock.on('error', () => undefined);
  }

  /** Connected, with the client preface and an empty SETTINGS sent; `read: false` reads nothing until read(). */
  static async open(path: string, opts: { read?: boolean } = {}): Promise<RawPeer> {
    const sock = connect(path);
    await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
    const peer = new RawPeer(sock);
    sock.write(Buffer.concat([PREFACE, settingsFrame([])]));
    if (opts.read !== false) peer.read();
    return peer;
  }

  read(): void {
    this.sock.on('data', (chunk: Buffer) => {
      for (const f of this.reader.frames(chunk)) { this.frames.push(f); this.track(f); }
      this.emit('change');
    });
  }

  /** The error code of the server's GOAWAY, if it sent one. */
  get goAway(): number | undefined {
    const f = this.frames.find((x) => x.type === FrameType.GoAway);
    return f?.payload.readUInt32BE(4);
  }

  /** Why the server said it went away (its GOAWAY's debug data). */
  get goAwayReason(): string | undefined {
    return this.frames.find((x) => x.type === FrameType.GoAway)?.payload.subarray(8).toString();
  }

  framesOf(type: number, stream?: number): Frame[] {
    return this.frames.filter((f) => f.type === type && (stream === undefined || f.stream === stream));
  }

  /** Writes, waiting for the socket to drain; false once the connection is closed or stays stalled `stallMs`. */
  async write(data: Buffer, stallMs = 1000): Promise<boolean> {
    if (this.closed) return false;
    if (this.sock.write(data)) return true;
    return this.until(() => this.sock.writableLength === 0 || this.closed, stallMs, 'drain').then((ok) => ok && !this.closed);
  }

  /** Writes `count` frames from `make`, in batches, while the server takes them; how many went. */
  async pump(make: (i: number) => Buffer, count: number, batchBytes = 64 << 10): Promise<number> {
    let i = 0;
    while (i < count) {
      const batch: Buffer[] = [];
      for (let bytes = 0; i < count && bytes < batchBytes; i++) { const f = make(i); batch.push(f); bytes += f.length; }
      if (!(await this.write(Buffer.concat(batch)))) break;
    }
    return i;
  }

  /** `bytes` of DATA on `stream`, as the server's windows allow; stops when the stream is reset or answered. */
  async sendData(stream: number, bytes: Buffer): Promise<number> {
    let off = 0;
    while (off < bytes.length && !this.closed && !this.frames.some((f) => f.stream === stream && (f.type === FrameType.RstStream || f.type === FrameType.Headers))) {
      const n = Math.min(16_384, bytes.length - off, this.connWindow, this.streamWindows.get(stream) ?? this.initialWindow);
      if (n <= 0) { if (!(await this.until(() => this.connWindow > 0 && (this.streamWindows.get(stream) ?? this.initialWindow) > 0, 2000))) break; continue; }
      this.connWindow -= n;
      this.streamWindows.set(stream, (this.streamWindows.get(stream) ?? this.initialWindow) - n);
      if (!(await this.write(frame(FrameType.Data, 0, stream, bytes.subarray(off, off + n))))) break;
      off += n;
    }
    return off;
  }

  /** Resolves true once `check` holds, false after `ms`. */
  until(check: () => boolean, ms: number, event: 'change' | 'drain' = 'change'): Promise<boolean> {
    if (check()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const emitter: EventEmitter = event === 'drain' ? this.sock : this;
      const test = () => { if (check()) finish(true); };
      const finish = (ok: boolean) => { clearTimeout(timer); emitter.off(event, test); this.off('change', test); resolve(ok); };
      const timer = setTimeout(() => finish(check()), ms);
      emitter.on(event, test);
      this.on('change', test);
    });
  }

  destroy(): void { this.sock.destroy(); }

  private track(f: Frame): void {
    if (f.type === FrameType.WindowUpdate) {
      const inc = f.payload.readUInt32BE(0) & 0x7fffffff;
      if (f.stream === 0) this.connWindow += inc;
      else this.streamWindows.set(f.stream, (this.streamWindows.get(f.stream) ?? this.initialWindow) + inc);
    } else if (f.type === FrameType.Settings && !(f.flags & 1)) {
      for (let off = 0; off < f.payload.length; off += 6) {
        if (f.payload.readUInt16BE(off) === SETTINGS_INITIAL_WINDOW_SIZE) this.initialWindow = f.payload.readUInt32BE(off + 2);
      }
    }
  }
}

/** A SETTINGS frame's values by id. */
export function settingsOf(f: Frame): Map<number, number> {
  const out = new Map<number, number>();
  for (let off = 0; off < f.payload.length; off += 6) out.set(f.payload.readUInt16BE(off), f.payload.readUInt32BE(off + 2));
  return out;
}
