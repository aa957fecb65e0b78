#define _GNU_SOURCE
#include "rootfs.h"
#include "hooks.h"
#include "mount_source.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* How container paths are resolved below the root: as if `root` were / (an absolute symlink or `..` stays inside
 * it, as runc's securejoin resolves them: /var/run -> /run leads to the container's /run), never through
 * /proc magic links. Paths that must hold no symlink at all add RESOLVE_NO_SYMLINKS. */
static unsigned long long resolve_flags = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

/* Opens `path` below `root` without ever leaving it (the kernel resolves every component in the root). */
static int open_beneath(int root, const char *path, int flags)
{
	while (*path == '/')
		path++;
	if (!*path)
		path = ".";
	struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC), .resolve = resolve_flags };
	return (int)syscall(SYS_openat2, root, path, &how, sizeof how);
}

static void __attribute__((noreturn)) fail_resolve(const char *what, const char *path)
{
	if (errno == ELOOP && (resolve_flags & RESOLVE_NO_SYMLINKS))
		fail("%s %s: proc and sysfs must be mounted on ordinary directory, reached without symlinks", what, path);
	fail("%s %s: %s", what, path, strerror(errno));
}

/* Creates every missing directory of `path` below `root` (and the last component as a file when is_file),
 * and returns an O_PATH fd of it. A dangling symlink on the way is followed inside the root and what it names
 * is made (as runc's securejoin + MkdirAll do). */
static int make_beneath(int root, const char *path, int is_file, const char *what)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", path);
	for (int links = 0; links < 40; links++) {
		char *slash = buf;
		for (;;) {
			slash = strchr(slash + 1, '/');
			if (slash)
				*slash = '\0';
			int fd = open_beneath(root, buf, O_PATH);
			if (fd < 0 && errno == ENOENT) {
				char *last = strrchr(buf, '/');
				*last = '\0';
				int parent = open_beneath(root, buf, O_PATH | O_DIRECTORY);
				*last = '/';
				if (parent < 0)
					fail_resolve(what, path);
				char target[4096];
				ssize_t n = readlinkat(parent, last + 1, target, sizeof target - 1);
				if (n >= 0) {
					/* Continue with the link's target in place of the link (relative: from its directory). */
					target[n] = '\0';
					char next[4096];
					const char *rest = slash ? slash + 1 : "";
					*last = '\0';
					const char *sep = *rest ? "/" : "";
					int len = target[0] == '/' ? snprintf(next, sizeof next, "%s%s%s", target, sep, rest)
								   : snprintf(next, sizeof next, "%s/%s%s%s", buf, target, sep, rest);
					if (len < 0 || (size_t)len >= sizeof next)
						fail("%s %s: path too long", what, path);
					close(parent);
					memcpy(buf, next, (size_t)len + 1);
					break;
				}
				int is_leaf_file = is_file && !slash;
				int rc = is_leaf_file ? mknodat(parent, last + 1, S_IFREG | 0644, 0) : mkdirat(parent, last + 1, 0755);
				if (rc < 0 && errno != EEXIST)
					fail("creating %s for %s: %s", buf, what, strerror(errno));
				close(parent);
				fd = open_beneath(root, buf, O_PATH);
			}
			if (fd < 0)
				fail_resolve(what, path);
			if (!slash)
				return fd;
			close(fd);
			*slash = '/';
		}
	}
	errno = ELOOP;
	fail_resolve(what, path);
}

/* `shown` names the source in errors (src may be a /proc/self/fd path). */
static void mount_at_fd(const char *src, const char *shown, int fd, const char *type, unsigned long flags, const char *data, const char *dest)
{
	char target[64];
	snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
	int rc = (flags & MS_BIND) ? mount(src, target, NULL, flags & (MS_BIND | MS_REC), NULL)
				   : mount(src, target, type, flags, *data ? data : NULL);
	if (rc < 0)
		fail("mount %s (%s) on %s: %s", shown, type, dest, strerror(errno));
}

/* Applies flags or propagation to the mount now on top of `dest` (an fd taken before mounting would still
 * name the covered directory, so resolve again). */
