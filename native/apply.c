/* berth-apply: applies an uncompressed layer tar, read from stdin, onto the directory ROOT: files, directories,
 * symlinks, hardlinks, devices and fifos with owners, modes, times (to the nanosecond) and xattrs (SCHILY.xattr
 * records; not trusted.*, nor security.* but the capability: see xattr_applies), and OCI
 * whiteouts as deletions (`.wh.<name>` removes <name>; `.wh..wh..opq` empties the directory of what lower
 * layers had). With --overlay-upper, ROOT is an overlay upper directory and whiteouts take the overlay's own
 * form (a 0/0 character device; trusted.overlay.opaque=y). The caller (daemon/unpack/apply-layer.ts) feeds it
 * the blob; decompression, the diff ID and file creation, a layer's whole cost, happen here.
 *
 * Nothing is written outside ROOT: names are cleaned and `..` that climbs above the root is refused; parent
 * directories are resolved inside the root, absolute symlinks meaning root-relative paths (as the container
 * will see them), and a relative symlink that climbs above the root is refused, as are hardlinks to anything
 * outside it and whiteouts naming "." or "..".
 *
 * usage: berth-apply [--gzip|--zstd] [--overlay-upper] ROOT < layer
 * The layer blob comes on stdin as stored (compressed or not); on success, stdout gets "<diff ID> <size>" of
 * its uncompressed tar, every byte to the stream's end. Exit status: 0 applied; 2 a hostile entry was refused;
 * 3 the tar is damaged or cut short; 4 the compressed stream is; 1 anything else. One line on stderr says why;
 * on failure the rest of the input is not read. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "io.h"
#include "layer_source.h"
#include "strmap.h"
#include "tar.h"

#define USAGE "usage: berth-apply [--gzip|--zstd] [--overlay-upper] ROOT < layer\n"
#define EXIT_IO 1
#define EXIT_HOSTILE 2
#define EXIT_DAMAGED 3
#define EXIT_CORRUPT_STREAM 4

static struct tar_reader reader;
static const char *entry_name = "";
static int overlay_upper;
static struct strmap written; /* paths this layer wrote (an opaque directory keeps them) */
static struct strmap parents; /* parent directories resolved and made, by their cleaned name in the tar */
/* Who owns what we create in a directory without a chown: us, with the directory's group if it is set-gid.
 * Remembered for the last directory (a tar lists a directory's entries together); forgotten whenever a
 * directory entry or a removal may have changed it. */
static struct { char dir[PATH_MAX]; int valid; gid_t gid; } last_parent;
static uid_t my_uid;
static gid_t my_gid;

static void print_quoted(const char *s) {
  fputc('"', stderr);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(stderr, "\\%c", c);
    else if (c < 0x20) fprintf(stderr, "\\u%04x", c);
    else fputc(c, stderr);
  }
  fputc('"', stderr);
}

static struct layer_source *source;

/* The archive or the compressed stream under it is damaged: says which, and how. */
__attribute__((noreturn)) static void damaged(void) {
  if (reader.read_failed) {
    fprintf(stderr, "%s\n", source_error(source));
    exit(EXIT_CORRUPT_STREAM);
  }
  fprintf(stderr, "%s\n", reader.err);
  exit(EXIT_DAMAGED);
}

