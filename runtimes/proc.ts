// What /proc says about a process, for the runtime and the cgroup stages alike.
import { readFileSync } from 'node:fs';

/** The start time of `pid` (clock ticks since boot), or undefined when it is gone or a zombie: a pid is only
 * taken for the same process while this matches. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
    return fields[19];
  } catch { return undefined; }
}
