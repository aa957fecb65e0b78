// berth: the operator's CLI, ctr's verbs and flags over containerd's API, so it drives berthd or containerd.
// Global flags: -a/--address, -n/--namespace, --timeout, --debug; environment BERTH_ADDRESS, BERTH_NAMESPACE
// (CONTAINERD_ADDRESS, CONTAINERD_NAMESPACE honoured too). Errors print as one line; --debug adds the stack.
import { BerthError, ErrorCode, codeOf } from '../api/errdefs.ts';
import { ApiClient } from '../api/grpc-client.ts';
import { allCommands, canonicalGroup, commandHelp, findCommand, groupCommands, parseFlags, type CliContext, type FlagSpec } from './command.ts';
import { stdoutOutput } from './output.ts';
import './commands/index.ts';

const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'address', alias: 'a', type: 'string', usage: 'berthd (or containerd) socket [$BERTH_ADDRESS]' },
  { name: 'namespace', alias: 'n', type: 'string', usage: 'namespace [$BERTH_NAMESPACE]' },
  { name: 'timeout', type: 'string', usage: 'per-call timeout, e.g. 10s (default none)' },
  { name: 'debug', type: 'bool', usage: 'print stack traces and debug details' },
  { name: 'help', alias: 'h', type: 'bool', usage: 'show help' },
  { name: 'version', alias: 'v', type: 'bool', usage: 'print the client version' },
];

export const DEFAULT_ADDRESS = '/run/berth/berthd.sock';

function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s);
  if (!m) throw new BerthError(ErrorCode.InvalidArgument, `invalid --timeout ${JSON.stringify(s)}: want e.g. 500ms, 10s, 2m`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
}

function usage(): string {
  const groups = new Map<string, string>();
  for (const c of allCommands()) if (!groups.has(c.path[0]!)) groups.set(c.path[0]!, c.path.length === 1 ? c.summary : '');
  const lines = ['usage: berth [global flags] <command> [flags] [args]', '', 'commands:'];
  for (const [g, summary] of [...groups].sort()) lines.push(`  ${g.padEnd(12)}${summary || `manage ${g}`}`);
  lines.push('', 'global flags:');
  for (const f of GLOBAL_FLAGS) lines.push(`  --${f.name}${f.alias ? `, -${f.alias}` : ''}`.padEnd(22) + f.usage);
  lines.push('', 'Run "berth <command> --help" for a command\'s flags.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  // Global flags come before the command.
  let i = 0;
  while (i < argv.length && argv[i]!.startsWith('-')) {
    const spec = GLOBAL_FLAGS.find((f) => `--${f.name}` === argv[i]!.split('=')[0] || `-${f.alias}` === argv[i]!.split('=')[0]);
    i += spec && spec.type !== 'bool' && !argv[i]!.includes('=') ? 2 : 1;
  }
  const { flags: globals } = parseFlags(GLOBAL_FLAGS, argv.slice(0, i));
  const out = stdoutOutput();
  const rest = argv.slice(i);
  if (globals.version) { out.line('berth v0.1.0'); return 0; }
  const found = findCommand(rest);
  if (!found) {
    const group = rest[0] && groupCommands(canonicalGroup(rest[0])!);
    if (group && group.length) {
      out.line(`usage: berth ${canonicalGroup(rest[0])} <command>\n\ncommands:\n` + group.map((c) => `  ${[c.path.at(-1), ...(c.aliases ?? [])].join(', ').padEnd(26)}${c.summary}`).join('\n'));
      return rest.length > 1 && !['--help', '-h'].includes(rest[1]!) ? 1 : 0;
    }
    out.line(usage());
    if (rest.length && !globals.help) { out.error(`berth: unknown command ${JSON.stringify(rest.join(' '))}`); return 1; }
    return 0;
  }
  const { command } = found;
  if (found.rest.includes('--help') || found.rest.includes('-h')) {
    const passIdx = command.passThroughAfter;
    const before = passIdx === undefined ? found.rest : found.rest.slice(0, found.rest.findIndex((a) => !a.startsWith('-')) + 1 || found.rest.length);
    if (before.includes('--help') || before.includes('-h')) { out.line(commandHelp(command)); return 0; }
  }
  const { flags, args } = parseFlags(command.flags ?? [], found.rest, command.passThroughAfter);
  const address = (globals.address as string | undefined) ?? process.env.BERTH_ADDRESS ?? process.env.CONTAINERD_ADDRESS ?? DEFAULT_ADDRESS;
  const namespace = (globals.namespace as string | undefined) ?? process.env.BERTH_NAMESPACE ?? process.env.CONTAINERD_NAMESPACE ?? 'default';
  const timeoutMs = globals.timeout ? parseDuration(globals.timeout as string) : undefined;
  let client: ApiClient | undefined;
  const ctx: CliContext = {
    address, namespace, timeoutMs, debug: !!globals.debug, out,
    client: () => (client ??= new ApiClient(address, { namespace, ...(timeoutMs ? { timeoutMs } : {}) })),
  };
  try {
    return (await command.run(ctx, flags, args)) ?? 0;
  } finally {
    client?.close();
  }
}

function describe(err: unknown, argv: string[]): string {
  const e = err as Error;
  if (codeOf(err) === ErrorCode.Unavailable && /connect|No connection/.test(e.message)) {
    return `cannot reach the daemon: ${e.message.replace(/^No connection established\. Last error: (Error: )?/, '').replace(/\. Resolution note:.*$/, '')} (is berthd running? set --address or $BERTH_ADDRESS)`;
  }
  if (err instanceof BerthError || codeOf(err) !== ErrorCode.Unknown) return e.message;
  return argv.includes('--debug') ? String(e?.stack ?? e) : (e?.message ?? String(err));
}

/** Runs the CLI on `argv` and exits with its code once our output is flushed: not waiting for the event loop
 * to drain (the HTTP/2 session's goodbye, the thread pool winding down) saves ~10 ms a command. */
export function runCli(argv: string[]): void {
  const exit = (code: number) => process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
  main(argv).then(
    exit,
    (err) => {
      process.stderr.write(`berth: ${describe(err, argv)}\n`);
      if (argv.includes('--debug') && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
      exit(1);
    },
  );
}
