/*
 * httpd.h - vigil-cp's HTTPS server: libevent 2.1's evhttp over
 * bufferevent_openssl, one process, one event loop, HTTP/1.1 keep-alive.
 *
 * Routes, by the role of the client certificate (tlsconf.h):
 *   POST /v1/opamp   CP_ROLE_AGENT only -> opampsrv_handle()
 *                    Content-Type application/x-protobuf; a gzip body
 *                    (Content-Encoding: gzip) is gunzipped with a bound;
 *                    the reply is gzip'ed when Accept-Encoding allows.
 *   /api/v1/...      CP_ROLE_ADMIN only -> api_handle()
 * The other role gets 403, an unknown path 404, a wrong method 405, a
 * body over the limit 413.  Every refusal is one log line with the peer's
 * address and the reason.
 *
 * Overload: at most max_connections connections are served; up to
 * HTTPD_OVERFLOW(max) more get "503 Service Unavailable" with Retry-After
 * (on /v1/opamp also a ServerToAgent with error_response Unavailable and
 * retry_info, as the OpAMP spec says) and are closed; past that the
 * listener stops accepting until a connection closes, and the kernel's
 * backlog holds the rest.
 *
 * Runs in vigil-cp (unprivileged, single-threaded); logs (daemon/log.h).
 */
#ifndef VIGIL_HTTPD_H
#define VIGIL_HTTPD_H

#include <stdbool.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "api.h"
#include "opampsrv.h"

/* Connections beyond the limit that are still answered 503 before accepting pauses. */
#define HTTPD_OVERFLOW(max) ((max) / 8 < 4 ? 4 : (max) / 8 > 256 ? 256 : (max) / 8)
#define HTTPD_MAX_HEADERS (16u << 10)
/* listen(2)'s backlog (the kernel caps it at net.core.somaxconn). */
#define HTTPD_BACKLOG 4096

struct httpd_config {
	const char *host;		/* address to bind (numeric or a name) */
	unsigned port;
	unsigned max_connections;
	unsigned idle_timeout_s;	/* also bounds a stalled handshake or request */
	unsigned retry_after_s;
	bool log_requests;		/* one line per request served */
	/*
	 * Called after each request with its route class ("opamp", "api",
	 * "other"), the status answered and the seconds its handler took
	 * (handlers run to completion on the loop); NULL: not called.  For
	 * the metrics (cpmetrics.h).
	 */
	void (*observe)(void *arg, const char *route, int status, double seconds);
	void *observe_arg;
};

struct httpd;

/*
 * Bind and start serving on base.  ctx: the TLS configuration for new
 * connections (a reference is taken).  op and api are borrowed and must
 * outlive the server.  0 and *ret, or -errno with a message in err
 * (-EADDRINUSE and others: cannot listen).
 */
int httpd_new(struct event_base *base, const struct httpd_config *cfg, SSL_CTX *ctx,
	      struct opampsrv *op, struct api *api, struct httpd **ret, char *err, size_t errlen);

/*
 * New connections use ctx from now on (a reference is taken); connections
 * made under an older one have their certificate verified again under ctx
 * at their next request.
 */
void httpd_set_ssl_ctx(struct httpd *h, SSL_CTX *ctx);

/* Live connections (for logs and tests). */
unsigned httpd_connections(const struct httpd *h);

/* Closes the listener and every connection.  Accepts NULL. */
void httpd_free(struct httpd *h);

#endif
