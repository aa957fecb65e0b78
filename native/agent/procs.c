/* Containers and their processes. A container's init and each exec run a plan made on the host through the same
 * executor as there (../init.c's init_main, in a forked helper): the agent plays the runtime's part of the sync
 * protocol (reads "pid N", gives the go-ahead unless the plan proceeds alone, waits for "ready"). A helper in
 * mode create exits once the process is set up, so the process becomes our child (we are PID 1) and we reap it.
 * Output is buffered (bounded) until the host reads it; stdin is buffered until the process takes it. */
#define _GNU_SOURCE
#include "agent.h"
#include "procs.h"
#include "../console.h"
#include "../init.h"
#include "../plan.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

struct container *containers;
struct proc *procs;

/* Exits reaped before their pid was reported to us (a helper that was quicker than our loop). */
static struct {
	pid_t pid;
	int status;
} early[64];
static unsigned nearly;

void containers_list(struct buf *out, uint32_t field)
{
	for (struct container *c = containers; c; c = c->next)
		pb_put_str(out, field, c->id);
}

struct container *container_find(const char *id)
{
	for (struct container *c = containers; c; c = c->next)
		if (!strcmp(c->id, id))
			return c;
	return NULL;
}

struct container *container_of_request(uint32_t stream, const struct pb_msg *m, const char *call)
{
	char id[256];
	if (pb_str(m, 1, id, sizeof id) < 0 || !id[0]) {
		reply_err(stream, ST_INVALID_ARGUMENT, "%s: container_id: want a non-empty id", call);
		return NULL;
	}
	struct container *c = container_find(id);
	if (!c)
		reply_err(stream, ST_NOT_FOUND, "%s: container %s not found", call, id);
	return c;
}

/* The process named by fields 1 (container) and 2 (exec id, empty for the init). */
struct proc *proc_of_request(uint32_t stream, const struct pb_msg *m, const char *call)
{
	struct container *c = container_of_request(stream, m, call);
	char exec_id[256];
	if (!c)
		return NULL;
	if (pb_str(m, 2, exec_id, sizeof exec_id) < 0) {
		reply_err(stream, ST_INVALID_ARGUMENT, "%s: malformed exec_id", call);
		return NULL;
	}
	for (struct proc *p = procs; p; p = p->next)
		if (p->c == c && !strcmp(p->exec_id, exec_id) && (p->ready || exec_id[0] || p == c->init))
			return p;
	reply_err(stream, ST_NOT_FOUND, "%s: process %s of container %s not found", call, exec_id[0] ? exec_id : "(init)", c->id);
	return NULL;
}

/* --- output --- */
void answer_read(struct proc *p, struct out_stream *s)
{
	if (!live(&s->w) || (!s->data.len && !s->eof))
		return;
	size_t n = s->data.len < s->w.len ? s->data.len : s->w.len;
	struct buf res = { 0 };
	if (n)
		pb_put_bytes(&res, 1, s->data.data, n);
	reply_ok(s->w.stream, &res);
	buf_free(&res);
	buf_consume(&s->data, n);
	s->w.stream = 0;
	if (s->fd >= 0 && !s->eof)
		watch_events(s->fd, POLLIN);
	(void)p;
}

static void close_out(struct out_stream *s)
{
	if (s->fd >= 0) {
		watch_del(s->fd);
		close(s->fd);
		s->fd = -1;
	}
	s->eof = 1;
}

static void on_output(void *ctx, int fd, short revents)
{
	struct proc *p = ctx;
	struct out_stream *s = p->out.fd == fd ? &p->out : &p->err;
	(void)revents;
	while (s->data.len < OUT_CAP) {
		char chunk[65536];
		size_t room = OUT_CAP - s->data.len;
		ssize_t n = read(fd, chunk, room < sizeof chunk ? room : sizeof chunk);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) { /* EOF, or EIO: a pty whose last user closed it */
			if (s == &p->out && p->pty >= 0)
				p->pty = -1;
			close_out(s);
			break;
		}
		buf_put(&s->data, chunk, (size_t)n);
	}
	if (s->fd >= 0 && s->data.len >= OUT_CAP)
		watch_events(s->fd, 0);
	answer_read(p, s);
}

/* --- stdin --- */
void close_stdin_now(struct proc *p)
{
	if (p->in_fd >= 0) {
		watch_del(p->in_fd);
		close(p->in_fd);
	}
	p->in_fd = -1;
	p->in.len = 0;
}

