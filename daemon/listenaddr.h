/*
 * listenaddr.h - a TCP listening address given on a command line,
 * "ADDR:PORT" ("127.0.0.1:9464", "[::1]:9464") or "none", and the socket
 * that listens on it.
 *
 * Library-like (returns 0 or -errno, never logs); shared by vigild's
 * --metrics-listen (parsed by anyone, bound by the monitor while it is
 * root) and vigil-cp's.  Only literal addresses: a name would need a
 * resolver, and a metrics endpoint is configured by address anyway.
 */
#ifndef VIGIL_LISTENADDR_H
#define VIGIL_LISTENADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define LISTENADDR_TEXT 64

struct listenaddr {
	bool none;                  /* "none": nothing listens */
	struct sockaddr_storage ss; /* AF_INET or AF_INET6, with the port */
	socklen_t len;
	char text[LISTENADDR_TEXT]; /* as given, for messages */
};

/*
 * Parse s for option opt (named in the error).  port_zero: allow port 0
 * (the kernel picks one).  0, or -EINVAL with a one-line reason in err.
 */
int listenaddr_parse(const char *opt, const char *s, bool port_zero, struct listenaddr *ret,
		     char *err, size_t errlen);

/*
 * A non-blocking, close-on-exec TCP socket listening on a (SO_REUSEADDR,
 * so that a restart does not wait for TIME_WAIT).  0 or -errno.
 */
int listenaddr_listen(const struct listenaddr *a, int backlog, int *ret_fd);

/* The port a listening socket got (for port 0). 0 on error. */
unsigned listenaddr_port(int fd);

#endif
