// `berth-runc run --bundle B id` vs runc and crun for /bin/true, interleaved; prints medians and ratios.
// usage: npx tsx bench/oci-runtime-run.ts [runs=20]   (as root, after npm run build)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeBundle } from '../test/helpers/bundle.ts';
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
try {
  const times = interleave(subjects, runs);
  console.log(`berth-runc run /bin/true, ${runs} interleaved runs each`);
  printTable(times, 'runc');
} finally {
  rmSync(work, { recursive: true, force: true });
}
