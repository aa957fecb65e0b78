// Layer blobs as streams: decompressed (gzip through zlib, zstd through fzstd, pure JS: Node 20's zlib has no
// zstd) and compressed (gzip through zlib, zstd through native/'s berth-compress); uncompressed passed through.
// Unpacking does not come here: native/berth-apply decompresses what it applies.
import { spawn } from 'node:child_process';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { nativeBinary } from '../../api/native-binary.ts';
import { Decompress } from 'fzstd';
import type { Compression } from './mediatypes.ts';

function zstdStream(): Transform {
  let out: Transform;
  const decoder = new Decompress((chunk) => { out.push(Buffer.from(chunk)); });
  out = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      try { decoder.push(chunk); cb(); } catch (e) { cb(e as Error); }
    },
    flush(cb) {
      try { decoder.push(new Uint8Array(0), true); cb(); } catch (e) { cb(e as Error); }
    },
  });
  return out;
}

/** The uncompressed bytes of `input`. */
export function decompressStream(input: Readable, compression: Compression): Readable {
  const decoder = compression === 'gzip' ? createGunzip() : compression === 'zstd' ? zstdStream() : new PassThrough();
  input.on('error', (e) => decoder.destroy(e));
  return input.pipe(decoder);
}

/** `input` compressed as `compression`; a failing input or encoder fails the returned stream. */
export function compressStream(input: Readable, compression: Compression): Readable {
  if (compression === 'gzip') {
    const gzip = createGzip();
    input.on('error', (e) => gzip.destroy(e));
    return input.pipe(gzip);
  }
  if (compression === 'none') return input;
  const out = new PassThrough();
  const child = spawn(nativeBinary('berth-compress'), [], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  child.stdin.on('error', () => undefined); // the encoder's exit status says what went wrong
  input.on('error', (e) => { child.kill('SIGKILL'); out.destroy(e); });
  input.pipe(child.stdin);
  child.stdout.pipe(out, { end: false });
  child.on('error', (e) => out.destroy(e));
  child.on('close', (code, signal) => {
    if (code === 0) out.end();
    else if (!out.destroyed) out.destroy(new Error(stderr.trim() || `berth-compress ended by ${signal ?? `status ${code}`}`));
  });
  return out;
}

/** Guesses compression from a blob's first bytes (docker save archives carry no media types). */
export function sniffCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}
