#ifndef BERTH_HOOKS_H
#define BERTH_HOOKS_H

#include "plan.h"

/* Reads the state JSON files named by the plan's `hookstate` record (host paths: call before pivot_root). */
void hooks_load_state(struct plan *plan);

/* Runs the plan's hooks of `kind` (createContainer, startContainer) in order, each with the state JSON on stdin
 * and killed after its timeout. Returns 0, or -1 with a message naming the hook in err. */
int hooks_run(struct plan *plan, const char *kind, char *err, size_t errlen);

#endif
