// The policy engine: the first rule that matches a container decides which runtime class it runs as, whether it
// is upgraded or refused, and what of its spec is forbidden or forced. Fail closed: a class that cannot run on
// this host is never used, and nothing falls back to a weaker one.
import type { AnyMessage } from '../../api/proto.ts';
import type { ClassTable, RuntimeClass } from './classes.ts';
import { strength } from './isolation.ts';
import { forbiddenAsked, matches, type Force, type Rule, type Subject } from './rules.ts';

export const NO_RULE = 'none';

export type Decision =
  | { verdict: 'allow' | 'upgrade'; rule: string; class: RuntimeClass | undefined; runtime: string; force: Force[]; why: string }
  | { verdict: 'refuse'; rule: string; why: string };

export interface PolicyRequest extends Subject {
  runtime: string;
  options: AnyMessage | undefined;
  /** The class the container was admitted as before (its berth.io/isolation label), if any. */
  recordedClass?: string;
}

export class Policy {
  constructor(readonly classes: ClassTable, readonly rules: readonly Rule[], readonly source: string) {}

  ruleFor(s: Subject): Rule | undefined {
    return this.rules.find((r) => matches(r.match, s));
  }

  decide(req: PolicyRequest): Decision {
    const rule = this.ruleFor(req);
    const name = rule?.name ?? NO_RULE;
    const refuse = (why: string): Decision => ({ verdict: 'refuse', rule: name, why });
    // A container naming no runtime runs as the default class.
    const asked = req.runtime ? this.classes.classify(req.runtime, req.options, req.recordedClass) : this.classes.get(this.classes.defaultClass);
    const askedName = asked?.name ?? req.runtime;
    // Asking for a class that cannot run here is refused, never served by another.
    if (asked?.unusable) return refuse(`runtime class ${asked.name} cannot run on this host: ${asked.unusable}`);
    const run = (verdict: 'allow' | 'upgrade', c: RuntimeClass | undefined, why: string): Decision => {
      if (c?.unusable) return refuse(`runtime class ${c.name} cannot run on this host: ${c.unusable}`);
      return { verdict, rule: name, class: c, runtime: c?.name ?? req.runtime, force: rule?.force ?? [], why };
    };
    if (!rule) return run('allow', asked, 'no rule matches');
    if (rule.action === 'refuse') return refuse(`rule ${name} refuses this container${rule.reason ? `: ${rule.reason}` : ''}`);
    const forbidden = forbiddenAsked(rule, req.facts);
    if (forbidden.length) return refuse(`rule ${name} forbids ${forbidden.join(', ')}`);
    if (rule.action === 'allow' || !rule.isolation) return run('allow', asked, `rule ${name} allows it`);
    const min = rule.isolation;
    const target = rule.class ? this.classes.get(rule.class) : this.classes.strongestAtLeast(min);
    const wants = `isolation ${min}${rule.class ? ` (class ${rule.class})` : ''}`;
    if (!target) {
      const none = this.classes.list().filter((c) => strength(c.isolation) >= strength(min)).map((c) => `${c.name}: ${c.unusable ?? 'usable'}`);
      return refuse(`rule ${name} requires ${wants}, and no runtime class on this host gives it${none.length ? ` (${none.join('; ')})` : ''}`);
    }
    if (target.unusable) return refuse(`rule ${name} requires ${wants}, but class ${target.name} cannot run on this host: ${target.unusable}`);
    // An unknown runtime gives no isolation we can vouch for: the weakest.
    if (asked && strength(asked.isolation) >= strength(min)) return run('allow', asked, `rule ${name}: ${asked.name} gives isolation ${asked.isolation}`);
    const gives = `runtime ${req.runtime || '(none)'} (${asked ? `class ${askedName}, isolation ${asked.isolation}` : 'no runtime class'})`;
    if (rule.onWeaker === 'refuse') return refuse(`rule ${name} requires ${wants}; ${gives} is weaker`);
    return run('upgrade', target, `rule ${name} requires ${wants}: upgraded from ${gives}`);
  }
}
