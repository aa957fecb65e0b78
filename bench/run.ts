// `berth run --rm IMAGE ID /bin/true` against berthd vs `ctr run --rm` against containerd (runc, and crun when
// crun works on this host), same image in both, interleaved; also berth with runc behind its shim, and each
// daemon's idle memory.
// usage: npx tsx bench/run.ts [runs=30]   (as root, after npm run build)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIST, memoryOf, run, startBerthd, startContainerd } from './lib/daemons.ts';
import { type Subject, command, interleave, printTable } from './lib/stats.ts';

const runs = Number(process.argv[2] ?? 30);
const work = mkdtempSync(join(tmpdir(), 'berth-bench-run-'));
const archive = join(work, 'busybox.tar');
run(process.execPath, ['--import', 'tsx', join(DIST, '..', 'scripts', 'demo-image.ts'), archive, 'bench']);
const berthd = await startBerthd(join(work, 'berthd'));
const containerd = await startContainerd(join(work, 'containerd'));
try {
  const berth = (...a: string[]) => ['-a', berthd.address, ...a];
const BERTH = join(DIST, 'berth');
  run(BERTH, berth('images', 'import', '--base-name', 'berth.local/busybox', archive));
  run('ctr', ['-a', containerd.address, 'images', 'import', '--base-name', 'berth.local/busybox', archive]);
  const idle = { berthd: memoryOf(berthd.child.pid!), containerd: memoryOf(containerd.child.pid!) };
  let n = 0;
  const ctrRun = (binary: string) => () => command('ctr', ['-a', containerd.address, 'run', '--rm', '--runc-binary', binary, 'berth.local/busybox:bench', `c${n++}`, '/bin/true'])();
  // crun 1.8 refuses a hybrid cgroup host unless hugetlb is a v1 hierarchy (scripts/setup.sh arranges that).
  let crun = true;
  try { ctrRun('crun')(); } catch (err) { crun = false; console.log(`ctr run (crun) skipped: ${(err as Error).message.split('\n')[0]}`); }
  const subjects: Subject[] = [
    { name: 'ctr run --rm (runc)', run: ctrRun('runc') },
    ...(crun ? [{ name: 'ctr run --rm (crun)', run: ctrRun('crun') }] : []),
    { name: 'berth run --rm (fast)', run: () => command(BERTH, berth('run', '--rm', 'berth.local/busybox:bench', `b${n++}`, '/bin/true'))() },
    { name: 'berth run --rm (runc)', run: () => command(BERTH, berth('run', '--rm', '--runc-binary', 'runc', 'berth.local/busybox:bench', `r${n++}`, '/bin/true'))() },
    { name: 'berth version (CLI start)', run: command(BERTH, berth('version')) },
    { name: 'ctr version', run: command('ctr', ['-a', containerd.address, 'version']) },
  ];
  const times = await interleave(subjects, runs);
  console.log(`run --rm IMAGE ID /bin/true through each daemon, ${runs} interleaved runs each`);
  printTable(times, crun ? 'ctr run --rm (crun)' : 'ctr run --rm (runc)');
  console.log(`idle daemon memory: berthd ${idle.berthd.rss.toFixed(1)} MiB RSS (${idle.berthd.pss.toFixed(1)} PSS), containerd ${idle.containerd.rss.toFixed(1)} MiB RSS (${idle.containerd.pss.toFixed(1)} PSS)`);
} finally {
  await berthd.stop();
  await containerd.stop();
  rmSync(work, { recursive: true, force: true });
}
