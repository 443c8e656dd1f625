/*
 * store_pg.c - the PostgreSQL store backend ("postgresql://..." or
 * "postgres://...", handed whole to libpq's PQconnectdb), for several
 * vigil-cp processes sharing one fleet.  Same contract as store_sqlite.c:
 * every call one transaction, 0 or -errno, never logs.
 *
 * Schema: versioned migrations recorded in vigil_schema(version), applied
 * in one transaction under pg_advisory_xact_lock(PG_LOCK_MIGRATE), so two
 * vigil-cp processes starting at once migrate once (the second waits, then
 * finds the schema current); a schema newer than this program is refused
 * with -EPROTO.
 *
 * Serials only move forward, across servers too: policy_add takes
 * pg_advisory_xact_lock(PG_LOCK_SERIAL) in its own statement, then reads
 * max(serial) and inserts.  We chose the advisory lock over SELECT ... FOR
 * UPDATE on a one-row table (it needs no extra row that every upload would
 * rewrite) and over SERIALIZABLE (no retry loop, and the predicate read of
 * max() would make every upload race every other).  Under READ COMMITTED
 * each statement takes a fresh snapshot, so the max() read after the lock
 * sees every upload committed before the lock was granted; the lock is
 * released by COMMIT or ROLLBACK, including when the connection dies.
 *
 * Types: BYTEA for the uid, hashes and blobs, BIGINT for times, serials
 * and the 64-bit counters; sequence_num and capabilities are uint64 and
 * stored as their two's-complement int64 (as store_sqlite.c does), so the
 * top bit round-trips.  Parameters and results go in binary (PQexecParams,
 * result format 1); no value is ever spliced into SQL text.  TEXT columns
 * need valid UTF-8 in a UTF8 database (PostgreSQL refuses other bytes,
 * SQLSTATE 22021, returned as -EILSEQ).
 *
 * A connection found broken at a call's first statement (the server
 * restarted) is reset once and the statement retried (it is BEGIN, or
 * a single idempotent statement); a connection that breaks later in a
 * call fails the call with -EIO and is reset at the next call (the
 * transaction is then whole or absent, as after a kill: a COMMIT whose
 * answer was lost may have happened).  libpq blocks: a server that does
 * not answer holds vigil-cp's event loop for as long as the URL's
 * connect_timeout (or the kernel's TCP timeouts) allows.  Error messages name the host
 * and database only, never the URL (it may hold a password).
 *
 * Runs in vigil-cp (unprivileged, single-threaded).  Never logs.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "store.h"
#include "store_int.h"

/* Advisory lock keys: "VGCL" in the high half, what is locked in the low. */
#define PG_LOCK_MIGRATE 0x5647434c00000001LL
#define PG_LOCK_SERIAL 0x5647434c00000002LL
#define PG_LOCK_AUDIT 0x5647434c00000010LL	/* audit appends, one at a time across servers */

/* pg_type OIDs (catalog/pg_type_d.h, stable across releases). */
#define PG_BOOLOID 16
#define PG_BYTEAOID 17
#define PG_INT8OID 20
#define PG_TEXTOID 25

/*
 * The schema, one migration per version: migration i takes a database of
 * version i to version i + 1.  Never edit a released step; append one.
 */
static const char *const pg_migrations[] = {
	/* 1: agents, policies, assignments and their indexes. */
	"CREATE TABLE agents ("
	" uid BYTEA PRIMARY KEY CHECK (length(uid) = 16),"
	" cert_subject TEXT, cert_sans TEXT, cert_serial TEXT, cert_fingerprint TEXT,"
	" description TEXT,"
	" first_seen BIGINT NOT NULL, last_seen BIGINT NOT NULL,"
	" capabilities BIGINT NOT NULL DEFAULT 0,"
	" last_sequence_num BIGINT NOT NULL DEFAULT 0,"
	" healthy BIGINT NOT NULL DEFAULT -1, health TEXT,"
	" effective_hash BYTEA,"
	" applied_serial BIGINT NOT NULL DEFAULT 0,"
	" remote_config_status BIGINT NOT NULL DEFAULT 0, remote_config_hash BYTEA,"
	" last_error TEXT,"
	" disconnected BOOLEAN NOT NULL DEFAULT false"
	");"
	"CREATE TABLE policies ("
	" serial BIGINT PRIMARY KEY CHECK (serial > 0),"
	" yaml BYTEA NOT NULL, sig BYTEA NOT NULL,"
	" signer TEXT, uploaded_by TEXT, uploaded_at BIGINT NOT NULL"
	");"
	"CREATE TABLE assignments ("
	" id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	" selector TEXT NOT NULL,"
	" serial BIGINT NOT NULL REFERENCES policies(serial),"
	" assigned_by TEXT, assigned_at BIGINT NOT NULL"
	");"
	/* No index on agents(last_seen): nothing reads by it, and each poll would move it. */
	"CREATE INDEX assignments_serial ON assignments(serial);",
	/*
	 * 2: the serials that FAILED on each agent (never offered to it again),
	 * and the generation counter that tells every vigil-cp on the database
	 * that what agents are offered has changed.
	 */
	"ALTER TABLE agents ADD COLUMN failed_serials TEXT;"
	"CREATE TABLE vigil_generation (id BIGINT PRIMARY KEY CHECK (id = 1), gen BIGINT NOT NULL);"
	"INSERT INTO vigil_generation (id, gen) VALUES (1, 1);",
	/* 3: the audit log (cpaudit.c): append-only, the index is the Merkle leaf's. */
	"CREATE TABLE audit ("
	" idx BIGINT PRIMARY KEY CHECK (idx >= 0),"
	" at BIGINT NOT NULL,"
	" record BYTEA NOT NULL"
	");",
	/* 4: staged rollouts (rollout.c); store_sqlite.c's migration 5 says why each part. */
	"CREATE TABLE rollouts ("
	" id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	" serial BIGINT NOT NULL REFERENCES policies(serial),"
	" selector TEXT NOT NULL, stages TEXT NOT NULL,"
	" bake_ms BIGINT NOT NULL, max_failures BIGINT NOT NULL, report_timeout_ms BIGINT NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN ('running', 'halted', 'aborted', 'completed')),"
	" stage BIGINT NOT NULL DEFAULT 0, stage_started_at BIGINT NOT NULL,"
	" failures_base BIGINT NOT NULL DEFAULT 0,"
	" created_by TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
	" reason TEXT, assignment_id BIGINT REFERENCES assignments(id)"
	");"
	"CREATE INDEX rollouts_state ON rollouts(state);"
	"CREATE TABLE rollout_members ("
	" rollout_id BIGINT NOT NULL REFERENCES rollouts(id),"
	" uid BYTEA NOT NULL CHECK (length(uid) = 16),"
	" rank BIGINT NOT NULL, stage BIGINT NOT NULL,"
	" sent_at BIGINT, applied_at BIGINT, failed_at BIGINT, reason TEXT, succeeded_at BIGINT,"
	" PRIMARY KEY (rollout_id, uid)"
	");"
	"CREATE INDEX rollout_members_uid ON rollout_members(uid);",
};
#define PG_SCHEMA_VERSION ((int)(sizeof(pg_migrations) / sizeof(pg_migrations[0])))
const int store_pg_schema_latest = PG_SCHEMA_VERSION;

