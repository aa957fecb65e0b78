// Reads runtime classes ([runtimes.<class>], default_runtime) and policy rules ([[policy.rules]] in the config,
// or [[rules]] in a file [policy] names) from TOML. Every mistake is refused naming the line and the key: a bad
// policy never half-applies.
import { readFileSync } from 'node:fs';
import { parse } from 'smol-toml';
import { errInvalidArgument } from '../../api/errdefs.ts';
import { packAny } from '../../api/proto.ts';
import { parseRuncOptions, RUNC_OPTIONS } from '../runtime/runtime-map.ts';
import { BERTH_SHIM, backendOf, type RuntimeClassConfig } from './classes.ts';
import { isIsolation, ISOLATION_LEVELS } from './isolation.ts';
import { FORBIDDABLE, FORCEABLE, type Match, type Rule } from './rules.ts';

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface PolicyConfig {
  classes: RuntimeClassConfig[];
  defaultRuntime?: string;
  /** Undefined: no policy configured (the built-in default applies). */
  rules?: Rule[];
  /** Where the rules came from. */
  source: string;
}

/** Line numbers of each rule's header and keys, for errors. */
class Lines {
  private readonly lines: string[];
  constructor(text: string) { this.lines = text.split('\n'); }

  /** The line (1-based) of rule `index`'s header, or of `key` within it. */
  of(index: number, key?: string): number | undefined {
    let seen = -1;
    for (let i = 0; i < this.lines.length; i++) {
      if (/^\s*\[\[\s*(policy\.)?rules\s*\]\]/.test(this.lines[i]!)) {
        if (seen === index) return undefined;
        seen++;
        if (seen === index && !key) return i + 1;
      } else if (seen === index && key && new RegExp(`^\\s*${key}\\s*=`).test(this.lines[i]!)) return i + 1;
    }
    return undefined;
  }
}

function fail(file: string, line: number | undefined, problem: string): never {
  throw errInvalidArgument(`${file}${line ? `:${line}` : ''}: ${problem}`);
}

function strings(v: unknown, what: string, bad: (p: string) => never): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) bad(`${what} must be a list of strings, got ${JSON.stringify(v)}`);
  return v as string[];
}

function stringMap(v: unknown, what: string, bad: (p: string) => never): Record<string, string> {
  if (!isTable(v) || !Object.values(v).every((x) => typeof x === 'string')) bad(`${what} must be a table of strings, got ${JSON.stringify(v)}`);
  return v as Record<string, string>;
}

const MATCH_KEYS: Record<string, { field: keyof Match; kind: 'list' | 'map' | 'bool' }> = {
  namespaces: { field: 'namespaces', kind: 'list' }, namespace_labels: { field: 'namespaceLabels', kind: 'map' },
  images: { field: 'images', kind: 'list' }, registries: { field: 'registries', kind: 'list' },
  registries_not_in: { field: 'registriesNotIn', kind: 'list' }, labels: { field: 'labels', kind: 'map' },
  annotations: { field: 'annotations', kind: 'map' }, privileged: { field: 'privileged', kind: 'bool' },
  host_namespaces: { field: 'hostNamespaces', kind: 'bool' }, devices: { field: 'devices', kind: 'bool' },
  added_capabilities: { field: 'addedCapabilities', kind: 'bool' }, host_mounts_outside: { field: 'hostMountsOutside', kind: 'list' },
};
const RULE_KEYS = ['name', 'action', 'isolation', 'class', 'on_weaker', 'forbid', 'force', 'host_mount_allow', 'reason', 'match'];

