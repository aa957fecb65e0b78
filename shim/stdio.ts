// Where a process's stdio goes, as containerd's shims read CreateTaskRequest/ExecProcessRequest: a plain path
// (or fifo://) is a FIFO the client reads; file:///path is a log file appended to (created if missing, stdout and
// stderr may share it); binary:///path?k=v is a logging program fed through FIFOs (see binary-logger.ts).
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { errInvalidArgument } from '../api/errdefs.ts';
import type { StdioPaths } from '../runtimes/monitor.ts';
import { BinaryLogger } from './binary-logger.ts';

export interface ProcessIo {
  stdio: StdioPaths;
  /** Started once the process exists (its output ends are open): the binary:// logger, if any. */
  logger?: BinaryLogger;
}

function resolve(uri: string | undefined, which: string): string | undefined {
  if (!uri) return undefined;
  if (uri.startsWith('fifo://')) return uri.slice('fifo://'.length);
  if (uri.startsWith('file://')) {
    const path = decodeURIComponent(new URL(uri).pathname);
    if (!path.startsWith('/')) throw errInvalidArgument(`${which} ${uri}: the log file path must be absolute`);
    mkdirSync(dirname(path), { recursive: true });
    closeSync(openSync(path, 'a', 0o640));
    return path;
  }
  if (/^[a-z]+:\/\//.test(uri)) throw errInvalidArgument(`${which} ${uri}: unknown scheme (want a FIFO path, fifo://, file:// or binary://)`);
  return uri;
}

/** `stateDir`/`name` place a binary logger's FIFOs. */
export function stdioOf(req: { stdin?: string; stdout?: string; stderr?: string }, stateDir: string, name: string): ProcessIo {
  const binary = [req.stdout, req.stderr].find((u) => u?.startsWith('binary://'));
  if (binary) {
    if ((req.stdout && req.stdout !== binary) || (req.stderr && req.stderr !== binary)) {
      throw errInvalidArgument(`stdout ${req.stdout} and stderr ${req.stderr}: a binary:// logger takes both streams`);
    }
    const logger = BinaryLogger.prepare(binary, stateDir, name);
    return { stdio: { stdin: resolve(req.stdin, 'stdin'), ...logger.paths }, logger };
  }
  return { stdio: { stdin: resolve(req.stdin, 'stdin'), stdout: resolve(req.stdout, 'stdout'), stderr: resolve(req.stderr, 'stderr') } };
}
