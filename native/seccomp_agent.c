#define _GNU_SOURCE
#include "seccomp_agent.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int agent = -1, state_dir = -1;
static char state_name[256];
static char *state;
static size_t state_len;

int seccomp_agent_open(struct plan *plan, char *err, size_t errlen)
{
	struct record *r = NULL;
	for (int i = 0; i < plan->count; i++)
		if (!strcmp(plan->records[i].tag, "seccompagent") && plan->records[i].argc >= 2)
			r = &plan->records[i];
	if (!r)
		return 0;
	const char *path = r->argv[0];
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof addr.sun_path) {
		snprintf(err, errlen, "linux.seccomp.listenerPath %s: longer than a unix socket path may be (%zu bytes)", path, sizeof addr.sun_path - 1);
		return -1;
	}
	strcpy(addr.sun_path, path);
	agent = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (agent < 0 || connect(agent, (struct sockaddr *)&addr, sizeof addr) < 0) {
		snprintf(err, errlen, "linux.seccomp.listenerPath %s: failed to connect with seccomp agent: %s", path, strerror(errno));
		return -1;
	}
	char dir[4096], name[4096];
	snprintf(dir, sizeof dir, "%s", r->argv[1]);
	snprintf(name, sizeof name, "%s", r->argv[1]);
	snprintf(state_name, sizeof state_name, "%s", basename(name));
	state_dir = open(dirname(dir), O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (state_dir < 0) {
		snprintf(err, errlen, "opening the directory of %s: %s", r->argv[1], strerror(errno));
		return -1;
	}
	return 0;
}

void seccomp_agent_close(void)
{
	if (agent >= 0)
		close(agent);
	if (state_dir >= 0)
		close(state_dir);
	agent = state_dir = -1;
}

int seccomp_agent_read_state(char *err, size_t errlen)
{
	if (state_dir < 0)
		return 0;
	int fd = openat(state_dir, state_name, O_RDONLY | O_CLOEXEC);
	size_t cap = 4096;
	state = malloc(cap);
	ssize_t n = 0;
	while (fd >= 0 && (n = read(fd, state + state_len, cap - state_len)) > 0)
		if ((state_len += (size_t)n) == cap)
			state = realloc(state, cap *= 2);
	if (fd < 0 || n < 0) {
		snprintf(err, errlen, "reading the seccomp agent's state %s: %s", state_name, strerror(errno));
		return -1;
	}
	close(fd);
	close(state_dir);
	state_dir = -1;
	return 0;
}

int seccomp_agent_send(int listener, char *err, size_t errlen)
{
	if (agent < 0 || !state) {
		snprintf(err, errlen, "the seccomp filter gave a listener fd but the plan names no agent");
		return -1;
	}
	char control[CMSG_SPACE(sizeof(int))] = { 0 };
	size_t sent = 0;
	while (sent < state_len) {
		struct iovec iov = { state + sent, state_len - sent };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
		if (sent == 0) { /* the fd rides with the first bytes */
			msg.msg_control = control;
			msg.msg_controllen = sizeof control;
			struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &listener, sizeof(int));
		}
		ssize_t n = sendmsg(agent, &msg, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "sending the seccomp listener fd to the agent: %s", strerror(errno));
			return -1;
		}
		sent += (size_t)n;
	}
	close(listener);
	close(agent);
	agent = -1;
	return 0;
}
