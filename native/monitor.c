/* berth-monitor: the per-container (or per-exec) monitor. It becomes a child subreaper, runs a command that
 * creates the container's process (`runc create ...`, `berth-init PLAN SYNC_FD`, or the process itself),
 * learns that process's pid, reaps it, and records its exit status durably, so a shim that crashes or restarts
 * loses nothing: the status waits in EXIT_FILE.
 *
 * usage: berth-monitor EXIT_FILE NOTIFY_FD [--pid-file FILE] [--stdin P] [--stdout P] [--stderr P] -- COMMAND...
 *        berth-monitor EXIT_FILE NOTIFY_FD [...] --init PLAN
 *        berth-monitor --spare
 * A spare is started ahead of need, its fds already in place: it waits for its real arguments on stdin ("<bytes>\n"
 * then each argument NUL-terminated) and execs itself with them (stdin then /dev/null), so that ps shows what it
 * watches. Its starter thus pays for a fork (~7 ms from a large Node process here) while idle, and only this
 * exec (~1 ms) when a container is created. EOF instead of arguments: not needed, it exits.
 * With --init the command is berth's plan executor, run in our child without an exec (fd 4 is its sync
 * socket); we then run from a sealed memfd ourselves, as berth-init does, since the container descends from us.
 * --stdin/--stdout/--stderr name FIFOs (or files) that become COMMAND's stdio, and so the container's: opened
 * here, blocking until the other side is there, as a shim must; the monitor keeps no copy, so the container
 * sees EOF when its client closes, and its output goes straight to the reader with no copying process.
 * With --pid-file, the watched process is the pid written to FILE by the time COMMAND exits successfully (it
 * was reparented to us); without it, COMMAND itself is watched. Lines written to NOTIFY_FD (a pipe to the shim,
 * which may have gone away):
 *   "pid <n>"                 the watched process exists
 *   "exit <status>"           it ended: exit code, or 128+signal
 *   "failed <status>"         COMMAND failed before there was a process to watch
 * EXIT_FILE holds "<status> <unix time in ns>\n", written atomically before the "exit" line.
 *
 * With --console-socket SOCK (the process has a terminal), we listen on SOCK, COMMAND is given it as its
 * --console-socket, and the pty master it sends us is ours to hold: we copy --stdin into it and its output to
 * --stdout (the pty merges stdout and stderr), and read requests from --control FIFO (created here), one per
 * line: "resize <width> <height>" or "close-stdin". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "console.h"
#include "init.h"
#include "io.h"

#define MAX_EARLY 64

static int notify_fd = -1;
static const char *exit_file, *pid_file, *console_path, *control_path;
static pid_t child, watched;
static pid_t early_pid[MAX_EARLY];
static int early_status[MAX_EARLY], early;

/* Console mode: the pty master and the fds we copy between. */
static int master = -1, in_fd = -1, out_fd = -1, control_fd = -1;
/* A pipe we drain and discard: a command's stdout or stderr in place of the host's /dev/null (see
 * stdin_from_empty_pipe). */
static int discard = -1, discard_w = -1;

static void notify(const char *fmt, long value)
{
	if (notify_fd >= 0 && dprintf(notify_fd, fmt, value) < 0)
		notify_fd = -1; /* the shim went away: the exit file is enough */
}

static int status_of(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Returns the time recorded, in nanoseconds since the epoch. */
static long long record_exit(const char *path, int status)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	long long ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		/* No fsync: the file must outlive a shim or daemon crash, which the page cache and an atomic rename
		 * give; after a host crash there is no container left to report on. */
		dprintf(fd, "%d %lld\n", status, ns);
		close(fd);
		if (rename(tmp, path) < 0)
			fprintf(stderr, "berth-monitor: rename %s: %s\n", path, strerror(errno));
	} else {
		fprintf(stderr, "berth-monitor: %s: %s\n", tmp, strerror(errno));
	}
	return ns;
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

