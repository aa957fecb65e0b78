/* Streaming tar reader: headers are checked (checksum, numeric fields, sizes) and anything malformed or cut
 * short is reported, never guessed at. Header-only types (links, devices, directories, fifos) carry no body
 * whatever their size field says, as Go's archive/tar reads them. */
#define _GNU_SOURCE
#include "tar.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK 512
#define BUF_SIZE (1 << 20)
#define META_MAX (1 << 20) /* pax headers and GNU long names larger than this are refused */

static int fail(struct tar_reader *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->err, sizeof r->err, fmt, ap);
  va_end(ap);
  return -1;
}

int tar_open(struct tar_reader *r, tar_read_fn read, void *ctx) {
  memset(r, 0, sizeof *r);
  r->read = read;
  r->ctx = ctx;
  r->cap = BUF_SIZE;
  r->buf = malloc(r->cap);
  return r->buf ? 0 : fail(r, "out of memory");
}

/* At least `need` bytes buffered, unless the input ends first: returns how many are. */
static size_t fill(struct tar_reader *r, size_t need) {
  if (r->end - r->start >= need) return r->end - r->start;
  if (r->cap - r->start < need) {
    memmove(r->buf, r->buf + r->start, r->end - r->start);
    r->end -= r->start;
    r->start = 0;
  }
  while (!r->eof && r->end - r->start < need) {
    ssize_t n = r->read(r->ctx, r->buf + r->end, r->cap - r->end);
    if (n < 0) { r->read_failed = 1; r->eof = 1; break; }
    if (n == 0) { r->eof = 1; break; }
    r->end += (size_t)n;
  }
  return r->end - r->start;
}

ssize_t tar_body(struct tar_reader *r, const unsigned char **data, size_t max) {
  if (r->body_left == 0) return 0;
  size_t avail = fill(r, 1);
  if (avail == 0) return fail(r, "unexpected end of data inside an entry's content");
  size_t n = avail;
  if (n > r->body_left) n = (size_t)r->body_left;
  if (n > max) n = max;
  *data = r->buf + r->start;
  r->start += n;
  r->body_left -= n;
  return (ssize_t)n;
}

/* Skips what is left of the current body and its padding. */
static int finish_body(struct tar_reader *r) {
  const unsigned char *d;
  ssize_t n;
  while ((n = tar_body(r, &d, SIZE_MAX)) > 0) {}
  if (n < 0) return -1;
  if (r->body_pad) {
    if (fill(r, r->body_pad) < r->body_pad) return fail(r, "unexpected end of data in an entry's padding");
    r->start += r->body_pad;
    r->body_pad = 0;
  }
  return 0;
}

int tar_drain(struct tar_reader *r) {
  while (!r->eof) { r->start = r->end; fill(r, r->cap); }
  r->start = r->end;
  return r->read_failed ? -1 : 0;
}

/* A numeric header field: octal digits (space or NUL padded), or GNU base-256 when the top bit is set. */
static int parse_num(const unsigned char *f, size_t n, uint64_t *out) {
  uint64_t v = 0;
  if (f[0] & 0x80) {
    if (f[0] == 0xff) return -1; /* negative */
    v = f[0] & 0x7f;
    for (size_t i = 1; i < n; i++) {
      if (v >> 56) return -1;
      v = (v << 8) | f[i];
    }
    *out = v;
    return 0;
  }
  size_t i = 0;
  while (i < n && (f[i] == ' ' || f[i] == 0)) i++;
  for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
    if (v >> 61) return -1;
    v = v * 8 + (uint64_t)(f[i] - '0');
  }
  for (; i < n; i++)
    if (f[i] != ' ' && f[i] != 0) return -1;
  *out = v;
  return 0;
}

static int checksum_ok(const unsigned char *h) {
  uint64_t want;
  if (parse_num(h + 148, 8, &want) < 0) return 0;
  unsigned long usum = 0;
  long ssum = 0;
  for (int i = 0; i < BLOCK; i++) {
    unsigned char c = (i >= 148 && i < 156) ? ' ' : h[i];
    usum += c;
    ssum += (signed char)c;
  }
  return want == usum || (long)want == ssum;
}

static char *field_str(const unsigned char *f, size_t n) { return strndup((const char *)f, strnlen((const char *)f, n)); }