static void change_mount(int root, const char *dest, unsigned long flags, const char *what)
{
	int fd = open_beneath(root, dest, O_PATH);
	char target[64];
	snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
	if (fd < 0 || mount(NULL, target, NULL, flags, NULL) < 0)
		fail("%s of %s (flags %#lx): %s", what, dest, flags, strerror(errno));
	close(fd);
}

/* mount_setattr(AT_RECURSIVE): the mount at `fd` and every mount below it. */
static void set_recursive_attrs(int fd, const char *path, const char *set, const char *clr, const char *dest)
{
	struct mount_attr attr = { .attr_set = strtoull(set, NULL, 10), .attr_clr = strtoull(clr, NULL, 10) };
	if (!attr.attr_set && !attr.attr_clr)
		return;
	if (syscall(SYS_mount_setattr, fd, path, AT_RECURSIVE | AT_EMPTY_PATH, &attr, sizeof attr) == 0)
		return;
	if (errno == ENOSYS)
		fail("mount %s: recursive mount options (rro, rnosuid, ...) need mount_setattr, which this kernel lacks (Linux 5.12+)", dest);
	fail("mount %s: setting recursive mount attributes (set %#llx, clear %#llx): %s", dest,
	     (unsigned long long)attr.attr_set, (unsigned long long)attr.attr_clr, strerror(errno));
}

static void do_mountattr(int root, const char **a)
{
	int fd = open_beneath(root, a[0], O_PATH);
	if (fd < 0)
		fail_resolve("mount destination", a[0]);
	set_recursive_attrs(fd, "", a[1], a[2], a[0]);
	close(fd);
}

