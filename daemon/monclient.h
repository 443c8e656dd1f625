/*
 * monclient.h - the collector's side of the monitor protocol.
 *
 * Requests (OPEN_MAPS, OPEN_FILE, TENANT_CGROUP...) are synchronous: send,
 * then wait for the answer.  The monitor may also send, unasked, a new
 * policy (MSG_POLICY, on SIGHUP), which can arrive while a request waits
 * for its answer; it is kept until the collector's loop takes it.
 *
 * Runs in the collector.  A monitor that breaks the protocol is fatal
 * (exit 70); a monitor that went away makes every request fail with -EPIPE
 * so that the collector can write what it has and exit.
 */
#ifndef VIGIL_MONCLIENT_H
#define VIGIL_MONCLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "privsep.h"

/*
 * Send req and wait for the answer.  Returns the fd of an FD_REPLY, 0 for
 * an ERR_REPLY with err 0, -err for one with an error, -EPIPE once the
 * monitor is gone.
 */
int monclient_ask(const void *req, size_t len);

/*
 * Send a SET_HZ or TENANT_CGROUP request and wait for its MSG_HZ_REPLY.
 * Returns 0 or -err (refused or failed), -EPIPE once the monitor is gone;
 * except for -EPIPE, *ret_hz is set to the tenant's frequency in effect
 * now, as the monitor says (0: none yet).
 */
int monclient_ask_hz(const void *req, size_t len, unsigned *ret_hz);

/*
 * Send an OPEN_FILES request and wait for its FILES_REPLY.  Returns 0
 * and ret_fds[i] (an fd, or -err for that entry) for each of req's n
 * entries; -EPIPE once the monitor is gone.  An answer that does not
 * match the request (another count, fds that do not match its errors)
 * is the monitor breaking the protocol: fatal.
 */
int monclient_ask_files(const struct msg_open_files *req, int *ret_fds);

/*
 * Send an OPEN_MAPS request with OPEN_MAPS_F_FILES and wait for its
 * MAPS_REPLY.  Returns the maps fd, *ret (what the monitor said of each
 * file) and ret_fds[i] (an fd, or -err) for each of its n files; or -err
 * (an ERR_REPLY: no maps), -EPIPE once the monitor is gone.  An answer
 * whose fds do not match its entries is the monitor breaking the
 * protocol: fatal.
 */
int monclient_ask_maps(const struct msg_open_maps *req, struct msg_maps_reply *ret, int *ret_fds);

/*
 * Read one unasked message (call when PRIVSEP_FD polls readable).
 * Returns 1 when a policy is now waiting, 0 when nothing came, -EPIPE when
 * the monitor is gone.
 */
int monclient_poll(void);

/* Take the waiting policy: 1 and its fd (caller closes) and name, or 0. */
int monclient_take_policy(int *ret_fd, char *ret_name, size_t len);

/*
 * Whether a policy waits, kept while a request waited for its answer (its
 * socket, read already, will not wake the caller's poll).
 */
bool monclient_policy_waiting(void);

bool monclient_gone(void);

#endif
