/*
 * vigilctl.c - the administrator's client of vigil-cp's admin API
 * (control-plane/api.h, docs/vigilctl.1).  One request per run over HTTPS
 * with libcurl: TLS 1.2 or newer, the server verified against --ca (and
 * only --ca: the system's CA store is not used), the administrator's
 * client certificate presented.
 *
 *   vigilctl [options] agents [--selector k=v,...]
 *   vigilctl [options] agent ID
 *   vigilctl [options] policy upload FILE.yaml FILE.yaml.sig
 *   vigilctl [options] policy list
 *   vigilctl [options] policy show SERIAL
 *   vigilctl [options] assign SERIAL --selector k=v,...
 *   vigilctl [options] assignments
 *   vigilctl [options] audit verify --audit-pubkey FILE [--state FILE]
 *   vigilctl [options] audit tail [--follow] [--since N]
 *   vigilctl [options] audit export [--since N]
 *   vigilctl [options] rollout start SERIAL --selector k=v,... --stages 1,10%,...
 *                      [--bake D] [--max-failures N] [--report-timeout D]
 *   vigilctl [options] rollout list|status ID|halt ID|resume ID|abort ID
 *   vigilctl [options] policy revert --to SERIAL --out FILE.yaml [--force]
 *
 * Output: a table (or "key: value" lines for one object) when stdout is a
 * terminal, the server's JSON otherwise or with --json (--table forces
 * the table); policy show prints the policy's YAML unless --json.  Errors: one line on stderr, and a sysexits code:
 *   64 usage, 65 the server refused the request (400, 404, 405, 409, 413,
 *   422), 66 an input file is missing or unreadable, 69 the server cannot
 *   be reached (connection, timeout, 5xx), 76 protocol error (the server's
 *   certificate does not verify against --ca, an unexpected reply), 77
 *   permission (401, 403, or the server refused our certificate at the
 *   handshake), 78 configuration (--cert, --key or --ca unusable, bad URL).
 *
 * Runs as the administrator, unprivileged.  Everything the server sends is
 * bounded (VIGILCTL_MAX_REPLY) and made safe for a terminal before it is
 * printed: agent descriptions come from agents, which are not trusted.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "auditverify.h"
#include "checkpoint.h"
#include "ctltable.h"
#include "policy.h"
#include "polrevert.h"
#include "rollout.h"
#include "rollplan.h"
#include "signing.h"

#define EX_OK 0
#define EX_USAGE 64
#define EX_DATAERR 65
#define EX_NOINPUT 66
#define EX_UNAVAILABLE 69
#define EX_SOFTWARE 70
#define EX_PROTOCOL 76
#define EX_NOPERM 77
#define EX_CONFIG 78
#define EX_CANTCREAT 73

#define VIGILCTL_MAX_REPLY (64u << 20)	/* a listing of many thousand agents fits */
#define VIGILCTL_MAX_URL 4096

static const char *prog = "vigilctl";

struct opts {
	const char *server, *cert, *key, *ca, *selector;
	long timeout;
	int json;		/* 1 --json, 0 --table, -1 by isatty(stdout) */
	/* audit commands */
	const char *audit_pubkey, *state;
	bool follow;
	long long since;	/* -1: not given */
	/* rollout start; policy revert */
	const char *stages, *bake, *report_timeout, *revert_to, *out;
	long max_failures;	/* -1 when not given */
	bool force;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [--server URL] [--cert F] [--key F] [--ca F] [--json|--table] COMMAND\n"
		"  agents [--selector k=v,...]        list agents (those matching the selector)\n"
		"  agent ID                           show one agent (32 hex digits or a UUID)\n"
		"  policy upload FILE.yaml FILE.sig   upload a signed policy\n"
		"  policy list                        list uploaded policies\n"
		"  policy show SERIAL                 print a policy's YAML (--json: with its signature)\n"
		"  assign SERIAL --selector k=v,...   make agents that match run policy SERIAL\n"
		"  assignments                        list assignments, oldest first\n"
		"  audit verify --audit-pubkey F [--state F]\n"
		"                                     check the audit log against its signed checkpoint\n"
		"                                     and the checkpoint this command saved last time\n"
		"  audit tail [--follow] [--since N]  print the last records (and new ones as they come)\n"
		"  audit export [--since N]           the records from N on as JSON lines, as stored\n"
		"  rollout start SERIAL --selector k=v,... --stages 1,10%%,50%%,100%%\n"
		"        [--bake 5m] [--max-failures 0] [--report-timeout 10m]\n"
		"                                     offer policy SERIAL stage by stage\n"
		"  rollout list | status ID | halt ID | resume ID | abort ID\n"
		"  policy revert --to SERIAL --out FILE.yaml [--force]\n"
		"                                     write policy SERIAL's YAML with the next serial\n"
		"Options may also come from VIGILCTL_SERVER, VIGILCTL_CERT, VIGILCTL_KEY, VIGILCTL_CA.\n"
		"--timeout S (default 30) bounds the whole request.  See vigilctl(1).\n"
		"%s --help prints this text, %s --version the version.\n",
		prog, prog, prog);
}

/* One line on stderr, made safe to print; returns code. */
static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...)
{
	char line[2048], safe[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", prog, ctltable_sanitize(line, safe, sizeof(safe)));
	return code;
}

/* ------------------------------------------------------------------------
 * HTTP. */

struct buf {
	char *data;
	size_t len;
	bool too_big;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t add = size * n;
	char *d;

	if (add > VIGILCTL_MAX_REPLY - b->len) {
		b->too_big = true;
		return 0;
	}
	d = realloc(b->data, b->len + add + 1);
	if (!d)
		return 0;
	memcpy(d + b->len, p, add);
	b->len += add;
	d[b->len] = '\0';
	b->data = d;
	return add;
}

/* Whether curl's message says the server refused our certificate at the handshake. */
static bool refused_our_cert(const char *msg)
{
	static const char *const alerts[] = { "alert unknown ca", "alert bad certificate",
					      "alert certificate required", "alert certificate revoked",
					      "alert certificate expired", "alert unsupported certificate",
					      "alert certificate unknown", "alert access denied", NULL };

	for (size_t i = 0; alerts[i]; i++)
		if (strstr(msg, alerts[i]))
			return true;
	return false;
}

/*
 * The exit code and line for a failed transfer.  tls_done: the TLS
 * handshake had completed, as far as the client could tell.
 */
static int curl_exit(CURLcode c, const char *errbuf, bool tls_done, const struct opts *o)
{
	const char *msg = errbuf[0] ? errbuf : curl_easy_strerror(c);

	switch (c) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		return fail(EX_CONFIG, "--server %s: %s", o->server, msg);
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_CACERT_BADFILE:
		return fail(EX_CONFIG, "TLS setup (--cert %s, --key %s, --ca %s): %s", o->cert, o->key,
			    o->ca, msg);
	case CURLE_PEER_FAILED_VERIFICATION:
		return fail(EX_PROTOCOL, "%s: the server's certificate does not verify against --ca %s: %s",
			    o->server, o->ca, msg);
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
		if (refused_our_cert(msg))
			return fail(EX_NOPERM, "%s refused our certificate (--cert %s): %s", o->server,
				    o->cert, msg);
		/*
		 * In TLS 1.3 the server checks the client's certificate after the
		 * client has finished its handshake: a refusal is an alert and a
		 * close, and when the request is already on its way the close is a
		 * reset that discards the alert.  The request then cannot even be
		 * sent over a handshake that had just succeeded.
		 */
		if (c == CURLE_SEND_ERROR && tls_done)
			return fail(EX_NOPERM, "%s closed the connection as soon as the TLS handshake "
				    "ended: it refused our certificate (--cert %s): %s", o->server,
				    o->cert, msg);
		return fail(c == CURLE_SSL_CONNECT_ERROR ? EX_PROTOCOL : EX_UNAVAILABLE, "%s: %s",
			    o->server, msg);
	case CURLE_WRITE_ERROR:
		return fail(EX_PROTOCOL, "%s: the reply is larger than %u bytes", o->server,
			    VIGILCTL_MAX_REPLY);
	case CURLE_OUT_OF_MEMORY:
		return fail(EX_SOFTWARE, "out of memory");
	default:
		return fail(EX_UNAVAILABLE, "%s: %s", o->server, msg);
	}
}

