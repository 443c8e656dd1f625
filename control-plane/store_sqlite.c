/*
 * store_sqlite.c - the embedded store backend: one SQLite file ("sqlite:PATH"),
 * in WAL mode so that the admin API's reads never wait for the OpAMP
 * server's writes, with versioned schema migrations (PRAGMA user_version;
 * a newer schema than this program knows is refused with -EPROTO).
 *
 * Every store call is one transaction: a single statement where that is
 * enough (an agent's upsert), BEGIN IMMEDIATE ... COMMIT where a check
 * and a write must be atomic (serials only move forward; an assignment
 * names a stored policy).  Durability: synchronous=NORMAL for agent
 * reports (WAL keeps the file consistent after kill -9 and power loss;
 * a power loss may forget the last reports, which agents repeat on the
 * ReportFullState they then get), FULL for what an administrator did
 * (policies and assignments are fsynced before the call returns).
 * Statements on the hot path are prepared once; the lists prepare their
 * own so that a callback may call the store again.
 *
 * Runs in vigil-cp (unprivileged, single-threaded).  Never logs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store.h"
#include "store_int.h"

#define SQ_BUSY_TIMEOUT_MS 5000
#define SQ_APPLICATION_ID 0x5647434c /* "VGCL": a vigil-cp database, not any SQLite file */

/*
 * The schema, one migration per version: migration i takes a database of
 * version i to version i + 1.  Never edit a released step; append one.
 */
static const char *const sq_migrations[] = {
	/* 1: agents, policies, assignments. */
	"CREATE TABLE agents ("
	" uid BLOB PRIMARY KEY CHECK (length(uid) = 16),"
	" cert_subject TEXT, cert_sans TEXT, cert_serial TEXT, cert_fingerprint TEXT,"
	" description TEXT,"
	" first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
	" capabilities INTEGER NOT NULL DEFAULT 0,"
	" last_sequence_num INTEGER NOT NULL DEFAULT 0,"
	" healthy INTEGER NOT NULL DEFAULT -1, health TEXT,"
	" effective_hash BLOB,"
	" applied_serial INTEGER NOT NULL DEFAULT 0,"
	" remote_config_status INTEGER NOT NULL DEFAULT 0, remote_config_hash BLOB,"
	" last_error TEXT,"
	" disconnected INTEGER NOT NULL DEFAULT 0"
	") WITHOUT ROWID;"
	"CREATE TABLE policies ("
	" serial INTEGER PRIMARY KEY CHECK (serial > 0),"
	" yaml BLOB NOT NULL, sig BLOB NOT NULL,"
	" signer TEXT, uploaded_by TEXT, uploaded_at INTEGER NOT NULL"
	");"
	"CREATE TABLE assignments ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" selector TEXT NOT NULL,"
	" serial INTEGER NOT NULL REFERENCES policies(serial),"
	" assigned_by TEXT, assigned_at INTEGER NOT NULL"
	");",
	/*
	 * 2: a policy's assignments without a scan.  No index on the agents'
	 * last_seen: nothing reads by it, and each poll would move the agent's
	 * entry (two thirds of a steady poll's writes).
	 */
	"CREATE INDEX assignments_serial ON assignments(serial);",
	/*
	 * 3: the serials that FAILED on each agent (never offered to it again),
	 * and the generation counter that tells every vigil-cp on the database
	 * that what agents are offered has changed.
	 */
	"ALTER TABLE agents ADD COLUMN failed_serials TEXT;"
	"CREATE TABLE vigil_generation (id INTEGER PRIMARY KEY CHECK (id = 1), gen INTEGER NOT NULL);"
	"INSERT INTO vigil_generation (id, gen) VALUES (1, 1);",
	/* 4: the audit log (cpaudit.c): append-only, the index is the Merkle leaf's. */
	"CREATE TABLE audit ("
	" idx INTEGER PRIMARY KEY CHECK (idx >= 0),"
	" at INTEGER NOT NULL,"
	" record BLOB NOT NULL"
	");",
	/*
	 * 5: staged rollouts (rollout.c): a rollout and its members, fixed at
	 * start.  Member times are NULL until they happen.  The uid index
	 * serves agent reports (store_rollout_mark) and the overlap check.
	 */
	"CREATE TABLE rollouts ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" serial INTEGER NOT NULL REFERENCES policies(serial),"
	" selector TEXT NOT NULL, stages TEXT NOT NULL,"
	" bake_ms INTEGER NOT NULL, max_failures INTEGER NOT NULL, report_timeout_ms INTEGER NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN ('running', 'halted', 'aborted', 'completed')),"
	" stage INTEGER NOT NULL DEFAULT 0, stage_started_at INTEGER NOT NULL,"
	" failures_base INTEGER NOT NULL DEFAULT 0,"
	" created_by TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
	" reason TEXT, assignment_id INTEGER REFERENCES assignments(id)"
	");"
	"CREATE INDEX rollouts_state ON rollouts(state);"
	"CREATE TABLE rollout_members ("
	" rollout_id INTEGER NOT NULL REFERENCES rollouts(id),"
	" uid BLOB NOT NULL CHECK (length(uid) = 16),"
	" rank INTEGER NOT NULL, stage INTEGER NOT NULL,"
	" sent_at INTEGER, applied_at INTEGER, failed_at INTEGER, reason TEXT, succeeded_at INTEGER,"
	" PRIMARY KEY (rollout_id, uid)"
	") WITHOUT ROWID;"
	"CREATE INDEX rollout_members_uid ON rollout_members(uid);",
};
#define SQ_SCHEMA_VERSION ((int)(sizeof(sq_migrations) / sizeof(sq_migrations[0])))
const int store_sqlite_schema_latest = SQ_SCHEMA_VERSION;

enum sq_stmt {
	SQ_BEGIN,
	SQ_COMMIT,
	SQ_ROLLBACK,
	SQ_AGENT_GET,
	SQ_AGENT_PUT,
	SQ_POLICY_GET,
	SQ_POLICY_MAX,
	SQ_POLICY_INSERT,
	SQ_POLICY_EXISTS,
	SQ_ASSIGN_INSERT,
	SQ_GEN_GET,
	SQ_GEN_BUMP,
	SQ_N_STMTS
};

