// berth-runc: a runc-compatible OCI runtime CLI over runtimes/native. As runc 1.1.5: errors are logged (logrus
// format, see log.ts) and exit 1; exec's own failures exit 255; `help`/`-h` and `--version` print and exit 0.
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError, ErrorCode, errInvalidArgument, errNotImplemented } from '../../../api/errdefs.ts';
import { Runtime } from '../container.ts';
import { toState } from '../state.ts';
import { loadBundle } from '../../oci/validate.ts';
import { COMMANDS, intFlag, list, parseArgs, str, type CommandSpec } from './args.ts';
import { events } from './events.ts';
import { execProcess, subCgroupPaths } from './exec-process.ts';
import { execWithTerminal, runWithTerminal } from './foreground-tty.ts';
import { commandHelp, globalHelp, versionText } from './help.ts';
import { configureLog, debug, fatal, warn } from './log.ts';
import { psTable } from './ps.ts';
import { defaultSpec, features, rootlessSpec } from './spec-default.ts';
import { resourcesForUpdate } from './update.ts';

/** Thrown for exec's own failures, which exit 255 so they differ from the exit status of the process run. */
class ExecFailed extends Error {}

async function main(argv: string[]): Promise<number> {
  const { globals, verb, command, flags, positional } = parseArgs(argv);
  configureLog({ file: str(globals, 'log'), format: str(globals, 'log-format'), debug: !!globals.debug });
  if (globals.version) { process.stdout.write(versionText()); return 0; }
  if (verb === 'help' || (verb === undefined && globals.help)) return help(positional[0]);
  if (verb === undefined) { process.stdout.write(globalHelp()); return 0; }
  if (!command) throw errInvalidArgument(`No help topic for '${verb}'`);
  if (flags.help) { process.stdout.write(commandHelp(command)); return 0; }
  if (globals['systemd-cgroup']) throw errNotImplemented('--systemd-cgroup: berth-runc has no systemd cgroup driver');
  checkArgCount(command, positional.length);
  debug(`berth-runc ${verb} ${positional.join(' ')}`.trimEnd());
  const runtime = new Runtime(str(globals, 'root'));
  const id = positional[0]!;
  const bundle = str(flags, 'bundle') || '.';
  const createOpts = {
    bundle, pidFile: str(flags, 'pid-file'), noPivot: !!flags['no-pivot'], preserveFds: intFlag(flags, 'preserve-fds') ?? 0,
    consoleSocket: str(flags, 'console-socket'), onWarning: warn, ...(globals.debug ? { onDebug: debug } : {}),
  };
  switch (verb) {
    case 'create':
      await runtime.create(id, createOpts);
      return 0;
    case 'start':
      await runtime.start(id);
      return 0;
    case 'run': {
      if (flags.detach) {
        await runtime.create(id, createOpts);
        await runtime.start(id);
        return 0;
      }
      let status: number;
      if (!createOpts.consoleSocket && loadBundle(bundle).spec.process?.terminal) status = await runWithTerminal(runtime, id, createOpts);
      else status = await (await runtime.create(id, createOpts, 'run')).exited!;
      if (!flags.keep) await runtime.delete(id, true);
      return status;
    }
    case 'state':
      process.stdout.write(JSON.stringify(runcState(runtime.state(id)), null, 2));
      return 0;
    case 'kill':
      await runtime.kill(id, positional[1] ?? 'SIGTERM', !!flags.all);
      return 0;
    case 'delete':
      return deleteContainer(runtime, id, !!flags.force);
    case 'pause':
      await runtime.pause(id);
      return 0;
    case 'resume':
      await runtime.resume(id);
      return 0;
    case 'list':
      listContainers(runtime, str(flags, 'format') ?? 'table', !!flags.quiet);
      return 0;
    case 'ps': {
      const format = str(flags, 'format') ?? 'table';
      if (format !== 'table' && format !== 'json') throw errInvalidArgument('invalid format option');
      const pids = runtime.cgroup(runtime.store.read(id)).pids();
      process.stdout.write(format === 'json' ? JSON.stringify(pids) + '\n' : psTable(pids, positional.slice(1)));
      return 0;
    }
    case 'events': {
      const record = runtime.store.read(id);
      await events(id, runtime.cgroup(record), { stats: !!flags.stats, interval: str(flags, 'interval') ?? '5s', stopped: runtime.status(record) === 'stopped' });
      return 0;
    }
    case 'update':
      runtime.cgroup(runtime.store.read(id)).update(resourcesForUpdate(flags));
      return 0;
    case 'spec': {
      const path = join(bundle, 'config.json');
      if (existsSync(path)) throw errInvalidArgument(`File ${path} exists. Remove it first`);
      writeFileSync(path, JSON.stringify(flags.rootless ? rootlessSpec() : defaultSpec(), null, '\t'), { mode: 0o666 });
      return 0;
    }
    case 'features':
      process.stdout.write(JSON.stringify(features(), null, 2) + '\n');
      return 0;
    case 'exec':
      try {
        return await exec(runtime, id, positional.slice(1), flags);
      } catch (err) {
        throw new ExecFailed(`exec failed: ${(err as Error).message}`);
      }
    default:
      throw errNotImplemented(`${verb}: checkpoint and restore are not supported by berth-runc`);
  }
}