function parseRule(entry: unknown, index: number, file: string, lines: Lines, classNames: Set<string>): Rule {
  const bad = (key: string | undefined) => (p: string): never => fail(file, lines.of(index, key) ?? lines.of(index), `rule ${index + 1}: ${p}`);
  if (!isTable(entry)) bad(undefined)('must be a table');
  const e = entry as Table;
  const unknown = Object.keys(e).filter((k) => !RULE_KEYS.includes(k));
  if (unknown.length) bad(unknown[0])(`unknown key ${unknown[0]} (a rule has ${RULE_KEYS.join(', ')})`);
  if (typeof e.name !== 'string' || !/^[\w.-]+$/.test(e.name)) bad('name')(`name must be a word (letters, digits, . _ -), got ${JSON.stringify(e.name)}`);
  const name = e.name as string;
  const where = (key: string) => (p: string): never => bad(key)(`(${name}) ${p}`);
  const action = e.action ?? (e.isolation !== undefined ? 'require' : undefined);
  if (action !== 'allow' && action !== 'require' && action !== 'refuse') where('action')(`action must be "allow", "require" or "refuse", got ${JSON.stringify(e.action)}`);
  const rule: Rule = { name, match: {}, action: action as Rule['action'], onWeaker: 'upgrade', forbid: [], hostMountAllow: [], force: [], source: `${file}:${lines.of(index) ?? '?'}` };
  if (e.isolation !== undefined) {
    if (!isIsolation(e.isolation)) where('isolation')(`isolation must be one of ${ISOLATION_LEVELS.join(', ')}, got ${JSON.stringify(e.isolation)}`);
    rule.isolation = e.isolation as Rule['isolation'];
  }
  if (rule.action === 'require' && !rule.isolation) where('action')('action "require" needs an isolation level');
  if (rule.action !== 'require' && (e.isolation !== undefined || e.class !== undefined || e.on_weaker !== undefined)) where('isolation')(`isolation, class and on_weaker apply to action "require", not "${rule.action}"`);
  if (e.class !== undefined) {
    if (typeof e.class !== 'string' || !classNames.has(e.class)) where('class')(`class ${JSON.stringify(e.class)} is not a runtime class (${[...classNames].join(', ')})`);
    rule.class = e.class as string;
  }
  if (e.on_weaker !== undefined) {
    if (e.on_weaker !== 'upgrade' && e.on_weaker !== 'refuse') where('on_weaker')(`on_weaker must be "upgrade" or "refuse", got ${JSON.stringify(e.on_weaker)}`);
    rule.onWeaker = e.on_weaker as Rule['onWeaker'];
  }
  if (e.forbid !== undefined) {
    rule.forbid = strings(e.forbid, 'forbid', where('forbid')) as Rule['forbid'];
    const wrong = rule.forbid.find((f) => !(FORBIDDABLE as readonly string[]).includes(f));
    if (wrong) where('forbid')(`forbid: ${JSON.stringify(wrong)} is not one of ${FORBIDDABLE.join(', ')}`);
  }
  if (e.force !== undefined) {
    rule.force = strings(e.force, 'force', where('force')) as Rule['force'];
    const wrong = rule.force.find((f) => !(FORCEABLE as readonly string[]).includes(f));
    if (wrong) where('force')(`force: ${JSON.stringify(wrong)} is not one of ${FORCEABLE.join(', ')}`);
  }
  if (e.host_mount_allow !== undefined) rule.hostMountAllow = strings(e.host_mount_allow, 'host_mount_allow', where('host_mount_allow'));
  if (e.reason !== undefined) {
    if (typeof e.reason !== 'string') where('reason')('reason must be a string');
    rule.reason = e.reason as string;
  }
  if (e.match !== undefined) {
    if (!isTable(e.match)) where('match')('match must be a table');
    for (const [key, value] of Object.entries(e.match as Table)) {
      const k = MATCH_KEYS[key];
      if (!k) where(key)(`match.${key} is not something a rule matches on (${Object.keys(MATCH_KEYS).join(', ')})`);
      const w = where(key);
      const v = k!.kind === 'list' ? strings(value, `match.${key}`, w) : k!.kind === 'map' ? stringMap(value, `match.${key}`, w)
        : typeof value === 'boolean' ? value : w(`match.${key} must be true or false, got ${JSON.stringify(value)}`);
      (rule.match as Record<string, unknown>)[k!.field] = v;
    }
  }
  return rule;
}

/** Most VMs a shim may keep booted ahead: each holds its guest memory (64 MiB and more) while it waits. */
export const MAX_WARM_POOL = 16;

