/* DNS for containers told to ask a nameserver on loopback that lives on the host's side: Docker's embedded
 * resolver (127.0.0.11 on a user-defined network) listens in QEMU's network namespace, which nothing in the guest
 * reaches. RelayDns binds port 53 of such an address (UDP and TCP) in the sandbox's network namespace; each query
 * waits for the host's ReadDnsQuery (a long poll), the host asks the server from QEMU's namespace
 * (berth-dns-forward) and AnswerDnsQuery hands its answer to the query's client. */
#define _GNU_SOURCE
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_SERVERS 3
#define MAX_QUERIES 64
#define MAX_CONNS 16
#define DNS_HEADER 12
#define DNS_MAX 65535
/* A client asks again after ~5 s: a query older than this has nobody waiting for it. */
#define QUERY_TTL_NS (10ull * 1000000000ull)

struct server {
	char addr[INET6_ADDRSTRLEN];
	int udp, tcp;
};

/* A TCP client: queries are taken one at a time (the next once the previous is answered). */
struct conn {
	int fd;
	struct server *srv;
	struct buf in;
	uint32_t waiting;
	int eof;
	uint64_t last;
};

struct query {
	uint32_t id; /* 0: a free slot */
	int unread;
	struct server *srv;
	struct conn *conn; /* NULL: UDP, answered to `from` */
	struct sockaddr_storage from;
	socklen_t fromlen;
	uint8_t *msg;
	size_t len;
	uint64_t born;
};

static struct server servers[MAX_SERVERS];
static int nservers;
static struct conn *conns[MAX_CONNS];
static struct query queries[MAX_QUERIES];
static uint32_t next_id = 1;
static struct waiter dns_waiter;

static void query_free(struct query *q)
{
	free(q->msg);
	memset(q, 0, sizeof *q);
}

static struct query *query_find(uint32_t id)
{
	for (int i = 0; id && i < MAX_QUERIES; i++)
		if (queries[i].id == id)
			return &queries[i];
	return NULL;
}

static void conn_close(struct conn *c)
{
	for (int i = 0; i < MAX_QUERIES; i++)
		if (queries[i].id && queries[i].conn == c)
			query_free(&queries[i]);
	for (int i = 0; i < MAX_CONNS; i++)
		if (conns[i] == c)
			conns[i] = NULL;
	watch_del(c->fd);
	close(c->fd);
	buf_free(&c->in);
	free(c);
}

/* Drops the queries whose clients have given up. */
static void expire(void)
{
	uint64_t now = now_ns();
	for (int i = 0; i < MAX_QUERIES; i++) {
		struct query *q = &queries[i];
		if (!q->id || now - q->born < QUERY_TTL_NS)
			continue;
		if (q->conn)
			conn_close(q->conn);
		else
			query_free(q);
	}
}

static struct query *query_new(struct server *srv, const uint8_t *msg, size_t len)
{
	struct query *q = NULL;
	for (int pass = 0; pass < 2 && !q; pass++) {
		if (pass)
			expire();
		for (int i = 0; i < MAX_QUERIES && !q; i++)
			if (!queries[i].id)
				q = &queries[i];
	}
	if (!q || !(q->msg = malloc(len)))
		return NULL;
	memcpy(q->msg, msg, len);
	q->len = len;
	q->id = next_id++;
	if (!next_id)
		next_id = 1;
	q->unread = 1;
	q->srv = srv;
	q->born = now_ns();
	return q;
}

/* Gives the waiting ReadDnsQuery the oldest query not yet read. */
static void answer_waiter(void)
{
	if (!live(&dns_waiter))
		return;
	struct query *oldest = NULL;
	for (int i = 0; i < MAX_QUERIES; i++)
		if (queries[i].id && queries[i].unread && (!oldest || queries[i].born < oldest->born))
			oldest = &queries[i];
	if (!oldest)
		return;
	struct buf res = { 0 };
	pb_put_varint(&res, 1, oldest->id);
	pb_put_str(&res, 2, oldest->srv->addr);
	if (oldest->conn)
		pb_put_varint(&res, 3, 1);
	pb_put_bytes(&res, 4, oldest->msg, oldest->len);
	reply_ok(dns_waiter.stream, &res);
	buf_free(&res);
	oldest->unread = 0;
	dns_waiter.stream = 0;
}

static void on_udp(void *ctx, int fd, short revents)
{
	(void)revents;
	static uint8_t msg[DNS_MAX];
	for (int n = 0; n < 16; n++) {
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof from;
		ssize_t got = recvfrom(fd, msg, sizeof msg, 0, (struct sockaddr *)&from, &fromlen);
		if (got < 0)
			break;
		if (got < DNS_HEADER)
			continue;
		/* With every slot taken the query is dropped: its client asks again. */
		struct query *q = query_new(ctx, msg, (size_t)got);
		if (q) {
			q->from = from;
			q->fromlen = fromlen;
		}
	}
	answer_waiter();
}

