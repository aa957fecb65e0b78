// Drives the built berth-runc CLI (dist/berth-runc.mjs) the way a user or a shim would.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { tempDir } from '../helpers/tmp.ts';

export const CLI = fileURLToPath(new URL('../../dist/berth-runc.mjs', import.meta.url));

/** `stderr` has each logrus line (`time=".." level=error msg=".."`, as runc logs) reduced to its message, so tests
 * match what was said; `rawStderr` is what was written. */
export interface Result { status: number; stdout: string; stderr: string; rawStderr: string }

/** The messages of logrus text lines; other lines as they are. */
export function logMessages(text: string): string {
  return text.replace(/^time="[^"]*" level=\w+ msg=("(?:[^"\\]|\\.)*"|\S*).*$/gm, (_l, msg: string) => (msg.startsWith('"') ? JSON.parse(msg) as string : msg));
}

export function berthRunc(root: string, args: string[], opts: { timeout?: number } = {}): Result {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  // Output goes through files, not pipes: a created container keeps its stdio open (as with runc), and a
  // pipe would never reach EOF while it waits for start.
  const dir = mkdtempSync(join(tmpdir(), 'berth-runc-out-'));
  const [out, err] = [join(dir, 'out'), join(dir, 'err')];
  const fds = [openSync(out, 'w'), openSync(err, 'w')];
  try {
    const r = spawnSync(process.execPath, [CLI, '--root', root, ...args], { stdio: ['ignore', fds[0]!, fds[1]!], env, timeout: opts.timeout ?? 30000 });
    const rawStderr = readFileSync(err, 'utf8');
    return { status: r.status ?? -1, stdout: readFileSync(out, 'utf8'), stderr: logMessages(rawStderr), rawStderr };
  } finally {
    fds.forEach((fd) => closeSync(fd));
    rmSync(dir, { recursive: true, force: true });
  }
}

let counter = 0;
export function uniqueId(prefix = 'c'): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter++}`;
}

/** A private runtime root; containers left in it are force-deleted when the test ends. */
export function runtimeRoot(t: ExecutionContext): string {
  const root = join(tempDir(t, 'berth-runc-root-'), 'root');
  t.teardown(() => {
    const list = berthRunc(root, ['list', '-q']);
    for (const id of list.stdout.split('\n').filter(Boolean)) berthRunc(root, ['delete', '--force', id]);
  });
  return root;
}

/** Every cgroup directory named `id` in any hierarchy (there must be none once a container is deleted). */
export function cgroupDirsOf(id: string): string[] {
  const own = readFileSync('/proc/self/cgroup', 'utf8').split('\n').filter(Boolean);
  const found: string[] = [];
  for (const line of own) {
    const [, controllers, path] = line.split(':');
    const mount = controllers === '' ? '/sys/fs/cgroup/unified' : `/sys/fs/cgroup/${controllers!.replace(/^name=/, '')}`;
    const dir = join(mount, path!, id);
    if (existsSync(dir)) found.push(dir);
  }
  return found;
}
