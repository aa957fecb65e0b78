// The process `exec` runs, as runc builds it: --process JSON as given (a missing user or uid/gid is 0, as in
// Go's zero values), or the container's own process from its config.json with the command and flags applied.
import { readFileSync } from 'node:fs';
import { errInvalidArgument } from '../../../api/errdefs.ts';
import type { Process } from '../../oci/spec.ts';
import { loadBundle } from '../../oci/validate.ts';
import { list, str, type Flags } from './args.ts';

export function execProcess(flags: Flags, command: string[], bundle: string): Process {
  const file = str(flags, 'process');
  if (file) {
    let proc: Process;
    try { proc = JSON.parse(readFileSync(file, 'utf8')) as Process; } catch (err) {
      throw errInvalidArgument(`--process ${file}: ${(err as Error).message}`);
    }
    proc.user = { ...proc.user, uid: proc.user?.uid ?? 0, gid: proc.user?.gid ?? 0 };
    return proc;
  }
  if (command.length === 0) throw errInvalidArgument('process args cannot be empty');
  const base = loadBundle(bundle).spec.process!;
  const proc: Process = { ...base, args: command, terminal: !!flags.tty, user: { ...base.user } };
  const user = str(flags, 'user');
  if (user) {
    const [uid, gid] = user.split(':', 2) as [string, string | undefined];
    if (gid !== undefined) proc.user.gid = parseId(gid, 'gid');
    proc.user.uid = parseId(uid, 'uid');
  }
  for (const gid of list(flags, 'additional-gids')) {
    const n = Number(gid);
    if (!/^-?\d+$/.test(gid) || n < 0) throw errInvalidArgument(`additional-gids must be a positive number ${gid}`);
    proc.user.additionalGids = [...(proc.user.additionalGids ?? []), n];
  }
  if (str(flags, 'cwd')) proc.cwd = str(flags, 'cwd')!;
  const env = list(flags, 'env');
  if (env.length) proc.env = [...(base.env ?? []), ...env];
  const caps = list(flags, 'cap');
  if (caps.length) {
    const add = (set?: string[]) => [...(set ?? []), ...caps];
    const c = base.capabilities ?? {};
    proc.capabilities = { ...c, bounding: add(c.bounding), effective: add(c.effective), permitted: add(c.permitted), ambient: add(c.ambient) };
  }
  if (flags['no-new-privs'] !== undefined) proc.noNewPrivileges = !!flags['no-new-privs'];
  return proc;
}

function parseId(text: string, what: string): number {
  if (!/^\d+$/.test(text)) throw errInvalidArgument(`parsing ${text} as int for ${what} failed`);
  return Number(text);
}

/** --cgroup values: `PATH` alone (every controller), or `CONTROLLER[,CONTROLLER]:PATH`, as runc takes them. */
export function subCgroupPaths(values: string[]): Map<string, string> | undefined {
  if (values.length === 0) return undefined;
  const paths = new Map<string, string>();
  for (const v of values) {
    const parts = v.split(':');
    if (parts.length > 2) throw errInvalidArgument(`invalid --cgroup argument: ${v}`);
    if (parts.length === 1) {
      if (values.length !== 1) throw errInvalidArgument(`invalid --cgroup argument: ${v} (missing <controller>: prefix)`);
      paths.set('', v);
    } else {
      for (const controller of parts[0]!.split(',')) paths.set(controller, parts[1]!);
    }
  }
  return paths;
}
