// Starting a shim the way containerd does (`<shim> -namespace NS -address A -publish-binary B -id ID start`,
// cwd = bundle, TTRPC_ADDRESS = an events server) and talking to it over ttrpc. Works for berth's shim and
// containerd's runc shim alike.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants as fsc, createReadStream, openSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { packAny, unpackAny } from '../../api/proto.ts';
import { NAMESPACE_KEY, TtrpcClient } from '../../api/ttrpc/client.ts';
import { TtrpcServer } from '../../api/ttrpc/server.ts';
import { REPO } from '../daemon/helpers.ts';
import { tempDir } from '../helpers/tmp.ts';

export const TASK = 'containerd.task.v2.Task';
export const BERTH_SHIM = join(REPO, 'dist', 'containerd-shim-berth-v2.mjs');

export interface ReceivedEvent { topic: string; namespace: string; event: any }

export interface ShimHarness {
  dir: string;
  ns: string;
  events: ReceivedEvent[];
  eventsSocket: string;
  /** Runs `<shim> start` for a container whose bundle is `bundle`; returns the connected client. */
  start(bundle: string, id: string, shim?: string): Promise<TtrpcClient>;
  call<T = any>(client: TtrpcClient, method: string, req: Record<string, unknown>): Promise<T>;
  /** FIFOs for stdout and stderr, already being read. */
  fifos(name: string): { stdout: string; stderr: string; output: Promise<string>; errors: Promise<string> };
  /** containerd.runc.v1.Options as an Any, choosing the OCI runtime binary. */
  options(binaryName?: string): { typeUrl: string; value: Uint8Array } | undefined;
}

function readAll(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    createReadStream(path, { encoding: 'utf8' }).on('data', (d) => { out += d; }).on('end', () => resolve(out)).on('error', reject);
  });
}

export async function shimHarness(t: ExecutionContext): Promise<ShimHarness> {
  const dir = tempDir(t, 'shim-');
  const ns = `berth-shim-test-${process.pid}-${Math.random().toString(36).slice(2, 7)}`;
  const events: ReceivedEvent[] = [];
  const server = new TtrpcServer().register('containerd.services.events.ttrpc.v1.Events', {
    Forward: (req) => { events.push({ topic: req.envelope.topic, namespace: req.envelope.namespace, event: unpackAny(req.envelope.event) }); },
  });
  const eventsSocket = join(dir, 'events.sock');
  await server.listen(eventsSocket);
  t.teardown(() => server.close(100));
  const fifoPaths: string[] = [];
  t.teardown(() => {
    // Unblock readers of FIFOs nobody opened.
    for (const f of fifoPaths) { try { closeSync(openSync(f, fsc.O_RDWR | fsc.O_NONBLOCK)); } catch { /* gone */ } }
  });
  const md = { metadata: { [NAMESPACE_KEY]: ns } };
  t.teardown(() => {
    // The backends' per-namespace state roots (/run/berth/<backend>/<ns>).
    for (const entry of (() => { try { return readdirSync('/run/berth', { withFileTypes: true }); } catch { return []; } })()) {
      if (entry.isDirectory()) rmSync(join('/run/berth', entry.name, ns), { recursive: true, force: true });
    }
  });
  return {
    dir, ns, events, eventsSocket,
    async start(bundle, id, shim = BERTH_SHIM) {
      execFileSync('mkfifo', [join(bundle, 'log')]);
      const logFd = openSync(join(bundle, 'log'), fsc.O_RDONLY | fsc.O_NONBLOCK);
      t.teardown(() => closeSync(logFd));
      const env: NodeJS.ProcessEnv = { ...process.env, TTRPC_ADDRESS: eventsSocket };
      delete env.NODE_EXTRA_CA_CERTS;
      const cmd = shim.endsWith('.mjs') ? [process.execPath, shim] : [shim];
      const child = spawn(cmd[0]!, [...cmd.slice(1), '-namespace', ns, '-address', join(dir, 'grpc.sock'), '-publish-binary', '/usr/bin/containerd', '-id', id, 'start'],
        { cwd: bundle, env, stdio: ['pipe', 'pipe', 'pipe'] });
      child.stdin.end();
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => { out += d; });
      child.stderr.on('data', (d) => { err += d; });
      const code = await new Promise((resolve) => child.on('exit', resolve));
      if (code !== 0) throw new Error(`shim start exited ${code}: ${err}`);
      const client = await TtrpcClient.connect(out.trim());
      t.teardown(async () => {
        const c = await client.call(TASK, 'Connect', { id }, md).catch(() => undefined);
        await client.call(TASK, 'Kill', { id, signal: 9, all: true }, md).catch(() => undefined);
        await client.call(TASK, 'Delete', { id }, md).catch(() => undefined);
        await client.call(TASK, 'Shutdown', { id, now: true }, md).catch(() => undefined);
        client.close();
        if (c?.shimPid) { await new Promise((r) => setTimeout(r, 100)); try { process.kill(c.shimPid, 'SIGKILL'); } catch { /* exited */ } }
        rmSync(out.trim().replace('unix://', ''), { force: true });
      });
      return client;
    },
    call: (client, method, req) => client.call(TASK, method, req, md),
    fifos(name) {
      const stdout = join(dir, `${name}.out`);
      const stderr = join(dir, `${name}.err`);
      execFileSync('mkfifo', [stdout, stderr]);
      fifoPaths.push(stdout, stderr);
      return { stdout, stderr, output: readAll(stdout), errors: readAll(stderr) };
    },
    options: (binaryName) => (binaryName ? packAny('containerd.runc.v1.Options', { binaryName }) : undefined),
  };
}
