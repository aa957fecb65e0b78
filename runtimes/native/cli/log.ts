// runc's logging: logrus lines (text `time="..." level=error msg="..."`, or JSON objects with level, msg and
// time) on stderr or, with --log, in that file (conmon and containerd's shim read it). An error that ends the
// command is logged; with --log it also goes to stderr as a plain line, as runc does.
import { appendFileSync } from 'node:fs';
import { errInvalidArgument } from '../../../api/errdefs.ts';

type Level = 'debug' | 'info' | 'warning' | 'error';
const RANK: Record<Level, number> = { debug: 0, info: 1, warning: 2, error: 3 };

let file: string | undefined;
let json = false;
let threshold: Level = 'info';

export function configureLog(opts: { file?: string; format?: string; debug?: boolean }): void {
  if (opts.format !== undefined && opts.format !== '' && opts.format !== 'text' && opts.format !== 'json') {
    throw errInvalidArgument(`invalid log-format: ${opts.format}`);
  }
  file = opts.file || undefined;
  json = opts.format === 'json';
  threshold = opts.debug ? 'debug' : 'info';
}

/** A text-format value: bare when it is one simple word, else a quoted string (Go's %q). */
function textValue(v: string): string {
  return /^[A-Za-z0-9\-._/@^+]+$/.test(v) ? v : JSON.stringify(v);
}

function line(level: Level, msg: string): string {
  const time = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  if (json) return JSON.stringify({ level, msg, time });
  return `time=${textValue(time)} level=${level} msg=${textValue(msg)}`;
}

export function log(level: Level, msg: string): void {
  if (RANK[level] < RANK[threshold]) return;
  const text = line(level, msg) + '\n';
  if (!file) { process.stderr.write(text); return; }
  try { appendFileSync(file, text, { mode: 0o644 }); } catch (err) {
    process.stderr.write(`berth-runc: cannot write the log file ${file}: ${(err as Error).message}\n`);
  }
}

export const debug = (msg: string) => log('debug', msg);
export const warn = (msg: string) => log('warning', msg);

/** The error that ends the command: logged, and on stderr as a plain line when the log is a file. */
export function fatal(message: string): void {
  log('error', message);
  if (file) process.stderr.write(message + '\n');
}
