/*
 * exporter.c - the uplink's Pyroscope pusher (see exporter.h).  Runs in the
 * uplink, unprivileged and confined; library-like, never logs.
 *
 * The retry policy is Grafana Alloy's pyroscope.write's, from its
 * documentation: network errors, 429 and 5xx are retried with backoff
 * between min_backoff_period 500ms and max_backoff_period 5m, honouring
 * Retry-After; other errors (400, 401, 403, 413...) are not.  Alloy gives
 * up after max_backoff_retries; we never do, because the profile waits in
 * the collector's spool, whose bound (--spool-max-bytes) is what decides
 * what is lost.  The Connect protocol's error body is JSON with "code" and
 * "message" (connectrpc.com, "Connect Protocol Reference", Unary-Response
 * error).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "backoff.h"
#include "curltls.h"
#include "exporter.h"

struct blob {
	char *p;
	size_t len;
};

struct exporter {
	CURLM *multi;
	CURL *easy;              /* the one transfer, when running */
	bool running;
	/* target */
	bool configured;
	char *url;               /* with EXPORTER_PATH */
	struct curl_slist *resolve, *headers;
	struct blob basic, ca, cert, key;
	bool https;
	uint64_t min_gap_ns;     /* per profile: 1/max_rate */
	/* the push */
	bool have_job;
	uint64_t seq, samples;
	uint32_t nseries;
	uint8_t *body;
	size_t len;
	uint64_t not_before_ns;  /* backoff or rate */
	uint64_t last_start_ns;
	uint32_t last_nseries;   /* of the push started last */
	struct backoff bo;
	/* the answer under way */
	uint8_t *resp;
	size_t resp_len;
	uint64_t retry_after_ns;
	unsigned server_errors;  /* answers with the same 5xx of the server's own, in a row */
	char errbuf[CURL_ERROR_SIZE];
	struct export_stats stats;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void blob_drop(struct blob *b)
{
	if (b->p) {
		explicit_bzero(b->p, b->len);
		free(b->p);
	}
	b->p = NULL;
	b->len = 0;
}

static int blob_set(struct blob *b, const void *p, size_t len)
{
	blob_drop(b);
	if (!p)
		return 0;
	b->p = malloc(len + 1);
	if (!b->p)
		return -ENOMEM;
	memcpy(b->p, p, len);
	b->p[len] = '\0';
	b->len = len;
	return 0;
}

enum exporter_verdict exporter_classify(bool transport_ok, long status)
{
	if (!transport_ok)
		return EXPORTER_RETRY;
	if (status >= 200 && status < 300)
		return EXPORTER_OK;
	if (status == 429 || (status >= 500 && status < 600))
		return EXPORTER_RETRY;
	return EXPORTER_REJECT;
}

bool exporter_gives_up(long status, unsigned consecutive)
{
	bool own_error = status >= 500 && status < 600 && status != 502 && status != 503 &&
			 status != 504;

	return own_error && consecutive >= EXPORTER_MAX_SERVER_ERRORS;
}

uint64_t exporter_retry_wait(struct backoff *b, uint64_t rnd, uint64_t retry_after_ns)
{
	if (retry_after_ns > EXPORTER_RETRY_AFTER_MAX_NS)
		retry_after_ns = EXPORTER_RETRY_AFTER_MAX_NS;
	return backoff_next(b, rnd, retry_after_ns);
}

/* Copy s into out as printable ASCII (others as '?'), at most outlen-1 bytes. */
static void printable(const char *s, size_t len, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 1 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];

		out[o++] = c >= 0x20 && c < 0x7f ? (char)c : (c == '\n' || c == '\r' || c == '\t' ? ' ' : '?');
	}
	out[o] = '\0';
}

