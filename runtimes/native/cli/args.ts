// runc-style command line: global flags, a verb, the verb's flags (`--flag value`, `--flag=value`, `-b value`,
// boolean `--force`), positional arguments.
import { errInvalidArgument } from '../../../api/errdefs.ts';

type Flags = Record<string, string | boolean | string[]>;

/** Flags that may repeat; their values collect into an array. */
const REPEATABLE = new Set(['env', 'e', 'cap', 'additional-gids', 'g']);

const GLOBAL_VALUES = new Set(['root', 'log', 'log-format', 'criu', 'rootless']);
/** Flags that take a value, per verb (everything else is boolean). */
const VERB_VALUES: Record<string, string[]> = {
  create: ['bundle', 'b', 'pid-file', 'console-socket', 'preserve-fds'],
  run: ['bundle', 'b', 'pid-file', 'console-socket', 'preserve-fds'],
  list: ['format', 'f'],
  ps: ['format', 'f'],
  events: ['interval'],
  update: ['r', 'resources', 'memory', 'memory-swap', 'memory-reservation', 'cpu-shares', 'cpu-quota', 'cpu-period',
    'cpuset-cpus', 'cpuset-mems', 'pids-limit', 'blkio-weight'],
  spec: ['bundle', 'b'],
  exec: ['process', 'p', 'cwd', 'env', 'e', 'user', 'u', 'pid-file', 'console-socket', 'cap', 'additional-gids', 'g', 'preserve-fds'],
};

export function parseArgs(argv: string[]): { globals: Flags; verb: string | undefined; flags: Flags; positional: string[] } {
  const globals: Flags = {};
  let i = 0;
  for (; i < argv.length && argv[i]!.startsWith('-'); i++) i = readFlag(argv, i, globals, GLOBAL_VALUES);
  const verb = argv[i++];
  const values = new Set(VERB_VALUES[verb ?? ''] ?? []);
  const flags: Flags = {};
  const positional: string[] = [];
  for (; i < argv.length; i++) {
    if (argv[i] === '--') { positional.push(...argv.slice(i + 1)); break; }
    // For exec, everything after the id is the command, flags included.
    if (verb === 'exec' && positional.length > 0) { positional.push(...argv.slice(i)); break; }
    if (argv[i]!.startsWith('-') && argv[i] !== '-' && !/^-\d+$/.test(argv[i]!)) i = readFlag(argv, i, flags, values);
    else positional.push(argv[i]!);
  }
  return { globals, verb, flags, positional };
}

function readFlag(argv: string[], i: number, into: Flags, values: Set<string>): number {
  const arg = argv[i]!.replace(/^--?/, '');
  const eq = arg.indexOf('=');
  const set = (key: string, value: string) => {
    into[key] = REPEATABLE.has(key) ? [...((into[key] as string[] | undefined) ?? []), value] : value;
  };
  if (eq >= 0) { set(arg.slice(0, eq), arg.slice(eq + 1)); return i; }
  if (!values.has(arg)) { into[arg] = true; return i; }
  const value = argv[i + 1];
  if (value === undefined) throw errInvalidArgument(`flag --${arg} needs a value`);
  set(arg, value);
  return i + 1;
}
