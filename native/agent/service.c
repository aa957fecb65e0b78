/* The method table, and the calls about the sandbox as a whole: Ping, CreateSandbox (the share, the hostname, the
 * sandbox's network namespace: net.c), DestroySandbox. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

static const struct {
	const char *name;
	handler_fn fn;
} methods[] = {
	{ "Ping", h_ping },
	{ "CreateSandbox", h_create_sandbox },
	{ "DestroySandbox", h_destroy_sandbox },
	{ "CreateContainer", h_create_container },
	{ "StartContainer", h_start_container },
	{ "RemoveContainer", h_remove_container },
	{ "ExecProcess", h_exec_process },
	{ "SignalProcess", h_signal_process },
	{ "WaitProcess", h_wait_process },
	{ "ListProcesses", h_list_processes },
	{ "UpdateContainer", h_update_container },
	{ "StatsContainer", h_stats_container },
	{ "PauseContainer", h_pause_container },
	{ "ResumeContainer", h_resume_container },
	{ "WriteStdin", h_write_stdin },
	{ "ReadStdout", h_read_stdout },
	{ "ReadStderr", h_read_stderr },
	{ "CloseStdin", h_close_stdin },
	{ "TtyWinResize", h_tty_win_resize },
	{ "GetOOMEvent", h_get_oom_event },
	{ "ConfigureNetwork", h_configure_network },
	{ "RelayDns", h_relay_dns },
	{ "ReadDnsQuery", h_read_dns_query },
	{ "AnswerDnsQuery", h_answer_dns_query },
};

handler_fn handler_of(const char *method)
{
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
		if (!strcmp(methods[i].name, method))
			return methods[i].fn;
	return NULL;
}

int read_small_file(const char *path, struct buf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char chunk[4096];
	ssize_t n;
	while ((n = read(fd, chunk, sizeof chunk)) > 0)
		buf_put(out, chunk, (size_t)n);
	int e = errno;
	close(fd);
	errno = e;
	return n < 0 ? -1 : 0;
}

void h_ping(uint32_t stream, const uint8_t *payload, size_t len)
{
	(void)payload;
	(void)len;
	struct utsname u;
	uname(&u);
	struct buf res = { 0 };
	pb_put_str(&res, 1, AGENT_VERSION);
	pb_put_str(&res, 2, u.release);
	containers_list(&res, 3);
	reply_ok(stream, &res);
	buf_free(&res);
}

/* mkdir -p */
static int make_dirs(const char *path)
{
	char p[4096];
	if (strlen(path) >= sizeof p) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(p, path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	return mkdir(p, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

void h_create_sandbox(uint32_t stream, const uint8_t *payload, size_t len)
{
	struct pb_msg m;
	char tag[256], mnt[1024], host[65];
	if (pb_parse(&m, payload, len) < 0 || pb_str(&m, 1, tag, sizeof tag) < 0 || pb_str(&m, 2, mnt, sizeof mnt) < 0 ||
	    pb_str(&m, 3, host, sizeof host) < 0) {
		reply_err(stream, ST_INVALID_ARGUMENT, "CreateSandbox: malformed request");
		return;
	}
	if (tag[0]) {
		if (mnt[0] != '/' || strstr(mnt, "..")) {
			reply_err(stream, ST_INVALID_ARGUMENT, "CreateSandbox: share_mount %s: want an absolute path", mnt);
			return;
		}
		if (make_dirs(mnt) < 0 || mount(tag, mnt, "virtiofs", MS_NODEV, NULL) < 0) {
			int e = errno;
			reply_err(stream, status_of_errno(e), "CreateSandbox: mounting virtio-fs %s on %s: %s", tag, mnt, strerror(e));
			return;
		}
	}
	if (host[0] && sethostname(host, strlen(host)) < 0) {
		reply_err(stream, ST_INVALID_ARGUMENT, "CreateSandbox: hostname %s: %s", host, strerror(errno));
		return;
	}
	char err[512];
	if (net_sandbox_init(err, sizeof err) < 0) {
		reply_err(stream, ST_INTERNAL, "CreateSandbox: %s", err);
		return;
	}
	reply_ok(stream, NULL);
}

void reboot_now(void)
{
	reboot(RB_POWER_OFF);
	reboot(RB_AUTOBOOT);
	for (;;)
		pause();
}

void h_destroy_sandbox(uint32_t stream, const uint8_t *payload, size_t len)
{
	(void)payload;
	(void)len;
	procs_kill_all();
	sync();
	reply_ok(stream, NULL);
	ttrpc_flush(1000);
	logmsg("destroying the sandbox: powering off");
	reboot_now();
}
