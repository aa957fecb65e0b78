#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *next_string(char **pos, char *end)
{
	char *s = *pos;
	char *nul = memchr(s, '\0', (size_t)(end - s));
	if (!nul)
		return NULL;
	*pos = nul + 1;
	return s;
}

int plan_parse(char *buf, size_t len, struct plan *out, char *err, size_t errlen)
{
	char *pos = buf, *end = buf + len;
	int cap = 64;
	out->count = 0;
	out->records = calloc((size_t)cap, sizeof(struct record));
	while (pos < end) {
		const char *tag = next_string(&pos, end);
		const char *count = tag ? next_string(&pos, end) : NULL;
		if (!tag || !count) {
			snprintf(err, errlen, "plan: truncated record %d", out->count);
			return -1;
		}
		char *after;
		long argc = strtol(count, &after, 10);
		if (*after || argc < 0 || argc > 1 << 20) {
			snprintf(err, errlen, "plan: bad argument count in record %s", tag);
			return -1;
		}
		if (out->count == cap) {
			cap *= 2;
			out->records = realloc(out->records, (size_t)cap * sizeof(struct record));
		}
		struct record *r = &out->records[out->count++];
		r->tag = tag;
		r->argc = (int)argc;
		r->argv = calloc((size_t)argc + 1, sizeof(char *));
		for (long i = 0; i < argc; i++) {
			r->argv[i] = next_string(&pos, end);
			if (!r->argv[i]) {
				snprintf(err, errlen, "plan: record %s: truncated argument %ld", tag, i);
				return -1;
			}
		}
	}
	return 0;
}
