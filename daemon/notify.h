/*
 * notify.h - the monitor's side of systemd's service notification
 * protocol (sd_notify(3)): readiness, status, reload, stop and watchdog.
 *
 * Runs in the monitor, before and after it drops to the vigil user and
 * installs its seccomp filter (which lets through the one AF_UNIX datagram
 * socket made per notification, as sd_notify makes one: sandbox.c).  Only
 * the monitor notifies: it is the service's main process
 * (NotifyAccess=main), and the workers are started with an environment
 * that has no NOTIFY_SOCKET.
 *
 * Without NOTIFY_SOCKET (not started by systemd, or Type= other than
 * notify) every call does nothing.  Library-like: returns 0 or -errno and
 * never logs; the monitor decides what a failure means (nothing: systemd
 * times the start out on its own).
 */
#ifndef VIGIL_NOTIFY_H
#define VIGIL_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* STATUS= is sent at most this often (a busy reload must not flood PID 1). */
#define NOTIFY_STATUS_MIN_MS 1000
/* The longest STATUS= line, NUL included; longer ones are cut. */
#define NOTIFY_STATUS_MAX 1024

struct notify {
	bool on;                  /* NOTIFY_SOCKET is set */
	char socket[110];         /* its value (a sockaddr_un path; '@': abstract), cut past 109 */
	uint64_t watchdog_usec;   /* WATCHDOG_USEC for this pid; 0: no watchdog */
	uint64_t next_pet_us;     /* CLOCK_MONOTONIC of the next WATCHDOG=1 due */
	char status[NOTIFY_STATUS_MAX];  /* the last STATUS= sent */
	char pending[NOTIFY_STATUS_MAX]; /* a newer one waiting for the rate limit */
	bool have_pending;
	uint64_t status_sent_us;  /* when status was sent */
	uint64_t sent;            /* datagrams sent, for tests and the log */
};

/*
 * Read NOTIFY_SOCKET and the watchdog settings (WATCHDOG_USEC and
 * WATCHDOG_PID, as sd_watchdog_enabled(3) reads them) from
 * the environment: call once, before the seccomp filter, from the main
 * process.  Always 0.
 */
int notify_init(struct notify *n, uint64_t now_us);

/* READY=1, with the current STATUS= if one waits. */
int notify_ready(struct notify *n, uint64_t now_us);

/* RELOADING=1 and MONOTONIC_USEC=now_us (systemd matches it to the SIGHUP). */
int notify_reloading(struct notify *n, uint64_t now_us);

int notify_stopping(struct notify *n);

/*
 * Ask for STATUS=status.  Sent now if it differs from the last one and
 * the last went out NOTIFY_STATUS_MIN_MS ago or more; otherwise kept and
 * sent by notify_tick().  status is copied.
 */
int notify_status(struct notify *n, const char *status, uint64_t now_us);

/* Whether a WATCHDOG=1 is due now (and the next one is scheduled). */
bool notify_watchdog_due(struct notify *n, uint64_t now_us);

/* WATCHDOG=1: the caller checked that the service is healthy. */
int notify_watchdog(struct notify *n);

/* Send a STATUS= that waited for the rate limit, if its time has come. */
int notify_tick(struct notify *n, uint64_t now_us);

/*
 * Milliseconds until notify_tick or notify_watchdog_due has something to
 * do (for the caller's poll), or -1 when nothing is scheduled.
 */
int notify_timeout_ms(const struct notify *n, uint64_t now_us);

#endif