#define PG_POLICY_COLUMNS "serial, yaml, sig, signer, uploaded_by, uploaded_at"

struct store_pg {
	struct store base;	/* first: store.c sees only this */
	PGconn *conn;
	char where[160];	/* "host/db" for messages: never the URL */
	int version;
};

static struct store_pg *pg_of(struct store *st)
{
	return (struct store_pg *)st;
}

/* The parameters of one statement, in binary. */
#define PG_MAX_PARAMS 19
struct pg_params {
	int n;
	const char *values[PG_MAX_PARAMS];
	int lengths[PG_MAX_PARAMS];
	int formats[PG_MAX_PARAMS];
	unsigned int types[PG_MAX_PARAMS];
	uint64_t ints[PG_MAX_PARAMS];	/* big-endian int8 values point here */
	char bools[PG_MAX_PARAMS];
};

static void pp_add(struct pg_params *pp, unsigned int type, const void *v, size_t len)
{
	int i = pp->n++;

	pp->types[i] = type;
	pp->values[i] = v;
	pp->lengths[i] = (int)len;
	pp->formats[i] = 1;
}

static void pp_int8(struct pg_params *pp, int64_t v)
{
	pp->ints[pp->n] = htobe64((uint64_t)v);
	pp_add(pp, PG_INT8OID, &pp->ints[pp->n], 8);
}

static void pp_bool(struct pg_params *pp, bool v)
{
	pp->bools[pp->n] = v ? 1 : 0;
	pp_add(pp, PG_BOOLOID, &pp->bools[pp->n], 1);
}

/* NULL text is SQL NULL. */
static void pp_text(struct pg_params *pp, const char *s)
{
	pp_add(pp, PG_TEXTOID, s, s ? strlen(s) : 0);
}

/* A zero-length blob is sent as "" so that it stays distinct from SQL NULL. */
static void pp_bytea(struct pg_params *pp, const void *p, size_t len, bool present)
{
	pp_add(pp, PG_BYTEAOID, present ? (len ? p : "") : NULL, present ? len : 0);
}

/* SQLSTATE classes as errno values, for store.h's callers. */
static int pg_errno(const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (!state)
		return -EIO;
	if (!strcmp(state, "23505"))
		return -EEXIST;
	if (!strcmp(state, "23503"))
		return -ENOENT;
	if (!strcmp(state, "22021"))
		return -EILSEQ;
	if (!strcmp(state, "54000"))
		return -E2BIG;
	if (!strcmp(state, "53100"))
		return -ENOSPC;
	if (!strcmp(state, "53200"))
		return -ENOMEM;
	if (!strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03"))
		return -EBUSY;
	if (!strcmp(state, "42501") || !strncmp(state, "28", 2))
		return -EACCES;
	if (!strcmp(state, "25006"))
		return -EROFS;
	return -EIO;
}

/*
 * A new session's settings.  Agent reports commit without waiting for the
 * WAL flush (a server crash may forget the last few, which agents repeat
 * on the ReportFullState they then get; nothing is ever half-written);
 * policy_add and assign turn it back on for their transaction, so what an
 * administrator did is flushed before the call returns (store_sqlite.c's
 * synchronous NORMAL and FULL).
 */
static int pg_session(struct store_pg *s)
{
	PGresult *res = PQexec(s->conn, "SET synchronous_commit = off");
	int r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -EIO;

	PQclear(res);
	return r;
}

/*
 * Run one statement.  first: the call's first statement, retried once on
 * a fresh connection when the old one is (or turns out to be) broken.
 * 0 and *ret_res (PQclear it; NULL when ret_res is NULL), or -errno.
 */
static int pg_run(struct store_pg *s, bool first, const char *sql, const struct pg_params *pp,
		  PGresult **ret_res)
{
	bool reset = false;

	for (;;) {
		PGresult *res;
		ExecStatusType st;
		int r;

		if (PQstatus(s->conn) != CONNECTION_OK) {
			if (!first || reset)
				return -EIO;
			reset = true;
			PQreset(s->conn);
			if (PQstatus(s->conn) != CONNECTION_OK || pg_session(s))
				return -EIO;
		}
		res = PQexecParams(s->conn, sql, pp ? pp->n : 0, pp ? pp->types : NULL, pp ? pp->values : NULL,
				   pp ? pp->lengths : NULL, pp ? pp->formats : NULL, 1);
		st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
			if (ret_res)
				*ret_res = res;
			else
				PQclear(res);
			return 0;
		}
		r = PQstatus(s->conn) == CONNECTION_BAD ? -EIO : pg_errno(res);
		PQclear(res);
		/* A connection that broke under the first statement: once more on a new one. */
		if (r != -EIO || PQstatus(s->conn) != CONNECTION_BAD || !first || reset)
			return r;
	}
}

static int pg_begin(struct store_pg *s)
{
	return pg_run(s, true, "BEGIN", NULL, NULL);
}

/* Commit, or roll back what was begun when r is an error; returns r or the commit's error. */
static int pg_end(struct store_pg *s, int r)
{
	if (r == 0) {
		r = pg_run(s, false, "COMMIT", NULL, NULL);
		if (r == 0)
			return 0;
	}
	if (PQstatus(s->conn) == CONNECTION_OK && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		PQclear(PQexec(s->conn, "ROLLBACK"));
	return r;
}

/*
 * Begin a durable write transaction serialized with every other holder of
 * the advisory lock key (another vigil-cp, or this one's other call): the
 * lock is its own statement, so that what follows reads a fresh snapshot.
 * The caller ends it with pg_end() whatever this returns.
 */
static int pg_begin_locked(struct store_pg *s, int64_t key)
{
	struct pg_params lock = { 0 };
	int r = pg_begin(s);

	if (r == 0)
		r = pg_run(s, false, "SET LOCAL synchronous_commit = on", NULL, NULL);
	pp_int8(&lock, key);
	if (r == 0)
		r = pg_run(s, false, "SELECT pg_advisory_xact_lock($1)", &lock, NULL);
	return r;
}

/* ---------------------------------------------------------------------------
 * Reading binary results. */

static bool pg_col_int8(const PGresult *res, int row, int col, int64_t *ret)
{
	uint64_t v;

	if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8)
		return false;
	memcpy(&v, PQgetvalue(res, row, col), 8);
	*ret = (int64_t)be64toh(v);
	return true;
}

/* A text column as a malloc'ed string (NULL for SQL NULL); -ENOMEM. */
static int pg_col_text(const PGresult *res, int row, int col, char **ret)
{
	int n = PQgetlength(res, row, col);

	*ret = NULL;
	if (PQgetisnull(res, row, col))
		return 0;
	*ret = strndup(PQgetvalue(res, row, col), (size_t)n);
	return *ret ? 0 : -ENOMEM;
}

/* A bytea column of exactly n bytes into out; false when NULL or of another length. */
static bool pg_col_fixed(const PGresult *res, int row, int col, uint8_t *out, size_t n)
{
	if (PQgetisnull(res, row, col) || (size_t)PQgetlength(res, row, col) != n)
		return false;
	memcpy(out, PQgetvalue(res, row, col), n);
	return true;
}

