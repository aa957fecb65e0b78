// The OCI device rules reduced to what the cgroup v1 devices controller would hold after writing them in order,
// from a deny-all start (as runc's device emulator does): a default verdict plus exceptions to it. Both the v1
// files and the v2 eBPF program are written from this one result, so a rule means the same on every host.
import { errInvalidArgument } from '../../api/errdefs.ts';
import type { LinuxDeviceCgroup, LinuxResources } from './types.ts';

export interface DeviceRuleSet {
  /** true: everything not excepted is allowed (a v1 "blacklist"); false: only the exceptions are allowed. */
  defaultAllow: boolean;
  /** Each one names a type (c or b), a major and minor (-1: any) and the access it excepts; sorted. */
  exceptions: { type: 'c' | 'b'; major: number; minor: number; access: string }[];
}

const ORDER = 'rwm';
const accessOf = (s: Set<string>) => [...ORDER].filter((c) => s.has(c)).join('');

/** Applies the rules in order. A rule of type "a" (or no type) resets everything to its verdict; a rule that
 * would take access away from part of a wildcard exception is refused, since the kernel would keep the
 * wildcard and silently let the device through. */
export function emulateDeviceRules(rules: LinuxDeviceCgroup[]): DeviceRuleSet {
  let defaultAllow = false;
  let exceptions = new Map<string, Set<string>>();
  const keyOf = (type: string, major: number, minor: number) => `${type} ${major} ${minor}`;
  rules.forEach((rule, i) => {
    const type = rule.type ?? 'a';
    if (type === 'a') {
      defaultAllow = rule.allow;
      exceptions = new Map();
      return;
    }
    const major = rule.major ?? -1, minor = rule.minor ?? -1;
    const access = new Set([...(rule.access || ORDER)].filter((c) => ORDER.includes(c)));
    const key = keyOf(type, major, minor);
    // An exception is added when the rule goes against the default, and taken away when it goes with it.
    if (rule.allow !== defaultAllow) {
      exceptions.set(key, new Set([...(exceptions.get(key) ?? []), ...access]));
      return;
    }
    for (const [wMajor, wMinor] of [[-1, minor], [major, -1], [-1, -1]] as const) {
      const wildcard = keyOf(type, wMajor, wMinor);
      if (wildcard === key) continue;
      const overlap = [...(exceptions.get(wildcard) ?? [])].filter((c) => access.has(c));
      if (overlap.length) {
        const name = (n: number) => (n === -1 ? '*' : String(n));
        throw errInvalidArgument(`linux.resources.devices[${i}]: ${rule.allow ? 'allowing' : 'denying'} ${type} ${name(major)}:${name(minor)} ${accessOf(access)} ` +
          `cannot punch a hole in the earlier wildcard rule ${type} ${name(wMajor)}:${name(wMinor)} (the devices cgroup would ignore it)`);
      }
    }
    const left = new Set([...(exceptions.get(key) ?? [])].filter((c) => !access.has(c)));
    if (left.size) exceptions.set(key, left);
    else exceptions.delete(key);
  });
  const list = [...exceptions].map(([key, access]) => {
    const [type, major, minor] = key.split(' ');
    return { type: type as 'c' | 'b', major: Number(major), minor: Number(minor), access: accessOf(access) };
  });
  list.sort((a, b) => a.major - b.major || a.minor - b.minor || a.type.localeCompare(b.type));
  return { defaultAllow, exceptions: list };
}

/** The device rules every container gets after the spec's own, as runc: mknod of anything, and use of the
 * default devices (each with its path), ptys and tun. */
const DEFAULT_DEVICE_RULES: { path?: string; rule: LinuxDeviceCgroup }[] = [
  { rule: { allow: true, type: 'c', access: 'm' } }, { rule: { allow: true, type: 'b', access: 'm' } },
  ...([['/dev/null', 1, 3], ['/dev/random', 1, 8], ['/dev/full', 1, 7], ['/dev/tty', 5, 0], ['/dev/zero', 1, 5], ['/dev/urandom', 1, 9]] as const)
    .map(([path, major, minor]) => ({ path, rule: { allow: true, type: 'c', major, minor, access: 'rwm' } })),
  ...[[136, -1], [5, 2], [10, 200]].map(([major, minor]) => ({ rule: { allow: true, type: 'c', major, minor, access: 'rwm' } })),
];

/** The spec's rules in order, then the defaults (a container's, on the host and in a VM's guest alike).
 * linux.devices only makes nodes: access to them is the rules' to grant, so a deny rule keeps a listed device
 * closed (as with runc); a listed device at a default's path replaces that default, its rule too. */
export function withDefaultDevices(resources: LinuxResources | undefined, devices: { path: string }[] = []): LinuxResources {
  const listed = new Set(devices.map((d) => d.path));
  const defaults = DEFAULT_DEVICE_RULES.filter((d) => !d.path || !listed.has(d.path)).map((d) => d.rule);
  return { ...resources, devices: [...(resources?.devices ?? []), ...defaults] };
}
