// `start`: find or spawn the long-lived shim for this container (or its group) and print its address.
// Containers whose OCI annotations name a group (io.containerd.runc.v2.group, io.kubernetes.cri.sandbox-id)
// share one shim: the socket path derives from the daemon address, namespace and group, so the second
// container's `start` finds the first one's shim alive and answers its address.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError, ErrorCode } from '../api/errdefs.ts';
import type { ShimFlags } from './main.ts';
import { GROUP_ANNOTATIONS } from '../runtimes/oci/spec.ts';
import { socketAccepts as accepts } from '../api/unix-socket.ts';

export const SOCKET_DIR = '/run/berth/s';

export function groupOf(bundle: string, id: string): string {
  // berthd groups a namespace's containers into one shim this way (a spec annotation would change the spec).
  if (process.env.BERTH_SHIM_GROUP) return process.env.BERTH_SHIM_GROUP;
  try {
    const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { annotations?: Record<string, string> };
    for (const a of GROUP_ANNOTATIONS) if (spec.annotations?.[a]) return spec.annotations[a]!;
  } catch { /* no readable spec: the container is its own group */ }
  return id;
}

export function socketPath(address: string, namespace: string, group: string): string {
  return join(SOCKET_DIR, createHash('sha256').update(`${address}/${namespace}/${group}`).digest('hex'));
}


export async function startAction(f: ShimFlags): Promise<void> {
  const bundle = process.cwd();
  const group = groupOf(bundle, f.id);
  const path = socketPath(f.address, f.namespace, group);
  const address = `unix://${path}`;
  if (!(await accepts(path))) {
    mkdirSync(SOCKET_DIR, { recursive: true, mode: 0o711 });
    try {
      await spawnServer(f, path);
    } catch (err) {
      // Lost a race with another start of the same group: its shim serves.
      if (!(await accepts(path))) throw err;
    }
  }
  writeFileSync(join(bundle, 'address'), address);
  process.stdout.write(address);
}

/** Starts this program in serve mode, detached, and waits until it listens. */
function spawnServer(f: ShimFlags, path: string): Promise<void> {
  const args = [process.argv[1]!, '-namespace', f.namespace, '-id', f.id, '-address', f.address, '-publish-binary', f.publishBinary, '-socket', path];
  if (f.debug) args.push('-debug');
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  // The shim outlives this process, so its stderr cannot be a pipe to us: it goes to a file in the bundle.
  const errPath = join(process.cwd(), 'shim.stderr');
  const errFd = openSync(errPath, 'a');
  const child = spawn(process.execPath, args, { cwd: process.cwd(), env, detached: true, stdio: ['ignore', 'ignore', errFd, 'pipe'] });
  closeSync(errFd);
  return new Promise((resolve, reject) => {
    const ready = child.stdio[3] as NodeJS.ReadableStream;
    ready.on('data', (d: Buffer) => {
      if (!d.toString().includes('ready')) return;
      (ready as unknown as { destroy(): void }).destroy();
      child.unref();
      resolve();
    });
    child.once('exit', (code) => {
      let stderr = '';
      try { stderr = readFileSync(errPath, 'utf8').trim(); } catch { /* none */ }
      reject(new BerthError(ErrorCode.Unavailable, `shim exited (${code}) before serving: ${stderr}`));
    });
  });
}