static int pg_col_blob(const PGresult *res, int row, int col, uint8_t **ret, size_t *ret_len)
{
	size_t n = (size_t)PQgetlength(res, row, col);

	if (PQgetisnull(res, row, col))
		return -EBADMSG;
	*ret = malloc(n ? n : 1);
	if (!*ret)
		return -ENOMEM;
	memcpy(*ret, PQgetvalue(res, row, col), n);
	*ret_len = n;
	return 0;
}

/* ---------------------------------------------------------------------------
 * Opening and migrating. */

/* "host/db" of a connection, or of a URL that did not connect; never the password. */
static void pg_where(PGconn *conn, const char *url, char *buf, size_t len)
{
	PQconninfoOption *opts;
	const char *host = NULL, *db = NULL;

	if (conn && PQstatus(conn) == CONNECTION_OK) {
		snprintf(buf, len, "postgresql %s/%s", PQhost(conn) ? PQhost(conn) : "?",
			 PQdb(conn) ? PQdb(conn) : "?");
		return;
	}
	opts = PQconninfoParse(url, NULL);
	if (!opts) {
		snprintf(buf, len, "postgresql URL (not shown)");
		return;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!strcmp(o->keyword, "host") && o->val)
			host = o->val;
		if (!strcmp(o->keyword, "dbname") && o->val)
			db = o->val;
	}
	snprintf(buf, len, "postgresql %.64s/%.64s", host ? host : "(default host)", db ? db : "(default db)");
	PQconninfoFree(opts);
}

/* libpq's message, on one line (it ends in a newline and may have a DETAIL). */
static void pg_msg(PGconn *conn, char *buf, size_t len)
{
	const char *m = conn ? PQerrorMessage(conn) : "out of memory";

	snprintf(buf, len, "%s", m && *m ? m : "unknown error");
	for (char *p = buf; *p; p++)
		if (*p == '\n')
			*p = *(p + 1) ? ' ' : '\0';
}

/*
 * Bring the schema to PG_SCHEMA_VERSION in one transaction, under an
 * advisory lock: a migration cut short leaves the database at its old
 * version, and a second vigil-cp waits for the first's.
 */
static int pg_migrate(struct store_pg *s, char *err, size_t errlen)
{
	struct pg_params pp = { 0 };
	PGresult *res = NULL;
	int64_t version = 0;
	char msg[256];
	int r, rows;

	if ((r = pg_begin(s)))
		goto fail;
	pp_int8(&pp, PG_LOCK_MIGRATE);
	if ((r = pg_run(s, false, "SET LOCAL synchronous_commit = on", NULL, NULL)) ||
	    (r = pg_run(s, false, "SELECT pg_advisory_xact_lock($1)", &pp, NULL)) ||
	    (r = pg_run(s, false, "CREATE TABLE IF NOT EXISTS vigil_schema (version BIGINT NOT NULL)", NULL,
			NULL)) ||
	    (r = pg_run(s, false, "SELECT version FROM vigil_schema", NULL, &res)))
		goto fail;
	rows = PQntuples(res);
	if (rows > 1 || (rows == 1 && !pg_col_int8(res, 0, 0, &version))) {
		PQclear(res);
		snprintf(err, errlen, "%s: vigil_schema holds %d rows, want one: not a vigil-cp database?", s->where,
			 rows);
		r = -EPROTO;
		goto out;
	}
	PQclear(res);
	if (rows == 0 && (r = pg_run(s, false, "INSERT INTO vigil_schema (version) VALUES (0)", NULL, NULL)))
		goto fail;
	if (version > PG_SCHEMA_VERSION || version < 0) {
		snprintf(err, errlen,
			 "%s: schema version %lld is newer than this vigil-cp's (%d): run a newer vigil-cp",
			 s->where, (long long)version, PG_SCHEMA_VERSION);
		r = -EPROTO;
		goto out;
	}
	for (int v = (int)version; v < PG_SCHEMA_VERSION; v++) {
		struct pg_params pv = { 0 };
		/* Several statements: the simple-query protocol, no parameters. */
		PGresult *m = PQexec(s->conn, pg_migrations[v]);

		if (PQresultStatus(m) != PGRES_COMMAND_OK) {
			r = pg_errno(m);
			PQclear(m);
			goto fail;
		}
		PQclear(m);
		pp_int8(&pv, v + 1);
		if ((r = pg_run(s, false, "UPDATE vigil_schema SET version = $1", &pv, NULL)))
			goto fail;
	}
	s->version = PG_SCHEMA_VERSION;
	r = pg_end(s, 0);
	if (r == 0)
		return 0;
fail:
	pg_msg(s->conn, msg, sizeof(msg));
	snprintf(err, errlen, "%s: migrating the schema: %s", s->where, msg);
out:
	return pg_end(s, r ? r : -EIO);
}

static void pg_no_notice(void *arg, const char *message)
{
}

static void pg_close(struct store *st)
{
	struct store_pg *s = pg_of(st);

	PQfinish(s->conn);
	free(s);
}

