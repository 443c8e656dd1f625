/*
 * uplinkexp.h - the uplink's side of exporting profiles to Pyroscope: it
 * takes the target from the monitor (MSG_UPLINK_EXPORT), the spool files
 * from the collector (MSG_EXPORT_PROFILE, one at a time: each a
 * PushRequest, pushed as it is), pushes each through the exporter, and
 * answers the collector (MSG_EXPORT_ACK) once the push succeeded or was
 * refused for good.
 *
 * Runs in the uplink (uid vigil, no capabilities, seccomp, Landlock).
 * Process code: it logs, and a message from the monitor or the collector
 * that breaks the protocol is fatal (exit 70), as everywhere in the uplink.
 */
#ifndef VIGIL_UPLINKEXP_H
#define VIGIL_UPLINKEXP_H

#include <poll.h>
#include <stddef.h>

#include "exportstats.h"
#include "privsep.h"

struct uplinkexp;

/*
 * From the uplink's setup (hostname and --labels, already checked to lie
 * within it).  Exits on failure (out of memory, libcurl).
 */
struct uplinkexp *uplinkexp_new(const struct msg_uplink_setup *cfg);
void uplinkexp_free(struct uplinkexp *x);

/* MSG_UPLINK_EXPORT (fds[0..4] are closed here). */
void uplinkexp_config(struct uplinkexp *x, const struct msg_uplink_export *m, const int *fds);

/* The export target's TCP port (0: none yet), for Landlock. */
unsigned uplinkexp_port(const struct uplinkexp *x);

/* MSG_EXPORT_PROFILE (fd is closed here); a message it cannot mean is fatal (70). */
void uplinkexp_profile(struct uplinkexp *x, const struct msg_export_profile *m, int fd);

/* For the poll loop: fds to add (at most max) and the timeout (ms, -1: none). */
size_t uplinkexp_pollfds(struct uplinkexp *x, struct pollfd *p, size_t max, int *ret_timeout_ms);

/* Move the push on; a push over is acknowledged on chan (-1: the collector is gone). */
void uplinkexp_step(struct uplinkexp *x, int chan);

const struct export_stats *uplinkexp_stats(const struct uplinkexp *x);

#endif
