/*
 * opampsrv.h - vigil-cp's OpAMP server logic, apart from the transport:
 * one AgentToServer in (already gunzipped), one ServerToAgent out, the
 * store updated in between.  httpd.c calls it for each POST /v1/opamp from
 * a connection whose certificate has CP_ROLE_AGENT.
 *
 * What it does (opamp-spec specification.md, "OpAMP over HTTP"):
 *   - instance_uid must be 16 bytes, else BadRequest;
 *   - an instance_uid is bound to the certificate subject it first came
 *     with; another subject claiming it is refused (BadRequest), so one
 *     agent cannot speak for another;
 *   - a sequence_num that is not the last one + 1 (or a first message the
 *     server has no state for) gets the ReportFullState flag;
 *   - agent_description, capabilities, health, effective_config,
 *     remote_config_status and agent_disconnect update the store;
 *   - the newest assignment whose selector matches the agent names the
 *     policy it should run; remote_config is sent when the agent's reported
 *     last_remote_config_hash differs from that policy's config hash;
 *   - with a signer (opampsrv_set_signer), a connection_settings_request
 *     (#11) carrying a CSR is signed by csrsign.c and answered with
 *     connection_settings (#4): opamp.certificate.cert and the hash of the
 *     offer; a refused request gets error_response and a log line, and the
 *     rest of the message is processed as usual.  Without a signer the
 *     request is refused the same way and the capabilities
 *     AcceptsConnectionSettingsRequest and OffersConnectionSettings are not
 *     advertised;
 *   - a connection_settings_status (#15) is logged (FAILED with its reason);
 *   - the reply always carries the server's capabilities and the instance_uid.
 * Library-like: never logs; a reason for the log line comes back in log.
 */
#ifndef VIGIL_OPAMPSRV_H
#define VIGIL_OPAMPSRV_H

#include <stddef.h>
#include <stdint.h>

#include "cpevent.h"
#include "cpident.h"
#include "csrsign.h"
#include "store.h"

#define OPAMPSRV_MAX_MESSAGE (4u << 20) /* an AgentToServer, after gunzip */

struct opampsrv;

struct opampsrv_reply {
	int http_status;	/* 200, or 400 for BadRequest (body still a ServerToAgent) */
	uint8_t *body;		/* serialized ServerToAgent, malloc'ed; caller frees */
	size_t len;
	char log[512];		/* non-empty: what the caller should log (refusals, errors, issuance) */
};

/* 0 and *ret; st is borrowed and must outlive the server. */
int opampsrv_new(struct store *st, struct opampsrv **ret);

/*
 * Sign certificate requests with cs (borrowed; it must outlive its use, or
 * be replaced first, e.g. on SIGHUP), or refuse them with NULL.
 */
void opampsrv_set_signer(struct opampsrv *s, const struct csrsign *cs);

/* Accepts NULL. */
void opampsrv_free(struct opampsrv *s);

/*
 * Tell fn (arg borrowed) each agent event (cpevent.h) after the agent's
 * row is stored: first seen, identity refused, policy applied or failed
 * (with the serial whose config hash it reported, 0 when none stored has
 * it), health changed (a first report only when unhealthy), each
 * "budget/NAME" component turned unhealthy (tenant NAME unreachable), a
 * known agent on another certificate, a certificate issued for its CSR.
 * fn NULL: none.
 */
void opampsrv_set_events(struct opampsrv *s, cpevent_fn fn, void *arg);

/*
 * Rollouts: what a rollout offers an agent, overriding an older
 * assignment.  The agent is sent the higher of its assignment's serial and
 * offer()'s, leaving out serials that FAILED on it (remembered in its row,
 * never offered again); sent() is told each time a reply carries the
 * offered serial's config.  Copied; NULL: no rollout offers anything.
 */
struct opampsrv_rollouts {
	int64_t (*offer)(void *arg, const uint8_t uid[STORE_UID_LEN]);
	void (*sent)(void *arg, const uint8_t uid[STORE_UID_LEN], int64_t serial, int64_t now);
	void *arg;
};
void opampsrv_set_rollouts(struct opampsrv *s, const struct opampsrv_rollouts *r);

/*
 * Forget the cached assignments and policies: call after store_assign() or
 * store_policy_add() (the admin API, same process).  The server reads them
 * again from the store on its next message, not on every message.
 */
void opampsrv_invalidate(struct opampsrv *s);

/*
 * Handle one message from the agent identified by id.  0 with *ret filled
 * (also for a refused message: BadRequest is a reply), or -ENOMEM/-EIO when
 * no reply can be made (the caller answers 500).  now is Unix ms.
 */
int opampsrv_handle(struct opampsrv *s, const struct cp_identity *id, const uint8_t *msg,
		    size_t len, int64_t now, struct opampsrv_reply *ret);

#endif