/*
 * One HTTP exchange: 0 with the HTTP status and the body (b->data
 * NUL-terminated, or NULL when empty; caller frees) whatever the status,
 * or the exit code with the error line already printed when no reply came.
 * accept is the Accept header's value.
 */
static int transfer(const struct opts *o, const char *method, const char *path, const char *body,
		    const char *accept, long *ret_status, struct buf *ret)
{
	char url[VIGILCTL_MAX_URL], errbuf[CURL_ERROR_SIZE] = "", acc[128];
	struct curl_slist *hdrs = NULL;
	struct buf b = { 0 };
	long status = 0;
	curl_off_t tls_time = 0;
	CURLcode c;
	CURL *h;
	int code;
	size_t slen = strlen(o->server);

	while (slen > 0 && o->server[slen - 1] == '/')
		slen--;
	if ((size_t)snprintf(url, sizeof(url), "%.*s%s", (int)slen, o->server, path) >= sizeof(url))
		return fail(EX_USAGE, "request URL too long");
	h = curl_easy_init();
	if (!h)
		return fail(EX_SOFTWARE, "curl_easy_init failed");
	snprintf(acc, sizeof(acc), "Accept: %s", accept);
	hdrs = curl_slist_append(hdrs, acc);
	if (body)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_CAINFO, o->ca);
	curl_easy_setopt(h, CURLOPT_CAPATH, NULL);	/* --ca alone, not the system's store */
	curl_easy_setopt(h, CURLOPT_SSLCERT, o->cert);
	curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
	curl_easy_setopt(h, CURLOPT_SSLKEY, o->key);
	curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
	curl_easy_setopt(h, CURLOPT_TIMEOUT, o->timeout);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, o->timeout < 10 ? o->timeout : 10L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "vigilctl/" VIGIL_VERSION);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	if (!strcmp(method, "POST")) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? strlen(body) : 0));
	}
	c = curl_easy_perform(h);
	if (c == CURLE_WRITE_ERROR && !b.too_big)
		c = CURLE_OUT_OF_MEMORY;
	if (c == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	else if (curl_easy_getinfo(h, CURLINFO_APPCONNECT_TIME_T, &tls_time) != CURLE_OK)
		tls_time = 0;
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	if (c != CURLE_OK) {
		code = curl_exit(c, errbuf, tls_time > 0, o);
		free(b.data);
		return code;
	}
	*ret_status = status;
	*ret = b;
	return 0;
}

/* The exit code for a refusal (status not 2xx) with the server's error text, printed. */
static int refused(const char *what, long status, const struct buf *b)
{
	json_t *j = b->len ? json_loadb(b->data, b->len, 0, NULL) : NULL;
	const char *err = json_string_value(json_object_get(j, "error"));
	char fallback[128];
	int code;

	if (!err) {
		snprintf(fallback, sizeof(fallback), "HTTP %ld%s", status,
			 b->len ? " with a reply that is not ours" : "");
		err = fallback;
	}
	if (status == 401 || status == 403)
		code = EX_NOPERM;
	else if (status >= 500)
		code = EX_UNAVAILABLE;
	else if (status >= 400)
		code = EX_DATAERR;
	else
		code = EX_PROTOCOL;
	code = fail(code, "%s: refused (HTTP %ld): %s", what, status, err);
	json_decref(j);
	return code;
}

/*
 * One request; on a 2xx reply, 0 with the JSON body in *ret (caller
 * decrefs).  Otherwise the exit code, the error line already printed.
 * what names the command in messages ("policy upload").
 */
static int request(const struct opts *o, const char *method, const char *path, const char *body,
		   const char *what, json_t **ret)
{
	struct buf b = { 0 };
	long status = 0;
	json_t *j = NULL;
	int code = transfer(o, method, path, body, "application/json", &status, &b);

	if (code)
		return code;
	if (status < 200 || status >= 300) {
		code = refused(what, status, &b);
		free(b.data);
		return code;
	}
	if (b.len)
		j = json_loadb(b.data, b.len, 0, NULL);
	free(b.data);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return fail(EX_PROTOCOL, "%s: %s: the reply (HTTP %ld) is not a JSON object", o->server, what,
			    status);
	}
	*ret = j;
	return 0;
}

/* ------------------------------------------------------------------------
 * Output. */

static bool use_json(const struct opts *o)
{
	return o->json > 0 || (o->json < 0 && !isatty(STDOUT_FILENO));
}

static void print_json(json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
	putchar('\n');
}

/* ms since the epoch as "2026-11-30 09:20:47Z", or "-" for 0. */
static const char *when(json_int_t ms, char *out, size_t outlen)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || !gmtime_r(&t, &tm) || !strftime(out, outlen, "%Y-%m-%d %H:%M:%SZ", &tm))
		snprintf(out, outlen, "-");
	return out;
}

static const char *num(json_t *v, char *out, size_t outlen)
{
	if (json_is_integer(v))
		snprintf(out, outlen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else
		snprintf(out, outlen, "-");
	return out;
}

/* A serial, "-" for 0 (none). */
static const char *serial_text(json_t *v, char *out, size_t outlen)
{
	if (!json_is_integer(v) || json_integer_value(v) <= 0)
		return "-";
	return num(v, out, outlen);
}

static const char *str(json_t *v)
{
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* An attribute of an agent's description, identifying first. */
static const char *attr(json_t *agent, const char *key)
{
	json_t *d = json_object_get(agent, "description");
	const char *v = str(json_object_get(json_object_get(d, "identifying"), key));

	return v ? v : str(json_object_get(json_object_get(d, "non_identifying"), key));
}

static int print_table(struct ctltable *t)
{
	ctltable_print(t, stdout);
	ctltable_free(t);
	return EX_OK;
}

static int table_new(size_t n, const char *const *h, struct ctltable **t)
{
	return ctltable_new(n, h, t) ? fail(EX_SOFTWARE, "out of memory") : 0;
}

/* Add a row; on failure free t and return the exit code. */
static int table_add(struct ctltable *t, const char *const *cells)
{
	if (!ctltable_add(t, cells))
		return 0;
	ctltable_free(t);
	return fail(EX_SOFTWARE, "out of memory");
}

static int show_agents(json_t *j)
{
	static const char *const h[] = { "UID", "HOST", "HEALTHY", "APPLIED", "ASSIGNED", "CONFIG",
					 "LAST SEEN", "LAST ERROR" };
	json_t *arr = json_object_get(j, "agents"), *ag;
	struct ctltable *t;
	size_t i;
	int r;

	if (!json_is_array(arr))
		return fail(EX_PROTOCOL, "the reply has no \"agents\" list");
	if ((r = table_new(8, h, &t)))
		return r;
	json_array_foreach(arr, i, ag) {
		char a[32], s[32], ls[48];
		json_t *hv = json_object_get(ag, "healthy");
		const char *cells[8] = {
			str(json_object_get(ag, "uid")),
			attr(ag, "host.name"),
			json_is_true(hv) ? "yes" : json_is_false(hv) ? "NO" : "-",
			serial_text(json_object_get(ag, "applied_serial"), a, sizeof(a)),
			serial_text(json_object_get(ag, "assigned_serial"), s, sizeof(s)),
			str(json_object_get(ag, "remote_config_status")),
			when(json_integer_value(json_object_get(ag, "last_seen")), ls, sizeof(ls)),
			str(json_object_get(ag, "last_error")),
		};

		if (json_is_true(json_object_get(ag, "disconnected")))
			strcat(ls, " (left)");	/* sent agent_disconnect since it last spoke */
		if ((r = table_add(t, cells)))
			return r;
	}
	return print_table(t);
}

static void kv(const char *k, const char *v)
{
	char safe[4096];

	printf("%-22s %s\n", k, ctltable_sanitize(v ? v : "-", safe, sizeof(safe)));
}

static void kv_attrs(json_t *obj, const char *label)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v) {
		char key[256], safe[256], line[4096];
		char *dumped = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		snprintf(key, sizeof(key), "%s", ctltable_sanitize(k, safe, sizeof(safe)));
		snprintf(line, sizeof(line), "%s=%s", key, dumped ? dumped : json_string_value(v));
		kv(label, line);
		label = "";
		free(dumped);
	}
}