function parseClasses(runtimes: unknown, file: string, builtins: readonly RuntimeClassConfig[]): { classes: RuntimeClassConfig[]; defaultRuntime?: string } {
  if (runtimes === undefined) return { classes: [] };
  const bad = (p: string): never => fail(file, undefined, p);
  if (!isTable(runtimes)) bad('[runtimes] must be a table');
  const classes: RuntimeClassConfig[] = [];
  let defaultRuntime: string | undefined;
  for (const [name, entry] of Object.entries(runtimes as Table)) {
    if (name === 'default_runtime') {
      if (typeof entry !== 'string') bad('runtimes.default_runtime must name a runtime class');
      defaultRuntime = entry as string;
      continue;
    }
    const where = `runtimes.${name}`;
    if (!isTable(entry)) bad(`[${where}] must be a table`);
    const e = entry as Table;
    const keys = ['runtime_type', 'options', 'isolation', 'pod_annotations', 'container_annotations', 'warm_pool'];
    const unknown = Object.keys(e).filter((k) => !keys.includes(k));
    if (unknown.length) bad(`${where}: unknown key ${unknown[0]} (a class has ${keys.join(', ')})`);
    // A table of a built-in class keeps what it does not say from the built-in ([runtimes.vm] warm_pool = 2).
    const b = builtins.find((x) => x.name === name);
    if (!(e.isolation === undefined && b) && !isIsolation(e.isolation)) bad(`${where}.isolation must be one of ${ISOLATION_LEVELS.join(', ')}, got ${JSON.stringify(e.isolation)}`);
    if (e.runtime_type !== undefined && (typeof e.runtime_type !== 'string' || !e.runtime_type)) bad(`${where}.runtime_type must name a shim runtime`);
    const inherited = b ? { podAnnotations: b.podAnnotations, containerAnnotations: b.containerAnnotations } : {};
    const lists = Object.fromEntries((['pod_annotations', 'container_annotations'] as const).filter((k) => e[k] !== undefined)
      .map((k) => [k === 'pod_annotations' ? 'podAnnotations' : 'containerAnnotations', strings(e[k], `${where}.${k}`, bad)]));
    const c: RuntimeClassConfig = {
      name, runtimeType: (e.runtime_type as string | undefined) ?? b?.runtimeType ?? BERTH_SHIM,
      isolation: (e.isolation ?? b!.isolation) as RuntimeClassConfig['isolation'],
      options: e.options === undefined ? { ...b?.options } : parseRuncOptions(e.options, where),
      ...Object.fromEntries(Object.entries({ ...inherited, ...lists }).filter(([, v]) => v !== undefined)),
    };
    if (e.warm_pool !== undefined) {
      const n = e.warm_pool;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_WARM_POOL) bad(`${where}.warm_pool must be a whole number from 0 to ${MAX_WARM_POOL} (VMs kept booted ahead per shim), got ${JSON.stringify(n)}`);
      if (c.runtimeType !== BERTH_SHIM || backendOf(c.runtimeType, packAny(RUNC_OPTIONS, c.options)) !== 'vm') bad(`${where}.warm_pool: only a class served by berth's vm backend (BinaryName = "vm") has a warm pool`);
      c.warmPool = n as number;
    }
    classes.push(c);
  }
  // One pool per shim, whichever of its classes a container runs as.
  const pools = new Set(classes.filter((c) => c.warmPool !== undefined).map((c) => c.warmPool));
  if (pools.size > 1) bad(`runtimes: the vm classes give different warm_pool values (${[...pools].join(', ')}): a shim has one warm pool`);
  return { classes, ...(defaultRuntime ? { defaultRuntime } : {}) };
}

function parseToml(text: string, file: string): Table {
  try {
    return parse(text) as Table;
  } catch (err) {
    const m = /line (\d+)/.exec((err as Error).message);
    return fail(file, m ? Number(m[1]) : undefined, (err as Error).message.split('\n')[0]!);
  }
}

/** Rules of a policy file: [[rules]] at its top level. */
export function parsePolicyFile(path: string, classNames: Set<string>): Rule[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return fail(path, undefined, `cannot read the policy file: ${(err as Error).message}`);
  }
  const doc = parseToml(text, path);
  const unknown = Object.keys(doc).filter((k) => k !== 'rules');
  if (unknown.length) fail(path, undefined, `unknown key ${unknown[0]} (a policy file has [[rules]])`);
  return rulesOf(doc.rules, path, new Lines(text), classNames);
}

function rulesOf(list: unknown, file: string, lines: Lines, classNames: Set<string>): Rule[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) fail(file, undefined, 'rules must be an array of tables ([[rules]])');
  const rules = (list as unknown[]).map((r, i) => parseRule(r, i, file, lines, classNames));
  const seen = new Set<string>();
  rules.forEach((r, i) => {
    if (seen.has(r.name)) fail(file, lines.of(i, 'name'), `rule ${i + 1}: a rule named ${r.name} comes earlier`);
    seen.add(r.name);
  });
  return rules;
}

/** Classes and policy of a config file's text. `builtins` are the classes that exist without configuration. */
export function parsePolicyConfig(text: string, file: string, builtins: readonly RuntimeClassConfig[]): PolicyConfig {
  const doc = parseToml(text, file);
  const { classes, defaultRuntime } = parseClasses(doc.runtimes, file, builtins);
  const names = new Set([...builtins.map((b) => b.name), ...classes.map((c) => c.name)]);
  if (defaultRuntime && !names.has(defaultRuntime)) fail(file, undefined, `runtimes.default_runtime ${JSON.stringify(defaultRuntime)} is not a runtime class (${[...names].join(', ')})`);
  const out: PolicyConfig = { classes, ...(defaultRuntime ? { defaultRuntime } : {}), source: file };
  if (doc.policy === undefined) return out;
  if (!isTable(doc.policy)) fail(file, undefined, '[policy] must be a table');
  const policy = doc.policy as Table;
  const unknown = Object.keys(policy).filter((k) => k !== 'rules' && k !== 'file');
  if (unknown.length) fail(file, undefined, `policy: unknown key ${unknown[0]} (it has file, rules)`);
  if (policy.file !== undefined) {
    if (typeof policy.file !== 'string' || !policy.file.startsWith('/')) fail(file, undefined, 'policy.file must be an absolute path');
    if (policy.rules !== undefined) fail(file, undefined, 'policy: give rules inline or in policy.file, not both');
    return { ...out, rules: parsePolicyFile(policy.file as string, names), source: policy.file as string };
  }
  return { ...out, rules: rulesOf(policy.rules, file, new Lines(text), names) };
}
