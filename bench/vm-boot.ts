// A vm sandbox's cold boot: QEMU started to the guest agent's first Ping answer, N boots one after another,
// with the guest's own uptime at that moment (from the agent's console line) to tell the guest kernel's share
// from QEMU's start and the host's side, and QEMU's PSS once the guest has idled a few seconds. Boots alternate
// between a VM with its virtio-net device (on a tap) and one without, to show what the network device costs.
// usage: npx tsx bench/vm-boot.ts [boots=5]   (as root, after npm run build)
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { launchVm } from '../runtimes/vm/qemu.ts';
import { memoryOf } from './lib/daemons.ts';

const n = Number(process.argv[2] ?? 5);
const IDLE_MS = 3000;
const work = mkdtempSync(join(tmpdir(), 'berth-bench-vm-'));
const kinds = existsSync('/dev/net/tun') ? [true, false] : [false];
const boots = new Map(kinds.map((network) => [network, [] as { ms: number; uptime: number; pssMiB: number }[]]));
let accel = '';
try {
  for (let i = 0; i < n; i++) {
    for (const network of kinds) {
      const vm = await launchVm({ stateDir: join(work, 'vm'), network });
      accel = vm.accel;
      const uptime = Math.round(Number(/uptime ([\d.]+) s/.exec(readFileSync(vm.consoleLog, 'utf8'))?.[1] ?? NaN) * 1000);
      await sleep(IDLE_MS);
      boots.get(network)!.push({ ms: vm.bootMs, uptime, pssMiB: memoryOf(vm.pid).pss });
      await vm.stop();
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const [network, runs] of boots) {
  console.log(`vm cold boot to agent-ready (${accel}, ${network ? 'with' : 'without'} a network device, ${n} boots): median ${median(runs.map((b) => b.ms))} ms ` +
    `(min ${Math.min(...runs.map((b) => b.ms))}, max ${Math.max(...runs.map((b) => b.ms))}); ` +
    `guest uptime at agent-ready: median ${median(runs.map((b) => b.uptime))} ms; QEMU PSS ${IDLE_MS / 1000} s later: median ${median(runs.map((b) => b.pssMiB)).toFixed(1)} MiB`);
}
