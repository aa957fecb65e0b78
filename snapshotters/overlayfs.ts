// The overlayfs snapshotter: each snapshot is <id>/fs (its own changes, the overlay upper dir) and <id>/work.
// An active snapshot mounts as overlay with its parents' fs dirs as lowerdirs (nearest first); a snapshot
// without parent is a bind of its fs; a view of one parent is a read-only bind of that parent's fs. Long
// lowerdir lists (many layers) are mounted by the consumer with the kernel's lowerdir+ (see shim/rootfs.ts).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Mount } from '../api/mount.ts';
import { DirSnapshotter } from './dir-snapshotter.ts';
import { registerSnapshotter } from './registry.ts';
import type { SnapshotRecord } from './storage.ts';

export class OverlaySnapshotter extends DirSnapshotter {
  protected async populate(id: number, kind: 'active' | 'view'): Promise<void> {
    mkdirSync(join(this.dir(id), 'fs'), { recursive: true, mode: 0o755 });
    if (kind === 'active') mkdirSync(join(this.dir(id), 'work'), { mode: 0o711 });
  }

  protected ownFiles(id: number): string {
    return join(this.dir(id), 'fs');
  }

  protected mountsOf(_key: string, r: SnapshotRecord): Mount[] {
    const parents = this.storage.chain(r.parent).map((p) => join(this.dir(p.id), 'fs'));
    if (r.kind === 'view') {
      if (parents.length === 0) return [{ type: 'bind', source: join(this.dir(r.id), 'fs'), options: ['ro', 'rbind'] }];
      if (parents.length === 1) return [{ type: 'bind', source: parents[0]!, options: ['ro', 'rbind'] }];
      return [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${parents.join(':')}`] }];
    }
    if (parents.length === 0) return [{ type: 'bind', source: join(this.dir(r.id), 'fs'), options: ['rw', 'rbind'] }];
    return [{
      type: 'overlay', source: 'overlay',
      options: [`workdir=${join(this.dir(r.id), 'work')}`, `upperdir=${join(this.dir(r.id), 'fs')}`, `lowerdir=${parents.join(':')}`],
    }];
  }
}

registerSnapshotter('overlayfs', async (root) => new OverlaySnapshotter(root));
