#define _GNU_SOURCE
#include "setup.h"
#include "console.h"
#include "hooks.h"
#include "rootfs.h"
#include "seccomp_agent.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static int report;

void fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	dprintf(report, "error %s\n", msg);
	_exit(1);
}

/* After the report pipe is gone (post-start), errors go to the container's stderr, as runc's do, and the
 * process exits 1, as runc's init does (a failed startContainer hook, seccomp, credentials); a program that
 * cannot be exec'd exits 127, as in a shell. */
static void __attribute__((noreturn, format(printf, 2, 3))) fail_late_with(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("berth-init: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	_exit(status);
}
#define fail_late(...) fail_late_with(1, __VA_ARGS__)

static void write_proc(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, strlen(value)) < 0)
		fail("writing %s: %s", path, strerror(errno));
	close(fd);
}

static void apply_early(struct record *r)
{
	const char **a = r->argv;
	if (!strcmp(r->tag, "hostname")) {
		if (sethostname(a[0], strlen(a[0])) < 0)
			fail("sethostname %s: %s", a[0], strerror(errno));
	} else if (!strcmp(r->tag, "domainname")) {
		if (setdomainname(a[0], strlen(a[0])) < 0)
			fail("setdomainname %s: %s", a[0], strerror(errno));
	} else if (!strcmp(r->tag, "rlimit")) {
		struct rlimit rl = { strtoull(a[1], NULL, 10), strtoull(a[2], NULL, 10) };
		if (setrlimit(atoi(a[0]), &rl) < 0)
			fail("setrlimit %s: %s", a[0], strerror(errno));
	} else if (!strcmp(r->tag, "oomscoreadj")) {
		write_proc("/proc/self/oom_score_adj", a[0]);
	}
}

static int last_cap(void)
{
	int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	char buf[16] = { 0 };
	if (fd < 0 || read(fd, buf, sizeof buf - 1) <= 0)
		return CAP_LAST_CAP;
	close(fd);
	return atoi(buf);
}

static void load_seccomp(const char *flags, const char *hex)
{
	size_t n = strlen(hex) / 2;
	unsigned char *bytes = malloc(n);
	for (size_t i = 0; i < n; i++)
		sscanf(hex + 2 * i, "%2hhx", &bytes[i]);
	struct sock_fprog prog = { .len = (unsigned short)(n / sizeof(struct sock_filter)), .filter = (struct sock_filter *)bytes };
	unsigned filter_flags = (unsigned)strtoul(flags, NULL, 10);
	long listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, filter_flags, &prog);
	if (listener < 0)
		fail_late("loading the seccomp filter: %s", strerror(errno));
	char err[600];
	if ((filter_flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) && seccomp_agent_send((int)listener, err, sizeof err) < 0)
		fail_late("%s", err);
}

struct exec_plan {
	const char **args, **env, **groups, *cwd, *umask, *seccomp_flags, *seccomp_hex;
	struct record *caps;
	int ngroups, nnp, has_user;
	uid_t uid;
	gid_t gid;
};

static void collect_exec(struct plan *p, struct exec_plan *e)
{
	memset(e, 0, sizeof *e);
	for (int i = 0; i < p->count; i++) {
		struct record *r = &p->records[i];
		if (!strcmp(r->tag, "args"))
			e->args = r->argv;
		else if (!strcmp(r->tag, "env"))
			e->env = r->argv;
		else if (!strcmp(r->tag, "cwd"))
			e->cwd = r->argv[0];
		else if (!strcmp(r->tag, "umask"))
			e->umask = r->argv[0];
		else if (!strcmp(r->tag, "nnp"))
			e->nnp = 1;
		else if (!strcmp(r->tag, "caps"))
			e->caps = r;
		else if (!strcmp(r->tag, "groups"))
			e->groups = r->argv, e->ngroups = r->argc;
		else if (!strcmp(r->tag, "seccomp"))
			e->seccomp_flags = r->argv[0], e->seccomp_hex = r->argv[1];
		else if (!strcmp(r->tag, "user")) {
			e->has_user = 1;
			e->uid = (uid_t)strtoul(r->argv[0], NULL, 10);
			e->gid = (gid_t)strtoul(r->argv[1], NULL, 10);
		}
	}
	if (!e->args || !e->args[0])
		fail("plan has no process args");
}

