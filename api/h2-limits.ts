// What one HTTP/2 connection to our server (h2-server.ts) may make us hold or spend, and the two counters that
// tell a peer abusing the protocol from a busy one. Values: the upstream fixes for the same attacks (nghttp2's
// limits on settings per frame and unanswered control frames, its rapid-reset budget; grpc-java's small header
// limit) and containerd's 16 MiB gRPC messages, with room to spare for ctr, dockerd and berth's own clients.
import { ENHANCE_YOUR_CALM } from './h2-frames.ts';

/** What a peer may send on one stream, and on the connection, before we grant more (as the application reads). */
export const STREAM_WINDOW = 1 << 20;
export const CONNECTION_WINDOW = 16 << 20;
export const MAX_WINDOW = 2 ** 31 - 1;
/** Streams open at once (advertised); more are refused. Each holds its headers and a call's buffers. */
export const MAX_STREAMS = 1000;
/** A request's header list (advertised), counted as RFC 9113 does: name, value and 32 octets per field. */
export const MAX_HEADER_LIST = 64 << 10;
/** A header block as sent (HPACK-compressed, with each frame's 9-byte header), and the CONTINUATIONs carrying it. */
export const MAX_HEADER_BLOCK = 256 << 10;
export const MAX_CONTINUATIONS = 32;
/** Settings in one SETTINGS frame (a peer has a handful to set). */
export const MAX_SETTINGS_PER_FRAME = 32;
/** Queued response bytes past which a stream's write() asks the writer to wait for 'drain'. */
export const HIGH_WATER = 1 << 20;
/** Response bytes queued on one connection, all its streams together, waiting for windows the peer does not
 * grant: past it, the stream writing more is reset (ENHANCE_YOUR_CALM; gRPC clients report RESOURCE_EXHAUSTED). */
export const MAX_QUEUED = 64 << 20;
/** Bytes waiting in the socket past which we stop reading the peer and stop queuing DATA, until it drains. */
export const OUTPUT_LIMIT = 1 << 20;
/** From the connection to its first SETTINGS; and how long a connection with no stream open stays. Long-lived
 * calls (ctr events) are open streams, so the idle timer never ends them. */
export const HANDSHAKE_TIMEOUT = 10_000;
export const IDLE_TIMEOUT = 5 * 60_000;
/** How long a GOAWAY we end with may wait for a peer that does not read, before the socket is cut. */
export const LAST_WORDS_GRACE = 5_000;

/** A connection error (GOAWAY with `code`). */
export class ConnectionError extends Error {
  constructor(readonly code: number, message: string) { super(message); }
}

/**
 * Streams the peer ends before we answer (RST_STREAM), or makes us refuse (over MAX_STREAMS, headers over the
 * limit): each costs us a stream's setup for nothing. A burst is allowed, then a steady rate; past that the
 * peer is resetting on purpose (CVE-2023-44487, "rapid reset").
 */
export class ResetBudget {
  static readonly BURST = 1000;
  static readonly PER_SECOND = 100;
  private tokens = ResetBudget.BURST;
  private at = performance.now();

  charge(what: string): void {
    const now = performance.now();
    this.tokens = Math.min(ResetBudget.BURST, this.tokens + (now - this.at) * ResetBudget.PER_SECOND / 1000) - 1;
    this.at = now;
    if (this.tokens < 0) throw new ConnectionError(ENHANCE_YOUR_CALM, `too many streams ${what}: more than ${ResetBudget.BURST} at once, or ${ResetBudget.PER_SECOND} a second`);
  }
}

/**
 * Frames we send because the peer asked (PING and SETTINGS acks, resets) while the socket still holds output
 * the peer has not read: a peer that floods them and reads nothing would have us queue them without end.
 */
export class UnreadControl {
  private count = 0;
  static readonly MAX = 1000;

  /** `unread`: bytes the socket has not handed to the kernel (the peer's buffers are full). */
  charge(unread: number): void {
    if (!unread) { this.count = 0; return; }
    if (++this.count > UnreadControl.MAX) throw new ConnectionError(ENHANCE_YOUR_CALM, `over ${UnreadControl.MAX} PING, SETTINGS or reset answers queued that the peer does not read`);
  }
}
