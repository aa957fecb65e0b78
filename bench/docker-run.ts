// `docker run --rm busybox true` with the same dockerd binary on berthd (Docker's io.containerd.runc.v2 mapped to
// berth's shim and its fast path) and on containerd (Debian's 1.6, its runc shim): two dockerd instances, each
// with its own data root, interleaved runs, medians and the ratio.
// usage: npx tsx bench/docker-run.ts [runs=20]   (as root, after npm run build)
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Dockerd, DOCKER_CLI } from '../test/helpers/docker.ts';
import { writeBusyboxDockerArchive } from '../test/helpers/docker-archive.ts';
import { removeTree } from '../test/helpers/tmp.ts';
import { startBerthd, startContainerd, type Daemon } from './lib/daemons.ts';
import { command, interleave, printTable, type Subject } from './lib/stats.ts';

const runs = Number(process.argv[2] ?? 20);
const MAPPING = [
  '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."io.containerd.runc.v2"]',
  '  runtime_type = "io.containerd.berth.v2"',
  '  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes."io.containerd.runc.v2".options]',
  '    BinaryName = "fast"',
].join('\n');

const work = mkdtempSync(join(tmpdir(), 'berth-bench-docker-'));
const daemons: Daemon[] = [];
const dockerds: Dockerd[] = [];
try {
  const archive = join(work, 'busybox.tar');
  await writeBusyboxDockerArchive(archive, 'busybox:bench');
  const berthd = await startBerthd(join(work, 'berthd'), undefined, MAPPING + '\n');
  daemons.push(berthd);
  const containerd = await startContainerd(join(work, 'containerd'));
  daemons.push(containerd);
  const subjects: Subject[] = [];
  for (const [name, daemon] of [['docker run --rm on containerd (runc shim)', containerd], ['docker run --rm on berthd (berth shim, fast)', berthd]] as const) {
    const dockerd = await Dockerd.start(daemon.address);
    dockerds.push(dockerd);
    const loaded = await dockerd.docker('load', '-i', archive);
    if (loaded.code !== 0) throw new Error(`docker load: ${loaded.stderr}`);
    subjects.push({ name, run: command(DOCKER_CLI, ['-H', `unix://${dockerd.socket}`, 'run', '--rm', 'busybox:bench', 'true']) });
  }
  const times = await interleave(subjects, runs);
  console.log(`docker run --rm busybox true, the same dockerd (20.10) on each daemon, ${runs} interleaved runs each`);
  printTable(times, subjects[0]!.name);
} finally {
  for (const d of dockerds) await d.stop();
  for (const d of daemons) await d.stop();
  removeTree(work);
}
