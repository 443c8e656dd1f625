/*
 * pyro_receiver.c - test tool: a stand-in for Grafana Pyroscope's push
 * endpoint that answers as Pyroscope's code does, so that vigild's export
 * can be tested on machines where Pyroscope cannot be installed.
 *
 *   pyro_receiver [--port N] [--port-file F] [--log F]
 *                 [--cert F --key F [--client-ca F]]
 *                 [--require-tenant T] [--require-basic USER:PASS]
 *                 [--require-bearer TOKEN]
 *                 [--script LIST] [--script-file F] [--default ANSWER]
 *                 [--no-go-check] [--service-name-fallback]
 *                 [--reject-older-than S] [--reject-newer-than S]
 *                 [--max-profile-bytes N] [--max-body-bytes N]
 *
 * It runs as its own process in the tests (root or not, no privileges
 * needed), one libevent loop: a request is decoded and checked in one go
 * (go tool pprof runs synchronously); only "slow" answers wait on a timer.
 * It listens on 127.0.0.1 (port 0 picks one; the chosen port is written to
 * --port-file, atomically, once the socket listens), with TLS when
 * --cert/--key are given and a verified client certificate when
 * --client-ca is given too.
 *
 * What it reproduces, and where each fact comes from (github.com/grafana/
 * pyroscope, read at commit 3fe6a457, Aug 2026; connect-go's protocol
 * specification for the wire behaviour):
 *
 *  - POST /push.v1.PusherService/Push, Connect unary.  Another path: 404
 *    "404 page not found" (Go's http.NotFound).  Another method: 405 with
 *    "Allow: POST".  A Content-Type other than application/proto: 415 with
 *    Accept-Post and no body (connect-go's handler).  Connect-Protocol-
 *    Version other than "1": invalid_argument.  Content-Encoding gzip is
 *    accepted (pkg/api/connect/compression.go), another is unimplemented.
 *  - Auth (pkg/util/http/auth.go, pkg/tenant/interceptor.go): with
 *    --require-tenant, a missing X-Scope-OrgID is 401 unauthenticated "no
 *    org id"; a different one is refused the same way.  Pyroscope itself has
 *    no basic or bearer auth (Grafana Cloud's gateway does); --require-basic
 *    and --require-bearer answer 401 unauthenticated the same way.
 *  - The request body: an undecodable PushRequest is invalid_argument (the
 *    codec's unmarshal error).  Each RawSample's raw_profile is gunzipped,
 *    or taken as it is when it has no gzip header (pkg/pprof/pprof.go
 *    openBytes), bounded by validation.max-profile-size-bytes (4 MiB,
 *    uncompressed; past it invalid_argument "uncompressed profile payload
 *    size exceeds limit").  A corrupt gzip stream or bytes that are not a
 *    pprof Profile are NOT validation errors in Pyroscope: the distributor
 *    returns them as plain Go errors, which connect-go maps to "unknown",
 *    HTTP 500 (pkg/distributor/distributor.go Push; a client that retries
 *    5xx will retry them).
 *  - ValidateProfile (pkg/validation/validate.go): no sample types ("empty
 *    profile"), time_nanos outside the ingestion window (older than 1 h or
 *    newer than 10 min: validation.reject-older-than/-newer-than), more than
 *    16000 samples, more than 100 labels on one sample, location or function
 *    id 0, a sample whose value count differs from the sample types, a
 *    string index out of range, a sample type containing "-", a string that
 *    is not UTF-8: all invalid_argument, HTTP 400.
 *  - ValidateLabels (same file), for the series' labels plus each distinct
 *    set of string sample labels (pkg/model/pprofsplit: a sample label is
 *    added when the series has no label of that name; trace_id, span_id and
 *    profile_id are not): none at all; more than 30; __name__ not a valid
 *    metric name (UTF-8 scheme: non-empty UTF-8); service_name empty or
 *    missing; a name over 1024 bytes; a value over 2048; a name that is
 *    empty or not UTF-8 (label sanitization is off by default); a value not
 *    UTF-8; the same name twice.  Checked in that order on the labels sorted
 *    by name, with Pyroscope's messages.  Labels are checked only for a
 *    profile that has samples, as Pyroscope does.
 *    One deliberate choice: the distributor at that commit adds
 *    service_name="unknown_service" to a series without one before
 *    validating, so a missing service_name is accepted there.  Issue 11 asks
 *    the receiver to enforce it, so by default it is refused
 *    (invalid_argument); --service-name-fallback does what Pyroscope does.
 *  - Every sample of the request is processed; if any failed, the answer is
 *    the first failure's code with all messages joined, even though the
 *    others were accepted (the distributor's multierror).
 *  - Errors are Connect JSON, {"code":"...","message":"..."}, with the
 *    status the Connect protocol maps the code to (connectrpc.com/docs/
 *    protocol, "Error Codes").  Success is 200 with an empty
 *    application/proto body (an empty PushResponse).
 *
 * What it adds, as a test oracle: every profile that Pyroscope would accept
 * is also given to `go tool pprof -raw` (unless --no-go-check), after
 * Pyroscope's checks of the whole request; if that fails the answer is
 * invalid_argument "go tool pprof -raw rejected ...",
 * result "pprof_rejected" in the log, which real Pyroscope would not say.
 * What it does not do: the Connect JSON codec (application/json bodies get
 * 415), gRPC, rate limits, relabelling, sanitization of dotted names.
 *
 * Log (--log F): one JSON object per line, flushed per request:
 *   {"seq":N,"time":"RFC 3339","method":..,"path":..,"status":N,
 *    "code":"connect code or absent","answer":"normal|scripted|slow|close",
 *    "headers":{"content-type":..,"content-encoding":..,"x-scope-orgid":..,
 *      "authorization":..,"connect-protocol-version":..,"user-agent":..},
 *    "header_bytes":N (request line and headers as sent),
 *    "tls_client":"subject of the client certificate" (TLS only),
 *    "body_bytes":N,"message":"error message",
 *    "handle_ms":N (decoding, checking and go tool pprof; a Push only),
 *    "samples":[{"labels":{..},"id":..,"time_nanos":N,"duration_nanos":N,
 *      "samples":N,"sample_types":["cpu/nanoseconds",..],"totals":[N,..],
 *      "comments":["the profile's comments (pprof field 13)",..],
 *      "raw_bytes":N,"uncompressed_bytes":N,
 *      "split_series":N (the series Pyroscope would store this profile as:
 *        one per distinct set of string sample labels, counted up to 256),
 *      "result":"accepted|<reason>",
 *      "error":".."}]}
 * and {"event":"script","script":".."} when a script is loaded.
 *
 * Scripting.  --script LIST answers the next requests in order, one entry
 * each, then --default (itself an entry, "200" unless given).  Entries,
 * separated by commas or white space:
 *   200         process normally (validate, answer 200 or the error)
 *   NNN         answer status NNN with a Connect error, without processing
 *   NNN:S       the same with "Retry-After: S"
 *   slow:S      wait S seconds, then process normally
 *   close       close the connection without answering
 * --script-file is read at start when it exists (and --script is not
 * given); SIGUSR1 re-reads it (same syntax) and starts it from its first
 * entry; the log records it.  SIGTERM or SIGINT exit 0.
 *
 * Exit: 0 on SIGTERM/SIGINT, 64 usage, 66 a file cannot be read or used,
 * 69 cannot listen, 71 libevent failed, 73 cannot write the port file.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/queue.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <zlib.h>

#include "profile.pb-c.h"
#include "push.pb-c.h"

#define PUSH_PATH "/push.v1.PusherService/Push"

/* Pyroscope's defaults (pkg/validation/limits.go RegisterFlags). */
#define MAX_LABEL_NAMES 30
#define MAX_NAME_LEN 1024
#define MAX_VALUE_LEN 2048
#define MAX_PROFILE_BYTES (4u * 1024 * 1024)
#define MAX_STACK_SAMPLES 16000
#define MAX_SAMPLE_LABELS 100
#define REJECT_OLDER_S (60 * 60)
#define REJECT_NEWER_S (10 * 60)

