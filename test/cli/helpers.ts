// Runs the built berth CLI as an operator would (dist/berth: the launcher of its V8 startup snapshot),
// against a test daemon.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from '../daemon/helpers.ts';

export interface CliResult { code: number; stdout: string; stderr: string }

export function berth(address: string, args: string[], opts: { env?: Record<string, string>; input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, BERTH_ADDRESS: address, ...opts.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const child = execFile(join(REPO, 'dist', 'berth'), args, { env, encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}
