/* The calls about containers and processes: create, start, exec, signal, wait, stdio, remove. */
#define _GNU_SOURCE
#include "procs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define READ_MAX (1u << 20)
#define STDIN_CAP (4u << 20)

static int parse(uint32_t stream, struct pb_msg *m, const uint8_t *payload, size_t len, const char *call)
{
	if (pb_parse(m, payload, len) == 0)
		return 0;
	reply_err(stream, ST_INVALID_ARGUMENT, "%s: malformed request", call);
	return -1;
}

static int valid_id(const char *id)
{
	return id[0] && !strchr(id, '/') && strcmp(id, ".") && strcmp(id, "..");
}

void h_create_container(uint32_t stream, const uint8_t *payload, size_t len)
{
	struct pb_msg m;
	char id[256], cg[1024], err[1024];
	if (parse(stream, &m, payload, len, "CreateContainer") < 0)
		return;
	if (pb_str(&m, 1, id, sizeof id) < 0 || !valid_id(id) || pb_str(&m, 5, cg, sizeof cg) < 0) {
		reply_err(stream, ST_INVALID_ARGUMENT, "CreateContainer: want a container_id without '/' and a cgroup_path");
		return;
	}
	if (container_find(id)) {
		reply_err(stream, ST_ALREADY_EXISTS, "CreateContainer: container %s already exists", id);
		return;
	}
	/* Empty (as proto3 may send an unset field): no device rules. */
	const struct pb_field *devices = m.set[6] && (m.f[6].wire != PB_LEN || m.f[6].n) ? &m.f[6] : NULL;
	if (devices && (devices->wire != PB_LEN || !cg[0])) {
		reply_err(stream, ST_INVALID_ARGUMENT, "CreateContainer: a device_program needs a cgroup_path to attach to");
		return;
	}
	if (cg[0] && cgroup_mkdir(cg, err, sizeof err) < 0) {
		reply_err(stream, ST_INVALID_ARGUMENT, "CreateContainer: %s", err);
		return;
	}
	/* Before the init is cloned into the cgroup: none of the container's processes runs without its rules. */
	if (devices && cgroup_device_program(cg, devices->b, devices->n, err, sizeof err) < 0) {
		reply_err(stream, status_of_errno(errno), "CreateContainer: %s", err);
		rmdir(cg);
		return;
	}
	struct container *c = calloc(1, sizeof *c);
	c->id = strdup(id);
	c->cgroup = strdup(cg);
	c->oom_wd = -1;
	c->next = containers;
	containers = c;
	static const struct pb_field none = { 0 };
	struct proc *p = run_plan(stream, c, "", m.set[2] ? &m.f[2] : &none, !!pb_u64(&m, 3), m.set[4] ? &m.f[4] : NULL);
	if (!p) {
		free_container(c);
		if (cg[0])
			rmdir(cg);
		return;
	}
	c->init = p;
	if (cg[0])
		cgroup_watch_oom(c);
}

void h_exec_process(uint32_t stream, const uint8_t *payload, size_t len)
{
	struct pb_msg m;
	char exec_id[256];
	if (parse(stream, &m, payload, len, "ExecProcess") < 0)
		return;
	struct container *c = container_of_request(stream, &m, "ExecProcess");
	if (!c)
		return;
	if (pb_str(&m, 2, exec_id, sizeof exec_id) < 0 || !exec_id[0]) {
		reply_err(stream, ST_INVALID_ARGUMENT, "ExecProcess: want an exec_id");
		return;
	}
	for (struct proc *p = procs; p; p = p->next)
		if (p->c == c && !strcmp(p->exec_id, exec_id)) {
			reply_err(stream, ST_ALREADY_EXISTS, "ExecProcess: exec %s already exists in container %s", exec_id, c->id);
			return;
		}
	if (!c->init || !c->init->ready || c->init->exited) {
		reply_err(stream, ST_FAILED_PRECONDITION, "ExecProcess: container %s is not running", c->id);
		return;
	}
	static const struct pb_field none = { 0 };
	run_plan(stream, c, exec_id, m.set[3] ? &m.f[3] : &none, !!pb_u64(&m, 4), m.set[5] ? &m.f[5] : NULL);
}

