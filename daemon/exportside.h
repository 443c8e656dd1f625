/*
 * exportside.h - the collector's side of profile export: each interval's
 * series made into the PushRequest(s) of a spool file (spoolq.h) in the
 * output directory, the files sent to the uplink one at a time, and the
 * acknowledgements that let a file go (docs/security.md, "Profiles leaving
 * the host").
 *
 * Runs in the collector (uid vigil, no capabilities, no network).  The
 * uplink is the only process on the network; this side only ever hands it
 * the bytes of a file it chose from its own spool, as a sealed memfd, and
 * takes back "seq N is over".  An ack that does not match the file in
 * flight, or any other message it may not send here, is a protocol break:
 * the monitor is told (MSG_UPLINK_BROKE) and the socket is closed; the
 * files stay for the next run.
 *
 * Logs (it is the collector's entry point for export); one instance.
 */
#ifndef VIGIL_EXPORTSIDE_H
#define VIGIL_EXPORTSIDE_H

#include <stdbool.h>
#include <stdint.h>

#include "exportstats.h"
#include "options.h"
#include "privsep.h"

struct spoolq;
struct snapshot_set;
struct msg_collector_setup;

struct exportside {
	struct spoolq *q;
	int out_fd;                 /* borrowed: the output directory */
	int *chan;                  /* the socket to the uplink: the collector's, or cpside's chan_fd */
	bool seen[MSG_TYPE_MAX];    /* once-only messages from the uplink (without a control plane) */
	/* what the series' labels and IDs are made of: the monitor's setup */
	char host[UPLINK_HOST_LEN];
	char labels_buf[UPLINK_LABELS_LEN];
	const char *labels[VIGILD_MAX_LABELS]; /* into labels_buf */
	size_t nlabels;
	uint64_t rejected;          /* profiles the server refused for good */
	uint64_t unreadable;        /* profiles in spooled files that could not be sent, dropped */
	uint64_t commented, commented_bytes; /* in the comment of the profiles being built */
	uint64_t max_bytes;         /* the spool's bound in force */
};

/* One spool file of an interval, built by exportside_build. */
struct exportside_part {
	char name[256];     /* cpu-<stamp>_<k>_<n>.push */
	uint8_t *buf;       /* owned: the serialized PushRequest */
	size_t len;
	uint32_t nseries;
	uint64_t samples;   /* pprof samples in its profiles */
};

/*
 * Set up over the output directory out_fd (borrowed) with the spool's
 * bound and the host name and --label's of the setup (checked: a setup the
 * monitor cannot mean is fatal, exit 70), and queue what a previous run
 * left there (logged).  chan: where the socket to the uplink is kept,
 * non-blocking (cpside's, or the collector's without a control plane);
 * *chan is read each time, so its closing is seen, and set to -1 when this
 * side closes it (the uplink broke the protocol).  Fatal on failure (out
 * of memory, an unreadable directory).
 */
void exportside_init(struct exportside *es, int out_fd, uint64_t max_bytes, int *chan,
		     const struct msg_collector_setup *cfg);
void exportside_release(struct exportside *es);

/*
 * The spool files of the interval at time_ns: one PushRequest of all the
 * series of set, in order, or a few parts (pyropush_part: at most
 * PYROPUSH_PART_RAW_MAX uncompressed, EXPORT_PROFILE_MAX encoded), each
 * series with its labels (pyropush_labels_build) and the RawSample.ID of
 * its virtual name (spoolq_name, spoolq_uuid).  A series without a name or
 * labels is logged and left out.  0 and *ret_parts (free with
 * exportside_parts_free), *ret_n (0: nothing to write), or -ENOMEM.
 */
int exportside_build(const struct exportside *es, const struct snapshot_set *set, int64_t time_ns,
		     struct exportside_part **ret_parts, size_t *ret_n);
void exportside_parts_free(struct exportside_part *p, size_t n);

/*
 * A spool file of size bytes is about to be written: make room for it
 * under the bound (spoolq_make_room), one log line per episode of drops.
 */
void exportside_make_room(struct exportside *es, uint64_t size);

/*
 * A spool file just written as `name` (size bytes; nseries profiles of
 * `samples` pprof samples, for the interval at time_ns): queue it, apply
 * the bound (one log line per episode of drops), and send if nothing is in
 * flight.
 */
void exportside_written(struct exportside *es, const char *name, int64_t time_ns, uint32_t nseries,
			uint64_t samples, uint64_t size);

/*
 * The line for the next profiles' comments about what the bound dropped
 * that no profile reports yet, or nothing (returns false).  Once profiles
 * carrying it were written, exportside_drop_reported() with their
 * interval's time_ns (an interval without samples writes none, and the
 * count waits for the next; spoolq_dropped_reported says what happens when
 * the profiles carrying it are dropped in turn).
 */
bool exportside_drop_comment(struct exportside *es, char *buf, size_t len);
void exportside_drop_reported(struct exportside *es, int64_t time_ns);

/*
 * The spool's bound changed (the policy's export: section; 0: the default):
 * applied at once, logged when it changes.  For whoever applies the
 * policy's spool_max_bytes in the collector.
 */
void exportside_set_bound(struct exportside *es, uint64_t max_bytes);

/* Send the oldest waiting file if none is in flight (and the uplink is there). */
void exportside_pump(struct exportside *es);

/*
 * Whether a file waits to be sent with none in flight (the uplink could
 * not take it yet): the caller pumps again soon.
 */
bool exportside_waiting(const struct exportside *es);

/*
 * A MSG_EXPORT_ACK (checked against the table) from the uplink: the file in
 * flight is unlinked (EXPORT_REJECTED: its profiles counted as refused).
 * 0, or -EPROTO when it breaks the protocol (the caller reports it as
 * cpside does).
 */
int exportside_on_ack(struct exportside *es, const struct msg_export_ack *ack);

/*
 * Without a control plane: *chan is readable.  0, or -EPIPE once the
 * uplink is gone or broke the protocol (reported to the monitor).
 */
int exportside_on_readable(struct exportside *es);

/* The spool's counters, kept current (for metrics and STATUS). */
const struct spool_stats *exportside_stats(const struct exportside *es);

#endif
