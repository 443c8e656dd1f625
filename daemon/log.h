/*
 * log.h - logging for vigild's process entry points.
 *
 * Only process entry points (monitor, collector) log; library-like modules
 * return -errno and let their caller decide.  Lines go to stderr, prefixed
 * with the process role, so that journald and a terminal both read them.
 */
#ifndef VIGIL_LOG_H
#define VIGIL_LOG_H

#include <stdnoreturn.h>

/* Names the process in every line ("vigild", "vigild[collector]"). */
void log_init(const char *role);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like log_warnx, with ": strerror(-err)" appended. */
void log_warn_errno(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A broken invariant or a hostile peer: log and exit with code. */
noreturn void fatalx(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
