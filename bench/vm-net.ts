// A VM container's network throughput: the host fetches a 50 MiB file from busybox httpd in a Docker container on a
// user-defined bridge network, the container in a VM (berthd's docker-in-vms rule over Docker's namespace `moby`) and
// on berth's fast path (a second dockerd on the same berthd with containerd namespace `moby-native`, which the rule
// does not match); interleaved fetches, medians and MiB/s.
// usage: npx tsx bench/vm-net.ts [fetches=5]   (as root, after npm run build)
import { mkdtempSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Dockerd } from '../test/helpers/docker.ts';
import { writeBusyboxDockerArchive } from '../test/helpers/docker-archive.ts';
import { removeTree } from '../test/helpers/tmp.ts';
import { startBerthd, type Daemon } from './lib/daemons.ts';
import { interleave, median, printTable, type Subject } from './lib/stats.ts';

const fetches = Number(process.argv[2] ?? 5);
const MiB = 50;
const POLICY = ['[[policy.rules]]', 'name = "docker-in-vms"', 'isolation = "vm"', '[policy.rules.match]', 'namespaces = ["moby"]'].join('\n');

/** GETs url and counts its bytes; retried while the server does not answer yet. */
async function fetchSize(url: string, retryMs = 0): Promise<number> {
  const deadline = Date.now() + retryMs;
  for (;;) {
    try {
      return await new Promise<number>((resolve, reject) => {
        get(url, (res) => {
          let n = 0;
          res.on('data', (c: Buffer) => { n += c.length; }).on('end', () => resolve(n)).on('error', reject);
        }).on('error', reject);
      });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

const work = mkdtempSync(join(tmpdir(), 'berth-bench-vmnet-'));
let berthd: Daemon | undefined;
const dockerds: { d: Dockerd; network: string }[] = [];
try {
  const archive = join(work, 'busybox.tar');
  await writeBusyboxDockerArchive(archive, 'busybox:bench');
  berthd = await startBerthd(join(work, 'berthd'), undefined, POLICY + '\n');
  const subjects: Subject[] = [];
  for (const [name, ns, subnet] of [['fast path (runc-like)', 'moby-native', '10.213.21'], ['vm (QEMU TCG, virtio-net, tc redirect)', 'moby', '10.213.20']] as const) {
    const d = await Dockerd.start(berthd.address, ['--containerd-namespace', ns, '--containerd-plugins-namespace', `${ns}-plugins`]);
    const network = `bench-${ns}`;
    dockerds.push({ d, network });
    for (const args of [['load', '-i', archive], ['network', 'create', '--subnet', `${subnet}.0/24`, network],
      ['run', '-d', '--name', 'web', '--network', network, '--ip', `${subnet}.10`, 'busybox:bench', 'sh', '-c',
        `mkdir -p /www && dd if=/dev/zero of=/www/big bs=1M count=${MiB} 2>/dev/null && exec httpd -f -p 80 -h /www`]]) {
      const r = await d.docker(...args);
      if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr}`);
    }
    const url = `http://${subnet}.10/big`;
    const size = await fetchSize(url, 60_000);
    if (size !== MiB << 20) throw new Error(`${url}: ${size} bytes, want ${MiB << 20}`);
    subjects.push({ name, run: async () => { await fetchSize(url); } });
  }
  const times = await interleave(subjects, fetches, 1);
  console.log(`the host fetches ${MiB} MiB from busybox httpd in a Docker container on a bridge network, ${fetches} interleaved fetches each`);
  printTable(times, subjects[0]!.name);
  for (const [name, xs] of times) console.log(`${name}: ${(MiB / (median(xs) / 1000)).toFixed(1)} MiB/s`);
} finally {
  for (const { d, network } of dockerds) {
    await d.docker('rm', '-f', 'web');
    await d.docker('network', 'rm', network);
    await d.stop();
  }
  await berthd?.stop();
  removeTree(work);
}
