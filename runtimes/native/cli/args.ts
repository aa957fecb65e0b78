// runc's command line: global flags, a command, the command's flags (`--flag value`, `--flag=value`, `-b value`,
// booleans, repeatable flags), positional arguments. Flags may follow the id as with runc, except for `exec` and
// `ps`, where everything after the id belongs to the command run (or to ps(1)). Unknown flags are refused.
import { errInvalidArgument } from '../../../api/errdefs.ts';

export type Flags = Record<string, string | boolean | string[]>;

/** One flag: its names (the first is the key it is stored under), whether it takes a value, whether it may repeat. */
export interface FlagSpec { names: string[]; value?: string; repeat?: boolean; usage: string }

export interface CommandSpec {
  name: string;
  usage: string;
  argsUsage: string;
  flags: FlagSpec[];
  /** Everything after the id is positional (runc's SkipArgReorder). */
  argsAfterId?: boolean;
}

const bundle: FlagSpec = { names: ['bundle', 'b'], value: 'DIR', usage: 'the bundle directory (default: the current directory)' };
const consoleSocket: FlagSpec = { names: ['console-socket'], value: 'SOCKET', usage: 'AF_UNIX socket that receives the pty master when process.terminal is true' };
const pidFile: FlagSpec = { names: ['pid-file'], value: 'FILE', usage: 'write the process id to FILE' };
const preserveFds: FlagSpec = { names: ['preserve-fds'], value: 'N', usage: 'pass N more file descriptors (3 .. 3+N-1) to the process' };
const createFlags: FlagSpec[] = [bundle, consoleSocket, pidFile,
  { names: ['no-pivot'], usage: 'move the root with MS_MOVE instead of pivot_root (for a rootfs on a ramdisk)' },
  { names: ['no-new-keyring'], usage: 'keep the caller\'s session keyring' }, preserveFds];

export const GLOBAL_FLAGS: FlagSpec[] = [
  { names: ['debug'], usage: 'log debug messages' },
  { names: ['log'], value: 'FILE', usage: 'write log lines to FILE (default: stderr)' },
  { names: ['log-format'], value: 'FORMAT', usage: 'log format: text (default) or json' },
  { names: ['root'], value: 'DIR', usage: 'where container state is kept (default: "/run/berth-runc")' },
  { names: ['criu'], value: 'PATH', usage: 'accepted for compatibility; checkpoint/restore is not supported' },
  { names: ['systemd-cgroup'], usage: 'use the systemd cgroup driver (not supported: berth-runc drives cgroupfs)' },
  { names: ['rootless'], value: 'true|false|auto', usage: 'accepted for compatibility (default: "auto")' },
  { names: ['help', 'h'], usage: 'show help' },
  { names: ['version', 'v'], usage: 'print the version' },
];

