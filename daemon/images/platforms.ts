// Platform specifiers ("linux/arm64/v8") and matching, with containerd's normalization and fallbacks (an arm64
// host also runs arm v8..v5 images, arm v7 runs v6 and v5).
import { errInvalidArgument } from '../../api/errdefs.ts';
import type { Platform } from '../../content/types.ts';

const knownOS = new Set(['aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'hurd', 'illumos', 'ios', 'js', 'linux',
  'nacl', 'netbsd', 'openbsd', 'plan9', 'solaris', 'windows', 'zos']);
const knownArch = new Set(['386', 'amd64', 'amd64p32', 'arm', 'armbe', 'arm64', 'arm64be', 'ppc64', 'ppc64le',
  'loong64', 'mips', 'mipsle', 'mips64', 'mips64le', 'mips64p32', 'mips64p32le', 'ppc', 'riscv', 'riscv64', 's390',
  's390x', 'sparc', 'sparc64', 'wasm']);
const component = /^[A-Za-z0-9_-]+$/;

function normalizeArch(arch: string, variant: string): { architecture: string; variant: string } {
  arch = arch.toLowerCase();
  variant = variant.toLowerCase();
  switch (arch) {
    case 'i386': return { architecture: '386', variant: '' };
    case 'x86_64': case 'x86-64': case 'amd64': return { architecture: 'amd64', variant: variant === 'v1' ? '' : variant };
    case 'aarch64': case 'arm64': return { architecture: 'arm64', variant: variant === '8' || variant === 'v8' ? '' : variant };
    case 'armhf': return { architecture: 'arm', variant: 'v7' };
    case 'armel': return { architecture: 'arm', variant: 'v6' };
    case 'arm':
      if (variant === '' || variant === '7') return { architecture: 'arm', variant: 'v7' };
      if (['5', '6', '8'].includes(variant)) return { architecture: 'arm', variant: `v${variant}` };
      return { architecture: 'arm', variant };
    default: return { architecture: arch, variant };
  }
}

function build(os: string, architecture: string, variant: string, rest?: Platform): Platform {
  const p: Platform = { os, architecture };
  if (variant) p.variant = variant;
  if (rest?.['os.version']) p['os.version'] = rest['os.version'];
  if (rest?.['os.features']) p['os.features'] = rest['os.features'];
  return p;
}

/** Normalizes names the way containerd does (darwin stays, "x86_64" → amd64, "aarch64" → arm64, arm → v7...). */
export function normalizePlatform(p: Platform): Platform {
  const os = (p.os || '').toLowerCase() === 'macos' ? 'darwin' : (p.os || '').toLowerCase();
  const { architecture, variant } = normalizeArch(p.architecture || '', p.variant || '');
  return build(os, architecture, variant, p);
}

/** The platform this process runs on (linux/amd64 on the build machines). */
export function hostPlatform(): Platform {
  const arch = ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[process.arch] ?? process.arch;
  return normalizePlatform({ os: process.platform === 'win32' ? 'windows' : process.platform, architecture: arch });
}

/** Parses "os", "arch", "os/arch" or "os/arch/variant"; invalid-argument naming the problem. */
export function parsePlatform(spec: string): Platform {
  const bad = (problem: string) => errInvalidArgument(`invalid platform ${JSON.stringify(spec)}: ${problem}`);
  const parts = spec.split('/');
  if (!spec || parts.length > 3) throw bad('want <os>|<arch>|<os>/<arch>[/<variant>]');
  for (const part of parts) if (!component.test(part)) throw bad(`invalid component ${JSON.stringify(part)}`);
  if (parts.length === 1) {
    const word = parts[0]!.toLowerCase();
    const host = hostPlatform();
    if (knownOS.has(word)) return build(word, host.architecture, host.variant ?? '');
    const { architecture, variant } = normalizeArch(word, '');
    if (!knownArch.has(architecture)) throw bad('unknown operating system or architecture');
    // A lone "arm" means any arm variant the host may run, as containerd reads it.
    return build(host.os, architecture, architecture === 'arm' && variant === 'v7' ? '' : variant);
  }
  const os = parts[0]!.toLowerCase();
  if (!knownOS.has(os)) throw bad(`unknown operating system ${JSON.stringify(parts[0])}`);
  const { architecture, variant } = normalizeArch(parts[1]!, parts[2] ?? '');
  if (!knownArch.has(architecture)) throw bad(`unknown architecture ${JSON.stringify(parts[1])}`);
  return build(os, architecture, variant);
}

export function formatPlatform(p: Platform): string {
  return [p.os || 'unknown', p.architecture || 'unknown', p.variant].filter(Boolean).join('/');
}

/** Chooses platforms: `match` says whether one is usable, `rank` orders usable ones (lower is better). */
export interface PlatformMatcher {
  match(p: Platform): boolean;
  rank(p: Platform): number;
}

function samePlatform(a: Platform, b: Platform): boolean {
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}

/** The platform first, then those it can also run, best first (containerd's platform vector). */
function platformVector(p: Platform): Platform[] {
  const vector = [p];
  if (p.architecture === 'arm') {
    const v = Number((p.variant ?? '').replace(/^v/, ''));
    if (Number.isInteger(v) && v > 5) for (let n = v - 1; n >= 5; n--) vector.push({ ...p, variant: `v${n}` });
  } else if (p.architecture === 'arm64') {
    vector.push(...platformVector({ ...p, architecture: 'arm', variant: p.variant || 'v8' }));
  }
  return vector;
}

/** Matches `platform` and the platforms it can run, preferring `platform` itself. */
export function onlyPlatform(platform: Platform): PlatformMatcher {
  const vector = platformVector(normalizePlatform(platform));
  const rank = (p: Platform) => {
    const n = normalizePlatform(p);
    return vector.findIndex((v) => samePlatform(v, n));
  };
  return { match: (p) => rank(p) >= 0, rank: (p) => { const r = rank(p); return r < 0 ? Infinity : r; } };
}

/** Matches any of `platforms` (several --platform flags), ranked by the first that matches. */
export function anyPlatform(platforms: Platform[]): PlatformMatcher {
  const matchers = platforms.map(onlyPlatform);
  return {
    match: (p) => matchers.some((m) => m.match(p)),
    rank: (p) => Math.min(...matchers.map((m, i) => (m.match(p) ? i * 100 + m.rank(p) : Infinity))),
  };
}

export const allPlatforms: PlatformMatcher = { match: () => true, rank: () => 0 };

/** The host's default matcher, as `ctr pull` without --platform. */
export const defaultPlatformMatcher = (): PlatformMatcher => onlyPlatform(hostPlatform());
