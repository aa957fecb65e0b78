#ifndef BERTH_ROOTFS_H
#define BERTH_ROOTFS_H
#include "plan.h"

/* Builds the container's mount tree from the plan's rootfs/mount/mkdev/symlink records, pivots into it and
 * applies masked and readonly paths. Returns an O_PATH fd of the exec fifo, or -1 when the plan has none.
 * A plan without a rootfs record (exec) changes nothing. */
int prepare_rootfs(struct plan *plan);
/* mkdir -p of an absolute path in the (already pivoted) container root. */
void ensure_dir(const char *path);
/* Reports a setup error to the runtime and exits (defined in setup.c). */
void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

#endif
