/*
 * uplinkbase.h - what both uplink programs do the same way: block the
 * signals they take on a signalfd, confine themselves once set up, and
 * send their heartbeat (MSG_UPLINK_BEAT).  vigild-uplink (uplink.c) talks
 * to a control plane or an export target; vigild-uplink-local
 * (uplinklocal.c) serves metrics only and does not map libcurl.
 *
 * Runs in the uplink (uid vigil, no capabilities).  Failures end the
 * process (fatalx, exit 71; 70 when the monitor cannot be reached), as the
 * uplink's start-up always has.
 */
#ifndef VIGIL_UPLINKBASE_H
#define VIGIL_UPLINKBASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heartbeat.h"
#include "privsep.h"

/* SIGINT, SIGTERM, SIGHUP and SIGPIPE blocked, on a non-blocking signalfd. */
int uplinkbase_signalfd(void);

/*
 * Not dumpable; Landlock (no files, TCP connect only to the n ports, 0s
 * skipped, no TCP at all when every one is 0); seccomp (SANDBOX_UPLINK_NET
 * when net, else SANDBOX_UPLINK); then MSG_UPLINK_READY to the monitor.
 */
void uplinkbase_confine(const unsigned *ports, size_t n, bool net);

/* CLOCK_MONOTONIC in ns. */
uint64_t uplinkbase_now_ns(void);

/*
 * One turn of a loop: send state (cp_state, serial, export; the rest is
 * filled in here) as MSG_UPLINK_BEAT when a beat is due, or now if force
 * or what STATUS= shows of it changed (beats_status: export and
 * control-plane state, policy serial, a failing push's HTTP status).
 */
void uplinkbase_beat(struct heartbeat *hb, const struct msg_uplink_beat *state, bool force);

/* Beat every beat_ms, the setup's (heartbeat_init); out of range ends the process (exit 70). */
void uplinkbase_heartbeat(struct heartbeat *hb, uint32_t beat_ms);

#endif