static int pg_open(const char *rest, struct store **ret, char *err, size_t errlen)
{
	struct store_pg *s;
	char *url = NULL, msg[256];
	int r;

	if (strncmp(rest, "//", 2) != 0) {
		snprintf(err, errlen, "postgresql: want a URL, postgresql://[USER@]HOST[:PORT]/DB[?PARAMS]");
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base.ops = &store_pg_ops;
	/* store.c strips the scheme; libpq takes either spelling of it. */
	if (asprintf(&url, "postgresql:%s", rest) < 0) {
		free(s);
		return -ENOMEM;
	}
	s->conn = PQconnectdb(url);
	pg_where(s->conn, url, s->where, sizeof(s->where));
	free(url);
	if (!s->conn) {
		r = -ENOMEM;
		goto fail;
	}
	/* Never logs: the server's NOTICEs are not printed on stderr. */
	PQsetNoticeProcessor(s->conn, pg_no_notice, NULL);
	if (PQstatus(s->conn) != CONNECTION_OK) {
		pg_msg(s->conn, msg, sizeof(msg));
		snprintf(err, errlen, "%s: cannot connect: %s", s->where, msg);
		r = -EIO;
		goto fail;
	}
	if (pg_session(s)) {
		pg_msg(s->conn, msg, sizeof(msg));
		snprintf(err, errlen, "%s: %s", s->where, msg);
		r = -EIO;
		goto fail;
	}
	r = pg_migrate(s, err, errlen);
	if (r)
		goto fail;
	*ret = &s->base;
	return 0;
fail:
	pg_close(&s->base);
	return r;
}

static int pg_schema_version(struct store *st)
{
	return pg_of(st)->version;
}

/* ---------------------------------------------------------------------------
 * Agents. */

static int pg_read_agent(const PGresult *res, int row, struct store_agent *a)
{
	int64_t v[4];
	int r;

	memset(a, 0, sizeof(*a));
	if (!pg_col_fixed(res, row, 0, a->uid, STORE_UID_LEN) || !pg_col_int8(res, row, 6, &a->first_seen) ||
	    !pg_col_int8(res, row, 7, &a->last_seen) || !pg_col_int8(res, row, 8, &v[0]) ||
	    !pg_col_int8(res, row, 9, &v[1]) || !pg_col_int8(res, row, 10, &v[2]) ||
	    !pg_col_int8(res, row, 13, &a->applied_serial) || !pg_col_int8(res, row, 14, &v[3]) ||
	    PQgetisnull(res, row, 17) || PQgetlength(res, row, 17) != 1)
		return -EBADMSG;
	if ((r = pg_col_text(res, row, 1, &a->cert_subject)) || (r = pg_col_text(res, row, 2, &a->cert_sans)) ||
	    (r = pg_col_text(res, row, 3, &a->cert_serial)) || (r = pg_col_text(res, row, 4, &a->cert_fingerprint)) ||
	    (r = pg_col_text(res, row, 5, &a->description_json)) || (r = pg_col_text(res, row, 11, &a->health_json)) ||
	    (r = pg_col_text(res, row, 16, &a->last_error))) {
		store_agent_release(a);
		return r;
	}
	a->capabilities = (uint64_t)v[0];
	a->last_sequence_num = (uint64_t)v[1];
	a->healthy = v[2] < -1 || v[2] > 1 ? -1 : (int)v[2];
	a->has_effective_hash = pg_col_fixed(res, row, 12, a->effective_hash, sizeof(a->effective_hash));
	a->remote_config_status = v[3] < 0 || v[3] > 0xffff ? 0 : (int)v[3];
	a->has_remote_config_hash =
		pg_col_fixed(res, row, 15, a->remote_config_hash, sizeof(a->remote_config_hash));
	a->disconnected = PQgetvalue(res, row, 17)[0] != 0;
	if (!PQgetisnull(res, row, 18)) {
		char *failed = NULL;

		if ((r = pg_col_text(res, row, 18, &failed))) {
			store_agent_release(a);
			return r;
		}
		store_failed_parse(failed, a);
		free(failed);
	}
	return 0;
}

static int pg_agent_get(struct store *st, const uint8_t uid[STORE_UID_LEN], struct store_agent *ret)
{
	struct store_pg *s = pg_of(st);
	struct pg_params pp = { 0 };
	struct store_agent a;
	PGresult *res;
	int r;

	pp_bytea(&pp, uid, STORE_UID_LEN, true);
	r = pg_run(s, true, "SELECT " STORE_AGENT_COLUMNS " FROM agents WHERE uid = $1", &pp, &res);
	if (r)
		return r;
	if (PQntuples(res) == 0) {
		r = -ENOENT;
	} else {
		r = pg_read_agent(res, 0, &a);
		if (r == 0)
			*ret = a;
	}
	PQclear(res);
	return r;
}

static int pg_agent_put(struct store *st, const struct store_agent *a)
{
	struct pg_params pp = { 0 };
	char failed[STORE_FAILED_TEXT];
	PGresult *res = NULL;
	int r;

	store_failed_format(a, failed);
	pp_bytea(&pp, a->uid, STORE_UID_LEN, true);
	pp_text(&pp, a->cert_subject);
	pp_text(&pp, a->cert_sans);
	pp_text(&pp, a->cert_serial);
	pp_text(&pp, a->cert_fingerprint);
	pp_text(&pp, a->description_json);
	pp_int8(&pp, a->first_seen);
	pp_int8(&pp, a->last_seen);
	pp_int8(&pp, (int64_t)a->capabilities);
	pp_int8(&pp, (int64_t)a->last_sequence_num);
	pp_int8(&pp, a->healthy);
	pp_text(&pp, a->health_json);
	pp_bytea(&pp, a->effective_hash, sizeof(a->effective_hash), a->has_effective_hash);
	pp_int8(&pp, a->applied_serial);
	pp_int8(&pp, a->remote_config_status);
	pp_bytea(&pp, a->remote_config_hash, sizeof(a->remote_config_hash), a->has_remote_config_hash);
	pp_text(&pp, a->last_error);
	pp_bool(&pp, a->disconnected);
	pp_text(&pp, failed[0] ? failed : NULL);
	/* One statement: its own transaction; first_seen is kept on conflict. */
	r = pg_run(pg_of(st), true,
		   "INSERT INTO agents (" STORE_AGENT_COLUMNS ") VALUES "
		   "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) "
		   STORE_AGENT_UPSERT_SET,
		   &pp, &res);
	if (r)
		return r;
	/* "0": the upsert's WHERE refused another certificate's subject. */
	r = strcmp(PQcmdTuples(res), "0") == 0 ? -EPERM : 0;
	PQclear(res);
	return r;
}

/*
 * The whole result is fetched before the first callback, so that a
 * callback may call the store again on the same connection.
 */
static int pg_agent_list(struct store *st, store_agent_cb cb, void *arg)
{
	PGresult *res = NULL;
	int r = pg_run(pg_of(st), true, "SELECT " STORE_AGENT_COLUMNS " FROM agents ORDER BY uid", NULL, &res);

	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		struct store_agent a;

		r = pg_read_agent(res, i, &a);
		if (r)
			break;
		r = cb(&a, arg);
		store_agent_release(&a);
	}
	PQclear(res);
	return r;
}

/* ---------------------------------------------------------------------------
 * Policies and assignments. */

static int pg_read_policy(const PGresult *res, int row, struct store_policy *p)
{
	int r;

	memset(p, 0, sizeof(*p));
	if (!pg_col_int8(res, row, 0, &p->serial) || !pg_col_int8(res, row, 5, &p->uploaded_at))
		return -EBADMSG;
	if ((r = pg_col_blob(res, row, 1, &p->yaml, &p->yaml_len)) ||
	    (r = pg_col_blob(res, row, 2, &p->sig, &p->sig_len)) || (r = pg_col_text(res, row, 3, &p->signer)) ||
	    (r = pg_col_text(res, row, 4, &p->uploaded_by))) {
		store_policy_release(p);
		return r;
	}
	return 0;
}

static int pg_max_serial(struct store_pg *s, bool first, int64_t *ret_serial)
{
	PGresult *res = NULL;
	int r = pg_run(s, first, "SELECT coalesce(max(serial), 0)::bigint FROM policies", NULL, &res);

	if (r)
		return r;
	if (PQntuples(res) != 1 || !pg_col_int8(res, 0, 0, ret_serial))
		r = -EBADMSG;
	PQclear(res);
	return r;
}

static int pg_policy_add(struct store *st, const struct store_policy *p)
{
	struct store_pg *s = pg_of(st);
	struct pg_params pp = { 0 };
	int64_t max = 0;
	int r;

	/* Its own statement, before max() is read: see the file's first comment. */
	r = pg_begin_locked(s, PG_LOCK_SERIAL);
	if (r == 0)
		r = pg_max_serial(s, false, &max);
	if (r == 0 && p->serial <= max)
		r = -EEXIST;
	if (r == 0) {
		pp_int8(&pp, p->serial);
		pp_bytea(&pp, p->yaml, p->yaml_len, true);
		pp_bytea(&pp, p->sig, p->sig_len, true);
		pp_text(&pp, p->signer);
		pp_text(&pp, p->uploaded_by);
		pp_int8(&pp, p->uploaded_at);
		r = pg_run(s, false,
			   "INSERT INTO policies (" PG_POLICY_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6)", &pp,
			   NULL);
	}
	if (r == 0)
		r = pg_run(s, false, STORE_GENERATION_BUMP, NULL, NULL);
	return pg_end(s, r);
}

