// The vm sandbox's boot files: berth's guest kernel (guest-kernel.ts: every driver the agent needs is built in)
// and an initramfs holding only berth's guest agent as /init. scripts/build.mjs writes them to dist/vm/ with the
// kernel's loadable modules beside them; the launcher reads dist/vm/manifest.json.
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errNotFound } from '../../api/errdefs.ts';
import { Cpio } from './cpio.ts';
import { guestKernel, kernelSource } from './guest-kernel.ts';

export interface VmImage {
  /** The kernel ELF QEMU boots. */
  kernel: string;
  kernelRelease: string;
  initramfs: string;
  /** The guest kernel's loadable modules (*.ko), for what a container may load into its own kernel. */
  modulesDir: string;
  /** The cached kernel build the image was copied from (guest-kernel.ts keys it by source, config and patches). */
  kernelBuild?: string;
}

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Writes dist/vm/{vmlinux,modules/,initramfs.cpio,manifest.json} unless they are newer than their sources and
 * were made from the kernel build the sources name now (a checkout that goes back to an older configuration finds
 * its kernel in the cache, older than the image, and must still get it). */
export function buildVmImage(outDir = join(repoRoot, 'dist', 'vm'), agent = join(repoRoot, 'native', 'build', 'berth-agent')): VmImage {
  const k = guestKernel();
  const image: VmImage = {
    kernel: join(outDir, 'vmlinux'), kernelRelease: k.release, initramfs: join(outDir, 'initramfs.cpio'), modulesDir: join(outDir, 'modules'), kernelBuild: dirname(k.vmlinux),
  };
  const manifest = join(outDir, 'manifest.json');
  const fresh = existsSync(manifest) && existsSync(image.initramfs) && readFileSync(manifest, 'utf8') === JSON.stringify(image) &&
    statSync(image.initramfs).mtimeMs >= Math.max(statSync(agent).mtimeMs, statSync(k.vmlinux).mtimeMs, statSync(fileURLToPath(import.meta.url)).mtimeMs);
  if (fresh) return image;
  mkdirSync(outDir, { recursive: true });
  copyFileSync(k.vmlinux, image.kernel);
  rmSync(image.modulesDir, { recursive: true, force: true });
  cpSync(k.modulesDir, image.modulesDir, { recursive: true });
  const tmp = `${image.initramfs}.tmp`;
  const cpio = new Cpio(tmp);
  for (const d of ['dev', 'proc', 'sys', 'root']) cpio.dir(d);
  // The kernel opens /dev/console for PID 1's stdio before anything is mounted.
  cpio.charDevice('dev/console', 5, 1);
  cpio.copy(agent, 'init');
  cpio.close();
  renameSync(tmp, image.initramfs);
  writeFileSync(manifest, JSON.stringify(image));
  return image;
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
  if (kernelSource()) buildVmImage(process.argv[2]);
  else console.log('build: no /usr/src/linux-source-*.tar.xz, so no vm image (scripts/setup.sh installs linux-source-6.1)');
}
