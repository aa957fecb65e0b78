#ifndef BERTH_CONSOLE_H
#define BERTH_CONSOLE_H

#include <stddef.h>

/* Connects to the console socket at `path` (a runtime's --console-socket). Returns the fd or -1 (errno). */
int console_connect(const char *path);

/* Inside the container (after pivot_root): opens a pty on the container's /dev/ptmx, sizes it, sends the master
 * over `sock` (SCM_RIGHTS, as runc does), makes the peer our controlling terminal and stdin/stdout/stderr,
 * owned by uid/gid. Returns 0, or -1 with a message in err. */
int console_setup(int sock, unsigned short width, unsigned short height, unsigned uid, unsigned gid, char *err, size_t errlen);

/* Sends `fd` over the unix socket `sock` with `name` as the message (the runc console-socket protocol). */
int send_fd(int sock, int fd, const char *name);

/* Receives one fd sent that way (close-on-exec), or -1. */
int recv_fd(int sock);

#endif
