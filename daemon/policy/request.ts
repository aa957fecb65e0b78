// What a container asks for, read from its OCI spec: the facts rules match on and forbid.
import { DEFAULT_CAPS } from '../../api/oci-defaults/capabilities.ts';

export type Spec = Record<string, any>;

const HOST_NAMESPACES = ['pid', 'network', 'ipc', 'uts', 'mount'];

export interface SpecFacts {
  /** CAP_SYS_ADMIN in the bounding set: what --privileged gives (with every other capability). */
  privileged: boolean;
  /** Namespaces shared with the host (absent from linux.namespaces). */
  hostNamespaces: string[];
  /** Sources of bind mounts from the host. */
  bindSources: string[];
  /** Host devices put in the container, or a device cgroup rule allowing every device. */
  devices: boolean;
  /** Capabilities beyond containerd's default set. */
  addedCapabilities: string[];
  annotations: Record<string, string>;
}

export function parseSpec(value: Uint8Array | undefined): Spec {
  if (!value || value.length === 0) return {};
  try {
    return JSON.parse(Buffer.from(value).toString('utf8')) as Spec;
  } catch {
    return {};
  }
}

export function capabilitiesOf(process: Spec | undefined): Set<string> {
  const caps = process?.capabilities ?? {};
  return new Set<string>([...(caps.bounding ?? []), ...(caps.effective ?? []), ...(caps.permitted ?? []), ...(caps.ambient ?? [])]);
}

export function specFacts(spec: Spec): SpecFacts {
  const caps = capabilitiesOf(spec.process);
  const present = new Set<string>((spec.linux?.namespaces ?? []).map((n: { type: string }) => n.type));
  const bindSources = (spec.mounts ?? [])
    .filter((m: Spec) => m.type === 'bind' || (m.options ?? []).some((o: string) => o === 'bind' || o === 'rbind'))
    .map((m: Spec) => String(m.source ?? ''));
  const allowAll = (spec.linux?.resources?.devices ?? []).some((d: Spec) => d.allow && (!d.type || d.type === 'a') && d.major === undefined);
  return {
    privileged: caps.has('CAP_SYS_ADMIN'),
    hostNamespaces: spec.linux ? HOST_NAMESPACES.filter((n) => !present.has(n)) : [],
    bindSources,
    devices: (spec.linux?.devices ?? []).length > 0 || allowAll,
    addedCapabilities: [...caps].filter((c) => !DEFAULT_CAPS.includes(c)).sort(),
    annotations: spec.annotations ?? {},
  };
}

/** True when `path` is `dir` or below it. */
export const under = (path: string, dir: string): boolean => path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