void exporter_describe(long status, const uint8_t *body, size_t len, char *out, size_t outlen)
{
	char detail[256] = "";
	json_t *j = NULL;

	if (len && len <= EXPORTER_MAX_RESPONSE)
		j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
	if (j && json_is_object(j)) {
		const char *code = json_string_value(json_object_get(j, "code"));
		const char *msg = json_string_value(json_object_get(j, "message"));
		char c[48], m[160];

		printable(code ? code : "", code ? strlen(code) : 0, c, sizeof(c));
		printable(msg ? msg : "", msg ? strlen(msg) : 0, m, sizeof(m));
		if (code || msg)
			snprintf(detail, sizeof(detail), "%s%s%s", c, code && msg ? ": " : "", m);
	}
	json_decref(j);
	if (!detail[0] && len)
		printable((const char *)body, len > 150 ? 150 : len, detail, sizeof(detail));
	snprintf(out, outlen, "HTTP %ld%s%s", status, detail[0] ? ": " : "", detail);
}

int exporter_new(struct exporter **ret)
{
	struct exporter *e = calloc(1, sizeof(*e));

	if (!e)
		return -ENOMEM;
	e->multi = curl_multi_init();
	if (!e->multi) {
		free(e);
		return -EIO;
	}
	/*
	 * The multi handle's internal "closure" handle takes no_signal from
	 * the easy handles added to it; until one is, curl_multi_cleanup()
	 * calls sigaction() to ignore SIGPIPE, which the uplink's seccomp
	 * filter kills it for.  One NOSIGNAL handle, added and removed, sets it.
	 */
	{
		CURL *c = curl_easy_init();

		if (!c) {
			curl_multi_cleanup(e->multi);
			free(e);
			return -ENOMEM;
		}
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_multi_add_handle(e->multi, c);
		curl_multi_remove_handle(e->multi, c);
		curl_easy_cleanup(c);
	}
	/*
	 * jansson seeds its hash tables from /dev/urandom the first time an
	 * object is made; an error body is decoded after confinement, where
	 * no file may be opened: seed it now (exporter.h: made before).
	 */
	json_object_seed(0);
	e->stats.state = EXPORT_OFF;
	*ret = e;
	return 0;
}

static void end_transfer(struct exporter *e)
{
	if (e->easy) {
		curl_multi_remove_handle(e->multi, e->easy);
		curl_easy_cleanup(e->easy);
	}
	e->easy = NULL;
	e->running = false;
	free(e->resp);
	e->resp = NULL;
	e->resp_len = 0;
}

static void target_drop(struct exporter *e)
{
	free(e->url);
	e->url = NULL;
	curl_slist_free_all(e->resolve);
	e->resolve = NULL;
	/* the headers may carry a bearer token */
	for (struct curl_slist *s = e->headers; s; s = s->next)
		explicit_bzero(s->data, strlen(s->data));
	curl_slist_free_all(e->headers);
	e->headers = NULL;
	blob_drop(&e->basic);
	blob_drop(&e->ca);
	blob_drop(&e->cert);
	blob_drop(&e->key);
	e->configured = false;
}

void exporter_free(struct exporter *e)
{
	if (!e)
		return;
	end_transfer(e);
	target_drop(e);
	free(e->body);
	curl_multi_cleanup(e->multi);
	free(e);
}

static bool has_newline(const void *p, size_t len)
{
	return memchr(p, '\n', len) || memchr(p, '\r', len) || memchr(p, '\0', len);
}

