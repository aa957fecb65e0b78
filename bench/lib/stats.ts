// Shared benchmark helpers: interleaved timing of commands, medians, percentiles and a ratio table.
import { spawnSync } from 'node:child_process';

export interface Subject { name: string; run: () => void | Promise<void> }

export const median = (xs: number[]) => percentile(xs, 50);
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Runs every subject `runs` times, interleaved (a, b, c, a, b, c, ...) so drift hits all alike. */
export async function interleave(subjects: Subject[], runs: number, warmup = 2): Promise<Map<string, number[]>> {
  const times = new Map(subjects.map((s) => [s.name, [] as number[]]));
  for (let i = 0; i < warmup; i++) for (const s of subjects) await s.run();
  for (let i = 0; i < runs; i++) {
    for (const s of subjects) {
      const start = process.hrtime.bigint();
      await s.run();
      times.get(s.name)!.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  }
  return times;
}

/** Runs a command, throwing with its stderr when it fails. */
export function command(cmd: string, args: string[], opts: { cwd?: string } = {}): () => void {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return () => {
    const r = spawnSync(cmd, args, { cwd: opts.cwd, env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  };
}

export function printTable(times: Map<string, number[]>, baseline: string, unit = 'ms'): void {
  const base = median(times.get(baseline)!);
  const width = Math.max(28, ...[...times.keys()].map((name) => name.length + 2));
  console.log(`${'subject'.padEnd(width)}${'median'.padStart(10)}${'p90'.padStart(10)}  vs ${baseline}`);
  for (const [name, xs] of times) {
    console.log(`${name.padEnd(width)}${median(xs).toFixed(1).padStart(8)}${unit}${percentile(xs, 90).toFixed(1).padStart(8)}${unit}${(median(xs) / base).toFixed(2).padStart(8)}×`);
  }
}