void h_start_container(uint32_t stream, const uint8_t *payload, size_t len)
{
	struct pb_msg m;
	if (parse(stream, &m, payload, len, "StartContainer") < 0)
		return;
	struct container *c = container_of_request(stream, &m, "StartContainer");
	if (!c)
		return;
	if (c->started || !c->init || !c->init->ready || !c->execfifo) {
		reply_err(stream, ST_FAILED_PRECONDITION, "StartContainer: container %s is not created%s", c->id, c->started ? " (it was started)" : "");
		return;
	}
	/* The container's init waits in open(O_WRONLY) on the fifo: our open lets it write its byte and exec. */
	int fd = open(c->execfifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char byte;
	int ok = fd >= 0 && poll(&pfd, 1, 5000) == 1 && read(fd, &byte, 1) == 1;
	if (fd >= 0)
		close(fd);
	if (!ok) {
		reply_err(stream, ST_FAILED_PRECONDITION, "StartContainer: container %s: its init did not take the start (exited?)", c->id);
		return;
	}
	unlink(c->execfifo);
	c->started = 1;
	reply_ok(stream, NULL);
}

void h_signal_process(uint32_t stream, const uint8_t *payload, size_t len)
{
	struct pb_msg m;
	if (parse(stream, &m, payload, len, "SignalProcess") < 0)
		return;
	uint64_t sig = pb_u64(&m, 3);
	if (sig < 1 || sig > 64) {
		reply_err(stream, ST_INVALID_ARGUMENT, "SignalProcess: signal %llu is not a signal", (unsigned long long)sig);
		return;
	}
	if (pb_u64(&m, 4)) {
		struct container *c = container_of_request(stream, &m, "SignalProcess");
		if (!c)
			return;
		if (c->cgroup[0]) {
			/* A frozen task does not act on SIGKILL until thawed. */
			cgroup_signal(c->cgroup, (int)sig);
			if (sig == SIGKILL)
				cgroup_write(c->cgroup, "cgroup.freeze", "0");
		} else if (c->init && c->init->pid > 0 && !c->init->exited)
			kill(c->init->pid, (int)sig);
		reply_ok(stream, NULL);
		return;
	}
	struct proc *p = proc_of_request(stream, &m, "SignalProcess");
	if (!p)
		return;
	if (p->exited || p->pid <= 0) {
		reply_err(stream, ST_NOT_FOUND, "SignalProcess: the process is not running");
		return;
	}
	if (kill(p->pid, (int)sig) < 0) {
		reply_err(stream, status_of_errno(errno), "SignalProcess: %s", strerror(errno));
		return;
	}
	reply_ok(stream, NULL);
}

void h_wait_process(uint32_t stream, const uint8_t *payload, size_t len)
{
	struct pb_msg m;
	if (parse(stream, &m, payload, len, "WaitProcess") < 0)
		return;
	struct proc *p = proc_of_request(stream, &m, "WaitProcess");
	if (!p)
		return;
	if (p->exited) {
		struct buf res = { 0 };
		pb_put_varint(&res, 1, (uint64_t)p->status);
		pb_put_varint(&res, 2, p->exited_at);
		reply_ok(stream, &res);
		buf_free(&res);
		return;
	}
	/* Waiters of a host that went away are dropped first. */
	int n = 0;
	for (int i = 0; i < p->nwaits; i++)
		if (live(&p->waits[i]))
			p->waits[n++] = p->waits[i];
	p->nwaits = n;
	if (p->nwaits == (int)(sizeof p->waits / sizeof p->waits[0])) {
		reply_err(stream, ST_RESOURCE_EXHAUSTED, "WaitProcess: too many waiters");
		return;
	}
	p->waits[p->nwaits++] = waiter_of(stream, 0);
}

static void read_stream(uint32_t stream, const uint8_t *payload, size_t len, int which)
{
	struct pb_msg m;
	const char *call = which == 1 ? "ReadStdout" : "ReadStderr";
	if (parse(stream, &m, payload, len, call) < 0)
		return;
	struct proc *p = proc_of_request(stream, &m, call);
	if (!p)
		return;
	struct out_stream *s = which == 1 ? &p->out : &p->err;
	uint64_t want = pb_u64(&m, 3);
	waiter_replace(&s->w, stream, want && want < READ_MAX ? (uint32_t)want : READ_MAX, call);
	answer_read(p, s);
}

void h_read_stdout(uint32_t stream, const uint8_t *payload, size_t len) { read_stream(stream, payload, len, 1); }
void h_read_stderr(uint32_t stream, const uint8_t *payload, size_t len) { read_stream(stream, payload, len, 2); }

void h_write_stdin(uint32_t stream, const uint8_t *payload, size_t len)
{
	struct pb_msg m;
	if (parse(stream, &m, payload, len, "WriteStdin") < 0)
		return;
	struct proc *p = proc_of_request(stream, &m, "WriteStdin");
	if (!p)
		return;
	if (p->in_fd < 0 || p->in_close) {
		reply_err(stream, ST_FAILED_PRECONDITION, "WriteStdin: the process's stdin is closed");
		return;
	}
	size_t n = m.set[3] && m.f[3].wire == PB_LEN ? m.f[3].n : 0;
	if (p->in.len + n > STDIN_CAP) {
		reply_err(stream, ST_RESOURCE_EXHAUSTED, "WriteStdin: %zu bytes wait for the process already", p->in.len);
		return;
	}
	buf_put(&p->in, m.f[3].b, n);
	on_stdin_writable(p, p->in_fd, POLLOUT);
	struct buf res = { 0 };
	pb_put_varint(&res, 1, n);
	reply_ok(stream, &res);
	buf_free(&res);
}

void h_close_stdin(uint32_t stream, const uint8_t *payload, size_t len)
{
	struct pb_msg m;
	if (parse(stream, &m, payload, len, "CloseStdin") < 0)
		return;
	struct proc *p = proc_of_request(stream, &m, "CloseStdin");
	if (!p)
		return;
	if (p->terminal && p->in_fd >= 0 && !p->in_close) {
		/* A terminal has no end of input but the line discipline's: send it EOF (^D). */
		buf_put(&p->in, "\x04", 1);
		p->in_close = 1;
		on_stdin_writable(p, p->in_fd, POLLOUT);
	} else if (p->in_fd >= 0) {
		p->in_close = 1;
		on_stdin_writable(p, p->in_fd, POLLOUT);
	}
	reply_ok(stream, NULL);
}

void h_tty_win_resize(uint32_t stream, const uint8_t *payload, size_t len)
{
	struct pb_msg m;
	if (parse(stream, &m, payload, len, "TtyWinResize") < 0)
		return;
	struct proc *p = proc_of_request(stream, &m, "TtyWinResize");
	if (!p)
		return;
	struct winsize ws = { .ws_row = (unsigned short)pb_u64(&m, 3), .ws_col = (unsigned short)pb_u64(&m, 4) };
	if (p->pty < 0) {
		reply_err(stream, ST_FAILED_PRECONDITION, "TtyWinResize: the process has no terminal");
		return;
	}
	if (ioctl(p->pty, TIOCSWINSZ, &ws) < 0) {
		reply_err(stream, status_of_errno(errno), "TtyWinResize: %s", strerror(errno));
		return;
	}
	reply_ok(stream, NULL);
}

/* Kills what is left of the container, waits (bounded) for its cgroup to empty, and forgets it. */
static void remove_container(struct container *c)
{
	for (struct proc *p = procs; p; p = p->next)
		if (p->c == c) {
			if (p->pid > 0 && !p->exited)
				kill(p->pid, SIGKILL);
			if (p->helper > 0)
				kill(p->helper, SIGKILL);
		}
	if (c->cgroup[0]) {
		cgroup_write(c->cgroup, "cgroup.freeze", "0");
		cgroup_signal(c->cgroup, SIGKILL);
		cgroup_wait_empty(c->cgroup, 2000);
		rmdir(c->cgroup);
	}
	for (struct proc *p = procs, *next; p; p = next) {
		next = p->next;
		if (p->c == c)
			free_proc(p);
	}
	free_container(c);
}

void h_remove_container(uint32_t stream, const uint8_t *payload, size_t len)
{
	struct pb_msg m;
	if (parse(stream, &m, payload, len, "RemoveContainer") < 0)
		return;
	struct container *c = container_of_request(stream, &m, "RemoveContainer");
	if (!c)
		return;
	remove_container(c);
	reply_ok(stream, NULL);
}

void procs_kill_all(void)
{
	while (containers)
		remove_container(containers);
}
