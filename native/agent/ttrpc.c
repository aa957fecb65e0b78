/* ttrpc on the virtio-serial port: 10-byte frame headers (length, stream id, type, flags; big-endian), a
 * ttrpc.Request envelope per call, a ttrpc.Response per answer (api/ttrpc/, /work/shared/protocols.md). Calls
 * are independent: a handler answers at once or keeps the stream id and answers later (long-polls), so many
 * calls are in flight at a time. Bad input is answered with a status on its stream; the port keeps serving.
 *
 * The port reports POLLHUP while no host is connected (before the host connects, after it goes away): then we
 * stop watching it, drop what was half read or queued, and look again every 50 ms. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HEADER 10
#define MAX_DATA (4u << 20)
#define T_REQUEST 1
#define T_RESPONSE 2
#define SERVICE "berth.agent.v1.Agent"

static int port = -1;
static int connected;
static struct buf in, out;
/* Bytes of an oversized frame still to be skipped. */
static size_t skipping;
uint64_t ttrpc_epoch = 1;
static uint64_t next_look;

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int status_of_errno(int err)
{
	switch (err) {
	case ENOENT: return ST_NOT_FOUND;
	case EEXIST: return ST_ALREADY_EXISTS;
	case EINVAL: case ENAMETOOLONG: case ERANGE: return ST_INVALID_ARGUMENT;
	case EBUSY: case ESRCH: return ST_FAILED_PRECONDITION;
	case ENOMEM: case ENOSPC: case EMFILE: case ENFILE: return ST_RESOURCE_EXHAUSTED;
	case EPERM: case EACCES: return 7;
	default: return ST_UNKNOWN;
	}
}

static void on_port(void *ctx, int fd, short revents);

static void flush_some(void)
{
	while (connected && out.len) {
		ssize_t n = write(port, out.data, out.len);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				logmsg("writing to the port: %s", strerror(errno));
			break;
		}
		buf_consume(&out, (size_t)n);
	}
	if (connected)
		watch_events(port, (short)(POLLIN | (out.len ? POLLOUT : 0)));
}

static void send_frame(uint32_t stream, uint8_t type, const struct buf *data)
{
	if (!connected)
		return;
	uint8_t h[HEADER];
	uint32_t len = (uint32_t)data->len;
	h[0] = (uint8_t)(len >> 24), h[1] = (uint8_t)(len >> 16), h[2] = (uint8_t)(len >> 8), h[3] = (uint8_t)len;
	h[4] = (uint8_t)(stream >> 24), h[5] = (uint8_t)(stream >> 16), h[6] = (uint8_t)(stream >> 8), h[7] = (uint8_t)stream;
	h[8] = type;
	h[9] = 0;
	buf_put(&out, h, HEADER);
	buf_put(&out, data->data, data->len);
	flush_some();
}

void reply_ok(uint32_t stream, const struct buf *payload)
{
	struct buf res = { 0 };
	if (payload && payload->len)
		pb_put_bytes(&res, 2, payload->data, payload->len);
	send_frame(stream, T_RESPONSE, &res);
	buf_free(&res);
}

void reply_err(uint32_t stream, int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	struct buf status = { 0 }, res = { 0 };
	pb_put_varint(&status, 1, (uint64_t)code);
	pb_put_str(&status, 2, msg);
	pb_put_bytes(&res, 1, status.data, status.len);
	send_frame(stream, T_RESPONSE, &res);
	buf_free(&status);
	buf_free(&res);
}

