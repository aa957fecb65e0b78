// The policy in force: built from the config file at start (a bad one stops berthd) and swapped whole on reload
// (a bad new one keeps the old). Class probes run once per daemon: a reload does not re-run binaries.
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { errInvalidArgument } from '../../api/errdefs.ts';
import { builtinClasses, ClassTable } from './classes.ts';
import './builtin-classes.ts';
import { DEFAULT_RULES } from './default-policy.ts';
import { Policy } from './engine.ts';
import { strength } from './isolation.ts';
import { parsePolicyConfig } from './parse.ts';

/** Builds the policy of a config file ('' for none: built-in classes and the default rules). */
export function loadPolicy(configFile: string, probes = new Map<string, string | undefined>()): Policy {
  const text = configFile ? readConfigText(configFile) : '';
  const cfg = parsePolicyConfig(text, configFile || '(no config file)', builtinClasses());
  let classes: ClassTable;
  try {
    classes = ClassTable.build(cfg.classes, cfg.defaultRuntime, probes);
  } catch (err) {
    throw errInvalidArgument(`${configFile}: ${(err as Error).message}`);
  }
  const rules = cfg.rules ?? [...DEFAULT_RULES];
  for (const r of rules) {
    const c = r.class ? classes.get(r.class) : undefined;
    if (c && r.isolation && strength(c.isolation) < strength(r.isolation)) {
      throw errInvalidArgument(`${r.source ?? cfg.source}: rule ${r.name} requires isolation ${r.isolation} but names class ${c.name}, which gives ${c.isolation}`);
    }
  }
  return new Policy(classes, rules, cfg.rules ? cfg.source : 'built-in default');
}

function readConfigText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw errInvalidArgument(`${path}: cannot read: ${(err as Error).message}`);
  }
}

export class PolicyHolder {
  private readonly probes = new Map<string, string | undefined>();
  private policy: Policy;

  constructor(private readonly configFile: string, private readonly log: Logger) {
    this.policy = loadPolicy(configFile, this.probes);
    this.logClasses();
  }

  get current(): Policy {
    return this.policy;
  }

  /** Re-reads the config file; on any problem the policy in force stays and the problem is returned. */
  reload(): { ok: true } | { ok: false; error: string } {
    try {
      this.policy = loadPolicy(this.configFile, this.probes);
    } catch (err) {
      const error = (err as Error).message;
      this.log.error({ error }, 'policy reload refused: the policy in force stays');
      return { ok: false, error };
    }
    this.log.info({ source: this.policy.source, rules: this.policy.rules.length }, 'policy reloaded');
    this.logClasses();
    return { ok: true };
  }

  private logClasses(): void {
    for (const c of this.policy.classes.list()) {
      if (c.unusable) this.log.info({ class: c.name, isolation: c.isolation, why: c.unusable }, 'runtime class unusable on this host');
    }
  }
}