static const char *const sq_sql[SQ_N_STMTS] = {
	[SQ_BEGIN] = "BEGIN IMMEDIATE",
	[SQ_COMMIT] = "COMMIT",
	[SQ_ROLLBACK] = "ROLLBACK",
	[SQ_AGENT_GET] = "SELECT " STORE_AGENT_COLUMNS " FROM agents WHERE uid = ?1",
	[SQ_AGENT_PUT] = "INSERT INTO agents (" STORE_AGENT_COLUMNS ") VALUES "
			 "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19) "
			 STORE_AGENT_UPSERT_SET,
	[SQ_POLICY_GET] = "SELECT serial, yaml, sig, signer, uploaded_by, uploaded_at FROM policies "
			  "WHERE serial = ?1",
	[SQ_POLICY_MAX] = "SELECT coalesce(max(serial), 0) FROM policies",
	[SQ_POLICY_INSERT] = "INSERT INTO policies (serial, yaml, sig, signer, uploaded_by, uploaded_at) "
			     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[SQ_POLICY_EXISTS] = "SELECT 1 FROM policies WHERE serial = ?1",
	[SQ_ASSIGN_INSERT] = "INSERT INTO assignments (selector, serial, assigned_by, assigned_at) "
			     "VALUES (?1, ?2, ?3, ?4)",
	[SQ_GEN_GET] = "SELECT gen FROM vigil_generation WHERE id = 1",
	[SQ_GEN_BUMP] = STORE_GENERATION_BUMP,
};

struct store_sqlite {
	struct store base;	/* first: store.c sees only this */
	sqlite3 *db;
	sqlite3_stmt *stmt[SQ_N_STMTS];
	int version;
};

static struct store_sqlite *sq_of(struct store *st)
{
	return (struct store_sqlite *)st;
}

/* SQLite's result codes as errno values, for store.h's callers. */
static int sq_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_TOOBIG:
		return -E2BIG;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	default:
		return -EIO;
	}
}

/* A cached statement, reset and with its bindings cleared, ready to bind. */
static sqlite3_stmt *sq_stmt(struct store_sqlite *s, enum sq_stmt which)
{
	sqlite3_stmt *stmt = s->stmt[which];

	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return stmt;
}

/* Run a cached statement that returns no row. */
static int sq_exec_stmt(struct store_sqlite *s, enum sq_stmt which)
{
	sqlite3_stmt *stmt = sq_stmt(s, which);
	int rc = sqlite3_step(stmt);

	sqlite3_reset(stmt);
	return rc == SQLITE_DONE ? 0 : sq_errno(rc);
}

static int sq_begin(struct store_sqlite *s)
{
	return sq_exec_stmt(s, SQ_BEGIN);
}

/* Commit, or roll back what was begun when r is an error; returns r or the commit's error. */
static int sq_end(struct store_sqlite *s, int r)
{
	if (r == 0) {
		r = sq_exec_stmt(s, SQ_COMMIT);
		if (r == 0)
			return 0;
	}
	if (!sqlite3_get_autocommit(s->db))
		sq_exec_stmt(s, SQ_ROLLBACK);
	return r;
}

static int sq_bind_text(sqlite3_stmt *stmt, int i, const char *text)
{
	return text ? sqlite3_bind_text(stmt, i, text, -1, SQLITE_STATIC) : sqlite3_bind_null(stmt, i);
}

static int sq_bind_blob(sqlite3_stmt *stmt, int i, const void *p, size_t len, bool present)
{
	if (!present)
		return sqlite3_bind_null(stmt, i);
	/* A zero-length blob bound from a NULL pointer would read as SQL NULL. */
	return sqlite3_bind_blob64(stmt, i, len ? p : "", len, SQLITE_STATIC);
}

/* A text column as a malloc'ed string (NULL for SQL NULL); -ENOMEM. */
static int sq_col_text(sqlite3_stmt *stmt, int i, char **ret)
{
	const unsigned char *t = sqlite3_column_text(stmt, i);

	*ret = NULL;
	if (!t)
		return sqlite3_errcode(sqlite3_db_handle(stmt)) == SQLITE_NOMEM ? -ENOMEM : 0;
	*ret = strdup((const char *)t);
	return *ret ? 0 : -ENOMEM;
}

/* A blob column of exactly n bytes into out; false when NULL or of another length. */
static bool sq_col_fixed(sqlite3_stmt *stmt, int i, uint8_t *out, size_t n)
{
	const void *b = sqlite3_column_blob(stmt, i);

	if (!b || (size_t)sqlite3_column_bytes(stmt, i) != n)
		return false;
	memcpy(out, b, n);
	return true;
}

static int sq_col_blob(sqlite3_stmt *stmt, int i, uint8_t **ret, size_t *ret_len)
{
	const void *b = sqlite3_column_blob(stmt, i);
	size_t n = (size_t)sqlite3_column_bytes(stmt, i);

	*ret = malloc(n ? n : 1);
	if (!*ret)
		return -ENOMEM;
	if (n)
		memcpy(*ret, b, n);
	*ret_len = n;
	return 0;
}

/* ---------------------------------------------------------------------------
 * Opening and migrating. */

static int sq_pragma_int(sqlite3 *db, const char *sql, int *ret)
{
	sqlite3_stmt *stmt;
	int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);

	if (rc != SQLITE_OK)
		return sq_errno(rc);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -EIO : sq_errno(rc);
}

static int sq_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		snprintf(err, errlen, "%.120s: %s", sql, sqlite3_errmsg(db));
	return sq_errno(rc);
}

/*
 * Bring the schema to SQ_SCHEMA_VERSION in one transaction: a migration cut
 * short leaves the database at its old version, never half-way.
 */
static int sq_migrate(struct store_sqlite *s, const char *path, char *err, size_t errlen)
{
	int version = 0, app_id = 0, r;

	r = sq_exec(s->db, "BEGIN IMMEDIATE", err, errlen);
	if (r)
		return r;
	if ((r = sq_pragma_int(s->db, "PRAGMA user_version", &version)) ||
	    (r = sq_pragma_int(s->db, "PRAGMA application_id", &app_id))) {
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(s->db));
		goto out;
	}
	if (version > 0 && app_id != SQ_APPLICATION_ID) {
		snprintf(err, errlen, "%s: not a vigil-cp database (application_id %d)", path, app_id);
		r = -EPROTO;
		goto out;
	}
	if (version > SQ_SCHEMA_VERSION || version < 0) {
		snprintf(err, errlen,
			 "%s: schema version %d is newer than this vigil-cp's (%d): run a newer vigil-cp",
			 path, version, SQ_SCHEMA_VERSION);
		r = -EPROTO;
		goto out;
	}
	for (int v = version; v < SQ_SCHEMA_VERSION; v++) {
		char sql[64];

		r = sq_exec(s->db, sq_migrations[v], err, errlen);
		if (r)
			goto out;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		r = sq_exec(s->db, sql, err, errlen);
		if (r)
			goto out;
	}
	if (version < SQ_SCHEMA_VERSION) {
		char sql[64];

		snprintf(sql, sizeof(sql), "PRAGMA application_id = %d", SQ_APPLICATION_ID);
		r = sq_exec(s->db, sql, err, errlen);
	}
	s->version = SQ_SCHEMA_VERSION;
out:
	if (r) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	return sq_exec(s->db, "COMMIT", err, errlen);
}