/* A decimal pax value, with an optional fraction of a second for times. */
static int pax_decimal(const char *v, size_t len, uint64_t *out, long *nsec) {
  uint64_t x = 0;
  size_t i = 0;
  if (len == 0) return -1;
  for (; i < len && v[i] >= '0' && v[i] <= '9'; i++) {
    if (x > (UINT64_MAX - 9) / 10) return -1;
    x = x * 10 + (uint64_t)(v[i] - '0');
  }
  long ns = 0;
  if (i < len && v[i] == '.' && nsec) {
    long scale = 100000000;
    for (i++; i < len && v[i] >= '0' && v[i] <= '9'; i++, scale /= 10) ns += (v[i] - '0') * scale;
  }
  if (i != len) return -1;
  *out = x;
  if (nsec) *nsec = ns;
  return 0;
}

struct pending { /* what pax headers and GNU long names say about the next entry */
  char *path, *linkpath;
  int has_size, has_uid, has_gid, has_mtime;
  uint64_t size, uid, gid, mtime;
  long mtime_ns;
  struct tar_xattr *xattrs;
  size_t nxattrs;
};

static int parse_pax(struct tar_reader *r, const char *p, size_t len, struct pending *pd) {
  const char *end = p + len;
  while (p < end) {
    size_t reclen = 0;
    const char *q = p;
    while (q < end && *q >= '0' && *q <= '9') reclen = reclen * 10 + (size_t)(*q++ - '0');
    if (q == p || q >= end || *q != ' ' || reclen > (size_t)(end - p) || p[reclen - 1] != '\n')
      return fail(r, "invalid pax extended header record");
    const char *kv = q + 1, *rec_end = p + reclen - 1;
    const char *eq = memchr(kv, '=', (size_t)(rec_end - kv));
    if (!eq) return fail(r, "invalid pax extended header record (no '=')");
    size_t klen = (size_t)(eq - kv), vlen = (size_t)(rec_end - eq - 1);
    const char *v = eq + 1;
#define KEY(s) (klen == sizeof(s) - 1 && memcmp(kv, s, klen) == 0)
    int bad = 0;
    if (KEY("path")) { free(pd->path); pd->path = strndup(v, vlen); }
    else if (KEY("linkpath")) { free(pd->linkpath); pd->linkpath = strndup(v, vlen); }
    else if (KEY("size")) bad = pax_decimal(v, vlen, &pd->size, NULL) < 0 || !(pd->has_size = 1);
    else if (KEY("uid")) bad = pax_decimal(v, vlen, &pd->uid, NULL) < 0 || !(pd->has_uid = 1);
    else if (KEY("gid")) bad = pax_decimal(v, vlen, &pd->gid, NULL) < 0 || !(pd->has_gid = 1);
    else if (KEY("mtime")) bad = pax_decimal(v, vlen, &pd->mtime, &pd->mtime_ns) < 0 || !(pd->has_mtime = 1);
    /* Xattrs come only from SCHILY.xattr.* (libarchive's LIBARCHIVE.xattr.* is not read, as containerd does
     * not); which of them apply is apply.c's rule. */
    else if (klen > 13 && memcmp(kv, "SCHILY.xattr.", 13) == 0) {
      struct tar_xattr *x = realloc(pd->xattrs, (pd->nxattrs + 1) * sizeof *x);
      if (!x) return fail(r, "out of memory");
      pd->xattrs = x;
      x[pd->nxattrs].name = strndup(kv + 13, klen - 13);
      x[pd->nxattrs].value = malloc(vlen ? vlen : 1);
      memcpy(x[pd->nxattrs].value, v, vlen);
      x[pd->nxattrs++].len = vlen;
    }
#undef KEY
    if (bad) return fail(r, "invalid pax extended header value for %.*s", (int)klen, kv);
    p += reclen;
  }
  return 0;
}

/* The body of a pax header or GNU long name, whole. */
static char *read_meta(struct tar_reader *r, uint64_t size) {
  if (size > META_MAX) { fail(r, "a pax header or long name of %llu bytes exceeds the limit", (unsigned long long)size); return NULL; }
  char *out = malloc(size + 1);
  size_t got = 0;
  const unsigned char *d;
  ssize_t n;
  while ((n = tar_body(r, &d, size - got)) > 0) { memcpy(out + got, d, (size_t)n); got += (size_t)n; }
  if (n < 0) { free(out); return NULL; }
  out[got] = 0;
  return out;
}