/* Copies the tree at `from` into `to` (both directories), keeping owners, modes and times: tmpcopyup. */
static void copy_tree(int from, int to, const char *dest)
{
	DIR *dir = fdopendir(dup(from));
	if (!dir)
		fail("tmpcopyup of %s: %s", dest, strerror(errno));
	struct dirent *e;
	while ((e = readdir(dir))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(from, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			fail("tmpcopyup of %s: %s: %s", dest, e->d_name, strerror(errno));
		int rc = 0;
		if (S_ISDIR(st.st_mode)) {
			rc = mkdirat(to, e->d_name, 0700);
			int sub_from = openat(from, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			int sub_to = openat(to, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (rc < 0 || sub_from < 0 || sub_to < 0)
				fail("tmpcopyup of %s: %s: %s", dest, e->d_name, strerror(errno));
			copy_tree(sub_from, sub_to, dest);
			close(sub_from);
			close(sub_to);
		} else if (S_ISREG(st.st_mode)) {
			int in = openat(from, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			int out = openat(to, e->d_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			if (in < 0 || out < 0)
				fail("tmpcopyup of %s: %s: %s", dest, e->d_name, strerror(errno));
			for (off_t off = 0; off < st.st_size;) {
				ssize_t n = sendfile(out, in, &off, (size_t)(st.st_size - off));
				if (n <= 0)
					fail("tmpcopyup of %s: copying %s: %s", dest, e->d_name, n < 0 ? strerror(errno) : "file shrank");
			}
			close(in);
			close(out);
		} else if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t n = readlinkat(from, e->d_name, target, sizeof target - 1);
			if (n < 0)
				fail("tmpcopyup of %s: %s: %s", dest, e->d_name, strerror(errno));
			target[n] = '\0';
			rc = symlinkat(target, to, e->d_name);
		} else {
			rc = mknodat(to, e->d_name, st.st_mode, st.st_rdev);
		}
		if (rc < 0 || fchownat(to, e->d_name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
		    (!S_ISLNK(st.st_mode) && fchmodat(to, e->d_name, st.st_mode & 07777, 0) < 0))
			fail("tmpcopyup of %s: %s: %s", dest, e->d_name, strerror(errno));
		struct timespec times[2] = { st.st_atim, st.st_mtim };
		utimensat(to, e->d_name, times, AT_SYMLINK_NOFOLLOW);
	}
	closedir(dir);
}

static void do_mount(int root, struct record *r, int index)
{
	const char **a = r->argv;
	const char *src = a[0], *dest = a[1], *type = a[2], *data = a[4];
	unsigned long flags = strtoul(a[3], NULL, 10), prop = strtoul(a[5], NULL, 10);
	/* proc and sysfs go on an ordinary directory, never through a symlink that could point them elsewhere. */
	if (!strcmp(type, "proc") || !strcmp(type, "sysfs"))
		resolve_flags |= RESOLVE_NO_SYMLINKS;
	int fd = make_beneath(root, dest, a[6][0] == 'f', "mount destination");
	resolve_flags &= ~(unsigned long long)RESOLVE_NO_SYMLINKS;
	int copyup = r->argc > 7 && !strcmp(a[7], "copyup");
	/* A source the host's root opened for us (mount_source.h) is bound from its fd. */
	char via[64];
	int src_fd = mount_source_fd(index);
	if (src_fd >= 0)
		snprintf(via, sizeof via, "/proc/self/fd/%d", src_fd);
	/* What the tmpfs will cover, opened before it does: an fd keeps naming the covered directory. */
	int covered = copyup ? openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (copyup && covered < 0)
		fail("tmpcopyup of %s: %s", dest, strerror(errno));
	mount_at_fd(src_fd >= 0 ? via : src, src, fd, type, flags, data, dest);
	close(fd);
	if (src_fd >= 0)
		close(src_fd);
	if (copyup) {
		int top = open_beneath(root, dest, O_RDONLY | O_DIRECTORY);
		if (top < 0)
			fail_resolve("mount destination", dest);
		copy_tree(covered, top, dest);
		close(top);
		close(covered);
	}
	/* A bind ignores other flags: apply them with a remount of the new mount. */
	unsigned long rest = flags & ~(MS_BIND | MS_REC);
	if ((flags & MS_BIND) && rest)
		change_mount(root, dest, MS_BIND | MS_REMOUNT | rest, "remount");
	if (prop)
		change_mount(root, dest, prop, "setting propagation");
}

static void do_mkdev(int root, const char **a)
{
	const char *dest = a[0];
	char *copy = strdup(dest), *last = strrchr(copy, '/');
	*last = '\0';
	int parent = make_beneath(root, *copy ? copy : "/", 0, "device");
	mode_t kind = a[1][0] == 'b' ? S_IFBLK : a[1][0] == 'p' ? S_IFIFO : S_IFCHR;
	mode_t mode = (mode_t)strtoul(a[4], NULL, 8);
	dev_t dev = makedev(strtoul(a[2], NULL, 10), strtoul(a[3], NULL, 10));
	unlinkat(parent, last + 1, 0);
	if (mknodat(parent, last + 1, kind | mode, dev) < 0) {
		/* In a user namespace mknod is refused: bind the host's node instead, as runc does. */
		if (errno != EPERM || kind == S_IFIFO)
			fail("mknod %s: %s", dest, strerror(errno));
		int fd = make_beneath(root, dest, 1, "device");
		mount_at_fd(dest, dest, fd, "", MS_BIND, "", dest);
		close(fd);
	} else {
		if (fchmodat(parent, last + 1, mode, 0) < 0 ||
		    fchownat(parent, last + 1, (uid_t)strtoul(a[5], NULL, 10), (gid_t)strtoul(a[6], NULL, 10), AT_SYMLINK_NOFOLLOW) < 0)
			fail("setting owner and mode of %s: %s", dest, strerror(errno));
	}
	close(parent);
	free(copy);
}

static void do_symlink(int root, const char **a)
{
	char *copy = strdup(a[1]), *last = strrchr(copy, '/');
	*last = '\0';
	int parent = make_beneath(root, *copy ? copy : "/", 0, "symlink");
	if (symlinkat(a[0], parent, last + 1) < 0 && errno != EEXIST)
		fail("symlink %s -> %s: %s", a[1], a[0], strerror(errno));
	close(parent);
	free(copy);
}

static void pivot(const char *rootfs, int use_pivot_root)
{
	if (chdir(rootfs) < 0)
		fail("chdir %s: %s", rootfs, strerror(errno));
	if (use_pivot_root) {
		/* pivot_root(".", ".") stacks the old root under the new one; detach it right away. */
		if (syscall(SYS_pivot_root, ".", ".") < 0)
			fail("pivot_root: %s", strerror(errno));
		if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0 || umount2(".", MNT_DETACH) < 0)
			fail("detaching the old root: %s", strerror(errno));
	} else {
		if (mount(rootfs, "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0)
			fail("moving the root (no pivot_root): %s", strerror(errno));
	}
	if (chdir("/") < 0)
		fail("chdir /: %s", strerror(errno));
}

static void mask_path(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return;
	int rc = S_ISDIR(st.st_mode) ? mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0k") : mount("/dev/null", path, NULL, MS_BIND, NULL);
	if (rc < 0)
		fail("masking %s: %s", path, strerror(errno));
}

static void readonly_path(const char *path)
{
	if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
		if (errno == ENOENT)
			return;
		fail("readonly path %s: %s", path, strerror(errno));
	}
	/* Keep the flags the mount already has (the kernel refuses to drop locked ones), add read-only: as runc. */
	struct statfs st;
	unsigned long keep = statfs(path, &st) == 0 ? (unsigned long)st.f_flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC) : 0;
	if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL) < 0)
		fail("remounting %s read-only: %s", path, strerror(errno));
}

static void apply_sysctls(struct plan *p)
{
	for (int i = 0; i < p->count; i++) {
		struct record *r = &p->records[i];
		if (strcmp(r->tag, "sysctl"))
			continue;
		char path[512];
		snprintf(path, sizeof path, "/proc/sys/%s", r->argv[1]);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, r->argv[2], strlen(r->argv[2])) < 0)
			fail("sysctl %s=%s: writing %s: %s", r->argv[0], r->argv[2], path, strerror(errno));
		close(fd);
	}
}