static void sq_close(struct store *st)
{
	struct store_sqlite *s = sq_of(st);

	for (int i = 0; i < SQ_N_STMTS; i++)
		sqlite3_finalize(s->stmt[i]);
	/* Closing the last connection checkpoints the WAL into the database. */
	sqlite3_close(s->db);
	free(s);
}

static int sq_open(const char *path, struct store **ret, char *err, size_t errlen)
{
	struct store_sqlite *s = calloc(1, sizeof(*s));
	char mode[16] = "";
	int rc, r;

	if (!s)
		return -ENOMEM;
	s->base.ops = &store_sqlite_ops;
	/* No URI names: PATH is a file name, whatever it looks like. */
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		r = sq_errno(rc);
		goto fail;
	}
	sqlite3_busy_timeout(s->db, SQ_BUSY_TIMEOUT_MS);
	sqlite3_limit(s->db, SQLITE_LIMIT_LENGTH, (int)STORE_MAX_BLOB + 1024);
	{
		sqlite3_stmt *stmt;

		rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL);
		if (rc == SQLITE_OK) {
			rc = sqlite3_step(stmt);
			if (rc == SQLITE_ROW)
				snprintf(mode, sizeof(mode), "%s", (const char *)sqlite3_column_text(stmt, 0));
			sqlite3_finalize(stmt);
		}
		if (rc != SQLITE_ROW) {
			snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(s->db));
			r = sq_errno(rc);
			goto fail;
		}
		if (strcmp(mode, "wal") != 0) {
			snprintf(err, errlen, "%s: cannot use WAL mode (journal mode stays %s)", path, mode);
			r = -EIO;
			goto fail;
		}
	}
	if ((r = sq_exec(s->db, "PRAGMA synchronous = NORMAL", err, errlen)) ||
	    (r = sq_exec(s->db, "PRAGMA foreign_keys = ON", err, errlen)))
		goto fail;
	r = sq_migrate(s, path, err, errlen);
	if (r)
		goto fail;
	for (int i = 0; i < SQ_N_STMTS; i++) {
		rc = sqlite3_prepare_v3(s->db, sq_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i], NULL);
		if (rc != SQLITE_OK) {
			snprintf(err, errlen, "%s: preparing statement %d: %s", path, i, sqlite3_errmsg(s->db));
			r = sq_errno(rc);
			goto fail;
		}
	}
	*ret = &s->base;
	return 0;
fail:
	sq_close(&s->base);
	return r ? r : -EIO;
}

static int sq_schema_version(struct store *st)
{
	return sq_of(st)->version;
}

/* ---------------------------------------------------------------------------
 * Agents. */

static int sq_read_agent(sqlite3_stmt *stmt, struct store_agent *a)
{
	int r;

	memset(a, 0, sizeof(*a));
	if (!sq_col_fixed(stmt, 0, a->uid, STORE_UID_LEN))
		return -EBADMSG;
	if ((r = sq_col_text(stmt, 1, &a->cert_subject)) || (r = sq_col_text(stmt, 2, &a->cert_sans)) ||
	    (r = sq_col_text(stmt, 3, &a->cert_serial)) || (r = sq_col_text(stmt, 4, &a->cert_fingerprint)) ||
	    (r = sq_col_text(stmt, 5, &a->description_json)) || (r = sq_col_text(stmt, 11, &a->health_json)) ||
	    (r = sq_col_text(stmt, 16, &a->last_error))) {
		store_agent_release(a);
		return r;
	}
	a->first_seen = sqlite3_column_int64(stmt, 6);
	a->last_seen = sqlite3_column_int64(stmt, 7);
	a->capabilities = (uint64_t)sqlite3_column_int64(stmt, 8);
	a->last_sequence_num = (uint64_t)sqlite3_column_int64(stmt, 9);
	a->healthy = sqlite3_column_int(stmt, 10);
	if (a->healthy < -1 || a->healthy > 1)
		a->healthy = -1;
	a->has_effective_hash = sq_col_fixed(stmt, 12, a->effective_hash, sizeof(a->effective_hash));
	a->applied_serial = sqlite3_column_int64(stmt, 13);
	a->remote_config_status = sqlite3_column_int(stmt, 14);
	a->has_remote_config_hash =
		sq_col_fixed(stmt, 15, a->remote_config_hash, sizeof(a->remote_config_hash));
	a->disconnected = sqlite3_column_int(stmt, 17) != 0;
	store_failed_parse((const char *)sqlite3_column_text(stmt, 18), a);
	return 0;
}

static int sq_agent_get(struct store *st, const uint8_t uid[STORE_UID_LEN], struct store_agent *ret)
{
	struct store_sqlite *s = sq_of(st);
	sqlite3_stmt *stmt = sq_stmt(s, SQ_AGENT_GET);
	struct store_agent a;
	int rc, r;

	rc = sqlite3_bind_blob(stmt, 1, uid, STORE_UID_LEN, SQLITE_STATIC);
	if (rc != SQLITE_OK)
		return sq_errno(rc);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		r = -ENOENT;
	} else if (rc != SQLITE_ROW) {
		r = sq_errno(rc);
	} else {
		r = sq_read_agent(stmt, &a);
		if (r == 0)
			*ret = a;
	}
	sqlite3_reset(stmt);
	return r;
}

static int sq_agent_put(struct store *st, const struct store_agent *a)
{
	struct store_sqlite *s = sq_of(st);
	sqlite3_stmt *stmt = sq_stmt(s, SQ_AGENT_PUT);
	char failed[STORE_FAILED_TEXT];
	int rc = SQLITE_OK;

	store_failed_format(a, failed);
	/* One statement: SQLite makes it its own transaction. */
	if ((rc = sqlite3_bind_blob(stmt, 1, a->uid, STORE_UID_LEN, SQLITE_STATIC)) ||
	    (rc = sq_bind_text(stmt, 2, a->cert_subject)) || (rc = sq_bind_text(stmt, 3, a->cert_sans)) ||
	    (rc = sq_bind_text(stmt, 4, a->cert_serial)) || (rc = sq_bind_text(stmt, 5, a->cert_fingerprint)) ||
	    (rc = sq_bind_text(stmt, 6, a->description_json)) ||
	    (rc = sqlite3_bind_int64(stmt, 7, a->first_seen)) ||
	    (rc = sqlite3_bind_int64(stmt, 8, a->last_seen)) ||
	    (rc = sqlite3_bind_int64(stmt, 9, (sqlite3_int64)a->capabilities)) ||
	    (rc = sqlite3_bind_int64(stmt, 10, (sqlite3_int64)a->last_sequence_num)) ||
	    (rc = sqlite3_bind_int(stmt, 11, a->healthy)) || (rc = sq_bind_text(stmt, 12, a->health_json)) ||
	    (rc = sq_bind_blob(stmt, 13, a->effective_hash, sizeof(a->effective_hash), a->has_effective_hash)) ||
	    (rc = sqlite3_bind_int64(stmt, 14, a->applied_serial)) ||
	    (rc = sqlite3_bind_int(stmt, 15, a->remote_config_status)) ||
	    (rc = sq_bind_blob(stmt, 16, a->remote_config_hash, sizeof(a->remote_config_hash),
			       a->has_remote_config_hash)) ||
	    (rc = sq_bind_text(stmt, 17, a->last_error)) || (rc = sqlite3_bind_int(stmt, 18, a->disconnected)) ||
	    (rc = sq_bind_text(stmt, 19, failed[0] ? failed : NULL)))
		return sq_errno(rc);
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE)
		return sq_errno(rc);
	/* The upsert's WHERE refused another certificate's subject. */
	return sqlite3_changes(s->db) == 0 ? -EPERM : 0;
}

