/* The sandbox's network. CreateSandbox makes one network namespace for the sandbox's containers (loopback up),
 * bind-mounted at SANDBOX_NETNS for their plans to join by path. ConfigureNetwork moves the guest's network devices
 * (virtio-net, which QEMU joined to the host side's interface) into it and gives them what that interface has:
 * name, MAC, MTU, addresses; then adds the routes. rtnetlink only: the guest has no `ip`. Everything a request
 * asks for is checked before anything changes; a failure midway moves the devices back to the agent's namespace,
 * which drops the addresses and routes they were given. */
#define _GNU_SOURCE
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#define SANDBOX_NETNS "/run/berth/sandbox.netns"
#define MAX_IFACES 8
#define MAX_ADDRS 16
#define MAX_ROUTES 64

static int sandbox_ns = -1;

/* --- rtnetlink: one request at a time, answered by an ack (or, for a get, the object) --- */
struct nlreq {
	struct nlmsghdr *h;
	uint8_t buf[1024] __attribute__((aligned(NLMSG_ALIGNTO)));
};

static void nl_begin(struct nlreq *r, uint16_t type, uint16_t flags, const void *hdr, size_t hdrlen)
{
	memset(r->buf, 0, sizeof r->buf);
	r->h = (struct nlmsghdr *)r->buf;
	r->h->nlmsg_type = type;
	r->h->nlmsg_flags = NLM_F_REQUEST | flags;
	r->h->nlmsg_len = (uint32_t)NLMSG_LENGTH(hdrlen);
	memcpy(NLMSG_DATA(r->h), hdr, hdrlen);
}

static void nl_attr(struct nlreq *r, uint16_t type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)(r->buf + NLMSG_ALIGN(r->h->nlmsg_len));
	a->rta_type = type;
	a->rta_len = (uint16_t)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	r->h->nlmsg_len = (uint32_t)(NLMSG_ALIGN(r->h->nlmsg_len) + RTA_ALIGN(a->rta_len));
}

/* Sends the request and reads its answer: 0, or -1 with errno (the kernel's error). With reply, a get's object is
 * copied there. */
static int nl_talk(int fd, struct nlreq *r, void *reply, size_t replylen)
{
	static uint32_t seq;
	r->h->nlmsg_seq = ++seq;
	if (!reply)
		r->h->nlmsg_flags |= NLM_F_ACK;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	if (sendto(fd, r->buf, r->h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
		return -1;
	uint8_t in[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
	for (;;) {
		ssize_t n = recv(fd, in, sizeof in, 0);
		if (n < 0)
			return -1;
		for (struct nlmsghdr *h = (struct nlmsghdr *)in; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				int e = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
				errno = e;
				return e ? -1 : 0;
			}
			if (reply) {
				memcpy(reply, h, h->nlmsg_len < replylen ? h->nlmsg_len : replylen);
				return 0;
			}
		}
	}
}

static int nl_open(void)
{
	return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
}

static int link_set(int fd, int index, unsigned flags, unsigned change)
{
	struct nlreq r;
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = index, .ifi_flags = flags, .ifi_change = change };
	nl_begin(&r, RTM_NEWLINK, 0, &ifi, sizeof ifi);
	return nl_talk(fd, &r, NULL, 0);
}

static int link_to_ns(int fd, int index, int nsfd)
{
	struct nlreq r;
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = index };
	nl_begin(&r, RTM_NEWLINK, 0, &ifi, sizeof ifi);
	uint32_t ns = (uint32_t)nsfd;
	nl_attr(&r, IFLA_NET_NS_FD, &ns, sizeof ns);
	return nl_talk(fd, &r, NULL, 0);
}

/* The ifindex of the device named name in fd's namespace, or -1 with errno. */
static int link_index(int fd, const char *name)
{
	struct nlreq r;
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	nl_begin(&r, RTM_GETLINK, 0, &ifi, sizeof ifi);
	nl_attr(&r, IFLA_IFNAME, name, strlen(name) + 1);
	uint8_t reply[NLMSG_LENGTH(sizeof ifi)] __attribute__((aligned(NLMSG_ALIGNTO)));
	if (nl_talk(fd, &r, reply, sizeof reply) < 0)
		return -1;
	return ((struct ifinfomsg *)NLMSG_DATA((struct nlmsghdr *)reply))->ifi_index;
}