static int pg_policy_get(struct store *st, int64_t serial, struct store_policy *ret)
{
	struct pg_params pp = { 0 };
	struct store_policy p;
	PGresult *res;
	int r;

	pp_int8(&pp, serial);
	r = pg_run(pg_of(st), true, "SELECT " PG_POLICY_COLUMNS " FROM policies WHERE serial = $1", &pp, &res);
	if (r)
		return r;
	if (PQntuples(res) == 0) {
		r = -ENOENT;
	} else {
		r = pg_read_policy(res, 0, &p);
		if (r == 0)
			*ret = p;
	}
	PQclear(res);
	return r;
}

static int pg_policy_max_serial(struct store *st, int64_t *ret_serial)
{
	return pg_max_serial(pg_of(st), true, ret_serial);
}

static int pg_policy_list(struct store *st, store_policy_cb cb, void *arg)
{
	PGresult *res = NULL;
	int r = pg_run(pg_of(st), true, "SELECT " PG_POLICY_COLUMNS " FROM policies ORDER BY serial", NULL, &res);

	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		struct store_policy p;

		r = pg_read_policy(res, i, &p);
		if (r)
			break;
		r = cb(&p, arg);
		store_policy_release(&p);
	}
	PQclear(res);
	return r;
}

static int pg_assign(struct store *st, const char *selector, int64_t serial, const char *assigned_by,
		     int64_t at, int64_t *ret_id)
{
	struct store_pg *s = pg_of(st);
	struct pg_params pp = { 0 };
	PGresult *res = NULL;
	int64_t id = 0;
	int r;

	pp_text(&pp, selector);
	pp_int8(&pp, serial);
	pp_text(&pp, assigned_by);
	pp_int8(&pp, at);
	r = pg_begin(s);
	if (r)
		return r;
	r = pg_run(s, false, "SET LOCAL synchronous_commit = on", NULL, NULL);
	/*
	 * One statement: the check that the policy exists and the insert are
	 * atomic (policies are never deleted; the foreign key backs it up).
	 */
	if (r == 0)
		r = pg_run(s, false,
			   "INSERT INTO assignments (selector, serial, assigned_by, assigned_at) "
			   "SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM policies WHERE serial = $2) "
			   "RETURNING id",
			   &pp, &res);
	if (r == 0) {
		if (PQntuples(res) == 0)
			r = -ENOENT;
		else if (!pg_col_int8(res, 0, 0, &id))
			r = -EBADMSG;
	}
	PQclear(res);
	if (r == 0)
		r = pg_run(s, false, STORE_GENERATION_BUMP, NULL, NULL);
	r = pg_end(s, r);
	if (r == 0 && ret_id)
		*ret_id = id;
	return r;
}

static int pg_assignment_list(struct store *st, store_assignment_cb cb, void *arg)
{
	PGresult *res = NULL;
	int r = pg_run(pg_of(st), true,
		       "SELECT id, selector, serial, assigned_by, assigned_at FROM assignments ORDER BY id", NULL,
		       &res);

	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		struct store_assignment a = { 0 };

		if (!pg_col_int8(res, i, 0, &a.id) || !pg_col_int8(res, i, 2, &a.serial) ||
		    !pg_col_int8(res, i, 4, &a.assigned_at))
			r = -EBADMSG;
		if (r == 0 && (r = pg_col_text(res, i, 1, &a.selector)) == 0 &&
		    (r = pg_col_text(res, i, 3, &a.assigned_by)) == 0 && !a.selector)
			r = -EBADMSG;
		if (r == 0)
			r = cb(&a, arg);
		free(a.selector);
		free(a.assigned_by);
	}
	PQclear(res);
	return r;
}

static int pg_generation(struct store *st, int64_t *ret_gen)
{
	PGresult *res = NULL;
	int r = pg_run(pg_of(st), true, "SELECT gen FROM vigil_generation WHERE id = 1", NULL, &res);

	if (r == 0 && (PQntuples(res) != 1 || !pg_col_int8(res, 0, 0, ret_gen)))
		r = -EBADMSG;
	PQclear(res);
	return r;
}

/* ---------------------------------------------------------------------------
 * The audit log.  An append takes pg_advisory_xact_lock(PG_LOCK_AUDIT) in
 * its own statement, then reads max(idx) and the rows it has not seen
 * (READ COMMITTED: each statement after the lock sees every append
 * committed before the lock was granted), then inserts: two servers
 * appending at once build one log without a gap, each tree seeing the
 * other's records.  synchronous_commit is on for it: a record a checkpoint
 * covers is never lost to a crash.
 */

/* Each row of res from row 0 to cb; with next, the indexes must run on from *next without a gap. */
static int pg_audit_rows(const PGresult *res, int64_t *next, store_audit_cb cb, void *arg)
{
	int r = 0;

	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		struct store_audit_record a = { 0 };

		if (!pg_col_int8(res, i, 0, &a.idx) || !pg_col_int8(res, i, 1, &a.at) || PQgetisnull(res, i, 2))
			return -EBADMSG;
		if (next && a.idx != (*next)++)
			return -EBADMSG;
		a.record = (const uint8_t *)PQgetvalue(res, i, 2);
		a.len = (size_t)PQgetlength(res, i, 2);
		r = cb(&a, arg);
	}
	return r;
}

static int pg_audit_select(struct store_pg *s, bool first, int64_t since, int64_t limit, PGresult **ret)
{
	struct pg_params pp = { 0 };

	pp_int8(&pp, since);
	pp_int8(&pp, limit);
	return pg_run(s, first, "SELECT idx, at, record FROM audit WHERE idx >= $1 ORDER BY idx LIMIT $2", &pp, ret);
}

static int pg_audit_size_run(struct store_pg *s, bool first, int64_t *ret_size)
{
	PGresult *res = NULL;
	int r = pg_run(s, first, "SELECT coalesce(max(idx), -1)::bigint + 1 FROM audit", NULL, &res);

	if (r)
		return r;
	if (PQntuples(res) != 1 || !pg_col_int8(res, 0, 0, ret_size))
		r = -EBADMSG;
	PQclear(res);
	return r;
}