int exporter_configure(struct exporter *e, const struct exporter_target *t)
{
	char line[UPLINK_HOST_LEN + 16 + UPLINK_MAX_ADDRS * (INET6_ADDRSTRLEN + 3)];
	char hdr[EXPORTER_SECRET_MAX + 32];
	uint8_t bin[16];
	size_t off;
	bool https;
	int rc = -ENOMEM;

	/*
	 * A transfer under way uses the headers and addresses about to be
	 * freed (libcurl does not copy lists): it is abandoned and the push
	 * starts again with the new target.
	 */
	if (e->running) {
		end_transfer(e);
		e->not_before_ns = 0;
	}
	if (!t) {
		target_drop(e);
		e->stats.state = EXPORT_OFF;
		return 0;
	}
	https = !strncasecmp(t->url, "https://", 8);
	if ((!https && strncasecmp(t->url, "http://", 7)) || (https && !t->ca) || !t->max_rate ||
	    (t->basic && (t->basic_len > EXPORTER_SECRET_MAX || has_newline(t->basic, t->basic_len) ||
			  !memchr(t->basic, ':', t->basic_len))) ||
	    (t->bearer && (t->bearer_len > EXPORTER_SECRET_MAX || !t->bearer_len ||
			   has_newline(t->bearer, t->bearer_len))) ||
	    (t->tenant && has_newline(t->tenant, strlen(t->tenant))) || !!t->cert != !!t->key ||
	    strlen(t->host) >= UPLINK_HOST_LEN)
		return -EINVAL;
	target_drop(e);
	e->https = https;
	e->min_gap_ns = 1000000000ull / t->max_rate;
	{
		size_t ul = strlen(t->url);

		while (ul && t->url[ul - 1] == '/')
			ul--;
		e->url = malloc(ul + sizeof(EXPORTER_PATH));
		if (!e->url)
			goto fail;
		memcpy(e->url, t->url, ul);
		memcpy(e->url + ul, EXPORTER_PATH, sizeof(EXPORTER_PATH));
	}
	/* An address literal needs no pinning: libcurl takes it without a resolver. */
	if (t->naddrs && inet_pton(AF_INET, t->host, bin) != 1 && inet_pton(AF_INET6, t->host, bin) != 1) {
		off = (size_t)snprintf(line, sizeof(line), "%s:%u:", t->host, t->port);
		for (size_t i = 0; i < t->naddrs && i < UPLINK_MAX_ADDRS; i++) {
			char a[INET6_ADDRSTRLEN];
			bool v6 = t->addrs[i].family == AF_INET6;

			if (!inet_ntop(v6 ? AF_INET6 : AF_INET, t->addrs[i].addr, a, sizeof(a)))
				continue;
			off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%s%s%s",
						line[off - 1] != ':' ? "," : "", v6 ? "[" : "", a, v6 ? "]" : "");
		}
		e->resolve = curl_slist_append(NULL, line);
		if (!e->resolve)
			goto fail;
	}
	/*
	 * Connect unary over HTTP/1.1: the message type, the protocol version
	 * header the Connect specification says clients should send; no
	 * "Expect: 100-continue" (a round trip for nothing).
	 */
	e->headers = curl_slist_append(NULL, "Content-Type: application/proto");
	if (e->headers)
		e->headers = curl_slist_append(e->headers, "Connect-Protocol-Version: 1");
	if (e->headers)
		e->headers = curl_slist_append(e->headers, "Expect:");
	if (e->headers && t->tenant && *t->tenant) {
		snprintf(hdr, sizeof(hdr), "X-Scope-OrgID: %s", t->tenant);
		e->headers = curl_slist_append(e->headers, hdr);
	}
	if (e->headers && t->bearer) {
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %.*s", (int)t->bearer_len,
			 (const char *)t->bearer);
		e->headers = curl_slist_append(e->headers, hdr);
		explicit_bzero(hdr, sizeof(hdr));
	}
	if (!e->headers)
		goto fail;
	if ((rc = blob_set(&e->basic, t->basic, t->basic_len)) ||
	    (rc = blob_set(&e->ca, t->ca, t->ca_len)) ||
	    (rc = blob_set(&e->cert, t->cert, t->cert_len)) ||
	    (rc = blob_set(&e->key, t->key, t->key_len)))
		goto fail;
	e->configured = true;
	if (e->stats.state == EXPORT_OFF)
		e->stats.state = e->have_job ? EXPORT_SENDING : EXPORT_IDLE;
	return 0;