static int show_agent(json_t *ag)
{
	json_t *cert = json_object_get(ag, "certificate"), *d = json_object_get(ag, "description");
	json_t *hv = json_object_get(ag, "healthy"), *health = json_object_get(ag, "health");
	char b1[32], b2[32];

	kv("uid:", str(json_object_get(ag, "uid")));
	kv("uuid:", str(json_object_get(ag, "uuid")));
	kv("certificate subject:", str(json_object_get(cert, "subject")));
	kv("certificate SANs:", str(json_object_get(cert, "sans")));
	kv("certificate serial:", str(json_object_get(cert, "serial")));
	kv("certificate sha256:", str(json_object_get(cert, "fingerprint")));
	kv_attrs(json_object_get(d, "identifying"), "identifying:");
	kv_attrs(json_object_get(d, "non_identifying"), "non-identifying:");
	kv("first seen:", when(json_integer_value(json_object_get(ag, "first_seen")), b1, sizeof(b1)));
	kv("last seen:", when(json_integer_value(json_object_get(ag, "last_seen")), b2, sizeof(b2)));
	kv("disconnected:", json_is_true(json_object_get(ag, "disconnected")) ? "yes" : "no");
	kv("healthy:", json_is_true(hv) ? "yes" : json_is_false(hv) ? "NO" : "-");
	if (json_is_object(health) || json_is_string(health)) {
		char *h = json_dumps(health, JSON_COMPACT | JSON_ENCODE_ANY);

		kv("health:", h);
		free(h);
	}
	kv("applied serial:", serial_text(json_object_get(ag, "applied_serial"), b1, sizeof(b1)));
	kv("assigned serial:", serial_text(json_object_get(ag, "assigned_serial"), b2, sizeof(b2)));
	kv("remote config status:", str(json_object_get(ag, "remote_config_status")));
	kv("remote config hash:", str(json_object_get(ag, "remote_config_hash")));
	kv("effective config hash:", str(json_object_get(ag, "effective_config_hash")));
	kv("last error:", str(json_object_get(ag, "last_error")));
	return EX_OK;
}

static int show_policies(json_t *j)
{
	static const char *const h[] = { "SERIAL", "SHA256", "SIZE", "UPLOADED", "UPLOADED BY",
					 "SIGNER" };
	json_t *arr = json_object_get(j, "policies"), *p;
	struct ctltable *t;
	size_t i;
	int r;

	if (!json_is_array(arr))
		return fail(EX_PROTOCOL, "the reply has no \"policies\" list");
	if ((r = table_new(6, h, &t)))
		return r;
	json_array_foreach(arr, i, p) {
		char s[32], sz[32], up[32], sum[17];
		const char *cells[6] = {
			num(json_object_get(p, "serial"), s, sizeof(s)),
			sum,
			num(json_object_get(p, "size"), sz, sizeof(sz)),
			when(json_integer_value(json_object_get(p, "uploaded_at")), up, sizeof(up)),
			str(json_object_get(p, "uploaded_by")),
			str(json_object_get(p, "signer")),
		};

		snprintf(sum, sizeof(sum), "%s", str(json_object_get(p, "sha256")) ?: "-");
		if ((r = table_add(t, cells)))
			return r;
	}
	return print_table(t);
}

static int show_assignments(json_t *j)
{
	static const char *const h[] = { "ID", "SERIAL", "SELECTOR", "ASSIGNED", "ASSIGNED BY" };
	json_t *arr = json_object_get(j, "assignments"), *a;
	struct ctltable *t;
	size_t i;
	int r;

	if (!json_is_array(arr))
		return fail(EX_PROTOCOL, "the reply has no \"assignments\" list");
	if ((r = table_new(5, h, &t)))
		return r;
	json_array_foreach(arr, i, a) {
		char id[32], s[32], at[32];
		const char *cells[5] = {
			num(json_object_get(a, "id"), id, sizeof(id)),
			num(json_object_get(a, "serial"), s, sizeof(s)),
			str(json_object_get(a, "selector")),
			when(json_integer_value(json_object_get(a, "assigned_at")), at, sizeof(at)),
			str(json_object_get(a, "assigned_by")),
		};

		if ((r = table_add(t, cells)))
			return r;
	}
	return print_table(t);
}

/* ------------------------------------------------------------------------
 * Commands. */

/* Percent-encode s for a query value (unreserved characters kept). */
static int pct_encode(const char *s, char *out, size_t outlen)
{
	static const char hexd[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		bool keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || strchr("-._~", *p);

		if (o + (keep ? 1 : 3) >= outlen)
			return -E2BIG;
		if (keep) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hexd[*p >> 4];
			out[o++] = hexd[*p & 15];
		}
	}
	out[o] = '\0';
	return 0;
}

/* GET path and print the reply: its JSON, or what show makes of it. */
static int get_and_show(const struct opts *o, const char *path, const char *what,
			int (*show)(json_t *))
{
	json_t *j;
	int r = request(o, "GET", path, NULL, what, &j);

	if (r)
		return r;
	if (use_json(o))
		print_json(j);
	else
		r = show(j);
	json_decref(j);
	return r;
}

static int cmd_agents(const struct opts *o, char **args)
{
	char path[VIGILCTL_MAX_URL / 2] = "/api/v1/agents", enc[VIGILCTL_MAX_URL / 4];

	(void)args;
	if (o->selector) {
		if (pct_encode(o->selector, enc, sizeof(enc)))
			return fail(EX_USAGE, "--selector: too long");
		snprintf(path, sizeof(path), "/api/v1/agents?selector=%s", enc);
	}
	return get_and_show(o, path, "agents", show_agents);
}

static int cmd_agent(const struct opts *o, char **args)
{
	const char *id = args[0];
	char path[256], enc[128];

	if (pct_encode(id, enc, sizeof(enc)))
		return fail(EX_USAGE, "agent id too long: 32 hex digits or a UUID");
	snprintf(path, sizeof(path), "/api/v1/agents/%s", enc);
	return get_and_show(o, path, "agent", show_agent);
}

/* A file's bytes as base64 (malloc'ed), or the exit code with the error printed. */
static int read_b64(const char *path, size_t max, const char *what, char **ret)
{
	void *buf;
	size_t len;
	char *b64;
	int r = signing_read_file(AT_FDCWD, path, max, false, &buf, &len);

	if (r == -EFBIG)
		return fail(EX_DATAERR, "%s: %s is larger than %zu bytes", path, what, max);
	if (r == -EINVAL)
		return fail(EX_NOINPUT, "%s: not a regular file", path);
	if (r == -ENOMEM)
		return fail(EX_SOFTWARE, "out of memory");
	if (r)
		return fail(EX_NOINPUT, "%s: %s", path, strerror(-r));
	if (len == 0) {
		free(buf);
		return fail(EX_DATAERR, "%s: empty file", path);
	}
	b64 = malloc(4 * ((len + 2) / 3) + 1);
	if (!b64) {
		free(buf);
		return fail(EX_SOFTWARE, "out of memory");
	}
	EVP_EncodeBlock((unsigned char *)b64, buf, (int)len);
	free(buf);
	*ret = b64;
	return 0;
}

static int cmd_upload(const struct opts *o, char **args)
{
	const char *yaml_path = args[0], *sig_path = args[1];
	char *yaml = NULL, *sig = NULL, *body = NULL;
	json_t *req, *j = NULL;
	int r;

	r = read_b64(yaml_path, POLICY_MAX_SIZE, "the policy", &yaml);
	if (!r)
		r = read_b64(sig_path, SIGNING_MAX_SIG_BYTES, "the signature", &sig);
	if (r)
		goto out;
	req = json_pack("{s:s, s:s}", "yaml", yaml, "signature", sig);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!body) {
		r = fail(EX_SOFTWARE, "out of memory");
		goto out;
	}
	r = request(o, "POST", "/api/v1/policies", body, "policy upload", &j);
	if (r)
		goto out;
	if (use_json(o)) {
		print_json(j);
	} else {
		char s[32], safe[1024];

		printf("uploaded policy serial %s (sha256 %s), %s\n",
		       num(json_object_get(j, "serial"), s, sizeof(s)),
		       str(json_object_get(j, "sha256")) ?: "-",
		       ctltable_sanitize(str(json_object_get(j, "signer")), safe, sizeof(safe)));
	}