static int pg_audit_append(struct store *st, int64_t have, store_audit_cb seen, store_audit_build_fn build,
			   void *arg, int64_t *ret_idx)
{
	struct store_pg *s = pg_of(st);
	int64_t n = 0, next = have, at = 0;
	uint8_t *rec = NULL;
	size_t len = 0;
	int r;

	r = pg_begin_locked(s, PG_LOCK_AUDIT);
	if (r == 0)
		r = pg_audit_size_run(s, false, &n);
	if (r == 0 && n < have)
		r = -ESTALE;
	while (r == 0 && next < n) {
		PGresult *res = NULL;
		int64_t before = next;

		r = pg_audit_select(s, false, next, STORE_MAX_AUDIT_LIST, &res);
		if (r == 0)
			r = pg_audit_rows(res, &next, seen, arg);
		if (r == 0 && next == before)
			r = -EBADMSG;
		PQclear(res);
	}
	/* build's records, one after the other, until it has no more (1). */
	for (int k = 0; r == 0 && k < STORE_MAX_AUDIT_BATCH; k++, n++) {
		struct pg_params pp = { 0 };

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
			pp_int8(&pp, n);
			pp_int8(&pp, at);
			pp_bytea(&pp, rec, len, true);
			r = pg_run(s, false, "INSERT INTO audit (idx, at, record) VALUES ($1, $2, $3)", &pp, NULL);
		}
		free(rec);
		rec = NULL;
	}
	n--; /* the last index written */
	r = pg_end(s, r);
	if (r == 0 && ret_idx)
		*ret_idx = n;
	return r;
}

static int pg_audit_list(struct store *st, int64_t since, int64_t limit, store_audit_cb cb, void *arg)
{
	PGresult *res = NULL;
	int r = pg_audit_select(pg_of(st), true, since, limit, &res);

	if (r == 0)
		r = pg_audit_rows(res, NULL, cb, arg);
	PQclear(res);
	return r;
}

static int pg_audit_size(struct store *st, int64_t *ret_size)
{
	return pg_audit_size_run(pg_of(st), true, ret_size);
}

/* ---------------------------------------------------------------------------
 * Staged rollouts.  A rollout is decided on by one server at a time: the
 * engine's transaction holds the rollout's row with SELECT ... FOR UPDATE
 * (SKIP LOCKED from the tick: a server that finds it taken leaves it to
 * the other this time).  Agent reports (store_rollout_mark) do not take
 * that lock; the engine's write-back of a member's outcome is conditional
 * (STORE_MEMBER_OUTCOME_SQL), so neither undoes the other.  Creation takes
 * PG_LOCK_ROLLOUT so that two overlapping rollouts started at once on two
 * servers cannot both pass the overlap check. */

#define PG_LOCK_ROLLOUT 0x5647434c00000010LL

/* A time, 0 meaning "not yet", as SQL NULL. */
static void pp_time(struct pg_params *pp, int64_t t)
{
	if (t)
		pp_int8(pp, t);
	else
		pp_add(pp, PG_INT8OID, NULL, 0);
}

static int64_t pg_col_time(const PGresult *res, int row, int col)
{
	int64_t v = 0;

	return pg_col_int8(res, row, col, &v) ? v : 0;
}

/*
 * Members go to and from the server in batches: one statement per
 * PG_MEMBER_BATCH rows, the rows as one JSON parameter read with
 * json_to_recordset (libpq has one round trip per statement; 10k members
 * one at a time held vigil-cp's event loop for over a second).
 */
#define PG_MEMBER_BATCH 2000

static void pg_hex(const uint8_t uid[STORE_UID_LEN], char out[2 * STORE_UID_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < STORE_UID_LEN; i++) {
		out[2 * i] = digits[uid[i] >> 4];
		out[2 * i + 1] = digits[uid[i] & 15];
	}
	out[2 * STORE_UID_LEN] = '\0';
}

static json_t *pg_json_time(int64_t t)
{
	return t ? json_integer((json_int_t)t) : json_null();
}

/* Run sql with $1 = id and $2 = rows (consumed) as JSON text. */
static int pg_run_batch(struct store_pg *s, const char *sql, int64_t id, json_t *rows)
{
	struct pg_params pp = { 0 };
	char *text = json_dumps(rows, JSON_COMPACT);
	int r;

	json_decref(rows);
	if (!text)
		return -ENOMEM;
	pp_int8(&pp, id);
	pp_text(&pp, text);
	r = pg_run(s, false, sql, &pp, NULL);
	free(text);
	return r;
}

static int pg_bump_generation(struct store_pg *s)
{
	return pg_run(s, false, STORE_GENERATION_BUMP, NULL, NULL);
}

