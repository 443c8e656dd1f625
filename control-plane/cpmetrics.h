/*
 * cpmetrics.h - vigil-cp's Prometheus metrics: GET /metrics in the text
 * format 0.0.4 on a plain-HTTP listener of its own (--metrics-listen,
 * loopback by default; docs/vigil-cp.8 says why not on the mTLS port).
 *
 * Runs in vigil-cp, on its event loop (libevent's evhttp).  What it shows:
 * agents by connection and health, rollouts by state and the highest
 * policy serial (read from the store, at most once a second whatever the
 * scrape rate), the audit log's size, HTTP requests of the main listener
 * by route class and status with a latency histogram (httpd.h's observe
 * hook), and process_* for vigil-cp itself.  The names are in
 * docs/metrics.md.
 */
#ifndef VIGIL_CPMETRICS_H
#define VIGIL_CPMETRICS_H

#include <event2/event.h>

struct store;
struct cpaudit;
struct cpmetrics;

/* The store is read at most this often (ms); scrapes in between get the last figures. */
#define CPMETRICS_CACHE_MS 1000
/* A scrape's request headers and the time a connection may take. */
#define CPMETRICS_MAX_HEADERS 4096
#define CPMETRICS_TIMEOUT_S 5

/*
 * Serve on listen_fd (listening, non-blocking; owned from then on).  st
 * and audit are borrowed and must outlive it.  0 or -errno.
 */
int cpmetrics_new(struct event_base *base, int listen_fd, struct store *st, struct cpaudit *audit,
		  struct cpmetrics **ret);

/* httpd's observe hook: arg is the struct cpmetrics (NULL: nothing). */
void cpmetrics_observe(void *arg, const char *route, int status, double seconds);

/* Accepts NULL. */
void cpmetrics_free(struct cpmetrics *m);

#endif
