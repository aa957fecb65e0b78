/* Protobuf wire format (varints, length-delimited fields) for the agent; no library, no reflection. */
#include "pb.h"

#include <stdlib.h>
#include <string.h>

void pb_init(struct pb_reader *r, const uint8_t *data, size_t len)
{
	r->p = data;
	r->end = data + len;
	r->bad = 0;
}

static int read_varint(struct pb_reader *r, uint64_t *out)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			return -1;
		uint8_t byte = *r->p++;
		v |= (uint64_t)(byte & 0x7f) << shift;
		if (!(byte & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

int pb_next(struct pb_reader *r, struct pb_field *f)
{
	if (r->bad)
		return -1;
	if (r->p == r->end)
		return 0;
	uint64_t key;
	if (read_varint(r, &key) < 0 || key >> 3 == 0 || key >> 3 > UINT32_MAX)
		goto bad;
	f->num = (uint32_t)(key >> 3);
	f->wire = key & 7;
	f->v = 0;
	f->b = NULL;
	f->n = 0;
	switch (f->wire) {
	case PB_VARINT:
		if (read_varint(r, &f->v) < 0)
			goto bad;
		return 1;
	case PB_I64:
	case PB_I32: {
		size_t n = f->wire == PB_I64 ? 8 : 4;
		if ((size_t)(r->end - r->p) < n)
			goto bad;
		for (size_t i = 0; i < n; i++)
			f->v |= (uint64_t)r->p[i] << (8 * i);
		r->p += n;
		return 1;
	}
	case PB_LEN: {
		uint64_t n;
		if (read_varint(r, &n) < 0 || n > (uint64_t)(r->end - r->p))
			goto bad;
		f->b = r->p;
		f->n = (size_t)n;
		r->p += n;
		return 1;
	}
	}
bad:
	r->bad = 1;
	return -1;
}

int pb_parse(struct pb_msg *m, const uint8_t *data, size_t len)
{
	memset(m, 0, sizeof *m);
	struct pb_reader r;
	struct pb_field f;
	int rc;
	pb_init(&r, data, len);
	while ((rc = pb_next(&r, &f)) > 0) {
		if (f.num <= PB_MAX_FIELD) {
			m->f[f.num] = f;
			m->set[f.num] = 1;
		}
	}
	return rc;
}

uint64_t pb_u64(const struct pb_msg *m, uint32_t num)
{
	return m->set[num] && m->f[num].wire != PB_LEN ? m->f[num].v : 0;
}

int pb_str(const struct pb_msg *m, uint32_t num, char *buf, size_t buflen)
{
	buf[0] = '\0';
	if (!m->set[num])
		return 0;
	const struct pb_field *f = &m->f[num];
	if (f->wire != PB_LEN || f->n >= buflen || memchr(f->b, 0, f->n))
		return -1;
	memcpy(buf, f->b, f->n);
	buf[f->n] = '\0';
	return 0;
}

char *pb_strdup(const struct pb_field *f)
{
	if (f->wire != PB_LEN || memchr(f->b, 0, f->n))
		return NULL;
	char *s = malloc(f->n + 1);
	memcpy(s, f->b, f->n);
	s[f->n] = '\0';
	return s;
}

void buf_put(struct buf *b, const void *data, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + len)
			cap *= 2;
		b->data = realloc(b->data, cap);
		if (!b->data)
			abort();
		b->cap = cap;
	}
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
}

void buf_consume(struct buf *b, size_t n)
{
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

static void put_raw_varint(struct buf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;
	do {
		tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	buf_put(b, tmp, n);
}

void pb_put_varint(struct buf *b, uint32_t num, uint64_t v)
{
	put_raw_varint(b, (uint64_t)num << 3 | PB_VARINT);
	put_raw_varint(b, v);
}

void pb_put_bytes(struct buf *b, uint32_t num, const void *data, size_t len)
{
	put_raw_varint(b, (uint64_t)num << 3 | PB_LEN);
	put_raw_varint(b, len);
	buf_put(b, data, len);
}

void pb_put_str(struct buf *b, uint32_t num, const char *s)
{
	pb_put_bytes(b, num, s, strlen(s));
}
