/* Terminals: the pty a container's process gets when process.terminal is true. The master goes to whoever
 * listens on the console socket (a shim, berth-monitor, or any runc-compatible caller); the peer becomes the
 * process's controlling terminal and stdio. */
#define _GNU_SOURCE
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

int console_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof addr.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int send_fd(int sock, int fd, const char *name)
{
	char control[CMSG_SPACE(sizeof(int))];
	memset(control, 0, sizeof control);
	struct iovec iov = { .iov_base = (void *)name, .iov_len = strlen(name) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

int console_setup(int sock, unsigned short width, unsigned short height, unsigned uid, unsigned gid, char *err, size_t errlen)
{
	/* The container's own devpts instance (its /dev/ptmx), so the pty belongs to the container. */
	int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0) {
		snprintf(err, errlen, "opening /dev/ptmx in the container: %s", strerror(errno));
		return -1;
	}
	int unlock = 0;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0) {
		snprintf(err, errlen, "unlocking the pty: %s", strerror(errno));
		return -1;
	}
	if (width && height) {
		struct winsize ws = { .ws_row = height, .ws_col = width };
		ioctl(master, TIOCSWINSZ, &ws);
	}
	int peer = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
	if (peer < 0) {
		snprintf(err, errlen, "opening the pty's peer: %s", strerror(errno));
		return -1;
	}
	/* The process may run as another user: its terminal must be its own, as with runc. The group stays devpts'
	 * (gid=5, tty, when the spec mounts it so), as runc leaves it. */
	(void)gid;
	if (fchown(peer, uid, (gid_t)-1) < 0 && errno != EINVAL && errno != EPERM) {
		snprintf(err, errlen, "chown of the pty: %s", strerror(errno));
		return -1;
	}
	if (send_fd(sock, master, "/dev/ptmx") < 0) {
		snprintf(err, errlen, "sending the pty master over the console socket: %s", strerror(errno));
		return -1;
	}
	close(master);
	close(sock);
	setsid();
	if (ioctl(peer, TIOCSCTTY, 0) < 0) {
		snprintf(err, errlen, "making the pty the controlling terminal: %s", strerror(errno));
		return -1;
	}
	for (int fd = 0; fd < 3; fd++)
		if (dup2(peer, fd) < 0) {
			snprintf(err, errlen, "dup2 of the pty: %s", strerror(errno));
			return -1;
		}
	if (peer > 2)
		close(peer);
	return 0;
}

int recv_fd(int sock)
{
	char name[256], control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = name, .iov_len = sizeof name };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) <= 0)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	return fd;
}