out:
	json_decref(j);
	free(body);
	free(yaml);
	free(sig);
	return r;
}

static int cmd_policy_list(const struct opts *o, char **args)
{
	(void)args;
	return get_and_show(o, "/api/v1/policies", "policy list", show_policies);
}

/* A positive decimal serial, or 0. */
static long long parse_serial(const char *s)
{
	char *end;
	long long v;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	return errno || *end || v <= 0 ? 0 : v;
}

/* The policy in a policy show reply, decoded from base64, on stdout. */
static int print_policy_yaml(json_t *j)
{
	const char *b64 = str(json_object_get(j, "yaml"));
	unsigned char *yaml;
	json_int_t size;
	size_t n;
	int len;

	if (!b64)
		return fail(EX_PROTOCOL, "the reply has no \"yaml\"");
	n = strlen(b64);
	yaml = malloc(n / 4 * 3 + 3);
	len = yaml ? EVP_DecodeBlock(yaml, (const unsigned char *)b64, (int)n) : -1;
	if (len < 0) {
		free(yaml);
		return fail(EX_PROTOCOL, "the reply's \"yaml\" is not base64");
	}
	/* DecodeBlock counts padding as zero bytes; the server says the size. */
	size = json_integer_value(json_object_get(j, "size"));
	if (size >= 0 && size <= len)
		len = (int)size;
	fwrite(yaml, 1, (size_t)len, stdout);
	free(yaml);
	return EX_OK;
}

static int cmd_policy_show(const struct opts *o, char **args)
{
	const char *serial_text_arg = args[0];
	long long serial = parse_serial(serial_text_arg);
	char path[64];
	json_t *j;
	int r;

	if (!serial)
		return fail(EX_USAGE, "policy show: SERIAL must be a positive integer, not %s",
			    serial_text_arg);
	snprintf(path, sizeof(path), "/api/v1/policies/%lld", serial);
	r = request(o, "GET", path, NULL, "policy show", &j);
	if (r)
		return r;
	/* The YAML is this command's output, on a terminal or not: JSON only when asked. */
	if (o->json > 0)
		print_json(j);
	else
		r = print_policy_yaml(j);
	json_decref(j);
	return r;
}

static int cmd_assign(const struct opts *o, char **args)
{
	const char *serial_arg = args[0];
	long long serial = parse_serial(serial_arg);
	char *body;
	json_t *req, *j;
	int r;

	if (!serial)
		return fail(EX_USAGE, "assign: SERIAL must be a positive integer, not %s", serial_arg);
	if (!o->selector)
		return fail(EX_USAGE, "assign: --selector k=v,... is required");
	req = json_pack("{s:I, s:s}", "serial", (json_int_t)serial, "selector", o->selector);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!body)
		return fail(EX_SOFTWARE, "out of memory");
	r = request(o, "POST", "/api/v1/assignments", body, "assign", &j);
	free(body);
	if (r)
		return r;
	if (use_json(o)) {
		print_json(j);
	} else {
		char id[32], s[32], safe[1024];

		printf("assignment %s: agents matching %s run policy serial %s\n",
		       num(json_object_get(j, "id"), id, sizeof(id)),
		       ctltable_sanitize(str(json_object_get(j, "selector")), safe, sizeof(safe)),
		       num(json_object_get(j, "serial"), s, sizeof(s)));
	}
	json_decref(j);
	return r;
}

static int cmd_assignments(const struct opts *o, char **args)
{
	(void)args;
	return get_and_show(o, "/api/v1/assignments", "assignments", show_assignments);
}

/* ------------------------------------------------------------------------
 * The audit log (cpaudit.h, auditapi.h, auditverify.h). */

#define AUDIT_PAGE 10000

/* GET path expecting a 2xx reply of any type: 0 with the body (b->data may be NULL), or the exit code. */
static int get_raw(const struct opts *o, const char *path, const char *accept, const char *what, struct buf *ret)
{
	long status = 0;
	int code = transfer(o, "GET", path, NULL, accept, &status, ret);

	if (code)
		return code;
	if (status < 200 || status >= 300) {
		code = refused(what, status, ret);
		free(ret->data);
		memset(ret, 0, sizeof(*ret));
	}
	return code;
}

/* One page of records from since: cb for each line (without its '\n'); *ret_n lines. */
static int audit_page(const struct opts *o, uint64_t since, const char *what,
		      int (*cb)(const char *line, size_t len, uint64_t idx, void *arg), void *arg, uint64_t *ret_n)
{
	char path[128];
	struct buf b = { 0 };
	uint64_t n = 0;
	int code;

	snprintf(path, sizeof(path), "/api/v1/audit/records?since=%" PRIu64 "&limit=%d", since, AUDIT_PAGE);
	code = get_raw(o, path, "application/x-ndjson", what, &b);
	for (size_t at = 0; code == 0 && at < b.len;) {
		char *nl = memchr(b.data + at, '\n', b.len - at);

		if (!nl) {
			code = fail(EX_PROTOCOL, "%s: the server's record %" PRIu64 " is not a whole line", what,
				    since + n);
			break;
		}
		code = cb(b.data + at, (size_t)(nl - (b.data + at)), since + n, arg);
		n++;
		at = (size_t)(nl - b.data) + 1;
	}
	free(b.data);
	*ret_n = n;
	return code;
}

static int read_small(const char *path, char *buf, size_t cap, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, cap);
	close(fd);
	if (n < 0)
		return -EIO;
	if ((size_t)n == cap)
		return -EFBIG;
	buf[n] = '\0';
	*ret_len = (size_t)n;
	return 0;
}

