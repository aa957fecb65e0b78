// Applies a layer blob (gzip, zstd or plain tar) onto a directory tree (a snapshot's mounted view, or an overlay
// upper directory) through native/'s berth-apply, which decompresses it, computes its diff ID and creates the
// files: a layer's whole cost, done by a C process on its own core several times faster than Node's zlib,
// hashing and fs calls did it. This side only feeds it the blob. What it applies and refuses: native/apply.c.
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { BerthError, ErrorCode } from '../../api/errdefs.ts';
import { nativeBinary } from '../../api/native-binary.ts';
import type { Compression } from '../images/mediatypes.ts';

export interface ApplyResult {
  /** Bytes of the uncompressed tar. */
  size: number;
  /** sha256 of the uncompressed tar. */
  diffId: string;
}

export interface ApplyOptions {
  /** How the blob is compressed. Default: a plain tar. */
  compression?: Compression;
  /**
   * root is an overlay upper directory, written directly (as containerd's fast path, ~4x faster than through
   * the mount): whiteouts become the overlay's own (a 0/0 character device; trusted.overlay.opaque=y).
   */
  overlayUpper?: boolean;
}

/** The layer is damaged or cut short (not a hostile entry, not an I/O failure): its tar, or the compressed
 * stream around it. The message is the decoder's own. */
export class DamagedLayerError extends Error {
  override name = 'DamagedLayerError';
  constructor(message: string, readonly part: 'tar' | 'compressed') { super(message); }
}

/** Runs `work`, an apply of the layer `digest`: a damaged layer fails it as an invalid argument naming the layer
 * and what is wrong with it. */
export async function applyingLayer<T>(digest: string, compression: Compression, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (!(err instanceof DamagedLayerError)) throw err;
    const what = err.part === 'tar' ? 'tar' : `${compression} stream`;
    throw new BerthError(ErrorCode.InvalidArgument, `layer ${digest}: its ${what} is corrupt or truncated (${err.message}); nothing of it was committed`);
  }
}

const EXIT_HOSTILE = 2;
const EXIT_DAMAGED_TAR = 3;
const EXIT_DAMAGED_STREAM = 4;

/** Applies `blob` (a layer as stored, compressed as opts.compression says) to `root`. */
export async function applyLayer(blob: Readable, root: string, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const compression = opts.compression ?? 'none';
  const args = [
    ...(compression === 'none' ? [] : [`--${compression}`]),
    ...(opts.overlayUpper ? ['--overlay-upper'] : []), root,
  ];
  const child = spawn(nativeBinary('berth-apply'), args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.on('error', (error) => resolve({ code: null, signal: null, error }));
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  // The blob's own failure (a broken download) is the error to report, and stops the applier; the applier
  // stopping early (its exit status says why) stops the blob.
  let blobError: Error | undefined;
  let stopped = false;
  blob.on('error', (err) => {
    if (stopped) return;
    blobError = err;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  child.stdin.on('error', () => {
    stopped = true;
    blob.unpipe(child.stdin);
    blob.destroy();
  });
  blob.pipe(child.stdin);
  const { code, signal, error } = await exited;
  if (error) throw error;
  if (blobError) throw blobError;
  const message = stderr.trim().split('\n').at(-1) ?? '';
  if (code === EXIT_HOSTILE) throw new BerthError(ErrorCode.InvalidArgument, message);
  if (code === EXIT_DAMAGED_TAR) throw new DamagedLayerError(message, 'tar');
  if (code === EXIT_DAMAGED_STREAM) throw new DamagedLayerError(message, 'compressed');
  if (code !== 0) throw new Error(message || `berth-apply ended by ${signal ?? `status ${code}`}`);
  const [diffId, size] = stdout.trim().split(' ');
  return { size: Number(size), diffId: diffId! };
}
