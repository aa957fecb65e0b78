/* berth-sys.node: the system calls berth's TypeScript needs fast and Node lacks, as a Node-API addon.
 *   mkfifo(path, mode)                      the CLI's stdio FIFOs (through ffi-rs the CLI paid 10-30 ms to load it)
 *   spawn(file, argv, env, fds, cwd, setsid) posix_spawn: the parent's memory is shared until the exec, not copied
 *                                           as Node's fork-based spawn copies it (~7 ms blocked for a shim this
 *                                           size); fds[i] becomes the child's fd i (-1: /dev/null), and no other
 *                                           fd of ours reaches it; returns the pid
 *   socketpair()                            [ours, theirs]: a connected AF_UNIX stream pair, close-on-exec
 *   waitpid(pid)                            the raw wait status once pid has exited (reaped), else undefined
 *   removeTree(path)                        a promise: removes the tree on the thread pool in one job (fs.rm
 *                                           runs a JS callback per entry on the main thread); never crosses
 *                                           into a mount inside it (EBUSY)
 * Failures throw an Error whose code is the errno name. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <node_api.h>

#define MAX_FDS 16
#define MAX_STRINGS 4096

static napi_value throw_errno(napi_env env, int err, const char *what)
{
	char message[8400];
	snprintf(message, sizeof message, "%s: %s", what, strerror(err));
	const char *code = strerrorname_np(err);
	napi_throw_error(env, code ? code : "EIO", message);
	return NULL;
}

static napi_value throw_usage(napi_env env, const char *usage)
{
	napi_throw_type_error(env, NULL, usage);
	return NULL;
}

/* A JS string as a malloc'd C string; NULL when it is not a string. */
static char *string_of(napi_env env, napi_value v)
{
	size_t len;
	if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok)
		return NULL;
	char *s = malloc(len + 1);
	if (s && napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok) {
		free(s);
		return NULL;
	}
	return s;
}

static void free_strings(char **list)
{
	for (char **p = list; p && *p; p++)
		free(*p);
	free(list);
}

/* A JS array of strings as a NULL-terminated vector; NULL when it is not one. */
static char **strings_of(napi_env env, napi_value v)
{
	uint32_t n;
	if (napi_get_array_length(env, v, &n) != napi_ok || n > MAX_STRINGS)
		return NULL;
	char **list = calloc(n + 1, sizeof *list);
	for (uint32_t i = 0; list && i < n; i++) {
		napi_value item;
		if (napi_get_element(env, v, i, &item) != napi_ok || !(list[i] = string_of(env, item))) {
			free_strings(list);
			return NULL;
		}
	}
	return list;
}

static napi_value make_fifo(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2];
	uint32_t mode = 0;
	char *path = NULL;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || !(path = string_of(env, argv[0])) ||
	    napi_get_value_uint32(env, argv[1], &mode) != napi_ok) {
		free(path);
		return throw_usage(env, "mkfifo(path: string, mode: number)");
	}
	if (mkfifo(path, (mode_t)mode) < 0) {
		char what[4200];
		snprintf(what, sizeof what, "mkfifo %s", path);
		free(path);
		return throw_errno(env, errno, what);
	}
	free(path);
	return NULL;
}

static napi_value spawn_process(napi_env env, napi_callback_info info)
{
	static const char *usage = "spawn(file: string, argv: string[], env: string[], fds: number[], cwd: string | null, setsid: boolean)";
	size_t argc = 6;
	napi_value a[6];
	napi_valuetype cwd_type;
	bool setsid = false;
	uint32_t nfds = 0;
	if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 6 || napi_get_array_length(env, a[3], &nfds) != napi_ok ||
	    nfds > MAX_FDS || napi_typeof(env, a[4], &cwd_type) != napi_ok || napi_get_value_bool(env, a[5], &setsid) != napi_ok)
		return throw_usage(env, usage);
	char *file = string_of(env, a[0]), *cwd = cwd_type == napi_string ? string_of(env, a[4]) : NULL;
	char **args = strings_of(env, a[1]), **envp = strings_of(env, a[2]);
	int fds[MAX_FDS], high[MAX_FDS];
	int ok = file && args && envp && (cwd_type != napi_string || cwd);
	for (uint32_t i = 0; i < nfds; i++) {
		napi_value v;
		high[i] = -1;
		ok = ok && napi_get_element(env, a[3], i, &v) == napi_ok && napi_get_value_int32(env, v, &fds[i]) == napi_ok;
	}
	napi_value result = NULL;
	if (!ok) {
		throw_usage(env, usage);
		goto out;
	}
	/* Each source fd is first copied above every target, so no dup2 below overwrites a source not yet used. */
	for (uint32_t i = 0; i < nfds; i++) {
		if (fds[i] >= 0 && (high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, MAX_FDS)) < 0) {
			throw_errno(env, errno, "spawn: duplicating a child's fd");
			goto out;
		}
	}
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	posix_spawn_file_actions_init(&actions);
	posix_spawnattr_init(&attr);
	for (uint32_t i = 0; i < nfds; i++) {
		if (high[i] >= 0)
			posix_spawn_file_actions_adddup2(&actions, high[i], (int)i);
		else
			posix_spawn_file_actions_addopen(&actions, (int)i, "/dev/null", O_RDWR, 0);
	}
	/* Nothing else of ours reaches the child, close-on-exec or not (lmdb, for one, opens its files without it). */
	posix_spawn_file_actions_addclosefrom_np(&actions, (int)nfds);
	if (cwd)
		posix_spawn_file_actions_addchdir_np(&actions, cwd);
	/* Node ignores SIGPIPE and blocks nothing we know of; the child starts from the defaults either way. */
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (setsid ? POSIX_SPAWN_SETSID : 0));
	pid_t pid;
	int err = posix_spawn(&pid, file, &actions, &attr, args, envp);
	posix_spawn_file_actions_destroy(&actions);
	posix_spawnattr_destroy(&attr);
	if (err) {
		char what[4200];
		snprintf(what, sizeof what, "spawn %s", file);
		throw_errno(env, err, what);
		goto out;
	}
	napi_create_int32(env, pid, &result);
