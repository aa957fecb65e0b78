/* The containers' cgroups in the guest (pure cgroup v2 at /sys/fs/cgroup): made with every controller delegated,
 * written as the host converted the resources, read raw for stats, and watched for OOM kills. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <poll.h>
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

/* Components that are names: none empty, "." or "..". */
static int clean_below_root(const char *rel)
{
	for (const char *p = rel;;) {
		size_t n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (!p[n])
			return 1;
		p += n + 1;
	}
}

int cgroup_mkdir(const char *dir, char *err, size_t errlen)
{
	if (strncmp(dir, ROOT "/", strlen(ROOT) + 1) || !clean_below_root(dir + strlen(ROOT) + 1) || strlen(dir) >= 4096) {
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

static struct container *container_req(uint32_t stream, const uint8_t *payload, size_t len, const char *call, struct pb_msg *m)
{
	if (pb_parse(m, payload, len) < 0) {
		reply_err(stream, ST_INVALID_ARGUMENT, "%s: malformed request", call);
		return NULL;
	}
	struct container *c = container_of_request(stream, m, call);
	if (c && !c->cgroup[0]) {
		reply_err(stream, ST_FAILED_PRECONDITION, "%s: container %s has no cgroup", call, c->id);
		return NULL;
	}
	return c;
}

void h_list_processes(uint32_t stream, const uint8_t *payload, size_t len)
{
	struct pb_msg m;
	struct container *c = container_req(stream, payload, len, "ListProcesses", &m);
	if (!c)
		return;
	char path[4200];
	struct buf procs = { 0 }, res = { 0 };
	snprintf(path, sizeof path, "%s/cgroup.procs", c->cgroup);
	if (read_small_file(path, &procs) < 0) {
		reply_err(stream, status_of_errno(errno), "ListProcesses: %s: %s", path, strerror(errno));
		return;
	}
	buf_put(&procs, "", 1);
	for (char *save, *p = strtok_r((char *)procs.data, "\n", &save); p; p = strtok_r(NULL, "\n", &save))
		pb_put_varint(&res, 1, (uint64_t)atoi(p));
	reply_ok(stream, &res);
	buf_free(&procs);
	buf_free(&res);
}

/* A cgroup interface file's name: "controller.knob", nothing that leaves the directory. */
static int cgroup_file_name(const char *f)
{
	return f[0] && f[0] != '.' && !strchr(f, '/') && strchr(f, '.');
}

void h_update_container(uint32_t stream, const uint8_t *payload, size_t len)
{
	struct pb_msg m;
	struct container *c = container_req(stream, payload, len, "UpdateContainer", &m);
	if (!c)
		return;
	/* The device program first: a bad one is refused with nothing written. Empty: the rules stay. */
	if (m.set[3] && (m.f[3].wire != PB_LEN || m.f[3].n)) {
		char err[1024];
		if (m.f[3].wire != PB_LEN) {
			reply_err(stream, ST_INVALID_ARGUMENT, "UpdateContainer: malformed device_program");
			return;
		}
		if (cgroup_device_program(c->cgroup, m.f[3].b, m.f[3].n, err, sizeof err) < 0) {
			reply_err(stream, status_of_errno(errno), "UpdateContainer: %s", err);
			return;
		}
	}
	struct pb_reader r;
	struct pb_field f;
	pb_init(&r, payload, len);
	while (pb_next(&r, &f) > 0) {
		struct pb_msg w;
		char file[128], value[4096];
		if (f.num != 2)
			continue;
		if (f.wire != PB_LEN || pb_parse(&w, f.b, f.n) < 0 || pb_str(&w, 1, file, sizeof file) < 0 || pb_str(&w, 2, value, sizeof value) < 0 ||
		    !cgroup_file_name(file)) {
			reply_err(stream, ST_INVALID_ARGUMENT, "UpdateContainer: a write names no cgroup file");
			return;
		}
		if (cgroup_write(c->cgroup, file, value) < 0) {
			reply_err(stream, status_of_errno(errno), "UpdateContainer: writing %s to %s: %s", value, file, strerror(errno));
			return;
		}
	}
	reply_ok(stream, NULL);
}

void h_stats_container(uint32_t stream, const uint8_t *payload, size_t len)
{
	static const char *files[] = { "cpu.stat", "cpu.max", "memory.current", "memory.stat", "memory.max", "memory.events", "memory.swap.current",
				       "memory.swap.max", "pids.current", "pids.max", "io.stat" };
	struct pb_msg m;
	struct container *c = container_req(stream, payload, len, "StatsContainer", &m);
	if (!c)
		return;
	struct buf res = { 0 };
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		char path[4200];
		struct buf content = { 0 }, entry = { 0 };
		snprintf(path, sizeof path, "%s/%s", c->cgroup, files[i]);
		if (read_small_file(path, &content) == 0) {
			pb_put_str(&entry, 1, files[i]);
			pb_put_bytes(&entry, 2, content.data, content.len);
			pb_put_bytes(&res, 1, entry.data, entry.len);
		}
		buf_free(&content);
		buf_free(&entry);
	}
	reply_ok(stream, &res);
	buf_free(&res);
}

/* Freezes or thaws, and waits (bounded) until cgroup.events says it is done. */
static void freeze(uint32_t stream, const uint8_t *payload, size_t len, int on)
{
	const char *call = on ? "PauseContainer" : "ResumeContainer";
	struct pb_msg m;
	struct container *c = container_req(stream, payload, len, call, &m);
	if (!c)
		return;
	if (cgroup_write(c->cgroup, "cgroup.freeze", on ? "1" : "0") < 0) {
		reply_err(stream, status_of_errno(errno), "%s: %s", call, strerror(errno));
		return;
	}
	char path[4200];
	snprintf(path, sizeof path, "%s/cgroup.events", c->cgroup);
	for (int waited = 0; waited < 2000; waited++) {
		struct buf ev = { 0 };
		read_small_file(path, &ev);
		buf_put(&ev, "", 1);
		int done = strstr((char *)ev.data, on ? "frozen 1" : "frozen 0") != NULL;
		buf_free(&ev);
		if (done)
			break;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	reply_ok(stream, NULL);
}

void h_pause_container(uint32_t stream, const uint8_t *payload, size_t len) { freeze(stream, payload, len, 1); }
void h_resume_container(uint32_t stream, const uint8_t *payload, size_t len) { freeze(stream, payload, len, 0); }

/* --- OOM: memory.events changes wake an inotify watch; an oom_kill count that grew is an event --- */
static int inotify_fd = -1;
static char *oom_queue[64];
static int oom_queued;
static struct waiter oom_waiter;

static uint64_t oom_kills(struct container *c)
{
	char path[4200];
	struct buf ev = { 0 };
	snprintf(path, sizeof path, "%s/memory.events", c->cgroup);
	uint64_t n = 0;
	if (read_small_file(path, &ev) == 0) {
		buf_put(&ev, "", 1);
		char *at = strstr((char *)ev.data, "oom_kill ");
		if (at)
			n = strtoull(at + 9, NULL, 10);
	}
	buf_free(&ev);
	return n;
}

static void answer_oom(void)
{
	if (!oom_queued || !live(&oom_waiter))
		return;
	struct buf res = { 0 };
	pb_put_str(&res, 1, oom_queue[0]);
	reply_ok(oom_waiter.stream, &res);
	buf_free(&res);
	oom_waiter.stream = 0;
	free(oom_queue[0]);
	memmove(oom_queue, oom_queue + 1, sizeof oom_queue[0] * (size_t)--oom_queued);
}

static void on_inotify(void *ctx, int fd, short revents)
{
	(void)ctx;
	(void)revents;
	char events[4096] __attribute__((aligned(8)));
	ssize_t n;
	while ((n = read(fd, events, sizeof events)) > 0) {
		for (char *p = events; p < events + n; p += sizeof(struct inotify_event) + ((struct inotify_event *)p)->len) {
			int wd = ((struct inotify_event *)p)->wd;
			for (struct container *c = containers; c; c = c->next) {
				if (c->oom_wd != wd)
					continue;
				uint64_t kills = oom_kills(c);
				if (kills > c->oom_kills && oom_queued < 64)
					oom_queue[oom_queued++] = strdup(c->id);
				c->oom_kills = kills;
			}
		}
	}
	answer_oom();
}

void cgroup_oom_init(void)
{
	inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (inotify_fd >= 0)
		watch_add(inotify_fd, POLLIN, on_inotify, NULL);
}

void cgroup_watch_oom(struct container *c)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/memory.events", c->cgroup);
	c->oom_kills = oom_kills(c);
	c->oom_wd = inotify_fd < 0 ? -1 : inotify_add_watch(inotify_fd, path, IN_MODIFY);
}

void cgroup_unwatch_oom(struct container *c)
{
	if (c->oom_wd >= 0)
		inotify_rm_watch(inotify_fd, c->oom_wd);
	c->oom_wd = -1;
}

void h_get_oom_event(uint32_t stream, const uint8_t *payload, size_t len)
{
	(void)payload;
	(void)len;
	waiter_replace(&oom_waiter, stream, 0, "GetOOMEvent");
	answer_oom();
}
