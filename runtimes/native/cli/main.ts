// berth-runc: a runc-compatible OCI runtime CLI over runtimes/native. Errors are one line on stderr and a
// non-zero exit, as runc's.
import { appendFileSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { codeOf } from '../../../api/errdefs.ts';
import { errInvalidArgument, errNotImplemented } from '../../../api/errdefs.ts';
import { Runtime } from '../container.ts';
import { toState } from '../state.ts';
import { loadBundle } from '../../oci/validate.ts';
import type { Process } from '../../oci/spec.ts';
import { parseArgs } from './args.ts';
import { execWithTerminal, runWithTerminal } from './foreground-tty.ts';
import { defaultSpec, features } from './spec-default.ts';

async function main(argv: string[]): Promise<number> {
  const { globals, verb, flags, positional } = parseArgs(argv);
  if (globals['systemd-cgroup']) throw errNotImplemented('--systemd-cgroup: berth-runc has no systemd cgroup driver');
  logFile = globals.log as string | undefined;
  logJson = globals['log-format'] === 'json';
  const runtime = new Runtime(globals.root as string | undefined);
  const id = positional[0];
  const bundle = (flags.bundle ?? flags.b ?? '.') as string;
  const createOpts = {
    bundle, pidFile: flags['pid-file'] as string | undefined, noPivot: !!flags['no-pivot'],
    preserveFds: flags['preserve-fds'] ? Number(flags['preserve-fds']) : 0,
    consoleSocket: flags['console-socket'] as string | undefined,
  };
  switch (verb) {
    case 'create':
      await runtime.create(need(id), createOpts);
      return 0;
    case 'start':
      await runtime.start(need(id));
      return 0;
    case 'run': {
      if (flags.detach || flags.d) {
        await runtime.create(need(id), createOpts);
        await runtime.start(id!);
        return 0;
      }
      if (!createOpts.consoleSocket && loadBundle(bundle).spec.process?.terminal) {
        const status = await runWithTerminal(runtime, need(id), createOpts);
        await runtime.delete(id!, true);
        return status;
      }
      const { exited } = await runtime.create(need(id), createOpts, 'run');
      const status = await exited!;
      await runtime.delete(id!, true);
      return status;
    }
    case 'state':
      process.stdout.write(JSON.stringify(runtime.state(need(id)), null, 2) + '\n');
      return 0;
    case 'kill':
      runtime.kill(need(id), positional[1] ?? 'SIGTERM', !!(flags.all ?? flags.a));
      return 0;
    case 'delete':
      await runtime.delete(need(id), !!(flags.force ?? flags.f));
      return 0;
    case 'pause':
      await runtime.pause(need(id));
      return 0;
    case 'resume':
      await runtime.resume(need(id));
      return 0;
    case 'list': {
      const states = runtime.store.ids().map((cid) => { const r = runtime.store.read(cid); return toState(r, runtime.status(r)); });
      if (flags.q || flags.quiet) process.stdout.write(states.map((s) => s.id + '\n').join(''));
      else if (flags.format === 'json' || flags.f === 'json') process.stdout.write(JSON.stringify(states) + '\n');
      else {
        const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED'], ...states.map((s) => [s.id, String(s.pid), s.status, s.bundle, String(s.created)])];
        const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
        process.stdout.write(rows.map((r) => r.map((c, i) => c.padEnd(widths[i]! + 2)).join('').trimEnd() + '\n').join(''));
      }
      return 0;
    }
    case 'ps': {
      const record = runtime.store.read(need(id));
      const pids = runtime.cgroup(record).pids();
      if (flags.format === 'json' || flags.f === 'json') process.stdout.write(JSON.stringify(pids) + '\n');
      else {
        process.stdout.write('PID     CMD\n');
        for (const pid of pids) {
          let cmd = '';
          try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim(); } catch { /* exited */ }
          process.stdout.write(`${String(pid).padEnd(8)}${cmd}\n`);
        }
      }
      return 0;
    }
    case 'events': {
      const record = runtime.store.read(need(id));
      const once = () => process.stdout.write(JSON.stringify({ type: 'stats', id, data: runtime.cgroup(record).stats() }) + '\n');
      if (flags.stats) { once(); return 0; }
      const interval = parseDuration((flags.interval as string) ?? '5s');
      for (;;) { once(); await new Promise((r) => setTimeout(r, interval)); }
    }
    case 'update': {
      const record = runtime.store.read(need(id));
      const resources = flags.r ?? flags.resources
        ? JSON.parse(readFileSync(String(flags.r ?? flags.resources) === '-' ? 0 : String(flags.r ?? flags.resources), 'utf8'))
        : resourcesFromFlags(flags);
      runtime.cgroup(record).update(resources);
      return 0;
    }
    case 'spec': {
      const path = `${bundle}/config.json`;
      if (existsSync(path)) throw errInvalidArgument(`${path} already exists; remove it first`);
      writeFileSync(path, JSON.stringify(defaultSpec(), null, '\t') + '\n');
      return 0;
    }
    case 'features':
      process.stdout.write(JSON.stringify(features(), null, 2) + '\n');
      return 0;
    case 'exec': {
      const record = runtime.store.read(need(id));
      const proc = execProcess(flags, positional.slice(1), record.bundle);
      if (proc.terminal && !flags['console-socket'] && !(flags.detach ?? flags.d)) {
        return execWithTerminal(runtime, id!, proc, { pidFile: flags['pid-file'] as string | undefined, preserveFds: flags['preserve-fds'] ? Number(flags['preserve-fds']) : 0 });
      }
      const status = await runtime.exec(id!, proc, {
        detach: !!(flags.detach ?? flags.d), pidFile: flags['pid-file'] as string | undefined,
        preserveFds: flags['preserve-fds'] ? Number(flags['preserve-fds']) : 0, consoleSocket: flags['console-socket'] as string | undefined,
      });
      return status ?? 0;
    }
    default:
      throw errInvalidArgument(verb ? `unknown command ${JSON.stringify(verb)}` : USAGE);
  }
}

