// Where the host mounts its cgroup hierarchies, which layout that is (v1, v2, hybrid), and how an OCI
// cgroupsPath maps to a directory in each hierarchy (runc's rules: absolute below each hierarchy's root,
// relative below the caller's own cgroup).
import { readFileSync } from 'node:fs';
import { join, dirname, posix } from 'node:path';
import { errInvalidArgument, errNotFound, errNotImplemented, errUnavailable } from '../../api/errdefs.ts';
import type { CgroupMode } from './types.ts';

export interface HostLayout {
  mode: CgroupMode;
  /** v1 controller (or "name=systemd") → mount point and the cgroup path the mount shows as its root. */
  v1: Map<string, { mountPoint: string; root: string }>;
  /** The cgroup2 mount, if any. */
  unified?: { mountPoint: string; root: string };
}

function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses /proc/self/mountinfo text into the host's cgroup layout. Exported for tests of odd layouts. */
export function parseLayout(mountinfo: string): HostLayout {
  const v1 = new Map<string, { mountPoint: string; root: string }>();
  let unified: HostLayout['unified'];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fields = line.slice(0, sep).split(' ');
    const [fsType, , superOpts = ''] = line.slice(sep + 3).split(' ');
    const root = unescapeMountField(fields[3] ?? '/');
    const mountPoint = unescapeMountField(fields[4] ?? '');
    if (fsType === 'cgroup2') {
      unified ??= { mountPoint, root };
    } else if (fsType === 'cgroup') {
      for (const opt of superOpts.split(',')) {
        if (opt === 'rw' || opt === 'ro' || opt.startsWith('release_agent=') || opt === 'clone_children' ||
          opt === 'noprefix' || opt === 'xattr' || opt === 'cpuset_v2_mode' || opt === 'favordynmods') continue;
        if (!v1.has(opt)) v1.set(opt, { mountPoint, root });
      }
    }
  }
  const realControllers = [...v1.keys()].filter((c) => !c.startsWith('name='));
  const mode: CgroupMode = realControllers.length === 0 ? 'v2' : unified ? 'hybrid' : 'v1';
  if (realControllers.length === 0 && !unified) {
    throw errUnavailable('no cgroup hierarchy is mounted (neither cgroup v1 controllers nor cgroup2)');
  }
  return { mode, v1, unified };
}

let cached: HostLayout | undefined;

/** The host's cgroup layout, read once per process (mounts of cgroup hierarchies do not change under us). */
export function hostLayout(): HostLayout {
  cached ??= parseLayout(readFileSync('/proc/self/mountinfo', 'utf8'));
  return cached;
}

export function detectCgroupMode(): CgroupMode {
  return hostLayout().mode;
}

/**
 * A process's cgroups from /proc/<pid>/cgroup: controller name → cgroup path, with '' for the unified
 * (cgroup2) hierarchy and "name=systemd" style keys for named v1 hierarchies.
 */
export function readProcessCgroups(pid: number | 'self' = 'self'): Record<string, string> {
  const out: Record<string, string> = {};
  let text: string;
  try { text = readFileSync(`/proc/${pid}/cgroup`, 'utf8'); } catch (err) {
    throw errNotFound(`cgroups of process ${pid}: cannot read /proc/${pid}/cgroup (${(err as NodeJS.ErrnoException).code})`, err);
  }
  for (const line of text.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (controllers === '') out[''] = path;
    else for (const c of controllers.split(',')) out[c] = path;
  }
  return out;
}

/** runc's default when config.json has no cgroupsPath: the container id, relative to the runtime's cgroup. */
export function defaultCgroupsPath(containerId: string): string {
  return containerId;
}

/**
 * Validates a cgroupsPath and returns it normalized. A systemd-style "slice:prefix:name" is refused: there is
 * no systemd driver. `..` components are refused so no directory is ever made outside a hierarchy.
 */
export function normalizeCgroupsPath(cgroupsPath: string, containerId?: string): string {
  let p = cgroupsPath;
  if (p === '') {
    if (!containerId) throw errInvalidArgument('cgroupsPath is empty and no container id was given to derive it');
    p = defaultCgroupsPath(containerId);
  }
  if (/^[^/:]*:[^/:]*:[^/:]+$/.test(p)) {
    throw errNotImplemented(`cgroupsPath ${JSON.stringify(p)}: systemd cgroup driver paths (slice:prefix:name) are not supported; use a cgroupfs path`);
  }
  if (p.includes('\0')) throw errInvalidArgument(`cgroupsPath ${JSON.stringify(p)}: contains a NUL byte`);
  if (p.split('/').includes('..')) throw errInvalidArgument(`cgroupsPath ${JSON.stringify(p)}: ".." components are not allowed`);
  const normalized = posix.normalize(p).replace(/\/+$/, '');
  if (normalized === '' || normalized === '/' || normalized === '.') {
    throw errInvalidArgument(`cgroupsPath ${JSON.stringify(cgroupsPath)}: names the hierarchy root, not a container cgroup`);
  }
  return normalized;
}

function stripRoot(path: string, root: string): string {
  if (root === '/' || root === '') return path;
  return path === root ? '/' : path.startsWith(root + '/') ? path.slice(root.length) : path;
}

/** Directory of `cgroupsPath` in the v1 hierarchy of `controller`. */
export function v1Dir(layout: HostLayout, controller: string, cgroupsPath: string, own: Record<string, string>): string | undefined {
  const m = layout.v1.get(controller);
  if (!m) return undefined;
  if (cgroupsPath.startsWith('/')) return join(m.mountPoint, cgroupsPath);
  return join(m.mountPoint, stripRoot(own[controller] ?? '/', m.root), cgroupsPath);
}

/**
 * Directory of `cgroupsPath` in the unified hierarchy. A relative path goes below the parent of the caller's
 * cgroup, as runc does: the caller's own cgroup holds processes, so it could not delegate controllers.
 */
export function unifiedDir(layout: HostLayout, cgroupsPath: string, own: Record<string, string>): string | undefined {
  const m = layout.unified;
  if (!m) return undefined;
  if (cgroupsPath.startsWith('/')) return join(m.mountPoint, cgroupsPath);
  return join(m.mountPoint, dirname(stripRoot(own[''] ?? '/', m.root)), cgroupsPath);
}
