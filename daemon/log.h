/*
 * log.h - logging for vigild's process entry points.
 *
 * Only process entry points (monitor, collector) log; library-like modules
 * return -errno and let their caller decide.  Lines go to stderr, prefixed
 * with the process role, so that journald and a terminal both read them.
 *
 * When stderr is the journal (systemd sets JOURNAL_STREAM to its device
 * and inode, and they match fd 2), every line goes instead through the
 * journal's native protocol (journal.h) with PRIORITY=,
 * SYSLOG_IDENTIFIER=vigild, VIGIL_PROCESS= (monitor, collector, uplink,
 * loader) and, for log_event, a MESSAGE_ID (logids.h) and structured
 * fields.  A line the journal does not take goes to stderr as before.
 */
#ifndef VIGIL_LOG_H
#define VIGIL_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdnoreturn.h>
#include <syslog.h>

#include "logids.h"

/*
 * Names the process in every line ("vigild", "vigild[collector]"), and
 * decides, from JOURNAL_STREAM and fd 2, whether lines go to the journal.
 * Call before any confinement: it looks at the journal's socket.
 */
void log_init(const char *role);

/* Whether lines go to the journal (log_init decided). */
bool log_to_journal(void);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like log_warnx, with ": strerror(-err)" appended. */
void log_warn_errno(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A broken invariant or a hostile peer: log and exit with code. */
noreturn void fatalx(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * An event an operator may alert on or query by field.  Every member but
 * priority is optional (NULL / 0: not sent).  Strings are not kept.
 */
struct log_event {
	int priority;         /* syslog(3) priority: LOG_INFO, LOG_WARNING, LOG_ERR */
	const char *id;       /* MESSAGE_ID=, one of LOG_ID_* (logids.h) */
	const char *tenant;   /* VIGIL_TENANT= */
	unsigned hz;          /* VIGIL_HZ= */
	uint64_t serial;      /* VIGIL_SERIAL= (a signed policy's) */
	const char *worker;   /* VIGIL_WORKER=: the process the event is about */
	int err;              /* ERRNO= (positive or negative), and ": strerror" in the text */
};

/* One line, as log_info/log_warnx would write it, with ev's fields in the journal. */
void log_event(const struct log_event *ev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* log_event, then exit with code. */
noreturn void fatalx_event(int code, const struct log_event *ev, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
