// berthd's vm runtime class where VMs run: listed as usable, picked by name (berth run --runtime-class vm, or the
// backend's --runc-binary vm) and by the built-in trust policy, which runs an untrusted container in the strongest
// usable sandbox: a VM.
import test from 'ava';
import { berth, loadImage } from '../cli/helpers.ts';
import { startDaemon } from '../daemon/helpers.ts';
import { busyboxImage } from '../helpers/image.ts';
import { freePort } from '../helpers/registry.ts';
import { vmImage } from '../../runtimes/vm/initramfs.ts';

test('berth runtimes ls lists vm as usable; --runtime-class vm, --runc-binary vm and --trust untrusted run on the guest kernel; the warm VM is in the metrics', async (t) => {
  const metricsAddress = `127.0.0.1:${await freePort()}`;
  const d = await startDaemon(t, { metricsAddress });
  await loadImage(t, d.client('default'), 'busybox:vm', await busyboxImage({ tag: 'vm' }));
  const ls = await berth(d.address, ['runtimes', 'ls']);
  t.is(ls.code, 0, ls.stderr);
  t.regex(ls.stdout, /vm\s+vm\s+io\.containerd\.berth\.v2\s+vm\s+yes/);
  const byClass = await berth(d.address, ['run', '--rm', '--runtime-class', 'vm', 'busybox:vm', 'vm-by-class', 'uname', '-r']);
  t.is(byClass.code, 0, byClass.stderr);
  t.is(byClass.stdout, `${vmImage().kernelRelease}\n`);
  const byBinary = await berth(d.address, ['run', '--rm', '--runc-binary', 'vm', 'busybox:vm', 'vm-by-binary', 'cat', '/proc/sys/kernel/osrelease']);
  t.is(byBinary.stdout, `${vmImage().kernelRelease}\n`, byBinary.stderr);
  const untrusted = await berth(d.address, ['run', '--rm', '--trust', 'untrusted', '--runc-binary', 'runc', 'busybox:vm', 'vm-untrusted', 'uname', '-r']);
  t.is(untrusted.code, 0, untrusted.stderr);
  t.is(untrusted.stdout, `${vmImage().kernelRelease}\n`, 'upgraded from runc to the strongest usable sandbox');
  t.is((await berth(d.address, ['containers', 'ls', '-q'])).stdout, '');
  // The namespace's shim keeps a VM booted for the next container: berthd's metrics count it.
  const warm = async () => Number(/^berthd_vm_sandboxes\{state="warm"\} (\d+)$/m.exec(await (await fetch(`http://${metricsAddress}/v1/metrics`)).text())?.[1]);
  for (let i = 0; i < 300 && !(await warm() >= 1); i++) await new Promise((r) => setTimeout(r, 100));
  t.true(await warm() >= 1, 'a warm VM counted in berthd_vm_sandboxes');
});