static void set_credentials_and_caps(struct exec_plan *e)
{
	uint64_t bnd = ~0ULL, eff = ~0ULL, perm = ~0ULL, inh = 0, amb = 0;
	if (e->caps) {
		const char **a = e->caps->argv;
		bnd = strtoull(a[0], NULL, 10), eff = strtoull(a[1], NULL, 10), perm = strtoull(a[2], NULL, 10);
		inh = strtoull(a[3], NULL, 10), amb = strtoull(a[4], NULL, 10);
	}
	int last = last_cap();
	for (int c = 0; c <= last; c++)
		if (!(bnd & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
			fail_late("dropping capability %d from the bounding set: %s", c, strerror(errno));
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		fail_late("keepcaps: %s", strerror(errno));
	gid_t groups[256];
	int ngroups = e->ngroups > 256 ? 256 : e->ngroups;
	for (int i = 0; i < ngroups; i++)
		groups[i] = (gid_t)strtoul(e->groups[i], NULL, 10);
	if (setgroups((size_t)ngroups, groups) < 0 && errno != EPERM)
		fail_late("setgroups: %s", strerror(errno));
	if (e->has_user) {
		if (setresgid(e->gid, e->gid, e->gid) < 0)
			fail_late("setgid %u: %s", e->gid, strerror(errno));
		if (setresuid(e->uid, e->uid, e->uid) < 0)
			fail_late("setuid %u: %s", e->uid, strerror(errno));
	}
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = {
		{ (uint32_t)eff, (uint32_t)perm, (uint32_t)inh },
		{ (uint32_t)(eff >> 32), (uint32_t)(perm >> 32), (uint32_t)(inh >> 32) },
	};
	if (syscall(SYS_capset, &hdr, data) < 0)
		fail_late("capset: %s", strerror(errno));
	/* Ambient capabilities need the cap in permitted and inheritable; like runc, missing ones are skipped. */
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	for (int c = 0; c <= last; c++)
		if (amb & (1ULL << c))
			prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0);
}

static const char *env_value(const char **env, const char *name)
{
	size_t len = strlen(name);
	for (; env && *env; env++)
		if (!strncmp(*env, name, len) && (*env)[len] == '=')
			return *env + len + 1;
	return NULL;
}

/* The program to exec: args[0] itself when it has a slash, else the first executable match on the process's
 * PATH; NULL when there is none. */
static const char *resolve_executable(const char **env, const char *file)
{
	if (strchr(file, '/'))
		return access(file, X_OK) == 0 ? file : NULL;
	const char *path = env_value(env, "PATH");
	char candidate[4096];
	for (const char *p = path; p && *p;) {
		const char *colon = strchrnul(p, ':');
		snprintf(candidate, sizeof candidate, "%.*s/%s", (int)(colon - p), p, file);
		if (access(candidate, X_OK) == 0)
			return strdup(candidate);
		p = *colon ? colon + 1 : colon;
	}
	return NULL;
}

static void exec_process(struct exec_plan *e)
{
	static const char *no_env[] = { NULL };
	const char **env = e->env ? e->env : no_env;
	const char *file = resolve_executable(env, e->args[0]);
	execve(file ? file : e->args[0], (char *const *)e->args, (char *const *)env);
	fail_late_with(127, "exec %s: %s", e->args[0], strerror(errno));
}

void container_setup(struct plan *plan, int report_fd, int sync_fd, int console_fd)
{
	report = report_fd;
	close(sync_fd);
	struct exec_plan exec;
	collect_exec(plan, &exec);
	/* In a new user namespace, become its root (as runc's nsexec does): what we create (mount points on a tmpfs
	 * of the namespace, devices) must belong to an id mapped there, else the kernel says EOVERFLOW. */
	for (int i = 0; i < plan->count; i++)
		if (!strcmp(plan->records[i].tag, "uidmap") && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
			fail("becoming root of the new user namespace (are uid and gid 0 mapped?): %s", strerror(errno));
	for (int i = 0; i < plan->count; i++)
		apply_early(&plan->records[i]);

	hooks_load_state(plan);
	int fifo = prepare_rootfs(plan);
	if (exec.cwd) {
		ensure_dir(exec.cwd);
		if (chdir(exec.cwd) < 0)
			fail("chdir to cwd %s: %s", exec.cwd, strerror(errno));
	}
	/* CVE-2024-21626: the cwd must be inside the container's root, never a leaked host directory. */
	char cwd[4096];
	if (!getcwd(cwd, sizeof cwd) || cwd[0] != '/')
		fail("working directory is outside the container root");
	if (exec.umask)
		umask((mode_t)strtoul(exec.umask, NULL, 8));

	if (console_fd >= 0) {
		unsigned short width = 0, height = 0;
		for (int i = 0; i < plan->count; i++)
			if (!strcmp(plan->records[i].tag, "console") && plan->records[i].argc >= 3)
				width = (unsigned short)atoi(plan->records[i].argv[1]), height = (unsigned short)atoi(plan->records[i].argv[2]);
		char err[256];
		if (console_setup(console_fd, width, height, exec.has_user ? exec.uid : 0, exec.has_user ? exec.gid : 0, err, sizeof err) < 0)
			fail("%s", err);
	}

	const char *preserve = NULL;
	for (int i = 0; i < plan->count; i++)
		if (!strcmp(plan->records[i].tag, "preservefds"))
			preserve = plan->records[i].argv[0];
	unsigned first_closed = 3 + (preserve ? (unsigned)atoi(preserve) : 0);
	/* A program that is not there fails the create or exec itself, as runc looks it up before it reports
	 * success (a startContainer hook cannot be counted on to provide it). */
	static const char *no_env[] = { NULL };
	if (exec.args && !resolve_executable(exec.env ? exec.env : no_env, exec.args[0]))
		fail("exec: \"%s\": executable file not found in $PATH", exec.args[0]);
	dprintf(report, "ready\n");
	close(report);
	/* No host fd may reach the container: everything above stdio and the preserved fds closes on exec. */
	syscall(SYS_close_range, first_closed, ~0U, CLOSE_RANGE_CLOEXEC);

	if (fifo >= 0) {
		char path[64];
		snprintf(path, sizeof path, "/proc/self/fd/%d", fifo);
		int w = open(path, O_WRONLY | O_CLOEXEC);
		if (w < 0 || write(w, "0", 1) != 1)
			fail_late("waiting for start on the exec fifo: %s", strerror(errno));
		close(w);
		close(fifo);
	}
	if (exec.seccomp_hex && !exec.nnp)
		load_seccomp(exec.seccomp_flags, exec.seccomp_hex); /* needs CAP_SYS_ADMIN without no_new_privs */
	set_credentials_and_caps(&exec);
	if (exec.nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail_late("no_new_privs: %s", strerror(errno));
	if (exec.seccomp_hex && exec.nnp)
		load_seccomp(exec.seccomp_flags, exec.seccomp_hex);
	/* As runc: startContainer hooks run as the process will, with its credentials, capabilities and filter. */
	char hook_err[600];
	if (hooks_run(plan, "startContainer", hook_err, sizeof hook_err) < 0)
		fail_late("%s", hook_err);
	exec_process(&exec);
}
