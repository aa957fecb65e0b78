// The vm sandbox's boot files as npm run build leaves them (no VM is booted here).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cloudKernel, moduleOrder, stripSignature, vmImage } from '../../runtimes/vm/initramfs.ts';

const kernel = cloudKernel();
const it = kernel ? test : test.skip;
if (!kernel) console.log('skipped: no Debian cloud kernel in /boot (scripts/setup.sh installs linux-image-cloud-amd64)');

/** The entries of a cpio "newc" archive: name → [mode, data]. */
function readCpio(data: Buffer): Map<string, { mode: number; data: Buffer }> {
  const out = new Map<string, { mode: number; data: Buffer }>();
  let off = 0;
  const field = (i: number) => parseInt(data.toString('latin1', off + 6 + i * 8, off + 14 + i * 8), 16);
  const align = (n: number) => (n + 3) & ~3;
  for (;;) {
    if (data.toString('latin1', off, off + 6) !== '070701') throw new Error(`bad cpio header at ${off}`);
    const mode = field(1), size = field(6), nameSize = field(11);
    const name = data.toString('latin1', off + 110, off + 110 + nameSize - 1);
    const start = align(off + 110 + nameSize);
    if (name === 'TRAILER!!!') return out;
    out.set(name, { mode, data: data.subarray(start, start + size) });
    off = align(start + size);
  }
}

it('the initramfs holds the agent as /init, a console node, and the modules in dependency order without signatures', (t) => {
  const image = vmImage();
  t.is(image.kernelRelease, kernel!.release);
  const entries = readCpio(readFileSync(image.initramfs));
  const init = entries.get('init')!;
  t.is(init.data.subarray(0, 4).toString('latin1'), '\x7fELF');
  t.is(entries.get('dev/console')!.mode & 0o170000, 0o020000, '/dev/console is a character device');
  const modules = [...entries.keys()].filter((n) => n.startsWith('modules/')).sort();
  const names = modules.map((m) => m.replace(/^modules\/\d+-/, '').replace(/\.ko$/, ''));
  for (const [before, after] of [['virtio_ring', 'virtio'], ['virtio', 'virtio_mmio'], ['virtio', 'virtio_console'], ['fuse', 'virtiofs']]) {
    t.true(names.indexOf(before!) >= 0 && names.indexOf(before!) < names.indexOf(after!), `${before} loads before ${after}`);
  }
  for (const m of modules) t.false(entries.get(m)!.data.toString('latin1').endsWith('~Module signature appended~\n'), `${m} has no signature`);
  t.is(readFileSync(image.kernel).subarray(0, 4).toString('latin1'), '\x7fELF', 'QEMU boots the unpacked kernel');
});

it('moduleOrder puts dependencies first and names a module the kernel lacks', (t) => {
  const order = moduleOrder(kernel!.release, ['virtiofs']);
  t.deepEqual(order.map((f) => f.split('/').pop()), ['virtio_ring.ko', 'virtio.ko', 'fuse.ko', 'virtiofs.ko']);
  t.throws(() => moduleOrder(kernel!.release, ['no_such_module']), { message: /has no module no_such_module/ });
});

it('stripSignature drops exactly the appended signature', (t) => {
  const signed = readFileSync(join('/lib/modules', kernel!.release, moduleOrder(kernel!.release, ['virtio_ring'])[0]!));
  const plain = stripSignature(signed);
  t.true(plain.length < signed.length);
  t.is(plain.subarray(0, 4).toString('latin1'), '\x7fELF');
  t.is(stripSignature(plain), plain, 'an unsigned module is left as it is');
});

it('a missing image names the build step', (t) => {
  const saved = process.env.BERTH_VM_DIR;
  process.env.BERTH_VM_DIR = '/nonexistent';
  try { t.throws(() => vmImage(), { message: /npm run build/ }); } finally {
    if (saved === undefined) delete process.env.BERTH_VM_DIR; else process.env.BERTH_VM_DIR = saved;
  }
});
