// Running a shim binary the way containerd does: runtime "io.containerd.X.v2" → containerd-shim-X-v2 on PATH
// (berth's own shim is also found beside berthd's bundle). `start` prints the shim's ttrpc address; `delete`
// cleans up after a shim that is gone and prints a DeleteResponse.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnProcess, type SpawnedProcess } from '../../api/spawn.ts';
import { BerthError, ErrorCode, errInvalidArgument, errNotFound } from '../../api/errdefs.ts';
import { decodeMessage, encodeMessage, type AnyMessage } from '../../api/proto.ts';

export interface ShimCallOptions {
  namespace: string;
  id: string;
  bundle: string;
  /** The daemon's gRPC socket (-address) and ttrpc socket (TTRPC_ADDRESS). */
  grpcAddress: string;
  ttrpcAddress: string;
  debug?: boolean;
  /** Containers of one group share a shim (berth's shim reads BERTH_SHIM_GROUP). */
  group?: string;
  /** More environment for the shim (settings of berth's shim: BERTH_VM_POOL). */
  env?: Record<string, string>;
}

/** A shim as the runtime name it serves under, and the binary when configured (runtime_path). */
export interface ShimBinary {
  runtime: string;
  path?: string;
}

/** The command that runs a shim: its configured path, else the binary for its runtime name. */
function shimCommand(shim: ShimBinary): string[] {
  if (!shim.path) return shimBinary(shim.runtime);
  if (!existsSync(shim.path)) throw errNotFound(`runtime ${JSON.stringify(shim.runtime)}: shim binary ${shim.path} not found`);
  // berth's own shim is a Node bundle, run by this node as the one found beside berthd.
  return shim.path.endsWith('.mjs') ? [process.execPath, shim.path] : [shim.path];
}

/** The shim executable for a runtime name, as containerd resolves it. */
function shimBinary(runtime: string): string[] {
  const parts = runtime.split('.');
  if (parts.length < 4 || parts[0] !== 'io' || !parts.at(-2) || !/^v\d+$/.test(parts.at(-1)!)) {
    throw errInvalidArgument(`invalid runtime name ${JSON.stringify(runtime)}: want io.containerd.<name>.<version>, e.g. io.containerd.berth.v2`);
  }
  const name = `containerd-shim-${parts.at(-2)}-${parts.at(-1)}`;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return [join(dir, name)];
  }
  // berthd and its shim are built side by side in dist/.
  const here = dirname(fileURLToPath(import.meta.url));
  for (const rel of ['.', '../../dist']) {
    const bundled = join(here, rel, `${name}.mjs`);
    if (existsSync(bundled)) return [process.execPath, bundled];
  }
  throw errNotFound(`runtime ${JSON.stringify(runtime)}: shim binary ${name} not found on PATH`);
}

function flags(o: ShimCallOptions): string[] {
  return ['-namespace', o.namespace, '-address', o.grpcAddress, '-publish-binary', process.argv[1] ?? 'berthd', '-id', o.id, ...(o.debug ? ['-debug'] : [])];
}

function env(o: ShimCallOptions): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, ...o.env, TTRPC_ADDRESS: o.ttrpcAddress };
  delete e.NODE_EXTRA_CA_CERTS;
  if (o.group) e.BERTH_SHIM_GROUP = o.group;
  return e;
}

/** `<shim> start`: returns the ttrpc address it prints. Runtime options go on stdin as containerd writes them: the
 * whole google.protobuf.Any, type URL and value (containerd's runc shim unpacks it by its type URL). Spawned with
 * posix_spawn (api/spawn.ts): no fork of the daemon, and none of its fds (its databases) reach the shim. */
export async function startShim(shim: ShimBinary, o: ShimCallOptions, options?: AnyMessage): Promise<string> {
  const runtime = shim.runtime;
  const [cmd, ...pre] = shimCommand(shim);
  let child: SpawnedProcess;
  try {
    child = spawnProcess(cmd!, [...pre, ...flags(o), 'start'], { cwd: o.bundle, env: env(o), stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    throw new BerthError(ErrorCode.Unavailable, `starting shim ${cmd}: ${(e as Error).message}`);
  }
  const [stdin, stdout, stderr] = child.stdio as Socket[];
  const read = (s: Socket) => new Promise<string>((resolve) => { let text = ''; s.on('data', (d) => { text += d; }).on('close', () => resolve(text)).on('error', () => undefined); });
  const [out, err] = [read(stdout!), read(stderr!)];
  stdin!.on('error', () => undefined);
  if (options?.typeUrl) stdin!.end(Buffer.from(encodeMessage('google.protobuf.Any', options))); else stdin!.end();
  const { code } = await child.exited;
  if (code === 0 && (await out).trim()) return (await out).trim();
  throw new BerthError(ErrorCode.Unavailable, `shim ${runtime} start failed (${code}): ${(await err).trim() || 'no output'}`);
}

/** `<shim> delete`: cleanup after a shim that is gone; the recorded exit status or 137. */
export function deleteShim(shim: ShimBinary, o: ShimCallOptions): Promise<{ pid: number; exitStatus: number; exitedAt: { seconds: number; nanos: number } | null }> {
  const runtime = shim.runtime;
  const [cmd, ...pre] = shimCommand(shim);
  return new Promise((resolve, reject) => {
    execFile(cmd!, [...pre, ...flags(o), '-bundle', o.bundle, 'delete'], { cwd: o.bundle, env: env(o), encoding: 'buffer' }, (err, stdout, stderr) => {
      if (err) { reject(new BerthError(ErrorCode.Unavailable, `shim ${runtime} delete failed: ${stderr.toString().trim() || err.message}`)); return; }
      resolve(decodeMessage('containerd.task.v2.DeleteResponse', stdout));
    });
  });
}