/* Copies what the pty has to stdout. Returns 0 when the pty is drained for now, -1 when it is closed. */
static int copy_output(void)
{
	char buf[32768];
	for (;;) {
		ssize_t n = read(master, buf, sizeof buf);
		if (n > 0) {
			if (out_fd >= 0 && write_all(out_fd, buf, (size_t)n) < 0) {
				close(out_fd); /* nobody reads any more: keep draining so the container never blocks */
				out_fd = -1;
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && errno == EAGAIN ? 0 : -1;
	}
}

static void close_master(void)
{
	if (master >= 0)
		close(master);
	master = -1;
}

/* The process we watch ended, or never came to be: the last of its output, then its status. */
static int finish(int status, int code)
{
	if (master >= 0)
		copy_output();
	if (control_path)
		unlink(control_path);
	long long at = record_exit(exit_file, status);
	/* The time too, so that whoever follows us need not read the file. */
	if (notify_fd >= 0 && dprintf(notify_fd, "exit %d %lld\n", status, at) < 0)
		notify_fd = -1;
	return code;
}

/* Handles one reaped child. Returns the monitor's exit code when done, -1 to go on. */
static int reaped(pid_t pid, int st)
{
	if (pid == watched)
		return finish(status_of(st), 0);
	if (pid == child && !watched) {
		if (status_of(st) != 0 || (watched = read_pid(pid_file)) <= 0) {
			notify("failed %ld\n", status_of(st) ? status_of(st) : 255);
			return 1;
		}
		notify("pid %ld\n", watched);
		for (int k = 0; k < early; k++)
			if (early_pid[k] == watched)
				return finish(early_status[k], 0);
		return -1;
	}
	if (!watched && early < MAX_EARLY) {
		early_pid[early] = pid;
		early_status[early++] = status_of(st);
	}
	return -1;
}

static int listen_on(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof addr.sun_path) {
		fprintf(stderr, "berth-monitor: console socket path too long: %s\n", path);
		return -1;
	}
	strcpy(addr.sun_path, path);
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || chmod(path, 0600) < 0 || listen(fd, 1) < 0) {
		fprintf(stderr, "berth-monitor: console socket %s: %s\n", path, strerror(errno));
		return -1;
	}
	return fd;
}

static void handle_control(void)
{
	static char line[256];
	static size_t used;
	ssize_t n = read(control_fd, line + used, sizeof line - 1 - used);
	if (n <= 0)
		return;
	used += (size_t)n;
	char *nl;
	while ((nl = memchr(line, '\n', used))) {
		*nl = '\0';
		unsigned width, height;
		if (sscanf(line, "resize %u %u", &width, &height) == 2 && master >= 0) {
			struct winsize ws = { .ws_row = (unsigned short)height, .ws_col = (unsigned short)width };
			ioctl(master, TIOCSWINSZ, &ws);
		} else if (!strcmp(line, "close-stdin") && in_fd >= 0) {
			close(in_fd);
			in_fd = -1;
		}
		size_t rest = used - (size_t)(nl + 1 - line);
		memmove(line, nl + 1, rest);
		used = rest;
	}
	if (used == sizeof line - 1)
		used = 0; /* a line too long to be a request */
}

/* Reads what is in the discard pipe and drops it; closes it at EOF (no writer is left). */
static void drain_discard(void)
{
	char buf[32768];
	for (;;) {
		ssize_t n = read(discard, buf, sizeof buf);
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		close(discard);
		discard = -1;
		return;
	}
}

/* Console mode, or a discard pipe to drain: one poll loop for reaping (a signalfd), the console socket, the pty,
 * the control FIFO and the discard pipe. */
