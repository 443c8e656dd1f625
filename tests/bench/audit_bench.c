/*
 * audit_bench.c - the audit log's figures for make bench-cp
 * (tests/bench/bench_audit.sh, docs/benchmarks.md "Audit log"):
 *
 *   audit_bench fill URL N        append N records as vigil-cp writes them
 *                                 (canonical JSON, i and prev right), in
 *                                 batches of 10000 per transaction straight
 *                                 into the table: a big log in minutes, not
 *                                 the hours of N durable appends
 *   audit_bench load URL          cpaudit_new over the stored log: the time
 *                                 vigil-cp takes to start, and its memory
 *   audit_bench append URL S TAG [BATCH]
 *                                 cpaudit_append of admin-like records for S
 *                                 seconds, each durable: appends per second;
 *                                 with BATCH, BATCH records per event-loop
 *                                 turn, as vigil-cp writes a busy turn's
 *                                 records (one transaction each)
 *
 * URL is a store URL (sqlite:PATH or postgresql://...).  One line of
 * "key=value" results on stdout.  Links the shipping library.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <endian.h>
#include <event2/event.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "cpaudit.h"
#include "hexdigit.h"
#include "merkle.h"
#include "store.h"

#define BATCH 10000

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* The fields of an admin action like the ones vigil-cp records (~400 bytes a record). */
static json_t *admin_fields(int64_t n, const char *tag)
{
	char sel[64];

	snprintf(sel, sizeof(sel), "host.name=bench-%s-%" PRId64, tag, n % 10000);
	return json_pack("{s:s, s:s, s:s, s:n, s:{s:I, s:s}, s:i, s:s}", "subject", "CN=admin,O=Example",
			 "fingerprint", "5b1c0c3a9b0d5bd7c9e3b5f4e0d8e7a2a4f0c1b2d3e4f5a6b7c8d9e0f1a2b3c4", "action",
			 "POST /api/v1/assignments", "query", "args", "serial", (json_int_t)(n % 100 + 1), "selector",
			 sel, "status", 201, "request_sha256",
			 "0c6f1f6e3e2d1c0b0a09f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3");
}

static int fill(const char *url, int64_t n)
{
	struct merkle *t = NULL;
	sqlite3 *db = NULL;
	PGconn *pg = NULL;
	bool is_sqlite = strncmp(url, "sqlite:", 7) == 0;
	struct store *st;
	char err[256];
	double t0 = now_s();

	/* The schema, as vigil-cp makes it. */
	if (store_open(url, &st, err, sizeof(err))) {
		fprintf(stderr, "audit_bench: %s\n", err);
		return 1;
	}
	store_close(st);
	if (merkle_new(&t))
		return 1;
	if (is_sqlite) {
		if (sqlite3_open(url + 7, &db) != SQLITE_OK)
			return 1;
		sqlite3_exec(db, "DELETE FROM audit", NULL, NULL, NULL);
	} else {
		pg = PQconnectdb(url);
		if (PQstatus(pg) != CONNECTION_OK) {
			fprintf(stderr, "audit_bench: %s", PQerrorMessage(pg));
			return 1;
		}
		PQclear(PQexec(pg, "DELETE FROM audit"));
	}
	for (int64_t i = 0; i < n;) {
		sqlite3_stmt *stmt = NULL;

		if (is_sqlite) {
			sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
			sqlite3_prepare_v2(db, "INSERT INTO audit (idx, at, record) VALUES (?1, ?2, ?3)", -1, &stmt, NULL);
		} else {
			PQclear(PQexec(pg, "BEGIN"));
		}
		for (int64_t end = i + BATCH < n ? i + BATCH : n; i < end; i++) {
			uint8_t root[MERKLE_HASH_LEN], leaf[MERKLE_HASH_LEN];
			char hex[2 * MERKLE_HASH_LEN + 1], *text;
			json_t *o = admin_fields(i, "fill");
			int64_t at = 1796000000000 + i;

			merkle_root(t, (uint64_t)i, root);
			hexdigit_encode(root, sizeof(root), hex);
			json_object_set_new(o, "i", json_integer(i));
			json_object_set_new(o, "prev", json_string(hex));
			json_object_set_new(o, "t", json_integer(at));
			json_object_set_new(o, "kind", json_string("admin"));
			text = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENSURE_ASCII);
			json_decref(o);
			merkle_leaf_hash(text, strlen(text), leaf);
			merkle_append(t, leaf);
			if (is_sqlite) {
				sqlite3_reset(stmt);
				sqlite3_bind_int64(stmt, 1, i);
				sqlite3_bind_int64(stmt, 2, at);
				sqlite3_bind_blob(stmt, 3, text, (int)strlen(text), SQLITE_TRANSIENT);
				if (sqlite3_step(stmt) != SQLITE_DONE) {
					fprintf(stderr, "audit_bench: insert: %s\n", sqlite3_errmsg(db));
					return 1;
				}
			} else {
				uint64_t bi = htobe64((uint64_t)i), ba = htobe64((uint64_t)at);
				const char *vals[3] = { (const char *)&bi, (const char *)&ba, text };
				int lens[3] = { 8, 8, (int)strlen(text) }, fmts[3] = { 1, 1, 1 };
				unsigned int types[3] = { 20, 20, 17 };
				PGresult *r = PQexecParams(pg, "INSERT INTO audit (idx, at, record) VALUES ($1, $2, $3)", 3,
							   types, vals, lens, fmts, 0);

				if (PQresultStatus(r) != PGRES_COMMAND_OK) {
					fprintf(stderr, "audit_bench: insert: %s", PQerrorMessage(pg));
					return 1;
				}
				PQclear(r);
			}
			free(text);
		}
		if (is_sqlite) {
			sqlite3_finalize(stmt);
			sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		} else {
			PQclear(PQexec(pg, "COMMIT"));
		}
	}
	printf("filled=%" PRId64 " seconds=%.1f\n", n, now_s() - t0);
	sqlite3_close(db);
	PQfinish(pg);
	merkle_free(t);
	return 0;
}

