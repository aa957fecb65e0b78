// Launches a VM with a virtio-fs share and prints its QEMU's and virtiofsd's pids, then idles: the test kills
// this process and expects both to die with it.
import { launchVm } from '../../runtimes/vm/qemu.ts';

const [stateDir, share] = process.argv.slice(2);
const vm = await launchVm({ stateDir: stateDir!, share: { hostDir: share! }, memoryMiB: 128 });
process.stdout.write(`${JSON.stringify({ qemu: vm.pid, virtiofsd: vm.virtiofsdPid })}\n`);
setInterval(() => {}, 1000);