static int poll_loop(int sigfd, int listener)
{
	int conn = -1;
	for (;;) {
		struct pollfd p[7];
		int n = 0, i_sig = -1, i_lis = -1, i_conn = -1, i_master = -1, i_in = -1, i_ctl = -1, i_dis = -1;
		p[i_sig = n++] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
		if (listener >= 0)
			p[i_lis = n++] = (struct pollfd){ .fd = listener, .events = POLLIN };
		if (conn >= 0)
			p[i_conn = n++] = (struct pollfd){ .fd = conn, .events = POLLIN };
		if (master >= 0)
			p[i_master = n++] = (struct pollfd){ .fd = master, .events = POLLIN };
		if (master >= 0 && in_fd >= 0)
			p[i_in = n++] = (struct pollfd){ .fd = in_fd, .events = POLLIN };
		if (control_fd >= 0)
			p[i_ctl = n++] = (struct pollfd){ .fd = control_fd, .events = POLLIN };
		if (discard >= 0)
			p[i_dis = n++] = (struct pollfd){ .fd = discard, .events = POLLIN };
		if (poll(p, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("berth-monitor: poll");
			return 1;
		}
		if (i_lis >= 0 && p[i_lis].revents) {
			conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
			if (conn >= 0) {
				close(listener);
				listener = -1;
				unlink(console_path);
			}
		}
		if (i_conn >= 0 && p[i_conn].revents) {
			master = recv_fd(conn);
			close(conn);
			conn = -1;
			if (master >= 0)
				fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
		}
		if (i_master >= 0 && p[i_master].revents && copy_output() < 0)
			close_master(); /* every holder of the pty's peer is gone */
		if (i_in >= 0 && p[i_in].revents) {
			char buf[8192];
			ssize_t r = read(in_fd, buf, sizeof buf);
			if (r > 0 && master >= 0)
				write_all(master, buf, (size_t)r);
			else if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
				close(in_fd);
				in_fd = -1;
			}
		}
		if (i_ctl >= 0 && p[i_ctl].revents)
			handle_control();
		if (i_dis >= 0 && p[i_dis].revents)
			drain_discard();
		if (p[i_sig].revents) {
			struct signalfd_siginfo info;
			while (read(sigfd, &info, sizeof info) == sizeof info)
				;
			for (;;) {
				int st;
				pid_t pid = waitpid(-1, &st, WNOHANG);
				if (pid == 0)
					break;
				if (pid < 0) {
					if (errno == EINTR)
						continue;
					if (listener >= 0)
						unlink(console_path);
					return finish(255, 1); /* no children left and the watched process never appeared */
				}
				int done = reaped(pid, st);
				if (done >= 0) {
					if (listener >= 0)
						unlink(console_path);
					return done;
				}
			}
		}
	}
}

/* Opens the console-mode ends of the client's FIFOs: stdin without waiting for a writer, stdout as a shim must
 * (blocking until the reader is there). */
