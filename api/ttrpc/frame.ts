// ttrpc framing (containerd/ttrpc PROTOCOL.md): a 10-byte header — data length (u32 BE), stream id (u32 BE),
// message type (u8), flags (u8) — then the data. Data over 4 MiB is refused: the reader skips it and reports
// an oversized frame so the peer can answer that stream with RESOURCE_EXHAUSTED, as the Go implementation does.
export const HEADER_SIZE = 10;
export const MAX_DATA = 4 << 20;

export const MessageType = { Request: 1, Response: 2, Data: 3 } as const;

export const Flags = {
  /** Request and Data: no more data from the sender. */
  RemoteClosed: 0x01,
  /** Request: the sender will send Data frames. */
  RemoteOpen: 0x02,
  /** Data: the frame carries no data. */
  NoData: 0x04,
} as const;

export interface Frame {
  streamId: number;
  type: number;
  flags: number;
  data: Buffer;
}

export function encodeFrame(streamId: number, type: number, flags: number, data: Uint8Array): Buffer {
  if (data.length > MAX_DATA) throw new RangeError(`ttrpc: message length ${data.length} exceeds the maximum of ${MAX_DATA}`);
  const out = Buffer.allocUnsafe(HEADER_SIZE + data.length);
  out.writeUInt32BE(data.length, 0);
  out.writeUInt32BE(streamId, 4);
  out[8] = type;
  out[9] = flags;
  out.set(data, HEADER_SIZE);
  return out;
}

/** Incremental frame parser: feed it socket chunks, get whole frames (and oversized ones, without data). */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes of an oversized frame still to be skipped. */
  private skipping = 0;

  constructor(private readonly onFrame: (f: Frame) => void, private readonly onOversized: (streamId: number, type: number, length: number) => void) {}

  push(chunk: Buffer): void {
    if (this.skipping) {
      const n = Math.min(this.skipping, chunk.length);
      this.skipping -= n;
      chunk = chunk.subarray(n);
      if (!chunk.length) return;
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= HEADER_SIZE) {
      const head = this.peek(HEADER_SIZE);
      const length = head.readUInt32BE(0);
      const streamId = head.readUInt32BE(4);
      const type = head[8]!;
      const flags = head[9]!;
      if (length > MAX_DATA) {
        this.take(HEADER_SIZE);
        const n = Math.min(length, this.buffered);
        this.take(n);
        this.skipping = length - n;
        this.onOversized(streamId, type, length);
        if (this.skipping) return;
        continue;
      }
      if (this.buffered < HEADER_SIZE + length) return;
      this.take(HEADER_SIZE);
      this.onFrame({ streamId, type, flags, data: this.take(length) });
    }
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!.subarray(0, n);
    const all = Buffer.concat(this.chunks);
    this.chunks = [all];
    return all.subarray(0, n);
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    let first = this.chunks[0]!;
    if (first.length < n) {
      first = Buffer.concat(this.chunks);
      this.chunks = [first];
    }
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}
