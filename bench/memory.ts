// Memory added per sleeping container: N containers started detached through each daemon (berthd with its
// grouped shim and per-container berth-monitor; containerd with containerd-shim-runc-v2), then the PSS of every
// shim and monitor process summed and divided by N; plus each daemon's own memory.
// usage: npx tsx bench/memory.ts [containers=100]   (as root, after npm run build)
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIST, memoryOf, procStat, run, startBerthd, startContainerd } from './lib/daemons.ts';

const n = Number(process.argv[2] ?? 100);
const work = mkdtempSync(join(tmpdir(), 'berth-bench-mem-'));

const ppidOf = (pid: string) => Number(procStat(pid)(4));

function pssOf(match: (cmdline: string, pid: string) => boolean): { count: number; pss: number } {
  let count = 0;
  let pss = 0;
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      if (!match(readFileSync(`/proc/${p}/cmdline`, 'utf8'), p)) continue;
      pss += memoryOf(Number(p)).pss;
      count++;
    } catch { /* exited */ }
  }
  return { count, pss };
}

const archive = join(work, 'busybox.tar');
run(process.execPath, ['--import', 'tsx', join(DIST, '..', 'scripts', 'demo-image.ts'), archive, 'mem']);
const berthd = await startBerthd(join(work, 'berthd'));
const containerd = await startContainerd(join(work, 'containerd'));
const berth = (...a: string[]) => ['-a', berthd.address, ...a];
const BERTH = join(DIST, 'berth');
try {
  run(BERTH, berth('images', 'import', '--base-name', 'berth.local/busybox', archive));
  run('ctr', ['-a', containerd.address, 'images', 'import', '--base-name', 'berth.local/busybox', archive]);
  for (let i = 0; i < n; i++) {
    run(BERTH, berth('run', '-d', 'berth.local/busybox:mem', `b${i}`, 'sleep', '1000'));
    run('ctr', ['-a', containerd.address, 'run', '-d', 'berth.local/busybox:mem', `c${i}`, 'sleep', '1000']);
  }
  await new Promise((r) => setTimeout(r, 2000));
  // The shim and every monitor it started (its spare too): monitors are the shim's children.
  const shims = new Set<number>();
  pssOf((c, p) => { if (c.includes('containerd-shim-berth-v2') && c.includes(berthd.address)) shims.add(Number(p)); return false; });
  const berthSide = pssOf((c, p) => shims.has(Number(p)) || (c.startsWith('berth-monitor') && shims.has(ppidOf(p))));
  const containerdSide = pssOf((c) => c.includes('containerd-shim-runc-v2') && c.includes(containerd.address));
  console.log(`${n} sleeping containers per daemon`);
  console.log(`berth (grouped shim + monitors): ${berthSide.count} processes, ${berthSide.pss.toFixed(1)} MiB PSS, ${(berthSide.pss / n).toFixed(2)} MiB per container`);
  console.log(`containerd-shim-runc-v2:         ${containerdSide.count} processes, ${containerdSide.pss.toFixed(1)} MiB PSS, ${(containerdSide.pss / n).toFixed(2)} MiB per container`);
  console.log(`ratio per container: ${((berthSide.pss / n) / (containerdSide.pss / n)).toFixed(2)}×`);
  const bm = memoryOf(berthd.child.pid!);
  const cm = memoryOf(containerd.child.pid!);
  console.log(`daemons with ${n} containers: berthd ${bm.rss.toFixed(1)} MiB RSS / ${bm.pss.toFixed(1)} PSS, containerd ${cm.rss.toFixed(1)} MiB RSS / ${cm.pss.toFixed(1)} PSS`);
} finally {
  for (let i = 0; i < n; i++) {
    try { run(BERTH, berth('tasks', 'delete', '--force', `b${i}`)); run(BERTH, berth('containers', 'rm', `b${i}`)); } catch { /* not started */ }
    try { run('ctr', ['-a', containerd.address, 'tasks', 'kill', '-s', 'KILL', `c${i}`]); } catch { /* gone */ }
  }
  await new Promise((r) => setTimeout(r, 1000));
  for (let i = 0; i < n; i++) {
    try { run('ctr', ['-a', containerd.address, 'tasks', 'delete', `c${i}`]); run('ctr', ['-a', containerd.address, 'containers', 'rm', `c${i}`]); } catch { /* gone */ }
  }
  await berthd.stop();
  await containerd.stop();
  rmSync(work, { recursive: true, force: true });
}
