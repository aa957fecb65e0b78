// The berth CLI's command model: commands register themselves (one file per verb group under commands/),
// the dispatcher finds the longest matching path ("images ls"), parses that command's flags and runs it.
// Flags follow ctr (urfave/cli): `--flag value`, `--flag=value`, `-f value`, booleans without a value,
// repeatable flags collect into lists, and flags may come before or between positional arguments.
import { errInvalidArgument } from '../api/errdefs.ts';
import type { ApiClient } from '../api/grpc-client.ts';
import type { Output } from './output.ts';

export interface FlagSpec {
  name: string;
  alias?: string;
  type: 'bool' | 'string' | 'strings';
  usage: string;
  default?: string;
}

export type Flags = Record<string, string | boolean | string[] | undefined>;

export interface CliContext {
  address: string;
  namespace: string;
  timeoutMs: number | undefined;
  debug: boolean;
  out: Output;
  /** The gRPC client, connected on first use. */
  client(): ApiClient;
}

export interface Command {
  /** e.g. ['images', 'ls']; the first alias set names the group, the second the verb. */
  path: string[];
  aliases?: string[];
  summary: string;
  /** Positional arguments as shown in usage, e.g. "<ref>". */
  args?: string;
  flags?: FlagSpec[];
  /** Everything after the first positional argument is passed through untouched (e.g. a container's command). */
  passThroughAfter?: number;
  run(ctx: CliContext, flags: Flags, args: string[]): Promise<number | void>;
}

const commands: Command[] = [];

export function registerCommand(c: Command): void {
  commands.push(c);
}

export function allCommands(): readonly Command[] {
  return commands;
}

function names(c: Command): string[][] {
  const last = c.path.length - 1;
  const alts = [c.path[last]!, ...(c.aliases ?? [])];
  return alts.map((a) => [...c.path.slice(0, last), a]);
}

/** ctr's short names for the verb groups. */
const GROUP_ALIASES: Record<string, string> = {
  ns: 'namespaces', namespace: 'namespaces', i: 'images', image: 'images', c: 'containers', container: 'containers',
  snapshot: 'snapshots', t: 'tasks', task: 'tasks', plugin: 'plugins', lease: 'leases',
};

export function canonicalGroup(word: string | undefined): string | undefined {
  return word === undefined ? undefined : GROUP_ALIASES[word] ?? word;
}

/** The command whose path (or an alias of its last word) prefixes argv; the rest are its arguments. */
export function findCommand(input: string[]): { command: Command; rest: string[] } | undefined {
  const argv = input.length ? [canonicalGroup(input[0])!, ...input.slice(1)] : input;
  let best: { command: Command; rest: string[]; len: number } | undefined;
  for (const c of commands) {
    for (const path of names(c)) {
      if (path.length <= argv.length && path.every((p, i) => argv[i] === p) && (!best || path.length > best.len)) {
        best = { command: c, rest: argv.slice(path.length), len: path.length };
      }
    }
  }
  return best;
}

/** Commands under a group ("images"), for help. */
export function groupCommands(group: string): Command[] {
  return commands.filter((c) => c.path[0] === group && c.path.length > 1);
}

export function parseFlags(specs: FlagSpec[], argv: string[], passThroughAfter?: number): { flags: Flags; args: string[] } {
  const byName = new Map<string, FlagSpec>();
  for (const s of specs) {
    byName.set(s.name, s);
    if (s.alias) byName.set(s.alias, s);
  }
  const flags: Flags = {};
  for (const s of specs) {
    if (s.default !== undefined) flags[s.name] = s.default;
    if (s.type === 'strings') flags[s.name] = [];
  }
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (passThroughAfter !== undefined && args.length >= passThroughAfter) { args.push(...argv.slice(i)); break; }
    if (a === '--') { args.push(...argv.slice(i + 1)); break; }
    if (!a.startsWith('-') || a === '-') { args.push(a); continue; }
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const spec = byName.get(name);
    if (!spec) throw errInvalidArgument(`flag provided but not defined: -${name}`);
    if (spec.type === 'bool') {
      if (eq >= 0 && !['true', 'false'].includes(body.slice(eq + 1))) throw errInvalidArgument(`flag --${spec.name} is a boolean: use --${spec.name} or --${spec.name}=false`);
      flags[spec.name] = eq >= 0 ? body.slice(eq + 1) === 'true' : true;
      continue;
    }
    let value: string;
    if (eq >= 0) value = body.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw errInvalidArgument(`flag needs an argument: --${spec.name}`);
      value = argv[++i]!;
    }
    if (spec.type === 'strings') (flags[spec.name] as string[]).push(value);
    else flags[spec.name] = value;
  }
  return { flags, args };
}

export function commandHelp(c: Command): string {
  const lines = [`usage: berth ${c.path.join(' ')}${c.flags?.length ? ' [flags]' : ''}${c.args ? ' ' + c.args : ''}`, '', c.summary];
  if (c.aliases?.length) lines.push('', `aliases: ${c.aliases.join(', ')}`);
  if (c.flags?.length) {
    lines.push('', 'flags:');
    const left = c.flags.map((f) => `  --${f.name}${f.alias ? `, -${f.alias}` : ''}${f.type === 'bool' ? '' : ' value'}`);
    const width = Math.max(...left.map((l) => l.length)) + 2;
    c.flags.forEach((f, i) => lines.push(left[i]!.padEnd(width) + f.usage + (f.default !== undefined ? ` (default ${f.default})` : '')));
  }
  return lines.join('\n');
}

/** Reads a required positional argument, naming it when missing. */
export function requireArgs(args: string[], count: number, usage: string): void {
  if (args.length < count) throw errInvalidArgument(`missing argument: ${usage}`);
}
