/*
 * backoff.h - when the uplink tries the control plane again after a
 * failure: exponential backoff with jitter between BACKOFF_MIN_NS (0.5 s)
 * and BACKOFF_MAX_NS (5 min), as opamp-go's client does, and never sooner
 * than the server asked (HTTP Retry-After, ServerErrorResponse retry_info).
 *
 * The n-th consecutive failure (n >= 1) waits a random time in
 * [max(MIN, d/2), d] with d = min(MAX, MIN * 2^(n-1)) ("equal jitter": the
 * wait still grows, and a fleet that failed together spreads out).  A
 * server's wait is honoured up to BACKOFF_SERVER_MAX_NS, so that a
 * nonsense value cannot park the agent for ever.
 *
 * Runs in the uplink.  Library-like; random bits come from the caller, so
 * that the schedule can be tested.
 */
#ifndef VIGIL_BACKOFF_H
#define VIGIL_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

#define BACKOFF_MIN_NS 500000000ull
#define BACKOFF_MAX_NS (300ull * 1000000000ull)
#define BACKOFF_SERVER_MAX_NS (3600ull * 1000000000ull)

struct backoff {
	unsigned failures; /* consecutive */
};

/* A request succeeded: the next failure starts from MIN again. */
void backoff_reset(struct backoff *b);

/*
 * One more failure: the wait before the next try, in ns.  rnd: uniform
 * random bits.  server_ns: what the server asked for (0: nothing).
 */
uint64_t backoff_next(struct backoff *b, uint64_t rnd, uint64_t server_ns);

/*
 * Parse an HTTP Retry-After value: delay-seconds, or an HTTP-date (RFC
 * 9110) taken relative to now_s (Unix seconds).  0 and *ret_ns, or
 * -EINVAL.
 */
int backoff_parse_retry_after(const char *v, int64_t now_s, uint64_t *ret_ns);

/*
 * One header line as libcurl's header callback gets it (len bytes, not
 * NUL-terminated): if it is a Retry-After that parses, 0 and *ret_ns;
 * else -EINVAL.
 */
int backoff_retry_after_header(const char *line, size_t len, int64_t now_s, uint64_t *ret_ns);

#endif
