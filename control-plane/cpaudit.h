/*
 * cpaudit.h - vigil-cp's tamper-evident audit log: every admin action and
 * every fleet event as one record in the store (store_audit_*), the
 * records hashed as an RFC 6962 Merkle tree (merkle.h) kept in memory in
 * step with the store, signed checkpoints of it (checkpoint.h) on demand,
 * and each record written to the log too (journald with a stable
 * MESSAGE_ID when its socket exists, else a line on stderr).
 *
 * A record is canonical JSON (jansson, sorted keys, compact, UTF-8 with
 * non-ASCII escaped, integers only), so the same record always hashes the
 * same:
 *
 *   {"i":INDEX,"kind":KIND,"prev":"hex of the root over records 0..i-1",
 *    "t":UNIX_MS, ...the kind's own fields}
 *
 *   admin           "subject","fingerprint" (the admin certificate), "action"
 *                   ("POST /api/v1/policies"), "query" (or null), "args" (the
 *                   JSON body, every "yaml"/"signature" string replaced by
 *                   "sha256:HEX" of its decoded bytes; null when the body is
 *                   not a JSON object; {"sha256":..,"bytes":N} when it is too
 *                   big or holds a float), "status" (HTTP), "request_sha256"
 *                   (SHA-256 of METHOD 0x00 PATH 0x00 QUERY 0x00 BODY, hex)
 *   agent events    "uid" (32 hex), "subject", "fingerprint", and as the kind
 *                   has them: "serial", "healthy", "detail"
 *   rollout events  "rollout", "stage", "serial", "detail"
 *
 * KIND is "admin" or cpevent_name().  With several vigil-cp processes on
 * one PostgreSQL, each append first takes in the records the others
 * appended (store_audit_append), so all of them keep one tree.
 *
 * Runs in vigil-cp (unprivileged, single-threaded).  Unlike the library
 * modules it writes log lines: that is half of its job.  Returns 0 or
 * -errno; messages for the caller go in err where taken.
 */
#ifndef VIGIL_CPAUDIT_H
#define VIGIL_CPAUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "api.h"
#include "cpevent.h"
#include "merkle.h"
#include "store.h"

/* journald's MESSAGE_ID of every audit record (made once with systemd-id128 new). */
#define CPAUDIT_MESSAGE_ID "20ea308f67f8411fb34f5d2d80553713"
#define CPAUDIT_JOURNAL_SOCKET "/run/systemd/journal/socket"
/* An admin action's args bigger than this are recorded by hash. */
#define CPAUDIT_MAX_ARGS (16u << 10)
/* A text field from a peer (an agent's error, a subject, a query) is cut there. */
#define CPAUDIT_MAX_TEXT 4096
/* Records waiting for one flush (one transaction); past it the queue flushes at once. */
#define CPAUDIT_MAX_PENDING 4096

struct cpaudit_config {
	const char *origin;		/* the checkpoints' origin and key name (checkpoint.h) */
	EVP_PKEY *key;			/* Ed25519 private key (borrowed), or NULL: no checkpoints */
	const char *journal_socket;	/* NULL: CPAUDIT_JOURNAL_SOCKET; "": never journald */
	int log_records;		/* 0: records are not written to the log at all (tests, bench) */
};

struct cpaudit;

/*
 * Load every record of st into the tree (st borrowed; it must outlive the
 * log).  -EBADMSG (err names the index) when the stored indexes do not
 * run 0, 1, 2, ... (a row was deleted), -EINVAL a bad
 * origin or key, or the store's error.
 */
int cpaudit_new(struct store *st, const struct cpaudit_config *cfg, struct cpaudit **ret, char *err,
		size_t errlen);
/* Accepts NULL. */
void cpaudit_free(struct cpaudit *au);

/*
 * Append one record of kind (a static string) with fields (a JSON object,
 * a reference is taken; without i, prev, t or kind) at time now, at once
 * (after whatever is queued).  0 and *ret_idx (may be NULL), or the
 * store's error (-ESTALE: the stored log is shorter than ours).
 */
int cpaudit_append(struct cpaudit *au, const char *kind, json_t *fields, int64_t now, int64_t *ret_idx);

/* A cpevent_fn: the event as a record (queued; see cpaudit_set_event_base); a failure is logged. */
void cpaudit_on_event(const struct cpevent *ev, void *arg);

/* An api_action_fn: the admin action as a record; a failure is logged. */
void cpaudit_on_action(const struct api_action *act, void *arg);

/*
 * With an event base, the records of the events and actions the loop
 * handles in one turn are queued and written together when it next turns
 * (one transaction, one fsync: 10k agents coming at once cost a few
 * commits, not 10k); without one (the default) each is written at once.
 * base is borrowed; NULL: back to writing at once (call before the base
 * is freed).
 */
struct event_base;
int cpaudit_set_event_base(struct cpaudit *au, struct event_base *base);

/* Write what is queued now; a failure (logged, the records with it) is returned. */
int cpaudit_flush(struct cpaudit *au);

/*
 * Write what is queued, then take in what other servers appended to the
 * store since we last looked.
 * Each such record must follow our tree (its i its index, its prev our
 * root), else -EBADMSG (logged): it was put in by hand, and the tree stays
 * where it was.
 */
int cpaudit_sync(struct cpaudit *au);

/* The number of records in the tree (after the last sync or append). */
uint64_t cpaudit_size(const struct cpaudit *au);
const struct merkle *cpaudit_tree(const struct cpaudit *au);
const char *cpaudit_origin(const struct cpaudit *au);
struct store *cpaudit_store(const struct cpaudit *au);
/* Whether it has a key to sign checkpoints with. */
int cpaudit_signs(const struct cpaudit *au);

/* A signed checkpoint of the current tree (*ret malloc'ed); -ENOKEY without a key. */
int cpaudit_checkpoint(struct cpaudit *au, char **ret, size_t *ret_len);

/* SHA-256(METHOD 0x00 PATH 0x00 QUERY 0x00 BODY) as 64 hex digits (query NULL: empty). */
int cpaudit_request_hash(const char *method, const char *path, const char *query, const uint8_t *body,
			 size_t len, char out[65]);

#endif