out:
	for (uint32_t i = 0; i < nfds; i++)
		if (high[i] >= 0)
			close(high[i]);
	free(file);
	free(cwd);
	free_strings(args);
	free_strings(envp);
	return result;
}

static napi_value make_socketpair(napi_env env, napi_callback_info info)
{
	(void)info;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return throw_errno(env, errno, "socketpair");
	napi_value pair, fd;
	napi_create_array_with_length(env, 2, &pair);
	for (uint32_t i = 0; i < 2; i++) {
		napi_create_int32(env, sv[i], &fd);
		napi_set_element(env, pair, i, fd);
	}
	return pair;
}

static napi_value wait_for(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value a[1];
	int32_t pid;
	if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, a[0], &pid) != napi_ok || pid <= 0)
		return throw_usage(env, "waitpid(pid: number)");
	int status;
	pid_t got;
	while ((got = waitpid(pid, &status, WNOHANG)) < 0 && errno == EINTR)
		;
	if (got < 0)
		return throw_errno(env, errno, "waitpid");
	if (got == 0)
		return NULL;
	napi_value result;
	napi_create_int32(env, status, &result);
	return result;
}

/* Removes name (under parent) and everything below it, without following symlinks or entering mounts. */
static int remove_entry(int parent, const char *name)
{
	if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return errno;
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : errno;
	struct statx stx;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx) == 0 && (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	    (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
		close(fd);
		return EBUSY;
	}
	DIR *dir = fdopendir(fd);
	if (!dir) {
		int err = errno;
		close(fd);
		return err;
	}
	int err = 0;
	/* Entries removed while reading may hide others from this pass: read again until the directory goes. */
	for (int pass = 0; pass < 8; pass++) {
		struct dirent *e;
		while ((e = readdir(dir))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			int r = remove_entry(dirfd(dir), e->d_name);
			if (r && !err)
				err = r;
		}
		if (err || unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT) {
			closedir(dir);
			return err;
		}
		if (errno != ENOTEMPTY)
			break;
		rewinddir(dir);
	}
	err = errno;
	closedir(dir);
	return err;
}

struct removal {
	napi_async_work work;
	napi_deferred deferred;
	char *path;
	int err;
};

static void removal_execute(napi_env env, void *data)
{
	(void)env;
	struct removal *r = data;
	r->err = remove_entry(AT_FDCWD, r->path);
}

static void removal_complete(napi_env env, napi_status status, void *data)
{
	struct removal *r = data;
	napi_value undefined;
	napi_get_undefined(env, &undefined);
	if (status == napi_ok && !r->err) {
		napi_resolve_deferred(env, r->deferred, undefined);
	} else {
		int err = r->err ? r->err : ECANCELED;
		char message[4200];
		snprintf(message, sizeof message, "removing %.4000s: %s", r->path, strerror(err));
		const char *name = strerrorname_np(err);
		napi_value msg, code, error;
		napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
		napi_create_string_utf8(env, name ? name : "EIO", NAPI_AUTO_LENGTH, &code);
		napi_create_error(env, code, msg, &error);
		napi_set_named_property(env, error, "code", code);
		napi_reject_deferred(env, r->deferred, error);
	}
	napi_delete_async_work(env, r->work);
	free(r->path);
	free(r);
}

static napi_value remove_tree(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value a[1], promise, name;
	struct removal *r = calloc(1, sizeof *r);
	if (!r || napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 1 || !(r->path = string_of(env, a[0]))) {
		free(r);
		return throw_usage(env, "removeTree(path: string)");
	}
	napi_create_string_utf8(env, "berth:removeTree", NAPI_AUTO_LENGTH, &name);
	if (napi_create_promise(env, &r->deferred, &promise) != napi_ok ||
	    napi_create_async_work(env, NULL, name, removal_execute, removal_complete, r, &r->work) != napi_ok ||
	    napi_queue_async_work(env, r->work) != napi_ok) {
		free(r->path);
		free(r);
		return throw_errno(env, ENOMEM, "removeTree");
	}
	return promise;
}

NAPI_MODULE_INIT()
{
	struct { const char *name; napi_callback fn; } fns[] = {
		{ "mkfifo", make_fifo }, { "spawn", spawn_process }, { "socketpair", make_socketpair }, { "waitpid", wait_for },
		{ "removeTree", remove_tree },
	};
	for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
		napi_value fn;
		if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn) != napi_ok ||
		    napi_set_named_property(env, exports, fns[i].name, fn) != napi_ok)
			return NULL;
	}
	return exports;
}
