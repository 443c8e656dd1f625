/*
 * listenaddr.c - "ADDR:PORT" or "none", and its listening socket (see
 * listenaddr.h).
 *
 * Library-like; runs in vigild's monitor (as root, before it drops
 * privileges) and in vigil-cp.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "decimal.h"
#include "listenaddr.h"

int listenaddr_parse(const char *opt, const char *s, bool port_zero, struct listenaddr *ret,
		     char *err, size_t errlen)
{
	struct listenaddr a = { 0 };
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	unsigned port;
	size_t hl;

	if (!strcmp(s, "none")) {
		a.none = true;
		snprintf(a.text, sizeof(a.text), "none");
		*ret = a;
		return 0;
	}
	colon = strrchr(s, ':');
	if (!colon || strlen(s) >= sizeof(a.text)) {
		snprintf(err, errlen, "%s '%.80s': must be ADDR:PORT (127.0.0.1:9464, [::1]:9464) or none",
			 opt, s);
		return -EINVAL;
	}
	if (decimal_uint(colon + 1, port_zero ? 0 : 1, 65535, &port)) {
		snprintf(err, errlen, "%s '%s': the port must be a number from %d to 65535", opt, s,
			 port_zero ? 0 : 1);
		return -EINVAL;
	}
	hl = (size_t)(colon - s);
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a.ss;

		memcpy(host, s + 1, hl - 2);
		host[hl - 2] = '\0';
		if (hl - 2 >= INET6_ADDRSTRLEN || inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			goto bad_addr;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		a.len = sizeof(*in6);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&a.ss;

		if (hl >= sizeof(host))
			goto bad_addr;
		memcpy(host, s, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			goto bad_addr;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		a.len = sizeof(*in);
	}
	snprintf(a.text, sizeof(a.text), "%s", s);
	*ret = a;
	return 0;
bad_addr:
	snprintf(err, errlen, "%s '%s': '%.*s' is not an IPv4 address or a bracketed IPv6 address "
		 "(names are not resolved: 127.0.0.1, 0.0.0.0, [::1])", opt, s, (int)hl, s);
	return -EINVAL;
}

int listenaddr_listen(const struct listenaddr *a, int backlog, int *ret_fd)
{
	int one = 1, fd, rc;

	if (a->none)
		return -EINVAL;
	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (a->ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, backlog) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	*ret_fd = fd;
	return 0;
}

unsigned listenaddr_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}