/* Makes the sandbox's network namespace (once): unshared, bound at SANDBOX_NETNS, loopback up; the agent stays in
 * its own. */
int net_sandbox_init(char *err, size_t errlen)
{
	if (sandbox_ns >= 0)
		return 0;
	int ours = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ours < 0 || unshare(CLONE_NEWNET) < 0) {
		snprintf(err, errlen, "making the sandbox's network namespace: %s", strerror(errno));
		if (ours >= 0)
			close(ours);
		return -1;
	}
	int rt = nl_open();
	int made = open(SANDBOX_NETNS, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
	int ok = rt >= 0 && made >= 0 && mount("/proc/self/ns/net", SANDBOX_NETNS, NULL, MS_BIND, NULL) == 0 &&
		 link_set(rt, 1, IFF_UP, IFF_UP) == 0;
	int e = errno;
	if (made >= 0)
		close(made);
	if (rt >= 0)
		close(rt);
	if (ok)
		sandbox_ns = open(SANDBOX_NETNS, O_RDONLY | O_CLOEXEC);
	if (setns(ours, CLONE_NEWNET) < 0) {
		logmsg("returning to the agent's network namespace: %s", strerror(errno));
		reboot_now();
	}
	close(ours);
	if (!ok || sandbox_ns < 0) {
		umount2(SANDBOX_NETNS, MNT_DETACH);
		snprintf(err, errlen, "setting up the sandbox's network namespace at %s: %s", SANDBOX_NETNS, strerror(ok ? errno : e));
		return -1;
	}
	return 0;
}

int net_sandbox_socket(int domain, int type)
{
	if (sandbox_ns < 0) {
		errno = ENOENT;
		return -1;
	}
	int ours = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ours < 0)
		return -1;
	int fd = -1, e = 0;
	if (setns(sandbox_ns, CLONE_NEWNET) == 0) {
		fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		e = errno;
		if (setns(ours, CLONE_NEWNET) < 0) {
			logmsg("returning to the agent's network namespace: %s", strerror(errno));
			reboot_now();
		}
	} else {
		e = errno;
	}
	close(ours);
	errno = e;
	return fd;
}

/* --- the request, checked whole before anything changes --- */
struct addr {
	int family;
	uint8_t bytes[16];
	unsigned prefix;
};
struct iface {
	char name[IFNAMSIZ];
	uint8_t mac[6];
	unsigned mtu;
	struct addr addrs[MAX_ADDRS];
	int naddrs;
	/* The guest device it was given: its name in the agent's namespace, its index in the sandbox's. */
	char guest_name[IFNAMSIZ];
	int index;
};
struct route {
	struct addr dst;
	int has_gw, has_src;
	struct addr gw, src;
	int iface;
	unsigned scope, metric;
};
struct netreq {
	struct iface ifaces[MAX_IFACES];
	int nifaces;
	struct route routes[MAX_ROUTES];
	int nroutes;
};

static int parse_ip(const char *text, struct addr *a)
{
	if (inet_pton(AF_INET, text, a->bytes) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, text, a->bytes) == 1)
		a->family = AF_INET6;
	else
		return -1;
	return 0;
}

static unsigned max_prefix(int family)
{
	return family == AF_INET ? 32 : 128;
}

static const char *family_name(int family)
{
	return family == AF_INET ? "IPv4" : "IPv6";
}

static int parse_mac(const char *text, uint8_t mac[6])
{
	unsigned b[6];
	char end;
	if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &end) != 6 || strlen(text) != 17)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	/* Multicast (the low bit of the first byte) or all zeros: no device can have it. */
	return mac[0] & 1 || !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) ? -1 : 0;
}

#define BAD(...) (snprintf(err, errlen, __VA_ARGS__), -1)

