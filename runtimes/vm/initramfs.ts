// The vm sandbox's boot files: Debian's cloud kernel (installed by scripts/setup.sh) and an initramfs holding
// berth's guest agent as /init plus the kernel modules it loads (virtio-mmio, the virtio-serial port, virtio-fs,
// overlay), with their dependencies first. scripts/build.mjs writes them to dist/vm/; the launcher reads
// dist/vm/manifest.json.
// Boot time on TCG is what this trades for: the kernel is unpacked here once (QEMU boots the ELF through its PVH
// entry, so the guest does not decompress it), and the modules lose their signatures (the guest would check each
// with RSA in emulation; they come from the host's own kernel package).
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errNotFound } from '../../api/errdefs.ts';
import { Cpio } from './cpio.ts';

export interface VmImage {
  /** The kernel QEMU boots: the unpacked ELF when it could be unpacked, else the bzImage. */
  kernel: string;
  /** The packaged kernel it comes from. */
  bzImage: string;
  kernelRelease: string;
  initramfs: string;
}

/** The modules the agent needs; their dependencies are added from modules.dep. */
export const GUEST_MODULES = ['virtio_mmio', 'virtio_console', 'virtiofs', 'overlay'];

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The newest Debian cloud kernel in /boot. */
export function cloudKernel(): { kernel: string; release: string } | undefined {
  const k = readdirSync('/boot').filter((f) => /^vmlinuz-.*-cloud-amd64$/.test(f)).sort().pop();
  if (!k) return undefined;
  const release = k.replace(/^vmlinuz-/, '');
  return existsSync(join('/lib/modules', release)) ? { kernel: join('/boot', k), release } : undefined;
}

/** Module files (relative to /lib/modules/RELEASE) in load order: each one's dependencies before it. */
export function moduleOrder(release: string, wanted = GUEST_MODULES): string[] {
  const deps = new Map<string, string[]>();
  for (const line of readFileSync(join('/lib/modules', release, 'modules.dep'), 'utf8').split('\n')) {
    const [file, rest] = line.split(':');
    if (file) deps.set(file, (rest ?? '').trim().split(/\s+/).filter(Boolean));
  }
  const byName = new Map([...deps.keys()].map((f) => [f.split('/').pop()!.replace(/\.ko(\.\w+)?$/, '').replace(/-/g, '_'), f]));
  const order: string[] = [];
  const visit = (file: string) => {
    if (order.includes(file)) return;
    for (const d of deps.get(file) ?? []) visit(d);
    order.push(file);
  };
  for (const name of wanted) {
    const file = byName.get(name);
    if (!file) throw errNotFound(`kernel ${release} has no module ${name}`);
    visit(file);
  }
  return order;
}

/** Writes dist/vm/{initramfs.cpio,manifest.json} unless they are newer than the agent and the kernel. */
export function buildVmImage(outDir = join(repoRoot, 'dist', 'vm'), agent = join(repoRoot, 'native', 'build', 'berth-agent')): VmImage {
  const k = cloudKernel();
  if (!k) throw errNotFound('no Debian cloud kernel in /boot (scripts/setup.sh installs linux-image-cloud-amd64)');
  const vmlinux = join(outDir, 'vmlinux');
  const image: VmImage = { kernel: vmlinux, bzImage: k.kernel, kernelRelease: k.release, initramfs: join(outDir, 'initramfs.cpio') };
  const manifest = join(outDir, 'manifest.json');
  const fresh = existsSync(manifest) && existsSync(image.initramfs) && readFileSync(manifest, 'utf8') === JSON.stringify(image) &&
    statSync(image.initramfs).mtimeMs >= Math.max(statSync(agent).mtimeMs, statSync(k.kernel).mtimeMs, statSync(fileURLToPath(import.meta.url)).mtimeMs);
  if (fresh) return image;
  mkdirSync(outDir, { recursive: true });
  if (!unpackKernel(k.kernel, vmlinux)) image.kernel = k.kernel;
  const tmp = `${image.initramfs}.tmp`;
  const cpio = new Cpio(tmp);
  for (const d of ['dev', 'proc', 'sys', 'root', 'modules']) cpio.dir(d);
  // The kernel opens /dev/console for PID 1's stdio before anything is mounted.
  cpio.charDevice('dev/console', 5, 1);
  cpio.copy(agent, 'init');
  moduleOrder(k.release).forEach((file, i) => {
    const name = file.split('/').pop()!;
    cpio.file(`modules/${String(i).padStart(2, '0')}-${name}`, stripSignature(readFileSync(join('/lib/modules', k.release, file))), 0o644);
  });
  cpio.close();
  renameSync(tmp, image.initramfs);
  writeFileSync(manifest, JSON.stringify(image));
  return image;
}

const SIG_MAGIC = Buffer.from('~Module signature appended~\n');

/** A module without its appended signature (module_signature: 12 bytes ending in the big-endian length). */
export function stripSignature(ko: Buffer): Buffer {
  if (ko.length < SIG_MAGIC.length + 12 || !ko.subarray(ko.length - SIG_MAGIC.length).equals(SIG_MAGIC)) return ko;
  const info = ko.length - SIG_MAGIC.length - 12;
  return ko.subarray(0, info - ko.readUInt32BE(info + 8));
}

/** The ELF inside a bzImage compressed with LZ4 (Debian's choice), unpacked with lz4(1); false if it cannot be. */
function unpackKernel(bzImage: string, out: string): boolean {
  const data = readFileSync(bzImage);
  const at = data.indexOf(Buffer.from([0x02, 0x21, 0x4c, 0x18]));
  if (at < 0) return false;
  try {
    const elf = execFileSync('lz4', ['-dc'], { input: data.subarray(at), maxBuffer: 512 << 20, stdio: ['pipe', 'pipe', 'ignore'] });
    if (!elf.subarray(0, 4).equals(Buffer.from('\x7fELF', 'latin1'))) return false;
    writeFileSync(out, elf);
    return true;
  } catch (err) {
    // lz4 reports trailing garbage after the stream (the rest of the bzImage) but has written the kernel.
    const stdout = (err as { stdout?: Buffer }).stdout;
    if (!stdout?.subarray(0, 4).equals(Buffer.from('\x7fELF', 'latin1'))) return false;
    writeFileSync(out, stdout);
    return true;
  }
}

/** The built image (dist/vm beside the sources or the bundle, or $BERTH_VM_DIR), or a clear error. */
export function vmImage(): VmImage {
  const here = dirname(fileURLToPath(import.meta.url));
  const dirs = process.env.BERTH_VM_DIR ? [process.env.BERTH_VM_DIR] : [join(here, 'vm'), join(here, '..', '..', 'dist', 'vm')];
  const manifest = dirs.map((d) => join(d, 'manifest.json')).find((m) => existsSync(m));
  if (!manifest) throw errNotFound(`the vm image (dist/vm/manifest.json) is missing: run npm run build`);
  return JSON.parse(readFileSync(manifest, 'utf8')) as VmImage;
}

// As the build's step: a host without the guest kernel builds everything else (the vm runtime then says why not).
if (/initramfs\.ts$/.test(process.argv[1] ?? "")) {
  if (cloudKernel()) buildVmImage(process.argv[2]);
  else console.log('build: no Debian cloud kernel in /boot, so no vm image (scripts/setup.sh installs linux-image-cloud-amd64)');
}
