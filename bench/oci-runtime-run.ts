// `berth-runc run --bundle B id` vs runc and crun for /bin/true, interleaved; prints medians and ratios. Beside
// them, the same work on berth's fast path as a shim does it, planned in this (warm) process: create, start,
// wait for the exit, delete; no runtime CLI is started.
// usage: npx tsx bench/oci-runtime-run.ts [runs=20]   (as root, after npm run build)
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeBundle } from '../test/helpers/bundle.ts';
import '../runtimes/backends/fast.ts';
import { openRuntime } from '../runtimes/oci-runtime.ts';
import { type Subject, command, interleave, printTable } from './lib/stats.ts';

const runs = Number(process.argv[2] ?? 20);
const work = mkdtempSync(join(tmpdir(), 'berth-bench-run-'));
const bundle = makeBundle(join(work, 'bundle'), { args: ['/bin/true'] });
const cli = fileURLToPath(new URL('../dist/berth-runc.mjs', import.meta.url));
let n = 0;
const run = (name: string, bin: string, pre: string[] = []): Subject => {
  const root = join(work, `root-${name}`);
  return { name, run: () => command(bin, [...pre, '--root', root, 'run', '--bundle', bundle.dir, `bench-${n++}`])() };
};
const subjects: Subject[] = [run('berth-runc', process.execPath, [cli]), run('runc', 'runc')];
// crun 1.8 refuses the hybrid cgroup layout unless hugetlb is a v1 hierarchy (see shared/machine.md).
try { command('crun', ['--version'])(); run('crun', 'crun').run(); subjects.push(run('crun', 'crun')); } catch (err) {
  console.log(`crun skipped: ${(err as Error).message.split('\n')[0]}`);
}
subjects.push({ name: 'node -e 0 (reference)', run: command(process.execPath, ['-e', '0']) });
const fast = openRuntime(undefined, join(work, 'root-fast'));
subjects.push({
  name: 'fast path (shim, in process)',
  run: async () => {
    const id = `bench-${n++}`;
    const stateDir = join(work, 'state', id);
    mkdirSync(stateDir, { recursive: true });
    const monitored = await fast.create({ id, bundle: bundle.dir, stdio: {}, stateDir });
    await fast.start(id);
    const { status } = await monitored.exited;
    await fast.delete(id, false);
    if (status !== 0) throw new Error(`fast path: /bin/true exited ${status}`);
  },
});
// A shim's server keeps its event loop alive while it waits on a monitor (whose pipes are unref'd); so does this.
const alive = setInterval(() => undefined, 1000);
try {
  const times = await interleave(subjects, runs);
  console.log(`berth-runc run /bin/true, ${runs} interleaved runs each`);
  printTable(times, 'runc');
} finally {
  clearInterval(alive);
  rmSync(work, { recursive: true, force: true });
}