/* Takes the connection's next whole query, unless one is in flight. -1: the connection was closed. */
static int conn_take(struct conn *c)
{
	if (!c->waiting && c->in.len >= 2) {
		size_t len = (size_t)c->in.data[0] << 8 | c->in.data[1];
		if (len < DNS_HEADER) {
			conn_close(c);
			return -1;
		}
		if (c->in.len >= 2 + len) {
			struct query *q = query_new(c->srv, c->in.data + 2, len);
			if (!q) {
				conn_close(c);
				return -1;
			}
			q->conn = c;
			c->waiting = q->id;
			buf_consume(&c->in, 2 + len);
			answer_waiter();
		}
	}
	/* A client that has stopped sending is closed once nothing of it is left to answer. */
	if (c->eof && !c->waiting) {
		conn_close(c);
		return -1;
	}
	return 0;
}

static void on_conn(void *ctx, int fd, short revents)
{
	(void)revents;
	struct conn *c = ctx;
	uint8_t chunk[4096];
	ssize_t n = read(fd, chunk, sizeof chunk);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		conn_close(c);
		return;
	}
	if (n == 0) {
		c->eof = 1;
		watch_events(fd, 0);
	} else if (c->in.len + (size_t)n > 2 + DNS_MAX) {
		conn_close(c);
		return;
	} else {
		buf_put(&c->in, chunk, (size_t)n);
		c->last = now_ns();
	}
	conn_take(c);
}

static void on_listen(void *ctx, int fd, short revents)
{
	(void)revents;
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return;
	int slot = -1;
	for (int i = 0; i < MAX_CONNS && slot < 0; i++)
		if (!conns[i])
			slot = i;
	if (slot < 0) {
		/* Full: the connection heard from least recently makes room. */
		slot = 0;
		for (int i = 1; i < MAX_CONNS; i++)
			if (conns[i]->last < conns[slot]->last)
				slot = i;
		conn_close(conns[slot]);
	}
	struct conn *c = calloc(1, sizeof *c);
	if (!c) {
		close(cfd);
		return;
	}
	c->fd = cfd;
	c->srv = ctx;
	c->last = now_ns();
	conns[slot] = c;
	watch_add(cfd, POLLIN, on_conn, c);
}

/* The text form of a loopback address (normalised), or -1. */
static int loopback(const char *text, char *out, int *family)
{
	uint8_t a[16];
	if (inet_pton(AF_INET, text, a) == 1 && a[0] == 127)
		*family = AF_INET;
	else if (inet_pton(AF_INET6, text, a) == 1 && IN6_IS_ADDR_LOOPBACK((struct in6_addr *)a))
		*family = AF_INET6;
	else
		return -1;
	return inet_ntop(*family, a, out, INET6_ADDRSTRLEN) ? 0 : -1;
}

