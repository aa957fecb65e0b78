// What overlayfs and native share: records in SnapshotStorage, one directory per snapshot under
// <root>/snapshots/<id>, removal by rename-then-delete (a crash leaves a directory Cleanup finds), walk with
// containerd's filters, usage by walking the snapshot's own files.
import { mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { removeTree } from '../api/remove-soon.ts';
import { join } from 'node:path';
import { fieldsAdaptor, parseFilters } from '../api/filters.ts';
import type { Mount } from '../api/mount.ts';
import { errFailedPrecondition } from '../api/errdefs.ts';
import { SnapshotStorage, type SnapshotRecord } from './storage.ts';
import type { SnapshotInfo, SnapshotOptions, Snapshotter, SnapshotUsage } from './types.ts';

export abstract class DirSnapshotter implements Snapshotter {
  protected readonly storage: SnapshotStorage;
  protected readonly snapshotsDir: string;

  constructor(protected readonly root: string) {
    this.snapshotsDir = join(root, 'snapshots');
    mkdirSync(this.snapshotsDir, { recursive: true, mode: 0o700 });
    this.storage = new SnapshotStorage(join(root, 'metadata.lmdb'));
  }

  protected dir(id: number): string {
    return join(this.snapshotsDir, String(id));
  }

  /** Prepares the on-disk directory of a new snapshot (its parent chain is committed). */
  protected abstract populate(id: number, kind: 'active' | 'view', chain: { key: string; id: number }[]): Promise<void>;
  /** Mounts of an active or view snapshot. */
  protected abstract mountsOf(key: string, record: SnapshotRecord): Mount[];
  /** The directory whose files are this snapshot's own (for usage). */
  protected abstract ownFiles(id: number): string;

  async stat(key: string): Promise<SnapshotInfo> {
    return this.storage.info(key);
  }

  async update(info: { name: string; labels: Record<string, string> }, fieldpaths?: string[]): Promise<SnapshotInfo> {
    return this.storage.update(info.name, info.labels ?? {}, fieldpaths);
  }

  async usage(key: string): Promise<SnapshotUsage> {
    return diskUsage(this.ownFiles(this.storage.get(key).id));
  }

  async mounts(key: string): Promise<Mount[]> {
    const r = this.storage.get(key);
    if (r.kind === 'committed') throw errFailedPrecondition(`snapshot ${JSON.stringify(key)} is committed: it has no mounts`);
    return this.mountsOf(key, r);
  }

  prepare(key: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]> {
    return this.create('active', key, parent, opts);
  }

  view(key: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]> {
    return this.create('view', key, parent, opts);
  }

  private async create(kind: 'active' | 'view', key: string, parent: string | undefined, opts?: SnapshotOptions): Promise<Mount[]> {
    const record = this.storage.create(key, kind, parent, opts?.labels);
    try {
      await this.populate(record.id, kind, this.storage.chain(parent));
    } catch (err) {
      this.storage.remove(key);
      rmSync(this.dir(record.id), { recursive: true, force: true });
      throw err;
    }
    return this.mountsOf(key, record);
  }

  async commit(name: string, key: string, opts?: SnapshotOptions): Promise<void> {
    this.storage.commit(name, key, opts?.labels);
  }

  async remove(key: string): Promise<void> {
    const r = this.storage.remove(key);
    const doomed = join(this.snapshotsDir, `rm-${r.id}`);
    try { renameSync(this.dir(r.id), doomed); } catch { return; }
    // In the background, on the thread pool: an image's snapshots hold tens of thousands of files (removing them
    // synchronously held berthd's event loop for seconds), and nobody waits for the space. cleanup() removes
    // what a crash leaves.
    void removeTree(doomed).catch(() => undefined);
  }

  async walk(fn: (info: SnapshotInfo) => void | Promise<void>, filters?: string[]): Promise<void> {
    const filter = parseFilters(filters);
    for (const { key } of [...this.storage.all()]) {
      const info = this.storage.info(key);
      if (filter.match(fieldsAdaptor({ name: info.name, parent: info.parent, kind: info.kind }, info.labels))) await fn(info);
    }
  }

  async cleanup(): Promise<void> {
    const live = this.storage.ids();
    for (const entry of readdirSync(this.snapshotsDir)) {
      if (!live.has(Number(entry)) || !/^\d+$/.test(entry)) rmSync(join(this.snapshotsDir, entry), { recursive: true, force: true });
    }
  }

  async close(): Promise<void> {
    await this.storage.close();
  }
}

/** Bytes and inodes below `dir` (hardlinked files counted once). */
export async function diskUsage(dir: string): Promise<SnapshotUsage> {
  let size = 0;
  let inodes = 0;
  const seen = new Set<number>();
  const walk = async (d: string): Promise<void> => {
    for (const name of await readdir(d).catch(() => [] as string[])) {
      const p = join(d, name);
      const st = await lstat(p);
      if (seen.has(st.ino)) continue;
      seen.add(st.ino);
      inodes++;
      size += st.blocks * 512;
      if (st.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return { size, inodes };
}
