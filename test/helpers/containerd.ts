// A real containerd (Debian's 1.6.20) for interop tests and benchmarks: its own root, state and sockets in a
// scratch dir, CRI disabled, stopped by PID when the test ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { tempDir } from './tmp.ts';
import { socketAccepts as accepts } from '../../api/unix-socket.ts';

export interface TestContainerd {
  address: string;
  root: string;
  state: string;
  child: ChildProcess;
}


export async function startContainerd(t: ExecutionContext, env: NodeJS.ProcessEnv = {}): Promise<TestContainerd> {
  const dir = tempDir(t, 'containerd-');
  const root = join(dir, 'root');
  const state = join(dir, 'state');
  const address = join(dir, 'containerd.sock');
  const config = join(dir, 'config.toml');
  writeFileSync(config, [
    'version = 2',
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]', `  address = "${address}"`,
    '[ttrpc]', `  address = "${address}.ttrpc"`,
    '[debug]', `  address = "${join(dir, 'debug.sock')}"`,
    '[metrics]', '  address = ""',
  ].join('\n') + '\n');
  let stderr = '';
  const child = spawn('containerd', ['--config', config, '--root', root, '--state', state], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-20_000); });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });
  for (let i = 0; !(await accepts(address)); i++) {
    if (child.exitCode !== null) throw new Error(`containerd exited ${child.exitCode}: ${stderr}`);
    if (i > 400) throw new Error(`containerd did not listen on ${address}: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return { address, root, state, child };
}
