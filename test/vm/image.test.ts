// The vm sandbox's boot files as npm run build leaves them (no VM is booted here).
import test from 'ava';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildVmImage, vmImage } from '../../runtimes/vm/initramfs.ts';
import { GUEST_CONFIG, guestKernel, kernelSource } from '../../runtimes/vm/guest-kernel.ts';
import { tempDir } from '../helpers/tmp.ts';

const it = kernelSource() ? test : test.skip;
if (!kernelSource()) console.log('skipped: no /usr/src/linux-source-*.tar.xz (scripts/setup.sh installs linux-source-6.1), so npm run build made no vm image');

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

it('the initramfs holds only the agent as /init and a console node: every driver is in the kernel', (t) => {
  const entries = readCpio(readFileSync(vmImage().initramfs));
  t.is(entries.get('init')!.data.subarray(0, 4).toString('latin1'), '\x7fELF');
  t.is(entries.get('dev/console')!.mode & 0o170000, 0o020000, '/dev/console is a character device');
  t.deepEqual([...entries.keys()].filter((n) => !['.', 'dev', 'proc', 'sys', 'root'].includes(n)).sort(), ['dev/console', 'init']);
});

it("the kernel is berth's own build: an ELF QEMU boots through PVH, its release says so, its modules beside it", (t) => {
  const image = vmImage();
  const elf = readFileSync(image.kernel);
  t.is(elf.subarray(0, 4).toString('latin1'), '\x7fELF');
  // The PVH entry is an ELF note named "Xen" of type XEN_ELFNOTE_PHYS32_ENTRY (18): QEMU needs it to boot the ELF.
  t.true(elf.includes(Buffer.concat([Buffer.from([4, 0, 0, 0, 8, 0, 0, 0, 18, 0, 0, 0]), Buffer.from('Xen\0')])), 'the kernel has a PVH entry note');
  t.regex(image.kernelRelease, /-berth$/);
  t.true(existsSync(join(image.modulesDir, 'dummy.ko')), 'dummy.ko (for the isolation test) is built as a module');
  t.true(readFileSync(GUEST_CONFIG, 'utf8').includes('CONFIG_VIRTIO_FS=y'));
});

it('a missing image names the build step', (t) => {
  const saved = process.env.BERTH_VM_DIR;
  process.env.BERTH_VM_DIR = '/nonexistent';
  try { t.throws(() => vmImage(), { message: /npm run build/ }); } finally {
    if (saved === undefined) delete process.env.BERTH_VM_DIR; else process.env.BERTH_VM_DIR = saved;
  }
});

it('an image made from another kernel build is made again, even when it is newer than the kernel now named', (t) => {
  const dir = tempDir(t, 'vm-image-');
  const image = buildVmImage(dir);
  t.is(image.kernelBuild, join(guestKernel().vmlinux, '..'));
  // As if a checkout of another configuration had built it last: another kernel in place, the manifest naming its build.
  writeFileSync(image.kernel, 'another kernel');
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...image, kernelBuild: '/var/cache/berth/guest-kernel/0123456789abcdef' }));
  const made = statSync(image.initramfs).mtimeMs;
  const again = buildVmImage(dir);
  t.deepEqual(again, image);
  t.true(readFileSync(again.kernel).equals(readFileSync(guestKernel().vmlinux)), 'the kernel is the build the sources name');
  t.true(statSync(again.initramfs).mtimeMs >= made);
  t.is(buildVmImage(dir).kernel, image.kernel, 'and then it is fresh');
});
