// gRPC's message framing, for both sides (grpc-client.ts, grpc-server.ts): each message is a compressed-flag
// byte, a 4-byte big-endian length and the protobuf bytes.
import type protobuf from 'protobufjs';

/** `msg` encoded as `type`, as one gRPC message on the wire. */
export function frame(type: protobuf.Type, msg: Record<string, any>): Buffer {
  const body = type.encode(type.fromObject(msg)).finish();
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = 0;
  out.writeUInt32BE(body.length, 1);
  out.set(body, 5);
  return out;
}

/** Why a frame cannot be taken: too large, or compressed (berth neither sends nor accepts compression). */
export class FrameError extends Error {
  constructor(message: string, readonly kind: 'too-large' | 'compressed') { super(message); }
}

/**
 * Splits a byte stream into gRPC message bodies. Chunks are joined only once a whole message is there: a 1 MiB
 * message comes in 64 HTTP/2 frames, and joining at each would copy it 64 times.
 */
export class Deframer {
  private chunks: Buffer[] = [];
  /** Bytes held: the start of a message not all there yet. */
  buffered = 0;

  constructor(private readonly maxMessage = Infinity) {}

  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Buffer[] = [];
    while (this.buffered >= 5) {
      const head = this.chunks[0]!.length >= 5 ? this.chunks[0]! : this.join(5);
      const len = head.readUInt32BE(1);
      if (len > this.maxMessage) throw new FrameError(`received a message of ${len} bytes, more than the limit of ${this.maxMessage}`, 'too-large');
      if (this.buffered < 5 + len) break;
      if (head[0] !== 0) throw new FrameError('compressed gRPC messages are not supported', 'compressed');
      const frame = head.length >= 5 + len ? head : this.join(5 + len);
      out.push(frame.subarray(5, 5 + len));
      this.consume(5 + len);
    }
    return out;
  }

  /** Lets go of what is held. */
  clear(): void {
    this.chunks = [];
    this.buffered = 0;
  }

  /** The first `n` buffered bytes as one buffer (the chunks holding them joined into the first). */
  private join(n: number): Buffer {
    let count = 0;
    let bytes = 0;
    while (bytes < n) bytes += this.chunks[count++]!.length;
    const joined = Buffer.concat(this.chunks.slice(0, count), bytes);
    this.chunks.splice(0, count, joined);
    return joined;
  }

  private consume(n: number): void {
    this.buffered -= n;
    while (n > 0) {
      const head = this.chunks[0]!;
      if (head.length <= n) { this.chunks.shift(); n -= head.length; } else { this.chunks[0] = head.subarray(n); n = 0; }
    }
  }
}
