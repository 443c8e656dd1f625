/*
 * store_int.h - what a store backend implements, for store.c's dispatch
 * only (callers use store.h).  A backend is one file: a struct store_ops
 * with its URL scheme and one function per store.h call, each with that
 * call's contract (every call one transaction, 0 or -errno, never logs),
 * and a struct that starts with struct store.  Adding PostgreSQL means
 * store_pg.c with store_pg_ops, and one line in store.c's table.
 */
#ifndef VIGIL_STORE_INT_H
#define VIGIL_STORE_INT_H

#include "store.h"

/* Limits every backend enforces (-E2BIG), so that no caller can grow a row without bound. */
#define STORE_MAX_TEXT (256u << 10)	/* one text column: description, health, names */
#define STORE_MAX_BLOB (2u << 20)	/* policy YAML or its signature */

/*
 * The agents table's columns in the order every backend binds and reads
 * them, and what an upsert of a known uid sets (all but uid and
 * first_seen); the schemas are the backends' own.
 */
#define STORE_AGENT_COLUMNS                                                                     \
	"uid, cert_subject, cert_sans, cert_serial, cert_fingerprint, description, first_seen, " \
	"last_seen, capabilities, last_sequence_num, healthy, health, effective_hash, "         \
	"applied_serial, remote_config_status, remote_config_hash, last_error, disconnected, "      \
	"failed_serials"
#define STORE_AGENT_UPSERT_SET                                                                 \
	"ON CONFLICT (uid) DO UPDATE SET cert_subject = excluded.cert_subject, "                \
	"cert_sans = excluded.cert_sans, cert_serial = excluded.cert_serial, "                  \
	"cert_fingerprint = excluded.cert_fingerprint, description = excluded.description, "    \
	"last_seen = excluded.last_seen, capabilities = excluded.capabilities, "                \
	"last_sequence_num = excluded.last_sequence_num, healthy = excluded.healthy, "          \
	"health = excluded.health, effective_hash = excluded.effective_hash, "                  \
	"applied_serial = excluded.applied_serial, "                                            \
	"remote_config_status = excluded.remote_config_status, "                                \
	"remote_config_hash = excluded.remote_config_hash, last_error = excluded.last_error, "  \
	"disconnected = excluded.disconnected, failed_serials = excluded.failed_serials "         \
	STORE_AGENT_UPSERT_WHERE

/*
 * An instance_uid stays bound to the certificate subject it was first
 * stored with, in the statement that writes: each vigil-cp checks the
 * binding before it writes, but two servers on one database could both
 * find a new uid unbound and write it for two certificates.  Nothing is
 * updated when the subjects differ (agent_put returns -EPERM).
 */
#define STORE_AGENT_UPSERT_WHERE \
	"WHERE agents.cert_subject IS NULL OR agents.cert_subject = excluded.cert_subject"

struct store_ops {
	const char *scheme;	/* "sqlite": URLs "sqlite:PATH" */
	const char *alias;	/* another spelling of scheme ("postgres"), or NULL */
	/* rest: what follows "scheme:"; never empty. */
	int (*open)(const char *rest, struct store **ret, char *err, size_t errlen);
	void (*close)(struct store *st);
	int (*schema_version)(struct store *st);
	int (*agent_get)(struct store *st, const uint8_t uid[STORE_UID_LEN], struct store_agent *ret);
	int (*agent_put)(struct store *st, const struct store_agent *a);
	int (*agent_list)(struct store *st, store_agent_cb cb, void *arg);
	int (*policy_add)(struct store *st, const struct store_policy *p);
	int (*policy_get)(struct store *st, int64_t serial, struct store_policy *ret);
	int (*policy_max_serial)(struct store *st, int64_t *ret_serial);
	int (*policy_list)(struct store *st, store_policy_cb cb, void *arg);
	int (*assign)(struct store *st, const char *selector, int64_t serial, const char *assigned_by,
		      int64_t at, int64_t *ret_id);
	int (*assignment_list)(struct store *st, store_assignment_cb cb, void *arg);
	int (*generation)(struct store *st, int64_t *ret_gen);
	/* The audit log (store.h's contract; limit and record size checked by store.c and again here). */
	int (*audit_append)(struct store *st, int64_t have, store_audit_cb seen, store_audit_build_fn build,
			    void *arg, int64_t *ret_idx);
	int (*audit_list)(struct store *st, int64_t since, int64_t limit, store_audit_cb cb, void *arg);
	int (*audit_size)(struct store *st, int64_t *ret_size);
	/* Staged rollouts (store.h's store_rollout_*). */
	int (*rollout_create)(struct store *st, const struct store_rollout *r, struct store_rollout_member *m,
			      size_t n, store_rollout_rank_fn rank_fn, void *rank_arg, int64_t *ret_id,
			      struct store_rollout_overlap *ret_overlap);
	int (*rollout_get)(struct store *st, int64_t id, struct store_rollout *ret);
	int (*rollout_list)(struct store *st, int state, store_rollout_cb cb, void *arg);
	int (*rollout_members)(struct store *st, int64_t id, store_rollout_member_cb cb, void *arg);
	int (*rollout_update)(struct store *st, int64_t id, bool nowait, bool with_members,
			      store_rollout_update_fn fn, void *arg);
	int (*rollout_mark)(struct store *st, const uint8_t uid[STORE_UID_LEN], int kind, int64_t serial,
			    int64_t at, const char *reason);
	int (*rollout_sent)(struct store *st, int64_t id, const uint8_t uid[STORE_UID_LEN], int64_t at);
	int (*rollout_offers)(struct store *st, store_offer_cb cb, void *arg);
};

