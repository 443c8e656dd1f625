/*
 * exporter.h - the uplink's Pyroscope pusher: one PushRequest at a time
 * (POST {url}/push.v1.PusherService/Push, Connect protocol unary,
 * Content-Type: application/proto), retried on network errors, 429 and 5xx
 * with backoff from 0.5 s to 5 min honouring Retry-After, given up on any
 * other status (400, 401, 403, 413...), as Grafana Alloy's pyroscope.write
 * does.  max_rate is in profiles (series) per second: after a push of n
 * series starts, the next one waits at least n/max_rate s: that is the
 * rate at which a backlog drains.
 *
 * Non-blocking: libcurl's multi interface, driven from the uplink's poll
 * loop (exporter_pollfds, then exporter_step), so that a slow or hung
 * server stalls neither OpAMP nor anything else the uplink serves.  No
 * resolver runs (the monitor resolved the host; CURLOPT_RESOLVE), no file
 * is opened (CA, client certificate and key, credentials from memory).
 *
 * Runs in the uplink (uid vigil, no capabilities, seccomp, Landlock).
 * Library-like: 0 or -errno, never logs; what happened to a push is in
 * struct exporter_done, for the caller to log and acknowledge.
 */
#ifndef VIGIL_EXPORTER_H
#define VIGIL_EXPORTER_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exportstats.h"
#include "privsep.h"

#define EXPORTER_PATH "/push.v1.PusherService/Push"
#define EXPORTER_TIMEOUT_S 30            /* one request, connection included */
#define EXPORTER_RETRY_AFTER_MAX_NS (300ull * 1000000000ull) /* Retry-After honoured up to 5 min */
#define EXPORTER_MAX_RESPONSE (64u << 10) /* an answer's body is only read for its error message */
#define EXPORTER_SECRET_MAX 4096          /* basic auth "user:password", bearer token */

/* Where and how to push; every pointer is copied by exporter_configure. */
struct exporter_target {
	const char *url;          /* http[s]://host[:port][/prefix], no trailing '/' needed */
	const char *host;         /* the URL's host (no brackets), for CURLOPT_RESOLVE */
	unsigned port;
	const struct uplink_addr *addrs; /* what host resolved to (none: an address literal) */
	size_t naddrs;
	const char *tenant;       /* X-Scope-OrgID; "" or NULL: none */
	const void *basic;        /* "user:password" (no newline), or NULL */
	size_t basic_len;
	const void *bearer;       /* a bearer token, or NULL */
	size_t bearer_len;
	const void *ca;           /* PEM CA bundle (https), or NULL */
	size_t ca_len;
	const void *cert, *key;   /* PEM client certificate and key (mutual TLS), or NULL */
	size_t cert_len, key_len;
	unsigned max_rate;        /* profiles (series) per second, >= 1 */
};

enum exporter_verdict {
	EXPORTER_OK = 0,      /* 2xx: pushed */
	EXPORTER_RETRY = 1,   /* network error, 429, 5xx: try again later */
	EXPORTER_REJECT = 2,  /* anything else: not retried */
};

/* What became of a push (exporter_step). */
struct exporter_done {
	uint64_t seq;
	enum exporter_verdict verdict; /* OK or REJECT; RETRY never ends a push */
	int http_status;
	char why[256];                 /* REJECT: the status and the server's reason */
};

struct exporter;

/*
 * 0 and *ret (idle, no target), -ENOMEM, -EIO (libcurl).  Before the
 * process confines itself: it seeds jansson (which reads /dev/urandom).
 */
int exporter_new(struct exporter **ret);
void exporter_free(struct exporter *e);

/*
 * Use t from now on (a push under way is abandoned and starts again with
 * it: it may reach the server twice, with the same RawSample.ID).  NULL turns export off (a waiting push stays waiting).  0, -EINVAL
 * (a URL that is not http:// or https://, an https URL without a CA, a
 * secret with a line break), -ENOMEM.
 */
int exporter_configure(struct exporter *e, const struct exporter_target *t);
bool exporter_configured(const struct exporter *e);

/*
 * Push body (a PushRequest of nseries series, >= 1; exporter takes
 * ownership: malloc'd) with the caller's number seq.  One at a time:
 * -EBUSY while one is not done.  The stats count its nseries profiles and
 * its samples (pprof samples in it).  The push after it waits at least
 * nseries/max_rate s after this one starts.
 */
int exporter_submit(struct exporter *e, uint64_t seq, void *body, size_t len, uint32_t nseries,
		    uint64_t samples);
bool exporter_busy(const struct exporter *e);

/*
 * The fds to poll for (at most max, written to p) and how long poll may
 * wait (ms, -1: no limit from the exporter).  Returns how many were set.
 */
size_t exporter_pollfds(struct exporter *e, struct pollfd *p, size_t max, int *ret_timeout_ms);

/*
 * Do what is due: start a push whose time has come, move transfers on,
 * take a finished one.  1 when a push is over (*ret filled: the caller
 * acknowledges it), 0 otherwise.  retry_why, when not NULL, gets the
 * reason of an attempt that failed and will be retried (for a log line;
 * "" when none failed in this step); *ret_retry_ns the wait before it.
 */
int exporter_step(struct exporter *e, struct exporter_done *ret, char *retry_why, size_t why_len,
		  uint64_t *ret_retry_ns);

const struct export_stats *exporter_stats(const struct exporter *e);

/* --- the policy's parts, exposed for tests ------------------------------------ */

/* What to do after an attempt: transport_ok false for a network error (no HTTP answer). */
enum exporter_verdict exporter_classify(bool transport_ok, long status);

/*
 * A profile the server keeps answering with an error of its own (500,
 * 501, 505..599: not 502, 503 or 504, which say that it, or the way to it,
 * is away) is given up after this many such answers in a row: Pyroscope
 * answers a profile it cannot parse with 500 (connect-go's "unknown"), and
 * one such profile would otherwise hold every later one behind it forever,
 * since they are pushed oldest first, one at a time.  With the backoff
 * that is about 8.5 minutes of trying.  Network errors, 429, 502, 503 and
 * 504 are retried for as long as the spool keeps the profile.
 */
#define EXPORTER_MAX_SERVER_ERRORS 10

/* Whether the consecutive-th such answer (counting from 1) with status gives the profile up. */
bool exporter_gives_up(long status, unsigned consecutive);

/*
 * The wait before the next attempt: backoff_next() with the server's
 * Retry-After (ns, 0: none) capped at EXPORTER_RETRY_AFTER_MAX_NS.
 */
struct backoff;
uint64_t exporter_retry_wait(struct backoff *b, uint64_t rnd, uint64_t retry_after_ns);

/*
 * One printable line for a failed answer: "HTTP <status>" and, when body
 * is a Connect error ({"code": ..., "message": ...}), "<code>: <message>";
 * else the body's first printable bytes.  Always NUL-terminated.
 */
void exporter_describe(long status, const uint8_t *body, size_t len, char *out, size_t outlen);

#endif