__attribute__((format(printf, 1, 2), noreturn)) static void hostile(const char *fmt, ...) {
  va_list ap;
  fputs("layer entry ", stderr);
  print_quoted(entry_name);
  fputs(": ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("; refused, nothing written outside the layer root\n", stderr);
  exit(EXIT_HOSTILE);
}

__attribute__((noreturn)) static void fail_errno(const char *op, const char *path) {
  int err = errno;
  fputs("applying layer entry ", stderr);
  print_quoted(entry_name);
  fprintf(stderr, ": %s %s: %s\n", op, *path ? path : ".", strerror(err));
  exit(EXIT_IO);
}

static const char *at(const char *rel) { return *rel ? rel : "."; }

static void join(char *out, const char *dir, const char *name) {
  if (snprintf(out, PATH_MAX, "%s%s%s", dir, *dir ? "/" : "", name) >= PATH_MAX) {
    errno = ENAMETOOLONG;
    fail_errno("join", name);
  }
}

/* Cleans `name` into `out` (components below the root, no leading slash); -1 when ".." climbs above it. */
static int clean(const char *name, char *out) {
  size_t len = 0;
  const char *p = name;
  out[0] = 0;
  while (*p) {
    while (*p == '/') p++;
    const char *end = strchrnul(p, '/');
    size_t n = (size_t)(end - p);
    if (n == 0 || (n == 1 && p[0] == '.')) { p = end; continue; }
    if (n == 2 && p[0] == '.' && p[1] == '.') {
      if (len == 0) return -1;
      while (len > 0 && out[len - 1] != '/') len--;
      if (len > 0) len--;
      out[len] = 0;
    } else {
      if (len + n + 2 > PATH_MAX) { errno = ENAMETOOLONG; fail_errno("clean", name); }
      if (len) out[len++] = '/';
      memcpy(out + len, p, n);
      out[len += n] = 0;
    }
    p = end;
  }
  return 0;
}

/* The real directory inside the root that the clean path `rel` names, following symlinks as the container will
 * (absolute targets from the root). A relative target that climbs above the root is refused. */
static void resolve_dir(const char *rel, char *out, int depth) {
  char cur[PATH_MAX] = "", next[PATH_MAX], target[PATH_MAX], base[PATH_MAX], joined[PATH_MAX];
  int missing = 0;
  const char *p = rel;
  while (*p) {
    const char *end = strchrnul(p, '/');
    char part[NAME_MAX + 1];
    size_t n = (size_t)(end - p);
    if (n > NAME_MAX) { errno = ENAMETOOLONG; fail_errno("resolve", rel); }
    memcpy(part, p, n);
    part[n] = 0;
    p = *end ? end + 1 : end;
    join(next, cur, part);
    struct stat st;
    if (!missing && lstat(next, &st) < 0) {
      if (errno != ENOENT) fail_errno("lstat", next);
      missing = 1; /* nothing below it exists either: created later as plain directories */
    }
    if (missing || !S_ISLNK(st.st_mode)) {
      strcpy(cur, next);
      continue;
    }
    if (depth > 40) hostile("too many levels of symbolic links");
    ssize_t tl = readlink(next, target, sizeof target - 1);
    if (tl < 0) fail_errno("readlink", next);
    target[tl] = 0;
    if (target[0] == '/') {
      if (clean(target, base) < 0) hostile("climbs out of the root with \"..\"");
    } else {
      join(joined, cur, target);
      if (clean(joined, base) < 0) hostile("its path goes through %s, a symlink to %s that leads outside the root", next, target);
    }
    resolve_dir(base, cur, depth + 1);
  }
  strcpy(out, cur);
}

static void mkdir_all(const char *rel) {
  char path[PATH_MAX];
  size_t len = strlen(rel);
  if (!len) return;
  memcpy(path, rel, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (path[i] != '/' && path[i] != 0) continue;
    char c = path[i];
    path[i] = 0;
    if (mkdir(path, 0755) < 0 && errno != EEXIST) fail_errno("mkdir", path);
    path[i] = c;
  }
}

static void remove_all(const char *path) {
  struct stat st;
  if (lstat(path, &st) < 0) {
    if (errno == ENOENT) return;
    fail_errno("lstat", path);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlink(path) < 0 && errno != ENOENT) fail_errno("unlink", path);
    return;
  }
  DIR *d = opendir(at(path));
  if (!d) fail_errno("opendir", path);
  struct dirent *de;
  char child[PATH_MAX];
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    join(child, path, de->d_name);
    remove_all(child);
  }
  closedir(d);
  if (*path && rmdir(path) < 0) fail_errno("rmdir", path);
}

