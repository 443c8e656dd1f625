/*
 * cpside.h - the collector's side of the control plane: it decides whether
 * a policy from the network is applied.
 *
 * The uplink (network-facing) passes each policy and signature it receives
 * over its socket to the collector (MSG_REMOTE_POLICY); here they are
 * checked (remotepolicy.h) against --policy-trust, whose bytes the monitor
 * handed over at start, applied the way SIGHUP applies a local file, kept
 * as last-known-good in the state directory (statedir.h), and answered
 * with MSG_POLICY_STATUS: APPLIED, or FAILED with the reason.  The
 * collector also tells the uplink who this agent is (MSG_AGENT_START) and
 * how sampling and each tenant's budget fare (MSG_AGENT_HEALTH).
 *
 * Which policy is in force (docs/control-plane.md): at start the state
 * directory's signed policy, if it verifies, wins over --policy; else
 * --policy; else the default.  The first signed policy applied from the
 * control plane replaces whatever was in force, and a SIGHUP no longer
 * reloads --policy once one is.
 *
 * Runs in the collector (uid vigil, no capabilities, no network; Landlock
 * lets it write only the output and state directories).  Process code: it
 * logs.  An uplink that breaks the protocol is reported to the monitor
 * (MSG_UPLINK_BROKE), which kills it.
 */
#ifndef VIGIL_CPSIDE_H
#define VIGIL_CPSIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "privsep.h"

struct budgets;
struct policy;
struct signing_trust;

struct cpside {
	int state_fd, chan_fd;          /* owned; chan_fd -1 once the uplink is gone */
	struct signing_trust *trust;    /* --policy-trust */
	unsigned max_hz;                /* for policy_parse: the kernel's ceiling */
	bool seen[MSG_TYPE_MAX];        /* once-only messages from the uplink */
	/* The policy in force. */
	enum policy_source source;
	uint64_t serial;                /* of the signed policy in force, 0: none */
	char *yaml;                     /* its bytes (malloc'd; NULL for the default) */
	size_t yaml_len;
	/* The last remote config and what became of it. */
	uint32_t status;                /* enum remote_status */
	uint8_t hash[CONFIG_HASH_LEN];
	char reason[POLICY_REASON_LEN];
	/* Health, sent when it changes or every HEALTH_PERIOD. */
	struct msg_agent_health last_health;
	uint64_t last_health_ns;
	/* Export (exportside.h): the acks that come on this socket; NULL: export off. */
	int (*export_ack)(void *ctx, const struct msg_export_ack *ack);
	void *export_ctx;
};

/*
 * Take the fds of MSG_COLLECTOR_CP (state directory, policy trust memfd,
 * socket to the uplink; owned from then on) and load the trust store.
 * 0, or -errno with a reason in why (a trust store that does not load).
 */
int cpside_init(struct cpside *cs, const int fds[3], unsigned max_hz, char *why, size_t why_len);

/*
 * At start: the state directory's signed policy, verified again, if there
 * is one (NULL otherwise, and why it was not used is logged).
 */
struct policy *cpside_last_known_good(struct cpside *cs);

/* The policy in force is a local file (or the default, yaml NULL); copied. */
void cpside_set_local(struct cpside *cs, enum policy_source src, const char *yaml, size_t len);

/* Once set up: MSG_AGENT_START and the first MSG_POLICY_STATUS.  0 or -errno. */
int cpside_start(struct cpside *cs);

/*
 * The uplink's socket is readable: take its message and act on it
 * (a policy is checked, applied to b, saved, and answered).  0, or -EPIPE
 * once the uplink is gone (chan_fd is closed then).
 */
int cpside_on_readable(struct cpside *cs, struct budgets *b);

/*
 * Check a policy from the control plane (remotepolicy_check, against the
 * serial in force) and, if it passes, keep it in the state directory and
 * make it the policy in force here: 0 and *ret for the caller to apply.
 * Otherwise -errno, with status FAILED and the reason in cs->reason; the
 * policy in force and the state directory are unchanged.  hash: the
 * remote config's, echoed to the server.
 */
int cpside_accept(struct cpside *cs, const char *yaml, size_t yaml_len, const char *sig,
		  size_t sig_len, const uint8_t hash[CONFIG_HASH_LEN], struct policy **ret);

/* Whether --policy may be reloaded on SIGHUP (no signed policy in force). */
bool cpside_local_allowed(const struct cpside *cs);

/*
 * The first health report, as sampling starts, so that the uplink's first
 * message has health (the control plane asks for the full state until it
 * has every part the capabilities promise).
 */
void cpside_health_start(struct cpside *cs, const struct budgets *b);

/* Send health if it changed, or every period anyway. */
void cpside_health(struct cpside *cs, const struct budgets *b, bool sampling, uint64_t samples);

void cpside_release(struct cpside *cs);

#endif
