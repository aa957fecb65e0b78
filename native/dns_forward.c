/* berth-dns-forward NETNS: asks nameservers from inside a network namespace, for the vm backend's DNS relay
 * (runtimes/vm/dns-relay.ts). A vm container's loopback nameserver (Docker's embedded resolver, 127.0.0.11) exists
 * only in QEMU's network namespace: the guest agent hands each query to the host, and this process, in that
 * namespace, asks the server on port 53.
 *   stdin:  queries, each [u32 length of the rest][u32 id][u8 tcp][u8 server length][server address][message]
 *   stdout: answers, each [u32 length of the rest][u32 id][message]; an empty message: no answer in time
 * Integers are big-endian. It ends once its input has ended and every question has its answer. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_INFLIGHT 64
#define DNS_MAX 65535
#define TIMEOUT_MS 4000

struct pending {
	int fd; /* -1: a free slot */
	uint32_t id;
	uint8_t dns_id[2];
	int64_t deadline;
};

static struct pending inflight[MAX_INFLIGHT];

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void write_all(const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(1, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			exit(0); /* nobody reads the answers any more */
		p += w, n -= (size_t)w;
	}
}

static void answer(uint32_t id, const uint8_t *msg, size_t len)
{
	uint8_t head[8];
	put32(head, (uint32_t)(4 + len));
	put32(head + 4, id);
	write_all(head, sizeof head);
	write_all(msg, len);
}

/* The server's socket address, port 53; -1 for text that is no IP address. */
static int server_addr(const char *text, struct sockaddr_storage *ss, socklen_t *sl)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET, sin->sin_port = htons(53), *sl = sizeof *sin;
		return 0;
	}
	if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6, sin6->sin6_port = htons(53), *sl = sizeof *sin6;
		return 0;
	}
	return -1;
}

static int read_full(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r, n -= (size_t)r;
	}
	return 0;
}

/* DNS over TCP, one question on its own connection, bounded by TIMEOUT_MS (rare: a truncated UDP answer's
 * retry; asked in turn, not in parallel). */
static void ask_tcp(uint32_t id, const struct sockaddr_storage *ss, socklen_t sl, const uint8_t *msg, size_t len)
{
	static uint8_t reply[DNS_MAX];
	struct timeval tv = { TIMEOUT_MS / 1000, 0 };
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uint8_t prefix[2] = { (uint8_t)(len >> 8), (uint8_t)len }, rlen[2];
	size_t n = 0;
	if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0 && connect(fd, (const struct sockaddr *)ss, sl) == 0 &&
	    write(fd, prefix, 2) == 2 && write(fd, msg, len) == (ssize_t)len && read_full(fd, rlen, 2) == 0) {
		n = (size_t)rlen[0] << 8 | rlen[1];
		if (read_full(fd, reply, n) < 0)
			n = 0;
	}
	if (fd >= 0)
		close(fd);
	answer(id, reply, n);
}

static void ask_udp(uint32_t id, const struct sockaddr_storage *ss, socklen_t sl, const uint8_t *msg, size_t len)
{
	struct pending *p = NULL;
	for (int i = 0; i < MAX_INFLIGHT && !p; i++)
		if (inflight[i].fd < 0)
			p = &inflight[i];
	int fd = p ? socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) : -1;
	if (fd < 0 || connect(fd, (const struct sockaddr *)ss, sl) < 0 || send(fd, msg, len, 0) != (ssize_t)len) {
		if (fd >= 0)
			close(fd);
		answer(id, NULL, 0);
		return;
	}
	*p = (struct pending){ fd, id, { msg[0], msg[1] }, now_ms() + TIMEOUT_MS };
}

static void on_reply(struct pending *p)
{
	static uint8_t reply[DNS_MAX];
	ssize_t n = recv(p->fd, reply, sizeof reply, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* Only the answer to this question (the same DNS id) ends it; a refused port ends it empty. */
	if (n >= 2 && (reply[0] != p->dns_id[0] || reply[1] != p->dns_id[1]))
		return;
	answer(p->id, reply, n > 0 ? (size_t)n : 0);
	close(p->fd);
	p->fd = -1;
}

/* Handles every whole query in buf[0..*len), keeping a partial one. -1 on a malformed frame. */
static int take_queries(uint8_t *buf, size_t *len)
{
	size_t off = 0;
	while (*len - off >= 4) {
		uint32_t n = get32(buf + off);
		if (n < 6 || n > 4 + 2 + 255 + DNS_MAX)
			return -1;
		if (*len - off < 4 + (size_t)n)
			break;
		const uint8_t *f = buf + off + 4;
		uint32_t id = get32(f);
		int tcp = f[4];
		size_t slen = f[5];
		if (6 + slen > n)
			return -1;
		char server[256];
		memcpy(server, f + 6, slen);
		server[slen] = 0;
		const uint8_t *msg = f + 6 + slen;
		size_t mlen = n - 6 - slen;
		struct sockaddr_storage ss;
		socklen_t sl;
		if (mlen < 2 || server_addr(server, &ss, &sl) < 0)
			answer(id, NULL, 0);
		else if (tcp)
			ask_tcp(id, &ss, sl, msg, mlen);
		else
			ask_udp(id, &ss, sl, msg, mlen);
		off += 4 + n;
	}
	memmove(buf, buf + off, *len - off);
	*len -= off;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: berth-dns-forward NETNS_PATH\n");
		return 2;
	}
	int ns = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (ns < 0 || setns(ns, CLONE_NEWNET) < 0) {
		fprintf(stderr, "berth-dns-forward: entering the network namespace %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	close(ns);
	for (int i = 0; i < MAX_INFLIGHT; i++)
		inflight[i].fd = -1;
	static uint8_t in[2 * (4 + 4 + 2 + 255 + DNS_MAX)];
	size_t inlen = 0;
	int eof = 0;
	for (;;) {
		struct pollfd pfds[1 + MAX_INFLIGHT];
		struct pending *of[1 + MAX_INFLIGHT];
		int n = 0, timeout = -1, waiting = 0;
		int64_t now = now_ms();
		pfds[n++] = (struct pollfd){ .fd = eof ? -1 : 0, .events = POLLIN };
		for (int i = 0; i < MAX_INFLIGHT; i++) {
			struct pending *p = &inflight[i];
			if (p->fd < 0)
				continue;
			if (p->deadline <= now) {
				answer(p->id, NULL, 0);
				close(p->fd);
				p->fd = -1;
				continue;
			}
			int left = (int)(p->deadline - now);
			if (timeout < 0 || left < timeout)
				timeout = left;
			of[n] = p;
			pfds[n++] = (struct pollfd){ .fd = p->fd, .events = POLLIN };
			waiting++;
		}
		if (eof && !waiting)
			return 0;
		if (poll(pfds, (nfds_t)n, timeout) < 0 && errno != EINTR)
			return 1;
		for (int i = 1; i < n; i++)
			if (pfds[i].revents)
				on_reply(of[i]);
		if (pfds[0].revents) {
			ssize_t r = read(0, in + inlen, sizeof in - inlen);
			if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
				eof = 1;
			if (r > 0) {
				inlen += (size_t)r;
				if (take_queries(in, &inlen) < 0) {
					fprintf(stderr, "berth-dns-forward: a malformed query frame\n");
					return 1;
				}
			}
		}
	}
}