function help(topic: string | undefined): number {
  if (topic === undefined) { process.stdout.write(globalHelp()); return 0; }
  const command = COMMANDS.find((c) => c.name === topic);
  if (!command) throw errInvalidArgument(`No help topic for '${topic}'`);
  process.stdout.write(commandHelp(command));
  return 0;
}

/** runc's argument counts: list, spec and features take none, kill one or two, exec and ps at least one. */
function checkArgCount(command: CommandSpec, n: number): void {
  const [min, max] = ({ list: [0, 0], spec: [0, 0], features: [0, 0], kill: [1, 2], exec: [1, Infinity], ps: [1, Infinity] } as Record<string, [number, number]>)[command.name] ?? [1, 1];
  if (n >= min && n <= max) return;
  process.stdout.write(`Incorrect Usage.\n\n${commandHelp(command)}`);
  const want = min === max ? `exactly ${min}` : n < min ? `a minimum of ${min}` : `a maximum of ${max}`;
  throw errInvalidArgument(`berth-runc: ${JSON.stringify(command.name)} requires ${want} argument(s)`);
}

async function exec(runtime: Runtime, id: string, command: string[], flags: ReturnType<typeof parseArgs>['flags']): Promise<number> {
  const record = runtime.store.read(id);
  if (!str(flags, 'process') && command.length === 0) throw errInvalidArgument('process args cannot be empty');
  if (str(flags, 'apparmor') || str(flags, 'process-label')) throw errNotImplemented('AppArmor and SELinux labels are not supported by berth-runc');
  const proc = execProcess(flags, command, record.bundle);
  const opts = {
    pidFile: str(flags, 'pid-file'), preserveFds: intFlag(flags, 'preserve-fds') ?? 0, ignorePaused: !!flags['ignore-paused'],
    subCgroups: subCgroupPaths(list(flags, 'cgroup')), onDebug: debug,
  };
  if (proc.terminal && !str(flags, 'console-socket') && !flags.detach) return execWithTerminal(runtime, id, proc, opts);
  const status = await runtime.exec(id, proc, { ...opts, detach: !!flags.detach, consoleSocket: str(flags, 'console-socket') });
  return status ?? 0;
}

/** As runc: a missing container is no error with --force (a directory left by an aborted create is removed). */
async function deleteContainer(runtime: Runtime, id: string, force: boolean): Promise<number> {
  try {
    await runtime.delete(id, force);
  } catch (err) {
    if (!(err instanceof BerthError) || err.code !== ErrorCode.NotFound) throw err;
    rmSync(runtime.store.dir(id), { recursive: true, force: true });
    if (!force) throw err;
  }
  return 0;
}

/** runc's state and list entries: the OCI state's fields in runc's order, annotations only when there are any, and an owner. */
function runcState(s: ReturnType<typeof toState>, owner = ''): Record<string, unknown> {
  const annotations = s.annotations && Object.keys(s.annotations).length ? { annotations: s.annotations } : {};
  return { ociVersion: s.ociVersion, id: s.id, pid: s.pid, status: s.status, bundle: s.bundle, rootfs: s.rootfs, created: s.created, ...annotations, owner };
}

function listContainers(runtime: Runtime, format: string, quiet: boolean): void {
  if (format !== 'table' && format !== 'json') throw errInvalidArgument(`invalid format option`);
  const states = runtime.store.ids().flatMap((cid) => {
    try { const r = runtime.store.read(cid); return [toState(r, runtime.status(r))]; } catch { return []; }
  });
  if (quiet) process.stdout.write(states.map((s) => s.id + '\n').join(''));
  else if (format === 'json') process.stdout.write(JSON.stringify(states.map((s) => runcState(s, 'root'))) + '\n');
  else {
    // A tab-aligned table as runc's (columns at least 12 wide, 3 spaces of padding).
    const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], ...states.map((s) => [s.id, String(s.pid), s.status, s.bundle, String(s.created), 'root'])];
    const widths = rows[0]!.map((_, i) => Math.max(12, ...rows.map((r) => r[i]!.length + 3)));
    process.stdout.write(rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('') + '\n').join(''));
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err) => {
  fatal((err as Error).message ?? String(err));
  process.exitCode = err instanceof ExecFailed ? 255 : 1;
});