static int parse_iface(const uint8_t *data, size_t len, int i, struct iface *out, char *err, size_t errlen)
{
	struct pb_msg m;
	char mac[32];
	if (pb_parse(&m, data, len) < 0 || pb_str(&m, 1, out->name, sizeof out->name) < 0 || pb_str(&m, 2, mac, sizeof mac) < 0)
		return BAD("interfaces[%d]: malformed (a name longer than %d bytes?)", i, IFNAMSIZ - 1);
	if (!out->name[0] || strchr(out->name, '/') || strpbrk(out->name, " \t\n:") || !strcmp(out->name, "lo") ||
	    !strcmp(out->name, ".") || !strcmp(out->name, ".."))
		return BAD("interfaces[%d]: name \"%s\": want a device name (not lo; no '/', ':' or spaces)", i, out->name);
	if (parse_mac(mac, out->mac) < 0)
		return BAD("interfaces[%d] (%s): mac \"%s\": want a unicast address like 02:42:ac:11:00:02", i, out->name, mac);
	uint64_t mtu = pb_u64(&m, 3);
	if (mtu < 68 || mtu > 65535)
		return BAD("interfaces[%d] (%s): mtu %llu: want 68 to 65535", i, out->name, (unsigned long long)mtu);
	out->mtu = (unsigned)mtu;
	struct pb_reader r;
	struct pb_field f;
	int rc;
	pb_init(&r, data, len);
	while ((rc = pb_next(&r, &f)) > 0) {
		if (f.num != 4)
			continue;
		if (f.wire != PB_LEN || out->naddrs == MAX_ADDRS)
			return BAD("interfaces[%d] (%s): more than %d addresses", i, out->name, MAX_ADDRS);
		struct pb_msg am;
		char text[64] = "";
		struct addr *a = &out->addrs[out->naddrs];
		if (pb_parse(&am, f.b, f.n) < 0 || pb_str(&am, 1, text, sizeof text) < 0 || parse_ip(text, a) < 0)
			return BAD("interfaces[%d] (%s): addresses[%d]: \"%s\" is not an IPv4 or IPv6 address", i, out->name, out->naddrs, text);
		uint64_t prefix = pb_u64(&am, 2);
		if (prefix > max_prefix(a->family))
			return BAD("interfaces[%d] (%s): addresses[%d]: prefix_len %llu is more than %u for an %s address", i, out->name,
				   out->naddrs, (unsigned long long)prefix, max_prefix(a->family), family_name(a->family));
		a->prefix = (unsigned)prefix;
		out->naddrs++;
	}
	return rc < 0 ? BAD("interfaces[%d]: malformed", i) : 0;
}