/* Our own bounds: what one test request may cost this process. */
#define DEFAULT_MAX_BODY (64u * 1024 * 1024)
#define MAX_SCRIPT_ENTRIES 4096
#define MAX_SCRIPT_FILE 65536
#define MAX_LABEL_SETS 256 /* distinct sample-label sets checked per profile */
#define GO_CHECK_TIMEOUT_S 60
#define GO_CHECK_BATCH 64 /* profiles per go tool pprof run */

enum answer_kind { ANS_NORMAL, ANS_STATUS, ANS_SLOW, ANS_CLOSE };

struct answer {
	enum answer_kind kind;
	int status;      /* ANS_STATUS */
	int retry_after; /* ANS_STATUS, -1 for none */
	int delay_s;     /* ANS_SLOW */
};

struct config {
	int port;
	const char *port_file, *log_path, *cert, *key, *client_ca;
	const char *tenant, *basic, *bearer, *script_file;
	bool go_check, fallback_service;
	long reject_older_s, reject_newer_s;
	size_t max_profile, max_body;
};

struct receiver {
	struct config cfg;
	struct event_base *base;
	struct evhttp *http;
	SSL_CTX *ssl;
	FILE *log;
	struct answer *script;
	size_t n_script, next_script;
	struct answer dflt;
	unsigned long seq;
};

/* A request held back by "slow:S". */
struct pending {
	struct receiver *r;
	struct evhttp_request *req;
	struct event *timer;
	json_t *entry;
};

/* ---------------------------------------------------------------------
 * Connect error codes and their HTTP statuses: the Connect protocol
 * specification's table, as connect-go v1.19 (the version Pyroscope's go.mod
 * pins) applies it; older connect-go had 408/412/404 for canceled,
 * failed_precondition and unimplemented.
 */

static const struct {
	const char *code;
	int status;
} connect_codes[] = {
	{ "canceled", 499 },          { "unknown", 500 },
	{ "invalid_argument", 400 },  { "deadline_exceeded", 504 },
	{ "not_found", 404 },         { "already_exists", 409 },
	{ "permission_denied", 403 }, { "resource_exhausted", 429 },
	{ "failed_precondition", 400 }, { "aborted", 409 },
	{ "out_of_range", 400 },      { "unimplemented", 501 },
	{ "internal", 500 },          { "unavailable", 503 },
	{ "data_loss", 500 },         { "unauthenticated", 401 },
};

static int code_status(const char *code)
{
	for (size_t i = 0; i < sizeof(connect_codes) / sizeof(connect_codes[0]); i++)
		if (!strcmp(connect_codes[i].code, code))
			return connect_codes[i].status;
	return 500;
}

/* For a scripted status: the code a server answering it would most likely send. */
static const char *status_code(int status)
{
	switch (status) {
	case 400: return "invalid_argument";
	case 401: return "unauthenticated";
	case 403: return "permission_denied";
	case 404: return "not_found";
	case 409: return "aborted";
	case 413: return "resource_exhausted";
	case 429: return "resource_exhausted";
	case 499: return "canceled";
	case 501: return "unimplemented";
	case 503: return "unavailable";
	case 504: return "deadline_exceeded";
	default: return "unknown";
	}
}

/* ---------------------------------------------------------------------
 * Small helpers.
 */

static bool utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		unsigned c = p[i];
		size_t len;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07;
		} else {
			return false;
		}
		if (i + len > n)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates and past U+10FFFF are invalid, as in Go. */
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += len;
	}
	return true;
}

/* Go's strconv.Quote, near enough for messages: escapes quotes, controls and bad bytes. */
static void quote(FILE *f, const char *s)
{
	size_t n = strlen(s), i = 0;

	fputc('"', f);
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : 4;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else if (c >= 0x80 && (i + len > n || !utf8_valid(s + i, len)))
			fprintf(f, "\\x%02x", c), len = 1;
		else
			fwrite(s + i, 1, len, f);
		i += c < 0x80 ? 1 : len;
	}
	fputc('"', f);
}

static const char *hdr(struct evhttp_request *req, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

static void json_set_str(json_t *o, const char *k, const char *v)
{
	if (v)
		json_object_set_new(o, k, json_stringn_nocheck(v, strlen(v)));
}

/* jansson refuses invalid UTF-8; the log must still show what arrived. */
static json_t *json_bytes(const char *s, size_t n)
{
	if (utf8_valid(s, n))
		return json_stringn(s, n);

	char *esc = malloc(n * 4 + 1), *o = esc;

	if (!esc)
		return json_null();
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x80)
			o += sprintf(o, "\\x%02x", c);
		else
			*o++ = (char)c;
	}
	*o = '\0';
	json_t *j = json_string(esc);
	free(esc);
	return j ? j : json_null();
}

/* ---------------------------------------------------------------------
 * Scripts.
 */

static int answer_parse(const char *tok, struct answer *ret)
{
	struct answer a = { .retry_after = -1 };
	char *end;
	long v;

	if (!strcmp(tok, "close")) {
		a.kind = ANS_CLOSE;
	} else if (!strncmp(tok, "slow:", 5)) {
		v = strtol(tok + 5, &end, 10);
		if (end == tok + 5 || *end || v < 0 || v > 3600)
			return -EINVAL;
		a.kind = ANS_SLOW;
		a.delay_s = (int)v;
	} else {
		v = strtol(tok, &end, 10);
		if (end == tok || v < 200 || v > 599)
			return -EINVAL;
		a.status = (int)v;
		if (*end == ':') {
			const char *ra = end + 1;

			v = strtol(ra, &end, 10);
			if (end == ra || v < 0 || v > 86400)
				return -EINVAL;
			a.retry_after = (int)v;
		}
		if (*end)
			return -EINVAL;
		a.kind = a.status == 200 && a.retry_after < 0 ? ANS_NORMAL : ANS_STATUS;
	}
	*ret = a;
	return 0;
}

/* Parses LIST into a new array; on error names the bad entry in *ret_bad. */
static int script_parse(const char *list, struct answer **ret, size_t *ret_n, char *bad, size_t badsz)
{
	char *copy = strdup(list), *save = NULL, *tok;
	struct answer *v = NULL;
	size_t n = 0;
	int err = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ", \t\r\n", &save); tok; tok = strtok_r(NULL, ", \t\r\n", &save)) {
		struct answer a, *nv;

		if (n >= MAX_SCRIPT_ENTRIES || answer_parse(tok, &a) < 0) {
			snprintf(bad, badsz, "%s", n >= MAX_SCRIPT_ENTRIES ? "too many entries" : tok);
			err = -EINVAL;
			break;
		}
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			err = -ENOMEM;
			break;
		}
		v = nv;
		v[n++] = a;
	}
	free(copy);
	if (err) {
		free(v);
		return err;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static void log_line(struct receiver *r, json_t *o)
{
	char *s;

	if (!r->log)
		return;
	s = json_dumps(o, JSON_COMPACT);
	if (s) {
		fprintf(r->log, "%s\n", s);
		fflush(r->log);
		free(s);
	}
}

static int script_load(struct receiver *r, const char *list)
{
	struct answer *v;
	size_t n;
	char bad[64] = "";
	int err = script_parse(list, &v, &n, bad, sizeof(bad));
	json_t *o;

	if (err) {
		fprintf(stderr, "pyro_receiver: script entry \"%s\" is not 200, NNN, NNN:S, slow:S or close\n",
			bad);
		return err;
	}
	free(r->script);
	r->script = v;
	r->n_script = n;
	r->next_script = 0;
	o = json_object();
	json_object_set_new(o, "event", json_string("script"));
	json_object_set_new(o, "script", json_bytes(list, strlen(list)));
	log_line(r, o);
	json_decref(o);
	return 0;
}

static int script_load_file(struct receiver *r, const char *path)
{
	char buf[MAX_SCRIPT_FILE + 1];
	size_t n;
	FILE *f = fopen(path, "re");

	if (!f) {
		fprintf(stderr, "pyro_receiver: cannot read script file %s: %s\n", path, strerror(errno));
		return -errno;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n > MAX_SCRIPT_FILE) {
		fprintf(stderr, "pyro_receiver: script file %s is over %d bytes\n", path, MAX_SCRIPT_FILE);
		return -EFBIG;
	}
	buf[n] = '\0';
	return script_load(r, buf);
}

static struct answer script_next(struct receiver *r)
{
	if (r->next_script < r->n_script)
		return r->script[r->next_script++];
	return r->dflt;
}

/* ---------------------------------------------------------------------
 * Replies.
 */

/* STATUS 0: the one the Connect protocol maps CODE to. */
static void reply_error_status(struct evhttp_request *req, json_t *entry, int status, const char *code,
			       const char *msg, int retry_after)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *b = evbuffer_new();
	json_t *o = json_object();
	char *s;

	if (!status)
		status = code_status(code);

	json_object_set_new(o, "code", json_string(code));
	json_object_set_new(o, "message", json_bytes(msg, strlen(msg)));
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	evhttp_add_header(h, "Content-Type", "application/json");
	if (retry_after >= 0) {
		char ra[16];

		snprintf(ra, sizeof(ra), "%d", retry_after);
		evhttp_add_header(h, "Retry-After", ra);
	}
	if (b && s)
		evbuffer_add(b, s, strlen(s));
	evhttp_send_reply(req, status, NULL, b);
	json_object_set_new(entry, "status", json_integer(status));
	json_object_set_new(entry, "code", json_string(code));
	json_object_set_new(entry, "message", json_bytes(msg, strlen(msg)));
	free(s);
	if (b)
		evbuffer_free(b);
}

