// A worker thread that applies one layer (see apply-in-worker.ts): the compressed blob arrives in messages, is
// decompressed and applied here, and the result (or the error, with its code) goes back. Layers staged side by
// side then use every core. The syscalls Node lacks are not made here (ffi-rs is not safe in a worker thread):
// each is asked of the main thread, this thread waiting on a shared word until it is done.
import { constants } from 'node:os';
import { PassThrough } from 'node:stream';
import { parentPort, workerData } from 'node:worker_threads';
import { decompressStream } from '../images/compression.ts';
import type { Compression } from '../images/mediatypes.ts';
import { applyLayer, type LayerSyscalls } from './apply-layer.ts';

export interface ApplyJob { root: string; compression: Compression; overlayUpper: boolean; shared: SharedArrayBuffer }
export type SyscallRequest = { sys: 'mknod'; path: string; mode: number; major: number; minor: number } | { sys: 'lsetxattr'; path: string; name: string; value: Uint8Array };
export type ToWorker = { chunk: Uint8Array } | { end: true } | { error: string };
export type FromWorker = { result: { size: number; diffId: string } } | { error: { message: string; code?: string | number; berth?: boolean } } | { pull: true } | SyscallRequest;

const job = workerData as ApplyJob;
const port = parentPort!;
const word = new Int32Array(job.shared); // [0]: 0 while the main thread works, 1 when done; [1]: errno or 0
const errnoNames = new Map(Object.entries(constants.errno).map(([k, v]) => [v, k]));

function viaMainThread(req: SyscallRequest, what: string): void {
  Atomics.store(word, 0, 0);
  port.postMessage(req satisfies FromWorker);
  Atomics.wait(word, 0, 0);
  const errno = Atomics.load(word, 1);
  if (errno) throw Object.assign(new Error(`${req.sys} ${what}: ${errnoNames.get(errno) ?? `E${errno}`}`), { code: errnoNames.get(errno), errno });
}

const sys: LayerSyscalls = {
  mknod: (path, mode, major, minor) => viaMainThread({ sys: 'mknod', path, mode, major, minor }, path),
  lsetxattr: (path, name, value) => viaMainThread({ sys: 'lsetxattr', path, name, value: new Uint8Array(value) }, `${path} ${name}`),
};

const blob = new PassThrough({ highWaterMark: 1 << 20 });
port.on('message', (m: ToWorker) => {
  if ('chunk' in m) {
    if (blob.write(m.chunk)) port.postMessage({ pull: true } satisfies FromWorker);
    else blob.once('drain', () => port.postMessage({ pull: true } satisfies FromWorker));
  } else if ('end' in m) blob.end();
  else blob.destroy(new Error(m.error));
});
applyLayer(decompressStream(blob, job.compression), job.root, { overlayUpper: job.overlayUpper, sys }).then(
  (result) => port.postMessage({ result } satisfies FromWorker),
  (err: Error & { code?: string | number }) => port.postMessage({ error: { message: err.message, code: err.code, berth: err.name === 'BerthError' } } satisfies FromWorker),
);
