/*
 * cpevent.h - what happened in the fleet, as vigil-cp sees it happen: the
 * transitions worth recording (the audit log, cpaudit) and acting on (the
 * rollouts).  opampsrv.c emits the agent events after the agent's row is
 * stored; the rollout engine emits the rollout events after its change is
 * committed.  vigil-cp.c hands each one to every consumer.
 *
 * An event is valid only during the call: a consumer copies what it keeps.
 * Runs in vigil-cp (unprivileged, single-threaded).
 */
#ifndef VIGIL_CPEVENT_H
#define VIGIL_CPEVENT_H

#include <stdint.h>

#include "store.h"

enum cpevent_kind {
	CPEVENT_FIRST_SEEN = 1,		/* a new instance_uid got a row */
	CPEVENT_IDENTITY_REFUSED,	/* uid claimed by another subject (detail: the owner's) */
	CPEVENT_POLICY_APPLIED,		/* remote_config_status turned APPLIED (serial) */
	CPEVENT_POLICY_FAILED,		/* turned FAILED (serial; detail: the agent's reason) */
	CPEVENT_HEALTH_CHANGED,		/* healthy changed (healthy; detail: last_error or NULL) */
	CPEVENT_TENANT_UNREACHABLE,	/* a budget/NAME component turned unhealthy (detail: NAME) */
	CPEVENT_CERT_ROTATED,		/* known agent, new certificate (detail: the old fingerprint),
					   or a certificate issued for its CSR (detail: "issued FP") */
	CPEVENT_ROLLOUT_STAGE_STARTED,	/* rollout, stage (0-based), serial */
	CPEVENT_ROLLOUT_STAGE_COMPLETED,
	CPEVENT_ROLLOUT_HALTED,		/* detail: why */
	CPEVENT_ROLLOUT_COMPLETED,
};

struct cpevent {
	enum cpevent_kind kind;
	int64_t at;			/* Unix ms */
	/* Agent events: the agent and the certificate of the connection. */
	uint8_t uid[STORE_UID_LEN];
	const char *subject, *fingerprint;
	/* POLICY_*: the serial whose config hash the agent reported, 0 when not
	   one vigil-cp stored; ROLLOUT_*: the rollout's serial. */
	int64_t serial;
	int healthy;			/* HEALTH_CHANGED: 1 or 0 */
	int64_t rollout_id;		/* ROLLOUT_* */
	int stage;			/* ROLLOUT_STAGE_*: 0-based */
	const char *detail;		/* see each kind; may be NULL */
};

typedef void (*cpevent_fn)(const struct cpevent *ev, void *arg);

/* A short stable name for kind ("policy_applied"), or "unknown". */
const char *cpevent_name(enum cpevent_kind kind);

#endif
