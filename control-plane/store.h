/*
 * store.h - vigil-cp's durable state behind one narrow interface: agents,
 * signed policies and the assignments of policies to selectors.  A backend
 * is one file implementing struct store_ops (store_int.h); store_open()
 * picks it by the URL's scheme: "sqlite:PATH" (store_sqlite.c) or
 * "postgresql://..." / "postgres://..." (store_pg.c, libpq).
 *
 * Every call is one transaction: a process killed at any moment leaves
 * either the whole change or none of it.  Times are Unix milliseconds.
 * Library-like: returns 0 or -errno, never logs; store_open() and the
 * backends put a one-line reason in err where they take one.
 * Ownership: strings and buffers in a struct filled by the store are
 * malloc'ed and released with the matching *_release(); callbacks get
 * structs that are valid only during the call.
 * Runs in vigil-cp (unprivileged, single-threaded, event loop).
 */
#ifndef VIGIL_STORE_H
#define VIGIL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpident.h"

#define STORE_UID_LEN 16
/* Serials remembered as FAILED per agent; past it the oldest is forgotten. */
#define STORE_MAX_FAILED 16

struct store;

/* What an agent last said about itself, and who its certificate says it is. */
struct store_agent {
	uint8_t uid[STORE_UID_LEN];
	/* The certificate it last connected with (struct cp_identity's fields). */
	char *cert_subject, *cert_sans, *cert_serial, *cert_fingerprint;
	/*
	 * agent_description as JSON:
	 *   {"identifying":{"host.name":"h1",...},"non_identifying":{"env":"prod",...}}
	 * (values rendered as strings), NULL when never reported.
	 */
	char *description_json;
	int64_t first_seen, last_seen;
	uint64_t capabilities;
	uint64_t last_sequence_num;
	int healthy;			/* 1, 0, or -1 when never reported */
	char *health_json;		/* ComponentHealth as JSON, or NULL */
	uint8_t effective_hash[32];	/* SHA-256 of the reported effective config */
	bool has_effective_hash;
	int64_t applied_serial;		/* serial of the policy it runs, 0 unknown */
	int remote_config_status;	/* RemoteConfigStatuses value, 0 UNSET */
	uint8_t remote_config_hash[32];	/* last_remote_config_hash it reported */
	bool has_remote_config_hash;
	char *last_error;		/* from remote_config_status or health, or NULL */
	bool disconnected;		/* sent agent_disconnect since it last spoke */
	/*
	 * Serials that FAILED on this agent, oldest first: never offered to it
	 * again (opamp-spec#397: APPLIED(A), APPLYING(B), FAILED(B), APPLIED(A)
	 * must not make the server send B again).
	 */
	int64_t failed_serials[STORE_MAX_FAILED];
	size_t n_failed;
};

/* Whether serial FAILED on a. */
bool store_agent_failed(const struct store_agent *a, int64_t serial);

/* Remember that serial FAILED on a (no-op when known; the oldest goes past STORE_MAX_FAILED). */
void store_agent_add_failed(struct store_agent *a, int64_t serial);

/* A signed policy as uploaded: verified by vigil-cp before it is stored. */
struct store_policy {
	int64_t serial;			/* > 0, unique, increasing with each upload */
	uint8_t *yaml;
	size_t yaml_len;
	uint8_t *sig;			/* DER CMS, detached */
	size_t sig_len;
	char *signer;			/* the signing certificate, as signing_verify says it */
	char *uploaded_by;		/* the admin certificate's subject */
	int64_t uploaded_at;
};

/* "Agents that match selector run policy serial."  The newest matching wins. */
struct store_assignment {
	int64_t id;			/* increasing: the order of assignment */
	char *selector;			/* "k=v,..." as selector.h parses it */
	int64_t serial;
	char *assigned_by;		/* the admin certificate's subject */
	int64_t assigned_at;
};

/*
 * Open (creating it and migrating its schema when needed) the store named
 * by url: "sqlite:PATH", or a libpq URL "postgresql://[user@]host[:port]/db[?...]"
 * (or "postgres://...").  0 and *ret_store, or -errno with a reason in err:
 * -EINVAL unknown scheme or empty path, -EPROTO the database's schema is
 * newer than this program, -EIO and others from the backend.
 */
int store_open(const char *url, struct store **ret_store, char *err, size_t errlen);

