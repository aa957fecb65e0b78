// Where berthd's services meet the policy: every container record created or updated, every task created and
// every exec passes here, whichever client sent it. A decision is recorded three ways: a label on the container
// (berth.io/isolation), an event on /policy/decision, and a log line.
import { errFailedPrecondition, isNotFound } from '../../api/errdefs.ts';
import type { Logger } from 'pino';
import { defaultSeccompProfile } from '../../api/oci-defaults/seccomp-profile.ts';
import type { NewContainer } from '../metadata/containers.ts';
import type { MetadataDB } from '../metadata/db.ts';
import type { Any } from '../metadata/types.ts';
import type { Decision } from './engine.ts';
import type { PolicyHolder } from './holder.ts';
import { capabilitiesOf, parseSpec, specFacts, type Spec } from './request.ts';
import { specForRuntime } from './annotations.ts';

export const ISOLATION_LABEL = 'berth.io/isolation';
export const DECISION_TOPIC = '/policy/decision';

export interface Enforcer {
  policy: PolicyHolder;
  db: MetadataDB;
  log: Logger;
  publish(ns: string, topic: string, typeName: string, event: object): void;
}

export async function namespaceLabels(db: MetadataDB, ns: string): Promise<Record<string, string>> {
  try {
    return (await db.namespaces.get(ns)).labels ?? {};
  } catch (err) {
    if (isNotFound(err)) return {};
    throw err;
  }
}

/** The class named by the container's isolation label. */
const classOf = (c: NewContainer): string | undefined => c.labels?.[ISOLATION_LABEL]?.split(';')[0];

function record(e: Enforcer, ns: string, id: string, operation: string, d: Decision): void {
  const cls = d.verdict === 'refuse' ? undefined : d.class;
  e.publish(ns, DECISION_TOPIC, 'berth.events.PolicyDecision', {
    containerId: id, operation, verdict: d.verdict, rule: d.rule, runtimeClass: cls?.name ?? '', isolation: cls?.isolation ?? '', reason: d.why,
  });
  e.log.info({ ns, id, operation, verdict: d.verdict, rule: d.rule, class: cls?.name, why: d.why }, 'policy decision');
}

/** Seccomp and no_new_privileges, as a rule forces them. */
function forced(spec: Spec, force: readonly string[]): boolean {
  let changed = false;
  if (force.includes('no_new_privileges') && spec.process && spec.process.noNewPrivileges !== true) {
    spec.process.noNewPrivileges = true;
    changed = true;
  }
  if (force.includes('seccomp') && spec.linux && !spec.linux.seccomp) {
    spec.linux.seccomp = defaultSeccompProfile(spec.process?.capabilities?.bounding ?? []);
    changed = true;
  }
  return changed;
}

/**
 * The container as the policy lets it be: runtime rewritten to its class's (an upgrade, or a class named by
 * the client), spec with what the rule forces, the isolation label set. A refusal throws FAILED_PRECONDITION
 * naming the rule.
 */
export async function admitContainer(e: Enforcer, ns: string, c: NewContainer, operation: string): Promise<NewContainer> {
  const policy = e.policy.current;
  const spec = parseSpec(c.spec?.value);
  const d = policy.decide({
    namespace: ns, namespaceLabels: await namespaceLabels(e.db, ns), image: c.image ?? '', labels: c.labels ?? {},
    facts: specFacts(spec), runtime: c.runtime.name, options: c.runtime.options, recordedClass: classOf(c),
  });
  record(e, ns, c.id, operation, d);
  if (d.verdict === 'refuse') throw errFailedPrecondition(`policy: container ${c.id}: ${d.why}`);
  const out: NewContainer = { ...c, labels: { ...c.labels, [ISOLATION_LABEL]: `${d.class?.name ?? c.runtime.name}; rule=${d.rule}` } };
  if (d.class && (d.verdict === 'upgrade' || c.runtime.name === d.class.name || !c.runtime.name)) {
    const r = policy.classes.runtimeFor(d.class, c.runtime.options);
    out.runtime = { name: r.name, options: { typeUrl: r.options.typeUrl, value: new Uint8Array(r.options.value) } };
  }
  if (c.spec && forced(spec, d.force)) out.spec = { typeUrl: c.spec.typeUrl, value: new Uint8Array(Buffer.from(JSON.stringify(spec))) } satisfies Any;
  return out;
}

/** The spec a task's runtime gets: annotations only as the container's class passes them (annotations.ts). The
 * container record keeps them all, so that rules still match on them. */
export function runtimeSpec(e: Enforcer, c: NewContainer): Any | undefined {
  if (!c.spec) return c.spec;
  const spec = parseSpec(c.spec.value);
  const out = specForRuntime(e.policy.current.classes.classify(c.runtime.name, c.runtime.options, classOf(c)), spec);
  return out === spec ? c.spec : { typeUrl: c.spec.typeUrl, value: new Uint8Array(Buffer.from(JSON.stringify(out))) };
}

/** An exec may not ask for more than the container has: no capability it lacks, no dropping no_new_privileges. */
export function checkExec(e: Enforcer, ns: string, containerSpec: Any | undefined, execId: string, id: string, process: Uint8Array | undefined): void {
  const container = parseSpec(containerSpec?.value).process;
  const exec = parseSpec(process);
  if (!container || !process?.length) return;
  const have = capabilitiesOf(container);
  const extra = [...capabilitiesOf(exec)].filter((c) => !have.has(c)).sort();
  const problems: string[] = [];
  if (extra.length) problems.push(`capabilities the container lacks (${extra.join(', ')})`);
  if (container.noNewPrivileges === true && exec.noNewPrivileges !== true) problems.push('no_new_privileges off, which the container has on');
  if (!problems.length) return;
  const why = `exec ${execId} asks for ${problems.join(' and ')}`;
  e.log.info({ ns, id, operation: 'tasks.exec', verdict: 'refuse', why }, 'policy decision');
  e.publish(ns, DECISION_TOPIC, 'berth.events.PolicyDecision', { containerId: id, operation: 'tasks.exec', verdict: 'refuse', rule: 'exec-privilege', reason: why });
  throw errFailedPrecondition(`policy: container ${id}: ${why}`);
}
