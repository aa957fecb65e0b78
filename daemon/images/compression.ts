// Decompressing layer blobs as streams: gzip through zlib, zstd through fzstd (pure JS; Node 20's zlib has no
// zstd), uncompressed passed through.
import { PassThrough, Transform, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
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

/** Guesses compression from a blob's first bytes (docker save archives carry no media types). */
export function sniffCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}
