// `delete`: containerd runs this when a shim is gone: force-delete the container through the backend it was
// created with, unmount its rootfs, and print a DeleteResponse (the recorded exit status, else 137).
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { encodeMessage, toTimestamp } from '../api/proto.ts';
import { openRuntime } from '../runtimes/oci-runtime.ts';
import { readExitFile } from '../runtimes/monitor.ts';
import '../runtimes/backends/index.ts';
import type { ShimFlags } from './main.ts';
import { unmountAll } from '../api/mounting.ts';
import { removeLeftAside } from '../api/remove-soon.ts';
import { openCgroup } from '../runtimes/cgroups/index.ts';
import { removeStaleStages } from '../runtimes/cgroups/staging.ts';

export async function deleteAction(f: ShimFlags): Promise<void> {
  const bundle = f.bundle || process.cwd();
  const stateDir = join(bundle, '.berth');
  let pid = 0;
  try {
    const saved = JSON.parse(readFileSync(join(stateDir, 'runtime.json'), 'utf8')) as { binaryName?: string; root: string; pid?: number };
    pid = saved.pid ?? 0;
    await openRuntime(saved.binaryName, saved.root).delete(f.id, true).catch(() => undefined);
    removeLeftAside(saved.root); // what the dead shim had set aside to remove
  } catch { /* never created: nothing to delete */ }
  try {
    const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { linux?: { cgroupsPath?: string } };
    await removeStaleStages(openCgroup(spec.linux?.cgroupsPath ?? '', { containerId: f.id }));
  } catch { /* no spec, or no cgroups: no stage either */ }
  await unmountAll(join(bundle, 'rootfs')).catch(() => undefined);
  const exit = readExitFile(join(stateDir, 'init.exit')) ?? { status: 137, exitedAt: new Date() };
  rmSync(stateDir, { recursive: true, force: true });
  process.stdout.write(Buffer.from(encodeMessage('containerd.task.v2.DeleteResponse', { pid, exitStatus: exit.status, exitedAt: toTimestamp(exit.exitedAt) })));
}
