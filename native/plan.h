/* The plan berth-init executes: a flat list of records produced by runtimes/oci/plan.ts.
 * Wire format (version 1): the file is a sequence of NUL-terminated strings. A record is
 *   <tag> NUL <argc as decimal> NUL <arg 1> NUL ... <arg argc> NUL
 * Tags and their arguments are documented in runtimes/oci/plan.ts, the only writer. */
#ifndef BERTH_PLAN_H
#define BERTH_PLAN_H

#include <stddef.h>

struct record {
	const char *tag;
	int argc;
	const char **argv;
};

struct plan {
	struct record *records;
	int count;
};

/* Parses `buf` (len bytes, modified in place). Returns 0, or -1 with a message in `err`. */
int plan_parse(char *buf, size_t len, struct plan *out, char *err, size_t errlen);

#endif