static void reply_plain(struct evhttp_request *req, json_t *entry, int status, const char *ctype,
			const char *body)
{
	struct evbuffer *b = evbuffer_new();

	if (ctype)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
	if (b && body)
		evbuffer_add(b, body, strlen(body));
	evhttp_send_reply(req, status, NULL, b);
	json_object_set_new(entry, "status", json_integer(status));
	if (b)
		evbuffer_free(b);
}

static void reply_connect_error(struct evhttp_request *req, json_t *entry, const char *code,
				const char *msg, int retry_after)
{
	reply_error_status(req, entry, 0, code, msg, retry_after);
}

/* ---------------------------------------------------------------------
 * gzip, bounded.  Returns 0, -EFBIG past the limit, -EBADMSG for a stream
 * that is not valid gzip (with zlib's reason in *ret_why).
 */

static int gunzip_bounded(const uint8_t *in, size_t n, size_t limit, uint8_t **ret, size_t *ret_n,
			  const char **ret_why)
{
	z_stream z = { 0 };
	size_t cap = n * 4 + 4096, len = 0;
	uint8_t *out;
	int rc;

	if (cap > limit + 1)
		cap = limit + 1;
	out = malloc(cap);
	if (!out)
		return -ENOMEM;
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
		free(out);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	for (;;) {
		if (len == cap) {
			size_t ncap = cap * 2 > limit + 1 ? limit + 1 : cap * 2;
			uint8_t *o2;

			if (ncap == cap) {
				rc = -EFBIG;
				break;
			}
			o2 = realloc(out, ncap);
			if (!o2) {
				rc = -ENOMEM;
				break;
			}
			out = o2;
			cap = ncap;
		}
		z.next_out = out + len;
		z.avail_out = (uInt)(cap - len);
		rc = inflate(&z, Z_NO_FLUSH);
		len = cap - z.avail_out;
		if (rc == Z_STREAM_END) {
			rc = len > limit ? -EFBIG : 0;
			break;
		}
		if (rc == Z_BUF_ERROR && z.avail_in == 0) {
			*ret_why = "unexpected EOF";
			rc = -EBADMSG;
			break;
		}
		if (rc != Z_OK && rc != Z_BUF_ERROR) {
			*ret_why = z.msg ? z.msg : "invalid gzip stream";
			rc = -EBADMSG;
			break;
		}
		if (len > limit) {
			rc = -EFBIG;
			break;
		}
	}
	inflateEnd(&z);
	if (rc) {
		free(out);
		return rc;
	}
	*ret = out;
	*ret_n = len;
	return 0;
}

/* ---------------------------------------------------------------------
 * Label validation: validation.ValidateLabels.
 */

struct label {
	const char *name, *value;
};

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct label *)a)->name, ((const struct label *)b)->name);
}

static void labels_string(FILE *f, const struct label *ls, size_t n)
{
	fputc('{', f);
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputs(", ", f);
		fprintf(f, "%s=", ls[i].name);
		quote(f, ls[i].value);
	}
	fputc('}', f);
}

static const char *labels_get(const struct label *ls, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(ls[i].name, name))
			return ls[i].value;
	return "";
}

/*
 * Sorts ls and validates it.  Returns NULL, or the reason (Pyroscope's
 * discard reason) with the message in a malloc'd *ret_msg.
 */
static const char *labels_validate(struct label *ls, size_t n, char **ret_msg)
{
	const char *reason = NULL, *last = NULL;
	char *msg = NULL;
	size_t msz = 0;
	FILE *f;

	if (n == 0) {
		*ret_msg = strdup("error at least one label pair is required per profile");
		return "missing_labels";
	}
	qsort(ls, n, sizeof(*ls), label_cmp);
	f = open_memstream(&msg, &msz);
	if (!f) {
		*ret_msg = strdup("out of memory");
		return "unknown";
	}
	if (n > MAX_LABEL_NAMES) {
		fputs("profile series '", f);
		labels_string(f, ls, n);
		fprintf(f, "' has %zu label names; limit %d", n, MAX_LABEL_NAMES);
		reason = "max_label_names_per_series";
		goto out;
	}
	const char *metric = labels_get(ls, n, "__name__");
	if (!*metric || !utf8_valid(metric, strlen(metric))) {
		fputs("invalid labels '", f);
		labels_string(f, ls, n);
		fputs("' with error: invalid metric name", f);
		reason = "invalid_labels";
		goto out;
	}
	if (!*labels_get(ls, n, "service_name")) {
		fputs("invalid labels '", f);
		labels_string(f, ls, n);
		fputs("' with error: service name is not provided", f);
		reason = "missing_labels";
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const char *what = NULL;
		bool bad_name = false;

		if (strlen(ls[i].name) > MAX_NAME_LEN) {
			reason = "label_name_too_long";
			fputs("profile with labels '", f);
			labels_string(f, ls, n);
			fprintf(f, "' has label name too long: '%s'", ls[i].name);
			goto out;
		}
		if (strlen(ls[i].value) > MAX_VALUE_LEN) {
			reason = "label_value_too_long";
			fputs("profile with labels '", f);
			labels_string(f, ls, n);
			fprintf(f, "' has label value too long: '%s'", ls[i].value);
			goto out;
		}
		if (!*ls[i].name || !utf8_valid(ls[i].name, strlen(ls[i].name)))
			what = "invalid label name '", bad_name = true;
		else if (!utf8_valid(ls[i].value, strlen(ls[i].value)))
			what = "invalid label value '";
		if (what) {
			reason = "invalid_labels";
			fputs("invalid labels '", f);
			labels_string(f, ls, n);
			fprintf(f, "' with error: %s%s'", what, bad_name ? ls[i].name : ls[i].value);
			goto out;
		}
		if (last && !strcmp(last, ls[i].name)) {
			reason = "duplicate_label_names";
			fputs("profile with labels '", f);
			labels_string(f, ls, n);
			fprintf(f, "' has duplicate label name: '%s'", ls[i].name);
			goto out;
		}
		last = ls[i].name;
	}
out:
	fclose(f);
	if (reason)
		*ret_msg = msg;
	else
		free(msg);
	return reason;
}

/* ---------------------------------------------------------------------
 * Profile validation: validation.ValidateProfile.
 */

static bool str_ok(const Perftools__Profiles__Profile *p, int64_t i)
{
	/* Pyroscope checks only ">= len"; a negative index panics there (500). */
	return i >= 0 && (size_t)i < p->n_string_table;
}

