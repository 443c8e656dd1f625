/*
 * cphttp.h - one HTTPS client for OpAMP over HTTP: POST /v1/opamp with
 * application/x-protobuf bodies, gzip both ways, keep-alive, mutual TLS
 * (TLS 1.2 or later, the server's name checked against its certificate's
 * SANs) with key material from memory only (CURLOPT_SSLCERT_BLOB,
 * CURLOPT_SSLKEY_BLOB, CURLOPT_CAINFO_BLOB: no CA directory, no file), and
 * the server's addresses pinned (CURLOPT_RESOLVE: no resolver runs).
 *
 * Runs in the uplink, under its seccomp filter and Landlock (no file, TCP
 * connect to one port).  cphttp_global_init() must run before those are
 * in place (libcurl and OpenSSL read their configuration then).
 * Library-like: 0 or -errno, never logs; what went wrong is in result.err.
 */
#ifndef VIGIL_CPHTTP_H
#define VIGIL_CPHTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>

#include "privsep.h"

/* The most a response body may be, decompressed. */
#define CPHTTP_MAX_BODY (4u << 20)

struct cphttp;

/* Once per process, before confinement.  0 or -EIO. */
int cphttp_global_init(void);

/* host and port of the control plane; path is /v1/opamp.  0 or -ENOMEM. */
int cphttp_new(const char *host, unsigned port, struct cphttp **ret);

/*
 * The identity for the next connection (copied): certificate and key PEM,
 * CA PEM, and the addresses host resolves to.  Any kept-alive connection
 * is dropped, so that the next request handshakes with these.  0, -ENOMEM.
 */
int cphttp_set_identity(struct cphttp *h, const void *cert, size_t cert_len, const void *key,
			size_t key_len, const void *ca, size_t ca_len, const struct uplink_addr *addrs,
			size_t naddrs);

/* abort_fn is called at least this often while a request runs. */
#define CPHTTP_TICK_MS 200

/*
 * Called while a request runs (at least every CPHTTP_TICK_MS, and from
 * libcurl's progress callback); true aborts it (shutting down).  The
 * uplink does its other work from there too.
 */
typedef bool (*cphttp_abort_fn)(void *ctx);

struct cphttp_result {
	long status;              /* HTTP status, 0 when none came */
	uint8_t *body;            /* malloc'd, decompressed (NULL when empty) */
	size_t len;
	uint64_t retry_after_ns;  /* Retry-After, 0: none */
	char err[256];            /* with a failure: what failed */
};

/*
 * POST body (gzip'ed here when gzip) and wait for the answer, within
 * timeout_s.  0 when an HTTP answer came (any status; *r filled, release
 * with cphttp_result_release), or -ECONNREFUSED / -ETIMEDOUT / -EPROTO
 * (TLS, HTTP) / -EFBIG (body over CPHTTP_MAX_BODY) / -ECANCELED (abort) /
 * -ENOMEM, with r->err.
 */
int cphttp_post(struct cphttp *h, const uint8_t *body, size_t len, bool gzip, unsigned timeout_s,
		cphttp_abort_fn abort_fn, void *ctx, struct cphttp_result *r);

/*
 * Other descriptors to wait on while a request runs, so that the work
 * abort_fn does for them (the uplink's exporter) is woken as they are
 * ready, not only at the next tick: fn writes at most max pollfds (events
 * set) and may lower *timeout_ms (ms, starts at CPHTTP_TICK_MS); returns
 * how many.  NULL: none.
 */
typedef size_t (*cphttp_fds_fn)(void *ctx, struct pollfd *p, size_t max, int *timeout_ms);
void cphttp_set_waiter(struct cphttp *h, cphttp_fds_fn fn, void *ctx);

void cphttp_result_release(struct cphttp_result *r);

void cphttp_free(struct cphttp *h);

#endif
