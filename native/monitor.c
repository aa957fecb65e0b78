/* berth-monitor: the per-container (or per-exec) monitor. It becomes a child subreaper, runs a command that
 * creates the container's process (`runc create ...`, `berth-init PLAN SYNC_FD`, or the process itself),
 * learns that process's pid, reaps it, and records its exit status durably, so a shim that crashes or restarts
 * loses nothing: the status waits in EXIT_FILE.
 *
 * usage: berth-monitor EXIT_FILE NOTIFY_FD [--pid-file FILE] [--stdin P] [--stdout P] [--stderr P] -- COMMAND...
 * --stdin/--stdout/--stderr name FIFOs (or files) that become COMMAND's stdio, and so the container's: opened
 * here, blocking until the other side is there, as a shim must; the monitor keeps no copy, so the container
 * sees EOF when its client closes, and its output goes straight to the reader with no copying process.
 * With --pid-file, the watched process is the pid written to FILE by the time COMMAND exits successfully (it
 * was reparented to us); without it, COMMAND itself is watched. Lines written to NOTIFY_FD (a pipe to the shim,
 * which may have gone away):
 *   "pid <n>"                 the watched process exists
 *   "exit <status>"           it ended: exit code, or 128+signal
 *   "failed <status>"         COMMAND failed before there was a process to watch
 * EXIT_FILE holds "<status> <unix time in ns>\n", written atomically before the "exit" line. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_EARLY 64

static int notify_fd = -1;

static void notify(const char *fmt, long value)
{
	if (notify_fd >= 0 && dprintf(notify_fd, fmt, value) < 0)
		notify_fd = -1; /* the shim went away: the exit file is enough */
}

static int status_of(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void record_exit(const char *path, int status)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dprintf(fd, "%d %lld\n", status, (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
		fsync(fd);
		close(fd);
		if (rename(tmp, path) < 0)
			fprintf(stderr, "berth-monitor: rename %s: %s\n", path, strerror(errno));
	} else {
		fprintf(stderr, "berth-monitor: %s: %s\n", tmp, strerror(errno));
	}
}

static pid_t read_pid(const char *path)
{
	char buf[32] = {0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	return n > 0 ? (pid_t)atol(buf) : -1;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: berth-monitor EXIT_FILE NOTIFY_FD [--pid-file FILE] -- COMMAND [ARGS...]\n");
		return 2;
	}
	const char *exit_file = argv[1];
	notify_fd = atoi(argv[2]);
	const char *pid_file = NULL, *stdio_path[3] = {NULL, NULL, NULL};
	int i = 3;
	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0 && argv[i][2]; i += 2) {
		if (strcmp(argv[i], "--pid-file") == 0)
			pid_file = argv[i + 1];
		else if (strcmp(argv[i], "--stdin") == 0)
			stdio_path[0] = argv[i + 1];
		else if (strcmp(argv[i], "--stdout") == 0)
			stdio_path[1] = argv[i + 1];
		else if (strcmp(argv[i], "--stderr") == 0)
			stdio_path[2] = argv[i + 1];
		else
			break;
	}
	if (i >= argc || strcmp(argv[i], "--") != 0 || i + 1 >= argc) {
		fprintf(stderr, "berth-monitor: expected -- COMMAND\n");
		return 2;
	}
	char **command = argv + i + 1;

	/* Orphans of the command (the container's init once `create` exits) become our children. Our own session:
	 * a signal to the shim's process group does not reach us. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("berth-monitor: PR_SET_CHILD_SUBREAPER");
		return 1;
	}
	setsid();
	signal(SIGPIPE, SIG_IGN);
	fcntl(notify_fd, F_SETFD, FD_CLOEXEC);

	pid_t child = fork();
	if (child < 0) {
		perror("berth-monitor: fork");
		return 1;
	}
	if (child == 0) {
		for (int fd = 0; fd < 3; fd++) {
			if (!stdio_path[fd] || !*stdio_path[fd])
				continue;
			/* stdin: open without waiting for a writer, then block as usual. */
			int f = fd == 0 ? open(stdio_path[fd], O_RDONLY | O_NONBLOCK) : open(stdio_path[fd], O_WRONLY | O_APPEND);
			if (f < 0) {
				fprintf(stderr, "berth-monitor: open %s: %s\n", stdio_path[fd], strerror(errno));
				_exit(126);
			}
			if (fd == 0)
				fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK);
			if (f != fd) {
				dup2(f, fd);
				close(f);
			}
		}
		execvp(command[0], command);
		fprintf(stderr, "berth-monitor: exec %s: %s\n", command[0], strerror(errno));
		_exit(127);
	}

	/* Whatever else we were handed (berth-init's sync socket) belongs to the command: holding a copy would
	 * keep the other end from seeing it close. */
	syscall(SYS_close_range, 4U, ~0U, 0U);

	pid_t watched = pid_file ? 0 : child;
	if (watched)
		notify("pid %ld\n", watched);
	/* Processes reaped before we knew which one to watch (a container that exits at once). */
	pid_t early_pid[MAX_EARLY];
	int early_status[MAX_EARLY], early = 0;
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			/* No children left and the watched process never appeared. */
			record_exit(exit_file, 255);
			notify("exit %ld\n", 255);
			return 1;
		}
		if (pid == watched) {
			record_exit(exit_file, status_of(st));
			notify("exit %ld\n", status_of(st));
			return 0;
		}
		if (pid == child && !watched) {
			if (status_of(st) != 0 || (watched = read_pid(pid_file)) <= 0) {
				notify("failed %ld\n", status_of(st) ? status_of(st) : 255);
				return 1;
			}
			notify("pid %ld\n", watched);
			for (int k = 0; k < early; k++) {
				if (early_pid[k] == watched) {
					record_exit(exit_file, early_status[k]);
					notify("exit %ld\n", early_status[k]);
					return 0;
				}
			}
			continue;
		}
		if (!watched && early < MAX_EARLY) {
			early_pid[early] = pid;
			early_status[early++] = status_of(st);
		}
	}
}
