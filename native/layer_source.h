/* A layer blob read from an fd as its uncompressed tar (gzip, zstd or none), digested on the way: the diff ID. */
#ifndef BERTH_LAYER_SOURCE_H
#define BERTH_LAYER_SOURCE_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum compression { COMPRESSION_NONE, COMPRESSION_GZIP, COMPRESSION_ZSTD };

struct layer_source;

struct layer_source *source_open(int fd, enum compression c);
/* Up to n uncompressed bytes: the count, 0 at the end, -1 when the stream is corrupt, truncated or unreadable
 * (source_error says why, in the decoder's own words). */
ssize_t source_read(struct layer_source *s, void *buf, size_t n);
const char *source_error(const struct layer_source *s);
/* "sha256:<hex>" of every uncompressed byte read so far, and their count. */
void source_digest(struct layer_source *s, char out[72], uint64_t *size);

#endif
