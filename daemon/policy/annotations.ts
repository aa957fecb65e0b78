// Which of a container's spec annotations reach its runtime. A class that lists pod_annotations or
// container_annotations (globs, matched as containerd's CRI matches them: Go's filepath.Match, where * and ? stop
// at "/") lets only matching annotations through, as CRI passes a pod's and a container's: a pod sandbox
// (io.kubernetes.cri.container-type=sandbox) gets the pod's, any other container both. Annotations that drive
// runtimes (gVisor's dev.gvisor.*, Kata's io.katacontainers.*) are how a client could reconfigure a sandbox, so
// the sandbox classes list none. The shim's own keys (CRI's io.kubernetes.cri.*, the group) always pass: they
// say which pod a container belongs to. A class listing neither passes the spec's annotations as sent, as
// containerd does for a client that is not CRI.
import type { RuntimeClass } from './classes.ts';
import type { Spec } from './request.ts';

const ALWAYS = (key: string) => key.startsWith('io.kubernetes.cri.') || key === 'io.containerd.runc.v2.group';

function globRegExp(glob: string): RegExp {
  const body = [...glob].map((ch) => (ch === '*' ? '[^/]*' : ch === '?' ? '[^/]' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`);
}

/** The annotations the runtime of class `c` gets from `annotations`; undefined when the class filters none. */
export function passedAnnotations(c: RuntimeClass | undefined, annotations: Record<string, string>): Record<string, string> | undefined {
  if (!c || (c.podAnnotations === undefined && c.containerAnnotations === undefined)) return undefined;
  const sandbox = annotations['io.kubernetes.cri.container-type'] === 'sandbox';
  const globs = [...(c.podAnnotations ?? []), ...(sandbox ? [] : c.containerAnnotations ?? [])].map(globRegExp);
  return Object.fromEntries(Object.entries(annotations).filter(([k]) => ALWAYS(k) || globs.some((g) => g.test(k))));
}

/** The spec with only the annotations its class passes; the same spec when nothing is dropped. */
export function specForRuntime(c: RuntimeClass | undefined, spec: Spec): Spec {
  const passed = passedAnnotations(c, spec.annotations ?? {});
  if (!passed || Object.keys(passed).length === Object.keys(spec.annotations ?? {}).length) return spec;
  return { ...spec, annotations: passed };
}