static int sq_agent_list(struct store *st, store_agent_cb cb, void *arg)
{
	struct store_sqlite *s = sq_of(st);
	sqlite3_stmt *stmt;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(s->db, "SELECT " STORE_AGENT_COLUMNS " FROM agents ORDER BY uid", -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return sq_errno(rc);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct store_agent a;

		r = sq_read_agent(stmt, &a);
		if (r)
			break;
		r = cb(&a, arg);
		store_agent_release(&a);
		if (r)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_errno(rc);
	sqlite3_finalize(stmt);
	return r;
}

/* ---------------------------------------------------------------------------
 * Policies and assignments. */

static int sq_read_policy(sqlite3_stmt *stmt, struct store_policy *p)
{
	int r;

	memset(p, 0, sizeof(*p));
	p->serial = sqlite3_column_int64(stmt, 0);
	if ((r = sq_col_blob(stmt, 1, &p->yaml, &p->yaml_len)) || (r = sq_col_blob(stmt, 2, &p->sig, &p->sig_len)) ||
	    (r = sq_col_text(stmt, 3, &p->signer)) || (r = sq_col_text(stmt, 4, &p->uploaded_by))) {
		store_policy_release(p);
		return r;
	}
	p->uploaded_at = sqlite3_column_int64(stmt, 5);
	return 0;
}

static int sq_max_serial_in_txn(struct store_sqlite *s, int64_t *ret_serial)
{
	sqlite3_stmt *stmt = sq_stmt(s, SQ_POLICY_MAX);
	int rc = sqlite3_step(stmt);

	if (rc == SQLITE_ROW)
		*ret_serial = sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	return rc == SQLITE_ROW ? 0 : sq_errno(rc) ? sq_errno(rc) : -EIO;
}

/* What an administrator did is fsynced before the call returns. */
static void sq_synchronous(struct store_sqlite *s, bool full)
{
	sqlite3_exec(s->db, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL", NULL, NULL,
		     NULL);
}

static int sq_policy_add(struct store *st, const struct store_policy *p)
{
	struct store_sqlite *s = sq_of(st);
	sqlite3_stmt *stmt;
	int64_t max = 0;
	int rc, r;

	sq_synchronous(s, true);
	r = sq_begin(s);
	if (r)
		goto out;
	r = sq_max_serial_in_txn(s, &max);
	if (r == 0 && p->serial <= max)
		r = -EEXIST;
	if (r == 0) {
		stmt = sq_stmt(s, SQ_POLICY_INSERT);
		if ((rc = sqlite3_bind_int64(stmt, 1, p->serial)) ||
		    (rc = sq_bind_blob(stmt, 2, p->yaml, p->yaml_len, true)) ||
		    (rc = sq_bind_blob(stmt, 3, p->sig, p->sig_len, true)) ||
		    (rc = sq_bind_text(stmt, 4, p->signer)) || (rc = sq_bind_text(stmt, 5, p->uploaded_by)) ||
		    (rc = sqlite3_bind_int64(stmt, 6, p->uploaded_at)))
			r = sq_errno(rc);
		else
			r = (rc = sqlite3_step(stmt)) == SQLITE_DONE ? 0 : sq_errno(rc);
		sqlite3_reset(stmt);
	}
	if (r == 0)
		r = sq_exec_stmt(s, SQ_GEN_BUMP);
	r = sq_end(s, r);
out:
	sq_synchronous(s, false);
	return r;
}

static int sq_policy_get(struct store *st, int64_t serial, struct store_policy *ret)
{
	struct store_sqlite *s = sq_of(st);
	sqlite3_stmt *stmt = sq_stmt(s, SQ_POLICY_GET);
	struct store_policy p;
	int rc, r;

	rc = sqlite3_bind_int64(stmt, 1, serial);
	if (rc != SQLITE_OK)
		return sq_errno(rc);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		r = -ENOENT;
	} else if (rc != SQLITE_ROW) {
		r = sq_errno(rc);
	} else {
		r = sq_read_policy(stmt, &p);
		if (r == 0)
			*ret = p;
	}
	sqlite3_reset(stmt);
	return r;
}

static int sq_policy_max_serial(struct store *st, int64_t *ret_serial)
{
	return sq_max_serial_in_txn(sq_of(st), ret_serial);
}

