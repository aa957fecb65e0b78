// The runtime classes berth knows without configuration, each probed on this host. gvisor is the shim's runsc
// backend (runtimes/backends/runsc.ts), which probes the platform, cgroup and network flags that work here.
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
// The shim's 'vm' backend (issue 16) serves it; until that backend and its probe land, the class fails closed.
registerBuiltinClass({ ...base, ...sandboxed, name: 'vm', options: { binaryName: 'vm' }, isolation: 'vm', probe: () => 'not implemented yet (issue 16): berth has no VM backend' });
