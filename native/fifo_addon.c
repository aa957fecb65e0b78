/* berth-fifo.node: mkfifo(2) for the berth CLI, which makes the FIFOs a task's stdio goes through (as ctr does).
 * Node has no mkfifo; through ffi-rs it costs a CLI 10-30 ms to load, spawning mkfifo(1) ~5 ms; a Node-API
 * addon this small loads in well under a millisecond.
 * mkfifo(path, mode) returns nothing; on failure it throws an Error whose code is the errno name. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <node_api.h>

static napi_value make_fifo(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2];
	char path[4096];
	size_t len = 0;
	uint32_t mode = 0;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
	    napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok || len >= sizeof path - 1 ||
	    napi_get_value_uint32(env, argv[1], &mode) != napi_ok) {
		napi_throw_type_error(env, NULL, "mkfifo(path: string, mode: number)");
		return NULL;
	}
	if (mkfifo(path, (mode_t)mode) < 0) {
		char message[4200];
		snprintf(message, sizeof message, "mkfifo %s: %s", path, strerror(errno));
		const char *code = strerrorname_np(errno);
		napi_throw_error(env, code ? code : "EIO", message);
	}
	return NULL;
}

NAPI_MODULE_INIT()
{
	napi_value fn;
	if (napi_create_function(env, "mkfifo", NAPI_AUTO_LENGTH, make_fifo, NULL, &fn) != napi_ok ||
	    napi_set_named_property(env, exports, "mkfifo", fn) != napi_ok)
		return NULL;
	return exports;
}