static int pg_read_rollout(const PGresult *res, int row, struct store_rollout *r)
{
	int64_t stage = 0;
	char *state = NULL;
	int e;

	memset(r, 0, sizeof(*r));
	if (!pg_col_int8(res, row, 0, &r->id) || !pg_col_int8(res, row, 1, &r->serial) ||
	    !pg_col_int8(res, row, 4, &r->bake_ms) || !pg_col_int8(res, row, 5, &r->max_failures) ||
	    !pg_col_int8(res, row, 6, &r->report_timeout_ms) || !pg_col_int8(res, row, 8, &stage) ||
	    !pg_col_int8(res, row, 9, &r->stage_started_at) || !pg_col_int8(res, row, 10, &r->failures_base) ||
	    !pg_col_int8(res, row, 12, &r->created_at) || !pg_col_int8(res, row, 13, &r->updated_at) ||
	    stage < 0 || stage > 1000)
		return -EBADMSG;
	r->stage = (int)stage;
	r->assignment_id = pg_col_time(res, row, 15);
	if ((e = pg_col_text(res, row, 2, &r->selector)) || (e = pg_col_text(res, row, 3, &r->stages)) ||
	    (e = pg_col_text(res, row, 7, &state)) || (e = pg_col_text(res, row, 11, &r->created_by)) ||
	    (e = pg_col_text(res, row, 14, &r->reason))) {
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

static int pg_read_member(const PGresult *res, int row, struct store_rollout_member *m)
{
	int64_t stage = 0;

	memset(m, 0, sizeof(*m));
	if (!pg_col_fixed(res, row, 0, m->uid, STORE_UID_LEN) || !pg_col_int8(res, row, 1, &m->rank) ||
	    !pg_col_int8(res, row, 2, &stage) || stage < 0 || stage > 1000)
		return -EBADMSG;
	m->stage = (int)stage;
	m->sent_at = pg_col_time(res, row, 3);
	m->applied_at = pg_col_time(res, row, 4);
	m->failed_at = pg_col_time(res, row, 5);
	m->succeeded_at = pg_col_time(res, row, 6);
	return pg_col_text(res, row, 7, &m->reason);
}

static int pg_rollout_create(struct store *st, const struct store_rollout *ro, struct store_rollout_member *m,
			     size_t n, store_rollout_rank_fn rank_fn, void *rank_arg, int64_t *ret_id,
			     struct store_rollout_overlap *ret_overlap)
{
	struct store_pg *s = pg_of(st);
	struct pg_params pp = { 0 };
	uint8_t(*active)[STORE_UID_LEN] = NULL;
	int64_t *active_id = NULL, id = 0;
	PGresult *res = NULL;
	size_t na = 0;
	int r;

	r = pg_begin_locked(s, PG_LOCK_ROLLOUT);
	/* The members of running or halted rollouts, after the lock (a fresh snapshot). */
	if (r == 0)
		r = pg_run(s, false,
			   "SELECT m.uid, m.rollout_id FROM rollout_members m JOIN rollouts r ON r.id = m.rollout_id "
			   "WHERE r.state IN ('running', 'halted')",
			   NULL, &res);
	if (r == 0) {
		na = (size_t)PQntuples(res);
		active = malloc((na ? na : 1) * sizeof(*active));
		active_id = malloc((na ? na : 1) * sizeof(*active_id));
		if (!active || !active_id)
			r = -ENOMEM;
		for (size_t i = 0; r == 0 && i < na; i++)
			if (!pg_col_fixed(res, (int)i, 0, active[i], STORE_UID_LEN) ||
			    !pg_col_int8(res, (int)i, 1, &active_id[i]))
				r = -EBADMSG;
		PQclear(res);
		res = NULL;
	}
	if (r == 0)
		r = store_rollout_overlap_check(m, n, (const uint8_t(*)[STORE_UID_LEN])active, active_id, na,
						ret_overlap);
	if (r == 0) {
		pp_int8(&pp, ro->serial);
		pp_text(&pp, ro->selector);
		pp_text(&pp, ro->stages);
		pp_int8(&pp, ro->bake_ms);
		pp_int8(&pp, ro->max_failures);
		pp_int8(&pp, ro->report_timeout_ms);
		pp_int8(&pp, ro->created_at);
		pp_text(&pp, ro->created_by);
		r = pg_run(s, false,
			   "INSERT INTO rollouts (serial, selector, stages, bake_ms, max_failures, report_timeout_ms, "
			   "state, stage, stage_started_at, failures_base, created_by, created_at, updated_at) "
			   "SELECT $1, $2, $3, $4, $5, $6, 'running', 0, $7, 0, $8, $7, $7 "
			   "WHERE EXISTS (SELECT 1 FROM policies WHERE serial = $1) RETURNING id",
			   &pp, &res);
		if (r == 0) {
			if (PQntuples(res) == 0)
				r = -ENOENT;
			else if (!pg_col_int8(res, 0, 0, &id))
				r = -EBADMSG;
		}
		PQclear(res);
		res = NULL;
	}
	if (r == 0)
		r = rank_fn(rank_arg, id, m, n);
	for (size_t i = 0; r == 0 && i < n; i += PG_MEMBER_BATCH) {
		json_t *rows = json_array();

		for (size_t k = i; rows && k < n && k < i + PG_MEMBER_BATCH; k++) {
			char hex[2 * STORE_UID_LEN + 1];

			pg_hex(m[k].uid, hex);
			if (json_array_append_new(rows, json_pack("{s:s, s:I, s:i}", "u", hex, "k", (json_int_t)m[k].rank,
								      "s", m[k].stage))) {
				json_decref(rows);
				rows = NULL;
			}
		}
		r = rows ? pg_run_batch(s,
					"INSERT INTO rollout_members (rollout_id, uid, rank, stage) "
					"SELECT $1, decode(v.u, 'hex'), v.k, v.s "
					"FROM json_to_recordset($2::json) AS v(u text, k bigint, s bigint)",
					id, rows)
			 : -ENOMEM;
	}
	if (r == 0)
		r = pg_bump_generation(s);
	r = pg_end(s, r);
	if (r == 0 && ret_id)
		*ret_id = id;
	free(active);
	free(active_id);
	return r;
}

static int pg_rollout_get_in(struct store_pg *s, bool first, const char *sql, int64_t id, struct store_rollout *ret)
{
	struct pg_params pp = { 0 };
	struct store_rollout ro;
	PGresult *res = NULL;
	int r;

	pp_int8(&pp, id);
	r = pg_run(s, first, sql, &pp, &res);
	if (r)
		return r;
	if (PQntuples(res) == 0) {
		r = -ENOENT;
	} else {
		r = pg_read_rollout(res, 0, &ro);
		if (r == 0)
			*ret = ro;
	}
	PQclear(res);
	return r;
}

static int pg_rollout_get(struct store *st, int64_t id, struct store_rollout *ret)
{
	return pg_rollout_get_in(pg_of(st), true, "SELECT " STORE_ROLLOUT_COLUMNS " FROM rollouts WHERE id = $1", id,
				 ret);
}

static int pg_rollout_list(struct store *st, int state, store_rollout_cb cb, void *arg)
{
	struct pg_params pp = { 0 };
	PGresult *res = NULL;
	int r;

	pp_text(&pp, store_rollout_state_name(state));
	r = pg_run(pg_of(st), true,
		   state ? "SELECT " STORE_ROLLOUT_COLUMNS " FROM rollouts WHERE state = $1 ORDER BY id"
			 : "SELECT " STORE_ROLLOUT_COLUMNS " FROM rollouts ORDER BY id",
		   state ? &pp : NULL, &res);
	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		struct store_rollout ro;

		r = pg_read_rollout(res, i, &ro);
		if (r)
			break;
		r = cb(&ro, arg);
		store_rollout_release(&ro);
	}
	PQclear(res);
	return r;
}

static int pg_members_in(struct store_pg *s, bool first, int64_t id, store_rollout_member_cb cb, void *arg)
{
	struct pg_params pp = { 0 };
	PGresult *res = NULL;
	int r;

	pp_int8(&pp, id);
	r = pg_run(s, first, "SELECT " STORE_MEMBER_COLUMNS " FROM rollout_members WHERE rollout_id = $1 ORDER BY rank",
		   &pp, &res);
	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		struct store_rollout_member m;

		r = pg_read_member(res, i, &m);
		if (r == 0)
			r = cb(&m, arg);
		store_rollout_member_release(&m);
	}
	PQclear(res);
	return r;
}

static int pg_rollout_members(struct store *st, int64_t id, store_rollout_member_cb cb, void *arg)
{
	return pg_members_in(pg_of(st), true, id, cb, arg);
}

