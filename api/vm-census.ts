// The vm runtime's VMs on this host, counted from /proc for `berth doctor` and berthd's metrics (the shims that own
// them are not asked): QEMU processes serving a sandbox (<root>/sandbox-<shim pid>-<n>), running containers when
// the sandbox's share holds one, else waiting in a shim's warm pool. `under`: only the sandboxes below that
// directory (one daemon's state directory).
import { readdirSync, readFileSync } from 'node:fs';

const read = (path: string) => { try { return readFileSync(path, 'utf8'); } catch { return ''; } };

export function vmCensus(under = ''): { running: number; warm: number } {
  let running = 0;
  let warm = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    const dir = /(?:^|\0)-chardev\0socket,id=agent,path=([^\0]*\/sandbox-\d+-\d+)\/agent\.sock/.exec(read(`/proc/${pid}/cmdline`))?.[1];
    if (!dir?.startsWith(under) || !read(`/proc/${pid}/comm`).startsWith('qemu-system')) continue;
    let containers = 0;
    try { containers = readdirSync(`${dir}/share`).length; } catch { /* gone meanwhile */ }
    if (containers) running++;
    else warm++;
  }
  return { running, warm };
}
