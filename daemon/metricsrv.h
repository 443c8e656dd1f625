/*
 * metricsrv.h - a minimal HTTP/1.x server for one page, GET /metrics, on a
 * listening socket it is handed.
 *
 * Runs in vigild's uplink (uid vigil, no capabilities, seccomp: accept4 on
 * the socket the monitor bound, read, write, close).  It never blocks: its
 * fds join the caller's poll loop (metricsrv_pollfds, then
 * metricsrv_handle with the same entries), and a scraper that is slow,
 * silent or hostile costs at most METRICSRV_MAX_CONNS connections of
 * METRICSRV_MAX_REQUEST bytes each, for METRICSRV_TIMEOUT_MS.  Every answer
 * closes its connection (Connection: close), so no state outlives a
 * request.  It does not log: a scraper could otherwise fill the journal.
 *
 * The figures behind the page are fetched when a scrape comes in, not
 * kept fresh all the time: with a want callback, a complete request for
 * the page calls it and waits, up to METRICSRV_WAIT_MS, for
 * metricsrv_fresh(); then it is rendered (at the wait's end, with the
 * figures there are).
 */
#ifndef VIGIL_METRICSRV_H
#define VIGIL_METRICSRV_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "promtext.h"

#define METRICSRV_MAX_CONNS 4
/* The request line and headers together; Prometheus sends about 300 bytes. */
#define METRICSRV_MAX_REQUEST 4096
/* From accept to the last byte of the answer. */
#define METRICSRV_TIMEOUT_MS 5000
/* How long a complete request waits for fresh figures. */
#define METRICSRV_WAIT_MS 500
/* The largest page (32 tenants and every family fit in well under 64 KiB). */
#define METRICSRV_MAX_PAGE (512u << 10)
/* Entries metricsrv_pollfds may fill. */
#define METRICSRV_NPOLLFDS (1 + METRICSRV_MAX_CONNS)

/* Write the page; the return value is ignored, promtext_error(p) is not. */
typedef void (*metricsrv_render_fn)(void *ctx, struct promtext *p);
/* A request for the page is complete: fetch the figures, then metricsrv_fresh(). */
typedef void (*metricsrv_want_fn)(void *ctx);

struct metricsrv_stats {
	uint64_t requests_total;   /* answered, whatever the status */
	uint64_t refused_total;    /* closed without an answer: timeout, too many, reset */
};

struct metricsrv;

/*
 * Serve on listen_fd (owned from then on; made non-blocking).  want may
 * be NULL: pages are then rendered at once.  0 or -errno.
 */
int metricsrv_new(int listen_fd, metricsrv_render_fn render, metricsrv_want_fn want, void *ctx,
		  struct metricsrv **ret);

/* The figures asked for since the last call are in: answer the requests waiting. */
void metricsrv_fresh(struct metricsrv *s);

/* Fill up to METRICSRV_NPOLLFDS entries of p; returns how many. */
size_t metricsrv_pollfds(struct metricsrv *s, struct pollfd *p);

/* Milliseconds until the next connection times out or stops waiting; -1: none open. */
int metricsrv_timeout_ms(const struct metricsrv *s);

/*
 * Work on what poll() reported for the n entries metricsrv_pollfds filled
 * (n may be 0: then only timeouts are enforced).
 */
void metricsrv_handle(struct metricsrv *s, const struct pollfd *p, size_t n);

const struct metricsrv_stats *metricsrv_stats(const struct metricsrv *s);

/*
 * What a request asks, from its first line in buf[0..len): 200 for GET or
 * HEAD of /metrics (with or without a query; *ret_head for HEAD), else the
 * status it is refused with: 400 a malformed request line, 404 another
 * path, 405 another method, 505 another version than HTTP/1.x.  Pure (the
 * fuzz target's entry).
 */
int metricsrv_parse(const char *buf, size_t len, bool *ret_head);

void metricsrv_free(struct metricsrv *s);

#endif