/*
 * url as it may be logged: a sqlite URL whole; of a postgresql URL only
 * scheme, host, port and database (no user, password or parameters).
 * Writes a NUL-terminated string into buf.
 */
void store_url_display(const char *url, char *buf, size_t len);

/* Accepts NULL. */
void store_close(struct store *st);

/* The schema version of an open store (for tests and --version). */
int store_schema_version(struct store *st);

/* 0 and *ret (release with store_agent_release), -ENOENT, or -errno. */
int store_agent_get(struct store *st, const uint8_t uid[STORE_UID_LEN], struct store_agent *ret);

/*
 * Insert or replace the agent with a->uid (first_seen kept when it exists).
 * -EPERM, and nothing written, when the stored row has another
 * cert_subject (an instance_uid belongs to its first certificate, even
 * when two servers write it at once).
 */
int store_agent_put(struct store *st, const struct store_agent *a);

/* Call cb for each agent, in uid order; a non-zero return from cb stops and is returned. */
typedef int (*store_agent_cb)(const struct store_agent *a, void *arg);
int store_agent_list(struct store *st, store_agent_cb cb, void *arg);

void store_agent_release(struct store_agent *a);

/*
 * Add a policy.  -EEXIST when p->serial is not greater than every serial
 * already stored (serials only move forward), or -errno.
 */
int store_policy_add(struct store *st, const struct store_policy *p);

/* 0 and *ret (release with store_policy_release), -ENOENT, or -errno. */
int store_policy_get(struct store *st, int64_t serial, struct store_policy *ret);

/* The highest serial stored, 0 when none. */
int store_policy_max_serial(struct store *st, int64_t *ret_serial);

/* Each policy in serial order (yaml and sig included). */
typedef int (*store_policy_cb)(const struct store_policy *p, void *arg);
int store_policy_list(struct store *st, store_policy_cb cb, void *arg);

void store_policy_release(struct store_policy *p);

/* Record an assignment; -ENOENT when no policy has that serial. */
int store_assign(struct store *st, const char *selector, int64_t serial, const char *assigned_by,
		 int64_t at, int64_t *ret_id);

/* Each assignment, oldest first. */
typedef int (*store_assignment_cb)(const struct store_assignment *a, void *arg);
int store_assignment_list(struct store *st, store_assignment_cb cb, void *arg);

/*
 * A counter that moves with every change to what agents are offered
 * (policies, assignments, rollouts), in the same transaction: a vigil-cp
 * that sees it move drops what it cached.  Several servers on one
 * database see each other's changes this way.
 */
int store_generation(struct store *st, int64_t *ret_gen);
/* ---------------------------------------------------------------------------
 * The audit log (cpaudit.c): append-only records, index 0, 1, 2, ... with
 * no gap, each the exact bytes a Merkle leaf hashes.  A record is written
 * durably (fsynced / synchronous_commit on) before the append returns, so
 * a checkpoint signed over it survives a crash.
 */

#define STORE_MAX_AUDIT_RECORD (64u << 10)	/* bytes of one record (-E2BIG) */
#define STORE_MAX_AUDIT_LIST 10000		/* records of one store_audit_list call */
#define STORE_MAX_AUDIT_BATCH 1000		/* records of one store_audit_append */

struct store_audit_record {
	int64_t idx;			/* >= 0 */
	int64_t at;			/* Unix ms it was appended */
	const uint8_t *record;		/* valid during the callback only */
	size_t len;
};

typedef int (*store_audit_cb)(const struct store_audit_record *r, void *arg);

/*
 * Builds the record of index idx: 0 with *ret_record (malloc'ed; the store
 * frees it), *ret_len and *ret_at; 1 when it has no more records (not on
 * its first call); or -errno, which aborts the append and is returned.
 */
typedef int (*store_audit_build_fn)(int64_t idx, void *arg, uint8_t **ret_record, size_t *ret_len,
				    int64_t *ret_at);

