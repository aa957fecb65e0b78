// A cpio "newc" archive written entry by entry: the format the kernel unpacks as an initramfs.
import { closeSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export class Cpio {
  private readonly fd: number;
  private ino = 1;
  constructor(path: string) { this.fd = openSync(path, 'w'); }
  private entry(name: string, mode: number, data: Buffer, rdev: [number, number] = [0, 0]): void {
    const hex = (n: number) => n.toString(16).padStart(8, '0');
    const nameBuf = Buffer.from(`${name}\0`);
    const fields = [this.ino++, mode, 0, 0, 1, 0, data.length, 0, 0, rdev[0], rdev[1], nameBuf.length, 0];
    const header = Buffer.from(`070701${fields.map(hex).join('')}`);
    const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
    writeSync(this.fd, Buffer.concat([header, nameBuf, pad(header.length + nameBuf.length)]));
    writeSync(this.fd, data);
    writeSync(this.fd, pad(data.length));
  }
  dir(name: string): void { this.entry(name, 0o040755, Buffer.alloc(0)); }
  file(name: string, data: Buffer, mode = 0o755): void { this.entry(name, 0o100000 | mode, data); }
  symlink(name: string, target: string): void { this.entry(name, 0o120777, Buffer.from(target)); }
  charDevice(name: string, major: number, minor: number, mode = 0o600): void { this.entry(name, 0o020000 | mode, Buffer.alloc(0), [major, minor]); }
  /** Copies a host file (following symlinks) to the same path in the archive. */
  copy(hostPath: string, name = hostPath.replace(/^\//, '')): void { this.file(name, readFileSync(hostPath)); }
  /** Copies a host directory tree. */
  tree(hostDir: string, name: string): void {
    this.dir(name);
    for (const e of readdirSync(hostDir)) {
      const src = join(hostDir, e);
      const st = lstatSync(src);
      if (st.isDirectory()) this.tree(src, `${name}/${e}`);
      else if (st.isSymbolicLink()) this.symlink(`${name}/${e}`, readlinkSync(src));
      else this.file(`${name}/${e}`, readFileSync(src), st.mode & 0o777);
    }
  }
  close(): void {
    this.entry('TRAILER!!!', 0, Buffer.alloc(0));
    closeSync(this.fd);
  }
}