static const char *profile_validate(const struct receiver *r, const Perftools__Profiles__Profile *p,
				    size_t raw, char *msg, size_t msz)
{
	if (p->n_sample_type == 0) {
		snprintf(msg, msz, "empty profile");
		return "malformed_profile";
	}
	if (p->time_nanos > 0) {
		struct timespec now;
		int64_t now_ns;

		clock_gettime(CLOCK_REALTIME, &now);
		now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
		if ((r->cfg.reject_older_s && p->time_nanos <= now_ns - r->cfg.reject_older_s * 1000000000) ||
		    (r->cfg.reject_newer_s && p->time_nanos >= now_ns + r->cfg.reject_newer_s * 1000000000)) {
			snprintf(msg, msz,
				 "profile is outside of ingestion window (profile timestamp: %lld ms, "
				 "now %lld ms, window -%lds..+%lds)",
				 (long long)(p->time_nanos / 1000000), (long long)(now_ns / 1000000),
				 r->cfg.reject_older_s, r->cfg.reject_newer_s);
			return "not_in_ingestion_window";
		}
	}
	if (raw > r->cfg.max_profile) {
		snprintf(msg, msz, "the profile exceeds the size limit (max_profile_size_byte, actual: %zu, limit: %zu)",
			 raw, r->cfg.max_profile);
		return "profile_size_limit";
	}
	if (p->n_sample > MAX_STACK_SAMPLES) {
		snprintf(msg, msz,
			 "the profile exceeds the samples count limit (max_profile_stacktrace_samples, actual: %zu, limit: %d)",
			 p->n_sample, MAX_STACK_SAMPLES);
		return "samples_limit";
	}
	for (size_t i = 0; i < p->n_sample; i++)
		if (p->sample[i]->n_label > MAX_SAMPLE_LABELS) {
			snprintf(msg, msz,
				 "the profile exceeds the sample labels limit (max_profile_stacktrace_sample_labels, actual: %zu, limit: %d)",
				 p->sample[i]->n_label, MAX_SAMPLE_LABELS);
			return "sample_labels_limit";
		}
	for (size_t i = 0; i < p->n_location; i++)
		if (p->location[i]->id == 0) {
			snprintf(msg, msz, "location id is 0");
			return "malformed_profile";
		}
	for (size_t i = 0; i < p->n_function; i++)
		if (p->function[i]->id == 0) {
			snprintf(msg, msz, "function id is 0");
			return "malformed_profile";
		}
	for (size_t i = 0; i < p->n_sample; i++)
		if (p->sample[i]->n_value != p->n_sample_type) {
			snprintf(msg, msz, "sample value length mismatch");
			return "malformed_profile";
		}
	if (p->n_string_table == 0 || p->string_table[0][0]) {
		snprintf(msg, msz, "string 0 should be empty string");
		return "malformed_profile";
	}
	for (size_t i = 0; i < p->n_sample_type; i++)
		if (!str_ok(p, p->sample_type[i]->type)) {
			snprintf(msg, msz, "sample type type string index out of range");
			return "malformed_profile";
		}
	for (size_t i = 0; i < p->n_sample; i++)
		for (size_t k = 0; k < p->sample[i]->n_label; k++)
			if (!str_ok(p, p->sample[i]->label[k]->str) || !str_ok(p, p->sample[i]->label[k]->key)) {
				snprintf(msg, msz, "sample label string index out of range");
				return "malformed_profile";
			}
	for (size_t i = 0; i < p->n_function; i++) {
		const Perftools__Profiles__Function *fn = p->function[i];

		if (!str_ok(p, fn->name) || !str_ok(p, fn->system_name) || !str_ok(p, fn->filename)) {
			snprintf(msg, msz, "function name string index out of range");
			return "malformed_profile";
		}
	}
	for (size_t i = 0; i < p->n_mapping; i++)
		if (!str_ok(p, p->mapping[i]->filename) || !str_ok(p, p->mapping[i]->build_id)) {
			snprintf(msg, msz, "mapping file name string index out of range");
			return "malformed_profile";
		}
	for (size_t i = 0; i < p->n_sample_type; i++)
		if (strchr(p->string_table[p->sample_type[i]->type], '-')) {
			snprintf(msg, msz, "sample type contains -");
			return "malformed_profile";
		}
	for (size_t i = 0; i < p->n_string_table; i++)
		if (!utf8_valid(p->string_table[i], strlen(p->string_table[i]))) {
			snprintf(msg, msz, "invalid utf8 string (index %zu)", i);
			return "malformed_profile";
		}
	return NULL;
}

/*
 * The series' labels and, for each distinct set of string sample labels,
 * the series' labels plus those it does not already have
 * (pprofsplit.VisitSampleSeries, addSampleLabelsToLabelsBuilder).
 */
static bool skipped_sample_label(const char *name)
{
	return !strcmp(name, "trace_id") || !strcmp(name, "span_id") || !strcmp(name, "profile_id");
}

static const char *series_validate(const Push__V1__RawProfileSeries *s, const Perftools__Profiles__Profile *p,
				   bool fallback_service, char **ret_msg, size_t *ret_sets)
{
	size_t nbase = s->n_labels, cap = nbase + MAX_SAMPLE_LABELS + 1;
	struct label *ls = calloc(cap, sizeof(*ls));
	char **seen = NULL;
	size_t n_seen = 0;
	const char *reason = NULL;

	if (!ls) {
		*ret_msg = strdup("out of memory");
		return "unknown";
	}
	if (p->n_sample == 0)
		goto out; /* Pyroscope visits, and so validates, only profiles with samples */
	for (size_t i = 0; i < p->n_sample && !reason; i++) {
		const Perftools__Profiles__Sample *sm = p->sample[i];
		size_t n = nbase;
		char *key = NULL;
		size_t ksz = 0;
		FILE *kf;

		for (size_t k = 0; k < nbase; k++)
			ls[k] = (struct label){ s->labels[k]->name, s->labels[k]->value };
		if (fallback_service && !*labels_get(ls, n, "service_name"))
			ls[n++] = (struct label){ "service_name", "unknown_service" };
		kf = open_memstream(&key, &ksz);
		if (!kf)
			break;
		for (size_t k = 0; k < sm->n_label; k++) {
			const char *name = p->string_table[sm->label[k]->key];

			if (sm->label[k]->str <= 0 || skipped_sample_label(name) || *labels_get(ls, n, name))
				continue;
			ls[n++] = (struct label){ name, p->string_table[sm->label[k]->str] };
			fprintf(kf, "%s=%s\n", name, ls[n - 1].value);
		}
		fclose(kf);
		bool dup = false;
		for (size_t k = 0; k < n_seen && !dup; k++)
			dup = !strcmp(seen[k], key);
		if (dup || n_seen >= MAX_LABEL_SETS) {
			free(key);
			continue;
		}
		char **ns = realloc(seen, (n_seen + 1) * sizeof(*seen));
		if (!ns) {
			free(key);
			break;
		}
		seen = ns;
		seen[n_seen++] = key;
		reason = labels_validate(ls, n, ret_msg);
	}
out:
	*ret_sets = n_seen;
	for (size_t k = 0; k < n_seen; k++)
		free(seen[k]);
	free(seen);
	free(ls);
	return reason;
}

/* ---------------------------------------------------------------------
 * The oracle: go tool pprof -raw on the uncompressed profile.
 */

/* A profile that passed Pyroscope's checks, waiting for go's. */
struct checked {
	uint8_t *pb; /* the uncompressed profile */
	size_t pn;
	json_t *js; /* its entry in the log (a reference) */
};

/*
 * The profiles and go's stderr live in memfds, named to go as
 * /proc/PID/fd/N, so that no file is left behind however this process ends
 * (the tests' clean-up kills it with SIGKILL).  Several profiles go to one
 * run: pprof parses and checks each source on its own before merging them
 * (profile.ParseData's CheckValid), and a source it cannot read is only
 * reported on stderr ("Fetched 1 source profiles out of 2", exit 0), so a
 * run proves them all valid only when it exits 0 and says nothing.  One go
 * start per request instead of one per series: a host's request holds a
 * series per process, and on a busy host forty go starts outlast the
 * interval the request covers.
 */
