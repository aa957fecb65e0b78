/* The plan executor: runs a container plan prepared by runtimes/oci/plan.ts. It does no policy. Entered from
 * berth-init's main (init_main.c) or, in the child it forks, from berth-monitor --init (no exec in between).
 *
 * Protocol on SYNC_FD (a socket to the runtime): we send "pid <n>\n" once the container process exists in its
 * namespaces; the runtime places it in its cgroup and answers one byte; we let the container set itself up
 * and send "ready\n" or "error <message>\n". In mode "create" we then exit and the container waits on its exec
 * fifo for `start`; in mode "run" we stay, forward signals, and exit with the container's status. */
#define _GNU_SOURCE
#include "console.h"
#include "init.h"
#include "mount_source.h"
#include "plan.h"
#include "rootfs.h"
#include "seccomp_agent.h"
#include "setup.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t container_pid;

static void die_to(int fd, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	dprintf(fd, "error %s\n", msg);
	_exit(1);
}

int init_prepared_netns = -1;

/* CVE-2019-5736: never run from a file the container could reach through /proc/<pid>/exe and overwrite.
 * Re-exec from a sealed, anonymous memfd copy of ourselves. */
void ensure_sealed_self(char **argv)
{
	int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return;
	int seals = fcntl(self, F_GET_SEALS);
	if (seals >= 0 && (seals & F_SEAL_WRITE) && (seals & F_SEAL_SEAL)) {
		close(self);
		return;
	}
	struct stat st;
	int copy = memfd_create("berth-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (copy < 0 || fstat(self, &st) < 0)
		goto fail;
	for (off_t off = 0; off < st.st_size;) {
		ssize_t n = sendfile(copy, self, &off, (size_t)(st.st_size - off));
		if (n <= 0)
			goto fail;
	}
	if (fcntl(copy, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
		goto fail;
	close(self);
	extern char **environ;
	fexecve(copy, argv, environ);
fail:
	fprintf(stderr, "berth-init: cannot make a sealed copy of itself: %s\n", strerror(errno));
	exit(1);
}

static char *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (n == cap)
			buf = realloc(buf, cap *= 2);
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0) {
			free(buf);
			close(fd);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*len = n;
	return buf;
}

static void forward_signal(int sig)
{
	if (container_pid > 0)
		kill(container_pid, sig);
}

static int exit_status_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

static const char *find_arg(struct plan *p, const char *tag)
{
	for (int i = 0; i < p->count; i++)
		if (!strcmp(p->records[i].tag, tag) && p->records[i].argc > 0)
			return p->records[i].argv[0];
	return NULL;
}

static void write_map(pid_t pid, const char *file, const char *content, int sync)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, content, strlen(content)) < 0)
		die_to(sync, "writing %s: %s", file, strerror(errno));
	close(fd);
}

static int has_record(struct plan *p, const char *tag)
{
	for (int i = 0; i < p->count; i++)
		if (!strcmp(p->records[i].tag, tag))
			return 1;
	return 0;
}

/* Written before the pid is reported, and atomically: a monitor reads it once we exit. */
static void write_pid_file(const char *path, pid_t pid, int sync)
{
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || dprintf(fd, "%d", (int)pid) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
		kill(pid, SIGKILL);
		die_to(sync, "writing the pid file %s: %s", path, strerror(errno));
	}
}

/* Forks the container's init with its new namespaces; with a cgroup2 directory, straight into that cgroup
 * (CLONE_INTO_CGROUP): being born there, it is never moved, and a move's write lock can wait out an RCU grace
 * period. */
static pid_t clone_container(long flags, const char *cgroup2, int sync)
{
	if (!cgroup2) {
		pid_t pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
		if (pid < 0)
			die_to(sync, "clone with namespace flags %#lx: %s", flags, strerror(errno));
		return pid;
	}
	int dir = open(cgroup2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		die_to(sync, "opening cgroup %s: %s", cgroup2, strerror(errno));
	struct clone_args args = { .flags = (uint64_t)flags | CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .cgroup = (uint64_t)dir };
	pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof args);
	if (pid < 0)
		die_to(sync, "clone into cgroup %s with namespace flags %#lx: %s", cgroup2, flags, strerror(errno));
	if (pid > 0)
		close(dir);
	return pid;
}

