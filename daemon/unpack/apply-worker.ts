// A worker thread that applies one layer (see apply-in-worker.ts): the compressed blob arrives in messages,
// is decompressed and applied here, and the result (or the error, with its code) goes back. Layers staged side
// by side then use every core, not only the daemon's main thread.
import { PassThrough } from 'node:stream';
import { parentPort, workerData } from 'node:worker_threads';
import { decompressStream } from '../images/compression.ts';
import type { Compression } from '../images/mediatypes.ts';
import { applyLayer } from './apply-layer.ts';

export interface ApplyJob { root: string; compression: Compression; overlayUpper: boolean }
export type ToWorker = { chunk: Uint8Array } | { end: true } | { error: string };
export type FromWorker = { result: { size: number; diffId: string } } | { error: { message: string; code?: string; berth?: boolean } } | { pull: true };

const job = workerData as ApplyJob;
const port = parentPort!;
const blob = new PassThrough({ highWaterMark: 1 << 20 });
port.on('message', (m: ToWorker) => {
  if ('chunk' in m) { if (!blob.write(m.chunk)) blob.once('drain', () => port.postMessage({ pull: true } satisfies FromWorker)); else port.postMessage({ pull: true } satisfies FromWorker); }
  else if ('end' in m) blob.end();
  else blob.destroy(new Error(m.error));
});
applyLayer(decompressStream(blob, job.compression), job.root, { overlayUpper: job.overlayUpper }).then(
  (result) => port.postMessage({ result } satisfies FromWorker),
  (err: Error & { code?: string }) => port.postMessage({ error: { message: err.message, code: err.code, berth: err.name === 'BerthError' || err.constructor?.name === 'BerthError' } } satisfies FromWorker),
);