/*
 * waitpid for go, killed after GO_CHECK_TIMEOUT_S (an alarm in the child
 * would do nothing: the Go runtime catches SIGALRM and ignores it).
 */
static int wait_go(pid_t pid, int *status)
{
	for (int ms = 0;; ms += 10) {
		pid_t w = waitpid(pid, status, WNOHANG);

		if (w == pid)
			return 0;
		if (w < 0 && errno != EINTR)
			return -1;
		if (ms == GO_CHECK_TIMEOUT_S * 1000)
			kill(pid, SIGKILL);
		usleep(10000);
	}
}

static int go_pprof_check(struct checked *const *v, size_t n, char *why, size_t whysz)
{
	char paths[GO_CHECK_BATCH][64];
	static char go[] = "go", tool[] = "tool", pprof[] = "pprof", nosym[] = "-symbolize=none", raw[] = "-raw";
	char *argv[GO_CHECK_BATCH + 6];
	int fds[GO_CHECK_BATCH], efd, status = 0;
	size_t got = 0, a = 0, k;
	pid_t pid = -1;

	if (n > GO_CHECK_BATCH)
		n = GO_CHECK_BATCH;
	for (k = 0; k < n; k++)
		fds[k] = -1;
	efd = memfd_create("go-stderr", MFD_CLOEXEC);
	if (efd < 0) {
		snprintf(why, whysz, "cannot hand the profile to go tool pprof: %s", strerror(errno));
		goto out;
	}
	argv[a++] = go;
	argv[a++] = tool;
	argv[a++] = pprof;
	argv[a++] = nosym;
	argv[a++] = raw;
	for (k = 0; k < n; k++) {
		fds[k] = memfd_create("profile.pb", MFD_CLOEXEC);
		if (fds[k] < 0 || write(fds[k], v[k]->pb, v[k]->pn) != (ssize_t)v[k]->pn) {
			snprintf(why, whysz, "cannot hand the profile to go tool pprof: %s", strerror(errno));
			goto out;
		}
		snprintf(paths[k], sizeof(paths[k]), "/proc/%d/fd/%d", (int)getpid(), fds[k]);
		argv[a++] = paths[k];
	}
	argv[a] = NULL;
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		dup2(efd, 2);
		execvp("go", argv);
		_exit(127);
	}
	if (pid < 0 || wait_go(pid, &status) < 0) {
		snprintf(why, whysz, "cannot run go tool pprof: %s", strerror(errno));
		pid = -1;
		goto out;
	}
	ssize_t r = pread(efd, why, whysz - 1, 0);

	got = r > 0 ? (size_t)r : 0;
	why[got] = '\0';
	for (char *c = why; *c; c++)
		if (*c == '\n')
			*c = ' ';
	if (!got && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		snprintf(why, whysz, "go tool pprof exited with status 0x%x", status);
out:
	for (k = 0; k < n; k++)
		if (fds[k] >= 0)
			close(fds[k]);
	if (efd >= 0)
		close(efd);
	if (pid < 0)
		return -EIO;
	/* One source: pprof exits non-zero when it cannot read it, whatever go says besides. */
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 && (n == 1 || !got) ? 0 : -EBADMSG;
}

/* ---------------------------------------------------------------------
 * The push itself.
 */

struct outcome {
	const char *code; /* first failure's Connect code, NULL while all succeed */
	FILE *msg;        /* all failures' messages, "; " separated */
	char *msgbuf;
	size_t msgsz;
	int failures;
	struct checked **chk; /* profiles for go tool pprof, checked once all are in */
	size_t n_chk;
};

static void outcome_fail(struct outcome *o, const char *code, const char *msg)
{
	if (!o->code)
		o->code = code;
	if (o->failures++)
		fputs("; ", o->msg);
	fputs(msg, o->msg);
}

static int hold_for_go(struct outcome *o, const uint8_t *pb, size_t pn, json_t *js)
{
	struct checked *c = calloc(1, sizeof(*c)), **v;

	v = c ? realloc(o->chk, (o->n_chk + 1) * sizeof(*v)) : NULL;
	if (v)
		o->chk = v;
	if (!c || !v || !(c->pb = malloc(pn ? pn : 1))) {
		free(c);
		return -ENOMEM;
	}
	memcpy(c->pb, pb, pn);
	c->pn = pn;
	c->js = json_incref(js);
	o->chk[o->n_chk++] = c;
	return 0;
}

static void go_reject(struct outcome *o, struct checked *c, const char *why)
{
	char msg[1024];

	snprintf(msg, sizeof(msg), "go tool pprof -raw rejected the profile: %s", why);
	json_object_set_new(c->js, "result", json_string("pprof_rejected"));
	json_object_set_new(c->js, "error", json_bytes(msg, strlen(msg)));
	outcome_fail(o, "invalid_argument", msg);
}

/*
 * go tool pprof on every profile held back: a batch at a time, and a batch
 * that go does not pass whole is checked a profile at a time, so that each
 * rejection names its own profile and reason.
 */
static void go_check_held(struct outcome *o)
{
	char why[768];

	for (size_t i = 0; i < o->n_chk; i += GO_CHECK_BATCH) {
		size_t n = o->n_chk - i < GO_CHECK_BATCH ? o->n_chk - i : GO_CHECK_BATCH;

		if (go_pprof_check(o->chk + i, n, why, sizeof(why)) == 0)
			continue;
		if (n == 1) {
			go_reject(o, o->chk[i], why);
			continue;
		}
		for (size_t k = i; k < i + n; k++)
			if (go_pprof_check(o->chk + k, 1, why, sizeof(why)) < 0)
				go_reject(o, o->chk[k], why);
	}
	for (size_t i = 0; i < o->n_chk; i++) {
		json_decref(o->chk[i]->js);
		free(o->chk[i]->pb);
		free(o->chk[i]);
	}
	free(o->chk);
	o->chk = NULL;
	o->n_chk = 0;
}