fail:
	target_drop(e);
	e->stats.state = EXPORT_OFF;
	return rc ? rc : -ENOMEM;
}

bool exporter_configured(const struct exporter *e)
{
	return e->configured;
}

int exporter_submit(struct exporter *e, uint64_t seq, void *body, size_t len, uint32_t nseries,
		    uint64_t samples)
{
	if (e->have_job)
		return -EBUSY;
	e->have_job = true;
	e->server_errors = 0;
	e->seq = seq;
	e->body = body;
	e->len = len;
	e->samples = samples;
	e->nseries = nseries ? nseries : 1;
	e->not_before_ns = e->last_start_ns ? e->last_start_ns + e->last_nseries * e->min_gap_ns : 0;
	if (e->stats.state == EXPORT_IDLE)
		e->stats.state = EXPORT_SENDING;
	return 0;
}

bool exporter_busy(const struct exporter *e)
{
	return e->have_job;
}

const struct export_stats *exporter_stats(const struct exporter *e)
{
	return &e->stats;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct exporter *e = arg;
	size_t len = size * n;
	uint8_t *b;

	/* Only an error message is wanted: the rest is read and dropped. */
	if (e->resp_len >= EXPORTER_MAX_RESPONSE)
		return len;
	if (len > EXPORTER_MAX_RESPONSE - e->resp_len)
		len = EXPORTER_MAX_RESPONSE - e->resp_len;
	b = realloc(e->resp, e->resp_len + len);
	if (!b)
		return size * n;
	memcpy(b + e->resp_len, p, len);
	e->resp = b;
	e->resp_len += len;
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct exporter *e = arg;
	size_t len = size * n;
	uint64_t ns;

	if (backoff_retry_after_header(p, len, (int64_t)time(NULL), &ns) == 0)
		e->retry_after_ns = ns;
	return len;
}

static int start(struct exporter *e)
{
	struct curl_blob ca = { e->ca.p, e->ca.len, CURL_BLOB_COPY };
	struct curl_blob cert = { e->cert.p, e->cert.len, CURL_BLOB_COPY };
	struct curl_blob key = { e->key.p, e->key.len, CURL_BLOB_COPY };
	CURL *c = curl_easy_init();

	if (!c)
		return -ENOMEM;
	e->retry_after_ns = 0;
	e->errbuf[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, e->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, e->https ? "https" : "http");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, e->body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)e->len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, e->headers);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "vigild/" VIGIL_VERSION);
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)EXPORTER_TIMEOUT_S);
	if (e->resolve)
		curl_easy_setopt(c, CURLOPT_RESOLVE, e->resolve);
	if (e->basic.p) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERPWD, e->basic.p);
	}
	if (e->https) {
		curltls_pin(c, &ca);
		if (e->cert.p)
			curltls_client(c, &cert, &key);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, e);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, e);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, e->errbuf);
	if (curl_multi_add_handle(e->multi, c) != CURLM_OK) {
		curl_easy_cleanup(c);
		return -ENOMEM;
	}
	e->easy = c;
	e->running = true;
	e->last_start_ns = mono_ns();
	e->last_nseries = e->nseries;
	e->stats.request_bytes_total += e->len;
	return 0;
}

