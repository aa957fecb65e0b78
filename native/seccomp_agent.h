#ifndef BERTH_SECCOMP_AGENT_H
#define BERTH_SECCOMP_AGENT_H
#include <stddef.h>
#include "plan.h"

/* Seccomp user notification (the plan's `seccompagent <listener path> <state file>` record): the listener fd a
 * filter with SCMP_ACT_NOTIFY rules gives goes to the agent listening at the profile's listenerPath, in one
 * message with the container process state JSON the runtime wrote (runtime-spec ContainerProcessState), as runc
 * sends it. Each returns 0, or -1 with a message in err. */

/* Connects to the agent and opens the state file's directory: both are host paths, so this runs before any
 * namespace is joined or made. Without the record, does nothing. */
int seccomp_agent_open(struct plan *plan, char *err, size_t errlen);

/* In the parent, once the container process is cloned: its copies are not needed there. */
void seccomp_agent_close(void);

/* In the container process once the runtime has written the state (after its go-ahead): reads it. */
int seccomp_agent_read_state(char *err, size_t errlen);

/* Sends the listener fd with the state to the agent, then closes both: the container keeps no copy, so the
 * agent's exit makes notified syscalls fail (ENOSYS) rather than hang. */
int seccomp_agent_send(int listener, char *err, size_t errlen);

#endif