static int parse_route(const uint8_t *data, size_t len, int i, struct netreq *req, struct route *out, char *err, size_t errlen)
{
	struct pb_msg m;
	char dst[64], gw[64], dev[IFNAMSIZ], src[64];
	if (pb_parse(&m, data, len) < 0 || pb_str(&m, 1, dst, sizeof dst) < 0 || pb_str(&m, 2, gw, sizeof gw) < 0 ||
	    pb_str(&m, 3, dev, sizeof dev) < 0 || pb_str(&m, 4, src, sizeof src) < 0)
		return BAD("routes[%d]: malformed (a field too long?)", i);
	out->iface = -1;
	for (int k = 0; k < req->nifaces; k++)
		if (!strcmp(req->ifaces[k].name, dev))
			out->iface = k;
	if (out->iface < 0)
		return BAD("routes[%d]: device \"%s\" is not one of the request's interfaces", i, dev);
	if (gw[0] && parse_ip(gw, &out->gw) < 0)
		return BAD("routes[%d]: gateway \"%s\" is not an IPv4 or IPv6 address", i, gw);
	out->has_gw = !!gw[0];
	if (src[0] && parse_ip(src, &out->src) < 0)
		return BAD("routes[%d]: source \"%s\" is not an IPv4 or IPv6 address", i, src);
	out->has_src = !!src[0];
	if (dst[0]) {
		char *slash = strchr(dst, '/');
		char *end = NULL;
		unsigned long prefix = slash ? strtoul(slash + 1, &end, 10) : 0;
		if (slash)
			*slash = '\0';
		if (!slash || !slash[1] || *end || parse_ip(dst, &out->dst) < 0)
			return BAD("routes[%d]: destination \"%s%s%s\": want address/prefix_len", i, dst, slash ? "/" : "", slash ? slash + 1 : "");
		if (prefix > max_prefix(out->dst.family))
			return BAD("routes[%d]: destination %s/%lu: the prefix is more than %u for an %s address", i, dst, prefix,
				   max_prefix(out->dst.family), family_name(out->dst.family));
		out->dst.prefix = (unsigned)prefix;
	} else if (out->has_gw) {
		out->dst = (struct addr){ .family = out->gw.family };
	} else {
		return BAD("routes[%d]: a default route needs a gateway (or a destination such as 0.0.0.0/0)", i);
	}
	if ((out->has_gw && out->gw.family != out->dst.family) || (out->has_src && out->src.family != out->dst.family))
		return BAD("routes[%d]: the destination, gateway and source are not all %s", i, family_name(out->dst.family));
	uint64_t scope = pb_u64(&m, 5), metric = pb_u64(&m, 6);
	if (scope > 255 || metric > UINT32_MAX)
		return BAD("routes[%d]: scope %llu or metric %llu out of range", i, (unsigned long long)scope, (unsigned long long)metric);
	out->scope = (unsigned)scope;
	out->metric = (unsigned)metric;
	return 0;
}

static int parse_request(const uint8_t *payload, size_t len, struct netreq *req, char *err, size_t errlen)
{
	struct pb_reader r;
	struct pb_field f;
	int rc;
	/* Interfaces first: routes name them. */
	for (int pass = 1; pass <= 2; pass++) {
		pb_init(&r, payload, len);
		while ((rc = pb_next(&r, &f)) > 0) {
			if (f.num != (uint32_t)pass)
				continue;
			if (f.wire != PB_LEN)
				return BAD("malformed request");
			if (pass == 1) {
				if (req->nifaces == MAX_IFACES)
					return BAD("more than %d interfaces", MAX_IFACES);
				if (parse_iface(f.b, f.n, req->nifaces, &req->ifaces[req->nifaces], err, errlen) < 0)
					return -1;
				for (int k = 0; k < req->nifaces; k++)
					if (!strcmp(req->ifaces[k].name, req->ifaces[req->nifaces].name))
						return BAD("interfaces[%d]: name %s is taken by interfaces[%d]", req->nifaces, req->ifaces[k].name, k);
				req->nifaces++;
			} else {
				if (req->nroutes == MAX_ROUTES)
					return BAD("more than %d routes", MAX_ROUTES);
				if (parse_route(f.b, f.n, req->nroutes, req, &req->routes[req->nroutes], err, errlen) < 0)
					return -1;
				req->nroutes++;
			}
		}
		if (rc < 0)
			return BAD("malformed request");
	}
	return 0;
}

/* The agent's own network devices besides loopback, by ifindex: the ones not given to the sandbox yet. */
static int free_devices(struct netreq *req, char *err, size_t errlen)
{
	struct if_nameindex *all = if_nameindex();
	if (!all)
		return BAD("listing the guest's network devices: %s", strerror(errno));
	int found = 0;
	for (struct if_nameindex *p = all; p->if_index; p++) {
		if (!strcmp(p->if_name, "lo"))
			continue;
		if (found < req->nifaces) {
			snprintf(req->ifaces[found].guest_name, IFNAMSIZ, "%s", p->if_name);
			req->ifaces[found].index = (int)p->if_index;
		}
		found++;
	}
	if_freenameindex(all);
	if (found < req->nifaces)
		return BAD("the guest has %d free network device(s) for %d interface(s) (QEMU gave it no virtio-net device, the guest "
			   "kernel lacks virtio-net, or the sandbox's network is configured already)", found, req->nifaces);
	return 0;
}

