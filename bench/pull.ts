// Cold pull + unpack of a 4-layer image from a local registry: berthd (berth images pull) vs containerd
// (ctr images pull --plain-http), interleaved, each image removed with GC and the page cache dropped between
// runs so every pull is cold; then one more berthd pull stamps when each layer was fetched and unpacked.
// The image is built from host trees as shared/targets.md describes (busybox base, /usr/include,
// /usr/lib/python3*, /usr/share/{man,perl,i18n,zoneinfo}), gzip layers, cached under /var/tmp.
// usage: npx tsx bench/pull.ts [runs=5]   (as root, after npm run build)
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ApiClient } from '../api/grpc-client.ts';
import { LocalContentStore } from '../content/local.ts';
import { pushImage } from '../daemon/remotes/push.ts';
import { busyboxLayerTar } from '../test/helpers/image.ts';
import { DIST, procStat, run, startBerthd, startContainerd } from './lib/daemons.ts';
import { printTable } from './lib/stats.ts';

const runs = Number(process.argv[2] ?? 5);

/** Cold means cold: written-back and dropped page cache before each pull (the registry's blobs included). */
function dropCaches(): void {
  run('sync', []);
  try { writeFileSync('/proc/sys/vm/drop_caches', '3'); } catch (err) { console.error(`cannot drop the page cache: ${(err as Error).message}`); }
}
const CACHE = '/var/tmp/berth-bench-image';
const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

async function layers(): Promise<Buffer[]> {
  mkdirSync(CACHE, { recursive: true });
  const trees: [string, string[]][] = [
    ['include', ['usr/include']], ['python', ['usr/lib/python3', 'usr/lib/python3.11']], ['share', ['usr/share/man', 'usr/share/perl', 'usr/share/i18n', 'usr/share/zoneinfo']],
  ];
  const out: Buffer[] = [];
  const base = join(CACHE, 'base.tar.gz');
  if (!existsSync(base)) writeFileSync(base, (await import('node:zlib')).gzipSync(await busyboxLayerTar()));
  out.push(readFileSync(base));
  for (const [name, paths] of trees) {
    const file = join(CACHE, `${name}.tar.gz`);
    if (!existsSync(file)) run('tar', ['-C', '/', '--ignore-failed-read', '-czf', file, ...paths.filter((p) => existsSync(`/${p}`))]);
    out.push(readFileSync(file));
  }
  return out;
}

function time(cmd: string, args: string[]): Promise<number> {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    child.on('exit', (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - start) / 1e6) : reject(new Error(`${cmd} ${args.join(' ')}: ${err}`))));
  });
}

/** CPU seconds a process used itself, and its waited-for children used. */
function cpuOf(pid: number): { self: number; children: number } {
  const field = procStat(pid);
  const tick = (n: number) => Number(field(n)) / 100; // utime, stime, cutime, cstime: fields 14-17, in ticks
  return { self: tick(14) + tick(15), children: tick(16) + tick(17) };
}

const work = mkdtempSync(join(tmpdir(), 'berth-bench-pull-'));
const gz = await layers();
const diffIds = gz.map((l) => sha(gunzipSync(l)));
const layerMt = 'application/vnd.oci.image.layer.v1.tar+gzip';
const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: diffIds } }));
const manifest = Buffer.from(JSON.stringify({
  schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
  layers: gz.map((l) => ({ mediaType: layerMt, digest: sha(l), size: l.length })),
}));
const store = await LocalContentStore.open(join(work, 'content'));
for (const blob of [config, manifest, ...gz]) {
  const w = await store.writer({ ref: sha(blob) });
  await w.write(blob);
  await w.commit(blob.length, sha(blob));
}
// A registry as the tests start it.
const registryDir = join(work, 'registry');
mkdirSync(registryDir);
const port = 40000 + Math.floor(Math.random() * 20000);
writeFileSync(join(registryDir, 'config.yml'), `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${registryDir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n`);
const registry = spawn('docker-registry', ['serve', join(registryDir, 'config.yml')], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 1000));
const ref = `127.0.0.1:${port}/bench/big:1`;
await pushImage(ref, { store, target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length }, plainHttp: true });
const total = gz.reduce((s, l) => s + l.length, 0);
const berthd = await startBerthd(join(work, 'berthd'));
const containerd = await startContainerd(join(work, 'containerd'));
try {
  const berth = (...a: string[]) => ['-a', berthd.address, ...a];
const BERTH = join(DIST, 'berth');
  const times = new Map<string, number[]>([['ctr images pull (containerd)', []], ['berth images pull (berthd)', []]]);
  for (let i = 0; i < runs; i++) {
    dropCaches();
    times.get('ctr images pull (containerd)')!.push(await time('ctr', ['-a', containerd.address, 'images', 'pull', '--plain-http', ref]));
    run('ctr', ['-a', containerd.address, 'images', 'rm', '--sync', ref]);
    dropCaches();
    times.get('berth images pull (berthd)')!.push(await time(BERTH, berth('images', 'pull', ref)));
    run(BERTH, berth('images', 'rm', '--sync', ref));
  }
  console.log(`cold pull + unpack of ${gz.length} gzip layers, ${(total / 1048576).toFixed(0)} MiB compressed, ${runs} interleaved runs each`);
  printTable(times, 'ctr images pull (containerd)');
  // Where berthd's time goes: one more cold pull through the API, each layer's download and unpack stamped.
  dropCaches();
  const client = new ApiClient(berthd.address, { namespace: 'default' });
  const cpu0 = [cpuOf(berthd.child.pid!), cpuOf(registry.pid!)];
  const t0 = Date.now();
  const marks: string[] = [];
  const at = () => ((Date.now() - t0) / 1000).toFixed(2).padStart(6);
  for await (const m of client.stream<any>('berth.services.transfer.v1.Transfer', 'Pull', { ref })) {
    if ((m.stage === 'layer' && m.status === 'done') || (m.stage === 'unpack' && m.status !== 'skipped') || m.stage === 'done') {
      marks.push(`${at()} s  ${m.stage.padEnd(6)} ${(m.status ?? '').padEnd(9)} ${m.digest ? m.digest.slice(7, 19) : ''} ${m.total ? `${(Number(m.total) / 1048576).toFixed(1)} MiB` : ''}`);
    }
  }
  client.close();
  const cpu1 = [cpuOf(berthd.child.pid!), cpuOf(registry.pid!)];
  console.log('\nberthd, one cold pull, when each step ended (layer = fetched and verified, unpack = applied):');
  for (const line of marks) console.log(line);
  const spent = (i: number, k: 'self' | 'children') => (cpu1[i]![k] - cpu0[i]![k]).toFixed(2);
  console.log(`CPU seconds during that pull: berthd ${spent(0, 'self')} (fetch, verify, store), its berth-apply processes ${spent(0, 'children')} (decompress, diff ID, file creation), the registry ${spent(1, 'self')}`);
  run(BERTH, berth('images', 'rm', '--sync', ref));
} finally {
  await berthd.stop();
  await containerd.stop();
  registry.kill();
  rmSync(work, { recursive: true, force: true });
}
