// The few file syscalls layer application needs that Node lacks (mknod, lsetxattr), through ffi-rs, loaded
// on first use.
import { createRequire } from 'node:module';
import { errInternal } from '../../api/errdefs.ts';

type Ffi = typeof import('ffi-rs');
let ffi: Ffi | undefined;

function lib(): Ffi {
  if (!ffi) {
    ffi = createRequire(import.meta.url)('ffi-rs') as Ffi;
    ffi.open({ library: 'libc', path: '' });
  }
  return ffi;
}

function errno(): number {
  const { load, DataType } = lib();
  const p = load({ library: 'libc', funcName: '__errno_location', retType: DataType.External, paramsType: [], paramsValue: [] });
  return (lib().createExternalBuffer(p as never, 4)).readInt32LE(0);
}

export function mknod(path: string, mode: number, major: number, minor: number): void {
  const { load, DataType } = lib();
  const dev = ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & ~0xff) << 12) | ((major & ~0xfff) * 2 ** 32);
  const r = load({ library: 'libc', funcName: 'mknod', retType: DataType.I32, paramsType: [DataType.String, DataType.I32, DataType.I64], paramsValue: [path, mode, dev] }) as number;
  if (r !== 0) throw errInternal(`mknod ${path}: errno ${errno()}`);
}

export function lsetxattr(path: string, name: string, value: Buffer): void {
  const { load, DataType } = lib();
  const r = load({
    library: 'libc', funcName: 'lsetxattr', retType: DataType.I32,
    paramsType: [DataType.String, DataType.String, DataType.U8Array, DataType.I64, DataType.I32], paramsValue: [path, name, value, value.length, 0],
  }) as number;
  if (r !== 0) throw errInternal(`lsetxattr ${path} ${name}: errno ${errno()}`);
}
