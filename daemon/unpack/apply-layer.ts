// Applies an uncompressed layer tar onto a directory tree (a snapshot's mounted view, or an overlay upper
// directory) through native/'s berth-apply, which creates the files: a layer's time is file creation, and a C
// process does it several times faster than Node's fs calls, on its own core. This side feeds it the stream and
// computes the diff ID on the way. What it applies, and what it refuses: native/apply.c.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BerthError, ErrorCode } from '../../api/errdefs.ts';
import { nativeBinary } from '../../api/native-binary.ts';

export interface ApplyResult {
  /** Bytes of the uncompressed tar. */
  size: number;
  /** sha256 of the uncompressed tar. */
  diffId: string;
}

export interface ApplyOptions {
  /** Refuse device nodes (unprivileged unpack). Default: allowed. */
  noDevices?: boolean;
  /**
   * root is an overlay upper directory, written directly (as containerd's fast path, ~4x faster than through
   * the mount): whiteouts become the overlay's own (a 0/0 character device; trusted.overlay.opaque=y).
   */
  overlayUpper?: boolean;
}

/** The tar itself is damaged or cut short (not a hostile entry, not an I/O failure). */
export class DamagedTarError extends Error {
  override name = 'DamagedTarError';
}

const EXIT_HOSTILE = 2;
const EXIT_DAMAGED = 3;

/** Applies `stream` (an uncompressed tar) to `root`. */
export async function applyLayer(stream: Readable, root: string, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const args = [...(opts.overlayUpper ? ['--overlay-upper'] : []), ...(opts.noDevices ? ['--no-devices'] : []), root];
  const child = spawn(nativeBinary('berth-apply'), args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.on('error', (error) => resolve({ code: null, signal: null, error }));
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  const hash = createHash('sha256');
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) { hash.update(chunk); size += chunk.length; cb(null, chunk); },
  });
  let inputError: Error | undefined;
  try {
    await pipeline(stream, counter, child.stdin);
  } catch (err) {
    inputError = err as Error;
    // The input failed (or the applier stopped reading): an applier still running is stopped.
    if (child.exitCode === null && child.signalCode === null && !isBrokenPipe(err)) child.kill('SIGKILL');
  }
  const { code, signal, error } = await exited;
  if (error) throw error;
  const message = stderr.trim().split('\n').at(-1) ?? '';
  if (code === EXIT_HOSTILE) throw new BerthError(ErrorCode.InvalidArgument, message);
  if (inputError && !isBrokenPipe(inputError)) throw inputError;
  if (code === EXIT_DAMAGED) throw new DamagedTarError(message);
  if (code !== 0) throw new Error(message || `berth-apply ended by ${signal ?? `status ${code}`}`);
  if (inputError) throw inputError;
  return { size, diffId: 'sha256:' + hash.digest('hex') };
}

function isBrokenPipe(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || code === 'ECONNRESET';
}