/* Which of a layer's xattrs reach the disk. trusted.* never does (as containerd): those are the host
 * administrator's, and on an overlay layer trusted.overlay.* steers the kernel (opaque=y on a directory would
 * hide the base image's files below it). security.* other than security.capability neither: the LSM and
 * integrity labels are the host's to set, and containerd's own layers never carry any but the capability. */
static int xattr_applies(const char *name) {
  if (!strncmp(name, "trusted.", 8)) return 0;
  if (!strncmp(name, "security.", 9)) return !strcmp(name, "security.capability");
  return 1;
}

static void set_xattrs(const char *path, const struct tar_entry *e) {
  for (size_t i = 0; i < e->nxattrs; i++) {
    if (!xattr_applies(e->xattrs[i].name)) continue;
    /* A filesystem without that namespace: skipped, as containerd does. */
    if (lsetxattr(at(path), e->xattrs[i].name, e->xattrs[i].value, e->xattrs[i].len, 0) < 0 && errno != ENOTSUP)
      fail_errno("lsetxattr", path);
  }
}

static void whiteout(const char *parent, const char *base) {
  char path[PATH_MAX];
  strmap_clear(&parents);
  last_parent.valid = 0;
  if (!strcmp(base, ".wh..wh..opq")) {
    DIR *d = opendir(at(parent));
    if (d) {
      struct dirent *de;
      while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        join(path, parent, de->d_name);
        if (!strmap_get(&written, path)) remove_all(path);
      }
      closedir(d);
    }
    if (overlay_upper) {
      mkdir_all(parent);
      if (lsetxattr(at(parent), "trusted.overlay.opaque", "y", 1, 0) < 0) fail_errno("lsetxattr", parent);
    }
    return;
  }
  if (!strncmp(base, ".wh..wh.", 8)) return; /* other aufs metadata: nothing to apply, as containerd */
  const char *victim = base + 4;
  if (!*victim || !strcmp(victim, ".") || !strcmp(victim, "..")) hostile("a whiteout that names no entry below its directory");
  join(path, parent, victim);
  remove_all(path);
  if (overlay_upper) {
    mkdir_all(parent);
    if (mknod(path, S_IFCHR, makedev(0, 0)) < 0) fail_errno("mknod", path);
  }
}

struct dir_time { char *path; struct timespec mtime; };
static struct dir_time *dir_times;
static size_t n_dir_times, cap_dir_times;

static void remember_dir_time(const char *path, struct timespec mtime) {
  if (n_dir_times == cap_dir_times) {
    cap_dir_times = cap_dir_times ? cap_dir_times * 2 : 256;
    dir_times = realloc(dir_times, cap_dir_times * sizeof *dir_times);
    if (!dir_times) { errno = ENOMEM; fail_errno("remember", path); }
  }
  dir_times[n_dir_times++] = (struct dir_time){ strdup(path), mtime };
}


/* Whether an entry created in `parent` needs a chown to get its owner (see last_parent). */
static int needs_chown(const char *parent, const struct tar_entry *e) {
  if (!last_parent.valid || strcmp(last_parent.dir, parent) != 0) {
    struct stat st;
    if (stat(at(parent), &st) < 0) fail_errno("stat", parent);
    snprintf(last_parent.dir, sizeof last_parent.dir, "%s", parent);
    last_parent.gid = (st.st_mode & S_ISGID) ? st.st_gid : my_gid;
    last_parent.valid = 1;
  }
  return e->uid != my_uid || e->gid != last_parent.gid;
}

/* Creates `path` with `create` (0, or -1 with errno); if something is already there (from a lower layer), it is
 * removed first, as the entry replaces it. Returns create's result. */
static int create_replacing(const char *path, int (*create)(const char *, const struct tar_entry *), const struct tar_entry *e) {
  int r = create(path, e);
  if (r >= 0 || errno != EEXIST) return r;
  remove_all(path);
  strmap_clear(&parents);
  last_parent.valid = 0;
  return create(path, e);
}

static int open_new(const char *path, const struct tar_entry *e) {
  (void)e;
  return open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
}

