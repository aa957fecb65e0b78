/* Device control in the guest (cgroup v2 has no devices files): the host compiles a container's device rules to a
 * BPF_PROG_TYPE_CGROUP_DEVICE program (runtimes/cgroups/devices-bpf.ts); the agent loads it and attaches it to
 * the container's cgroup, then detaches what was attached there before, so a replacement leaves no moment
 * without rules. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The kernel's classic BPF_MAXINSNS; runtimes/vm/guest-cgroup.ts refuses larger rule sets before a VM boots. */
#define DEVICE_PROG_MAX_INSNS 4096
#define MAX_ATTACHED 64

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

static int load(const uint8_t *insns, size_t len, char *log, size_t loglen)
{
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	a.expected_attach_type = BPF_CGROUP_DEVICE;
	a.insns = (uint64_t)(uintptr_t)insns;
	a.insn_cnt = (uint32_t)(len / sizeof(struct bpf_insn));
	a.license = (uint64_t)(uintptr_t) "Apache";
	if (log) {
		a.log_level = 1;
		a.log_buf = (uint64_t)(uintptr_t)log;
		a.log_size = (uint32_t)loglen;
	}
	return sys_bpf(BPF_PROG_LOAD, &a);
}

/* The verifier's last lines (its log ends with the reason, then its statistics), joined on one line. */
static const char *verdict(char *log)
{
	static char out[1024];
	size_t n = strlen(log);
	while (n && log[n - 1] == '\n')
		log[--n] = '\0';
	char *last = strrchr(log, '\n');
	if (last && !strncmp(last + 1, "processed ", 10)) {
		*last = '\0';
		n = (size_t)(last - log);
	}
	int lines = 0;
	while (n && !(log[n - 1] == '\n' && ++lines == 3))
		n--;
	out[0] = '\0';
	for (char *save, *line = strtok_r(log + n, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", out[0] ? " | " : "", line);
	return out;
}

/* Attaches prog to the cgroup cg, then detaches the device programs attached there before. */
static int replace(int cg, int prog, const char *dir, char *err, size_t errlen)
{
	uint32_t ids[MAX_ATTACHED];
	union bpf_attr q;
	memset(&q, 0, sizeof q);
	q.query.target_fd = (uint32_t)cg;
	q.query.attach_type = BPF_CGROUP_DEVICE;
	q.query.prog_ids = (uint64_t)(uintptr_t)ids;
	q.query.prog_cnt = MAX_ATTACHED;
	if (sys_bpf(BPF_PROG_QUERY, &q) < 0) {
		snprintf(err, errlen, "device program: querying %s: %s", dir, strerror(errno));
		return -1;
	}
	union bpf_attr at;
	memset(&at, 0, sizeof at);
	at.target_fd = (uint32_t)cg;
	at.attach_bpf_fd = (uint32_t)prog;
	at.attach_type = BPF_CGROUP_DEVICE;
	at.attach_flags = BPF_F_ALLOW_MULTI;
	if (sys_bpf(BPF_PROG_ATTACH, &at) < 0) {
		snprintf(err, errlen, "device program: attaching it to %s: %s", dir, strerror(errno));
		return -1;
	}
	for (uint32_t i = 0; i < q.query.prog_cnt && i < MAX_ATTACHED; i++) {
		union bpf_attr g;
		memset(&g, 0, sizeof g);
		g.prog_id = ids[i];
		int old = sys_bpf(BPF_PROG_GET_FD_BY_ID, &g);
		if (old < 0)
			continue; /* gone meanwhile */
		union bpf_attr d;
		memset(&d, 0, sizeof d);
		d.target_fd = (uint32_t)cg;
		d.attach_bpf_fd = (uint32_t)old;
		d.attach_type = BPF_CGROUP_DEVICE;
		int r = sys_bpf(BPF_PROG_DETACH, &d);
		int e = errno;
		close(old);
		if (r < 0) {
			/* The old program stays beside the new one: a device passes only if both allow it. */
			snprintf(err, errlen, "device program: detaching the previous program %u from %s: %s", ids[i], dir, strerror(e));
			errno = e;
			return -1;
		}
	}
	return 0;
}

int cgroup_device_program(const char *dir, const uint8_t *insns, size_t len, char *err, size_t errlen)
{
	if (!len || len % sizeof(struct bpf_insn) || len / sizeof(struct bpf_insn) > DEVICE_PROG_MAX_INSNS) {
		snprintf(err, errlen, "device program: %zu bytes are not 1 to %d eBPF instructions of 8 bytes", len, DEVICE_PROG_MAX_INSNS);
		errno = EINVAL;
		return -1;
	}
	int prog = load(insns, len, NULL, 0);
	if (prog < 0) {
		int e = errno;
		static char log[16384];
		log[0] = '\0';
		/* Again with the verifier's log, for the reason (the first try skips the cost of writing it). */
		int again = load(insns, len, log, sizeof log);
		if (again >= 0)
			close(again);
		if (again >= 0 || !log[0])
			snprintf(err, errlen, "device program: loading it: %s", strerror(e));
		else
			snprintf(err, errlen, "device program: loading it: %s: verifier: %s", strerror(e), verdict(log));
		errno = e;
		return -1;
	}
	int cg = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = cg < 0 ? -1 : replace(cg, prog, dir, err, errlen);
	int e = errno;
	if (cg < 0)
		snprintf(err, errlen, "device program: opening cgroup %s: %s", dir, strerror(e));
	else
		close(cg);
	close(prog);
	errno = e;
	return r;
}
