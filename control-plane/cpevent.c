/*
 * cpevent.c - names of the fleet's events (cpevent.h), as they appear in
 * the audit log and in log lines: stable, since auditors grep for them.
 * Runs in vigil-cp.
 */
#include "cpevent.h"

const char *cpevent_name(enum cpevent_kind kind)
{
	switch (kind) {
	case CPEVENT_FIRST_SEEN:
		return "first_seen";
	case CPEVENT_IDENTITY_REFUSED:
		return "identity_refused";
	case CPEVENT_POLICY_APPLIED:
		return "policy_applied";
	case CPEVENT_POLICY_FAILED:
		return "policy_failed";
	case CPEVENT_HEALTH_CHANGED:
		return "health_changed";
	case CPEVENT_TENANT_UNREACHABLE:
		return "tenant_unreachable";
	case CPEVENT_CERT_ROTATED:
		return "cert_rotated";
	case CPEVENT_ROLLOUT_STAGE_STARTED:
		return "rollout_stage_started";
	case CPEVENT_ROLLOUT_STAGE_COMPLETED:
		return "rollout_stage_completed";
	case CPEVENT_ROLLOUT_HALTED:
		return "rollout_halted";
	case CPEVENT_ROLLOUT_COMPLETED:
		return "rollout_completed";
	}
	return "unknown";
}
