/* The containers' cgroups in the guest (pure cgroup v2 at /sys/fs/cgroup): made with every controller delegated,
 * written as the host converted the resources, read raw for stats, and watched for OOM kills. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROOT "/sys/fs/cgroup"

int cgroup_write(const char *dir, const char *file, const char *value)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, value, strlen(value));
	int e = errno;
	close(fd);
	errno = e;
	return n < 0 ? -1 : 0;
}

/* Each ancestor hands every controller it has to its children. */
static void delegate(const char *dir)
{
	char path[4200];
	struct buf avail = { 0 };
	snprintf(path, sizeof path, "%s/cgroup.controllers", dir);
	if (read_small_file(path, &avail) < 0)
		return;
	buf_put(&avail, "", 1);
	char line[1024] = "";
	size_t used = 0;
	for (char *save, *c = strtok_r((char *)avail.data, " \n", &save); c; c = strtok_r(NULL, " \n", &save))
		if (used + strlen(c) + 2 < sizeof line)
			used += (size_t)snprintf(line + used, sizeof line - used, "%s+%s", used ? " " : "", c);
	if (used)
		cgroup_write(dir, "cgroup.subtree_control", line);
	buf_free(&avail);
}

int cgroup_mkdir(const char *dir, char *err, size_t errlen)
{
	if (strncmp(dir, ROOT "/", strlen(ROOT) + 1) || strstr(dir, "/../") || strlen(dir) >= 4096) {
		snprintf(err, errlen, "cgroup path %s is not below " ROOT, dir);
		errno = EINVAL;
		return -1;
	}
	char p[4096];
	strcpy(p, dir);
	for (char *s = p + strlen(ROOT) + 1;; s++) {
		if (*s && *s != '/')
			continue;
		char saved = *s;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "creating cgroup %s: %s", p, strerror(errno));
			return -1;
		}
		if (!saved)
			return 0;
		delegate(p);
		*s = saved;
	}
}

void cgroup_signal(const char *dir, int sig)
{
	if (sig == SIGKILL && cgroup_write(dir, "cgroup.kill", "1") == 0)
		return;
	char path[4200];
	struct buf procs = { 0 };
	snprintf(path, sizeof path, "%s/cgroup.procs", dir);
	if (read_small_file(path, &procs) < 0)
		return;
	buf_put(&procs, "", 1);
	for (char *save, *p = strtok_r((char *)procs.data, "\n", &save); p; p = strtok_r(NULL, "\n", &save))
		kill((pid_t)atoi(p), sig);
	buf_free(&procs);
}

static int populated(const char *dir)
{
	char path[4200];
	struct buf ev = { 0 };
	snprintf(path, sizeof path, "%s/cgroup.events", dir);
	if (read_small_file(path, &ev) < 0)
		return 0;
	buf_put(&ev, "", 1);
	int yes = strstr((char *)ev.data, "populated 1") != NULL;
	buf_free(&ev);
	return yes;
}

void cgroup_wait_empty(const char *dir, int timeout_ms)
{
	for (int waited = 0; populated(dir) && waited < timeout_ms; waited += 5) {
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			procs_reaped(pid, status);
		struct timespec ts = { 0, 5000000 };
		nanosleep(&ts, NULL);
	}
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		procs_reaped(pid, status);
}
