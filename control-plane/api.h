/*
 * api.h - vigil-cp's admin API: JSON (jansson) under /api/v1/, for
 * connections whose certificate has CP_ROLE_ADMIN.  httpd.c routes each
 * request here; this module does the rest, transport-free.
 *
 *   GET  /api/v1/agents[?selector=k=v,...]  200 {"agents":[AGENT...]}  (uid order)
 *   GET  /api/v1/agents/UID                  200 AGENT  (UID: 32 hex digits or UUID form)
 *   POST /api/v1/policies                    {"yaml":B64,"signature":B64}
 *                                            -> 201 {"serial":N,"signer":"...","sha256":"hex"}
 *   GET  /api/v1/policies                    200 {"policies":[POLICY...]}  (serial order)
 *   GET  /api/v1/policies/N                  200 POLICY + {"yaml":B64,"signature":B64}
 *   POST /api/v1/assignments                 {"serial":N,"selector":"k=v,..."}
 *                                            -> 201 {"id":N,"serial":N,"selector":"..."}
 *   GET  /api/v1/assignments                 200 {"assignments":[ASSIGNMENT...]} (oldest first)
 *   POST /api/v1/rollouts                    {"serial":N,"selector":"k=v,...","stages":"1,10%,...",
 *                                             "bake_ms":N,"max_failures":N,"report_timeout_ms":N}
 *                                            (the last three optional: 300000, 0, 600000)
 *                                            -> 201 ROLLOUT; 404 no such serial; 409 no agent
 *                                            matches, or agents shared with a running or halted
 *                                            rollout (named in "error")
 *   GET  /api/v1/rollouts                    200 {"rollouts":[ROLLOUT...]}  (id order)
 *   GET  /api/v1/rollouts/ID                 200 ROLLOUT + {"member_count":N,"covers_all":bool,
 *                                             "not_covered":N,"failure_count":N,
 *                                             "failures_counted":N (since the last resume),
 *                                             "stage_status":[{"stage","spec","size","new_members",
 *                                               "sent","applied","succeeded","failed","status"}...],
 *                                             "failures":[{"uid","stage","at","reason"}...],
 *                                             "members":[{"uid","rank","stage","sent_at",
 *                                               "applied_at","failed_at","succeeded_at","reason"}...]}
 *                                            (members and failures: the first API_ROLLOUT_MAX_LISTED
 *                                             in rank order)
 *   POST /api/v1/rollouts/ID/halt|resume|abort  (no body, or {}) -> 200 ROLLOUT;
 *                                            409 + "state" when its state does not allow it
 *   (without api_set_rollouts() the rollout routes answer 503)
 *   GET  /api/v1/audit[/...]                 the audit log's routes (auditapi.h), through
 *                                            api_set_audit(); every other method: 405
 *
 *   AGENT      {"uid":"32 hex","uuid":"8-4-4-4-12",
 *               "certificate":{"subject","sans","serial","fingerprint"},
 *               "description":{"identifying":{..},"non_identifying":{..}} | null,
 *               "first_seen":ms,"last_seen":ms,"capabilities":N,"sequence_num":N,
 *               "healthy":true|false|null,"health":{ComponentHealth} | null,
 *               "effective_config_hash":"hex"|null,"applied_serial":N (0 unknown),
 *               "assigned_serial":N (what the newest matching assignment names, 0 none),
 *               "remote_config_status":"UNSET"|"APPLIED"|"APPLYING"|"FAILED",
 *               "remote_config_hash":"hex"|null,"last_error":"..."|null,
 *               "disconnected":bool}
 *   POLICY     {"serial":N,"sha256":"hex of the YAML","size":bytes,"signer":"...",
 *               "uploaded_by":"admin subject","uploaded_at":ms}
 *   ASSIGNMENT {"id":N,"selector":"k=v,...","serial":N,"assigned_by":"...","assigned_at":ms}
 *   ROLLOUT    {"id":N,"serial":N,"selector":"...","stages":"...","bake_ms":N,"max_failures":N,
 *               "report_timeout_ms":N,"state":"running"|"halted"|"aborted"|"completed",
 *               "stage":N (0-based),"stage_started_at":ms,"failures_base":N,"created_by":"...",
 *               "created_at":ms,"updated_at":ms,"reason":"..."|null,"assignment_id":N|null}
 *   B64 is standard base64 (RFC 4648 section 4; padding optional, no whitespace);
 *   ms are Unix milliseconds.  Bodies with unknown fields are refused.  The
 *   query's selector is percent-decoded (RFC 3986: '+' is a plus sign).
 *
 * Errors: {"error":"one line"}, and
 *   400 body not a JSON object, unknown or missing field, bad base64, bad
 *       selector, bad agent id or serial, query on a path that takes none;
 *   403 the identity is not CP_ROLE_ADMIN (httpd.c refuses it first; this
 *       module refuses it again);
 *   404 no such path, agent or policy serial (an assignment to an unknown serial);
 *   405 wrong method (+ "allow":"GET, POST");
 *   409 the policy's serial is not greater than every stored one (+ "max_serial":N);
 *       a rollout that matches no agent or shares agents with a running or
 *       halted one; a rollout action its state does not allow (+ "state");
 *   413 body over API_MAX_BODY, YAML over POLICY_MAX_SIZE or signature over
 *       SIGNING_MAX_SIG_BYTES once decoded;
 *   422 a well-formed request for a policy that is refused: its signature does
 *       not verify (+ "reason": signing_status_name(), error
 *       "policy signature: untrusted: ..."), or it is not a valid policy
 *       (+ "errors":["policy.yaml:LINE:COL: ...", ...]), or it has no serial;
 *   500 the store failed (or no trust store is loaded);
 *   503 the rollout routes on a server without a rollouts engine.
 * An upload is checked in this order: signature (signing_verify_policy
 * against --policy-trust: codeSigning or SIGNING_POLICY_EKU_OID), then
 * policy_parse (hz ceiling API_POLICY_MAX_HZ: agents check their own), then
 * serial > 0 and new.  It is stored with signer = signing_verify's
 * description of the signer and uploaded_by = the admin's subject.
 * Library-like: never logs; a reason for the log line comes back in log
 * (every change and every refusal).
 */
