// HTTP/2 framing (RFC 9113 section 4) shared by our client (h2-client.ts) and server (h2-server.ts): frame types,
// flags, settings ids, building a frame and reading frames out of a byte stream.
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FrameType = { Data: 0, Headers: 1, Priority: 2, RstStream: 3, Settings: 4, PushPromise: 5, Ping: 6, GoAway: 7, WindowUpdate: 8, Continuation: 9 } as const;
export const END_STREAM = 0x1, ACK = 0x1, END_HEADERS = 0x4, PADDED = 0x8, PRIORITY = 0x20;
export const SETTINGS_ENABLE_PUSH = 0x2, SETTINGS_MAX_CONCURRENT_STREAMS = 0x3,
  SETTINGS_INITIAL_WINDOW_SIZE = 0x4, SETTINGS_MAX_FRAME_SIZE = 0x5, SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;
export const DEFAULT_WINDOW = 65_535;
export const DEFAULT_MAX_FRAME = 16_384;
export const NO_ERROR = 0, PROTOCOL_ERROR = 1, FLOW_CONTROL_ERROR = 3, STREAM_CLOSED = 5, FRAME_SIZE_ERROR = 6,
  REFUSED_STREAM = 7, CANCEL = 8, COMPRESSION_ERROR = 9, ENHANCE_YOUR_CALM = 11;

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.allocUnsafe(9 + payload.length);
  out.writeUIntBE(payload.length, 0, 3);
  out[3] = type;
  out[4] = flags;
  out.writeUInt32BE(stream, 5);
  payload.copy(out, 9);
  return out;
}

/** A frame carrying one 32-bit value (RST_STREAM, WINDOW_UPDATE). */
export function frame32(type: number, stream: number, value: number): Buffer {
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32BE(value);
  return frame(type, 0, stream, payload);
}

export function settingsFrame(settings: [number, number][]): Buffer {
  const payload = Buffer.allocUnsafe(6 * settings.length);
  settings.forEach(([id, value], i) => { payload.writeUInt16BE(id, 6 * i); payload.writeUInt32BE(value, 6 * i + 2); });
  return frame(FrameType.Settings, 0, 0, payload);
}

/** `debug`: why, for the peer's logs (RFC 9113 6.8's additional debug data). */
export function goAwayFrame(lastStream: number, code: number, debug = ''): Buffer {
  const payload = Buffer.alloc(8 + Buffer.byteLength(debug));
  payload.writeUInt32BE(lastStream, 0);
  payload.writeUInt32BE(code, 4);
  payload.write(debug, 8);
  return frame(FrameType.GoAway, 0, 0, payload);
}

/** The HEADERS frame (and CONTINUATIONs) carrying an encoded header block. */
export function headerFrames(stream: number, block: Buffer, endStream: boolean, maxFrame: number): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0, first = true; first || off < block.length; first = false) {
    const part = block.subarray(off, off + maxFrame);
    off += part.length;
    const flags = (off >= block.length ? END_HEADERS : 0) | (first && endStream ? END_STREAM : 0);
    out.push(frame(first ? FrameType.Headers : FrameType.Continuation, flags, stream, part));
  }
  return out;
}

export function unpad(payload: Buffer, flags: number): Buffer {
  if (!(flags & PADDED)) return payload;
  const pad = payload[0]!;
  if (pad >= payload.length) throw new Error('padding longer than the frame');
  return payload.subarray(1, payload.length - pad);
}

/** Data waiting for flow-control windows, handed out in chunks no larger than the windows and frame size allow. */
export class SendQueue {
  private readonly chunks: Buffer[] = [];
  bytes = 0;

  push(data: Buffer): void {
    if (!data.length) return;
    this.chunks.push(data);
    this.bytes += data.length;
  }

  get empty(): boolean { return !this.chunks.length; }

  clear(): void {
    this.chunks.length = 0;
    this.bytes = 0;
  }

  /** Up to `limit` bytes off the front; undefined when nothing is queued or the limit is spent. */
  take(limit: number): Buffer | undefined {
    const head = this.chunks[0];
    if (!head || limit <= 0) return undefined;
    const n = Math.min(head.length, limit);
    if (n === head.length) this.chunks.shift(); else this.chunks[0] = head.subarray(n);
    this.bytes -= n;
    return head.subarray(0, n);
  }
}

/** A frame longer than the receiver allows (FRAME_SIZE_ERROR). */
export class FrameSizeError extends Error {}

/**
 * Splits incoming bytes into frames; frames longer than `maxFrame` are a connection error. Frames are views of
 * the chunks they came in; only a frame split across chunks is copied, once, when its last byte is there (so
 * neither large transfers nor a peer dripping bytes one at a time make us copy the same bytes again and again).
 */
export class FrameReader {
  private parts: Buffer[] = [];
  private partBytes = 0;

  constructor(private readonly maxFrame = DEFAULT_MAX_FRAME) {}

  *frames(chunk: Buffer): Generator<{ type: number; flags: number; stream: number; payload: Buffer }> {
    if (this.partBytes) {
      const before = this.partBytes;
      this.parts.push(chunk);
      this.partBytes += chunk.length;
      if (this.partBytes < 9) return;
      const head = Buffer.concat(this.parts, 9);
      const size = 9 + this.length(head);
      if (this.partBytes < size) return;
      const whole = Buffer.concat([...this.parts.slice(0, -1), chunk.subarray(0, size - before)], size);
      this.parts = [];
      this.partBytes = 0;
      yield FrameReader.parse(whole, 0, size - 9);
      chunk = chunk.subarray(size - before);
    }
    let off = 0;
    while (chunk.length - off >= 9) {
      const length = this.length(chunk.subarray(off));
      if (chunk.length - off < 9 + length) break;
      yield FrameReader.parse(chunk, off, length);
      off += 9 + length;
    }
    if (off < chunk.length) {
      this.parts = [chunk.subarray(off)];
      this.partBytes = chunk.length - off;
    }
  }

  private length(head: Buffer): number {
    const length = head.readUIntBE(0, 3);
    if (length > this.maxFrame) throw new FrameSizeError(`a frame of ${length} bytes, over the ${this.maxFrame} allowed`);
    return length;
  }

  private static parse(buf: Buffer, off: number, length: number) {
    return { type: buf[off + 3]!, flags: buf[off + 4]!, stream: buf.readUInt32BE(off + 5) & 0x7fffffff, payload: buf.subarray(off + 9, off + 9 + length) };
  }
}
