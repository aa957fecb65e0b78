// `berth-runc --help`, `berth-runc COMMAND --help` and `--version`, in the layout runc's CLI library prints
// (NAME, USAGE, COMMANDS / OPTIONS sections), so tools and people that read runc's find their way.
import { COMMANDS, GLOBAL_FLAGS, type CommandSpec, type FlagSpec } from './args.ts';

/** berth-runc's own version; the commit is stamped in by the build when it knows it. */
export const VERSION = '0.1.0';
declare const BERTH_COMMIT: string | undefined;
/** The runtime-spec version berth-runc implements, reported as runc 1.1.5 reports its. */
export const SPEC_VERSION = '1.0.2-dev';

export function versionText(): string {
  const commit = typeof BERTH_COMMIT === 'string' && BERTH_COMMIT ? BERTH_COMMIT : 'unknown';
  return `berth-runc version ${VERSION}\ncommit: ${commit}\nspec: ${SPEC_VERSION}\nnode: ${process.version}\n`;
}

function flagLines(flags: FlagSpec[]): string {
  const heads = flags.map((f) => f.names.map((n) => `${n.length === 1 ? '-' : '--'}${n}${f.value ? ' value' : ''}`).join(', '));
  const width = Math.max(...heads.map((h) => h.length));
  return flags.map((f, i) => `   ${heads[i]!.padEnd(width)}  ${f.usage}`).join('\n');
}

export function globalHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `NAME:
   berth-runc - Open Container Initiative runtime (berth's runc-compatible runtime)

USAGE:
   berth-runc [global options] command [command options] [arguments...]

VERSION:
   ${versionText().trimEnd().replace(/^berth-runc version /, '')}

COMMANDS:
${COMMANDS.map((c) => `   ${c.name.padEnd(width)}  ${c.usage}`).join('\n')}
   ${'help'.padEnd(width)}  show the commands, or one command's help

GLOBAL OPTIONS:
${flagLines(GLOBAL_FLAGS)}
`;
}

export function commandHelp(c: CommandSpec): string {
  const flags = [...c.flags, { names: ['help', 'h'], usage: 'show help' }];
  return `NAME:
   berth-runc ${c.name} - ${c.usage}

USAGE:
   berth-runc ${c.name}${c.flags.length ? ' [command options]' : ''} ${c.argsUsage}

OPTIONS:
${flagLines(flags)}
`;
}