static int bound(int family, int type, const char *addr, char *err, size_t errlen)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(53);
		inet_pton(AF_INET, addr, &sin->sin_addr);
		sl = sizeof *sin;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(53);
		inet_pton(AF_INET6, addr, &sin6->sin6_addr);
		sl = sizeof *sin6;
	}
	int fd = net_sandbox_socket(family, type), one = 1;
	if (fd >= 0 && family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (fd >= 0 && type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) < 0 || (type == SOCK_STREAM && listen(fd, 16) < 0)) {
		snprintf(err, errlen, "%s port 53 (%s) in the sandbox's network namespace: %s", addr,
			 type == SOCK_STREAM ? "tcp" : "udp", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

void h_relay_dns(uint32_t stream, const uint8_t *payload, size_t len)
{
	char addrs[MAX_SERVERS][INET6_ADDRSTRLEN], err[512];
	int families[MAX_SERVERS], n = 0, rc;
	struct pb_reader r;
	struct pb_field f;
	pb_init(&r, payload, len);
	while ((rc = pb_next(&r, &f)) > 0) {
		if (f.num != 1)
			continue;
		if (f.wire != PB_LEN) {
			rc = -1;
			break;
		}
		if (n == MAX_SERVERS) {
			reply_err(stream, ST_INVALID_ARGUMENT, "RelayDns: more than %d addresses", MAX_SERVERS);
			return;
		}
		char text[INET6_ADDRSTRLEN] = "";
		int ok = f.n < sizeof text && !memchr(f.b, 0, f.n);
		if (ok)
			memcpy(text, f.b, f.n), text[f.n] = 0;
		if (!ok || loopback(text, addrs[n], &families[n]) < 0) {
			reply_err(stream, ST_INVALID_ARGUMENT,
				  "RelayDns: addresses[%d] %.*s is not a loopback address (127.0.0.0/8 or ::1): a server "
				  "elsewhere is reached through the sandbox's network", n, (int)(f.n < 64 ? f.n : 64), (const char *)f.b);
			return;
		}
		n++;
	}
	if (rc < 0) {
		reply_err(stream, ST_INVALID_ARGUMENT, "RelayDns: malformed request");
		return;
	}
	if (!n) {
		reply_err(stream, ST_INVALID_ARGUMENT, "RelayDns: no addresses");
		return;
	}
	int added = 0;
	for (int i = 0; i < n; i++) {
		int known = 0;
		for (int j = 0; j < nservers; j++)
			known |= !strcmp(servers[j].addr, addrs[i]);
		if (known)
			continue;
		if (nservers == MAX_SERVERS) {
			snprintf(err, sizeof err, "%d addresses are relayed already", MAX_SERVERS);
			rc = ST_RESOURCE_EXHAUSTED;
			goto undo;
		}
		int udp = bound(families[i], SOCK_DGRAM, addrs[i], err, sizeof err);
		int tcp = udp < 0 ? -1 : bound(families[i], SOCK_STREAM, addrs[i], err, sizeof err);
		if (tcp < 0) {
			rc = errno == ENOENT ? ST_FAILED_PRECONDITION : status_of_errno(errno);
			if (udp >= 0)
				close(udp);
			goto undo;
		}
		struct server *s = &servers[nservers++];
		memcpy(s->addr, addrs[i], sizeof s->addr);
		s->udp = udp;
		s->tcp = tcp;
		watch_add(udp, POLLIN, on_udp, s);
		watch_add(tcp, POLLIN, on_listen, s);
		added++;
	}
	reply_ok(stream, &(struct buf){ 0 });
	return;
undo:
	/* What this call bound goes again: a request is done whole or not at all. */
	for (; added > 0; added--) {
		struct server *s = &servers[--nservers];
		watch_del(s->udp);
		watch_del(s->tcp);
		close(s->udp);
		close(s->tcp);
	}
	reply_err(stream, rc, "RelayDns: %s", err);
}

void h_read_dns_query(uint32_t stream, const uint8_t *payload, size_t len)
{
	(void)payload;
	(void)len;
	waiter_replace(&dns_waiter, stream, 0, "ReadDnsQuery");
	answer_waiter();
}

/* The answer a UDP client gets when the host has none (no server on the address, none in time): SERVFAIL for its
 * question, at once, rather than a wait for its own timeout. */
static void send_servfail(const struct query *q)
{
	uint8_t out[DNS_HEADER + 255 + 4];
	size_t end = DNS_HEADER;
	while (end < q->len && q->msg[end] && !(q->msg[end] & 0xc0) && end + 1 + q->msg[end] < sizeof out - 5)
		end += 1 + q->msg[end];
	int question = q->msg[5] == 1 && q->msg[4] == 0 && end + 5 <= q->len && !q->msg[end];
	end = question ? end + 5 : DNS_HEADER;
	memcpy(out, q->msg, end);
	out[2] = (uint8_t)(0x80 | (q->msg[2] & 0x79)); /* a response; the query's opcode and RD */
	out[3] = 0x82;				 /* RA, SERVFAIL */
	memset(out + 4, 0, 8);
	out[5] = question ? 1 : 0;
	sendto(q->srv->udp, out, end, 0, (const struct sockaddr *)&q->from, q->fromlen);
}

void h_answer_dns_query(uint32_t stream, const uint8_t *payload, size_t len)
{
	struct pb_msg m;
	if (pb_parse(&m, payload, len) < 0) {
		reply_err(stream, ST_INVALID_ARGUMENT, "AnswerDnsQuery: malformed request");
		return;
	}
	uint32_t id = (uint32_t)pb_u64(&m, 1);
	const uint8_t *msg = m.set[2] && m.f[2].wire == PB_LEN ? m.f[2].b : NULL;
	size_t n = msg ? m.f[2].n : 0;
	if (n > DNS_MAX) {
		reply_err(stream, ST_INVALID_ARGUMENT, "AnswerDnsQuery: %zu bytes: a DNS message has at most %d", n, DNS_MAX);
		return;
	}
	struct query *q = query_find(id);
	if (!q) {
		reply_err(stream, ST_NOT_FOUND, "AnswerDnsQuery: no query %u waits for an answer (it expired or its client left)", id);
		return;
	}
	if (!q->conn) {
		/* A client that has gone is not an error of the host's. */
		if (n)
			sendto(q->srv->udp, msg, n, 0, (struct sockaddr *)&q->from, q->fromlen);
		else
			send_servfail(q);
		query_free(q);
	} else {
		struct conn *c = q->conn;
		query_free(q);
		c->waiting = 0;
		uint8_t prefix[2] = { (uint8_t)(n >> 8), (uint8_t)n };
		struct iovec iov[2] = { { prefix, 2 }, { (void *)msg, n } };
		/* Loopback takes a whole answer at once; a client that does not read is not waited for. */
		if (!n || writev(c->fd, iov, 2) != (ssize_t)(n + 2))
			conn_close(c);
		else
			conn_take(c);
	}
	reply_ok(stream, &(struct buf){ 0 });
}
