// Runs one bundle's `sh -c script` through each way into a container, for tests that compare what the process
// sees: runc and berth-runc as CLIs (`run`), and berth's shim fast path (the shim plans in process).
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { packAny } from '../../api/proto.ts';
import { makeBundle, type Bundle, type Json } from '../helpers/bundle.ts';
import { tempDir } from '../helpers/tmp.ts';
import { shimHarness } from '../shim/helpers.ts';
import { CLI, logMessages, uniqueId } from './helpers.ts';

export interface Seen { status: number; stdout: string; stderr: string }
export type Way = 'runc' | 'berth-runc' | 'fast';

const CLIS: Record<Exclude<Way, 'fast'>, string[]> = { runc: ['runc'], 'berth-runc': [process.execPath, CLI] };

/** A bundle running `sh -c script`, in its own cgroup below /observed. */
export function scriptBundle(t: ExecutionContext, script: string, edit?: (s: Json) => void): Bundle {
  const dir = tempDir(t, 'observed-');
  return makeBundle(join(dir, 'b'), { args: ['sh', '-c', script], edit: (s) => { s.linux.cgroupsPath = `/observed/${uniqueId('o')}`; edit?.(s); } });
}

/** `run` of the bundle by a runtime CLI (extra flags such as --no-pivot before the id); output through files. */
export function runCli(t: ExecutionContext, way: Exclude<Way, 'fast'>, bundle: Bundle, flags: string[] = []): Seen {
  const bin = CLIS[way];
  const out = mkdtempSync(join(tmpdir(), 'observed-out-'));
  const fds = [openSync(join(out, 'o'), 'w'), openSync(join(out, 'e'), 'w')];
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  try {
    const root = join(bundle.dir, `..`, `root-${way}`);
    const r = spawnSync(bin[0]!, [...bin.slice(1), '--root', root, 'run', ...flags, '--bundle', bundle.dir, uniqueId('run')],
      { stdio: ['ignore', fds[0]!, fds[1]!], env, timeout: 60000 });
    return { status: r.status ?? -1, stdout: readFileSync(join(out, 'o'), 'utf8'), stderr: logMessages(readFileSync(join(out, 'e'), 'utf8')) };
  } finally {
    fds.forEach((fd) => closeSync(fd));
    rmSync(out, { recursive: true, force: true });
  }
}

/** The same through containerd's task API on berth's shim with no runtime binary: the fast path. A create that
 * fails is reported as status -1 with the error in stderr. */
export async function runFast(t: ExecutionContext, bundle: Bundle, opts: { noPivot?: boolean } = {}): Promise<Seen> {
  const h = await shimHarness(t);
  const id = `f${uniqueId('x').replace(/[^a-z0-9]/gi, '')}`;
  const client = await h.start(bundle.dir, id);
  const io = h.fifos('init');
  const options = opts.noPivot ? packAny('containerd.runc.v1.Options', { noPivotRoot: true }) : undefined;
  try {
    await h.call(client, 'Create', { id, bundle: bundle.dir, stdout: io.stdout, stderr: io.stderr, ...(options ? { options } : {}) });
  } catch (err) {
    return { status: -1, stdout: '', stderr: (err as Error).message };
  }
  const waiting = h.call(client, 'Wait', { id });
  await h.call(client, 'Start', { id });
  const { exitStatus } = await waiting;
  const [stdout, stderr] = await Promise.all([io.output, io.errors]);
  await h.call(client, 'Delete', { id });
  return { status: exitStatus, stdout, stderr };
}

/** Runs the bundle each way asked; a failed start is a result too (status and stderr). */
export async function runEach(t: ExecutionContext, ways: Way[], bundle: Bundle, opts: { noPivot?: boolean } = {}): Promise<Record<Way, Seen>> {
  const seen = {} as Record<Way, Seen>;
  for (const way of ways) {
    seen[way] = way === 'fast' ? await runFast(t, bundle, opts) : runCli(t, way, bundle, opts.noPivot ? ['--no-pivot'] : []);
    t.log(`${way}: status ${seen[way].status}\n${seen[way].stdout}${seen[way].stderr ? `stderr: ${seen[way].stderr}` : ''}`);
  }
  return seen;
}
