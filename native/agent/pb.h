/* A small protobuf codec for the agent's messages: a reader over one message's bytes and a growable writer. */
#ifndef BERTH_AGENT_PB_H
#define BERTH_AGENT_PB_H

#include <stddef.h>
#include <stdint.h>

enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_I32 = 5 };

/* One field's value as read: a varint (v) or a length-delimited slice (b, n). */
struct pb_field {
	uint32_t num, wire;
	uint64_t v;
	const uint8_t *b;
	size_t n;
};

struct pb_reader {
	const uint8_t *p, *end;
	int bad;
};

void pb_init(struct pb_reader *r, const uint8_t *data, size_t len);
/* The next field: 1, 0 at the end, -1 on malformed input (truncated, bad wire type, overlong varint). */
int pb_next(struct pb_reader *r, struct pb_field *f);

/* The fields of a flat message, last value wins (repeated fields are read with pb_next). Numbers above
 * PB_MAX_FIELD are skipped. Returns 0 or -1 on malformed input. */
#define PB_MAX_FIELD 8
struct pb_msg {
	struct pb_field f[PB_MAX_FIELD + 1];
	uint8_t set[PB_MAX_FIELD + 1];
};
int pb_parse(struct pb_msg *m, const uint8_t *data, size_t len);
uint64_t pb_u64(const struct pb_msg *m, uint32_t num);
/* A string field as a NUL-terminated copy in buf; -1 if it is longer than buflen - 1 or holds a NUL. */
int pb_str(const struct pb_msg *m, uint32_t num, char *buf, size_t buflen);
/* A string field copied with malloc (NULL when unset: "" is returned for an unset field by pb_str). */
char *pb_strdup(const struct pb_field *f);

struct buf {
	uint8_t *data;
	size_t len, cap;
};

void buf_put(struct buf *b, const void *data, size_t len);
void buf_consume(struct buf *b, size_t n);
void buf_free(struct buf *b);
void pb_put_varint(struct buf *b, uint32_t num, uint64_t v);
void pb_put_bytes(struct buf *b, uint32_t num, const void *data, size_t len);
void pb_put_str(struct buf *b, uint32_t num, const char *s);

#endif
