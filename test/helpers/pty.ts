// Runs a command on a real pty (test/helpers/ptyrun.c, compiled on first use), as a person at a terminal:
// input typed at given times, the window resized, the screen's bytes captured.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SOURCE = join(import.meta.dirname, 'ptyrun.c');

function ptyrunBinary(): string {
  const hash = createHash('sha256').update(readFileSync(SOURCE)).digest('hex').slice(0, 12);
  const bin = join(tmpdir(), `berth-ptyrun-${hash}`);
  if (!existsSync(bin)) {
    execFileSync('gcc', ['-O2', '-Wall', '-o', `${bin}.${process.pid}`, SOURCE, '-lutil']);
    renameSync(`${bin}.${process.pid}`, bin);
  }
  return bin;
}

export interface PtyOptions {
  cols?: number;
  rows?: number;
  /** Resize the window to these after `afterMs`. */
  resize?: { cols: number; rows: number; afterMs: number };
  /** Keystrokes, each sent `afterMs` after the start. */
  typed?: { afterMs: number; text: string }[];
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

export interface PtyResult { code: number; screen: string }

export function runOnPty(command: string[], opts: PtyOptions = {}): Promise<PtyResult> {
  const args = [String(opts.cols ?? 80), String(opts.rows ?? 24)];
  if (opts.resize) args.push('--resize', String(opts.resize.cols), String(opts.resize.rows), String(opts.resize.afterMs));
  const child = spawn(ptyrunBinary(), [...args, '--', ...command], { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'inherit'] });
  let screen = '';
  child.stdout.on('data', (d: Buffer) => { screen += d.toString('utf8'); });
  const timers = (opts.typed ?? []).map((k) => setTimeout(() => child.stdin.write(k.text), k.afterMs));
  const last = Math.max(0, ...(opts.typed ?? []).map((k) => k.afterMs));
  timers.push(setTimeout(() => child.stdin.end(), last + 50));
  const kill = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      timers.forEach(clearTimeout);
      clearTimeout(kill);
      resolve({ code: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), screen });
    });
  });
}
