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

#endif