export const COMMANDS: CommandSpec[] = [
  { name: 'create', usage: 'create a container (its process waits for start)', argsUsage: '<container-id>', flags: createFlags },
  { name: 'delete', usage: 'delete a container and what it holds', argsUsage: '<container-id>',
    flags: [{ names: ['force', 'f'], usage: 'kill (SIGKILL) and delete a running container; a missing one is no error' }] },
  { name: 'events', usage: 'print the container\'s OOM events and resource statistics as JSON lines', argsUsage: '<container-id>',
    flags: [{ names: ['interval'], value: 'DURATION', usage: 'statistics interval (default: 5s)' }, { names: ['stats'], usage: 'print the statistics once and exit' }] },
  { name: 'exec', usage: 'run one more process in a container', argsUsage: '<container-id> <command> [args...] | -p process.json <container-id>', argsAfterId: true,
    flags: [consoleSocket,
      { names: ['cwd'], value: 'DIR', usage: 'working directory in the container' },
      { names: ['env', 'e'], value: 'NAME=VALUE', repeat: true, usage: 'add an environment variable' },
      { names: ['tty', 't'], usage: 'allocate a pseudo-terminal' },
      { names: ['user', 'u'], value: 'UID[:GID]', usage: 'user and group ids' },
      { names: ['additional-gids', 'g'], value: 'GID', repeat: true, usage: 'add a supplementary group id' },
      { names: ['process', 'p'], value: 'FILE', usage: 'the process as runtime-spec process JSON' },
      { names: ['detach', 'd'], usage: 'return once the process runs' }, pidFile,
      { names: ['process-label'], value: 'LABEL', usage: 'SELinux label (not supported)' },
      { names: ['apparmor'], value: 'PROFILE', usage: 'AppArmor profile (not supported)' },
      { names: ['no-new-privs'], usage: 'set no_new_privs for the process' },
      { names: ['cap', 'c'], value: 'CAP', repeat: true, usage: 'add a capability' }, preserveFds,
      { names: ['cgroup'], value: '[CONTROLLER:]PATH', repeat: true, usage: 'join this existing sub-cgroup of the container\'s' },
      { names: ['ignore-paused'], usage: 'allow exec in a paused container' }] },
  { name: 'kill', usage: 'send a signal (default SIGTERM) to the container\'s init', argsUsage: '<container-id> [signal]',
    flags: [{ names: ['all', 'a'], usage: 'signal every process of the container' }] },
  { name: 'list', usage: 'list the containers under --root', argsUsage: '',
    flags: [{ names: ['format', 'f'], value: 'table|json', usage: 'output format (default: table)' }, { names: ['quiet', 'q'], usage: 'only container ids' }] },
  { name: 'pause', usage: 'freeze every process of a container', argsUsage: '<container-id>', flags: [] },
  { name: 'ps', usage: 'show the container\'s processes (ps(1) options after the id; default -ef)', argsUsage: '<container-id> [ps options]', argsAfterId: true,
    flags: [{ names: ['format', 'f'], value: 'table|json', usage: 'table (ps output) or json (pids)' }] },
  { name: 'resume', usage: 'thaw a paused container', argsUsage: '<container-id>', flags: [] },
  { name: 'run', usage: 'create and start a container, and wait for it unless detached', argsUsage: '<container-id>',
    flags: [...createFlags, { names: ['detach', 'd'], usage: 'return once the container runs' },
      { names: ['keep'], usage: 'keep the container after it exits' }, { names: ['no-subreaper'], usage: 'accepted for compatibility' }] },
  { name: 'spec', usage: 'write a starting config.json', argsUsage: '',
    flags: [bundle, { names: ['rootless'], usage: 'a config for a rootless container (user namespace, no cgroup limits)' }] },
  { name: 'start', usage: 'start a created container', argsUsage: '<container-id>', flags: [] },
  { name: 'state', usage: 'print the container\'s state as JSON', argsUsage: '<container-id>', flags: [] },
  { name: 'update', usage: 'change a container\'s resource limits', argsUsage: '<container-id>',
    flags: [{ names: ['resources', 'r'], value: 'FILE', usage: 'linux.resources JSON from FILE or - (stdin); other flags are then ignored' },
      { names: ['blkio-weight'], value: 'N', usage: 'block IO weight (10-1000)' },
      { names: ['cpu-period'], value: 'US', usage: 'CFS period' }, { names: ['cpu-quota'], value: 'US', usage: 'CFS quota (-1: none)' },
      { names: ['cpu-share'], value: 'N', usage: 'CPU shares' },
      { names: ['cpu-rt-period'], value: 'US', usage: 'realtime period' }, { names: ['cpu-rt-runtime'], value: 'US', usage: 'realtime runtime' },
      { names: ['cpuset-cpus'], value: 'LIST', usage: 'CPUs to use' }, { names: ['cpuset-mems'], value: 'LIST', usage: 'memory nodes to use' },
      { names: ['kernel-memory'], value: 'BYTES', usage: 'ignored (obsolete)' }, { names: ['kernel-memory-tcp'], value: 'BYTES', usage: 'ignored (obsolete)' },
      { names: ['memory'], value: 'BYTES', usage: 'memory limit (k, m, g suffixes; -1: none)' },
      { names: ['memory-reservation'], value: 'BYTES', usage: 'memory soft limit' },
      { names: ['memory-swap'], value: 'BYTES', usage: 'memory + swap limit (-1: none)' },
      { names: ['pids-limit'], value: 'N', usage: 'maximum number of processes (-1: none)' },
      { names: ['l3-cache-schema'], value: 'SCHEMA', usage: 'Intel RDT (not supported)' }, { names: ['mem-bw-schema'], value: 'SCHEMA', usage: 'Intel RDT (not supported)' }] },
  { name: 'features', usage: 'print what this runtime supports as JSON', argsUsage: '', flags: [] },
  { name: 'checkpoint', usage: 'checkpoint a container (not supported)', argsUsage: '<container-id>', flags: [] },
  { name: 'restore', usage: 'restore a container (not supported)', argsUsage: '<container-id>', flags: [] },
];

