/* ptyrun: runs a command on a real pty, as a person at a terminal would, for tests of terminal behaviour.
 * usage: ptyrun COLS ROWS [--resize COLS2 ROWS2] -- COMMAND [ARGS...]
 * Our stdin is copied to the pty, the pty's output to our stdout; on SIGUSR1 the window is resized to COLS2 x
 * ROWS2 (the kernel sends SIGWINCH to the command). Exits with the command's status (128+signal if killed). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t resize_asked;

static void ask_resize(int sig)
{
	(void)sig;
	resize_asked = 1;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: ptyrun COLS ROWS [--resize COLS2 ROWS2] -- COMMAND...\n");
		return 2;
	}
	struct winsize ws = { .ws_col = (unsigned short)atoi(argv[1]), .ws_row = (unsigned short)atoi(argv[2]) };
	struct winsize ws2 = { 0 };
	int i = 3;
	if (!strcmp(argv[i], "--resize") && argc > i + 3) {
		ws2.ws_col = (unsigned short)atoi(argv[i + 1]);
		ws2.ws_row = (unsigned short)atoi(argv[i + 2]);
		i += 3;
	}
	struct sigaction sa = { .sa_handler = ask_resize };
	sigaction(SIGUSR1, &sa, NULL);
	if (strcmp(argv[i], "--") || i + 1 >= argc) {
		fprintf(stderr, "ptyrun: expected -- COMMAND\n");
		return 2;
	}
	int master;
	pid_t pid = forkpty(&master, NULL, NULL, &ws);
	if (pid < 0) {
		perror("ptyrun: forkpty");
		return 1;
	}
	if (pid == 0) {
		execvp(argv[i + 1], argv + i + 1);
		perror("ptyrun: exec");
		_exit(127);
	}
	int in_open = 1;
	char buf[8192];
	for (;;) {
		struct pollfd p[2] = { { .fd = master, .events = POLLIN }, { .fd = 0, .events = POLLIN } };
		if (resize_asked) {
			resize_asked = 0;
			ioctl(master, TIOCSWINSZ, &ws2);
		}
		int n = poll(p, in_open ? 2 : 1, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (p[0].revents) {
			ssize_t n = read(master, buf, sizeof buf);
			if (n <= 0)
				break; /* EIO: every holder of the pty's peer is gone */
			if (write(1, buf, (size_t)n) < 0)
				break;
		}
		if (in_open && p[1].revents) {
			ssize_t n = read(0, buf, sizeof buf);
			if (n <= 0)
				in_open = 0;
			else if (write(master, buf, (size_t)n) < 0)
				break;
		}
	}
	int status;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
