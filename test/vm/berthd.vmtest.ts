// berthd's vm runtime class where VMs run: listed as usable, picked by name (berth run --runtime-class vm, or the
// backend's --runc-binary vm) and by the built-in trust policy, which runs an untrusted container in the strongest
// usable sandbox: a VM. A berthd restart finds its VM containers as they are.
import test from 'ava';
import { berth, loadImage } from '../cli/helpers.ts';
import { join } from 'node:path';
import { packAny } from '../../api/proto.ts';
import { startDaemon, startDaemonProcess } from '../daemon/helpers.ts';
import { defaultSpec } from '../helpers/bundle.ts';
import { makeBusyboxRootfs } from '../helpers/rootfs.ts';
import { tempDir } from '../helpers/tmp.ts';
import { busyboxImage } from '../helpers/image.ts';
import { freePort } from '../helpers/registry.ts';
import { vmImage } from '../../runtimes/vm/initramfs.ts';

const CONTAINERS = 'containerd.services.containers.v1.Containers';
const TASKS = 'containerd.services.tasks.v1.Tasks';

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
  // The namespace's shim keeps a VM booted for the next container: berthd's metrics count it, and only this
  // daemon's VMs (the other test boots its own meanwhile).
  const census = async (state: string) => Number(new RegExp(`^berthd_vm_sandboxes\\{state="${state}"\\} (\\d+)$`, 'm').exec(await (await fetch(`http://${metricsAddress}/v1/metrics`)).text())?.[1]);
  for (let i = 0; i < 300 && (await census('warm')) !== 1; i++) await new Promise((r) => setTimeout(r, 100));
  t.is(await census('warm'), 1, 'the warm VM counted in berthd_vm_sandboxes');
  t.is(await census('running'), 0, "no other daemon's VMs counted");
});

test('berthd killed with SIGKILL finds its VM containers after a restart: a running one still runs (exec reaches its guest), one that exited meanwhile reports its status', async (t) => {
  const first = await startDaemonProcess(t);
  const c1 = first.client('default');
  const rootfs = makeBusyboxRootfs(join(tempDir(t), 'rootfs'));
  const options = packAny('containerd.runc.v1.Options', { binaryName: 'vm' });
  const create = async (id: string, args: string[]) => {
    const spec = defaultSpec(args);
    spec.linux.cgroupsPath = `/berth-vm-restart/${id}`;
    await c1.call(CONTAINERS, 'Create', { container: { id, runtime: { name: 'io.containerd.berth.v2', options }, spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from(JSON.stringify(spec)) } } });
    await c1.call(TASKS, 'Create', { containerId: id, rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }] });
    await c1.call(TASKS, 'Start', { containerId: id });
  };
  await create('runs-on', ['/bin/sleep', '1000']);
  await create('exits-meanwhile', ['/bin/sh', '-c', 'sleep 3; exit 42']);
  first.child.kill('SIGKILL');
  await new Promise((resolve) => first.child.once('exit', resolve));
  await new Promise((resolve) => setTimeout(resolve, 4000));
  const second = await startDaemonProcess(t, { root: first.config.root, state: first.config.state, address: first.config.address });
  const c2 = second.client('default');
  const listed = new Map<string, any>((await c2.call(TASKS, 'List', {})).tasks.map((p: any) => [p.id, p]));
  t.like(listed.get('runs-on'), { status: 'RUNNING' });
  t.like(listed.get('exits-meanwhile'), { status: 'STOPPED', exitStatus: 42 });
  const exec = await berth(second.address, ['tasks', 'exec', '--exec-id', 'after-restart', 'runs-on', 'uname', '-r']);
  t.is(exec.stdout, `${vmImage().kernelRelease}\n`, exec.stderr);
  for (const id of ['runs-on', 'exits-meanwhile']) {
    await c2.call(TASKS, 'Kill', { containerId: id, signal: 9 }).catch(() => undefined);
    await c2.call(TASKS, 'Wait', { containerId: id });
    await c2.call(TASKS, 'Delete', { containerId: id });
    await c2.call(CONTAINERS, 'Delete', { id });
  }
  t.deepEqual((await c2.call(TASKS, 'List', {})).tasks, []);
});
