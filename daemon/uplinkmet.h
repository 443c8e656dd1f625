/*
 * uplinkmet.h - the uplink's Prometheus side: the listening socket the
 * monitor bound, and the monitor's and the collector's figures, which
 * arrive on sockets of their own (MSG_PROC_METRICS, MSG_COLLECTOR_METRICS)
 * when a scrape asks for them (MSG_METRICS_WANTED): nobody reads /proc or
 * sends figures while nobody scrapes.
 * Both uplink programs use it: vigild-uplink (control plane, export) and
 * vigild-uplink-local (neither: metrics only, without libcurl).
 *
 * Runs in the uplink (uid vigil, no capabilities, no files).  A message
 * that cannot be meant ends the process (fatalx, exit 70), as every
 * protocol break does in the uplink: the monitor then shuts vigild down.
 */
#ifndef VIGIL_UPLINKMET_H
#define VIGIL_UPLINKMET_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

#include "metricsrv.h"
#include "privsep.h"
#include "upmetrics.h"

/* The most entries uplinkmet_pollfds fills. */
#define UPLINKMET_NPOLLFDS (2 + METRICSRV_NPOLLFDS)

struct uplinkmet {
	struct metricsrv *srv;      /* NULL: metrics off */
	struct upmetrics met;       /* what the page shows; the uplink updates its own fields */
	int pmfd, cmfd;             /* the monitor's and the collector's figures; -1: none or gone */
	bool seen_pm[MSG_TYPE_MAX], seen_cm[MSG_TYPE_MAX];
	bool pm_pending, cm_pending; /* asked, not answered yet */
	uint64_t asked_ns;          /* CLOCK_MONOTONIC of the last ask */
};

/* Metrics off until uplinkmet_setup. */
void uplinkmet_init(struct uplinkmet *um);

/*
 * Take MSG_UPLINK_METRICS from the monitor (the next message on
 * PRIVSEP_FD; seen_mon is the uplink's record of the monitor's types) and
 * start serving.  cp: a control plane is configured (shown on the page).
 */
void uplinkmet_setup(struct uplinkmet *um, bool *seen_mon, bool cp);

/*
 * The entries to poll at p (UPLINKMET_NPOLLFDS at most; none when off),
 * *timeout lowered to the server's own when it has one.
 */
size_t uplinkmet_pollfds(struct uplinkmet *um, struct pollfd *p, int *timeout);

/* After poll(): take the figures and serve what is ready, for the n entries at p. */
void uplinkmet_handle(struct uplinkmet *um, const struct pollfd *p, size_t n);

/* Take and serve what is ready now, without waiting (during a long transfer). */
void uplinkmet_now(struct uplinkmet *um);

void uplinkmet_free(struct uplinkmet *um);

#endif