void on_stdin_writable(void *ctx, int fd, short revents)
{
	struct proc *p = ctx;
	(void)revents;
	while (p->in.len) {
		ssize_t n = write(fd, p->in.data, p->in.len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) { /* the process closed its stdin: what it did not take is dropped */
			close_stdin_now(p);
			return;
		}
		buf_consume(&p->in, (size_t)n);
	}
	if (!p->in.len && p->in_close && !p->terminal)
		close_stdin_now(p);
	else
		watch_events(fd, p->in.len ? POLLOUT : 0);
}

/* --- exit --- */
static void answer_waits(struct proc *p)
{
	struct buf res = { 0 };
	pb_put_varint(&res, 1, (uint64_t)p->status);
	pb_put_varint(&res, 2, p->exited_at);
	for (int i = 0; i < p->nwaits; i++)
		if (live(&p->waits[i]))
			reply_ok(p->waits[i].stream, &res);
	p->nwaits = 0;
	buf_free(&res);
}

static int exit_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

static void mark_exited(struct proc *p, int status)
{
	if (p->exited)
		return;
	p->exited = 1;
	p->status = status;
	p->exited_at = now_ns();
	if (p->in_fd >= 0 && !p->terminal)
		close_stdin_now(p);
	answer_waits(p);
}

void procs_reaped(pid_t pid, int status)
{
	for (struct proc *p = procs; p; p = p->next) {
		if (p->pid == pid && !p->mode_run && !p->exited) { /* an exited one's pid may be reused */
			mark_exited(p, exit_status(status));
			return;
		}
		if (p->helper == pid) {
			p->helper = 0;
			/* In mode run the helper waits for the process and exits with its status. */
			if (p->mode_run && p->ready)
				mark_exited(p, WIFEXITED(status) ? WEXITSTATUS(status) : exit_status(status));
			return;
		}
	}
	early[nearly++ % 64] = (typeof(early[0])){ pid, status };
}

/* --- creation --- */
void free_proc(struct proc *p)
{
	for (struct proc **pp = &procs; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	close_out(&p->out);
	close_out(&p->err);
	close_stdin_now(p);
	int fds[] = { p->sync_fd, p->console_listen, p->console_conn, p->pty };
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (fds[i] >= 0) {
			watch_del(fds[i]);
			close(fds[i]);
		}
	if (p->console_path[0])
		unlink(p->console_path);
	unlink(p->plan_path);
	/* Waiters still owed an answer get one: output ended, and the exit as known. */
	struct out_stream *ss[] = { &p->out, &p->err };
	for (int i = 0; i < 2; i++)
		answer_read(p, ss[i]);
	if (!p->exited) {
		p->status = 255;
		p->exited_at = now_ns();
	}
	answer_waits(p);
	buf_free(&p->out.data);
	buf_free(&p->err.data);
	buf_free(&p->in);
	buf_free(&p->sync);
	free(p->exec_id);
	free(p);
}

void free_container(struct container *c)
{
	for (struct container **pp = &containers; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	cgroup_unwatch_oom(c);
	if (c->execfifo)
		unlink(c->execfifo);
	free(c->execfifo);
	free(c->cgroup);
	free(c->id);
	free(c);
}

/* The creating process failed: answer the call, undo what was made. */
static void creation_failed(struct proc *p, const char *msg)
{
	if (live(&p->create))
		reply_err(p->create.stream, ST_FAILED_PRECONDITION, "%s", msg);
	p->create.stream = 0;
	if (p->pid > 0)
		kill(p->pid, SIGKILL);
	if (p->helper > 0)
		kill(p->helper, SIGKILL);
	struct container *c = p->c;
	int was_init = c->init == p;
	free_proc(p);
	if (was_init) {
		if (c->cgroup[0]) {
			cgroup_signal(c->cgroup, SIGKILL);
			cgroup_wait_empty(c->cgroup, 1000);
			rmdir(c->cgroup);
		}
		free_container(c);
	}
}

static void on_console(void *ctx, int fd, short revents)
{
	struct proc *p = ctx;
	(void)revents;
	if (fd == p->console_listen) {
		int conn = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (conn < 0)
			return;
		watch_del(fd);
		close(fd);
		p->console_listen = -1;
		p->console_conn = conn;
		watch_add(conn, POLLIN, on_console, p);
		return;
	}
	int master = recv_fd(fd);
	watch_del(fd);
	close(fd);
	p->console_conn = -1;
	if (master < 0)
		return;
	fcntl(master, F_SETFL, O_NONBLOCK);
	p->pty = master;
	p->out.fd = master;
	p->out.eof = 0;
	p->in_fd = dup(master);
	fcntl(p->in_fd, F_SETFD, FD_CLOEXEC);
	watch_add(p->out.fd, POLLIN, on_output, p);
	watch_add(p->in_fd, 0, on_stdin_writable, p);
}

static void became_ready(struct proc *p)
{
	p->ready = 1;
	if (live(&p->create)) {
		struct buf res = { 0 };
		pb_put_varint(&res, 1, (uint64_t)p->pid);
		reply_ok(p->create.stream, &res);
		buf_free(&res);
	}
	p->create.stream = 0;
	watch_del(p->sync_fd);
	close(p->sync_fd);
	p->sync_fd = -1;
	for (unsigned i = 0; i < 64 && i < nearly; i++)
		if (early[i].pid == p->pid && p->pid > 0) {
			early[i].pid = 0;
			procs_reaped(p->pid, early[i].status);
		}
}

static void on_sync(void *ctx, int fd, short revents)
{
	struct proc *p = ctx;
	char chunk[2048];
	(void)revents;
	ssize_t n = read(fd, chunk, sizeof chunk);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		creation_failed(p, "the plan executor exited before the process was ready");
		return;
	}
	buf_put(&p->sync, chunk, (size_t)n);
	char *nl;
	while ((nl = memchr(p->sync.data, '\n', p->sync.len))) {
		*nl = '\0';
		char *line = (char *)p->sync.data;
		if (!strncmp(line, "pid ", 4)) {
			p->pid = (pid_t)atoi(line + 4);
			if (p->move_in) {
				char pid[16];
				snprintf(pid, sizeof pid, "%d", p->pid);
				cgroup_write(p->c->cgroup, "cgroup.procs", pid);
			}
			if (!p->proceed && write(fd, "g", 1) != 1) {
				creation_failed(p, "giving the go-ahead to the plan executor failed");
				return;
			}
		} else if (!strcmp(line, "ready")) {
			buf_consume(&p->sync, (size_t)(nl - line) + 1);
			became_ready(p);
			return;
		} else {
			char msg[1200];
			snprintf(msg, sizeof msg, "%s", strncmp(line, "error ", 6) ? line : line + 6);
			creation_failed(p, msg);
			return;
		}
		buf_consume(&p->sync, (size_t)(nl - line) + 1);
	}
}

/* What the agent must know of a plan before it runs: its mode, exec fifo, console socket, whether it proceeds
 * alone, and the cgroup2 directory it is born in. */
struct plan_facts {
	int run, proceed;
	char fifo[1024], console[200], cgroup2[1024];
};

static void plan_free(struct plan *plan)
{
	for (int i = 0; i < plan->count; i++)
		free(plan->records[i].argv);
	free(plan->records);
}

/* mkdir -p of a file's directory. */
static int make_parent(const char *file)
{
	char dir[1024];
	snprintf(dir, sizeof dir, "%s", file);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *s = dir + 1;; s++) {
		if (*s && *s != '/')
			continue;
		char saved = *s;
		*s = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return -1;
		if (!saved)
			return 0;
		*s = saved;
	}
}