static int open_console_stdio(const char *in_path, const char *out_path)
{
	if (in_path && *in_path && (in_fd = open(in_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
		fprintf(stderr, "berth-monitor: open %s: %s\n", in_path, strerror(errno));
		return -1;
	}
	if (out_path && *out_path && (out_fd = open(out_path, O_WRONLY | O_APPEND | O_CLOEXEC)) < 0) {
		fprintf(stderr, "berth-monitor: open %s: %s\n", out_path, strerror(errno));
		return -1;
	}
	if (control_path) {
		if (mkfifo(control_path, 0600) < 0 && errno != EEXIST) {
			fprintf(stderr, "berth-monitor: mkfifo %s: %s\n", control_path, strerror(errno));
			return -1;
		}
		/* Read and write: the FIFO never reports EOF between two requests. */
		control_fd = open(control_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	}
	return 0;
}

/* One framed message ("<bytes>\n" then the bytes) from fd; NULL at EOF before it is whole. */
static char *read_framed(int fd, size_t *len_out)
{
	char header[32];
	size_t hl = 0;
	while (hl < sizeof header - 1) {
		ssize_t n = read(fd, header + hl, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL;
		if (header[hl++] == '\n')
			break;
	}
	header[hl] = 0;
	size_t len = strtoul(header, NULL, 10);
	char *buf = malloc(len + 1);
	size_t got = 0;
	while (buf && got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL;
		got += (size_t)n;
	}
	if (!buf)
		exit(2);
	buf[len] = 0;
	*len_out = len;
	return buf;
}

static void stdin_from_dev_null(void)
{
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0)
		exit(2);
	close(null);
}

/* A runtime CLI given no stdin reads EOF from a pipe, not the host's /dev/null: runsc chowns the stdio it is
 * given to its sandbox user, and so had chowned the host's /dev/null to nobody. Its stdout and stderr, where
 * they would be the host's /dev/null, are the discard pipe. */
static void stdin_from_empty_pipe(void)
{
	int p[2];
	if (pipe(p) < 0 || dup2(p[0], 0) < 0)
		_exit(126);
	if (p[0] != 0)
		close(p[0]);
	close(p[1]);
}

static int is_dev_null(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
}

/* Whether the command's fd (0, 1 or 2) comes from a --stdin/--stdout/--stderr path rather than from us. */
static int from_path(const char **stdio_path, int fd)
{
	return !console_path && stdio_path[fd] && *stdio_path[fd];
}

/* A spare's real argument vector, read from stdin; exits quietly at EOF (the spare was not needed). */
static char **read_spare_args(char *argv0, int *argc_out)
{
	size_t len;
	char *buf = read_framed(0, &len);
	if (!buf)
		exit(0);
	int argc = 1;
	for (size_t i = 0; i < len; i++)
		argc += buf[i] == 0;
	char **argv = calloc((size_t)argc + 1, sizeof *argv);
	if (!argv)
		exit(2);
	argv[0] = argv0;
	for (size_t i = 0, a = 1; i < len && (int)a < argc; a++) {
		argv[a] = buf + i;
		i += strlen(buf + i) + 1;
	}
	stdin_from_dev_null();
	*argc_out = argc;
	return argv;
}

/* The command's side of the fork: stdio from the paths, then the plan executor (no exec) or the command. */
static void run_child(const char **stdio_path, const char *init_plan, char **command, int listener, int sigfd)
{
	for (int fd = 0; fd < 3 && !console_path; fd++) {
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
	if (!init_plan && !from_path(stdio_path, 0))
		stdin_from_empty_pipe();
	for (int fd = 1; fd < 3 && !init_plan; fd++)
		if (discard_w >= 0 && !from_path(stdio_path, fd) && is_dev_null(fd) && dup2(discard_w, fd) < 0)
			_exit(126);
	if (init_plan) {
		/* No exec will close our own fds for the plan executor: the container must not inherit them. */
		int ours[] = { notify_fd, listener, sigfd, in_fd, out_fd, control_fd, discard, discard_w };
		for (size_t k = 0; k < sizeof ours / sizeof ours[0]; k++)
			if (ours[k] >= 0)
				close(ours[k]);
		_exit(init_main(init_plan, 4));
	}
	execvp(command[0], command);
	fprintf(stderr, "berth-monitor: exec %s: %s\n", command[0], strerror(errno));
	_exit(127);
}

/* A spare's child, forked before the spare knows what it will run, so that the shim can place it in the next
 * container's cgroups while idle (the container's init is then born there: no migration, whose first write
 * after a quiet spell waits out an RCU grace period, 10-20 ms here). It makes the next container's network
 * namespace meanwhile too (see init_prepared_netns). The shim writes it, on `go` (fd 5), its stdio paths and
 * plan, NUL-separated, at the same time as it writes the monitor its arguments; at EOF it was not needed. */
static void spare_child(int go)
{
	stdin_from_dev_null();
	close(3); /* the notify pipe is the monitor's */
	int host_net = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (host_net >= 0 && unshare(CLONE_NEWNET) == 0)
		init_prepared_netns = host_net;
	else if (host_net >= 0)
		close(host_net);
	size_t len;
	char *buf = read_framed(go, &len);
	if (!buf)
		_exit(0);
	close(go);
	const char *field[4] = {"", "", "", ""};
	for (size_t i = 0, f = 0; i < len && f < 4; f++) {
		field[f] = buf + i;
		i += strlen(buf + i) + 1;
	}
	run_child(field, field[3], NULL, -1, -1);
}

/* Spare mode (--spare): fork the child at once and tell the caller its pid; then wait on stdin for the real
 * arguments and go on as a monitor started with them, the child already forked (no exec: this process is
 * running, from the caller's sealed copy, the very program those arguments are for). */
static int monitor_main(int argc, char **argv, pid_t forked_pid);

static int spare_main(char **argv)
{
	/* Sealed before the fork: the container descends from the child. A subreaper before it too: the child runs
	 * its plan as soon as the shim hands it over, maybe before we have read our own arguments, and the
	 * container's init it leaves behind must become ours, not init's. */
	ensure_sealed_self(argv);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	pid_t staged = fork();
	if (staged < 0)
		return 2;
	if (staged == 0)
		spare_child(5);
	close(5); /* the child's alone: it sees EOF when the shim closes its end */
	dprintf(3, "spare %d\n", (int)staged);
	int argc;
	char **args = read_spare_args(argv[0], &argc);
	return monitor_main(argc, args, staged);
}

static int wait_loop(void)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			/* No children left and the watched process never appeared. */
			return finish(255, 1);
		}
		int done = reaped(pid, st);
		if (done >= 0)
			return done;
	}
}

/* What the command left beside the watched process was reparented to us (runsc's gofer, which ends just after
 * its sandbox; a daemon of a container without a PID namespace): reaped for a while after the exit is reported,
 * rather than left to the host's init, whose reaping may lag (and `runsc delete` waits for the gofer's pid to go). */
#define LEFTOVER_S 2
static void leftover_deadline(int sig)
{
	(void)sig;
}

static void reap_leftovers(void)
{
	/* Nothing of ours stays open meanwhile (the client's stdio or pty, the notify pipe, our stderr): readers see
	 * their end as soon as the exit is reported. */
	syscall(SYS_close_range, 0, ~0U, 0);
	/* No SA_RESTART: the alarm ends the blocking wait. */
	struct sigaction sa = { .sa_handler = leftover_deadline };
	sigaction(SIGALRM, &sa, NULL);
	alarm(LEFTOVER_S);
	while (waitpid(-1, NULL, 0) > 0)
		; /* until none is left (ECHILD) or the alarm (EINTR): what outlives it outlives us, as before */
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--spare") == 0)
		return spare_main(argv);
	return monitor_main(argc, argv, 0);
}

/* forked_pid: a spare's child, already forked, which the shim hands its plan (0 for none). */
static int monitor_main(int argc, char **argv, pid_t forked_pid)
{
	if (argc < 5) {
		fprintf(stderr, "usage: berth-monitor EXIT_FILE NOTIFY_FD [--pid-file FILE] [--stdin P] [--stdout P] [--stderr P] "
				"[--console-socket SOCK [--control FIFO]] -- COMMAND [ARGS...]\n");
		return 2;
	}
	exit_file = argv[1];
	notify_fd = atoi(argv[2]);
	const char *stdio_path[3] = {NULL, NULL, NULL}, *init_plan = NULL;
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
		else if (strcmp(argv[i], "--console-socket") == 0)
			console_path = argv[i + 1];
		else if (strcmp(argv[i], "--control") == 0)
			control_path = argv[i + 1];
		else if (strcmp(argv[i], "--init") == 0)
			init_plan = argv[i + 1];
		else
			break;
	}
	if (!init_plan && (i >= argc || strcmp(argv[i], "--") != 0 || i + 1 >= argc)) {
		fprintf(stderr, "berth-monitor: expected -- COMMAND or --init PLAN\n");
		return 2;
	}
	char **command = init_plan ? NULL : argv + i + 1;
	if (init_plan)
		ensure_sealed_self(argv);

	/* Orphans of the command (the container's init once `create` exits) become our children. Our own session:
	 * a signal to the shim's process group does not reach us. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("berth-monitor: PR_SET_CHILD_SUBREAPER");
		return 1;
	}
	setsid();
	signal(SIGPIPE, SIG_IGN);
	fcntl(notify_fd, F_SETFD, FD_CLOEXEC);

	/* fd 4, when handed to us, is the command's (berth-init's sync socket); nothing above it is ours. */
	int handed = fcntl(4, F_GETFD) >= 0;
	syscall(SYS_close_range, 5U, ~0U, 0U);
	int listener = -1, sigfd = -1;
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (console_path && ((listener = listen_on(console_path)) < 0 || open_console_stdio(stdio_path[0], stdio_path[1]) < 0)) {
		notify("failed %ld\n", 126);
		return 1;
	}
	if (!init_plan && ((!from_path(stdio_path, 1) && is_dev_null(1)) || (!from_path(stdio_path, 2) && is_dev_null(2)))) {
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0) {
			perror("berth-monitor: pipe");
			return 1;
		}
		discard = p[0];
		discard_w = p[1];
		fcntl(discard, F_SETFL, O_NONBLOCK);
	}
	if (console_path || discard >= 0) {
		/* Blocked before the fork, so no exit is missed; the child unblocks it before exec. */
		sigprocmask(SIG_BLOCK, &chld, NULL);
		sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	}

	if (forked_pid > 0 && init_plan && !console_path) {
		child = forked_pid;
	} else {
		if (forked_pid > 0)
			kill(forked_pid, SIGKILL); /* not for this command */
		child = fork();
		if (child < 0) {
			perror("berth-monitor: fork");
			return 1;
		}
		if (child == 0) {
			sigprocmask(SIG_UNBLOCK, &chld, NULL);
			run_child(stdio_path, init_plan, command, listener, sigfd);
		}
	}

	/* berth-init's sync socket belongs to the command: holding a copy would keep the other end from seeing it
	 * close. So is the discard pipe's write end. */
	if (handed)
		close(4);
	if (discard_w >= 0)
		close(discard_w);
	discard_w = -1;

	watched = pid_file ? 0 : child;
	if (watched)
		notify("pid %ld\n", watched);
	int code = console_path || discard >= 0 ? poll_loop(sigfd, listener) : wait_loop();
	reap_leftovers();
	return code;
}