static void dispatch(uint32_t stream, const uint8_t *data, size_t len)
{
	struct pb_msg req;
	char service[128], method[64];
	if (pb_parse(&req, data, len) < 0 || pb_str(&req, 1, service, sizeof service) < 0 || pb_str(&req, 2, method, sizeof method) < 0 ||
	    (req.set[3] && req.f[3].wire != PB_LEN)) {
		reply_err(stream, ST_INVALID_ARGUMENT, "ttrpc: malformed request");
		return;
	}
	handler_fn fn = strcmp(service, SERVICE) ? NULL : handler_of(method);
	if (!fn) {
		reply_err(stream, ST_UNIMPLEMENTED, "%s/%s is not implemented", service, method);
		return;
	}
	static const uint8_t none;
	fn(stream, req.set[3] ? req.f[3].b : &none, req.set[3] ? req.f[3].n : 0);
}

static void parse_frames(void)
{
	size_t off = 0;
	while (in.len - off >= HEADER) {
		const uint8_t *h = in.data + off;
		uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
		uint32_t stream = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
		uint8_t type = h[8];
		if (len > MAX_DATA) {
			if (type == T_REQUEST)
				reply_err(stream, ST_RESOURCE_EXHAUSTED, "ttrpc: message length %u exceeds the maximum of %u", len, MAX_DATA);
			off += HEADER;
			size_t have = in.len - off < len ? in.len - off : len;
			off += have;
			skipping = len - have;
			break;
		}
		if (in.len - off < HEADER + (size_t)len)
			break;
		/* Only requests mean anything to us: no method here takes a client stream. */
		if (type == T_REQUEST)
			dispatch(stream, in.data + off + HEADER, len);
		off += HEADER + len;
		if (!connected)
			return;
	}
	buf_consume(&in, off);
}

static void hangup(void)
{
	watch_del(port);
	connected = 0;
	in.len = out.len = 0;
	skipping = 0;
	ttrpc_epoch++;
	next_look = mono_ms() + 50;
	loop_wake_within(50);
}

static void on_port(void *ctx, int fd, short revents)
{
	(void)ctx;
	if (revents & POLLOUT)
		flush_some();
	if (revents & POLLIN) {
		uint8_t chunk[65536];
		for (;;) {
			ssize_t n = read(fd, chunk, sizeof chunk);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n <= 0) {
				hangup();
				return;
			}
			size_t used = 0;
			if (skipping) {
				used = (size_t)n < skipping ? (size_t)n : skipping;
				skipping -= used;
			}
			buf_put(&in, chunk + used, (size_t)n - used);
			parse_frames();
			if (!connected)
				return;
		}
	}
	if (revents & (POLLHUP | POLLERR | POLLNVAL))
		hangup();
}

void ttrpc_tick(void)
{
	if (connected || port < 0)
		return;
	if (mono_ms() < next_look) {
		loop_wake_within((int)(next_look - mono_ms()) + 1);
		return;
	}
	struct pollfd p = { .fd = port, .events = POLLIN };
	if (poll(&p, 1, 0) >= 0 && !(p.revents & (POLLHUP | POLLERR))) {
		connected = 1;
		watch_add(port, POLLIN, on_port, NULL);
		return;
	}
	next_look = mono_ms() + 50;
	loop_wake_within(50);
}

void ttrpc_open(const char *path)
{
	port = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (port < 0) {
		logmsg("opening %s: %s", path, strerror(errno));
		return;
	}
	next_look = 0;
	ttrpc_tick();
}

void ttrpc_flush(int timeout_ms)
{
	uint64_t until = mono_ms() + (uint64_t)timeout_ms;
	while (connected && out.len && mono_ms() < until) {
		struct pollfd p = { .fd = port, .events = POLLOUT };
		poll(&p, 1, 10);
		flush_some();
	}
}

int live(const struct waiter *w)
{
	return w->stream && w->epoch == ttrpc_epoch;
}

struct waiter waiter_of(uint32_t stream, uint32_t len)
{
	return (struct waiter){ stream, len, ttrpc_epoch };
}

void waiter_replace(struct waiter *w, uint32_t stream, uint32_t len, const char *call)
{
	if (live(w))
		reply_err(w->stream, ST_CANCELLED, "%s: superseded by a newer call", call);
	*w = waiter_of(stream, len);
}