/* mkdir -p of path's directory (0700 for what it makes). */
static int make_parent(const char *path)
{
	char dir[4096];
	char *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* text replaces path whole or not at all: a temporary beside it, fsynced, renamed over it. */
static int save_atomic(const char *path, const char *text, size_t len)
{
	char tmp[4200], dir[4096], *slash;
	int fd, e = 0, dfd;

	if ((e = make_parent(path)))
		return e;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len || fsync(fd))
		e = -EIO;
	if (close(fd) && !e)
		e = -EIO;
	if (!e && rename(tmp, path))
		e = -errno;
	if (e) {
		unlink(tmp);
		return e;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

/* The default state file: $XDG_STATE_HOME (or ~/.local/state)/vigil/audit-ORIGIN.checkpoint. */
static int default_state(const char *origin, char *out, size_t outlen)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char name[CHECKPOINT_MAX_ORIGIN + 1];
	size_t i;

	for (i = 0; origin[i] && i < sizeof(name) - 1; i++)
		name[i] = origin[i] == '/' ? '_' : origin[i];
	name[i] = '\0';
	if (xdg && *xdg == '/')
		return snprintf(out, outlen, "%s/vigil/audit-%s.checkpoint", xdg, name) >= (int)outlen ? -1 : 0;
	if (home && *home)
		return snprintf(out, outlen, "%s/.local/state/vigil/audit-%s.checkpoint", home, name) >= (int)outlen
			       ? -1
			       : 0;
	return -1;
}

static int feed(const char *line, size_t len, uint64_t idx, void *arg)
{
	struct auditverify *v = arg;
	char err[512];
	int e = auditverify_record(v, (const uint8_t *)line, len, err, sizeof(err));

	if (e == -EBADMSG)
		return fail(EX_DATAERR, "audit verify: first bad index %" PRId64 ": %s", auditverify_bad_index(v),
			    err);
	return e == -ERANGE ? 0 : e ? fail(EX_SOFTWARE, "audit verify: %s", strerror(-e)) : 0;
}

/* The server's consistency proof from old to cur, checked against what verify saw. */
static int check_saved(const struct opts *o, struct auditverify *v, const struct checkpoint *old,
		       const struct checkpoint *cur, const char *state)
{
	uint8_t proof[MERKLE_MAX_PROOF * MERKLE_HASH_LEN];
	size_t np = 0;
	char err[512], path[128];
	json_t *j = NULL, *arr;
	int code;

	if (old->size > 0 && old->size < cur->size) {
		snprintf(path, sizeof(path), "/api/v1/audit/proof/consistency?from=%" PRIu64 "&to=%" PRIu64,
			 old->size, cur->size);
		if ((code = request(o, "GET", path, NULL, "audit verify", &j)))
			return code;
		arr = json_object_get(j, "proof");
		if (!json_is_array(arr) || json_array_size(arr) > MERKLE_MAX_PROOF) {
			json_decref(j);
			return fail(EX_PROTOCOL, "audit verify: the consistency proof is not a list of hashes");
		}
		for (np = 0; np < json_array_size(arr); np++) {
			json_t *h = json_array_get(arr, np);
			uint8_t tmp[36];

			if (!json_is_string(h) || json_string_length(h) != 44 ||
			    EVP_DecodeBlock(tmp, (const unsigned char *)json_string_value(h), 44) != 33) {
				json_decref(j);
				return fail(EX_PROTOCOL, "audit verify: the consistency proof is not a list of hashes");
			}
			memcpy(proof + np * MERKLE_HASH_LEN, tmp, MERKLE_HASH_LEN);
		}
		json_decref(j);
	}
	if (auditverify_against_saved(v, old, proof, np, err, sizeof(err)))
		return fail(EX_DATAERR, "audit verify: against the checkpoint saved in %s: %s", state, err);
	return 0;
}

static int cmd_audit_verify(const struct opts *o, char **args)
{
	char err[512], state[4096], saved_text[CHECKPOINT_MAX_TEXT + 1], hex[2 * MERKLE_HASH_LEN + 1];
	struct checkpoint cp, old;
	struct auditverify *v = NULL;
	struct buf b = { 0 };
	EVP_PKEY *pub = NULL;
	size_t saved_len = 0;
	bool have_saved = false;
	uint64_t n;
	int code, e;

	(void)args;
	if (!o->audit_pubkey)
		return fail(EX_USAGE, "audit verify: --audit-pubkey FILE (the log's Ed25519 public key, PEM) is "
				      "required");
	if (checkpoint_load_key("--audit-pubkey", o->audit_pubkey, &pub, err, sizeof(err)))
		return fail(EX_CONFIG, "%s", err);
	/* The checkpoint first: the records are checked against what the server signed. */
	code = get_raw(o, "/api/v1/audit/checkpoint", "text/plain", "audit verify", &b);
	if (code)
		goto out;
	if (checkpoint_verify(b.data ? b.data : "", b.len, pub, NULL, &cp, err, sizeof(err))) {
		code = fail(EX_DATAERR, "audit verify: %s", err);
		goto out;
	}
	if (o->state)
		snprintf(state, sizeof(state), "%s", o->state);
	else if (default_state(cp.origin, state, sizeof(state))) {
		code = fail(EX_USAGE, "audit verify: no $XDG_STATE_HOME or $HOME for the state file: give --state FILE");
		goto out;
	}
	e = read_small(state, saved_text, sizeof(saved_text), &saved_len);
	if (e == 0) {
		if (checkpoint_verify(saved_text, saved_len, pub, NULL, &old, err, sizeof(err))) {
			code = fail(EX_DATAERR, "audit verify: the state file %s does not hold a checkpoint signed by "
						"this key: %s", state, err);
			goto out;
		}
		have_saved = true;
	} else if (e != -ENOENT) {
		code = fail(EX_NOINPUT, "audit verify: the state file %s: %s", state, strerror(-e));
		goto out;
	}
	if (auditverify_new(&cp, &v)) {
		code = fail(EX_SOFTWARE, "out of memory");
		goto out;
	}
	while (auditverify_count(v) < cp.size) {
		code = audit_page(o, auditverify_count(v), "audit verify", feed, v, &n);
		if (code)
			goto out;
		if (n == 0)
			break;
	}
	if (auditverify_finish(v, err, sizeof(err))) {
		code = fail(EX_DATAERR, "audit verify: first bad index %" PRId64 ": %s", auditverify_bad_index(v),
			    err);
		goto out;
	}
	if (have_saved && (code = check_saved(o, v, &old, &cp, state)))
		goto out;
	if ((e = save_atomic(state, b.data, b.len))) {
		code = fail(EX_CANTCREAT, "audit verify: the log verified, but saving its checkpoint to %s failed: %s",
			    state, strerror(-e));
		goto out;
	}
	for (int i = 0; i < MERKLE_HASH_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", cp.root[i]);
	printf("audit log %s verified: %" PRIu64 " records, root %s", cp.origin, cp.size, hex);
	if (have_saved)
		printf("; consistent with the checkpoint of %" PRIu64 " records verified before", old.size);
	printf("\n");
	code = 0;
out:
	auditverify_free(v);
	EVP_PKEY_free(pub);
	free(b.data);
	return code;
}

/* A record as one line for a person: index, time, kind, then the other fields as k=v. */
static int print_human(const char *line, size_t len, uint64_t idx, void *arg)
{
	json_t *r = json_loadb(line, len, 0, NULL), *val;
	char t[40], safe[4096], *v;
	const char *k;

	(void)arg;
	if (!json_is_object(r)) {
		json_decref(r);
		printf("#%" PRIu64 " (not a JSON record)\n", idx);
		return 0;
	}
	printf("#%" PRIu64 " %s %s", idx, when(json_integer_value(json_object_get(r, "t")), t, sizeof(t)),
	       ctltable_sanitize(str(json_object_get(r, "kind")), safe, sizeof(safe)));
	json_object_foreach(r, k, val) {
		if (!strcmp(k, "i") || !strcmp(k, "t") || !strcmp(k, "kind") || !strcmp(k, "prev"))
			continue;
		v = json_is_string(val) ? strdup(json_string_value(val)) : json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
		printf(" %s=%s", k, ctltable_sanitize(v ? v : "?", safe, sizeof(safe)));
		free(v);
	}
	printf("\n");
	json_decref(r);
	return 0;
}

static int cmd_audit_tail(const struct opts *o, char **args)
{
	uint64_t next, n;
	json_t *j;
	int code;

	(void)args;
	if (o->since >= 0) {
		next = (uint64_t)o->since;
	} else {
		if ((code = request(o, "GET", "/api/v1/audit", NULL, "audit tail", &j)))
			return code;
		n = (uint64_t)json_integer_value(json_object_get(j, "size"));
		json_decref(j);
		next = n > 10 ? n - 10 : 0;
	}
	for (;;) {
		do {
			if ((code = audit_page(o, next, "audit tail", print_human, NULL, &n)))
				return code;
			next += n;
		} while (n > 0);
		fflush(stdout);
		if (!o->follow)
			return 0;
		sleep(1);
	}
}

static int print_raw(const char *line, size_t len, uint64_t idx, void *arg)
{
	(void)idx;
	(void)arg;
	fwrite(line, 1, len, stdout);
	putchar('\n');
	return 0;
}

static int cmd_audit_export(const struct opts *o, char **args)
{
	uint64_t next = o->since > 0 ? (uint64_t)o->since : 0, n;
	int code;

	(void)args;
	do {
		if ((code = audit_page(o, next, "audit export", print_raw, NULL, &n)))
			return code;
		next += n;
	} while (n > 0);
	return 0;
}

/* ------------------------------------------------------------------------
 * Staged rollouts and rollbacks. */

/* A positive decimal rollout id from the command line, or 0. */
static long long parse_id(const char *s)
{
	return parse_serial(s);
}

static void rollout_line(json_t *r)
{
	char id[32], s[32], safe[1024];
	json_int_t stage = json_integer_value(json_object_get(r, "stage"));

	printf("rollout %s: policy serial %s to %s, stages %s: %s at stage %" JSON_INTEGER_FORMAT "%s%s\n",
	       num(json_object_get(r, "id"), id, sizeof(id)), num(json_object_get(r, "serial"), s, sizeof(s)),
	       ctltable_sanitize(str(json_object_get(r, "selector")), safe, sizeof(safe)),
	       str(json_object_get(r, "stages")) ?: "-", str(json_object_get(r, "state")) ?: "-", stage + 1,
	       str(json_object_get(r, "reason")) ? ": " : "", str(json_object_get(r, "reason")) ?: "");
}

static int show_rollouts(json_t *j)
{
	static const char *const h[] = { "ID", "SERIAL", "SELECTOR", "STAGES", "STATE", "STAGE", "UPDATED",
					 "REASON" };
	json_t *arr = json_object_get(j, "rollouts"), *r;
	struct ctltable *t;
	size_t i;
	int e;

	if (!json_is_array(arr))
		return fail(EX_PROTOCOL, "the reply has no \"rollouts\" list");
	if ((e = table_new(8, h, &t)))
		return e;
	json_array_foreach(arr, i, r) {
		char id[32], s[32], st[32], up[32];
		const char *cells[8] = {
			num(json_object_get(r, "id"), id, sizeof(id)),
			num(json_object_get(r, "serial"), s, sizeof(s)),
			str(json_object_get(r, "selector")),
			str(json_object_get(r, "stages")),
			str(json_object_get(r, "state")),
			st,
			when(json_integer_value(json_object_get(r, "updated_at")), up, sizeof(up)),
			str(json_object_get(r, "reason")),
		};

		snprintf(st, sizeof(st), "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(r, "stage")) + 1);
		if ((e = table_add(t, cells)))
			return e;
	}
	return print_table(t);
}

static int show_rollout(json_t *r)
{
	static const char *const hs[] = { "STAGE", "SPEC", "AGENTS", "NEW", "SENT", "APPLIED", "SUCCEEDED",
					  "FAILED", "STATUS" };
	static const char *const hf[] = { "AGENT", "STAGE", "FAILED AT", "REASON" };
	json_t *stages = json_object_get(r, "stage_status"), *fails = json_object_get(r, "failures"), *x;
	char b1[48], b2[48], b3[48];
	struct ctltable *t;
	size_t i;
	int e;

	kv("rollout:", num(json_object_get(r, "id"), b1, sizeof(b1)));
	kv("policy serial:", num(json_object_get(r, "serial"), b1, sizeof(b1)));
	kv("selector:", str(json_object_get(r, "selector")));
	kv("stages:", str(json_object_get(r, "stages")));
	kv("state:", str(json_object_get(r, "state")));
	kv("reason:", str(json_object_get(r, "reason")));
	snprintf(b1, sizeof(b1), "%" JSON_INTEGER_FORMAT " (started %s)",
		 json_integer_value(json_object_get(r, "stage")) + 1,
		 when(json_integer_value(json_object_get(r, "stage_started_at")), b2, sizeof(b2)));
	kv("current stage:", b1);
	snprintf(b1, sizeof(b1), "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(r, "member_count")));
	kv("agents:", b1);
	if (json_is_false(json_object_get(r, "covers_all"))) {
		snprintf(b1, sizeof(b1), "%" JSON_INTEGER_FORMAT " agents",
			 json_integer_value(json_object_get(r, "not_covered")));
		kv("not in any stage:", b1);
		kv("", "(the last stage is not 100%: these are never offered the policy)");
	}
	snprintf(b1, sizeof(b1), "%" JSON_INTEGER_FORMAT " counted of %" JSON_INTEGER_FORMAT " (max %" JSON_INTEGER_FORMAT ")",
		 json_integer_value(json_object_get(r, "failures_counted")),
		 json_integer_value(json_object_get(r, "failure_count")),
		 json_integer_value(json_object_get(r, "max_failures")));
	kv("failures:", b1);
	rollplan_format_duration(json_integer_value(json_object_get(r, "bake_ms")), b1, sizeof(b1));
	kv("bake:", b1);
	rollplan_format_duration(json_integer_value(json_object_get(r, "report_timeout_ms")), b1, sizeof(b1));
	kv("report timeout:", b1);
	kv("created by:", str(json_object_get(r, "created_by")));
	kv("created:", when(json_integer_value(json_object_get(r, "created_at")), b3, sizeof(b3)));
	kv("assignment:", serial_text(json_object_get(r, "assignment_id"), b1, sizeof(b1)));
	putchar('\n');
	if ((e = table_new(9, hs, &t)))
		return e;
	json_array_foreach(stages, i, x) {
		char c[6][32];
		const char *cells[9] = {
			c[0],
			str(json_object_get(x, "spec")),
			num(json_object_get(x, "size"), c[1], sizeof(c[1])),
			num(json_object_get(x, "new_members"), c[2], sizeof(c[2])),
			num(json_object_get(x, "sent"), c[3], sizeof(c[3])),
			num(json_object_get(x, "applied"), c[4], sizeof(c[4])),
			num(json_object_get(x, "succeeded"), c[5], sizeof(c[5])),
			b1,
			str(json_object_get(x, "status")),
		};

		snprintf(c[0], sizeof(c[0]), "%zu", i + 1);
		num(json_object_get(x, "failed"), b1, sizeof(b1));
		if ((e = table_add(t, cells)))
			return e;
	}
	print_table(t);
	if (!json_array_size(fails))
		return EX_OK;
	putchar('\n');
	if ((e = table_new(4, hf, &t)))
		return e;
	json_array_foreach(fails, i, x) {
		char st[32], at[48];
		const char *cells[4] = {
			str(json_object_get(x, "uid")),
			st,
			when(json_integer_value(json_object_get(x, "at")), at, sizeof(at)),
			str(json_object_get(x, "reason")),
		};

		snprintf(st, sizeof(st), "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(x, "stage")) + 1);
		if ((e = table_add(t, cells)))
			return e;
	}
	return print_table(t);
}

static int cmd_rollout_start(const struct opts *o, char **args)
{
	long long serial = parse_serial(args[0]);
	int64_t bake = ROLLOUT_DEFAULT_BAKE_MS, timeout = ROLLOUT_DEFAULT_REPORT_TIMEOUT_MS;
	char err[200], *body;
	json_t *req, *j;
	int r;

	if (!serial)
		return fail(EX_USAGE, "rollout start: SERIAL must be a positive integer, not %s", args[0]);
	if (!o->selector || !o->stages)
		return fail(EX_USAGE, "rollout start: --selector k=v,... and --stages 1,10%%,... are required");
	if (o->bake && rollplan_duration(o->bake, &bake, err, sizeof(err)))
		return fail(EX_USAGE, "--bake: %s", err);
	if (o->report_timeout && rollplan_duration(o->report_timeout, &timeout, err, sizeof(err)))
		return fail(EX_USAGE, "--report-timeout: %s", err);
	req = json_pack("{s:I, s:s, s:s, s:I, s:I, s:I}", "serial", (json_int_t)serial, "selector", o->selector,
			"stages", o->stages, "bake_ms", (json_int_t)bake, "max_failures",
			(json_int_t)(o->max_failures < 0 ? 0 : o->max_failures), "report_timeout_ms",
			(json_int_t)timeout);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!body)
		return fail(EX_SOFTWARE, "out of memory");
	r = request(o, "POST", "/api/v1/rollouts", body, "rollout start", &j);
	free(body);
	if (r)
		return r;
	if (use_json(o))
		print_json(j);
	else
		rollout_line(j);
	json_decref(j);
	return EX_OK;
}

static int cmd_rollout_list(const struct opts *o, char **args)
{
	(void)args;
	return get_and_show(o, "/api/v1/rollouts", "rollout list", show_rollouts);
}

static int cmd_rollout_status(const struct opts *o, char **args)
{
	long long id = parse_id(args[0]);
	char path[64];

	if (!id)
		return fail(EX_USAGE, "rollout status: ID must be a positive integer, not %s", args[0]);
	snprintf(path, sizeof(path), "/api/v1/rollouts/%lld", id);
	return get_and_show(o, path, "rollout status", show_rollout);
}

static int rollout_act(const struct opts *o, const char *id_arg, const char *action)
{
	long long id = parse_id(id_arg);
	char path[96], what[32];
	json_t *j;
	int r;

	snprintf(what, sizeof(what), "rollout %s", action);
	if (!id)
		return fail(EX_USAGE, "%s: ID must be a positive integer, not %s", what, id_arg);
	snprintf(path, sizeof(path), "/api/v1/rollouts/%lld/%s", id, action);
	r = request(o, "POST", path, "{}", what, &j);
	if (r)
		return r;
	if (use_json(o))
		print_json(j);
	else
		rollout_line(j);
	json_decref(j);
	return EX_OK;
}

static int cmd_rollout_halt(const struct opts *o, char **args)
{
	return rollout_act(o, args[0], "halt");
}

static int cmd_rollout_resume(const struct opts *o, char **args)
{
	return rollout_act(o, args[0], "resume");
}

static int cmd_rollout_abort(const struct opts *o, char **args)
{
	return rollout_act(o, args[0], "abort");
}

static int max_serial_of(json_t *j, long long *ret)
{
	json_t *arr = json_object_get(j, "policies"), *p;
	long long max = 0;
	size_t i;

	if (!json_is_array(arr))
		return fail(EX_PROTOCOL, "the reply has no \"policies\" list");
	json_array_foreach(arr, i, p)
		if (json_is_integer(json_object_get(p, "serial")) && json_integer_value(json_object_get(p, "serial")) > max)
			max = json_integer_value(json_object_get(p, "serial"));
	*ret = max;
	return 0;
}

/* Write len bytes to path through a temporary beside it: whole or not at all. */
static int write_atomic(const char *path, const char *data, size_t len, bool force)
{
	char tmp[4096];
	int fd, e = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp))
		return fail(EX_USAGE, "--out: path too long");
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return fail(EX_CANTCREAT, "%s: cannot create a file beside it: %s", path, strerror(errno)); /* EX_CANTCREAT */
	for (size_t off = 0; off < len && !e;) {
		ssize_t n = write(fd, data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			e = errno ? errno : EIO;
		else
			off += (size_t)n;
	}
	if (!e && (fchmod(fd, 0644) || fsync(fd)))
		e = errno;
	if (close(fd) && !e)
		e = errno;
	/* link() refuses an existing name: no overwrite unless --force, and no race with another writer. */
	if (!e && (force ? rename(tmp, path) : link(tmp, path)))
		e = errno;
	if (!force || e)
		unlink(tmp);
	if (e == EEXIST)
		return fail(EX_CANTCREAT, "%s exists: refusing to overwrite it (--force to replace it)", path);
	if (e)
		return fail(74, "%s: %s", path, strerror(e)); /* EX_IOERR */
	return 0;
}

/* The YAML of a policy show reply (malloc'ed), or the exit code with the error printed. */
static int policy_yaml_of(json_t *j, unsigned char **ret, size_t *ret_len)
{
	const char *b64 = str(json_object_get(j, "yaml"));
	json_int_t size = json_integer_value(json_object_get(j, "size"));
	unsigned char *yaml;
	size_t n;
	int len;

	if (!b64)
		return fail(EX_PROTOCOL, "the reply has no \"yaml\"");
	n = strlen(b64);
	yaml = malloc(n / 4 * 3 + 3);
	len = yaml ? EVP_DecodeBlock(yaml, (const unsigned char *)b64, (int)n) : -1;
	if (len < 0) {
		free(yaml);
		return fail(EX_PROTOCOL, "the reply's \"yaml\" is not base64");
	}
	if (size >= 0 && size <= len)
		len = (int)size;
	*ret = yaml;
	*ret_len = (size_t)len;
	return 0;
}

static int cmd_policy_revert(const struct opts *o, char **args)
{
	unsigned char *old = NULL;
	char path[64], err[256], *out = NULL;
	size_t old_len = 0, out_len = 0;
	long long to = o->revert_to ? parse_serial(o->revert_to) : 0, max = 0;
	struct policy_errors perrs = { 0 };
	struct policy *p = NULL;
	json_t *j = NULL;
	int r;

	(void)args;
	if (!to || !o->out)
		return fail(EX_USAGE, "policy revert: --to SERIAL (a positive integer) and --out FILE.yaml are required");
	if (!o->force && access(o->out, F_OK) == 0)
		return fail(EX_CANTCREAT, "%s exists: refusing to overwrite it (--force to replace it)", o->out);
	snprintf(path, sizeof(path), "/api/v1/policies/%lld", to);
	if ((r = request(o, "GET", path, NULL, "policy revert", &j)) || (r = policy_yaml_of(j, &old, &old_len)))
		goto out;
	json_decref(j);
	j = NULL;
	if ((r = request(o, "GET", "/api/v1/policies", NULL, "policy revert", &j)) || (r = max_serial_of(j, &max)))
		goto out;
	if (polrevert_reserial((const char *)old, old_len, max + 1, &out, &out_len, err, sizeof(err))) {
		r = fail(EX_DATAERR, "policy revert: policy %lld: %s", to, err);
		goto out;
	}
	/* What is written must be a policy an agent takes, with the serial we meant. */
	if (policy_parse(out, out_len, o->out, 100000 /* api.h's API_POLICY_MAX_HZ */, &p, &perrs) || p->serial != (uint64_t)(max + 1)) {
		r = fail(EX_DATAERR, "policy revert: the result does not parse as policy serial %lld", max + 1);
		goto out;
	}
	if ((r = write_atomic(o->out, out, out_len, o->force)))
		goto out;
	if (use_json(o) && o->json > 0) {
		printf("{\"from\":%lld,\"serial\":%lld,\"file\":", to, max + 1);
		json_dumpf(json_string(o->out), stdout, JSON_ENCODE_ANY);
		printf("}\n");
	} else {
		char safe[1024];

		ctltable_sanitize(o->out, safe, sizeof(safe));
		printf("wrote %s: policy %lld's content as serial %lld\n", safe, to, max + 1);
		printf("next: sign it (vigil-sign sign --cert SIGNER.pem --key SIGNER.key %s),\n"
		       "      upload it (vigilctl policy upload %s %s.sig),\n"
		       "      and roll it out (vigilctl rollout start %lld --selector ... --stages ...)\n",
		       safe, safe, safe, max + 1);
	}
out:
	policy_free(p);
	json_decref(j);
	free(old);
	free(out);
	return r;
}

/* ------------------------------------------------------------------------ */

static int check_file(const char *opt, const char *path)
{
	if (!path)
		return fail(EX_USAGE, "%s is required (or set VIGILCTL_%s)", opt,
			    !strcmp(opt, "--cert") ? "CERT" : !strcmp(opt, "--key") ? "KEY" : "CA");
	if (access(path, R_OK))
		return fail(EX_CONFIG, "%s %s: %s", opt, path, strerror(errno));
	return 0;
}

/*
 * The commands: name and subcommand (or NULL), the number of words with
 * their arguments, their usage, whether --selector goes with them, and the
 * handler, which gets the arguments after the name and subcommand.
 */
static const struct command {
	const char *name, *sub;
	int argc;
	const char *usage;
	bool selector;
	int (*fn)(const struct opts *o, char **args);
} commands[] = {
	{ "agents", NULL, 1, "agents [--selector k=v,...]", true, cmd_agents },
	{ "agent", NULL, 2, "agent ID", false, cmd_agent },
	{ "policy", "upload", 4, "policy upload FILE.yaml FILE.yaml.sig", false, cmd_upload },
	{ "policy", "list", 2, "policy list", false, cmd_policy_list },
	{ "policy", "show", 3, "policy show SERIAL", false, cmd_policy_show },
	{ "assign", NULL, 2, "assign SERIAL --selector k=v,...", true, cmd_assign },
	{ "assignments", NULL, 1, "assignments", false, cmd_assignments },
	{ "audit", "verify", 2, "audit verify --audit-pubkey FILE [--state FILE]", false, cmd_audit_verify },
	{ "audit", "tail", 2, "audit tail [--follow] [--since N]", false, cmd_audit_tail },
	{ "audit", "export", 2, "audit export [--since N]", false, cmd_audit_export },
	{ "rollout", "start", 3,
	  "rollout start SERIAL --selector k=v,... --stages 1,10%,50%,100% [--bake DURATION] "
	  "[--max-failures N] [--report-timeout DURATION]",
	  true, cmd_rollout_start },
	{ "rollout", "list", 2, "rollout list", false, cmd_rollout_list },
	{ "rollout", "status", 3, "rollout status ID", false, cmd_rollout_status },
	{ "rollout", "halt", 3, "rollout halt ID", false, cmd_rollout_halt },
	{ "rollout", "resume", 3, "rollout resume ID", false, cmd_rollout_resume },
	{ "rollout", "abort", 3, "rollout abort ID", false, cmd_rollout_abort },
	{ "policy", "revert", 2, "policy revert --to SERIAL --out FILE.yaml [--force]", false, cmd_policy_revert },
};

static int run(struct opts *o, int argc, char **argv)
{
	const struct command *c = NULL;
	int r;

	if (argc < 1) {
		usage(stderr);
		return EX_USAGE;
	}
	/* Validate the command line before touching the network. */
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]) && !c; i++)
		if (!strcmp(argv[0], commands[i].name) &&
		    (!commands[i].sub || (argc >= 2 && !strcmp(argv[1], commands[i].sub))))
			c = &commands[i];
	if (!c && !strcmp(argv[0], "policy"))
		return fail(EX_USAGE, "usage: %s policy upload|list|show|revert ...", prog);
	if (!c && !strcmp(argv[0], "rollout"))
		return fail(EX_USAGE, "usage: %s rollout start|list|status|halt|resume|abort ...", prog);
	if (!c && !strcmp(argv[0], "audit"))
		return fail(EX_USAGE, "usage: %s audit verify|tail|export ...", prog);
	if (!c)
		return fail(EX_USAGE, "unknown command \"%s\" (see %s --help)", argv[0], prog);
	if (argc != c->argc)
		return fail(EX_USAGE, "usage: %s %s", prog, c->usage);
	if (o->selector && !c->selector)
		return fail(EX_USAGE, "--selector goes with agents, assign or rollout start only");
	if ((o->stages || o->bake || o->report_timeout || o->max_failures >= 0) && c->fn != cmd_rollout_start)
		return fail(EX_USAGE, "--stages, --bake, --max-failures and --report-timeout go with rollout start only");
	if ((o->revert_to || o->out || o->force) && c->fn != cmd_policy_revert)
		return fail(EX_USAGE, "--to, --out and --force go with policy revert only");
	if ((o->audit_pubkey || o->state) && c->fn != cmd_audit_verify)
		return fail(EX_USAGE, "--audit-pubkey and --state go with audit verify only");
	if (o->follow && c->fn != cmd_audit_tail)
		return fail(EX_USAGE, "--follow goes with audit tail only");
	if (o->since >= 0 && c->fn != cmd_audit_tail && c->fn != cmd_audit_export)
		return fail(EX_USAGE, "--since goes with audit tail or audit export only");

	if (!o->server)
		return fail(EX_USAGE, "--server URL is required (or set VIGILCTL_SERVER)");
	if (strncmp(o->server, "https://", 8))
		return fail(EX_CONFIG, "--server %s: must be an https:// URL", o->server);
	if ((r = check_file("--cert", o->cert)) || (r = check_file("--key", o->key)) ||
	    (r = check_file("--ca", o->ca)))
		return r;
	return c->fn(o, argv + (c->sub ? 2 : 1));
}