const USAGE = 'usage: berth-runc [--root DIR] [--log FILE] [--log-format text|json] COMMAND [FLAGS] ID\n' +
  'commands: create start run exec state kill delete pause resume list ps events update spec features';

/** The exec'd process: --process JSON, or the container's own process with the command and flags applied. */
function execProcess(flags: Record<string, unknown>, command: string[], bundle: string): Process {
  const file = (flags.process ?? flags.p) as string | undefined;
  if (file) return JSON.parse(readFileSync(file, 'utf8')) as Process;
  if (command.length === 0) throw errInvalidArgument('exec: a command (or --process FILE) is required');
  const base = loadBundle(bundle).spec.process!;
  const proc: Process = { ...base, args: command, terminal: !!(flags.tty || flags.t), user: { ...base.user } };
  const user = (flags.user ?? flags.u) as string | undefined;
  if (user) {
    const [uid, gid] = user.split(':');
    proc.user = { uid: Number(uid), gid: Number(gid ?? 0) };
  }
  const gids = (flags['additional-gids'] ?? flags.g) as string[] | undefined;
  if (gids) proc.user.additionalGids = gids.map(Number);
  if (flags.cwd) proc.cwd = flags.cwd as string;
  const env = [...((flags.env as string[]) ?? []), ...((flags.e as string[]) ?? [])];
  if (env.length) proc.env = [...(base.env ?? []), ...env];
  const caps = flags.cap as string[] | undefined;
  if (caps) {
    const add = (set?: string[]) => [...new Set([...(set ?? []), ...caps])];
    proc.capabilities = { ...base.capabilities, bounding: add(base.capabilities?.bounding), effective: add(base.capabilities?.effective), permitted: add(base.capabilities?.permitted) };
  }
  if (flags['no-new-privs']) proc.noNewPrivileges = true;
  return proc;
}

function need(id: string | undefined): string {
  if (!id) throw errInvalidArgument('a container id is required');
  return id;
}

function parseDuration(s: string): number {
  const m = /^(\d+)(ms|s|m)?$/.exec(s);
  if (!m) throw errInvalidArgument(`--interval: bad duration ${JSON.stringify(s)}`);
  return Number(m[1]) * ({ ms: 1, s: 1000, m: 60000 }[m[2] ?? 's'] ?? 1000);
}

function resourcesFromFlags(flags: Record<string, unknown>): Record<string, unknown> {
  const num = (k: string) => (flags[k] === undefined ? undefined : Number(flags[k]));
  return {
    memory: { limit: num('memory'), swap: num('memory-swap'), reservation: num('memory-reservation') },
    cpu: { shares: num('cpu-shares'), quota: num('cpu-quota'), period: num('cpu-period'), cpus: flags['cpuset-cpus'] as string | undefined, mems: flags['cpuset-mems'] as string | undefined },
    pids: flags['pids-limit'] === undefined ? undefined : { limit: num('pids-limit') },
  };
}

let logFile: string | undefined;
let logJson = false;

function report(err: unknown): void {
  const message = (err as Error).message ?? String(err);
  process.stderr.write(`berth-runc: ${message}\n`);
  if (logFile) {
    const line = logJson ? JSON.stringify({ level: 'error', msg: message, code: codeOf(err), time: new Date().toISOString() }) : `level=error msg=${JSON.stringify(message)}`;
    try { appendFileSync(logFile, line + '\n'); } catch { /* the log is best effort */ }
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err) => { report(err); process.exitCode = 1; });
