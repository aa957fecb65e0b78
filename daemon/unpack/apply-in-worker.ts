// Applies a layer in a worker thread (apply-worker.ts): the compressed blob is streamed to it, one chunk in
// flight at a time; the syscalls it cannot make itself (mknod, lsetxattr: ffi-rs crashes in a worker) it asks of
// this thread; its result or error (code kept) comes back. A worker takes ~60 ms to start, so small layers (and
// any whose worker cannot start) are applied here.
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { BerthError, type ErrorCode } from '../../api/errdefs.ts';
import { lsetxattr, mknod } from '../../api/libc.ts';
import { decompressStream } from '../images/compression.ts';
import type { Compression } from '../images/mediatypes.ts';
import { applyLayer, type ApplyResult } from './apply-layer.ts';
import type { ApplyJob, FromWorker, SyscallRequest, ToWorker } from './apply-worker.ts';

/** The worker: dist/berth-apply-worker.mjs beside the bundle, or, run from the sources (tests, through tsx),
 * apply-worker.ts loaded after tsx registers itself in the new thread. */
function startWorker(workerData: ApplyJob): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./berth-apply-worker.mjs', import.meta.url), { workerData });
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api')).href.replace(/index\.cjs$/, 'index.mjs');
  const entry = new URL('./apply-worker.ts', import.meta.url).href;
  return new Worker(`import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(entry)}); })`, { eval: true, workerData });
}

/** Performs a worker's syscall and wakes it: word[1] gets the errno (0: done). */
function perform(req: SyscallRequest, word: Int32Array): void {
  let errno = 0;
  try {
    if (req.sys === 'mknod') mknod(req.path, req.mode, req.major, req.minor);
    else lsetxattr(req.path, req.name, Buffer.from(req.value));
  } catch (err) {
    errno = (err as { errno?: number }).errno || 5; // EIO when the cause is unknown
  }
  Atomics.store(word, 1, errno);
  Atomics.store(word, 0, 1);
  Atomics.notify(word, 0);
}

/** Compressed layers smaller than this are applied on the calling thread: a worker's start would cost more. */
export const WORKER_MIN_BYTES = 8 << 20;

export async function applyInWorker(blob: Readable, compression: Compression, size: number, root: string, overlayUpper: boolean): Promise<ApplyResult> {
  const shared = new SharedArrayBuffer(8);
  const word = new Int32Array(shared);
  let worker: Worker;
  try {
    if (size < WORKER_MIN_BYTES) throw new Error('small layer');
    worker = startWorker({ root, compression, overlayUpper, shared });
  } catch {
    return applyLayer(decompressStream(blob, compression), root, { overlayUpper });
  }
  const send = (m: ToWorker, transfer?: ArrayBuffer[]) => worker.postMessage(m, transfer);
  try {
    return await new Promise<ApplyResult>((resolve, reject) => {
      blob.on('data', (chunk: Buffer) => {
        const copy = new Uint8Array(chunk); // a private copy goes over: the chunk may share its buffer
        send({ chunk: copy }, [copy.buffer as ArrayBuffer]);
        blob.pause(); // until the worker asks for more
      });
      blob.on('end', () => send({ end: true }));
      blob.on('error', (err) => send({ error: err.message }));
      worker.on('message', (m: FromWorker) => {
        if ('pull' in m) blob.resume();
        else if ('sys' in m) perform(m, word);
        else if ('result' in m) resolve(m.result);
        else {
          const { message, code, berth } = m.error;
          reject(berth ? new BerthError(code as ErrorCode, message) : Object.assign(new Error(message), code ? { code } : {}));
        }
      });
      worker.on('error', reject);
      worker.on('exit', (code) => reject(new Error(`the layer worker exited (${code}) before answering`)));
    });
  } finally {
    blob.destroy();
    void worker.terminate();
  }
}