/*
 * What a backend runs in the transaction of every change the OpAMP side
 * must see (a policy stored, an assignment made, a rollout's offers
 * changed): every vigil-cp on the database notices within its tick.
 */
#define STORE_GENERATION_BUMP "UPDATE vigil_generation SET gen = gen + 1 WHERE id = 1"

/*
 * The failed_serials column: the serials in decimal, comma-separated,
 * oldest first ("" for none).  Parsing is lenient (what does not parse is
 * dropped: the column is only ever written by store_failed_format).
 */
#define STORE_FAILED_TEXT (STORE_MAX_FAILED * 21 + 1)
void store_failed_format(const struct store_agent *a, char buf[STORE_FAILED_TEXT]);
void store_failed_parse(const char *text, struct store_agent *a);

/* The head of every backend's own struct. */
struct store {
	const struct store_ops *ops;
};

extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_pg_ops;

/* The schema version each backend migrates to (its number of migrations), for the tests. */
extern const int store_sqlite_schema_latest;
extern const int store_pg_schema_latest;

/*
 * A rollout's members copied out of a backend's listing (reason strdup'ed),
 * for store_rollout_update()'s callback: store_member_push is a
 * store_rollout_member_cb with a struct store_member_vec as its arg.
 */
struct store_member_vec {
	struct store_rollout_member *v;
	size_t n, cap;
};
int store_member_push(const struct store_rollout_member *m, void *arg);
void store_member_vec_release(struct store_member_vec *vec);

/* Whether the agent's and the policy's variable fields are within the limits above. */
int store_check_agent(const struct store_agent *a);
int store_check_policy(const struct store_policy *p);

/* ---------------------------------------------------------------------------
 * Staged rollouts: what both backends share. */

/* The rollouts table's columns in the order every backend binds and reads them. */
#define STORE_ROLLOUT_COLUMNS                                                                   \
	"id, serial, selector, stages, bake_ms, max_failures, report_timeout_ms, state, stage, " \
	"stage_started_at, failures_base, created_by, created_at, updated_at, reason, assignment_id"
#define STORE_MEMBER_COLUMNS "uid, rank, stage, sent_at, applied_at, failed_at, succeeded_at, reason"

/* state as stored (a TEXT column), and back: 0 for a name not known. */
int store_rollout_state_parse(const char *name);

/*
 * Whether any of the n new members is among the na members of running or
 * halted rollouts (active[i] in rollout active_id[i]): fills *o (first
 * STORE_ROLLOUT_OVERLAP_SHOWN in new-member order, and the count).  0 none,
 * -EBUSY some, -ENOMEM.
 */
int store_rollout_overlap_check(const struct store_rollout_member *m, size_t n,
				const uint8_t (*active)[STORE_UID_LEN], const int64_t *active_id, size_t na,
				struct store_rollout_overlap *o);

/*
 * A member's outcome as the engine decided it, written so that it cannot
 * undo a report written meanwhile (PostgreSQL's reports do not wait for
 * the rollout's lock): succeeded only where not failed, failed only where
 * neither.  SQLite serializes writers anyway; the statement is the same.
 */
#define STORE_MEMBER_OUTCOME_SET(P3, P4, P5)                                                      \
	"succeeded_at = CASE WHEN failed_at IS NULL THEN coalesce(succeeded_at, " P3 ") "          \
	"ELSE succeeded_at END, "                                                                  \
	"failed_at = CASE WHEN succeeded_at IS NULL THEN coalesce(failed_at, " P4 ") "             \
	"ELSE failed_at END, "                                                                     \
	"reason = CASE WHEN succeeded_at IS NULL AND failed_at IS NULL AND " P4 " IS NOT NULL "    \
	"THEN " P5 " ELSE reason END "

/* store.h's store_rollout_offers, in SQL both backends share. */
#define STORE_OFFERS_SQL                                                                          \
	"SELECT m.uid, r.id, r.serial, m.sent_at FROM rollout_members m JOIN rollouts r ON r.id = m.rollout_id " \
	"WHERE (r.state = 'running' AND m.stage <= r.stage) "                                      \
	"OR (r.state = 'halted' AND m.sent_at IS NOT NULL) "                                       \
	"OR (r.state = 'completed' AND r.assignment_id IS NULL AND m.stage <= r.stage)"

#endif