const HELP: FlagSpec = { names: ['help', 'h'], usage: 'show help' };

export interface ParsedArgs { globals: Flags; verb: string | undefined; command?: CommandSpec; flags: Flags; positional: string[] }

export function parseArgs(argv: string[]): ParsedArgs {
  const globals: Flags = {};
  let i = 0;
  for (; i < argv.length && argv[i]!.startsWith('-') && argv[i] !== '-'; i++) i = readFlag(argv, i, globals, GLOBAL_FLAGS);
  const verb = argv[i++];
  const command = COMMANDS.find((c) => c.name === verb);
  const flags: Flags = {};
  const positional: string[] = [];
  if (!command) return { globals, verb, flags, positional: argv.slice(i) };
  const specs = [...command.flags, HELP];
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') { positional.push(...argv.slice(i + 1)); break; }
    if (command.argsAfterId && positional.length > 0) { positional.push(...argv.slice(i)); break; }
    // A negative number (`kill ID -9`) is an argument, as before.
    if (arg.startsWith('-') && arg !== '-' && !/^-\d+$/.test(arg)) i = readFlag(argv, i, flags, specs);
    else positional.push(arg);
  }
  return { globals, verb, command, flags, positional };
}

function readFlag(argv: string[], i: number, into: Flags, specs: FlagSpec[]): number {
  const arg = argv[i]!.replace(/^--?/, '');
  const eq = arg.indexOf('=');
  const name = eq >= 0 ? arg.slice(0, eq) : arg;
  const spec = specs.find((s) => s.names.includes(name));
  if (!spec) throw errInvalidArgument(`flag provided but not defined: -${name}`);
  const key = spec.names[0]!;
  if (!spec.value) {
    const text = eq >= 0 ? arg.slice(eq + 1) : 'true';
    if (text !== 'true' && text !== 'false') throw errInvalidArgument(`invalid boolean value ${JSON.stringify(text)} for -${name}`);
    into[key] = text === 'true';
    return i;
  }
  let value: string | undefined;
  if (eq >= 0) value = arg.slice(eq + 1);
  else { value = argv[i + 1]; i++; }
  if (value === undefined) throw errInvalidArgument(`flag needs an argument: -${name}`);
  into[key] = spec.repeat ? [...((into[key] as string[] | undefined) ?? []), value] : value;
  return i;
}

/** An integer flag's value (Go's strconv rules: an optional sign, decimal digits). */
export function intFlag(flags: Flags, key: string): number | undefined {
  const v = flags[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^[+-]?\d+$/.test(v)) throw errInvalidArgument(`invalid value ${JSON.stringify(v)} for flag -${key}: not an integer`);
  return Number(v);
}

export const str = (flags: Flags, key: string): string | undefined => flags[key] as string | undefined;
export const list = (flags: Flags, key: string): string[] => (flags[key] as string[] | undefined) ?? [];
