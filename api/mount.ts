// A filesystem mount as containerd describes it (api/types/mount.proto): what snapshotters return, what
// CreateTaskRequest carries as rootfs, and what the diff applier and shim mount.
export interface Mount {
  /** Filesystem type: "overlay", "bind", "tmpfs", "fuse.<name>", ... */
  type: string;
  source: string;
  /** Sub-path below the mount root; empty for the root itself. */
  target?: string;
  options: string[];
}
