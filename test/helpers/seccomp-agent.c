/* A seccomp agent for tests (test/helpers/seccomp.ts compiles it): listens on SOCKET; for each runtime that
 * connects, reads the container process state JSON and the listener fd sent with it, and appends a line
 * "state <json>" to LOG; then answers each notification on any listener it holds as ANSWER says, appending
 * "notify <syscall nr> <pid>" to LOG:
 *   errno:N       the syscall fails with errno N
 *   value:V       the syscall "succeeds" with return value V, without running
 *   drop          the agent closes the listener at once (the container's notified syscalls get ENOSYS)
 * Prints "listening" on stdout once it accepts connections. Runs until killed. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FDS 64

static FILE *logf;

static void die(const char *what) { perror(what); exit(1); }

/* The runtime sends the whole state then closes: read to EOF, taking the fd from the first message. */
static int receive(int conn)
{
	char buf[65536];
	size_t len = 0;
	int fd = -1;
	for (;;) {
		char control[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { buf + len, sizeof buf - 1 - len };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
		ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
				memcpy(&fd, CMSG_DATA(c), sizeof fd);
		len += (size_t)n;
	}
	buf[len] = 0;
	fprintf(logf, "state %s\n", buf);
	fflush(logf);
	close(conn);
	return fd;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: seccomp-agent SOCKET LOG errno:N|value:V|drop\n");
		return 2;
	}
	const char *answer = argv[3];
	logf = fopen(argv[2], "a");
	if (!logf)
		die("log");
	int srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	snprintf(addr.sun_path, sizeof addr.sun_path, "%s", argv[1]);
	if (srv < 0 || bind(srv, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(srv, 16) < 0)
		die("listen");
	printf("listening\n");
	fflush(stdout);
	struct pollfd fds[MAX_FDS] = { { .fd = srv, .events = POLLIN } };
	int nfds = 1;
	for (;;) {
		if (poll(fds, (nfds_t)nfds, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (fds[0].revents & POLLIN) {
			int conn = accept4(srv, NULL, NULL, SOCK_CLOEXEC);
			int fd = conn >= 0 ? receive(conn) : -1;
			if (fd >= 0 && !strcmp(answer, "drop"))
				close(fd);
			else if (fd >= 0 && nfds < MAX_FDS)
				fds[nfds++] = (struct pollfd){ .fd = fd, .events = POLLIN };
		}
		for (int i = 1; i < nfds; i++) {
			if (fds[i].revents & POLLIN) {
				struct seccomp_notif req;
				struct seccomp_notif_resp resp;
				memset(&req, 0, sizeof req);
				if (ioctl(fds[i].fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
					continue; /* the process went away meanwhile */
				memset(&resp, 0, sizeof resp);
				resp.id = req.id;
				if (!strncmp(answer, "errno:", 6))
					resp.error = -atoi(answer + 6);
				else
					resp.val = atoll(answer + 6);
				fprintf(logf, "notify %d %u\n", req.data.nr, req.pid);
				fflush(logf);
				ioctl(fds[i].fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
			} else if (fds[i].revents & (POLLHUP | POLLERR)) {
				/* Every process of that filter has exited. */
				close(fds[i].fd);
				fds[i--] = fds[--nfds];
			}
		}
	}
}