static int pg_rollout_update(struct store *st, int64_t id, bool nowait, bool with_members,
			     store_rollout_update_fn fn, void *arg)
{
	struct store_pg *s = pg_of(st);
	struct store_rollout_change ch = { 0 };
	struct store_member_vec vec = { 0 };
	struct store_rollout ro = { 0 };
	PGresult *res = NULL;
	bool have = false;
	int r;

	r = pg_begin(s);
	if (r)
		return r;
	r = pg_run(s, false, "SET LOCAL synchronous_commit = on", NULL, NULL);
	if (r == 0) {
		r = pg_rollout_get_in(s, false,
				      nowait ? "SELECT " STORE_ROLLOUT_COLUMNS " FROM rollouts WHERE id = $1 "
					       "FOR UPDATE SKIP LOCKED"
					     : "SELECT " STORE_ROLLOUT_COLUMNS " FROM rollouts WHERE id = $1 FOR UPDATE",
				      id, &ro);
		/* Skipped: held by another server (or gone, which the next list shows). */
		if (r == -ENOENT && nowait)
			r = -EAGAIN;
		have = r == 0;
	}
	if (r == 0 && with_members)
		r = pg_members_in(s, false, id, store_member_push, &vec);
	if (r == 0)
		r = fn(arg, &ro, vec.v, vec.n, &ch);
	if (r == 0 && ch.assign) {
		struct pg_params pp = { 0 };
		char by[64];

		snprintf(by, sizeof(by), "rollout %lld", (long long)ro.id);
		pp_text(&pp, ro.selector);
		pp_int8(&pp, ro.serial);
		pp_text(&pp, by);
		pp_int8(&pp, ro.updated_at);
		r = pg_run(s, false,
			   "INSERT INTO assignments (selector, serial, assigned_by, assigned_at) "
			   "VALUES ($1, $2, $3, $4) RETURNING id",
			   &pp, &res);
		if (r == 0 && (PQntuples(res) != 1 || !pg_col_int8(res, 0, 0, &ro.assignment_id)))
			r = -EBADMSG;
		PQclear(res);
		ch.rollout = true;
		ch.offers = true;
	}
	if (r == 0 && ch.rollout) {
		struct pg_params pp = { 0 };

		pp_int8(&pp, ro.id);
		pp_text(&pp, store_rollout_state_name(ro.state));
		pp_int8(&pp, ro.stage);
		pp_int8(&pp, ro.stage_started_at);
		pp_int8(&pp, ro.failures_base);
		pp_int8(&pp, ro.updated_at);
		pp_text(&pp, ro.reason);
		pp_time(&pp, ro.assignment_id);
		r = pg_run(s, false,
			   "UPDATE rollouts SET state = $2, stage = $3, stage_started_at = $4, failures_base = $5, "
			   "updated_at = $6, reason = $7, assignment_id = $8 WHERE id = $1",
			   &pp, NULL);
	}
	for (size_t i = 0; r == 0 && i < vec.n;) {
		json_t *rows = json_array();
		size_t in_batch = 0;

		for (; rows && i < vec.n && in_batch < PG_MEMBER_BATCH; i++) {
			const struct store_rollout_member *m = &vec.v[i];
			char hex[2 * STORE_UID_LEN + 1];

			if (!m->dirty)
				continue;
			pg_hex(m->uid, hex);
			if (json_array_append_new(rows, json_pack("{s:s, s:o, s:o, s:s?}", "u", hex, "s",
								  pg_json_time(m->succeeded_at), "f",
								  pg_json_time(m->succeeded_at ? 0 : m->failed_at),
								  "r", m->reason))) {
				json_decref(rows);
				rows = NULL;
			}
			in_batch++;
		}
		if (!rows)
			r = -ENOMEM;
		else if (!in_batch)
			json_decref(rows);
		else
			r = pg_run_batch(s,
					 "UPDATE rollout_members SET " STORE_MEMBER_OUTCOME_SET("v.s", "v.f", "v.r")
					 "FROM json_to_recordset($2::json) AS v(u text, s bigint, f bigint, r text) "
					 "WHERE rollout_id = $1 AND uid = decode(v.u, 'hex')",
					 id, rows);
	}
	if (r == 0 && ch.offers)
		r = pg_bump_generation(s);
	r = pg_end(s, r);
	if (have)
		store_rollout_release(&ro);
	store_member_vec_release(&vec);
	return r;
}

static int pg_rollout_mark(struct store *st, const uint8_t uid[STORE_UID_LEN], int kind, int64_t serial,
			   int64_t at, const char *reason)
{
	static const char *const sql[] = {
		[STORE_MARK_APPLIED] =
			"UPDATE rollout_members SET applied_at = $3 WHERE uid = $1 AND applied_at IS NULL AND "
			"rollout_id IN (SELECT id FROM rollouts WHERE serial = $2 AND state IN ('running', 'halted'))",
		[STORE_MARK_FAILED] =
			"UPDATE rollout_members SET failed_at = $3, reason = $4 WHERE uid = $1 AND failed_at IS NULL "
			"AND succeeded_at IS NULL AND "
			"rollout_id IN (SELECT id FROM rollouts WHERE serial = $2 AND state IN ('running', 'halted'))",
		[STORE_MARK_UNHEALTHY] =
			"UPDATE rollout_members SET failed_at = $3, reason = $4 WHERE uid = $1 AND $2 = $2 "
			"AND applied_at IS NOT NULL AND failed_at IS NULL AND succeeded_at IS NULL AND "
			"rollout_id IN (SELECT id FROM rollouts WHERE state IN ('running', 'halted'))",
		[STORE_MARK_TENANT] =
			"UPDATE rollout_members SET failed_at = $3, reason = $4 WHERE uid = $1 AND $2 = $2 "
			"AND sent_at IS NOT NULL AND failed_at IS NULL AND succeeded_at IS NULL AND "
			"rollout_id IN (SELECT id FROM rollouts WHERE state IN ('running', 'halted'))",
	};
	struct pg_params pp = { 0 };

	pp_bytea(&pp, uid, STORE_UID_LEN, true);
	pp_int8(&pp, serial);
	pp_int8(&pp, at);
	if (kind != STORE_MARK_APPLIED)
		pp_text(&pp, reason);
	return pg_run(pg_of(st), true, sql[kind], &pp, NULL);
}

static int pg_rollout_sent(struct store *st, int64_t id, const uint8_t uid[STORE_UID_LEN], int64_t at)
{
	struct pg_params pp = { 0 };

	pp_int8(&pp, id);
	pp_bytea(&pp, uid, STORE_UID_LEN, true);
	pp_int8(&pp, at);
	return pg_run(pg_of(st), true,
		      "UPDATE rollout_members SET sent_at = $3 WHERE rollout_id = $1 AND uid = $2 AND sent_at IS NULL",
		      &pp, NULL);
}

static int pg_rollout_offers(struct store *st, store_offer_cb cb, void *arg)
{
	PGresult *res = NULL;
	int r = pg_run(pg_of(st), true, STORE_OFFERS_SQL, NULL, &res);

	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		uint8_t uid[STORE_UID_LEN];
		int64_t id, serial;

		if (!pg_col_fixed(res, i, 0, uid, STORE_UID_LEN) || !pg_col_int8(res, i, 1, &id) ||
		    !pg_col_int8(res, i, 2, &serial)) {
			r = -EBADMSG;
			break;
		}
		r = cb(arg, uid, id, serial, pg_col_time(res, i, 3));
	}
	PQclear(res);
	return r;
}


const struct store_ops store_pg_ops = {
	.scheme = "postgresql",
	.alias = "postgres",
	.open = pg_open,
	.close = pg_close,
	.schema_version = pg_schema_version,
	.agent_get = pg_agent_get,
	.agent_put = pg_agent_put,
	.agent_list = pg_agent_list,
	.policy_add = pg_policy_add,
	.policy_get = pg_policy_get,
	.policy_max_serial = pg_policy_max_serial,
	.policy_list = pg_policy_list,
	.assign = pg_assign,
	.assignment_list = pg_assignment_list,
	.generation = pg_generation,
	.audit_append = pg_audit_append,
	.audit_list = pg_audit_list,
	.audit_size = pg_audit_size,
	.rollout_create = pg_rollout_create,
	.rollout_get = pg_rollout_get,
	.rollout_list = pg_rollout_list,
	.rollout_members = pg_rollout_members,
	.rollout_update = pg_rollout_update,
	.rollout_mark = pg_rollout_mark,
	.rollout_sent = pg_rollout_sent,
	.rollout_offers = pg_rollout_offers,
};