static int plan_facts(const uint8_t *data, size_t len, struct plan_facts *f, char *err, size_t errlen)
{
	memset(f, 0, sizeof *f);
	char *copy = malloc(len + 1);
	memcpy(copy, data, len);
	struct plan plan;
	if (plan_parse(copy, len, &plan, err, errlen) < 0) {
		plan_free(&plan);
		free(copy);
		return -1;
	}
	for (int i = 0; i < plan.count; i++) {
		struct record *r = &plan.records[i];
		const char *a = r->argc ? r->argv[0] : "";
		if (!strcmp(r->tag, "mode"))
			f->run = !strcmp(a, "run");
		else if (!strcmp(r->tag, "proceed"))
			f->proceed = 1;
		else if (!strcmp(r->tag, "execfifo"))
			snprintf(f->fifo, sizeof f->fifo, "%s", a);
		else if (!strcmp(r->tag, "console"))
			snprintf(f->console, sizeof f->console, "%s", a);
		else if (!strcmp(r->tag, "cgroup2"))
			snprintf(f->cgroup2, sizeof f->cgroup2, "%s", a);
	}
	plan_free(&plan);
	free(copy);
	return 0;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof addr.sun_path)
		return -1;
	strcpy(addr.sun_path, path);
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 1) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Forks the helper that runs the plan. Returns the new process, or NULL having replied with the error. */
struct proc *run_plan(uint32_t stream, struct container *c, const char *exec_id, const struct pb_field *plan,
			     int terminal, const struct pb_field *stdio_field)
{
	static unsigned serial;
	char err[512];
	struct plan_facts f;
	if (plan->wire != PB_LEN || plan_facts(plan->b, plan->n, &f, err, sizeof err) < 0) {
		reply_err(stream, ST_INVALID_ARGUMENT, "plan: %s", plan->wire == PB_LEN ? err : "missing");
		return NULL;
	}
	if (terminal != !!f.console[0]) {
		reply_err(stream, ST_INVALID_ARGUMENT, "plan: terminal is %s but the plan %s a console socket", terminal ? "set" : "not set", f.console[0] ? "names" : "has no");
		return NULL;
	}
	struct pb_msg stdio;
	if (stdio_field && (stdio_field->wire != PB_LEN || pb_parse(&stdio, stdio_field->b, stdio_field->n) < 0)) {
		reply_err(stream, ST_INVALID_ARGUMENT, "stdio: malformed");
		return NULL;
	}
	int want[3] = { 0 };
	for (int i = 0; i < 3 && stdio_field; i++)
		want[i] = !!pb_u64(&stdio, (uint32_t)i + 1);
	if (f.cgroup2[0] && cgroup_mkdir(f.cgroup2, err, sizeof err) < 0) {
		reply_err(stream, ST_INVALID_ARGUMENT, "%s", err);
		return NULL;
	}
	if ((f.fifo[0] && make_parent(f.fifo) < 0) || (f.console[0] && make_parent(f.console) < 0) ||
	    (f.fifo[0] && mkfifo(f.fifo, 0600) < 0 && errno != EEXIST)) {
		reply_err(stream, status_of_errno(errno), "exec fifo %s: %s", f.fifo, strerror(errno));
		return NULL;
	}
	struct proc *p = calloc(1, sizeof *p);
	p->c = c;
	p->exec_id = strdup(exec_id);
	p->mode_run = f.run;
	p->proceed = f.proceed;
	p->move_in = !f.cgroup2[0] && !f.proceed && c->cgroup[0];
	p->terminal = terminal;
	p->in_fd = p->out.fd = p->err.fd = p->sync_fd = p->console_listen = p->console_conn = p->pty = -1;
	p->out.eof = p->err.eof = 1;
	snprintf(p->plan_path, sizeof p->plan_path, "/run/berth/%u.plan", ++serial);
	int child_fds[3] = { -1, -1, -1 }, sv[2] = { -1, -1 };
	int pfd = open(p->plan_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int ok = pfd >= 0 && write(pfd, plan->b, plan->n) == (ssize_t)plan->n;
	if (pfd >= 0)
		close(pfd);
	if (ok && terminal) {
		snprintf(p->console_path, sizeof p->console_path, "%s", f.console);
		ok = (p->console_listen = listen_unix(f.console)) >= 0;
	}
	for (int i = 0; ok && i < 3 && !terminal; i++) {
		if (!want[i])
			continue;
		int pp[2];
		if (pipe2(pp, O_CLOEXEC) < 0) {
			ok = 0;
			break;
		}
		child_fds[i] = i == 0 ? pp[0] : pp[1];
		int mine = i == 0 ? pp[1] : pp[0];
		fcntl(mine, F_SETFL, O_NONBLOCK);
		if (i == 0)
			p->in_fd = mine;
		else {
			struct out_stream *s = i == 1 ? &p->out : &p->err;
			s->fd = mine;
			s->eof = 0;
		}
	}
	ok = ok && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0;
	pid_t helper = ok ? fork() : -1;
	if (helper == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		int devnull = open("/dev/null", O_RDWR);
		for (int i = 0; i < 3; i++)
			dup2(child_fds[i] >= 0 ? child_fds[i] : devnull, i);
		int sync = fcntl(sv[1], F_DUPFD, 3);
		syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
		fcntl(sync, F_SETFD, 0);
		setsid();
		_exit(init_main(p->plan_path, sync));
	}
	int e = errno;
	for (int i = 0; i < 3; i++)
		if (child_fds[i] >= 0)
			close(child_fds[i]);
	if (sv[1] >= 0)
		close(sv[1]);
	p->sync_fd = sv[0];
	p->next = procs;
	procs = p;
	if (helper < 0) {
		reply_err(stream, status_of_errno(e), "preparing the process: %s", strerror(e));
		free_proc(p);
		return NULL;
	}
	p->helper = helper;
	p->create = waiter_of(stream, 0);
	fcntl(p->sync_fd, F_SETFL, O_NONBLOCK);
	watch_add(p->sync_fd, POLLIN, on_sync, p);
	if (p->console_listen >= 0)
		watch_add(p->console_listen, POLLIN, on_console, p);
	if (p->out.fd >= 0)
		watch_add(p->out.fd, POLLIN, on_output, p);
	if (p->err.fd >= 0)
		watch_add(p->err.fd, POLLIN, on_output, p);
	if (p->in_fd >= 0)
		watch_add(p->in_fd, 0, on_stdin_writable, p);
	if (f.fifo[0])
		c->execfifo = strdup(f.fifo);
	return p;
}