size_t exporter_pollfds(struct exporter *e, struct pollfd *p, size_t max, int *ret_timeout_ms)
{
	fd_set r, w, x;
	int maxfd = -1;
	long t = -1;
	size_t n = 0;
	uint64_t now = mono_ns();

	*ret_timeout_ms = -1;
	if (!e->have_job || !e->configured)
		return 0;
	if (!e->running) {
		uint64_t wait = e->not_before_ns > now ? e->not_before_ns - now : 0;

		*ret_timeout_ms = (int)((wait + 999999) / 1000000);
		return 0;
	}
	FD_ZERO(&r);
	FD_ZERO(&w);
	FD_ZERO(&x);
	curl_multi_fdset(e->multi, &r, &w, &x, &maxfd);
	for (int fd = 0; fd <= maxfd && n < max; fd++) {
		short ev = (FD_ISSET(fd, &r) ? POLLIN : 0) | (FD_ISSET(fd, &w) ? POLLOUT : 0) |
			   (FD_ISSET(fd, &x) ? POLLPRI : 0);

		if (ev)
			p[n++] = (struct pollfd){ .fd = fd, .events = ev };
	}
	curl_multi_timeout(e->multi, &t);
	/* No socket yet (connecting, or a descriptor past FD_SETSIZE): look again soon. */
	if (maxfd < 0 && (t < 0 || t > 100))
		t = 100;
	*ret_timeout_ms = t < 0 ? -1 : (int)(t > 60000 ? 60000 : t);
	return n;
}

static uint64_t random64(void)
{
	uint64_t r = 0;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = mono_ns();
	return r;
}

static void job_done(struct exporter *e)
{
	free(e->body);
	e->body = NULL;
	e->len = 0;
	e->have_job = false;
}

int exporter_step(struct exporter *e, struct exporter_done *ret, char *retry_why, size_t why_len,
		  uint64_t *ret_retry_ns)
{
	CURLMsg *msg;
	int left, still;
	CURLcode cc;
	long status = 0;
	enum exporter_verdict v;

	if (retry_why && why_len)
		retry_why[0] = '\0';
	if (!e->have_job || !e->configured)
		return 0;
	if (!e->running) {
		if (mono_ns() < e->not_before_ns)
			return 0;
		if (start(e))
			return 0; /* out of memory: tried again at the next step */
	}
	curl_multi_perform(e->multi, &still);
	msg = curl_multi_info_read(e->multi, &left);
	if (!msg || msg->msg != CURLMSG_DONE)
		return 0;
	cc = msg->data.result;
	curl_easy_getinfo(e->easy, CURLINFO_RESPONSE_CODE, &status);
	v = exporter_classify(cc == CURLE_OK, status);
	e->stats.last_http_status = cc == CURLE_OK ? (int32_t)status : 0;
	if (v == EXPORTER_RETRY && cc == CURLE_OK && status >= 500) {
		e->server_errors++;
		if (exporter_gives_up(status, e->server_errors))
			v = EXPORTER_REJECT; /* below: reported as refused, with the answer */
	} else if (v == EXPORTER_RETRY) {
		e->server_errors = 0;
	}
	if (v == EXPORTER_RETRY) {
		uint64_t wait = exporter_retry_wait(&e->bo, random64(), cc == CURLE_OK ? e->retry_after_ns : 0);

		if (retry_why && why_len) {
			if (cc != CURLE_OK)
				snprintf(retry_why, why_len, "%s", e->errbuf[0] ? e->errbuf : curl_easy_strerror(cc));
			else
				exporter_describe(status, e->resp, e->resp_len, retry_why, why_len);
		}
		if (ret_retry_ns)
			*ret_retry_ns = wait;
		e->not_before_ns = mono_ns() + wait;
		e->stats.retries_total++;
		e->stats.state = EXPORT_FAILING;
		end_transfer(e);
		return 0;
	}
	memset(ret, 0, sizeof(*ret));
	ret->seq = e->seq;
	ret->verdict = v;
	ret->http_status = (int)status;
	backoff_reset(&e->bo); /* the server answered */
	if (v == EXPORTER_OK) {
		e->stats.pushed_total += e->nseries;
		e->stats.samples_total += e->samples;
	} else {
		exporter_describe(status, e->resp, e->resp_len, ret->why, sizeof(ret->why));
		e->stats.rejected_total += e->nseries;
	}
	end_transfer(e);
	job_done(e);
	e->stats.state = EXPORT_IDLE;
	return 1;
}
