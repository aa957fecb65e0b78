/* berth-agent's start as PID 1 (mounts, kernel modules, a root that containers can pivot out of, the port) and
 * its poll loop. PID 1 must never exit: the kernel would panic (the host then sees QEMU exit). */
#define _GNU_SOURCE
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void logmsg(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	if (write(2, "berth-agent: ", 13) < 0 || write(2, line, (size_t)n) < 0)
		return;
}

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- the watch table --- */
#define MAX_WATCHES 4096
static struct watch {
	int fd;
	short events;
	watch_fn fn;
	void *ctx;
} watches[MAX_WATCHES];
static int nwatches;
static int wake_ms = -1;

static struct watch *find_watch(int fd)
{
	for (int i = 0; i < nwatches; i++)
		if (watches[i].fd == fd)
			return &watches[i];
	return NULL;
}

void watch_add(int fd, short events, watch_fn fn, void *ctx)
{
	if (nwatches == MAX_WATCHES) {
		logmsg("too many fds to watch; dropping fd %d", fd);
		return;
	}
	watches[nwatches++] = (struct watch){ fd, events, fn, ctx };
}

void watch_events(int fd, short events)
{
	struct watch *w = find_watch(fd);
	if (w)
		w->events = events;
}

void watch_del(int fd)
{
	struct watch *w = find_watch(fd);
	if (w)
		*w = watches[--nwatches];
}

void loop_wake_within(int ms)
{
	if (wake_ms < 0 || ms < wake_ms)
		wake_ms = ms;
}

static void serve(void);

/* --- boot --- */
static void must_mount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, flags, data) < 0)
		logmsg("mounting %s on %s: %s", type, dst, strerror(errno));
}

/* pivot_root refuses a root that is the initramfs itself: move a tmpfs over it and chroot there, as switch_root
 * does, so that containers can pivot out of our root. */
static void leave_initramfs(void)
{
	unlink("/init");
	must_mount("tmpfs", "/root", "tmpfs", MS_NOSUID, "mode=0755");
	if (chdir("/root") < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0)
		logmsg("moving to a tmpfs root: %s", strerror(errno));
}

static void enable_controllers(void)
{
	struct buf avail = { 0 };
	if (read_small_file("/sys/fs/cgroup/cgroup.controllers", &avail) < 0)
		return;
	buf_put(&avail, "", 1);
	for (char *save, *c = strtok_r((char *)avail.data, " \n", &save); c; c = strtok_r(NULL, " \n", &save)) {
		char word[64];
		snprintf(word, sizeof word, "+%s", c);
		if (cgroup_write("/sys/fs/cgroup", "cgroup.subtree_control", word) < 0)
			logmsg("enabling the %s controller: %s", c, strerror(errno));
	}
	buf_free(&avail);
}

/* The virtio-serial port whose name is `name` (the host's virtserialport name=...): /dev/vportNpM. */
static int find_port(const char *name, char *path, size_t pathlen)
{
	for (int tries = 0; tries < 2000; tries++) {
		DIR *d = opendir("/sys/class/virtio-ports");
		struct dirent *e;
		while (d && (e = readdir(d))) {
			char file[512];
			struct buf got = { 0 };
			if (e->d_name[0] == '.')
				continue;
			snprintf(file, sizeof file, "/sys/class/virtio-ports/%s/name", e->d_name);
			int ok = read_small_file(file, &got) == 0 && got.len >= strlen(name) && !strncmp((char *)got.data, name, strlen(name));
			buf_free(&got);
			if (ok) {
				snprintf(path, pathlen, "/dev/%s", e->d_name);
				closedir(d);
				if (access(path, F_OK) == 0)
					return 0;
				d = NULL;
			}
		}
		if (d)
			closedir(d);
		usleep(5000);
	}
	return -1;
}

/* The kernel reports free pages to the host (virtio-balloon) only in 4 MiB blocks unless told otherwise once the
 * driver is up: 64 KiB blocks return what boot and exited containers freed, not just what was never touched. */
static void report_free_pages(void)
{
	if (cgroup_write("/sys/module/page_reporting/parameters", "page_reporting_order", "4") < 0)
		logmsg("free page reporting: %s", strerror(errno));
}

static void boot(void)
{
	leave_initramfs();
	must_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	must_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	must_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	must_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
	must_mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	must_mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, "nsdelegate");
	must_mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	must_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	mkdir("/run/berth", 0700);
	enable_controllers();
	report_free_pages();
}

int main(void)
{
	if (getpid() != 1) {
		fprintf(stderr, "berth-agent: runs as a guest's PID 1 only\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	boot();
	char port[300];
	if (find_port("berth.agent", port, sizeof port) < 0) {
		logmsg("no virtio-serial port named berth.agent; powering off");
		sync();
		reboot_now();
	}
	ttrpc_open(port);
	cgroup_oom_init();
	struct buf up = { 0 };
	read_small_file("/proc/uptime", &up);
	buf_put(&up, "", 1);
	logmsg("serving on %s (uptime %.*s s)", port, (int)strcspn((char *)up.data, " "), (char *)up.data);
	buf_free(&up);
	serve();
}

static void on_sigchld(void *ctx, int fd, short revents)
{
	(void)ctx;
	(void)revents;
	struct signalfd_siginfo si[16];
	while (read(fd, si, sizeof si) > 0)
		;
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		procs_reaped(pid, status);
}

static void serve(void)
{
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	watch_add(sfd, POLLIN, on_sigchld, NULL);
	static struct pollfd pfds[MAX_WATCHES];
	for (;;) {
		int n = nwatches;
		for (int i = 0; i < n; i++)
			pfds[i] = (struct pollfd){ .fd = watches[i].fd, .events = watches[i].events };
		int timeout = wake_ms;
		wake_ms = -1;
		int ready = poll(pfds, (nfds_t)n, timeout);
		ttrpc_tick();
		if (ready <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			if (!pfds[i].revents)
				continue;
			struct watch *w = find_watch(pfds[i].fd);
			if (w && w->fn)
				w->fn(w->ctx, w->fd, pfds[i].revents);
		}
	}
}
