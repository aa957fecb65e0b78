// Per-container state under the runtime root (default /run/berth-runc/<id>/state.json), written atomically,
// and the status derived from it and from the live process.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errAlreadyExists, errInvalidArgument, errNotFound } from '../../api/errdefs.ts';
import type { State } from '../oci/spec.ts';
import { processStartTime } from '../proc.ts';

export const DEFAULT_ROOT = '/run/berth-runc';

export interface ContainerRecord {
  id: string;
  bundle: string;
  rootfs: string;
  pid: number;
  /** Start time of `pid` (clock ticks since boot), so a reused pid is never taken for the container. */
  pidStartTime: string;
  cgroupsPath: string;
  created: string;
  annotations?: Record<string, string>;
  ociVersion: string;
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_+.-]*$/;

export function checkId(id: string | undefined): string {
  if (!id) throw errInvalidArgument('a container id is required');
  if (!ID_PATTERN.test(id) || id.length > 1024) throw errInvalidArgument(`invalid container id ${JSON.stringify(id)}: use letters, digits, and _ + . -`);
  return id;
}

export class StateStore {
  constructor(readonly root: string = DEFAULT_ROOT) {}

  dir(id: string): string { return join(this.root, checkId(id)); }
  execFifo(id: string): string { return join(this.dir(id), 'exec.fifo'); }

  /** Claims the id: its directory is created exclusively, so two creates of one id cannot both win. */
  claim(id: string): string {
    mkdirSync(this.root, { recursive: true, mode: 0o711 });
    const dir = this.dir(id);
    try { mkdirSync(dir, { mode: 0o711 }); } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw errAlreadyExists(`container ${id} already exists`);
      throw err;
    }
    return dir;
  }

  write(record: ContainerRecord): void {
    const path = join(this.dir(record.id), 'state.json');
    writeFileSync(path + '.tmp', JSON.stringify(record));
    renameSync(path + '.tmp', path);
  }

  read(id: string): ContainerRecord {
    try {
      return JSON.parse(readFileSync(join(this.dir(id), 'state.json'), 'utf8')) as ContainerRecord;
    } catch {
      throw errNotFound(`container ${id} does not exist`);
    }
  }

  ids(): string[] {
    try {
      return readdirSync(this.root).filter((id) => ID_PATTERN.test(id) && existsSync(join(this.root, id, 'state.json'))).sort();
    } catch { return []; }
  }
}

export function isAlive(record: ContainerRecord): boolean {
  return record.pid > 0 && processStartTime(record.pid) === record.pidStartTime;
}

export function toState(record: ContainerRecord, status: State['status']): State & Record<string, unknown> {
  return {
    ociVersion: record.ociVersion,
    id: record.id,
    pid: status === 'stopped' ? 0 : record.pid,
    status,
    bundle: record.bundle,
    rootfs: record.rootfs,
    created: record.created,
    annotations: record.annotations ?? {},
  };
}