/*
 * Append one record in one transaction that no other append to the same
 * store runs beside, in this process or another (SQLite: BEGIN IMMEDIATE;
 * PostgreSQL: an advisory transaction lock).  Inside it: seen(r, arg) for
 * every record with idx >= have in index order (what other servers
 * appended since the caller last looked: it extends its own tree with
 * them), then build(n, ...) for the new record at n = the log's size, which
 * is inserted, then build(n + 1, ...) and so on until build returns 1 or
 * STORE_MAX_AUDIT_BATCH records were written: one commit (one fsync) for
 * all of them.  seen's records are committed whatever happens next.
 * 0 and *ret_idx (may be NULL) = the last index written; -ESTALE when the log holds fewer than
 * have records (it was cut short under the caller), -EBADMSG a gap in the
 * indexes, -E2BIG a record over STORE_MAX_AUDIT_RECORD, or -errno.
 */
int store_audit_append(struct store *st, int64_t have, store_audit_cb seen, store_audit_build_fn build,
		       void *arg, int64_t *ret_idx);

/*
 * cb for the records with since <= idx, in index order, at most limit of
 * them (1..STORE_MAX_AUDIT_LIST, -EINVAL otherwise); a non-zero return
 * from cb stops and is returned.  The indexes are as stored: a caller that
 * checks the log checks them too.
 */
int store_audit_list(struct store *st, int64_t since, int64_t limit, store_audit_cb cb, void *arg);

/* The number of records (max(idx) + 1; 0 when empty). */
int store_audit_size(struct store *st, int64_t *ret_size);

/* ---------------------------------------------------------------------------
 * Staged rollouts: the rows rollout.c (the engine) decides on.  Every
 * decision is in these rows, so any vigil-cp on the store, restarted or
 * not, carries a rollout on from where it is.
 */

enum store_rollout_state {
	STORE_ROLLOUT_RUNNING = 1,	/* its current stage's members are offered the policy */
	STORE_ROLLOUT_HALTED,		/* by itself or an admin: only members already sent it keep it */
	STORE_ROLLOUT_ABORTED,		/* final: nobody is offered it */
	STORE_ROLLOUT_COMPLETED,	/* final: its last stage completed */
};

/* "running", "halted", "aborted", "completed", or "unknown". */
const char *store_rollout_state_name(int state);

#define STORE_ROLLOUT_OVERLAP_SHOWN 8

struct store_rollout {
	int64_t id;			/* increasing; assigned by store_rollout_create */
	int64_t serial;			/* the policy rolled out */
	char *selector;			/* as the administrator wrote it */
	char *stages;			/* rollplan.h's text */
	int64_t bake_ms, max_failures, report_timeout_ms;
	int state;			/* enum store_rollout_state */
	int stage;			/* the current (last started) stage, 0-based */
	int64_t stage_started_at;
	int64_t failures_base;		/* failures before the last resume (not counted against max) */
	char *created_by;		/* the admin certificate's subject */
	int64_t created_at, updated_at;
	char *reason;			/* why it halted or was aborted, or NULL */
	int64_t assignment_id;		/* the assignment its completion recorded, 0 none */
};

/* One agent of a rollout.  Times are 0 when it has not happened. */
struct store_rollout_member {
	uint8_t uid[STORE_UID_LEN];
	int64_t rank;			/* 0-based place in the rollout's order (rollplan.h) */
	int stage;			/* the first stage covering it; the stage count when none */
	int64_t sent_at;		/* first reply that carried the policy */
	int64_t applied_at;		/* it reported APPLIED for the serial */
	int64_t failed_at;		/* counted as a failure, for reason */
	int64_t succeeded_at;		/* applied and no failure for the bake time */
	char *reason;
	/* Set by a store_rollout_update_fn on a member whose succeeded_at or
	   failed_at (+ reason) it set: those are written back. */
	bool dirty;
};

/* Agents that a new rollout shares with running or halted ones. */
struct store_rollout_overlap {
	size_t n;			/* how many, in all */
	uint8_t uid[STORE_ROLLOUT_OVERLAP_SHOWN][STORE_UID_LEN];
	int64_t rollout_id[STORE_ROLLOUT_OVERLAP_SHOWN];
};

/*
 * Order the n new members of rollout id: set each one's rank and stage
 * (the array may be permuted).  0 or -errno (which the create returns).
 */
typedef int (*store_rollout_rank_fn)(void *arg, int64_t id, struct store_rollout_member *m, size_t n);