/* A tmpfs or /dev mounted writable until now (see plan.ts addMount) turns read-only, then gets its recursive
 * attributes. A bind remount changes only the flags, which a user namespace may do too (as runc). */
static void remount_ro(const char **a)
{
	unsigned long keep = strtoul(a[1], NULL, 10);
	if (mount(NULL, a[0], NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL) < 0)
		fail("remounting %s read-only: %s", a[0], strerror(errno));
	int fd = open(a[0], O_PATH | O_CLOEXEC);
	if (fd < 0)
		fail("remounting %s read-only: %s", a[0], strerror(errno));
	set_recursive_attrs(fd, "", a[2], a[3], a[0]);
	close(fd);
}

void ensure_dir(const char *path)
{
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	close(make_beneath(root, path, 0, "working directory"));
	close(root);
}

int prepare_rootfs(struct plan *plan)
{
	const char *rootfs = NULL;
	int fifo = -1, use_pivot_root = 1, rootro = 0;
	unsigned long propagation = MS_SLAVE | MS_REC;
	for (int i = 0; i < plan->count; i++) {
		struct record *r = &plan->records[i];
		if (!strcmp(r->tag, "rootfs"))
			rootfs = r->argv[0];
		else if (!strcmp(r->tag, "propagation"))
			propagation = strtoul(r->argv[0], NULL, 10);
		else if (!strcmp(r->tag, "pivot"))
			use_pivot_root = atoi(r->argv[0]);
		else if (!strcmp(r->tag, "rootro"))
			rootro = 1;
	}
	if (!rootfs)
		return -1; /* exec into a running container: its mount namespace, already joined, is the root */
	/* Nothing we mount may propagate back to the host. */
	if (mount(NULL, "/", NULL, propagation, NULL) < 0)
		fail("making / %#lx: %s", propagation, strerror(errno));
	if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		fail("bind mount of rootfs %s: %s", rootfs, strerror(errno));
	int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		fail("opening rootfs %s: %s", rootfs, strerror(errno));
	for (int i = 0; i < plan->count; i++) {
		struct record *r = &plan->records[i];
		if (!strcmp(r->tag, "mount"))
			do_mount(root, r, i);
		else if (!strcmp(r->tag, "mountattr"))
			do_mountattr(root, r->argv);
		else if (!strcmp(r->tag, "mkdev"))
			do_mkdev(root, r->argv);
		else if (!strcmp(r->tag, "symlink"))
			do_symlink(root, r->argv);
		else if (!strcmp(r->tag, "execfifo") && (fifo = open(r->argv[0], O_PATH | O_CLOEXEC)) < 0)
			fail("opening exec fifo %s: %s", r->argv[0], strerror(errno));
	}
	close(root);
	/* createContainer hooks run in the container's root directory (not yet its root), as runc runs them. */
	if (chdir(rootfs) < 0)
		fail("chdir %s: %s", rootfs, strerror(errno));
	char err[600];
	if (hooks_run(plan, "createContainer", err, sizeof err) < 0)
		fail("%s", err);
	pivot(rootfs, use_pivot_root);
	/* Sysctls go through the container's /proc/sys before it is made read-only below (as runc orders them). */
	apply_sysctls(plan);
	for (int i = 0; i < plan->count; i++) {
		struct record *r = &plan->records[i];
		if (!strcmp(r->tag, "readonly"))
			readonly_path(r->argv[0]);
		else if (!strcmp(r->tag, "masked"))
			mask_path(r->argv[0]);
		else if (!strcmp(r->tag, "remountro"))
			remount_ro(r->argv);
	}
	if (rootro && mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL) < 0)
		fail("remounting the root read-only: %s", strerror(errno));
	return fifo;
}

