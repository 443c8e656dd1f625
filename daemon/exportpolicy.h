/*
 * exportpolicy.h - the collector's part in the policy's export: section:
 * when the section of the policy in force changes (a new local or signed
 * policy), tell the monitor (MSG_EXPORT_CONFIG), which checks it, reads
 * the files it names and reconfigures the uplink.  The collector parses
 * the policy, so it is the one that knows; it names files but never reads
 * them (they are root's).
 *
 * Runs in the collector (uid vigil, no capabilities, confined).  Logs.
 */
#ifndef VIGIL_EXPORTPOLICY_H
#define VIGIL_EXPORTPOLICY_H

#include <stdbool.h>

#include "policy.h"
#include "privsep.h"

struct exportpolicy {
	bool sent;                      /* a message went out (else: nothing to undo) */
	struct msg_export_config last;  /* what the monitor was last told */
};

/* The message for p's export: section (flags 0 when it has none). */
void exportpolicy_message(const struct policy *p, struct msg_export_config *ret);

/*
 * Compare p's section with the last one sent, and send the monitor the new
 * one on sock when it differs (a policy without a section sends nothing
 * until one had one).  0, or -errno from the socket (logged).
 */
int exportpolicy_sync(struct exportpolicy *ep, const struct policy *p, int sock);

#endif
