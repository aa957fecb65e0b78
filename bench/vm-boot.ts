// A vm sandbox's cold boot: QEMU started to the guest agent's first Ping answer, N boots one after another,
// with the guest's own uptime at that moment (from the agent's console line) to tell the guest kernel's share
// from QEMU's start and the host's side.
// usage: npx tsx bench/vm-boot.ts [boots=5]   (as root, after npm run build)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchVm } from '../runtimes/vm/qemu.ts';

const n = Number(process.argv[2] ?? 5);
const work = mkdtempSync(join(tmpdir(), 'berth-bench-vm-'));
const boots: { ms: number; uptime: number }[] = [];
let accel = '';
try {
  for (let i = 0; i < n; i++) {
    const vm = await launchVm({ stateDir: join(work, 'vm') });
    accel = vm.accel;
    const uptime = Math.round(Number(/uptime ([\d.]+) s/.exec(readFileSync(vm.consoleLog, 'utf8'))?.[1] ?? NaN) * 1000);
    boots.push({ ms: vm.bootMs, uptime });
    await vm.stop();
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`vm cold boot to agent-ready (${accel}, ${n} boots): median ${median(boots.map((b) => b.ms))} ms ` +
  `(min ${Math.min(...boots.map((b) => b.ms))}, max ${Math.max(...boots.map((b) => b.ms))}); ` +
  `guest uptime at agent-ready: median ${median(boots.map((b) => b.uptime))} ms`);