/* Unescapes a mountinfo field (\040 and the like) in place. */
static void unescape_octal(char *s)
{
	char *out = s;
	for (char *in = s; *in; in++) {
		if (in[0] == '\\' && in[1] >= '0' && in[1] <= '7' && in[2] && in[3]) {
			*out++ = (char)(((in[1] - '0') << 6) | ((in[2] - '0') << 3) | (in[3] - '0'));
			in += 3;
		} else {
			*out++ = *in;
		}
	}
	*out = '\0';
}

int cover_host_pseudofs(const char *rootfs, char *err, size_t errlen)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f) {
		snprintf(err, errlen, "reading /proc/self/mountinfo: %s", strerror(errno));
		return -1;
	}
	char line[8192];
	size_t rootlen = strlen(rootfs);
	char points[64][1024];
	int n = 0;
	while (n < 64 && fgets(line, sizeof line, f)) {
		/* id parent major:minor root mountpoint options [optional fields] - fstype source superoptions */
		char *fields[6], *save = NULL, *tok = strtok_r(line, " ", &save);
		int i = 0;
		for (; tok && i < 6; tok = strtok_r(NULL, " ", &save))
			fields[i++] = tok;
		char *dash = tok;
		while (dash && strcmp(dash, "-"))
			dash = strtok_r(NULL, " ", &save);
		char *fstype = dash ? strtok_r(NULL, " ", &save) : NULL;
		if (i < 6 || !fstype || strcmp(fields[3], "/") || (strcmp(fstype, "proc") && strcmp(fstype, "sysfs")))
			continue;
		unescape_octal(fields[4]);
		if (!strncmp(fields[4], rootfs, rootlen) && (fields[4][rootlen] == '/' || !fields[4][rootlen]))
			continue;
		snprintf(points[n++], sizeof points[0], "%s/%s", strcmp(fields[4], "/") ? fields[4] : "", strcmp(fstype, "proc") ? "kernel" : "sys");
	}
	fclose(f);
	if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0) {
		snprintf(err, errlen, "making / a slave before hiding the host's proc and sysfs: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (mount("tmpfs", points[i], "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0k,mode=000") < 0 && errno != ENOENT) {
			snprintf(err, errlen, "hiding %s from the container: %s", points[i], strerror(errno));
			return -1;
		}
	}
	return 0;
}
