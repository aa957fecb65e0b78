// A task's stdio as ctr attaches it: FIFOs under /run/berth/fifo that the shim (or the process itself) opens,
// copied to and from our own stdio. With a terminal there is one output stream (the pty's), our terminal goes
// into raw mode while the task runs, and window size changes follow it (ResizePty).
import { randomBytes } from 'node:crypto';
import { closeSync, constants, mkdirSync, openSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { errInvalidArgument } from '../api/errdefs.ts';
import { makeRaw } from '../api/terminal.ts';
import { sysAddon } from '../api/sys-addon.ts';

const FIFO_ROOT = '/run/berth/fifo';

export interface TaskIo {
  /** FIFO paths for CreateTaskRequest / ExecProcessRequest ('' where there is none). */
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
  /** Resolves once the process's output has been copied to ours. */
  copying: Promise<unknown>;
  /** Call after Start: sizes the pty to our terminal and keeps it so. */
  started(resize: (width: number, height: number) => Promise<unknown>): void;
  /** Restores our terminal, stops reading our stdin, releases and removes the FIFOs. */
  done(): void;
}

/** As ctr: a terminal task is driven from a terminal (from a pipe, its shell would wait on its pty forever). */
export function requireTerminal(): void {
  if (!process.stdin.isTTY) throw errInvalidArgument('--tty: stdin is not a terminal (run without -t, or from a terminal)');
}

/** The FIFOs for a process named `name`, with our stdin attached unless `stdin` is false. */
export function openTaskIo(name: string, opts: { terminal: boolean; stdin?: boolean }): TaskIo {
  if (opts.terminal) requireTerminal();
  const dir = join(FIFO_ROOT, randomBytes(8).toString('hex'));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = (which: string) => join(dir, `${name}-${which}`);
  const stdin = opts.stdin === false ? '' : path('stdin');
  const stdout = path('stdout');
  const stderr = opts.terminal ? '' : path('stderr');
  const fifos = [stdin, stdout, stderr].filter(Boolean);
  for (const fifo of fifos) sysAddon().mkfifo(fifo, 0o600);

  const copying = Promise.all([pipeFifo(stdout, process.stdout), ...(stderr ? [pipeFifo(stderr, process.stderr)] : [])]);
  const input = stdin ? feedFifo(stdin) : undefined;
  const restore = opts.terminal && process.stdin.isTTY ? makeRaw() : undefined;
  let onResize: (() => void) | undefined;

  return {
    stdin, stdout, stderr, terminal: opts.terminal, copying,
    started(resize) {
      input?.opened();
      if (!opts.terminal || !process.stdout.isTTY) return;
      onResize = () => { resize(process.stdout.columns, process.stdout.rows).catch(() => undefined); };
      onResize();
      process.stdout.on('resize', onResize);
    },
    done() {
      if (onResize) process.stdout.off('resize', onResize);
      restore?.();
      input?.stop();
      releaseFifos(fifos);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Our terminal's size, for the spec's process.consoleSize (the pty starts at it: no race with the first
 * ResizePty). */
export function consoleSize(): { width: number; height: number } | undefined {
  return process.stdout.isTTY && process.stdout.columns ? { width: process.stdout.columns, height: process.stdout.rows } : undefined;
}

/** Copies a FIFO to `out` until its writers close it. Opened without blocking and read through the event loop:
 * a read stream's open waits in a thread-pool thread for a writer, and a task that never started left one waiting
 * there for good (the exit joins the pool: the CLI hung). Linux reports no hang-up on a FIFO before its first
 * writer has come, so nothing is read until one has. */
export function pipeFifo(path: string, out: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    let fd: number;
    try { fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK); } catch { resolve(); return; }
    new Socket({ fd, readable: true, writable: false })
      .on('data', (d) => out.write(d)).on('end', () => resolve()).on('close', () => resolve()).on('error', () => resolve());
  });
}

/** Copies our stdin into a FIFO. Opened read-write and non-blocking: it never waits for the reader, and the
 * reader sees EOF once our stdin has ended and we close it; not before the reader has opened its end (the
 * process has started), or what we wrote would go with the pipe. */
function feedFifo(path: string): { opened(): void; stop(): void } {
  const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
  const sink = new Socket({ fd, readable: false, writable: true });
  sink.on('error', () => undefined);
  let ended = false;
  let readerOpen = false;
  // A pipe has no half-close: end() would leave the fd open; destroy it once what was written is flushed.
  const close = () => { if (ended && readerOpen) sink.write('', () => sink.destroy()); };
  const onData = (d: Buffer) => { sink.write(d); };
  const onEnd = () => { ended = true; close(); };
  process.stdin.on('data', onData).once('end', onEnd);
  return {
    opened() { readerOpen = true; close(); },
    stop() {
      process.stdin.off('data', onData).off('end', onEnd);
      process.stdin.pause();
      process.stdin.destroy();
      sink.destroy();
    },
  };
}

/** Releases anyone blocked opening a FIFO that its other side will never open, then the FIFOs are removed. */
export function releaseFifos(paths: string[]): void {
  for (const p of paths) {
    for (const mode of [constants.O_WRONLY | constants.O_NONBLOCK, constants.O_RDONLY | constants.O_NONBLOCK]) {
      try { closeSync(openSync(p, mode)); } catch { /* nobody waiting */ }
    }
  }
}