static int add_addr(int fd, const struct iface *ifc, const struct addr *a)
{
	struct nlreq r;
	struct ifaddrmsg ifa = { .ifa_family = (uint8_t)a->family, .ifa_prefixlen = (uint8_t)a->prefix, .ifa_index = (uint32_t)ifc->index };
	/* An address the host's side already holds needs no duplicate detection: it is usable at once. */
	if (a->family == AF_INET6)
		ifa.ifa_flags = IFA_F_NODAD;
	nl_begin(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
	size_t n = a->family == AF_INET ? 4 : 16;
	nl_attr(&r, IFA_LOCAL, a->bytes, n);
	nl_attr(&r, IFA_ADDRESS, a->bytes, n);
	if (a->family == AF_INET && a->prefix < 31) {
		uint32_t host = a->prefix ? 0xffffffffu >> a->prefix : 0xffffffffu;
		uint32_t bcast;
		memcpy(&bcast, a->bytes, 4);
		bcast |= htonl(host);
		nl_attr(&r, IFA_BROADCAST, &bcast, 4);
	}
	return nl_talk(fd, &r, NULL, 0);
}

static int add_route(int fd, const struct netreq *req, const struct route *rt)
{
	struct nlreq r;
	struct rtmsg rtm = { .rtm_family = (uint8_t)rt->dst.family, .rtm_dst_len = (uint8_t)rt->dst.prefix, .rtm_table = RT_TABLE_MAIN,
			     .rtm_protocol = RTPROT_BOOT, .rtm_scope = (uint8_t)rt->scope, .rtm_type = RTN_UNICAST };
	nl_begin(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rtm, sizeof rtm);
	size_t n = rt->dst.family == AF_INET ? 4 : 16;
	if (rt->dst.prefix)
		nl_attr(&r, RTA_DST, rt->dst.bytes, n);
	if (rt->has_gw)
		nl_attr(&r, RTA_GATEWAY, rt->gw.bytes, n);
	if (rt->has_src)
		nl_attr(&r, RTA_PREFSRC, rt->src.bytes, n);
	uint32_t oif = (uint32_t)req->ifaces[rt->iface].index;
	nl_attr(&r, RTA_OIF, &oif, sizeof oif);
	if (rt->metric)
		nl_attr(&r, RTA_PRIORITY, &rt->metric, sizeof rt->metric);
	return nl_talk(fd, &r, NULL, 0);
}

static void text_of(const struct addr *a, char *out, size_t len)
{
	inet_ntop(a->family, a->bytes, out, (socklen_t)len);
}

/* Configures the devices moved into the sandbox's namespace (rt is a socket there). */
static int configure(int rt, struct netreq *req, char *err, size_t errlen)
{
	for (int i = 0; i < req->nifaces; i++) {
		struct iface *ifc = &req->ifaces[i];
		if ((ifc->index = link_index(rt, ifc->guest_name)) < 0)
			return BAD("finding %s in the sandbox's namespace: %s", ifc->guest_name, strerror(errno));
		struct nlreq r;
		struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifc->index };
		nl_begin(&r, RTM_NEWLINK, 0, &ifi, sizeof ifi);
		nl_attr(&r, IFLA_IFNAME, ifc->name, strlen(ifc->name) + 1);
		nl_attr(&r, IFLA_ADDRESS, ifc->mac, sizeof ifc->mac);
		nl_attr(&r, IFLA_MTU, &ifc->mtu, sizeof ifc->mtu);
		if (nl_talk(rt, &r, NULL, 0) < 0)
			return BAD("interfaces[%d]: setting %s's name (%s), MAC and MTU (%u): %s", i, ifc->guest_name, ifc->name, ifc->mtu, strerror(errno));
		if (link_set(rt, ifc->index, IFF_UP, IFF_UP) < 0)
			return BAD("interfaces[%d]: bringing %s up: %s", i, ifc->name, strerror(errno));
		for (int k = 0; k < ifc->naddrs; k++) {
			if (add_addr(rt, ifc, &ifc->addrs[k]) < 0) {
				char text[INET6_ADDRSTRLEN];
				text_of(&ifc->addrs[k], text, sizeof text);
				return BAD("interfaces[%d]: adding %s/%u to %s: %s", i, text, ifc->addrs[k].prefix, ifc->name, strerror(errno));
			}
		}
	}
	for (int i = 0; i < req->nroutes; i++) {
		const struct route *route = &req->routes[i];
		if (add_route(rt, req, route) < 0) {
			char dst[INET6_ADDRSTRLEN], gw[INET6_ADDRSTRLEN] = "";
			text_of(&route->dst, dst, sizeof dst);
			if (route->has_gw)
				text_of(&route->gw, gw, sizeof gw);
			return BAD("routes[%d]: adding %s/%u%s%s dev %s: %s", i, dst, route->dst.prefix, route->has_gw ? " via " : "", gw,
				   req->ifaces[route->iface].name, strerror(errno));
		}
	}
	return 0;
}