static int header_only(char t) { return t == '1' || t == '2' || t == '3' || t == '4' || t == '5' || t == '6'; }

int tar_next(struct tar_reader *r, struct tar_entry *e) {
  struct pending pd = {0};
  char *longname = NULL, *longlink = NULL;
  int rc = -1;
  memset(e, 0, sizeof *e);
  for (;;) {
    if (finish_body(r) < 0) goto out;
    size_t avail = fill(r, BLOCK);
    if (avail == 0 && !pd.path && !longname) { rc = 0; goto out; } /* input ends between entries */
    if (avail < BLOCK) { fail(r, "unexpected end of data in a tar header"); goto out; }
    const unsigned char *h = r->buf + r->start;
    int zero = 1;
    for (int i = 0; i < BLOCK && zero; i++) zero = h[i] == 0;
    if (zero) { r->start += BLOCK; rc = 0; goto out; }
    if (!checksum_ok(h)) { fail(r, "invalid tar header (bad checksum): not a tar stream, or a corrupt one"); goto out; }
    uint64_t size, mode, uid, gid, mtime, major, minor;
    if (parse_num(h + 124, 12, &size) < 0 || parse_num(h + 100, 8, &mode) < 0 || parse_num(h + 108, 8, &uid) < 0 ||
        parse_num(h + 116, 8, &gid) < 0 || parse_num(h + 136, 12, &mtime) < 0 || parse_num(h + 329, 8, &major) < 0 ||
        parse_num(h + 337, 8, &minor) < 0) {
      fail(r, "invalid tar header (a numeric field is not a number)");
      goto out;
    }
    char type = (char)h[156];
    int posix = memcmp(h + 257, "ustar\0", 6) == 0;
    char *name = field_str(h, 100), *link = field_str(h + 157, 100);
    if (posix && h[345]) {
      char *prefix = field_str(h + 345, 155), *full;
      if (asprintf(&full, "%s/%s", prefix, name) < 0) full = NULL;
      free(prefix);
      free(name);
      name = full;
    }
    r->start += BLOCK;
    int meta = type == 'x' || type == 'g' || type == 'L' || type == 'K';
    if (!meta && pd.has_size) size = pd.size;
    r->body_left = header_only(type) ? 0 : size;
    r->body_pad = (size_t)((BLOCK - r->body_left % BLOCK) % BLOCK);
    if (meta) {
      free(name);
      free(link);
      if (type == 'g') continue; /* global pax headers are ignored, as containerd does */
      char *body = read_meta(r, size);
      if (!body) goto out;
      if (type == 'x') {
        int bad = parse_pax(r, body, (size_t)size, &pd);
        free(body);
        if (bad) goto out;
      } else if (type == 'L') { free(longname); longname = body; }
      else { free(longlink); longlink = body; }
      continue;
    }
    e->type = type ? type : '0';
    e->name = pd.path ? strdup(pd.path) : longname ? strdup(longname) : name;
    if (e->name != name) free(name);
    e->linkname = pd.linkpath ? strdup(pd.linkpath) : longlink ? strdup(longlink) : link;
    if (e->linkname != link) free(link);
    e->mode = (mode_t)(mode & 07777);
    e->uid = (uid_t)(pd.has_uid ? pd.uid : uid);
    e->gid = (gid_t)(pd.has_gid ? pd.gid : gid);
    e->mtime.tv_sec = (time_t)(pd.has_mtime ? pd.mtime : mtime);
    e->mtime.tv_nsec = pd.has_mtime ? pd.mtime_ns : 0;
    e->size = r->body_left;
    e->devmajor = (unsigned)major;
    e->devminor = (unsigned)minor;
    e->xattrs = pd.xattrs;
    e->nxattrs = pd.nxattrs;
    pd.xattrs = NULL;
    pd.nxattrs = 0;
    rc = 1;
    goto out;
  }
out:
  free(pd.path);
  free(pd.linkpath);
  for (size_t i = 0; i < pd.nxattrs; i++) { free(pd.xattrs[i].name); free(pd.xattrs[i].value); }
  free(pd.xattrs);
  free(longname);
  free(longlink);
  return rc;
}

void tar_entry_free(struct tar_entry *e) {
  free(e->name);
  free(e->linkname);
  for (size_t i = 0; i < e->nxattrs; i++) { free(e->xattrs[i].name); free(e->xattrs[i].value); }
  free(e->xattrs);
  memset(e, 0, sizeof *e);
}