int init_main(const char *plan_path, int sync)
{
	size_t len;
	char *buf = read_file(plan_path, &len);
	if (!buf)
		die_to(sync, "reading plan %s: %s", plan_path, strerror(errno));
	struct plan plan;
	char err[256];
	if (plan_parse(buf, len, &plan, err, sizeof err) < 0)
		die_to(sync, "%s", err);
	const char *version = find_arg(&plan, "version");
	if (!version || strcmp(version, "1"))
		die_to(sync, "plan version %s is not supported (want 1)", version ? version : "(none)");

	/* The console socket is a host path: connect before joining or creating a mount namespace. */
	int console = -1;
	const char *console_path = find_arg(&plan, "console");
	if (console_path && (console = console_connect(console_path)) < 0)
		die_to(sync, "connecting to the console socket %s: %s", console_path, strerror(errno));
	/* So is a seccomp agent's socket, and the directory of the state it gets. */
	char agent_err[600];
	if (seccomp_agent_open(&plan, agent_err, sizeof agent_err) < 0)
		die_to(sync, "%s", agent_err);

	const char *clone_flags = find_arg(&plan, "clone");
	long flags = clone_flags ? strtol(clone_flags, NULL, 10) : 0;
	/* A network namespace made ahead serves a plan that wants a new one (not under a new user namespace, which
	 * must own it); any other plan goes back to the one we came from first (a join below replaces it anyway). */
	if (init_prepared_netns >= 0) {
		if ((flags & CLONE_NEWNET) && !(flags & CLONE_NEWUSER))
			flags &= ~CLONE_NEWNET;
		else if (setns(init_prepared_netns, CLONE_NEWNET) < 0)
			die_to(sync, "leaving the network namespace made ahead: %s", strerror(errno));
		close(init_prepared_netns);
		init_prepared_netns = -1;
	}
	/* Join existing namespaces first, so the clone below starts inside them (a joined pid namespace only
	 * applies to children, which is what we want). */
	for (int i = 0; i < plan.count; i++) {
		struct record *r = &plan.records[i];
		if (strcmp(r->tag, "join"))
			continue;
		int fd = open(r->argv[1], O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, atoi(r->argv[0])) < 0)
			die_to(sync, "joining namespace %s: %s", r->argv[1], strerror(errno));
		close(fd);
	}
	/* A new time namespace: unshare makes our children (the container) enter it; its offsets can be set only
	 * until the first process does. */
	for (int i = 0; i < plan.count; i++) {
		struct record *r = &plan.records[i];
		if (strcmp(r->tag, "timens") || r->argc < 4)
			continue;
		if (unshare(CLONE_NEWTIME) < 0)
			die_to(sync, "creating the time namespace: %s", strerror(errno));
		int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || dprintf(fd, "%d %s %s\n%d %s %s\n", CLOCK_MONOTONIC, r->argv[0], r->argv[1], CLOCK_BOOTTIME, r->argv[2], r->argv[3]) < 0)
			die_to(sync, "setting the time namespace offsets: %s", strerror(errno));
		close(fd);
	}
	/* --no-pivot: hide the host's proc and sysfs in a mount namespace of our own that the container's copies. */
	const char *pivot = find_arg(&plan, "pivot"), *rootfs = find_arg(&plan, "rootfs");
	if (rootfs && pivot && !strcmp(pivot, "0")) {
		if (unshare(CLONE_NEWNS) < 0)
			die_to(sync, "--no-pivot: a mount namespace for the runtime: %s", strerror(errno));
		if (cover_host_pseudofs(rootfs, err, sizeof err) < 0)
			die_to(sync, "--no-pivot: %s", err);
	}
	/* The go-ahead is a socket: bind mount sources opened for the container travel over it first. */
	int go[2], report[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, go) < 0 || pipe2(report, O_CLOEXEC) < 0)
		die_to(sync, "pipe: %s", strerror(errno));

	pid_t pid = clone_container(flags, find_arg(&plan, "cgroup2"), sync);
	if (pid == 0) {
		close(go[1]);
		close(report[0]);
		char byte;
		if (mount_sources_receive(&plan, go[0]) < 0 || read(go[0], &byte, 1) != 1)
			_exit(1);
		close(go[0]);
		if (seccomp_agent_read_state(agent_err, sizeof agent_err) < 0)
			die_to(report[1], "%s", agent_err);
		container_setup(&plan, report[1], sync, console);
		/* not reached: container_setup execs or exits */
	}
	container_pid = pid;
	if (console >= 0)
		close(console);
	seccomp_agent_close();
	close(go[0]);
	close(report[1]);

	const char *uidmap = find_arg(&plan, "uidmap");
	const char *gidmap = find_arg(&plan, "gidmap");
	if (uidmap)
		write_map(pid, "uid_map", uidmap, sync);
	if (gidmap)
		write_map(pid, "gid_map", gidmap, sync);

	const char *pid_file = find_arg(&plan, "pidfile");
	if (pid_file)
		write_pid_file(pid_file, pid, sync);
	dprintf(sync, "pid %d\n", pid);
	/* Unless told to proceed, the runtime moves the process into its cgroups and runs hooks first. */
	char answer;
	if (!has_record(&plan, "proceed") && read(sync, &answer, 1) != 1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return 1;
	}
	if (mount_sources_send(&plan, pid, go[1], err, sizeof err) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		die_to(sync, "%s", err);
	}
	if (write(go[1], "g", 1) != 1)
		die_to(sync, "releasing the container: %s", strerror(errno));
	close(go[1]);

	/* The child reports "ready" or "error ..." then closes (exec closes its CLOEXEC end). */
	char msg[1100];
	ssize_t n = read(report[0], msg, sizeof msg - 1);
	if (n <= 0) {
		int status;
		waitpid(pid, &status, 0);
		die_to(sync, "container process died during setup (status %d)", exit_status_of(status));
	}
	msg[n] = '\0';
	if (strncmp(msg, "ready", 5)) {
		waitpid(pid, NULL, 0);
		dprintf(sync, "%s", msg);
		return 1;
	}
	dprintf(sync, "ready\n");

	const char *mode = find_arg(&plan, "mode");
	if (!mode || strcmp(mode, "run"))
		return 0;
	close(sync);
	int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };
	struct sigaction sa = { .sa_handler = forward_signal, .sa_flags = SA_RESTART };
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, NULL);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return exit_status_of(status);
}
