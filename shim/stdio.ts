// Where a process's stdio goes, as containerd's shims read CreateTaskRequest/ExecProcessRequest: a plain path
// (or fifo://) is a FIFO the client reads; file:///path is a log file appended to (created if missing, stdout and
// stderr may share it). binary:// loggers are refused clearly for now.
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { errInvalidArgument, errNotImplemented } from '../api/errdefs.ts';
import type { StdioPaths } from '../runtimes/monitor.ts';

function resolve(uri: string | undefined, which: string): string | undefined {
  if (!uri) return undefined;
  if (uri.startsWith('binary://')) throw errNotImplemented(`${which} ${uri}: binary:// log URIs are not supported by this shim yet`);
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

export function stdioOf(req: { stdin?: string; stdout?: string; stderr?: string }): StdioPaths {
  return { stdin: resolve(req.stdin, 'stdin'), stdout: resolve(req.stdout, 'stdout'), stderr: resolve(req.stderr, 'stderr') };
}