static int open_new_with_mode(const char *path, const struct tar_entry *e) {
  return open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, e->mode & 07777);
}

static int symlink_new(const char *path, const struct tar_entry *e) { return symlink(e->linkname, path); }

/* A regular file: created with its final mode when we will not chown it (umask is 0), so a new file costs
 * open, write, futimens and close. */
static void write_file(const char *path, const char *parent, const struct tar_entry *e) {
  int chown_it = needs_chown(parent, e);
  int fd = create_replacing(path, chown_it ? open_new : open_new_with_mode, e);
  if (fd < 0) fail_errno("open", path);
  const unsigned char *data;
  ssize_t n;
  while ((n = tar_body(&reader, &data, SIZE_MAX)) > 0)
    if (write_all(fd, data, (size_t)n) < 0) fail_errno("write", path);
  if (n < 0) damaged();
  struct timespec times[2] = { e->mtime, e->mtime };
  /* Owner first: chown clears set-id bits that the mode then sets. */
  if (chown_it && fchown(fd, e->uid, e->gid) < 0) fail_errno("fchown", path);
  if (chown_it && fchmod(fd, e->mode) < 0) fail_errno("fchmod", path);
  if (futimens(fd, times) < 0) fail_errno("futimens", path);
  if (close(fd) < 0) fail_errno("close", path);
}

static void write_symlink(const char *path, const char *parent, const struct tar_entry *e) {
  if (create_replacing(path, symlink_new, e) < 0) fail_errno("symlink", path);
  if (needs_chown(parent, e) && lchown(path, e->uid, e->gid) < 0) fail_errno("lchown", path);
  struct timespec times[2] = { e->mtime, e->mtime };
  if (utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW) < 0) fail_errno("utimensat", path);
}

static void apply_link(const char *path, const struct tar_entry *e) {
  char clean_target[PATH_MAX], dir[PATH_MAX], target[PATH_MAX];
  if (clean(e->linkname, clean_target) < 0) hostile("climbs out of the root with \"..\"");
  if (!*clean_target) hostile("hardlink to the root itself");
  char *slash = strrchr(clean_target, '/');
  const char *last = slash ? slash + 1 : clean_target;
  if (slash) *slash = 0;
  resolve_dir(slash ? clean_target : "", dir, 0);
  join(target, dir, last);
  struct stat st;
  if (lstat(target, &st) < 0) hostile("hardlink target %s does not exist in the layer", e->linkname);
  if (S_ISDIR(st.st_mode)) hostile("hardlink to a directory (%s)", e->linkname);
  if (link(target, path) < 0) fail_errno("link", path);
}

