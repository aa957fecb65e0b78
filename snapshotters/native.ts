// The native snapshotter: every snapshot is a full copy of its parent's tree (cp -a keeps owners, modes,
// times, xattrs, links and devices; reflinks where the filesystem has them). Works on any filesystem.
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { promisify } from 'node:util';
import type { Mount } from '../api/mount.ts';
import { errInternal } from '../api/errdefs.ts';
import { DirSnapshotter } from './dir-snapshotter.ts';
import { registerSnapshotter } from './registry.ts';
import type { SnapshotRecord } from './storage.ts';

const run = promisify(execFile);

export class NativeSnapshotter extends DirSnapshotter {
  protected async populate(id: number, _kind: 'active' | 'view', chain: { key: string; id: number }[]): Promise<void> {
    const dir = this.dir(id);
    if (chain.length === 0) { mkdirSync(dir, { mode: 0o755 }); return; }
    try {
      await run('cp', ['-a', '--reflink=auto', this.dir(chain[0]!.id), dir]);
    } catch (err) {
      throw errInternal(`native snapshotter: copying ${chain[0]!.key}: ${((err as { stderr?: string }).stderr || (err as Error).message).trim()}`);
    }
  }

  protected ownFiles(id: number): string {
    return this.dir(id);
  }

  protected mountsOf(_key: string, r: SnapshotRecord): Mount[] {
    return [{ type: 'bind', source: this.dir(r.id), options: [r.kind === 'view' ? 'ro' : 'rw', 'rbind'] }];
  }
}

registerSnapshotter('native', async (root) => new NativeSnapshotter(root));
