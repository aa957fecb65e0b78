// The snapshotter interface, as containerd's snapshots.Snapshotter. Every implementation registers itself
// and must pass the shared conformance suite in test/snapshotters/.
import type { Mount } from '../api/mount.ts';

export type SnapshotKind = 'view' | 'active' | 'committed';

export interface SnapshotInfo {
  kind: SnapshotKind;
  /** The key of an active/view snapshot, or the name of a committed one. */
  name: string;
  /** Name of the committed parent, if any. */
  parent?: string;
  labels: Record<string, string>;
  created: Date;
  updated: Date;
}

export interface SnapshotUsage {
  /** Bytes used by this snapshot alone (not its parents). */
  size: number;
  inodes: number;
}

export interface SnapshotOptions {
  labels?: Record<string, string>;
}

export interface Snapshotter {
  stat(key: string): Promise<SnapshotInfo>;
  /** Updates labels; with fieldpaths ("labels", "labels.<key>") only those fields change. */
  update(info: { name: string; labels: Record<string, string> }, fieldpaths?: string[]): Promise<SnapshotInfo>;
  usage(key: string): Promise<SnapshotUsage>;
  /** Mounts for an active or view snapshot. */
  mounts(key: string): Promise<Mount[]>;
  /** Creates a writable snapshot `key` on top of committed `parent`. */
  prepare(key: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]>;
  /** Creates a read-only snapshot `key` of committed `parent`. */
  view(key: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]>;
  /** Turns active snapshot `key` into committed snapshot `name`. */
  commit(name: string, key: string, opts?: SnapshotOptions): Promise<void>;
  /** Removes a snapshot; failed-precondition while it has children. */
  remove(key: string): Promise<void>;
  walk(fn: (info: SnapshotInfo) => void | Promise<void>, filters?: string[]): Promise<void>;
  /** Removes on-disk leftovers no snapshot refers to (after a crash or a removal). */
  cleanup(): Promise<void>;
  close(): Promise<void>;
}
