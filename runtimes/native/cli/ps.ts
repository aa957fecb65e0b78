// `ps` in table form, as runc: ps(1) runs with the arguments after the id (default -ef) and its header plus the
// lines whose PID column is one of the container's processes are printed.
import { spawnSync } from 'node:child_process';
import { errFailedPrecondition, errInternal } from '../../../api/errdefs.ts';

export function psTable(pids: number[], psArgs: string[]): string {
  const args = psArgs.length ? psArgs : ['-ef'];
  const r = spawnSync('ps', args, { encoding: 'utf8' });
  if (r.error) throw errInternal(`ps: ${r.error.message}`);
  const output = (r.stdout ?? '') + (r.stderr ?? '');
  if (r.status !== 0) throw errFailedPrecondition(`ps ${args.join(' ')}: exit status ${r.status}: ${output.trim()}`);
  const [header = '', ...lines] = r.stdout.split('\n');
  const pidIndex = header.trim().split(/\s+/).indexOf('PID');
  if (pidIndex < 0) throw errFailedPrecondition("couldn't find PID field in ps output");
  const ours = new Set(pids);
  const kept = lines.filter((line) => line && ours.has(Number(line.trim().split(/\s+/)[pidIndex])));
  return [header, ...kept].map((l) => l + '\n').join('');
}
