#define _GNU_SOURCE
#include "rootfs.h"
#include "hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Opens `path` below `root` without ever leaving it: `..` or a symlink that would climb out fails with EXDEV
 * instead of being followed (the kernel checks every component). */
static int open_beneath(int root, const char *path, int flags)
{
	while (*path == '/')
		path++;
	if (!*path)
		path = ".";
	struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC), .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	return (int)syscall(SYS_openat2, root, path, &how, sizeof how);
}

static void fail_resolve(const char *what, const char *path)
{
	if (errno == EXDEV)
		fail("%s %s escapes the container root (through .. or a symlink)", what, path);
	fail("%s %s: %s", what, path, strerror(errno));
}

/* Creates every missing directory of `path` below `root` (and the last component as a file when is_file),
 * and returns an O_PATH fd of it. */
static int make_beneath(int root, const char *path, int is_file, const char *what)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *slash = buf + 1;; slash++) {
		slash = strchr(slash, '/');
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

static void mount_at_fd(const char *src, int fd, const char *type, unsigned long flags, const char *data, const char *dest)
{
	char target[64];
	snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
	int rc = (flags & MS_BIND) ? mount(src, target, NULL, flags & (MS_BIND | MS_REC), NULL)
				   : mount(src, target, type, flags, *data ? data : NULL);
	if (rc < 0)
		fail("mount %s (%s) on %s: %s", src, type, dest, strerror(errno));
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

static void do_mount(int root, const char **a)
{
	const char *src = a[0], *dest = a[1], *type = a[2], *data = a[4];
	unsigned long flags = strtoul(a[3], NULL, 10), prop = strtoul(a[5], NULL, 10);
	int fd = make_beneath(root, dest, a[6][0] == 'f', "mount destination");
	mount_at_fd(src, fd, type, flags, data, dest);
	close(fd);
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
		mount_at_fd(dest, fd, "", MS_BIND, "", dest);
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
			do_mount(root, r->argv);
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
	}
	if (rootro && mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL) < 0)
		fail("remounting the root read-only: %s", strerror(errno));
	return fifo;
}
