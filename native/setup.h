#ifndef BERTH_SETUP_H
#define BERTH_SETUP_H
#include "plan.h"

/* Runs in the container's new namespaces: mounts, devices, pivot_root, then (after the exec fifo opens, when
 * there is one) credentials, capabilities, seccomp and exec. Reports "ready" or "error <msg>" on report_fd.
 * With a console socket (console_fd >= 0) the process gets a pty whose master is sent over it. Never returns. */
void container_setup(struct plan *plan, int report_fd, int sync_fd, int console_fd);

#endif
