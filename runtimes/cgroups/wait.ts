// Small waits for state that the kernel reaches asynchronously (freezer states, exiting tasks).

/** Blocks the thread for `ms` without spinning: for the few synchronous paths that must wait briefly. */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Polls `done` with backoff (1 ms doubling to 20 ms) until it holds or `timeoutMs` passes. */
export async function waitFor(done: () => boolean, timeoutMs: number, onRetry?: () => void): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
    if (done()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, delay));
    onRetry?.();
  }
}

/** Synchronous twin of waitFor, for killAll. */
export function waitForSync(done: () => boolean, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
    if (done()) return true;
    if (Date.now() >= deadline) return false;
    sleepSync(delay);
  }
}
