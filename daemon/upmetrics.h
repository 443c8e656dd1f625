/*
 * upmetrics.h - the page of Prometheus metrics vigild's uplink serves: what
 * it keeps of the collector's and the monitor's periodic figures, and the
 * rendering of all of it with its own (export, control plane).
 *
 * Runs in the uplink (uid vigil, no capabilities, no files).  Library-like:
 * it checks what arrives and renders; the uplink decides what to do when a
 * message cannot be meant.  The names are in docs/metrics.md.
 */
#ifndef VIGIL_UPMETRICS_H
#define VIGIL_UPMETRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "exportstats.h"
#include "metricsrv.h"
#include "privsep.h"
#include "promtext.h"

struct upmetrics {
	bool have_collector, have_proc;
	struct msg_collector_metrics col;
	struct msg_proc_metrics proc;
	/* the uplink's own state, which it updates in place */
	bool control_plane;             /* --control-plane given */
	bool cp_connected;              /* the last OpAMP exchange succeeded */
	bool have_policy;
	uint32_t policy_source;         /* enum policy_source */
	uint64_t policy_serial;         /* of the policy in force */
	uint64_t remote_applied_total;  /* remote policies applied / refused */
	uint64_t remote_failed_total;
	const struct export_stats *exp; /* NULL: no exporter in this build */
	const struct metricsrv_stats *http;
};

/* Keep the collector's figures.  0, or -EPROTO when they cannot be meant. */
int upmetrics_take_collector(struct upmetrics *m, const struct msg_collector_metrics *msg);

/* Keep the monitor's figures.  0, or -EPROTO when they cannot be meant. */
int upmetrics_take_proc(struct upmetrics *m, const struct msg_proc_metrics *msg);

/* metricsrv_render_fn: ctx is the struct upmetrics. */
void upmetrics_render(void *ctx, struct promtext *p);

#endif