/*
 * Create rollout r (its id, state, stage and times but created_at are
 * ignored: it starts running at stage 0, stage_started_at = created_at)
 * with the n members whose uids are in m, ranked by rank_fn.  One
 * transaction that also bumps the generation.  0 and *ret_id, -ENOENT no
 * policy r->serial, -EBUSY some members are in a running or halted
 * rollout (*ret_overlap says which), -EINVAL n == 0, or -errno.
 */
int store_rollout_create(struct store *st, const struct store_rollout *r, struct store_rollout_member *m,
			 size_t n, store_rollout_rank_fn rank_fn, void *rank_arg, int64_t *ret_id,
			 struct store_rollout_overlap *ret_overlap);

/* 0 and *ret (release with store_rollout_release), -ENOENT, or -errno. */
int store_rollout_get(struct store *st, int64_t id, struct store_rollout *ret);

/* Each rollout in id order, or only those in state (0: all). */
typedef int (*store_rollout_cb)(const struct store_rollout *r, void *arg);
int store_rollout_list(struct store *st, int state, store_rollout_cb cb, void *arg);

/* Each member of rollout id, in rank order. */
typedef int (*store_rollout_member_cb)(const struct store_rollout_member *m, void *arg);
int store_rollout_members(struct store *st, int64_t id, store_rollout_member_cb cb, void *arg);

void store_rollout_release(struct store_rollout *r);
void store_rollout_member_release(struct store_rollout_member *m);

/* What a store_rollout_update_fn changed, for the store to write back. */
struct store_rollout_change {
	bool rollout;			/* write back state, stage, stage_started_at, failures_base,
					   updated_at and reason */
	bool offers;			/* who is offered what changed: bump the generation */
	bool assign;			/* record the assignment r->selector -> r->serial (at
					   r->updated_at, by "rollout ID"), and its id in the row */
};

/*
 * Decide on rollout r and its n members (rank order) under the rollout's
 * lock; fill *ret_change (zeroed on entry).  A negative return rolls back
 * and is returned.
 */
typedef int (*store_rollout_update_fn)(void *arg, struct store_rollout *r, struct store_rollout_member *m,
				       size_t n, struct store_rollout_change *ret_change);

/*
 * One transaction holding rollout id's row locked (PostgreSQL: SELECT ...
 * FOR UPDATE, SKIP LOCKED when nowait; SQLite: its write transaction), so
 * that exactly one server decides on a rollout at a time: load it and
 * (with_members) its members, call fn, write back what it changed.
 * 0, -ENOENT no such rollout, -EAGAIN (nowait) another server holds it,
 * fn's error, or -errno.
 */
int store_rollout_update(struct store *st, int64_t id, bool nowait, bool with_members,
			 store_rollout_update_fn fn, void *arg);

/* An agent's report, as it bears on the rollouts it is a member of. */
enum store_rollout_mark {
	/* APPLIED for serial: applied_at, once. */
	STORE_MARK_APPLIED = 1,
	/* FAILED for serial: a failure, unless it already failed or succeeded. */
	STORE_MARK_FAILED,
	/* Unhealthy: a failure where it applied and has not yet succeeded. */
	STORE_MARK_UNHEALTHY,
	/* A tenant newly unreachable: a failure where it was sent the policy
	   and has not yet succeeded. */
	STORE_MARK_TENANT,
};

/*
 * Record what agent uid reported (kind; serial for APPLIED and FAILED)
 * on its members rows of running or halted rollouts (of that serial).
 * reason is required for the failures.  0 (also when no row was changed)
 * or -errno.
 */
int store_rollout_mark(struct store *st, const uint8_t uid[STORE_UID_LEN], int kind, int64_t serial,
		       int64_t at, const char *reason);

/* The first reply that carried rollout id's policy to uid: sent_at, once. */
int store_rollout_sent(struct store *st, int64_t id, const uint8_t uid[STORE_UID_LEN], int64_t at);

/*
 * Each (agent, rollout, serial) offered now: members of running rollouts
 * whose stage started, members of halted ones that were sent the policy,
 * and members reached by a completed rollout that recorded no assignment
 * (its last stage did not cover everyone).  sent_at 0 when not sent.
 */
typedef int (*store_offer_cb)(void *arg, const uint8_t uid[STORE_UID_LEN], int64_t rollout_id,
			      int64_t serial, int64_t sent_at);
int store_rollout_offers(struct store *st, store_offer_cb cb, void *arg);

#endif
