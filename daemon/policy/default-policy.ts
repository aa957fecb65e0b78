// The policy berthd applies when none is configured: an untrusted container (by its namespace's label, its own
// label, or CRI's untrusted-workload annotation) runs in a sandbox or stronger and may not be privileged nor
// share the host's namespaces.
import type { Rule } from './rules.ts';

const untrusted = (name: string, match: Rule['match']): Rule => ({
  name, match, action: 'require', isolation: 'sandbox', onWeaker: 'upgrade',
  forbid: ['privileged', 'host_namespaces'], hostMountAllow: [], force: [], source: 'built-in default',
});

export const DEFAULT_RULES: readonly Rule[] = [
  untrusted('untrusted-namespace', { namespaceLabels: { 'berth.io/trust': 'untrusted' } }),
  untrusted('untrusted-label', { labels: { 'berth.io/trust': 'untrusted' } }),
  untrusted('untrusted-workload-annotation', { annotations: { 'io.kubernetes.cri.untrusted-workload': 'true' } }),
];