void h_configure_network(uint32_t stream, const uint8_t *payload, size_t len)
{
	static struct netreq req;
	char err[512];
	memset(&req, 0, sizeof req);
	if (parse_request(payload, len, &req, err, sizeof err) < 0) {
		reply_err(stream, ST_INVALID_ARGUMENT, "ConfigureNetwork: %s", err);
		return;
	}
	if (sandbox_ns < 0) {
		reply_err(stream, ST_FAILED_PRECONDITION, "ConfigureNetwork: the sandbox's network namespace does not exist (CreateSandbox first)");
		return;
	}
	if (free_devices(&req, err, sizeof err) < 0) {
		reply_err(stream, ST_FAILED_PRECONDITION, "ConfigureNetwork: %s", err);
		return;
	}
	int ours = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int root = nl_open();
	int rt = -1, moved = 0, rc = -1, e = 0;
	if (ours < 0 || root < 0) {
		e = errno;
		snprintf(err, sizeof err, "opening the agent's network namespace: %s", strerror(e));
		goto out;
	}
	/* A socket made in the sandbox's namespace talks to that namespace from ours. */
	if (setns(sandbox_ns, CLONE_NEWNET) < 0) {
		e = errno;
		snprintf(err, sizeof err, "entering the sandbox's network namespace: %s", strerror(e));
		goto out;
	}
	rt = nl_open();
	e = errno;
	if (setns(ours, CLONE_NEWNET) < 0) {
		logmsg("returning to the agent's network namespace: %s", strerror(errno));
		reboot_now();
	}
	if (rt < 0) {
		snprintf(err, sizeof err, "opening rtnetlink in the sandbox's network namespace: %s", strerror(e));
		goto out;
	}
	for (; moved < req.nifaces; moved++) {
		if (link_to_ns(root, req.ifaces[moved].index, sandbox_ns) < 0) {
			e = errno;
			snprintf(err, sizeof err, "interfaces[%d]: moving %s into the sandbox's network namespace: %s", moved,
				 req.ifaces[moved].guest_name, strerror(e));
			goto out;
		}
	}
	errno = 0;
	rc = configure(rt, &req, err, sizeof err);
	e = errno;
out:
	/* Undone: the devices go back (leaving the namespace drops their addresses and routes). */
	for (int i = 0; rc < 0 && i < moved; i++) {
		int index = link_index(rt, req.ifaces[i].name);
		if (index < 0)
			index = link_index(rt, req.ifaces[i].guest_name);
		if (index < 0 || link_to_ns(rt, index, ours) < 0)
			logmsg("ConfigureNetwork: moving %s back: %s", req.ifaces[i].guest_name, strerror(errno));
	}
	if (rt >= 0)
		close(rt);
	if (root >= 0)
		close(root);
	if (ours >= 0)
		close(ours);
	if (rc < 0)
		reply_err(stream, e && status_of_errno(e) != ST_UNKNOWN ? status_of_errno(e) : ST_INTERNAL, "ConfigureNetwork: %s", err);
	else
		reply_ok(stream, NULL);
}
