/* Decompression of layer blobs: ISA-L's igzip for gzip (about twice zlib's speed here; concatenated members too,
 * as Go and Node read them), libzstd for zstd, and OpenSSL's sha256 (SHA-NI where the CPU has it) for the diff
 * ID. */
#define _GNU_SOURCE
#include "layer_source.h"
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <isa-l/igzip_lib.h>
#include <zstd.h>

#define IN_SIZE (256 << 10)

struct layer_source {
  int fd;
  enum compression compression;
  unsigned char in[IN_SIZE];
  size_t in_start, in_end;
  int in_eof;
  struct inflate_state gz;
  int member_done;  /* gzip: a member ended; another may follow */
  ZSTD_DStream *zstd;
  size_t zstd_hint; /* 0 when the last zstd frame is complete */
  int zstd_started;
  EVP_MD_CTX *md;
  uint64_t size;
  char err[256];
};

static ssize_t fail(struct layer_source *s, const char *msg) {
  snprintf(s->err, sizeof s->err, "%s", msg);
  return -1;
}

/* More compressed input, when the buffer is empty: 0, or -1 on a read error. */
static int refill(struct layer_source *s) {
  if (s->in_start < s->in_end || s->in_eof) return 0;
  for (;;) {
    ssize_t n = read(s->fd, s->in, sizeof s->in);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { snprintf(s->err, sizeof s->err, "reading the layer: %s", strerror(errno)); return -1; }
    s->in_start = 0;
    s->in_end = (size_t)n;
    if (n == 0) s->in_eof = 1;
    return 0;
  }
}

struct layer_source *source_open(int fd, enum compression c) {
  struct layer_source *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->fd = fd;
  s->compression = c;
  s->md = EVP_MD_CTX_new();
  if (!s->md || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1) return NULL;
  if (c == COMPRESSION_GZIP) {
    isal_inflate_init(&s->gz);
    s->gz.crc_flag = ISAL_GZIP;
  }
  if (c == COMPRESSION_ZSTD && !(s->zstd = ZSTD_createDStream())) return NULL;
  return s;
}

/* ISA-L's errors in zlib's words, as other decoders (and berth's tests) say them. */
static const char *gzip_error(int rc) {
  switch (rc) {
  case ISAL_INVALID_BLOCK: return "invalid block type";
  case ISAL_INVALID_SYMBOL: return "invalid code lengths or symbol";
  case ISAL_INVALID_LOOKBACK: return "invalid distance too far back";
  case ISAL_INVALID_WRAPPER: return "invalid gzip header";
  case ISAL_UNSUPPORTED_METHOD: return "invalid compression method";
  case ISAL_INCORRECT_CHECKSUM: return "incorrect data check";
  default: return "invalid gzip data";
  }
}

static ssize_t read_gzip(struct layer_source *s, unsigned char *buf, size_t n) {
  for (;;) {
    if (refill(s) < 0) return -1;
    size_t avail = s->in_end - s->in_start;
    if (s->member_done) {
      if (avail == 0) return 0;
      if (s->in[s->in_start] == 0) { s->in_start++; continue; } /* zero padding after the last member */
      if (s->in[s->in_start] != 0x1f) return fail(s, "trailing data after the gzip stream");
      isal_inflate_reset(&s->gz);
      s->gz.crc_flag = ISAL_GZIP;
      s->member_done = 0;
    }
    if (avail == 0) return fail(s, "unexpected end of file");
    s->gz.next_in = s->in + s->in_start;
    s->gz.avail_in = (uint32_t)avail;
    s->gz.next_out = buf;
    s->gz.avail_out = (uint32_t)n;
    int rc = isal_inflate(&s->gz);
    s->in_start = s->in_end - s->gz.avail_in;
    if (rc < 0) return fail(s, gzip_error(rc));
    if (s->gz.block_state == ISAL_BLOCK_FINISH) s->member_done = 1;
    size_t produced = n - s->gz.avail_out;
    if (produced) return (ssize_t)produced;
  }
}

static ssize_t read_zstd(struct layer_source *s, unsigned char *buf, size_t n) {
  for (;;) {
    if (refill(s) < 0) return -1;
    if (s->in_start == s->in_end) {
      if (s->zstd_started && s->zstd_hint == 0) return 0;
      return fail(s, "unexpected end of file");
    }
    ZSTD_inBuffer in = { s->in + s->in_start, s->in_end - s->in_start, 0 };
    ZSTD_outBuffer out = { buf, n, 0 };
    size_t rc = ZSTD_decompressStream(s->zstd, &out, &in);
    s->in_start += in.pos;
    if (ZSTD_isError(rc)) return fail(s, ZSTD_getErrorName(rc));
    s->zstd_started = 1;
    s->zstd_hint = rc;
    if (out.pos) return (ssize_t)out.pos;
  }
}

ssize_t source_read(struct layer_source *s, void *buf, size_t n) {
  ssize_t got;
  if (s->compression == COMPRESSION_GZIP) got = read_gzip(s, buf, n);
  else if (s->compression == COMPRESSION_ZSTD) got = read_zstd(s, buf, n);
  else {
    do got = read(s->fd, buf, n); while (got < 0 && errno == EINTR);
    if (got < 0) { snprintf(s->err, sizeof s->err, "reading the layer: %s", strerror(errno)); return -1; }
  }
  if (got > 0) {
    EVP_DigestUpdate(s->md, buf, (size_t)got);
    s->size += (uint64_t)got;
  }
  return got;
}

const char *source_error(const struct layer_source *s) { return s->err[0] ? s->err : NULL; }

void source_digest(struct layer_source *s, char out[72], uint64_t *size) {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_DigestFinal_ex(s->md, md, &len);
  strcpy(out, "sha256:");
  for (unsigned i = 0; i < 32; i++) sprintf(out + 7 + 2 * i, "%02x", md[i]);
  *size = s->size;
}