static void sample_process(struct receiver *r, const Push__V1__RawProfileSeries *s, const Push__V1__RawSample *rs,
			   json_t *js, struct outcome *o)
{
	const uint8_t *raw = rs->raw_profile.data;
	size_t rawn = rs->raw_profile.len, pn;
	uint8_t *unz = NULL;
	const uint8_t *pb;
	Perftools__Profiles__Profile *p = NULL;
	const char *reason = NULL, *code = "invalid_argument";
	char msg[1024] = "";
	char *lmsg = NULL;
	size_t sets = 0;

	json_object_set_new(js, "raw_bytes", json_integer((json_int_t)rawn));
	/* openBytes: no gzip header (gzip.ErrHeader) means an uncompressed profile. */
	if (rawn < 10) {
		reason = "malformed_gzip";
		code = "unknown";
		snprintf(msg, sizeof(msg), "gzip reset: %s", rawn ? "unexpected EOF" : "EOF");
		goto out;
	}
	if (raw[0] == 0x1f && raw[1] == 0x8b && raw[2] == 8) {
		const char *why = "";
		int rc = gunzip_bounded(raw, rawn, r->cfg.max_profile, &unz, &pn, &why);

		if (rc == -EFBIG) {
			reason = "profile_size_limit";
			snprintf(msg, sizeof(msg), "uncompressed profile payload size exceeds limit of %zu bytes",
				 r->cfg.max_profile);
			goto out;
		}
		if (rc) {
			reason = "malformed_gzip";
			code = "unknown";
			snprintf(msg, sizeof(msg), "copy to buffer: %s", rc == -ENOMEM ? "out of memory" : why);
			goto out;
		}
		pb = unz;
	} else {
		if (rawn > r->cfg.max_profile) {
			reason = "profile_size_limit";
			snprintf(msg, sizeof(msg), "uncompressed profile payload size exceeds limit of %zu bytes",
				 r->cfg.max_profile);
			goto out;
		}
		pb = raw;
		pn = rawn;
	}
	json_object_set_new(js, "uncompressed_bytes", json_integer((json_int_t)pn));
	p = perftools__profiles__profile__unpack(NULL, pn, pb);
	if (!p) {
		reason = "malformed_pprof";
		code = "unknown";
		snprintf(msg, sizeof(msg), "proto: cannot parse invalid wire-format data (not a pprof Profile)");
		goto out;
	}
	json_object_set_new(js, "time_nanos", json_integer(p->time_nanos));
	json_object_set_new(js, "duration_nanos", json_integer(p->duration_nanos));
	json_object_set_new(js, "samples", json_integer((json_int_t)p->n_sample));
	reason = profile_validate(r, p, pn, msg, sizeof(msg));
	if (reason)
		goto out;
	{
		json_t *types = json_array(), *totals = json_array();

		for (size_t t = 0; t < p->n_sample_type; t++) {
			char tb[256];
			int64_t sum = 0;

			snprintf(tb, sizeof(tb), "%s/%s", p->string_table[p->sample_type[t]->type],
				 str_ok(p, p->sample_type[t]->unit) ? p->string_table[p->sample_type[t]->unit] : "?");
			json_array_append_new(types, json_bytes(tb, strlen(tb)));
			for (size_t i = 0; i < p->n_sample; i++)
				sum += p->sample[i]->value[t];
			json_array_append_new(totals, json_integer(sum));
		}
		json_object_set_new(js, "sample_types", types);
		json_object_set_new(js, "totals", totals);
	}
	{
		json_t *comments = json_array();

		for (size_t i = 0; i < p->n_comment; i++)
			if (str_ok(p, p->comment[i]))
				json_array_append_new(comments, json_bytes(p->string_table[p->comment[i]],
									   strlen(p->string_table[p->comment[i]])));
		json_object_set_new(js, "comments", comments);
	}
	/* Label messages quote every label, values up to 2 KiB: lmsg is malloc'd. */
	reason = series_validate(s, p, r->cfg.fallback_service, &lmsg, &sets);
	json_object_set_new(js, "split_series", json_integer((json_int_t)sets));
	if (reason) {
		if (!lmsg)
			snprintf(msg, sizeof(msg), "out of memory");
		goto out;
	}
	if (r->cfg.go_check && hold_for_go(o, pb, pn, js) < 0) {
		snprintf(msg, sizeof(msg), "out of memory holding the profile for go tool pprof");
		reason = "pprof_rejected";
	}
out:
	json_object_set_new(js, "result", json_string(reason ? reason : "accepted"));
	if (reason) {
		const char *m = lmsg ? lmsg : msg;

		json_object_set_new(js, "error", json_bytes(m, strlen(m)));
		outcome_fail(o, code, m);
	}
	free(lmsg);
	if (p)
		perftools__profiles__profile__free_unpacked(p, NULL);
	free(unz);
}

static void push_process(struct receiver *r, struct evhttp_request *req, json_t *entry)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	const uint8_t *body = evbuffer_pullup(in, -1);
	uint8_t *unz = NULL;
	const char *enc = hdr(req, "Content-Encoding");
	Push__V1__PushRequest *pr;
	struct outcome o = { 0 };
	struct timespec t0, t1;
	json_t *samples;

	clock_gettime(CLOCK_MONOTONIC, &t0);

	json_object_set_new(entry, "body_bytes", json_integer((json_int_t)n));
	if (enc && strcasecmp(enc, "identity")) {
		const char *why = "";
		size_t un;
		int rc;

		if (strcasecmp(enc, "gzip")) {
			char m[256];

			snprintf(m, sizeof(m), "unknown compression \"%.64s\": supported encodings are gzip", enc);
			reply_connect_error(req, entry, "unimplemented", m, -1);
			return;
		}
		rc = gunzip_bounded(body, n, r->cfg.max_body, &unz, &un, &why);
		if (rc) {
			reply_connect_error(req, entry, rc == -EFBIG ? "resource_exhausted" : "invalid_argument",
					    rc == -EFBIG ? "message is larger than configured max" : why, -1);
			return;
		}
		body = unz;
		n = un;
	}
	pr = push__v1__push_request__unpack(NULL, n, body);
	if (!pr) {
		free(unz);
		reply_connect_error(req, entry, "invalid_argument",
				    "unmarshal into *v1.PushRequest: proto: cannot parse invalid wire-format data", -1);
		return;
	}
	o.msg = open_memstream(&o.msgbuf, &o.msgsz);
	samples = json_array();
	for (size_t i = 0; i < pr->n_series; i++) {
		const Push__V1__RawProfileSeries *s = pr->series[i];

		for (size_t k = 0; k < s->n_samples; k++) {
			json_t *js = json_object(), *labels = json_object();

			for (size_t l = 0; l < s->n_labels; l++) {
				const char *name = s->labels[l]->name;
				json_t *v = json_bytes(s->labels[l]->value, strlen(s->labels[l]->value));

				/* A duplicate name shows as name#2 so the log keeps what arrived. */
				if (json_object_get(labels, name)) {
					char alt[96];

					snprintf(alt, sizeof(alt), "%.50s#%zu", name, l);
					json_object_set_new(labels, alt, v);
				} else if (utf8_valid(name, strlen(name))) {
					json_object_set_new(labels, name, v);
				} else {
					json_object_set_new(labels, "<invalid utf-8 name>", v);
				}
			}
			json_object_set_new(js, "labels", labels);
			json_set_str(js, "id", utf8_valid(s->samples[k]->id, strlen(s->samples[k]->id)) ?
						       s->samples[k]->id : "<invalid utf-8>");
			sample_process(r, s, s->samples[k], js, &o);
			json_array_append_new(samples, js);
		}
	}
	go_check_held(&o);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	json_object_set_new(entry, "handle_ms",
			    json_integer((json_int_t)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000)));
	json_object_set_new(entry, "samples", samples);
	fclose(o.msg);
	if (o.code) {
		reply_connect_error(req, entry, o.code, o.msgbuf, -1);
	} else if (json_array_size(samples) == 0) {
		/* PushBatch: noNewProfilesReceivedError, a validation error. */
		reply_connect_error(req, entry, "invalid_argument", "no profiles received", -1);
	} else {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/proto");
		reply_plain(req, entry, 200, NULL, NULL);
	}
	free(o.msgbuf);
	push__v1__push_request__free_unpacked(pr, NULL);
	free(unz);
}

/* ---------------------------------------------------------------------
 * Requests.
 */

static void entry_finish(struct receiver *r, json_t *entry)
{
	log_line(r, entry);
	json_decref(entry);
}

static void pending_closed(struct evhttp_connection *evcon, void *arg)
{
	struct pending *pd = arg;

	/* The client went away while held back: nothing to answer any more. */
	json_object_set_new(pd->entry, "result", json_string("client_closed"));
	entry_finish(pd->r, pd->entry);
	event_free(pd->timer);
	free(pd);
}

static void pending_fire(evutil_socket_t fd, short what, void *arg)
{
	struct pending *pd = arg;

	evhttp_connection_set_closecb(evhttp_request_get_connection(pd->req), NULL, NULL);
	push_process(pd->r, pd->req, pd->entry);
	entry_finish(pd->r, pd->entry);
	event_free(pd->timer);
	free(pd);
}

static bool auth_ok(struct receiver *r, struct evhttp_request *req, json_t *entry)
{
	const char *org = hdr(req, "X-Scope-OrgID"), *auth = hdr(req, "Authorization");

	if (r->cfg.tenant && (!org || !*org)) {
		reply_connect_error(req, entry, "unauthenticated", "no org id", -1);
		return false;
	}
	if (r->cfg.tenant && strcmp(org, r->cfg.tenant)) {
		reply_connect_error(req, entry, "unauthenticated", "tenant not allowed", -1);
		return false;
	}
	if (r->cfg.basic) {
		char want[1500];
		unsigned char b64[1400];
		size_t ul = strlen(r->cfg.basic);

		EVP_EncodeBlock(b64, (const unsigned char *)r->cfg.basic, (int)ul);
		snprintf(want, sizeof(want), "Basic %s", b64);
		if (!auth || strcmp(auth, want)) {
			reply_connect_error(req, entry, "unauthenticated",
					    auth ? "invalid basic auth credentials" : "missing basic auth credentials", -1);
			return false;
		}
	}
	if (r->cfg.bearer) {
		if (!auth || strncmp(auth, "Bearer ", 7) || strcmp(auth + 7, r->cfg.bearer)) {
			reply_connect_error(req, entry, "unauthenticated",
					    auth ? "invalid bearer token" : "missing bearer token", -1);
			return false;
		}
	}
	return true;
}

