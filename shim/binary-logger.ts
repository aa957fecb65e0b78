// containerd's binary:// log URIs: binary:///path/to/logger?key=value starts that program with `key value`
// arguments, CONTAINER_ID and CONTAINER_NAMESPACE in its environment, the process's stdout on fd 3, its stderr
// on fd 4, and fd 5 to close when it is ready. Here the streams are FIFOs the process's monitor opens for
// writing, so the logger sees EOF when the process (not the shim) is done, and a shim restart loses nothing.
import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { errFailedPrecondition, errInvalidArgument } from '../api/errdefs.ts';
import { setBlocking } from '../api/libc.ts';
import { sysAddon } from '../api/sys-addon.ts';

const READY_TIMEOUT_MS = 10_000;

export class BinaryLogger {
  /** Read ends opened before the process opens its write ends (so those opens do not block, and what it writes
   * waits in the pipe), handed to the logger. */
  private held: number[] = [];

  private constructor(private readonly program: string, private readonly args: string[], readonly paths: { stdout: string; stderr: string }) {}

  static prepare(uri: string, stateDir: string, name: string): BinaryLogger {
    const url = new URL(uri);
    const program = decodeURIComponent(url.pathname);
    if (!program.startsWith('/') || (url.host && url.host !== '')) throw errInvalidArgument(`${uri}: want binary:///absolute/path/to/logger`);
    try {
      accessSync(program, constants.X_OK);
    } catch (err) {
      throw errInvalidArgument(`logging binary ${program}: ${(err as NodeJS.ErrnoException).code ?? 'not executable'}`);
    }
    const args: string[] = [];
    for (const [key, value] of url.searchParams) args.push(key, ...(value ? [value] : []));
    const paths = { stdout: join(stateDir, `${name}.log-stdout`), stderr: join(stateDir, `${name}.log-stderr`) };
    const logger = new BinaryLogger(program, args, paths);
    for (const p of [paths.stdout, paths.stderr]) {
      rmSync(p, { force: true });
      sysAddon().mkfifo(p, 0o600);
      logger.held.push(openSync(p, constants.O_RDONLY | constants.O_NONBLOCK));
    }
    return logger;
  }

  /** Starts the logger once the process holds the write ends (it may have ended already: what it wrote is in
   * the pipes); resolves when the logger says it is ready. */
  async start(containerId: string, namespace: string): Promise<void> {
    // Opened non-blocking so no open waited for a writer; the logger reads them as ordinary blocking fds.
    const fds = this.held;
    fds.forEach((fd) => setBlocking(fd));
    try {
      const child = spawn(this.program, this.args, {
        stdio: ['ignore', 'ignore', 'ignore', fds[0]!, fds[1]!, 'pipe'], detached: true,
        env: { ...process.env, CONTAINER_ID: containerId, CONTAINER_NAMESPACE: namespace },
      });
      child.unref();
      await new Promise<void>((resolve, reject) => {
        const ready = (child.stdio as unknown as Readable[])[5]!;
        const timer = setTimeout(() => reject(errFailedPrecondition(`logging binary ${this.program} did not close fd 5 within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
        const done = () => { clearTimeout(timer); resolve(); };
        child.once('error', (err) => { clearTimeout(timer); reject(errFailedPrecondition(`logging binary ${this.program}: ${err.message}`)); });
        ready.on('data', () => undefined).once('end', done).once('close', done);
      });
      (child.stdio as unknown as Readable[])[5]!.destroy();
    } finally {
      this.release();
    }
  }

  /** Drops the shim's read ends (after start, or when the process never came to be). */
  release(): void {
    this.held.forEach((fd) => { try { closeSync(fd); } catch { /* closed */ } });
    this.held = [];
  }
}