int main(int argc, char **argv)
{
	enum { OPT_SERVER = 256, OPT_CERT, OPT_KEY, OPT_CA, OPT_JSON, OPT_TABLE, OPT_SELECTOR,
	       OPT_TIMEOUT, OPT_VERSION, OPT_AUDIT_PUBKEY, OPT_STATE, OPT_FOLLOW, OPT_SINCE, OPT_STAGES, OPT_BAKE,
	       OPT_MAX_FAILURES, OPT_REPORT_TIMEOUT, OPT_TO, OPT_OUT, OPT_FORCE };
	static const struct option longopts[] = {
		{ "server", required_argument, NULL, OPT_SERVER },
		{ "cert", required_argument, NULL, OPT_CERT },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "ca", required_argument, NULL, OPT_CA },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "table", no_argument, NULL, OPT_TABLE },
		{ "selector", required_argument, NULL, OPT_SELECTOR },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "audit-pubkey", required_argument, NULL, OPT_AUDIT_PUBKEY },
		{ "state", required_argument, NULL, OPT_STATE },
		{ "follow", no_argument, NULL, OPT_FOLLOW },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "stages", required_argument, NULL, OPT_STAGES },
		{ "bake", required_argument, NULL, OPT_BAKE },
		{ "max-failures", required_argument, NULL, OPT_MAX_FAILURES },
		{ "report-timeout", required_argument, NULL, OPT_REPORT_TIMEOUT },
		{ "to", required_argument, NULL, OPT_TO },
		{ "out", required_argument, NULL, OPT_OUT },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = {
		.server = getenv("VIGILCTL_SERVER"),
		.cert = getenv("VIGILCTL_CERT"),
		.key = getenv("VIGILCTL_KEY"),
		.ca = getenv("VIGILCTL_CA"),
		.timeout = 30,
		.json = -1,
		.max_failures = -1,
		.since = -1,
	};
	char *end;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_SERVER:
			o.server = optarg;
			break;
		case OPT_CERT:
			o.cert = optarg;
			break;
		case OPT_KEY:
			o.key = optarg;
			break;
		case OPT_CA:
			o.ca = optarg;
			break;
		case OPT_JSON:
			o.json = 1;
			break;
		case OPT_TABLE:
			o.json = 0;
			break;
		case OPT_SELECTOR:
			if (o.selector)
				return fail(EX_USAGE, "--selector given twice: write k=v,k2=v2");
			o.selector = optarg;
			break;
		case OPT_TIMEOUT:
			errno = 0;
			o.timeout = strtol(optarg, &end, 10);
			if (errno || *end || o.timeout < 1 || o.timeout > 3600)
				return fail(EX_USAGE, "--timeout must be 1..3600 seconds, not %s", optarg);
			break;
		case OPT_STAGES:
			o.stages = optarg;
			break;
		case OPT_BAKE:
			o.bake = optarg;
			break;
		case OPT_REPORT_TIMEOUT:
			o.report_timeout = optarg;
			break;
		case OPT_MAX_FAILURES:
			errno = 0;
			o.max_failures = strtol(optarg, &end, 10);
			if (errno || *end || !*optarg || o.max_failures < 0 || o.max_failures > ROLLOUT_MAX_FAILURES)
				return fail(EX_USAGE, "--max-failures must be 0..%d, not %s", ROLLOUT_MAX_FAILURES,
					    optarg);
			break;
		case OPT_TO:
			o.revert_to = optarg;
			break;
		case OPT_OUT:
			o.out = optarg;
			break;
		case OPT_FORCE:
			o.force = true;
			break;
		case OPT_VERSION:
			printf("vigilctl %s\n", VIGIL_VERSION);
			return EX_OK;
		case OPT_AUDIT_PUBKEY:
			o.audit_pubkey = optarg;
			break;
		case OPT_STATE:
			if (!*optarg)
				return fail(EX_USAGE, "--state: the file name is empty");
			o.state = optarg;
			break;
		case OPT_FOLLOW:
			o.follow = true;
			break;
		case OPT_SINCE:
			errno = 0;
			o.since = strtoll(optarg, &end, 10);
			if (errno || *end || !*optarg || o.since < 0)
				return fail(EX_USAGE, "--since must be a record index (0 or more), not %s", optarg);
			break;
		case 'h':
			usage(stdout);
			return EX_OK;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	/* Empty environment variables count as unset. */
	if (o.server && !*o.server)
		o.server = NULL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return fail(EX_SOFTWARE, "curl_global_init failed");
	r = run(&o, argc - optind, argv + optind);
	curl_global_cleanup();
	fflush(stdout);
	if (ferror(stdout))
		return fail(74, "writing to stdout failed");	/* EX_IOERR */
	return r;
}
