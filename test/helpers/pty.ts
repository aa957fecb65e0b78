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
  /** Resize the window to these once the screen matches `when`. */
  resize?: { cols: number; rows: number; when: RegExp };
  /** Keystrokes, in order: each once the screen matches `when` (if given) and `afterMs` have passed since the
   * start. Typing only when the program shows it is ready keeps a loaded machine from racing the test. */
  typed?: { afterMs?: number; when?: RegExp; text: string }[];
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

export interface PtyResult { code: number; screen: string }

export function runOnPty(command: string[], opts: PtyOptions = {}): Promise<PtyResult> {
  const args = [String(opts.cols ?? 80), String(opts.rows ?? 24)];
  if (opts.resize) args.push('--resize', String(opts.resize.cols), String(opts.resize.rows));
  let resized = !opts.resize;
  const child = spawn(ptyrunBinary(), [...args, '--', ...command], { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'inherit'] });
  let screen = '';
  const started = Date.now();
  const pending = [...(opts.typed ?? [])];
  let typedUpTo = 0; // the screen's length when the last keystrokes went out: `when` looks at what came after
  const typeWhatIsDue = () => {
    if (!resized && opts.resize!.when.test(screen)) { resized = true; child.kill('SIGUSR1'); }
    while (pending.length) {
      const k = pending[0]!;
      if ((k.afterMs ?? 0) > Date.now() - started) return;
      if (k.when && !k.when.test(screen.slice(typedUpTo))) return;
      pending.shift();
      typedUpTo = screen.length;
      child.stdin.write(k.text);
    }
    child.stdin.end();
    if (resized) clearInterval(ticker);
  };
  const ticker = setInterval(typeWhatIsDue, 20);
  child.stdout.on('data', (d: Buffer) => { screen += d.toString('utf8'); typeWhatIsDue(); });
  const kill = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearInterval(ticker);
      clearTimeout(kill);
      resolve({ code: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), screen });
    });
  });
}
