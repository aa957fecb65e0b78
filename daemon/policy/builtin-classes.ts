// The runtime classes berth knows without configuration, each probed on this host. gvisor is the shim's runsc
// backend (runtimes/backends/runsc.ts), which probes the platform, cgroup and network flags that work here.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerBuiltinClass, versionProbe, BERTH_SHIM } from './classes.ts';

const base = { runtimeType: BERTH_SHIM };
// A sandbox's runtime gets no annotation a client wrote (annotations.ts): they could reconfigure it.
const sandboxed = { podAnnotations: [], containerAnnotations: [] };

registerBuiltinClass({ ...base, name: 'fast', options: {}, isolation: 'container', probe: () => undefined });
registerBuiltinClass({ ...base, name: 'runc', options: { binaryName: 'runc' }, isolation: 'container', probe: () => versionProbe('runc') });
registerBuiltinClass({ ...base, name: 'crun', options: { binaryName: 'crun' }, isolation: 'container', probe: () => versionProbe('crun') });
registerBuiltinClass({
  ...base, ...sandboxed, name: 'gvisor', options: { binaryName: 'runsc' }, isolation: 'sandbox',
  probe: () => versionProbe('runsc'),
});
registerBuiltinClass({ ...base, ...sandboxed, name: 'vm', options: { binaryName: 'vm' }, isolation: 'vm', probe: vmProbe });

/** The shim's vm backend (runtimes/backends/vm.ts) runs where QEMU, its virtiofsd and the guest image are (npm run
 * build writes dist/vm beside the bundles; $BERTH_VM_DIR names another, as for the shim). Which accelerator a VM
 * gets is the launcher's to find: TCG always boots. */
function vmProbe(): string | undefined {
  for (const path of ['/usr/bin/qemu-system-x86_64', '/usr/lib/qemu/virtiofsd']) {
    if (!existsSync(path)) return `${path} is not installed (scripts/setup.sh installs qemu-system-x86)`;
  }
  const here = dirname(fileURLToPath(import.meta.url));
  const dirs = process.env.BERTH_VM_DIR ? [process.env.BERTH_VM_DIR] : [join(here, 'vm'), join(here, '..', '..', 'dist', 'vm')];
  if (!dirs.some((d) => existsSync(join(d, 'manifest.json')))) return `the guest image (${join(dirs.at(-1)!, 'manifest.json')}) is not built: run npm run build`;
  return undefined;
}
