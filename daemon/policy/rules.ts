// Policy rules: what a rule matches on and what it does. Rules are ordered; the first that matches decides.
import { parseNormalizedReference, repositoryName } from '../../api/reference.ts';
import type { Isolation } from './isolation.ts';
import { under, type SpecFacts } from './request.ts';

export const FORBIDDABLE = ['privileged', 'host_namespaces', 'devices', 'host_mounts', 'added_capabilities'] as const;
export type Forbid = (typeof FORBIDDABLE)[number];
export const FORCEABLE = ['seccomp', 'no_new_privileges'] as const;
export type Force = (typeof FORCEABLE)[number];

export interface Match {
  /** Namespace names (globs). */
  namespaces?: string[];
  /** Labels the namespace carries (a value "*" matches any value). */
  namespaceLabels?: Record<string, string>;
  /** Image references, normalized ("docker.io/library/busybox"), as globs. */
  images?: string[];
  /** Registries (globs): "docker.io", "127.0.0.1:*". */
  registries?: string[];
  /** Matches an image from a registry NOT on this allow list (globs). */
  registriesNotIn?: string[];
  labels?: Record<string, string>;
  /** The spec's annotations. */
  annotations?: Record<string, string>;
  privileged?: boolean;
  hostNamespaces?: boolean;
  devices?: boolean;
  addedCapabilities?: boolean;
  /** Matches a container bind-mounting a host path outside these directories. */
  hostMountsOutside?: string[];
}

export interface Rule {
  name: string;
  match: Match;
  action: 'allow' | 'require' | 'refuse';
  /** require: the minimum isolation, and the class to run at (else the strongest usable one at that level). */
  isolation?: Isolation;
  class?: string;
  /** require: what happens to a container on a weaker runtime. */
  onWeaker: 'upgrade' | 'refuse';
  forbid: Forbid[];
  /** forbid host_mounts: host directories a bind mount may still come from. */
  hostMountAllow: string[];
  force: Force[];
  /** refuse: what the error says. */
  reason?: string;
  /** Where the rule was written (for errors and `policy show`). */
  source?: string;
}

/** What a rule is matched against. */
export interface Subject {
  namespace: string;
  namespaceLabels: Record<string, string>;
  image: string;
  labels: Record<string, string>;
  facts: SpecFacts;
}

export function globRegExp(glob: string): RegExp {
  const body = glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${body}$`);
}

const anyGlob = (globs: string[], s: string) => globs.some((g) => globRegExp(g).test(s));
const kvMatch = (want: Record<string, string>, have: Record<string, string>) =>
  Object.entries(want).every(([k, v]) => have[k] !== undefined && (v === '*' || have[k] === v));

/** Registry and repository of an image reference; an empty or unparsable one has neither. */
export function imageParts(image: string): { registry: string; repository: string } | undefined {
  if (!image) return undefined;
  try {
    const ref = parseNormalizedReference(image);
    return { registry: ref.domain, repository: repositoryName(ref) };
  } catch {
    return undefined;
  }
}

export function matches(m: Match, s: Subject): boolean {
  if (m.namespaces && !anyGlob(m.namespaces, s.namespace)) return false;
  if (m.namespaceLabels && !kvMatch(m.namespaceLabels, s.namespaceLabels)) return false;
  if (m.labels && !kvMatch(m.labels, s.labels)) return false;
  if (m.annotations && !kvMatch(m.annotations, s.facts.annotations)) return false;
  if (m.images || m.registries || m.registriesNotIn) {
    const img = imageParts(s.image);
    if (m.images && !(img && anyGlob(m.images, img.repository))) return false;
    if (m.registries && !(img && anyGlob(m.registries, img.registry))) return false;
    // An image of no known registry is not on the allow list.
    if (m.registriesNotIn && img && anyGlob(m.registriesNotIn, img.registry)) return false;
  }
  if (m.privileged !== undefined && m.privileged !== s.facts.privileged) return false;
  if (m.hostNamespaces !== undefined && m.hostNamespaces !== s.facts.hostNamespaces.length > 0) return false;
  if (m.devices !== undefined && m.devices !== s.facts.devices) return false;
  if (m.addedCapabilities !== undefined && m.addedCapabilities !== s.facts.addedCapabilities.length > 0) return false;
  if (m.hostMountsOutside && !s.facts.bindSources.some((src) => !m.hostMountsOutside!.some((d) => under(src, d)))) return false;
  return true;
}

/** What of `forbid` the container asks for, in words; empty when nothing. */
export function forbiddenAsked(rule: Rule, f: SpecFacts): string[] {
  const out: string[] = [];
  for (const what of rule.forbid) {
    if (what === 'privileged' && f.privileged) out.push('privileged (CAP_SYS_ADMIN)');
    if (what === 'host_namespaces' && f.hostNamespaces.length) out.push(`host namespaces (${f.hostNamespaces.join(', ')})`);
    if (what === 'devices' && f.devices) out.push('host devices');
    if (what === 'added_capabilities' && f.addedCapabilities.length) out.push(`added capabilities (${f.addedCapabilities.join(', ')})`);
    if (what === 'host_mounts') {
      const outside = f.bindSources.filter((src) => !rule.hostMountAllow.some((d) => under(src, d)));
      if (outside.length) out.push(`host-path mounts outside the allow list (${outside.join(', ')})`);
    }
  }
  return out;
}