#ifndef VIGIL_API_H
#define VIGIL_API_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cpident.h"
#include "signing.h"
#include "store.h"

#define API_MAX_BODY (4u << 20) /* a policy upload is at most ~1.7 MiB of base64 */

/* A rollout's status lists at most this many members and failures (the counts cover all). */
#define API_ROLLOUT_MAX_LISTED 10000

/*
 * The hz ceiling uploads are validated against: generous, since the server
 * does not know each host's perf_event_max_sample_rate; vigild validates
 * again with its own.
 */
#define API_POLICY_MAX_HZ 100000

struct api;

struct api_reply {
	int http_status;
	char *body;		/* JSON, malloc'ed; caller frees */
	size_t len;
	char log[256];		/* non-empty: what the caller should log */
	const char *content_type; /* static; NULL: application/json (the audit routes send others) */
};

/*
 * Replies, for api.c and the routes it hands on (auditapi.c): obj
 * (consumed) serialized into ret with status; -ENOMEM when jansson cannot.
 */
int api_reply_json(struct api_reply *ret, int status, json_t *obj);

/*
 * {"error": text} with status, plus extra's members (consumed, may be
 * NULL).  The same text goes to ret->log, prefixed with who asked.
 */
int api_reply_error(struct api_reply *ret, const struct cp_identity *id, int status, json_t *extra,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* st and trust are borrowed; api_set_trust() swaps the trust on SIGHUP. */
int api_new(struct store *st, const struct signing_trust *policy_trust, struct api **ret);
void api_set_trust(struct api *a, const struct signing_trust *policy_trust);

/*
 * Called after each change the OpAMP side must see (a policy stored, an
 * assignment made), before api_handle returns: vigil-cp points it at
 * whatever makes the OpAMP server forget what it cached (e.g.
 * opampsrv_invalidate).  fn NULL: nothing is called.  arg is borrowed.
 */
typedef void (*api_change_fn)(void *arg);
void api_set_on_change(struct api *a, api_change_fn fn, void *arg);

/*
 * The staged rollouts engine the /api/v1/rollouts routes act through
 * (borrowed; vigil-cp's, which also feeds the OpAMP side).  NULL: those
 * routes answer 503.
 */
struct rollout;
void api_set_rollouts(struct api *a, struct rollout *ro);

/* Accepts NULL. */
void api_free(struct api *a);

/*
 * One request: method ("GET", "POST"), path ("/api/v1/agents/..."), query
 * (after '?', or NULL), body (may be NULL when len is 0).  0 with *ret
 * (every refusal is a reply; free ret->body), or -ENOMEM (-EINVAL for NULL
 * arguments) with *ret empty: the caller answers 500.  now is Unix ms.
 */
int api_handle(struct api *a, const struct cp_identity *id, const char *method, const char *path,
	       const char *query, const uint8_t *body, size_t len, int64_t now,
	       struct api_reply *ret);

/* ---------------------------------------------------------------------------
 * The audit log's hooks (cpaudit.c, auditapi.c): api.c stays free of the
 * log and of how it is kept.
 */

/*
 * Every request that would change something (every method but GET),
 * refused or not, after it was handled: who, what, with which body, and
 * the HTTP status it got (500 when api_handle itself failed).  Valid
 * during the call only.
 */
struct api_action {
	const struct cp_identity *id;	/* as api_handle got it (may be NULL) */
	const char *method, *path, *query; /* query may be NULL */
	const uint8_t *body;
	size_t len;
	int http_status;
	int64_t now;			/* Unix ms */
};
typedef void (*api_action_fn)(const struct api_action *act, void *arg);
/* fn NULL: nothing is called.  arg is borrowed. */
void api_set_on_action(struct api *a, api_action_fn fn, void *arg);

/*
 * The routes under /api/v1/audit (GET only, admin only: api_handle checks
 * both first): rest is what follows "/api/v1/audit" ("", "/checkpoint",
 * ...), query what follows '?' or NULL.  Same return convention as
 * api_handle.  Without a handler the routes answer 404.
 */
typedef int (*api_audit_fn)(void *arg, const struct cp_identity *id, const char *rest, const char *query,
			    struct api_reply *ret);
void api_set_audit(struct api *a, api_audit_fn fn, void *arg);

#endif
