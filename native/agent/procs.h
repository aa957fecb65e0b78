/* What procs.c and calls.c share about processes. */
#ifndef BERTH_AGENT_PROCS_H
#define BERTH_AGENT_PROCS_H

#include "agent.h"

#define OUT_CAP (1u << 20)
#define MAX_WAITERS 16

struct out_stream {
	int fd;
	int eof;
	struct buf data;
	struct waiter w;
};

struct proc {
	struct proc *next;
	struct container *c;
	char *exec_id;
	pid_t pid, helper;
	int ready, exited, status, mode_run, terminal;
	/* The plan is not born in the container's cgroup: the agent moves the process there before the go-ahead. */
	int move_in;
	uint64_t exited_at;
	/* Stdin: our end of its pipe (or the pty master), what is not written yet, and a CloseStdin to do after. */
	int in_fd, in_close;
	struct buf in;
	struct out_stream out, err;
	int pty;
	/* Creation: the sync socket with the helper, the answer owed to Create/Exec, the console socket. */
	int sync_fd, proceed;
	struct buf sync;
	struct waiter create;
	int console_listen, console_conn;
	char plan_path[64], console_path[200];
	struct waiter waits[MAX_WAITERS];
	int nwaits;
};

extern struct proc *procs;

/* The process named by fields 1 (container) and 2 (exec id, empty for the init), or NULL having replied. */
struct proc *proc_of_request(uint32_t stream, const struct pb_msg *m, const char *call);
void answer_read(struct proc *p, struct out_stream *s);
void on_stdin_writable(void *ctx, int fd, short revents);
void close_stdin_now(struct proc *p);
void free_proc(struct proc *p);
void free_container(struct container *c);
/* Forks the helper that runs the plan; the Create/Exec call is answered once it is ready. NULL having replied. */
struct proc *run_plan(uint32_t stream, struct container *c, const char *exec_id, const struct pb_field *plan, int terminal,
		      const struct pb_field *stdio);

#endif
