// berth's guest kernel for the vm sandbox: Linux from Debian's linux-source package, configured from nothing
// (allnoconfig) plus native/guest-kernel/berth-guest.config, with the patches in native/guest-kernel/patches, built
// by native/guest-kernel/build.sh.
// A build takes minutes on these machines, so it is done once per (source tarball, fragment, patches) into a cache that
// every checkout on the host shares, under a lock (two checkouts building at once wait for one build).
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errNotFound } from '../../api/errdefs.ts';

export interface GuestKernel {
  /** The ELF QEMU boots through its PVH entry (never decompressed in emulation). */
  vmlinux: string;
  release: string;
  /** The kernel's loadable modules (*.ko). */
  modulesDir: string;
}

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const GUEST_CONFIG = join(repoRoot, 'native', 'guest-kernel', 'berth-guest.config');
const BUILD_SCRIPT = join(repoRoot, 'native', 'guest-kernel', 'build.sh');
const PATCHES = join(repoRoot, 'native', 'guest-kernel', 'patches');
const CACHE = process.env.BERTH_KERNEL_CACHE ?? '/var/cache/berth/guest-kernel';

/** The newest Debian kernel source tarball (linux-source-X.Y installs it in /usr/src). */
export function kernelSource(): string | undefined {
  if (!existsSync('/usr/src')) return undefined;
  const t = readdirSync('/usr/src').filter((f) => /^linux-source-[\d.]+\.tar\.xz$/.test(f))
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true })).pop();
  return t ? join('/usr/src', t) : undefined;
}

/** The built kernel for this source, fragment and patch set, building it first if the cache has none. */
export function guestKernel(source = kernelSource()): GuestKernel {
  if (!source) throw errNotFound('no /usr/src/linux-source-*.tar.xz to build the vm guest kernel from (scripts/setup.sh installs linux-source-6.1)');
  const hash = createHash('sha256').update(`${basename(source)} ${statSync(source).size}\n`).update(readFileSync(GUEST_CONFIG)).update(readFileSync(BUILD_SCRIPT));
  for (const p of readdirSync(PATCHES).sort()) hash.update(`${p}\n`).update(readFileSync(join(PATCHES, p)));
  const key = hash.digest('hex').slice(0, 16);
  const out = join(CACHE, key);
  if (!existsSync(join(out, 'release'))) {
    mkdirSync(CACHE, { recursive: true });
    console.log(`build: the vm guest kernel from ${source} (once per source, config and patches: minutes) into ${out}`);
    const tree = join(CACHE, `tree-${basename(source, '.tar.xz')}`);
    execFileSync('flock', [join(CACHE, 'build.lock'), 'sh', BUILD_SCRIPT, source, GUEST_CONFIG, PATCHES, tree, out], { stdio: 'inherit' });
  }
  return { vmlinux: join(out, 'vmlinux'), release: readFileSync(join(out, 'release'), 'utf8').trim(), modulesDir: join(out, 'modules') };
}
