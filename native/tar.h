/* A streaming reader of tar archives (POSIX ustar, pax extended headers, GNU long names), for layer apply. */
#ifndef BERTH_TAR_H
#define BERTH_TAR_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct tar_xattr {
  char *name;
  char *value;
  size_t len;
};

struct tar_entry {
  char *name;      /* as in the archive (pax path, GNU long name or ustar prefix/name) */
  char *linkname;
  char type;       /* ustar typeflag: '0' file, '1' hardlink, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo ... */
  mode_t mode;
  uid_t uid;
  gid_t gid;
  uint64_t size;   /* bytes of the entry's body */
  struct timespec mtime;
  unsigned devmajor, devminor;
  struct tar_xattr *xattrs;
  size_t nxattrs;
};

/* Where the archive's bytes come from: like read(2), -1 on failure. */
typedef ssize_t (*tar_read_fn)(void *ctx, void *buf, size_t n);

struct tar_reader {
  tar_read_fn read;
  void *ctx;
  unsigned char *buf;
  size_t cap, start, end; /* buffered bytes are buf[start, end) */
  int eof;
  uint64_t body_left;     /* of the current entry's body */
  size_t body_pad;        /* padding after it to the next 512-byte block */
  int read_failed;        /* the source failed (its own error says why), not the archive */
  char err[256];          /* why the archive is unreadable, when a call returns -1 */
};

int tar_open(struct tar_reader *r, tar_read_fn read, void *ctx);
/* The next entry into e (1), the end of the archive (0), or a damaged archive (-1, r->err says why).
 * Whatever remains of the previous entry's body is skipped. */
int tar_next(struct tar_reader *r, struct tar_entry *e);
/* Up to max bytes of the current entry's body, in place: *data points into the reader's buffer. Returns the
 * count, 0 at the body's end, -1 if the archive ends inside it. */
ssize_t tar_body(struct tar_reader *r, const unsigned char **data, size_t max);
/* Reads and discards everything up to the end of the input (the source digests the whole stream): 0, or -1. */
int tar_drain(struct tar_reader *r);
void tar_entry_free(struct tar_entry *e);

#endif
