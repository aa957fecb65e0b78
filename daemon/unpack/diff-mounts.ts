// The walking differ (containerd's Diff.Diff): mounts `left` and `right` read-only, walks both trees side by
// side and writes, as an OCI layer tar, what turns left into right: entries added or changed in right (by type,
// mode, owner, size, mtime, link target), whiteouts (.wh.NAME) for what right no longer has, hardlinks for
// files right holds more than once. Entries come parents first, in name order, as containerd writes them.
import { lstatSync, readdirSync, readlinkSync, createReadStream, type Stats } from 'node:fs';
import { posix } from 'node:path';
import type { Writable } from 'node:stream';
import tar from 'tar-stream';
import { withTempMount } from '../../api/mounting.ts';
import type { Mount } from '../../api/mount.ts';

/** The same mounts, read-only: an overlay's upper directory becomes its top lower one (no second writer on it). */
export function readOnly(mounts: Mount[]): Mount[] {
  return mounts.map((m) => {
    if (m.type !== 'overlay') return { ...m, options: [...m.options.filter((o) => o !== 'rw'), 'ro'] };
    const upper = m.options.find((o) => o.startsWith('upperdir='))?.slice('upperdir='.length);
    const lower = m.options.find((o) => o.startsWith('lowerdir='))?.slice('lowerdir='.length);
    const rest = m.options.filter((o) => !/^(upperdir|workdir|lowerdir)=/.test(o) && o !== 'rw');
    const lowers = [upper, lower].filter(Boolean).join(':');
    // A single directory cannot be an overlay with no upper: bind it instead.
    if (!lowers.includes(':')) return { type: 'bind', source: lowers, target: m.target, options: ['rbind', 'ro'] };
    return { ...m, options: [...rest, `lowerdir=${lowers}`, 'ro'] };
  });
}

function sameEntry(a: Stats, b: Stats, dirA: string, dirB: string, name: string): boolean {
  if ((a.mode & 0o170000) !== (b.mode & 0o170000) || a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid) return false;
  if (a.isDirectory()) return true; // a directory's own change shows in its children
  if (a.size !== b.size || a.mtimeMs !== b.mtimeMs || a.rdev !== b.rdev) return false;
  if (a.isSymbolicLink()) return readlinkSync(posix.join(dirA, name)) === readlinkSync(posix.join(dirB, name));
  return true;
}

const list = (dir: string) => { try { return readdirSync(dir).sort(); } catch { return []; } };

/** Writes the layer tar that turns the tree of `left` into that of `right` to `out` (which it ends). */
export async function diffMounts(left: Mount[], right: Mount[], scratch: string, out: Writable): Promise<void> {
  await withTempMount(readOnly(left), scratch, (leftDir) => withTempMount(readOnly(right), scratch, async (rightDir) => {
    const pack = tar.pack();
    const done = new Promise<void>((resolve, reject) => {
      pack.on('error', reject);
      out.on('error', reject);
      out.on('finish', () => resolve());
    });
    pack.pipe(out);
    const seenInodes = new Map<string, string>();
    type Header = Parameters<tar.Pack['entry']>[0];
    const entry = (header: Header, data?: NodeJS.ReadableStream): Promise<void> => new Promise((resolve, reject) => {
      if (!data) { pack.entry(header, Buffer.alloc(0), (err) => (err ? reject(err) : resolve())); return; }
      const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
      data.on('error', (err) => { sink.destroy(err as Error); reject(err); });
      data.pipe(sink);
    });

    const emit = async (rel: string, st: Stats): Promise<void> => {
      const path = posix.join(rightDir, rel);
      const common = { name: rel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
      if (st.isDirectory()) return entry({ ...common, name: `${rel}/`, type: 'directory' });
      if (st.isSymbolicLink()) return entry({ ...common, type: 'symlink', linkname: readlinkSync(path) });
      if (st.isFile()) {
        const inode = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? seenInodes.get(inode) : undefined;
        if (first) return entry({ ...common, type: 'link', linkname: first });
        if (st.nlink > 1) seenInodes.set(inode, rel);
        return entry({ ...common, type: 'file', size: st.size }, createReadStream(path));
      }
      const type = st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'character-device' : st.isBlockDevice() ? 'block-device' : undefined;
      if (!type) return; // sockets have no place in a layer
      return entry({ ...common, type, devmajor: Math.floor(st.rdev / 256) & 0xfff, devminor: (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00) });
    };

    const walk = async (rel: string): Promise<void> => {
      const inLeft = new Set(list(posix.join(leftDir, rel)));
      const inRight = list(posix.join(rightDir, rel));
      const names = [...new Set([...inLeft, ...inRight])].sort();
      const right = new Set(inRight);
      for (const name of names) {
        const child = rel ? `${rel}/${name}` : name;
        if (!right.has(name)) {
          await entry({ name: rel ? `${rel}/.wh.${name}` : `.wh.${name}`, type: 'file', size: 0, mode: 0o644, mtime: new Date(0) });
          continue;
        }
        const st = lstatSync(posix.join(rightDir, child));
        const before = inLeft.has(name) ? lstatSync(posix.join(leftDir, child)) : undefined;
        const replaced = before && (before.mode & 0o170000) !== (st.mode & 0o170000);
        if (!before || replaced || !sameEntry(before, st, leftDir, rightDir, child)) await emit(child, st);
        if (st.isDirectory()) {
          // A directory that replaced something else, or is new, brings all it holds.
          if (!before || replaced) await walkAll(child);
          else await walk(child);
        }
      }
    };
    const walkAll = async (rel: string): Promise<void> => {
      for (const name of list(posix.join(rightDir, rel))) {
        const child = `${rel}/${name}`;
        const st = lstatSync(posix.join(rightDir, child));
        await emit(child, st);
        if (st.isDirectory()) await walkAll(child);
      }
    };

    await walk('');
    pack.finalize();
    await done;
  }));
}
