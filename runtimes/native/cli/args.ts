// runc-style command line: global flags, a verb, the verb's flags (`--flag value`, `--flag=value`, `-b value`,
// boolean `--force`), positional arguments.
import { errInvalidArgument } from '../../../api/errdefs.ts';

type Flags = Record<string, string | boolean>;

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
    if (argv[i]!.startsWith('-') && argv[i] !== '-' && !/^-\d+$/.test(argv[i]!)) i = readFlag(argv, i, flags, values);
    else positional.push(argv[i]!);
  }
  return { globals, verb, flags, positional };
}

function readFlag(argv: string[], i: number, into: Flags, values: Set<string>): number {
  const arg = argv[i]!.replace(/^--?/, '');
  const eq = arg.indexOf('=');
  if (eq >= 0) { into[arg.slice(0, eq)] = arg.slice(eq + 1); return i; }
  if (!values.has(arg)) { into[arg] = true; return i; }
  const value = argv[i + 1];
  if (value === undefined) throw errInvalidArgument(`flag --${arg} needs a value`);
  into[arg] = value;
  return i + 1;
}