static int sq_policy_list(struct store *st, store_policy_cb cb, void *arg)
{
	struct store_sqlite *s = sq_of(st);
	sqlite3_stmt *stmt;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(s->db,
				"SELECT serial, yaml, sig, signer, uploaded_by, uploaded_at FROM policies "
				"ORDER BY serial",
				-1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return sq_errno(rc);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct store_policy p;

		r = sq_read_policy(stmt, &p);
		if (r)
			break;
		r = cb(&p, arg);
		store_policy_release(&p);
		if (r)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_errno(rc);
	sqlite3_finalize(stmt);
	return r;
}

static int sq_assign(struct store *st, const char *selector, int64_t serial, const char *assigned_by,
		     int64_t at, int64_t *ret_id)
{
	struct store_sqlite *s = sq_of(st);
	sqlite3_stmt *stmt;
	int64_t id = 0;
	int rc, r;

	sq_synchronous(s, true);
	r = sq_begin(s);
	if (r)
		goto out;
	stmt = sq_stmt(s, SQ_POLICY_EXISTS);
	rc = sqlite3_bind_int64(stmt, 1, serial);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(stmt);
	r = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sq_errno(rc);
	sqlite3_reset(stmt);
	if (r == 0) {
		stmt = sq_stmt(s, SQ_ASSIGN_INSERT);
		if ((rc = sq_bind_text(stmt, 1, selector)) || (rc = sqlite3_bind_int64(stmt, 2, serial)) ||
		    (rc = sq_bind_text(stmt, 3, assigned_by)) || (rc = sqlite3_bind_int64(stmt, 4, at)))
			r = sq_errno(rc);
		else
			r = (rc = sqlite3_step(stmt)) == SQLITE_DONE ? 0 : sq_errno(rc);
		sqlite3_reset(stmt);
		id = sqlite3_last_insert_rowid(s->db);
	}
	if (r == 0)
		r = sq_exec_stmt(s, SQ_GEN_BUMP);
	r = sq_end(s, r);
	if (r == 0 && ret_id)
		*ret_id = id;
out:
	sq_synchronous(s, false);
	return r;
}

static int sq_assignment_list(struct store *st, store_assignment_cb cb, void *arg)
{
	struct store_sqlite *s = sq_of(st);
	sqlite3_stmt *stmt;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(s->db,
				"SELECT id, selector, serial, assigned_by, assigned_at FROM assignments ORDER BY id",
				-1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return sq_errno(rc);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct store_assignment a = {
			.id = sqlite3_column_int64(stmt, 0),
			.serial = sqlite3_column_int64(stmt, 2),
			.assigned_at = sqlite3_column_int64(stmt, 4),
		};

		if ((r = sq_col_text(stmt, 1, &a.selector)) == 0 && (r = sq_col_text(stmt, 3, &a.assigned_by)) == 0 &&
		    !a.selector)
			r = -EBADMSG;
		if (r == 0)
			r = cb(&a, arg);
		free(a.selector);
		free(a.assigned_by);
		if (r)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_errno(rc);
	sqlite3_finalize(stmt);
	return r;
}

static int sq_generation(struct store *st, int64_t *ret_gen)
{
	struct store_sqlite *s = sq_of(st);
	sqlite3_stmt *stmt = sq_stmt(s, SQ_GEN_GET);
	int rc = sqlite3_step(stmt);

	if (rc == SQLITE_ROW)
		*ret_gen = sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -EBADMSG : sq_errno(rc);
}

/* ---------------------------------------------------------------------------
 * The audit log.  An append is BEGIN IMMEDIATE ... COMMIT, which takes the
 * database's write lock first: appends from several processes on one file
 * run one after the other, and each sees the ones before it.  Durable
 * before it returns (synchronous FULL), like what an administrator did.
 * The statements are prepared per call: this section shares nothing with
 * the cached ones above.
 */

/* The rows with since <= idx, at most limit, each to cb; checks nothing but what SQLite gives. */
static int sq_audit_rows(struct store_sqlite *s, int64_t since, int64_t limit, store_audit_cb cb, void *arg)
{
	sqlite3_stmt *stmt;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(s->db, "SELECT idx, at, record FROM audit WHERE idx >= ?1 ORDER BY idx LIMIT ?2",
				-1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return sq_errno(rc);
	if ((rc = sqlite3_bind_int64(stmt, 1, since)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 2, limit)) != SQLITE_OK) {
		sqlite3_finalize(stmt);
		return sq_errno(rc);
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct store_audit_record a = {
			.idx = sqlite3_column_int64(stmt, 0),
			.at = sqlite3_column_int64(stmt, 1),
			.record = sqlite3_column_blob(stmt, 2),
			.len = (size_t)sqlite3_column_bytes(stmt, 2),
		};

		if (!a.record)
			a.record = (const uint8_t *)"";
		r = cb(&a, arg);
		if (r)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_errno(rc);
	sqlite3_finalize(stmt);
	return r;
}

static int sq_audit_size_in_txn(struct store_sqlite *s, int64_t *ret_size)
{
	sqlite3_stmt *stmt;
	int rc;

	rc = sqlite3_prepare_v2(s->db, "SELECT coalesce(max(idx), -1) + 1 FROM audit", -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return sq_errno(rc);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*ret_size = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return rc == SQLITE_ROW ? 0 : sq_errno(rc) ? sq_errno(rc) : -EIO;
}

struct sq_audit_seen {
	int64_t next;
	store_audit_cb cb;
	void *arg;
};

/* Passes the other servers' records on, refusing a gap. */
static int sq_audit_seen(const struct store_audit_record *a, void *arg)
{
	struct sq_audit_seen *sn = arg;

	if (a->idx != sn->next)
		return -EBADMSG;
	sn->next++;
	return sn->cb(a, sn->arg);
}

static int sq_audit_append(struct store *st, int64_t have, store_audit_cb seen, store_audit_build_fn build,
			   void *arg, int64_t *ret_idx)
{
	struct store_sqlite *s = sq_of(st);
	struct sq_audit_seen sn = { .next = have, .cb = seen, .arg = arg };
	uint8_t *rec = NULL;
	size_t len = 0;
	int64_t n = 0, at = 0;
	sqlite3_stmt *stmt;
	int rc, r;

	sq_synchronous(s, true);
	r = sq_begin(s);
	if (r)
		goto out;
	r = sq_audit_size_in_txn(s, &n);
	if (r == 0 && n < have)
		r = -ESTALE;
	while (r == 0 && sn.next < n)
		r = sq_audit_rows(s, sn.next, STORE_MAX_AUDIT_LIST, sq_audit_seen, &sn);
	/* build's records, one after the other, until it has no more (1). */
	for (int k = 0; r == 0 && k < STORE_MAX_AUDIT_BATCH; k++, n++) {
		r = build(n, arg, &rec, &len, &at);
		if (r == 1 && k > 0) {
			r = 0;
			break;
		}
		if (r == 0 && len > STORE_MAX_AUDIT_RECORD)
			r = -E2BIG;
		else if (r == 1)
			r = -EINVAL; /* not even one record */
		if (r == 0) {
			rc = sqlite3_prepare_v2(s->db, "INSERT INTO audit (idx, at, record) VALUES (?1, ?2, ?3)", -1,
						&stmt, NULL);
			if (rc == SQLITE_OK) {
				if ((rc = sqlite3_bind_int64(stmt, 1, n)) == SQLITE_OK &&
				    (rc = sqlite3_bind_int64(stmt, 2, at)) == SQLITE_OK &&
				    (rc = sq_bind_blob(stmt, 3, rec, len, true)) == SQLITE_OK)
					rc = sqlite3_step(stmt);
				sqlite3_finalize(stmt);
			}
			r = rc == SQLITE_DONE ? 0 : sq_errno(rc);
		}
		free(rec);
		rec = NULL;
	}
	n--; /* the last index written */
	r = sq_end(s, r);
	if (r == 0 && ret_idx)
		*ret_idx = n;
out:
	sq_synchronous(s, false);
	return r;
}

static int sq_audit_list(struct store *st, int64_t since, int64_t limit, store_audit_cb cb, void *arg)
{
	return sq_audit_rows(sq_of(st), since, limit, cb, arg);
}

static int sq_audit_size(struct store *st, int64_t *ret_size)
{
	return sq_audit_size_in_txn(sq_of(st), ret_size);
}

/* ---------------------------------------------------------------------------
 * Staged rollouts.  Not on the per-message path (reports reach it only on
 * a transition), so statements are prepared per call. */

static int sq_prep(struct store_sqlite *s, const char *sql, sqlite3_stmt **ret)
{
	return sq_errno(sqlite3_prepare_v2(s->db, sql, -1, ret, NULL));
}

static int64_t sq_col_time(sqlite3_stmt *stmt, int i)
{
	return sqlite3_column_type(stmt, i) == SQLITE_NULL ? 0 : sqlite3_column_int64(stmt, i);
}

/* A time, 0 meaning "not yet", as SQL NULL. */
static int sq_bind_time(sqlite3_stmt *stmt, int i, int64_t t)
{
	return t ? sqlite3_bind_int64(stmt, i, t) : sqlite3_bind_null(stmt, i);
}

/* Whatever moves who is offered what bumps the generation every server polls (store.h). */
static int sq_bump_generation(struct store_sqlite *s)
{
	return sq_exec_stmt(s, SQ_GEN_BUMP);
}

static int sq_read_rollout(sqlite3_stmt *stmt, struct store_rollout *r)
{
	char *state = NULL;
	int e;

	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(stmt, 0);
	r->serial = sqlite3_column_int64(stmt, 1);
	r->bake_ms = sqlite3_column_int64(stmt, 4);
	r->max_failures = sqlite3_column_int64(stmt, 5);
	r->report_timeout_ms = sqlite3_column_int64(stmt, 6);
	r->stage = sqlite3_column_int(stmt, 8);
	r->stage_started_at = sqlite3_column_int64(stmt, 9);
	r->failures_base = sqlite3_column_int64(stmt, 10);
	r->created_at = sqlite3_column_int64(stmt, 12);
	r->updated_at = sqlite3_column_int64(stmt, 13);
	r->assignment_id = sq_col_time(stmt, 15);
	if ((e = sq_col_text(stmt, 2, &r->selector)) || (e = sq_col_text(stmt, 3, &r->stages)) ||
	    (e = sq_col_text(stmt, 7, &state)) || (e = sq_col_text(stmt, 11, &r->created_by)) ||
	    (e = sq_col_text(stmt, 14, &r->reason))) {
		free(state);
		store_rollout_release(r);
		return e;
	}
	r->state = store_rollout_state_parse(state);
	free(state);
	if (!r->selector || !r->stages || !r->state) {
		store_rollout_release(r);
		return -EBADMSG;
	}
	return 0;
}

static int sq_read_member(sqlite3_stmt *stmt, struct store_rollout_member *m)
{
	memset(m, 0, sizeof(*m));
	if (!sq_col_fixed(stmt, 0, m->uid, STORE_UID_LEN))
		return -EBADMSG;
	m->rank = sqlite3_column_int64(stmt, 1);
	m->stage = sqlite3_column_int(stmt, 2);
	m->sent_at = sq_col_time(stmt, 3);
	m->applied_at = sq_col_time(stmt, 4);
	m->failed_at = sq_col_time(stmt, 5);
	m->succeeded_at = sq_col_time(stmt, 6);
	return sq_col_text(stmt, 7, &m->reason);
}

/* The members of running or halted rollouts, for the overlap check (in a transaction). */
static int sq_active_members(struct store_sqlite *s, uint8_t (**ret_uids)[STORE_UID_LEN], int64_t **ret_ids,
			     size_t *ret_n)
{
	uint8_t(*uids)[STORE_UID_LEN] = NULL;
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *stmt;
	int rc, r;

	r = sq_prep(s, "SELECT m.uid, m.rollout_id FROM rollout_members m JOIN rollouts r ON r.id = m.rollout_id "
		       "WHERE r.state IN ('running', 'halted')", &stmt);
	if (r)
		return r;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			void *nu = realloc(uids, ncap * sizeof(*uids)), *ni;

			if (!nu) {
				r = -ENOMEM;
				break;
			}
			uids = nu;
			ni = realloc(ids, ncap * sizeof(*ids));
			if (!ni) {
				r = -ENOMEM;
				break;
			}
			ids = ni;
			cap = ncap;
		}
		if (!sq_col_fixed(stmt, 0, uids[n], STORE_UID_LEN)) {
			r = -EBADMSG;
			break;
		}
		ids[n++] = sqlite3_column_int64(stmt, 1);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_errno(rc);
	sqlite3_finalize(stmt);
	if (r) {
		free(uids);
		free(ids);
		return r;
	}
	*ret_uids = uids;
	*ret_ids = ids;
	*ret_n = n;
	return 0;
}

static int sq_rollout_create(struct store *st, const struct store_rollout *ro, struct store_rollout_member *m,
			     size_t n, store_rollout_rank_fn rank_fn, void *rank_arg, int64_t *ret_id,
			     struct store_rollout_overlap *ret_overlap)
{
	struct store_sqlite *s = sq_of(st);
	uint8_t(*active)[STORE_UID_LEN] = NULL;
	int64_t *active_id = NULL, id = 0;
	size_t na = 0;
	sqlite3_stmt *stmt = NULL;
	int rc, r;

	sq_synchronous(s, true);
	r = sq_begin(s);
	if (r)
		goto out;
	stmt = sq_stmt(s, SQ_POLICY_EXISTS);
	rc = sqlite3_bind_int64(stmt, 1, ro->serial);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(stmt);
	r = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sq_errno(rc);
	sqlite3_reset(stmt);
	stmt = NULL;
	if (r == 0)
		r = sq_active_members(s, &active, &active_id, &na);
	if (r == 0)
		r = store_rollout_overlap_check(m, n, (const uint8_t(*)[STORE_UID_LEN])active, active_id, na,
						ret_overlap);
	if (r == 0)
		r = sq_prep(s,
			    "INSERT INTO rollouts (serial, selector, stages, bake_ms, max_failures, report_timeout_ms, "
			    "state, stage, stage_started_at, failures_base, created_by, created_at, updated_at) "
			    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', 0, ?7, 0, ?8, ?7, ?7)",
			    &stmt);
	if (r == 0) {
		if ((rc = sqlite3_bind_int64(stmt, 1, ro->serial)) || (rc = sq_bind_text(stmt, 2, ro->selector)) ||
		    (rc = sq_bind_text(stmt, 3, ro->stages)) || (rc = sqlite3_bind_int64(stmt, 4, ro->bake_ms)) ||
		    (rc = sqlite3_bind_int64(stmt, 5, ro->max_failures)) ||
		    (rc = sqlite3_bind_int64(stmt, 6, ro->report_timeout_ms)) ||
		    (rc = sqlite3_bind_int64(stmt, 7, ro->created_at)) ||
		    (rc = sq_bind_text(stmt, 8, ro->created_by)))
			r = sq_errno(rc);
		else
			r = (rc = sqlite3_step(stmt)) == SQLITE_DONE ? 0 : sq_errno(rc);
		id = sqlite3_last_insert_rowid(s->db);
		sqlite3_finalize(stmt);
		stmt = NULL;
	}
	if (r == 0)
		r = rank_fn(rank_arg, id, m, n);
	if (r == 0)
		r = sq_prep(s, "INSERT INTO rollout_members (rollout_id, uid, rank, stage) VALUES (?1, ?2, ?3, ?4)",
			    &stmt);
	for (size_t i = 0; r == 0 && i < n; i++) {
		sqlite3_reset(stmt);
		if ((rc = sqlite3_bind_int64(stmt, 1, id)) ||
		    (rc = sqlite3_bind_blob(stmt, 2, m[i].uid, STORE_UID_LEN, SQLITE_STATIC)) ||
		    (rc = sqlite3_bind_int64(stmt, 3, m[i].rank)) || (rc = sqlite3_bind_int(stmt, 4, m[i].stage)))
			r = sq_errno(rc);
		else
			r = (rc = sqlite3_step(stmt)) == SQLITE_DONE ? 0 : sq_errno(rc);
	}
	sqlite3_finalize(stmt);
	if (r == 0)
		r = sq_bump_generation(s);
	r = sq_end(s, r);
	if (r == 0 && ret_id)
		*ret_id = id;
out:
	free(active);
	free(active_id);
	sq_synchronous(s, false);
	return r;
}

static int sq_rollout_get(struct store *st, int64_t id, struct store_rollout *ret)
{
	struct store_sqlite *s = sq_of(st);
	struct store_rollout ro;
	sqlite3_stmt *stmt;
	int rc, r;

	r = sq_prep(s, "SELECT " STORE_ROLLOUT_COLUMNS " FROM rollouts WHERE id = ?1", &stmt);
	if (r)
		return r;
	rc = sqlite3_bind_int64(stmt, 1, id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		r = sq_read_rollout(stmt, &ro);
		if (r == 0)
			*ret = ro;
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : sq_errno(rc);
	}
	sqlite3_finalize(stmt);
	return r;
}

static int sq_rollout_list(struct store *st, int state, store_rollout_cb cb, void *arg)
{
	struct store_sqlite *s = sq_of(st);
	sqlite3_stmt *stmt;
	int rc, r;

	r = sq_prep(s,
		    state ? "SELECT " STORE_ROLLOUT_COLUMNS " FROM rollouts WHERE state = ?1 ORDER BY id"
			  : "SELECT " STORE_ROLLOUT_COLUMNS " FROM rollouts ORDER BY id",
		    &stmt);
	if (r)
		return r;
	if (state && (rc = sqlite3_bind_text(stmt, 1, store_rollout_state_name(state), -1, SQLITE_STATIC))) {
		sqlite3_finalize(stmt);
		return sq_errno(rc);
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct store_rollout ro;

		r = sq_read_rollout(stmt, &ro);
		if (r)
			break;
		r = cb(&ro, arg);
		store_rollout_release(&ro);
		if (r)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_errno(rc);
	sqlite3_finalize(stmt);
	return r;
}

static int sq_rollout_members(struct store *st, int64_t id, store_rollout_member_cb cb, void *arg)
{
	struct store_sqlite *s = sq_of(st);
	sqlite3_stmt *stmt;
	int rc, r;

	r = sq_prep(s, "SELECT " STORE_MEMBER_COLUMNS " FROM rollout_members WHERE rollout_id = ?1 ORDER BY rank",
		    &stmt);
	if (r)
		return r;
	rc = sqlite3_bind_int64(stmt, 1, id);
	while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct store_rollout_member m;

		r = sq_read_member(stmt, &m);
		if (r == 0)
			r = cb(&m, arg);
		store_rollout_member_release(&m);
		if (r)
			break;
		rc = SQLITE_OK;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_errno(rc);
	sqlite3_finalize(stmt);
	return r;
}

static int sq_rollout_write(struct store_sqlite *s, const struct store_rollout *ro)
{
	sqlite3_stmt *stmt;
	int rc, r;

	r = sq_prep(s,
		    "UPDATE rollouts SET state = ?2, stage = ?3, stage_started_at = ?4, failures_base = ?5, "
		    "updated_at = ?6, reason = ?7, assignment_id = ?8 WHERE id = ?1",
		    &stmt);
	if (r)
		return r;
	if ((rc = sqlite3_bind_int64(stmt, 1, ro->id)) ||
	    (rc = sqlite3_bind_text(stmt, 2, store_rollout_state_name(ro->state), -1, SQLITE_STATIC)) ||
	    (rc = sqlite3_bind_int(stmt, 3, ro->stage)) || (rc = sqlite3_bind_int64(stmt, 4, ro->stage_started_at)) ||
	    (rc = sqlite3_bind_int64(stmt, 5, ro->failures_base)) ||
	    (rc = sqlite3_bind_int64(stmt, 6, ro->updated_at)) || (rc = sq_bind_text(stmt, 7, ro->reason)) ||
	    (rc = sq_bind_time(stmt, 8, ro->assignment_id)))
		r = sq_errno(rc);
	else
		r = (rc = sqlite3_step(stmt)) == SQLITE_DONE ? 0 : sq_errno(rc);
	sqlite3_finalize(stmt);
	return r;
}

static int sq_rollout_update(struct store *st, int64_t id, bool nowait, bool with_members,
			     store_rollout_update_fn fn, void *arg)
{
	struct store_sqlite *s = sq_of(st);
	struct store_rollout_change ch = { 0 };
	struct store_member_vec vec = { 0 };
	struct store_rollout ro = { 0 };
	sqlite3_stmt *stmt = NULL;
	bool have = false;
	int rc, r;

	/* SQLite has one writer at a time: BEGIN IMMEDIATE is the rollout's lock. */
	(void)nowait;
	sq_synchronous(s, true);
	r = sq_begin(s);
	if (r)
		goto out;
	r = sq_rollout_get(st, id, &ro);
	have = r == 0;
	if (r == 0 && with_members)
		r = sq_rollout_members(st, id, store_member_push, &vec);
	if (r == 0)
		r = fn(arg, &ro, vec.v, vec.n, &ch);
	if (r == 0 && ch.assign) {
		char by[64];

		snprintf(by, sizeof(by), "rollout %lld", (long long)ro.id);
		stmt = sq_stmt(s, SQ_ASSIGN_INSERT);
		if ((rc = sq_bind_text(stmt, 1, ro.selector)) || (rc = sqlite3_bind_int64(stmt, 2, ro.serial)) ||
		    (rc = sq_bind_text(stmt, 3, by)) || (rc = sqlite3_bind_int64(stmt, 4, ro.updated_at)))
			r = sq_errno(rc);
		else
			r = (rc = sqlite3_step(stmt)) == SQLITE_DONE ? 0 : sq_errno(rc);
		sqlite3_reset(stmt);
		stmt = NULL;
		ro.assignment_id = sqlite3_last_insert_rowid(s->db);
		ch.rollout = true;
		ch.offers = true;
	}
	if (r == 0 && ch.rollout)
		r = sq_rollout_write(s, &ro);
	for (size_t i = 0; r == 0 && i < vec.n; i++) {
		const struct store_rollout_member *m = &vec.v[i];

		if (!m->dirty)
			continue;
		if (!stmt && (r = sq_prep(s, "UPDATE rollout_members SET " STORE_MEMBER_OUTCOME_SET("?3", "?4", "?5")
						 "WHERE rollout_id = ?1 AND uid = ?2", &stmt)))
			break;
		sqlite3_reset(stmt);
		if ((rc = sqlite3_bind_int64(stmt, 1, id)) ||
		    (rc = sqlite3_bind_blob(stmt, 2, m->uid, STORE_UID_LEN, SQLITE_STATIC)) ||
		    (rc = sq_bind_time(stmt, 3, m->succeeded_at)) ||
		    (rc = sq_bind_time(stmt, 4, m->succeeded_at ? 0 : m->failed_at)) ||
		    (rc = sq_bind_text(stmt, 5, m->reason)))
			r = sq_errno(rc);
		else
			r = (rc = sqlite3_step(stmt)) == SQLITE_DONE ? 0 : sq_errno(rc);
	}
	sqlite3_finalize(stmt);
	if (r == 0 && ch.offers)
		r = sq_bump_generation(s);
	r = sq_end(s, r);
out:
	if (have)
		store_rollout_release(&ro);
	store_member_vec_release(&vec);
	sq_synchronous(s, false);
	return r;
}

static int sq_rollout_mark(struct store *st, const uint8_t uid[STORE_UID_LEN], int kind, int64_t serial,
			   int64_t at, const char *reason)
{
	static const char *const sql[] = {
		[STORE_MARK_APPLIED] =
			"UPDATE rollout_members SET applied_at = ?3 WHERE uid = ?1 AND applied_at IS NULL AND "
			"rollout_id IN (SELECT id FROM rollouts WHERE serial = ?2 AND state IN ('running', 'halted'))",
		[STORE_MARK_FAILED] =
			"UPDATE rollout_members SET failed_at = ?3, reason = ?4 WHERE uid = ?1 AND failed_at IS NULL "
			"AND succeeded_at IS NULL AND "
			"rollout_id IN (SELECT id FROM rollouts WHERE serial = ?2 AND state IN ('running', 'halted'))",
		[STORE_MARK_UNHEALTHY] =
			"UPDATE rollout_members SET failed_at = ?3, reason = ?4 WHERE uid = ?1 AND ?2 = ?2 "
			"AND applied_at IS NOT NULL AND failed_at IS NULL AND succeeded_at IS NULL AND "
			"rollout_id IN (SELECT id FROM rollouts WHERE state IN ('running', 'halted'))",
		[STORE_MARK_TENANT] =
			"UPDATE rollout_members SET failed_at = ?3, reason = ?4 WHERE uid = ?1 AND ?2 = ?2 "
			"AND sent_at IS NOT NULL AND failed_at IS NULL AND succeeded_at IS NULL AND "
			"rollout_id IN (SELECT id FROM rollouts WHERE state IN ('running', 'halted'))",
	};
	struct store_sqlite *s = sq_of(st);
	sqlite3_stmt *stmt;
	int rc, r;

	r = sq_prep(s, sql[kind], &stmt);
	if (r)
		return r;
	if ((rc = sqlite3_bind_blob(stmt, 1, uid, STORE_UID_LEN, SQLITE_STATIC)) ||
	    (rc = sqlite3_bind_int64(stmt, 2, serial)) || (rc = sqlite3_bind_int64(stmt, 3, at)) ||
	    (kind != STORE_MARK_APPLIED && (rc = sq_bind_text(stmt, 4, reason))))
		r = sq_errno(rc);
	else
		r = (rc = sqlite3_step(stmt)) == SQLITE_DONE ? 0 : sq_errno(rc);
	sqlite3_finalize(stmt);
	return r;
}

static int sq_rollout_sent(struct store *st, int64_t id, const uint8_t uid[STORE_UID_LEN], int64_t at)
{
	struct store_sqlite *s = sq_of(st);
	sqlite3_stmt *stmt;
	int rc, r;

	r = sq_prep(s, "UPDATE rollout_members SET sent_at = ?3 WHERE rollout_id = ?1 AND uid = ?2 AND sent_at IS NULL",
		    &stmt);
	if (r)
		return r;
	if ((rc = sqlite3_bind_int64(stmt, 1, id)) ||
	    (rc = sqlite3_bind_blob(stmt, 2, uid, STORE_UID_LEN, SQLITE_STATIC)) ||
	    (rc = sqlite3_bind_int64(stmt, 3, at)))
		r = sq_errno(rc);
	else
		r = (rc = sqlite3_step(stmt)) == SQLITE_DONE ? 0 : sq_errno(rc);
	sqlite3_finalize(stmt);
	return r;
}

static int sq_rollout_offers(struct store *st, store_offer_cb cb, void *arg)
{
	struct store_sqlite *s = sq_of(st);
	sqlite3_stmt *stmt;
	int rc, r;

	r = sq_prep(s, STORE_OFFERS_SQL, &stmt);
	if (r)
		return r;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		uint8_t uid[STORE_UID_LEN];

		if (!sq_col_fixed(stmt, 0, uid, STORE_UID_LEN)) {
			r = -EBADMSG;
			break;
		}
		r = cb(arg, uid, sqlite3_column_int64(stmt, 1), sqlite3_column_int64(stmt, 2), sq_col_time(stmt, 3));
		if (r)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_errno(rc);
	sqlite3_finalize(stmt);
	return r;
}


const struct store_ops store_sqlite_ops = {
	.scheme = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.schema_version = sq_schema_version,
	.agent_get = sq_agent_get,
	.agent_put = sq_agent_put,
	.agent_list = sq_agent_list,
	.policy_add = sq_policy_add,
	.policy_get = sq_policy_get,
	.policy_max_serial = sq_policy_max_serial,
	.policy_list = sq_policy_list,
	.assign = sq_assign,
	.assignment_list = sq_assignment_list,
	.generation = sq_generation,
	.audit_append = sq_audit_append,
	.audit_list = sq_audit_list,
	.audit_size = sq_audit_size,
	.rollout_create = sq_rollout_create,
	.rollout_get = sq_rollout_get,
	.rollout_list = sq_rollout_list,
	.rollout_members = sq_rollout_members,
	.rollout_update = sq_rollout_update,
	.rollout_mark = sq_rollout_mark,
	.rollout_sent = sq_rollout_sent,
	.rollout_offers = sq_rollout_offers,
};
