/* berth-agent: the guest's PID 1. It serves berth.agent.v1.Agent (api/proto/berth/agent/v1/agent.proto) over
 * ttrpc on a virtio-serial port and runs containers with the same plan executor as the host (../init.c). One
 * thread, one poll loop: every fd the agent waits on is a watch. */
#ifndef BERTH_AGENT_H
#define BERTH_AGENT_H

#include "pb.h"

#include <stdint.h>
#include <sys/types.h>

#define AGENT_VERSION "0.1.0"

/* gRPC status codes (google.rpc.Code). */
enum {
	ST_CANCELLED = 1, ST_UNKNOWN = 2, ST_INVALID_ARGUMENT = 3, ST_NOT_FOUND = 5, ST_ALREADY_EXISTS = 6,
	ST_RESOURCE_EXHAUSTED = 8, ST_FAILED_PRECONDITION = 9, ST_UNIMPLEMENTED = 12, ST_INTERNAL = 13,
};

void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --- the poll loop (main.c) --- */
typedef void (*watch_fn)(void *ctx, int fd, short revents);
void watch_add(int fd, short events, watch_fn fn, void *ctx);
void watch_events(int fd, short events);
void watch_del(int fd);
/* Asks the loop to wake within ms (a retry of something not pollable). */
void loop_wake_within(int ms);
uint64_t now_ns(void);

/* --- ttrpc on the port (ttrpc.c) --- */
void ttrpc_open(const char *port_path);
/* Called on every loop turn: notices a host that connected again. */
void ttrpc_tick(void);
/* Sends what is queued for the host, waiting (bounded) for the port: before powering off. */
void ttrpc_flush(int timeout_ms);
void reboot_now(void) __attribute__((noreturn));
void reply_ok(uint32_t stream, const struct buf *payload);
void reply_err(uint32_t stream, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The status for an errno. */
int status_of_errno(int err);

/* A long-poll call waiting for something: answered once, or cancelled when the host goes away. */
struct waiter {
	uint32_t stream;
	uint32_t len;
	uint64_t epoch;
};
/* Bumps on each host disconnect: a waiter from an older epoch has no one to answer to. */
extern uint64_t ttrpc_epoch;
/* Whether the waiter's call still waits for an answer (and its host is still there). */
int live(const struct waiter *w);
struct waiter waiter_of(uint32_t stream, uint32_t len);
/* Makes `stream` the call waiting in w; an older call still waiting there (its caller gave up on it) is answered
 * CANCELLED, so that nothing is ever answered to nobody. */
void waiter_replace(struct waiter *w, uint32_t stream, uint32_t len, const char *call);

/* --- handlers (service.c, procs.c, cgroup.c) --- */
typedef void (*handler_fn)(uint32_t stream, const uint8_t *payload, size_t len);
handler_fn handler_of(const char *method);

void h_ping(uint32_t, const uint8_t *, size_t);
void h_create_sandbox(uint32_t, const uint8_t *, size_t);
void h_destroy_sandbox(uint32_t, const uint8_t *, size_t);
void h_create_container(uint32_t, const uint8_t *, size_t);
void h_start_container(uint32_t, const uint8_t *, size_t);
void h_remove_container(uint32_t, const uint8_t *, size_t);
void h_exec_process(uint32_t, const uint8_t *, size_t);
void h_signal_process(uint32_t, const uint8_t *, size_t);
void h_wait_process(uint32_t, const uint8_t *, size_t);
void h_write_stdin(uint32_t, const uint8_t *, size_t);
void h_read_stdout(uint32_t, const uint8_t *, size_t);
void h_read_stderr(uint32_t, const uint8_t *, size_t);
void h_close_stdin(uint32_t, const uint8_t *, size_t);
void h_tty_win_resize(uint32_t, const uint8_t *, size_t);
void h_list_processes(uint32_t, const uint8_t *, size_t);
void h_update_container(uint32_t, const uint8_t *, size_t);
void h_stats_container(uint32_t, const uint8_t *, size_t);
void h_pause_container(uint32_t, const uint8_t *, size_t);
void h_resume_container(uint32_t, const uint8_t *, size_t);
void h_get_oom_event(uint32_t, const uint8_t *, size_t);
void h_configure_network(uint32_t, const uint8_t *, size_t);
void h_relay_dns(uint32_t, const uint8_t *, size_t);
void h_read_dns_query(uint32_t, const uint8_t *, size_t);
void h_answer_dns_query(uint32_t, const uint8_t *, size_t);

/* --- the sandbox's network (net.c) --- */
/* Makes the network namespace the sandbox's containers join (once; CreateSandbox). -1 with the reason in err. */
int net_sandbox_init(char *err, size_t errlen);
/* A non-blocking socket in the sandbox's network namespace: -1 with errno (ENOENT: there is none yet). */
int net_sandbox_socket(int domain, int type);

/* --- containers and processes (procs.c) --- */
struct proc;
struct container {
	struct container *next;
	char *id;
	/* The container's cgroup v2 directory in the guest ("" without one). */
	char *cgroup;
	char *execfifo;
	struct proc *init;
	int started;
	/* memory.events watch (inotify) and the oom_kill count seen so far. */
	int oom_wd;
	uint64_t oom_kills;
};
/* Every container id, for Ping. */
void containers_list(struct buf *out, uint32_t field);
/* A child exited (from the SIGCHLD reaper). */
void procs_reaped(pid_t pid, int status);
/* Kills every container's processes (DestroySandbox). */
void procs_kill_all(void);
struct container *container_find(const char *id);
extern struct container *containers;
/* The container named by field 1 of a request (replying NOT_FOUND or INVALID_ARGUMENT itself when there is none). */
struct container *container_of_request(uint32_t stream, const struct pb_msg *m, const char *call);

/* --- cgroups (cgroup.c, devices.c) --- */
/* Creates dir and its parents under /sys/fs/cgroup, each parent delegating every controller to its children. */
int cgroup_mkdir(const char *dir, char *err, size_t errlen);
int cgroup_write(const char *dir, const char *file, const char *value);
/* Signals every process in dir; with SIGKILL, cgroup.kill where the kernel has it. */
void cgroup_signal(const char *dir, int sig);
/* Waits (bounded) until dir has no live process, reaping children meanwhile. */
void cgroup_wait_empty(const char *dir, int timeout_ms);
void cgroup_watch_oom(struct container *c);
void cgroup_unwatch_oom(struct container *c);
/* Answers waiting GetOOMEvent calls (an OOM event of a removed container is kept). */
void cgroup_oom_init(void);

/* Loads a device program (the host-compiled eBPF instructions) and makes it dir's: attached, then whatever device
 * programs were attached to dir before are detached. -1 with errno and the reason in err. */
int cgroup_device_program(const char *dir, const uint8_t *insns, size_t len, char *err, size_t errlen);

/* Reads a whole small file into out (appended). -1 with errno on failure. */
int read_small_file(const char *path, struct buf *out);

#endif
