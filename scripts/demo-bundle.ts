// Builds the demo bundle: a busybox rootfs from the host's busybox-static and a config.json whose process
// prints a greeting and what isolates it.
import { makeBundle } from '../test/helpers/bundle.ts';
import { rmSync } from 'node:fs';

const [dir, runtimeName] = process.argv.slice(2);
if (!dir || !runtimeName) {
  console.error('usage: demo-bundle.ts DIR RUNTIME_NAME');
  process.exit(2);
}
rmSync(dir, { recursive: true, force: true });
const script = [
  'echo "Hello from a berth container!"',
  'echo "  hostname:  $(hostname)"',
  'echo "  pid 1:     $(cat /proc/1/comm) (my pid: $$)"',
  `echo "  runtime:   ${runtimeName}"`,
  'echo "  user:      $(id)"',
  'echo "  caps:      $(grep CapEff /proc/self/status | tr -s "\\t " " ")"',
  'echo "  cgroup:    $(head -1 /proc/self/cgroup)"',
].join('; ');
makeBundle(dir, {
  args: ['/bin/sh', '-c', script],
  edit: (spec) => {
    spec.hostname = 'berth-demo';
    spec.linux.namespaces.push({ type: 'cgroup' });
  },
});
