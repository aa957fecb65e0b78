/* Bind mount sources opened by the host's root on the container's behalf (see mount_source.h). */
#define _GNU_SOURCE
#include "mount_source.h"
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int *received; /* by record index; -1 where none */

static int marked(struct record *r)
{
	if (strcmp(r->tag, "mount"))
		return 0;
	for (int i = 7; i < r->argc; i++)
		if (!strcmp(r->argv[i], "hostfd"))
			return 1;
	return 0;
}

static int send_all(struct plan *plan, int sock, char *err, size_t errlen)
{
	for (int i = 0; i < plan->count; i++) {
		struct record *r = &plan->records[i];
		if (!marked(r))
			continue;
		/* O_PATH: the bind needs no access to the source itself, only a reference to it. */
		int fd = open(r->argv[0], O_PATH | O_CLOEXEC);
		if (fd < 0) {
			snprintf(err, errlen, "opening bind mount source %s for %s: %s", r->argv[0], r->argv[1], strerror(errno));
			return -1;
		}
		int rc = send_fd(sock, fd, "m");
		close(fd);
		if (rc < 0) {
			snprintf(err, errlen, "passing bind mount source %s to the container: %s", r->argv[0], strerror(errno));
			return -1;
		}
	}
	return 0;
}

int mount_sources_send(struct plan *plan, pid_t pid, int sock, char *err, size_t errlen)
{
	int any = 0;
	for (int i = 0; i < plan->count && !any; i++)
		any = marked(&plan->records[i]);
	if (!any)
		return 0;
	char theirs_path[64];
	snprintf(theirs_path, sizeof theirs_path, "/proc/%d/ns/mnt", (int)pid);
	int ours = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC), theirs = open(theirs_path, O_RDONLY | O_CLOEXEC);
	int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int rc = -1;
	if (ours < 0 || theirs < 0 || cwd < 0 || setns(theirs, CLONE_NEWNS) < 0) {
		snprintf(err, errlen, "entering the container's mount namespace to open its bind sources: %s", strerror(errno));
		goto out;
	}
	rc = send_all(plan, sock, err, errlen);
	/* Back where we were: setns moved our root and working directory to the namespace's root. */
	if (setns(ours, CLONE_NEWNS) < 0 || fchdir(cwd) < 0) {
		snprintf(err, errlen, "returning to berth-init's mount namespace: %s", strerror(errno));
		rc = -1;
	}
out:
	if (ours >= 0)
		close(ours);
	if (theirs >= 0)
		close(theirs);
	if (cwd >= 0)
		close(cwd);
	return rc;
}

int mount_sources_receive(struct plan *plan, int sock)
{
	for (int i = 0; i < plan->count; i++) {
		if (!marked(&plan->records[i]))
			continue;
		if (!received) {
			received = malloc(sizeof *received * (size_t)plan->count);
			if (!received)
				return -1;
			for (int j = 0; j < plan->count; j++)
				received[j] = -1;
		}
		if ((received[i] = recv_fd(sock)) < 0)
			return -1;
	}
	return 0;
}

int mount_source_fd(int index)
{
	return received ? received[index] : -1;
}
