/* The OCI hooks that run inside the container: createContainer (in its namespaces, before pivot_root, the path
 * resolved in the runtime's view) and startContainer (after start, before the process is executed, the path
 * resolved in the container). Record: hook <kind> <timeout s> <path> <nargs> <args...> <env...>. */
#define _GNU_SOURCE
#include "hooks.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *state_creating, *state_created;

static char *slurp(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	ssize_t r;
	while (buf && (r = read(fd, buf + n, cap - n)) > 0)
		if ((n += (size_t)r) == cap)
			buf = realloc(buf, (cap *= 2) + 1);
	close(fd);
	if (buf)
		buf[n] = '\0';
	return buf;
}

void hooks_load_state(struct plan *plan)
{
	for (int i = 0; i < plan->count; i++) {
		struct record *r = &plan->records[i];
		if (!strcmp(r->tag, "hookstate") && r->argc >= 2) {
			state_creating = slurp(r->argv[0]);
			state_created = slurp(r->argv[1]);
		}
	}
}

static int run_one(struct record *r, const char *state, char *err, size_t errlen)
{
	const char *kind = r->argv[0], *path = r->argv[2];
	int timeout = atoi(r->argv[1]), nargs = atoi(r->argv[3]);
	if (nargs < 0 || 4 + nargs > r->argc) {
		snprintf(err, errlen, "%s hook %s: malformed plan record", kind, path);
		return -1;
	}
	const char **args = calloc((size_t)nargs + 2, sizeof *args);
	const char **env = calloc((size_t)(r->argc - 4 - nargs) + 1, sizeof *env);
	for (int i = 0; i < nargs; i++)
		args[i] = r->argv[4 + i];
	if (nargs == 0)
		args[0] = path;
	for (int i = 4 + nargs, j = 0; i < r->argc; i++, j++)
		env[j] = r->argv[i];

	int in[2], errp[2];
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "%s hook %s: pipe: %s", kind, path, strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		dup2(in[0], 0);
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC); /* dup2 gives fd 1 without the flag; no other copy stays */
		dup2(null >= 0 ? null : errp[1], 1);
		dup2(errp[1], 2);
		execve(path, (char *const *)args, (char *const *)env);
		dprintf(2, "exec: %s", strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(errp[1]);
	if (pid < 0) {
		snprintf(err, errlen, "%s hook %s: fork: %s", kind, path, strerror(errno));
		return -1;
	}
	/* A hook need not read its stdin: a full pipe or a closed one must not stop us. */
	signal(SIGPIPE, SIG_IGN);
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	if (state && write(in[1], state, strlen(state)) < 0 && errno != EPIPE && errno != EAGAIN) {
		/* nothing to do: the hook's exit status decides */
	}
	close(in[1]);
	signal(SIGPIPE, SIG_DFL);

	int status = 0, timed_out = 0;
	struct timespec start, now, tick = { 0, 2000000 };
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (timeout > 0 && now.tv_sec - start.tv_sec >= timeout) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			timed_out = 1;
			break;
		}
		nanosleep(&tick, NULL);
	}
	char msg[512] = { 0 };
	ssize_t n = read(errp[0], msg, sizeof msg - 1);
	close(errp[0]);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	free(args);
	free(env);
	if (timed_out) {
		snprintf(err, errlen, "%s hook %s timed out after %ds", kind, path, timeout);
		return -1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	/* Worded as runc's ("error running hook", the signal's name in lower case), which callers look for. */
	if (WIFSIGNALED(status)) {
		char name[64];
		snprintf(name, sizeof name, "%s", strsignal(WTERMSIG(status)));
		name[0] = (char)tolower((unsigned char)name[0]);
		snprintf(err, errlen, "error running hook: %s hook %s killed by signal %d (%s)%s%s", kind, path, WTERMSIG(status), name, *msg ? ": " : "", msg);
	} else
		snprintf(err, errlen, "error running hook: %s hook %s exited with status %d%s%s", kind, path, WEXITSTATUS(status), *msg ? ": " : "", msg);
	return -1;
}

int hooks_run(struct plan *plan, const char *kind, char *err, size_t errlen)
{
	const char *state = !strcmp(kind, "createContainer") ? state_creating : state_created;
	for (int i = 0; i < plan->count; i++) {
		struct record *r = &plan->records[i];
		if (!strcmp(r->tag, "hook") && r->argc >= 4 && !strcmp(r->argv[0], kind) && run_one(r, state, err, errlen) < 0)
			return -1;
	}
	return 0;
}