static bool content_type_is_proto(const char *ct)
{
	size_t n;

	if (!ct)
		return false;
	n = strcspn(ct, ";");
	while (n && isspace((unsigned char)ct[n - 1]))
		n--;
	return n == strlen("application/proto") && !strncasecmp(ct, "application/proto", n);
}

static void tls_subject(struct evhttp_request *req, json_t *entry)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	char buf[512];

	if (!ssl)
		return;
	if (!peer) {
		json_object_set_new(entry, "tls_client", json_null());
		return;
	}
	X509_NAME_oneline(X509_get_subject_name(peer), buf, sizeof(buf));
	json_object_set_new(entry, "tls_client", json_bytes(buf, strlen(buf)));
}

/*
 * What the request line and headers took on the wire, as HTTP/1.1 sends
 * them ("Name: value\r\n" each, the blank line); with body_bytes, the
 * benchmark's bytes per sample (TLS and TCP framing not counted).
 */
static size_t header_bytes(struct evhttp_request *req)
{
	const struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const struct evkeyval *kv;
	const char *uri = evhttp_request_get_uri(req);
	size_t n = strlen("POST ") + (uri ? strlen(uri) : 0) + strlen(" HTTP/1.1\r\n") + 2;

	TAILQ_FOREACH(kv, h, next)
		n += strlen(kv->key) + 2 + strlen(kv->value) + 2;
	return n;
}

static void handle(struct evhttp_request *req, void *arg)
{
	static const char *logged[] = { "Content-Type", "Content-Encoding", "X-Scope-OrgID", "Authorization",
					"Connect-Protocol-Version", "Connect-Timeout-Ms", "User-Agent",
					"Content-Length" };
	struct receiver *r = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	json_t *entry = json_object(), *headers = json_object();
	char ts[64];
	struct timespec now;
	struct tm tm;
	struct answer a;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%06ldZ", now.tv_nsec / 1000);
	json_object_set_new(entry, "seq", json_integer((json_int_t)++r->seq));
	json_object_set_new(entry, "time", json_string(ts));
	json_object_set_new(entry, "time_unix_ms", json_integer((json_int_t)now.tv_sec * 1000 + now.tv_nsec / 1000000));
	json_object_set_new(entry, "method", json_string(cmd == EVHTTP_REQ_POST ? "POST" :
							 cmd == EVHTTP_REQ_GET ? "GET" : "OTHER"));
	json_object_set_new(entry, "path", path ? json_bytes(path, strlen(path)) : json_null());
	for (size_t i = 0; i < sizeof(logged) / sizeof(logged[0]); i++) {
		const char *v = hdr(req, logged[i]);
		char low[64];
		size_t k;

		for (k = 0; logged[i][k] && k < sizeof(low) - 1; k++)
			low[k] = (char)tolower((unsigned char)logged[i][k]);
		low[k] = '\0';
		if (v)
			json_object_set_new(headers, low, json_bytes(v, strlen(v)));
	}
	json_object_set_new(entry, "headers", headers);
	json_object_set_new(entry, "header_bytes", json_integer((json_int_t)header_bytes(req)));
	tls_subject(req, entry);

	if (!path || strcmp(path, PUSH_PATH)) {
		reply_plain(req, entry, 404, "text/plain; charset=utf-8", "404 page not found\n");
		goto logged;
	}
	if (cmd != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
		reply_plain(req, entry, 405, NULL, NULL);
		goto logged;
	}
	/* The HTTP auth middleware runs before the Connect handler. */
	if (!auth_ok(r, req, entry))
		goto logged;
	if (!content_type_is_proto(hdr(req, "Content-Type"))) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Accept-Post",
				  "application/grpc, application/grpc+proto, application/grpc-web, "
				  "application/grpc-web+proto, application/json, application/proto");
		reply_plain(req, entry, 415, NULL, NULL);
		goto logged;
	}
	{
		const char *v = hdr(req, "Connect-Protocol-Version");

		if (v && strcmp(v, "1")) {
			char m[128];

			snprintf(m, sizeof(m), "connect-protocol-version must be \"1\": got \"%.32s\"", v);
			reply_connect_error(req, entry, "invalid_argument", m, -1);
			goto logged;
		}
	}

	a = script_next(r);
	switch (a.kind) {
	case ANS_NORMAL:
		json_object_set_new(entry, "answer", json_string("normal"));
		push_process(r, req, entry);
		break;
	case ANS_STATUS: {
		char m[64];

		json_object_set_new(entry, "answer", json_string("scripted"));
		snprintf(m, sizeof(m), "scripted answer %d", a.status);
		if (a.status == 200) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/proto");
			if (a.retry_after >= 0) {
				char ra[16];

				snprintf(ra, sizeof(ra), "%d", a.retry_after);
				evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
			}
			reply_plain(req, entry, 200, NULL, NULL);
		} else {
			/* The status asked for, even where the code maps to another (413). */
			reply_error_status(req, entry, a.status, status_code(a.status), m, a.retry_after);
		}
		break;
	}
	case ANS_SLOW: {
		struct pending *pd = calloc(1, sizeof(*pd));
		struct timeval tv = { a.delay_s, 0 };

		json_object_set_new(entry, "answer", json_string("slow"));
		json_object_set_new(entry, "delay_s", json_integer(a.delay_s));
		if (!pd || !(pd->timer = evtimer_new(r->base, pending_fire, pd))) {
			free(pd);
			push_process(r, req, entry);
			break;
		}
		pd->r = r;
		pd->req = req;
		pd->entry = entry;
		evhttp_connection_set_closecb(evhttp_request_get_connection(req), pending_closed, pd);
		evtimer_add(pd->timer, &tv);
		return;
	}
	case ANS_CLOSE: {
		struct bufferevent *bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));

		/* Shut the socket down rather than free it: libevent sees the EOF and cleans up itself. */
		json_object_set_new(entry, "answer", json_string("close"));
		json_object_set_new(entry, "status", json_null());
		if (bev)
			shutdown(bufferevent_getfd(bev), SHUT_RDWR);
		break;
	}
	}
logged:
	entry_finish(r, entry);
}

/* ---------------------------------------------------------------------
 * Set-up.
 */

static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
	struct receiver *r = arg;
	SSL *ssl = SSL_new(r->ssl);
	struct bufferevent *bev;

	if (!ssl)
		return NULL;
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	else
		SSL_free(ssl);
	return bev;
}

static int tls_setup(struct receiver *r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, r->cfg.cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, r->cfg.key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		fprintf(stderr, "pyro_receiver: cannot use certificate %s with key %s: %s\n", r->cfg.cert,
			r->cfg.key, ERR_reason_error_string(ERR_get_error()));
		SSL_CTX_free(ctx);
		return -EINVAL;
	}
	if (r->cfg.client_ca) {
		if (SSL_CTX_load_verify_locations(ctx, r->cfg.client_ca, NULL) != 1) {
			fprintf(stderr, "pyro_receiver: cannot load client CA %s: %s\n", r->cfg.client_ca,
				ERR_reason_error_string(ERR_get_error()));
			SSL_CTX_free(ctx);
			return -EINVAL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	r->ssl = ctx;
	return 0;
}

static int write_port_file(const char *path, int port)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f, "%d\n", port);
	if (fclose(f) != 0 || rename(tmp, path) < 0)
		return -errno;
	return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct receiver *r = arg;

	if (sig == SIGUSR1) {
		if (r->cfg.script_file)
			script_load_file(r, r->cfg.script_file);
		return;
	}
	event_base_loopbreak(r->base);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: pyro_receiver [--port N] [--port-file F] [--log F]\n"
		"         [--cert F --key F [--client-ca F]] [--require-tenant T]\n"
		"         [--require-basic USER:PASS] [--require-bearer TOKEN]\n"
		"         [--script LIST] [--script-file F] [--default ANSWER]\n"
		"         [--no-go-check] [--service-name-fallback]\n"
		"         [--reject-older-than S] [--reject-newer-than S]\n"
		"         [--max-profile-bytes N] [--max-body-bytes N]\n"
		"  LIST: comma-separated 200 | NNN | NNN:RETRY_AFTER_S | slow:S | close\n");
}