static int load(const char *url)
{
	struct cpaudit_config c = { .origin = "bench/audit", .journal_socket = "" };
	struct cpaudit *au;
	struct store *st;
	char err[512];
	long before;
	double t0;

	if (store_open(url, &st, err, sizeof(err))) {
		fprintf(stderr, "audit_bench: %s\n", err);
		return 1;
	}
	before = rss_kb();
	t0 = now_s();
	if (cpaudit_new(st, &c, &au, err, sizeof(err))) {
		fprintf(stderr, "audit_bench: %s\n", err);
		return 1;
	}
	printf("records=%" PRIu64 " load_seconds=%.2f rss_mb=%.1f\n", cpaudit_size(au), now_s() - t0,
	       (double)(rss_kb() - before) / 1024);
	cpaudit_free(au);
	store_close(st);
	return 0;
}

static int append(const char *url, double seconds, const char *tag, int batch)
{
	struct cpaudit_config c = { .origin = "bench/audit", .journal_socket = "" };
	struct event_base *base = NULL;
	struct cpaudit *au;
	struct store *st;
	char err[512];
	int64_t n = 0;
	double t0, t;

	if (store_open(url, &st, err, sizeof(err)) || cpaudit_new(st, &c, &au, err, sizeof(err))) {
		fprintf(stderr, "audit_bench: %s\n", err);
		return 1;
	}
	if (batch > 1 && (!(base = event_base_new()) || cpaudit_set_event_base(au, base)))
		return 1;
	t0 = now_s();
	do {
		if (batch > 1) {
			/* One turn of the loop: batch events queued, then the loop turns and writes them. */
			for (int k = 0; k < batch; k++, n++) {
				struct cpevent ev = { .kind = CPEVENT_POLICY_APPLIED, .at = 1796000000000 + n,
						      .subject = "CN=bench-agent", .fingerprint = "00", .serial = 1 };

				memcpy(ev.uid, &n, sizeof(n));
				cpaudit_on_event(&ev, au);
			}
			event_base_loop(base, EVLOOP_NONBLOCK);
			if (cpaudit_size(au) == 0) {
				fprintf(stderr, "audit_bench: the batch was not written\n");
				return 1;
			}
		} else {
			json_t *f = admin_fields(n, tag);
			int e = cpaudit_append(au, "admin", f, 1796000000000 + n, NULL);

			json_decref(f);
			if (e) {
				fprintf(stderr, "audit_bench: append: %s\n", strerror(-e));
				return 1;
			}
			n++;
		}
		t = now_s() - t0;
	} while (t < seconds);
	cpaudit_set_event_base(au, NULL);
	if (base)
		event_base_free(base);
	printf("appends=%" PRId64 " seconds=%.2f per_second=%.0f size=%" PRIu64 "\n", n, t, (double)n / t,
	       cpaudit_size(au));
	cpaudit_free(au);
	store_close(st);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "fill"))
		return fill(argv[2], strtoll(argv[3], NULL, 10));
	if (argc == 3 && !strcmp(argv[1], "load"))
		return load(argv[2]);
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "append"))
		return append(argv[2], strtod(argv[3], NULL), argv[4], argc == 6 ? atoi(argv[5]) : 1);
	fprintf(stderr, "usage: audit_bench fill URL N | load URL | append URL SECONDS TAG [BATCH]\n");
	return 64;
}
