// The few syscalls Node lacks that berth calls from TypeScript (mount, umount2, fcntl, memfd), through ffi-rs,
// loaded on first use (mkfifo and spawn are in sys-addon.ts). Each throws an Error with `code` set to the errno name.
import { createRequire } from 'node:module';
import { closeSync, writeSync } from 'node:fs';
import { constants } from 'node:os';

type Ffi = typeof import('ffi-rs');
let ffi: Ffi | undefined;

/** ffi-rs with libc opened: for callers that need more than the functions below (bpf). */
export function libc(): Ffi {
  if (!ffi) {
    ffi = createRequire(import.meta.url)('ffi-rs') as Ffi;
    ffi.open({ library: 'libc', path: '' });
  }
  return ffi;
}

const errnoNames = new Map(Object.entries(constants.errno).map(([k, v]) => [v, k]));

function fail(call: string, what: string): never {
  const { load, DataType, createExternalBuffer } = libc();
  const p = load({ library: 'libc', funcName: '__errno_location', retType: DataType.External, paramsType: [], paramsValue: [] });
  const errno = createExternalBuffer(p as never, 4).readInt32LE(0);
  const code = errnoNames.get(errno) ?? `E${errno}`;
  throw Object.assign(new Error(`${call} ${what}: ${code}`), { code, errno });
}

function call(funcName: string, paramsType: unknown[], paramsValue: unknown[]): number {
  const { load, DataType } = libc();
  return load({ library: 'libc', funcName, retType: DataType.I32, paramsType: paramsType as never, paramsValue: paramsValue as never }) as number;
}

export function mount(source: string, target: string, fstype: string, flags: number, data: string): void {
  const { DataType } = libc();
  if (call('mount', [DataType.String, DataType.String, DataType.String, DataType.I64, DataType.String], [source, target, fstype, flags, data]) !== 0) {
    fail('mount', `${source} on ${target} (${fstype})`);
  }
}

export function umount2(target: string, flags: number): void {
  const { DataType } = libc();
  if (call('umount2', [DataType.String, DataType.I32], [target, flags]) !== 0) fail('umount', target);
}

/** mount(2) flag bits by option name. */
export const MS = {
  ro: 1, nosuid: 2, nodev: 4, noexec: 8, sync: 16, remount: 32, noatime: 1024, nodiratime: 2048, bind: 4096,
  rec: 16384, unbindable: 1 << 17, private: 1 << 18, slave: 1 << 19, shared: 1 << 20, relatime: 1 << 21, strictatime: 1 << 24,
} as const;

/** Clears O_NONBLOCK on an open file description (one a child process will inherit and read blocking). */
export function setBlocking(fd: number): void {
  const { DataType } = libc();
  const [F_GETFL, F_SETFL, O_NONBLOCK] = [3, 4, 0o4000];
  const types = [DataType.I32, DataType.I32, DataType.I32];
  const flags = call('fcntl', types, [fd, F_GETFL, 0]);
  if (flags < 0 || call('fcntl', types, [fd, F_SETFL, flags & ~O_NONBLOCK]) < 0) fail('fcntl', `fd ${fd}`);
}

/**
 * A sealed, anonymous in-memory copy of the file at `path` (memfd, no further writes possible), as an fd of this
 * process. A binary run from it cannot be overwritten through /proc/<pid>/exe (CVE-2019-5736).
 */
export function sealedCopy(path: string, data: Buffer): number {
  const { DataType } = libc();
  const [MFD_CLOEXEC, MFD_ALLOW_SEALING] = [1, 2];
  const [F_ADD_SEALS, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE] = [1033, 1, 2, 4, 8];
  const fd = call('memfd_create', [DataType.String, DataType.I32], [path.split('/').pop()!, MFD_CLOEXEC | MFD_ALLOW_SEALING]);
  if (fd < 0) fail('memfd_create', path);
  for (let off = 0; off < data.length;) off += writeSync(fd, data, off);
  if (call('fcntl', [DataType.I32, DataType.I32, DataType.I32], [fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE]) < 0) {
    closeSync(fd);
    fail('sealing', path);
  }
  return fd;
}