static long num_arg(const char *opt, const char *v, long lo, long hi)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < lo || n > hi) {
		fprintf(stderr, "pyro_receiver: %s %s: expected a number from %ld to %ld\n", opt, v, lo, hi);
		exit(64);
	}
	return n;
}

int main(int argc, char **argv)
{
	enum { O_PORTFILE = 256, O_LOG, O_CERT, O_KEY, O_CA, O_TENANT, O_BASIC, O_BEARER, O_SCRIPT,
	       O_SCRIPTFILE, O_DEFAULT, O_NOGO, O_FALLBACK, O_OLDER, O_NEWER, O_MAXPROF, O_MAXBODY };
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "port-file", required_argument, NULL, O_PORTFILE },
		{ "log", required_argument, NULL, O_LOG },
		{ "cert", required_argument, NULL, O_CERT },
		{ "key", required_argument, NULL, O_KEY },
		{ "client-ca", required_argument, NULL, O_CA },
		{ "require-tenant", required_argument, NULL, O_TENANT },
		{ "require-basic", required_argument, NULL, O_BASIC },
		{ "require-bearer", required_argument, NULL, O_BEARER },
		{ "script", required_argument, NULL, O_SCRIPT },
		{ "script-file", required_argument, NULL, O_SCRIPTFILE },
		{ "default", required_argument, NULL, O_DEFAULT },
		{ "no-go-check", no_argument, NULL, O_NOGO },
		{ "service-name-fallback", no_argument, NULL, O_FALLBACK },
		{ "reject-older-than", required_argument, NULL, O_OLDER },
		{ "reject-newer-than", required_argument, NULL, O_NEWER },
		{ "max-profile-bytes", required_argument, NULL, O_MAXPROF },
		{ "max-body-bytes", required_argument, NULL, O_MAXBODY },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct receiver r = { .cfg = { .go_check = true, .reject_older_s = REJECT_OLDER_S,
				       .reject_newer_s = REJECT_NEWER_S, .max_profile = MAX_PROFILE_BYTES,
				       .max_body = DEFAULT_MAX_BODY },
			      .dflt = { .kind = ANS_NORMAL, .retry_after = -1 } };
	const char *script = NULL;
	struct evhttp_bound_socket *bound;
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	struct event *sigs[4];
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': r.cfg.port = (int)num_arg("--port", optarg, 0, 65535); break;
		case O_PORTFILE: r.cfg.port_file = optarg; break;
		case O_LOG: r.cfg.log_path = optarg; break;
		case O_CERT: r.cfg.cert = optarg; break;
		case O_KEY: r.cfg.key = optarg; break;
		case O_CA: r.cfg.client_ca = optarg; break;
		case O_TENANT: r.cfg.tenant = optarg; break;
		case O_BASIC: r.cfg.basic = optarg; break;
		case O_BEARER: r.cfg.bearer = optarg; break;
		case O_SCRIPT: script = optarg; break;
		case O_SCRIPTFILE: r.cfg.script_file = optarg; break;
		case O_DEFAULT:
			if (answer_parse(optarg, &r.dflt) < 0 || r.dflt.kind == ANS_SLOW) {
				fprintf(stderr, "pyro_receiver: --default %s: expected 200, NNN, NNN:S or close\n",
					optarg);
				return 64;
			}
			break;
		case O_NOGO: r.cfg.go_check = false; break;
		case O_FALLBACK: r.cfg.fallback_service = true; break;
		case O_OLDER: r.cfg.reject_older_s = num_arg("--reject-older-than", optarg, 0, 1L << 30); break;
		case O_NEWER: r.cfg.reject_newer_s = num_arg("--reject-newer-than", optarg, 0, 1L << 30); break;
		case O_MAXPROF:
			r.cfg.max_profile = (size_t)num_arg("--max-profile-bytes", optarg, 1, 1L << 30);
			break;
		case O_MAXBODY: r.cfg.max_body = (size_t)num_arg("--max-body-bytes", optarg, 1, 1L << 30); break;
		default: usage(); return c == 'h' ? 0 : 64;
		}
	}
	if (optind != argc || !r.cfg.cert != !r.cfg.key || (r.cfg.client_ca && !r.cfg.cert) ||
	    (r.cfg.basic && r.cfg.bearer) || (r.cfg.basic && strlen(r.cfg.basic) > 512)) {
		fprintf(stderr, "pyro_receiver: --cert and --key go together, --client-ca needs them, "
				"--require-basic (up to 512 bytes) excludes --require-bearer\n");
		usage();
		return 64;
	}
	if (r.cfg.log_path) {
		r.log = fopen(r.cfg.log_path, "ae");
		if (!r.log) {
			fprintf(stderr, "pyro_receiver: cannot open log %s: %s\n", r.cfg.log_path, strerror(errno));
			return 66;
		}
	}
	/* A script file that does not exist yet is one the test will write before SIGUSR1. */
	if ((script && script_load(&r, script) < 0) ||
	    (!script && r.cfg.script_file && access(r.cfg.script_file, F_OK) == 0 &&
	     script_load_file(&r, r.cfg.script_file) < 0))
		return 64;
	if (r.cfg.cert && tls_setup(&r) < 0)
		return 66;
	signal(SIGPIPE, SIG_IGN);
	r.base = event_base_new();
	r.http = r.base ? evhttp_new(r.base) : NULL;
	if (!r.http) {
		fprintf(stderr, "pyro_receiver: cannot set up libevent\n");
		return 71;
	}
	evhttp_set_max_body_size(r.http, (ev_ssize_t)r.cfg.max_body);
	/* Go writes no Content-Type on an empty body; libevent would add text/html. */
	evhttp_set_default_content_type(r.http, NULL);
	evhttp_set_allowed_methods(r.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
						   EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS |
						   EVHTTP_REQ_PATCH);
	evhttp_set_gencb(r.http, handle, &r);
	if (r.ssl)
		evhttp_set_bevcb(r.http, tls_bev, &r);
	bound = evhttp_bind_socket_with_handle(r.http, "127.0.0.1", (uint16_t)r.cfg.port);
	if (!bound || getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&sa, &salen) < 0) {
		fprintf(stderr, "pyro_receiver: cannot listen on 127.0.0.1:%d: %s\n", r.cfg.port, strerror(errno));
		return 69;
	}
	if (r.cfg.port_file && write_port_file(r.cfg.port_file, ntohs(sa.sin_port)) < 0) {
		fprintf(stderr, "pyro_receiver: cannot write port file %s: %s\n", r.cfg.port_file, strerror(errno));
		return 73;
	}
	sigs[0] = evsignal_new(r.base, SIGTERM, on_signal, &r);
	sigs[1] = evsignal_new(r.base, SIGINT, on_signal, &r);
	sigs[2] = evsignal_new(r.base, SIGUSR1, on_signal, &r);
	sigs[3] = NULL;
	for (int i = 0; i < 3; i++)
		if (sigs[i])
			evsignal_add(sigs[i], NULL);
	event_base_dispatch(r.base);

	for (int i = 0; i < 3; i++)
		if (sigs[i])
			event_free(sigs[i]);
	evhttp_free(r.http);
	event_base_free(r.base);
	if (r.ssl)
		SSL_CTX_free(r.ssl);
	free(r.script);
	if (r.log)
		fclose(r.log);
	return rc;
}
