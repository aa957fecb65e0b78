#ifndef BERTH_ROOTFS_H
#define BERTH_ROOTFS_H
#include "plan.h"

/* Builds the container's mount tree from the plan's rootfs/mount/mkdev/symlink records, pivots into it and
 * applies masked and readonly paths. Returns an O_PATH fd of the exec fifo, or -1 when the plan has none.
 * A plan without a rootfs record (exec) changes nothing. */
int prepare_rootfs(struct plan *plan);
/* For --no-pivot (the host's root stays below the container's): the kernel lets a namespace mount a new proc or
 * sysfs while a full one is visible in it. In the caller's own fresh mount namespace (made a slave here), covers
 * a non-empty directory of every full proc (sys/) and sysfs (kernel/) outside `rootfs` with an empty read-only
 * tmpfs; a user namespace made afterwards receives these covers locked, so none is fully visible there. */
int cover_host_pseudofs(const char *rootfs, char *err, size_t errlen);
/* mkdir -p of an absolute path in the (already pivoted) container root. */
void ensure_dir(const char *path);
/* Reports a setup error to the runtime and exits (defined in setup.c). */
void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

#endif