static void apply_entry(struct tar_entry *e) {
  char name[PATH_MAX], parent[PATH_MAX], path[PATH_MAX];
  entry_name = e->name;
  if (clean(e->name, name) < 0) hostile("climbs out of the root with \"..\"");
  if (!*name) return; /* the root itself: kept as the snapshot made it */
  char *slash = strrchr(name, '/');
  const char *base = slash ? slash + 1 : name;
  if (slash) *slash = 0;
  const char *parent_key = slash ? name : "";
  const char *cached = strmap_get(&parents, parent_key);
  if (cached) strcpy(parent, cached);
  else resolve_dir(parent_key, parent, 0);
  if (!strncmp(base, ".wh.", 4)) { whiteout(parent, base); return; }
  if (!cached) {
    mkdir_all(parent);
    if (strmap_put(&parents, parent_key, parent) < 0) { errno = ENOMEM; fail_errno("cache", parent); }
  }
  join(path, parent, base);
  /* A second entry for a path this layer already wrote would silently replace it (what a scanner saw first is
   * not what runs): refused, unless both are the same directory declared twice. */
  int is_dir = e->type == '5';
  if (!is_dir && strmap_get(&written, path)) hostile("a duplicate of an earlier entry in the same layer");
  if (e->type == '0' || e->type == '7' || e->type == '2') {
    /* The commonest entries: created outright, replacing what a lower layer had only when the name is taken. */
    if (e->type == '2') write_symlink(path, parent, e);
    else write_file(path, parent, e);
    if (strmap_put(&written, path, NULL) < 0) { errno = ENOMEM; fail_errno("cache", path); }
    set_xattrs(path, e);
    return;
  }
  struct stat st;
  int exists = lstat(path, &st) == 0;
  int keep_dir = is_dir && exists && S_ISDIR(st.st_mode);
  if (is_dir && !keep_dir && strmap_get(&written, path)) hostile("a duplicate of an earlier entry in the same layer");
  if (exists && !keep_dir) {
    remove_all(path);
    strmap_clear(&parents);
  }
  last_parent.valid = 0; /* a directory's mode or owner may change below, or something was removed */
  switch (e->type) {
  case '5':
    if (!keep_dir && mkdir(path, 0700) < 0) fail_errno("mkdir", path);
    break;
  case '1':
    apply_link(path, e);
    if (strmap_put(&written, path, NULL) < 0) { errno = ENOMEM; fail_errno("cache", path); }
    return;
  case '3': case '4': case '6': {
    mode_t kind = e->type == '6' ? S_IFIFO : e->type == '3' ? S_IFCHR : S_IFBLK;
    if (mknod(path, kind | e->mode, makedev(e->devmajor, e->devminor)) < 0) fail_errno("mknod", path);
    break;
  }
  default:
    return; /* other types (sparse, volume labels ...) carry nothing to apply */
  }
  if (strmap_put(&written, path, NULL) < 0) { errno = ENOMEM; fail_errno("cache", path); }
  if (lchown(path, e->uid, e->gid) < 0) fail_errno("lchown", path);
  if (chmod(path, e->mode) < 0) fail_errno("chmod", path);
  set_xattrs(path, e);
  if (is_dir) remember_dir_time(path, e->mtime);
  else {
    struct timespec times[2] = { e->mtime, e->mtime };
    if (utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW) < 0) fail_errno("utimensat", path);
  }
}

int main(int argc, char **argv) {
  enum compression compression = COMPRESSION_NONE;
  int i = 1;
  for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
    if (!strcmp(argv[i], "--overlay-upper")) overlay_upper = 1;
    else if (!strcmp(argv[i], "--gzip")) compression = COMPRESSION_GZIP;
    else if (!strcmp(argv[i], "--zstd")) compression = COMPRESSION_ZSTD;
    else { fprintf(stderr, "berth-apply: unknown option %s\n", argv[i]); return EXIT_IO; }
  }
  if (i != argc - 1) { fputs(USAGE, stderr); return EXIT_IO; }
  source = source_open(0, compression);
  if (!source || tar_open(&reader, (tar_read_fn)source_read, source) < 0) { fputs("berth-apply: out of memory\n", stderr); return EXIT_IO; }
  if (chdir(argv[i]) < 0) { fprintf(stderr, "berth-apply: cannot enter %s: %s\n", argv[i], strerror(errno)); return EXIT_IO; }
  umask(0); /* modes are the layer's, exactly */
  my_uid = geteuid();
  my_gid = getegid();
  struct tar_entry e;
  int rc;
  while ((rc = tar_next(&reader, &e)) > 0) {
    if (e.type == '0' && *e.name && e.name[strlen(e.name) - 1] == '/') e.type = '5'; /* an old-style directory */
    apply_entry(&e);
    tar_entry_free(&e);
  }
  if (rc < 0 || tar_drain(&reader) < 0) damaged(); /* the diff ID covers every byte, to the stream's end */
  /* Directory times last: creating entries inside a directory changes its mtime. */
  while (n_dir_times--) {
    struct timespec times[2] = { dir_times[n_dir_times].mtime, dir_times[n_dir_times].mtime };
    utimensat(AT_FDCWD, dir_times[n_dir_times].path, times, AT_SYMLINK_NOFOLLOW);
  }
  char digest[72];
  uint64_t size;
  source_digest(source, digest, &size);
  printf("%s %llu\n", digest, (unsigned long long)size);
  return 0;
}
