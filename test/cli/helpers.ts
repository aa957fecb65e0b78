// Runs the built berth CLI as an operator would (dist/berth: the launcher of its V8 startup snapshot),
// against a test daemon.
import { execFile, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { ExecutionContext } from 'ava';
import type { ApiClient } from '../../api/grpc-client.ts';
import { chainIdOf } from '../../ctr-cli/image.ts';
import type { TestImage } from '../helpers/image.ts';
import { tempDir } from '../helpers/tmp.ts';
import { REPO } from '../daemon/helpers.ts';

const SNAPSHOTS = 'containerd.services.snapshots.v1.Snapshots';

export interface CliResult { code: number; stdout: string; stderr: string }

export function berth(address: string, args: string[], opts: { env?: Record<string, string>; input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, BERTH_ADDRESS: address, ...opts.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const child = execFile(join(REPO, 'dist', 'berth'), args, { env, encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    // As from a script: stdin is what the test gives, or ends at once (the task's stdin sees EOF).
    child.stdin!.end(opts.input ?? '');
  });
}

/** Puts an image into berthd: blobs through Content.Write, the image record, and its layers unpacked into
 * overlayfs snapshots by chain ID (extracted with tar into each active snapshot's upper directory). */
export async function loadImage(t: ExecutionContext, client: ApiClient, name: string, image: TestImage): Promise<void> {
  // Under a lease, as containerd's clients load: a garbage collection that runs meanwhile keeps what is half made.
  const LEASES = 'containerd.services.leases.v1.Leases';
  const { lease } = await client.call(LEASES, 'Create', { id: `load-${name}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}` });
  try {
    await loadUnderLease(t, client.with({ lease: lease.id }), name, image);
  } finally {
    await client.call(LEASES, 'Delete', { id: lease.id });
  }
}

async function loadUnderLease(t: ExecutionContext, c: ApiClient, name: string, image: TestImage): Promise<void> {
  for (const [digest, data] of image.blobs) {
    const w = c.open('containerd.services.content.v1.Content', 'Write');
    w.send({ action: 'COMMIT', ref: `load-${digest}`, total: data.length, expected: digest, data });
    w.end();
    try { for await (const _ of w) { /* acks */ } } catch (err) { if (!/exists/.test((err as Error).message)) throw err; }
  }
  await c.call('containerd.services.images.v1.Images', 'Create', { image: { name, target: image.target } });
  const diffIds: string[] = [];
  for (const layer of image.manifests[0]!.layers) {
    const parent = diffIds.length ? chainIdOf(diffIds) : '';
    diffIds.push(layer.diffId);
    const key = `extract-${layer.diffId}`;
    const { mounts } = await c.call(SNAPSHOTS, 'Prepare', { snapshotter: 'overlayfs', key, parent });
    const m = mounts[0];
    const dir = m.type === 'bind' ? m.source : m.options.find((o: string) => o.startsWith('upperdir=')).slice('upperdir='.length);
    const tarFile = join(tempDir(t), 'layer.tar');
    writeFileSync(tarFile, gunzipSync(layer.data));
    execFileSync('tar', ['-xf', tarFile, '-C', dir]);
    await c.call(SNAPSHOTS, 'Commit', { snapshotter: 'overlayfs', name: chainIdOf(diffIds), key });
  }
  // The references an import or pull records, so garbage collection keeps what the image needs.
  const m = image.manifests[0]!;
  const CONTENT = 'containerd.services.content.v1.Content';
  const refs: Record<string, string> = { 'containerd.io/gc.ref.content.config': m.config.descriptor.digest };
  m.layers.forEach((l, i) => { refs[`containerd.io/gc.ref.content.l.${i}`] = l.descriptor.digest; });
  await c.call(CONTENT, 'Update', { info: { digest: m.descriptor.digest, labels: refs }, updateMask: { paths: Object.keys(refs).map((k) => `labels.${k}`) } });
  const snap = { 'containerd.io/gc.ref.snapshot.overlayfs': chainIdOf(diffIds) };
  await c.call(CONTENT, 'Update', { info: { digest: m.config.descriptor.digest, labels: snap }, updateMask: { paths: Object.keys(snap).map((k) => `labels.${k}`) } });
}

