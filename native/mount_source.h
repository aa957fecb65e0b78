#ifndef BERTH_MOUNT_SOURCE_H
#define BERTH_MOUNT_SOURCE_H
#include "plan.h"

#include <stddef.h>
#include <sys/types.h>

/* Bind sources the plan marks `hostfd` (under a new user namespace): a directory on the way may be closed to the
 * container's root, which could not reach the source by its path. berth-init, still the host's root, opens each
 * in the container's mount namespace (a copy of its own: a mount of another namespace cannot be bound) before
 * the container goes on, and passes the fds over the go-ahead socket; the container binds them through
 * /proc/self/fd, a path whose directories are not searched again. */

/* Parent side: opens the marked sources in the mount namespace of `pid` and sends them, in plan order, over
 * `sock`. Returns 0, or -1 with a message in err. */
int mount_sources_send(struct plan *plan, pid_t pid, int sock, char *err, size_t errlen);

/* Container side: receives as many fds as the plan marks. Returns 0, or -1 when the parent went away. */
int mount_sources_receive(struct plan *plan, int sock);

/* The fd received for record `index` of the plan, or -1 when it has none. */
int mount_source_fd(int index);

#endif
