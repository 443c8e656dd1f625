/*
 * cphttp.c - OpAMP's HTTP transport with libcurl (see cphttp.h).
 * Runs in the uplink.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>

#include "backoff.h"
#include "cphttp.h"
#include "curltls.h"
#include "gzip.h"

struct cphttp {
	CURL *curl;
	/*
	 * The transfer runs on a multi handle of our own rather than in
	 * curl_easy_perform(), so that the caller's abort_fn is called at
	 * least every CPHTTP_TICK_MS whatever libcurl is doing (its progress
	 * callback is not called while a TLS handshake waits): the uplink
	 * moves its other work (the exporter) on from there.  The multi owns
	 * the connection cache, so it lives as long as the easy handle.
	 */
	CURLM *multi;
	cphttp_fds_fn waiter;
	void *waiter_ctx;
	char url[320];
	char host[UPLINK_HOST_LEN];
	unsigned port;
	struct curl_slist *resolve, *headers, *headers_gz;
	/* the identity (copies; curl copies blobs too, but these are wiped) */
	void *cert, *key, *ca;
	size_t cert_len, key_len, ca_len;
};

int cphttp_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

/*
 * A multi handle whose internal closure handle is NOSIGNAL: it takes that
 * from the first easy handle added, and without it curl_multi_cleanup()
 * calls sigaction(), which the uplink's seccomp filter forbids.
 */
static CURLM *multi_new(CURL *c)
{
	CURLM *m = c ? curl_multi_init() : NULL;

	if (m) {
		curl_multi_add_handle(m, c);
		curl_multi_remove_handle(m, c);
	}
	return m;
}

int cphttp_new(const char *host, unsigned port, struct cphttp **ret)
{
	struct cphttp *h = calloc(1, sizeof(*h));
	bool v6 = strchr(host, ':') != NULL;

	if (!h)
		return -ENOMEM;
	snprintf(h->host, sizeof(h->host), "%s", host);
	h->port = port;
	snprintf(h->url, sizeof(h->url), "https://%s%s%s:%u/v1/opamp", v6 ? "[" : "", host,
		 v6 ? "]" : "", port);
	h->curl = curl_easy_init();
	if (h->curl)
		curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L); /* no sigaction, even at cleanup */
	h->multi = multi_new(h->curl);
	h->headers = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
	h->headers_gz = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
	if (h->headers_gz)
		h->headers_gz = curl_slist_append(h->headers_gz, "Content-Encoding: gzip");
	if (!h->curl || !h->multi || !h->headers || !h->headers_gz) {
		cphttp_free(h);
		return -ENOMEM;
	}
	*ret = h;
	return 0;
}

static void wipe(void **p, size_t *len)
{
	if (*p) {
		explicit_bzero(*p, *len);
		free(*p);
	}
	*p = NULL;
	*len = 0;
}

static void *copy(const void *p, size_t len)
{
	void *d = malloc(len ? len : 1);

	if (d && len)
		memcpy(d, p, len);
	return d;
}

int cphttp_set_identity(struct cphttp *h, const void *cert, size_t cert_len, const void *key,
			size_t key_len, const void *ca, size_t ca_len, const struct uplink_addr *addrs,
			size_t naddrs)
{
	struct curl_slist *resolve = NULL;
	char line[UPLINK_HOST_LEN + 16 + UPLINK_MAX_ADDRS * (INET6_ADDRSTRLEN + 3)];
	size_t off;

	off = (size_t)snprintf(line, sizeof(line), "%s:%u:", h->host, h->port);
	for (size_t i = 0; i < naddrs && i < UPLINK_MAX_ADDRS; i++) {
		char a[INET6_ADDRSTRLEN];
		int v6 = addrs[i].family == AF_INET6;

		if (!inet_ntop(v6 ? AF_INET6 : AF_INET, addrs[i].addr, a, sizeof(a)))
			continue;
		off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%s%s%s",
					off > strlen(h->host) + 8 && line[off - 1] != ':' ? "," : "",
					v6 ? "[" : "", a, v6 ? "]" : "");
	}
	/*
	 * An address literal needs no pinning: libcurl takes it as it is,
	 * without a resolver (and a bracketed IPv6 host does not fit
	 * CURLOPT_RESOLVE's HOST:PORT:ADDRESS anyway).
	 */
	{
		uint8_t bin[16];

		if (inet_pton(AF_INET, h->host, bin) == 1 || inet_pton(AF_INET6, h->host, bin) == 1)
			naddrs = 0;
	}
	if (naddrs) {
		resolve = curl_slist_append(NULL, line);
		if (!resolve)
			return -ENOMEM;
	}
	wipe(&h->cert, &h->cert_len);
	wipe(&h->key, &h->key_len);
	wipe(&h->ca, &h->ca_len);
	h->cert = copy(cert, cert_len);
	h->key = copy(key, key_len);
	h->ca = copy(ca, ca_len);
	if (!h->cert || !h->key || !h->ca) {
		curl_slist_free_all(resolve);
		return -ENOMEM;
	}
	h->cert_len = cert_len;
	h->key_len = key_len;
	h->ca_len = ca_len;
	curl_slist_free_all(h->resolve);
	h->resolve = resolve;
	/*
	 * A new handle, with an empty connection cache: no request made
	 * from now on can go over a connection made with the old identity.
	 */
	if (h->curl) {
		CURL *c = curl_easy_init();
		CURLM *m;

		if (!c)
			return -ENOMEM;
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		m = multi_new(c);
		if (!m) {
			curl_easy_cleanup(c);
			return -ENOMEM;
		}
		curl_multi_cleanup(h->multi);
		curl_easy_cleanup(h->curl);
		h->curl = c;
		h->multi = m;
	}
	return 0;
}

struct sink {
	struct cphttp_result *r;
	size_t cap;
	bool too_big;
	cphttp_abort_fn abort_fn;
	void *ctx;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t len = size * n;

	/* curl hands over decompressed bytes: this bounds the gunzipped body. */
	if (s->r->len + len > CPHTTP_MAX_BODY) {
		s->too_big = true;
		return 0;
	}
	if (s->r->len + len > s->cap) {
		size_t cap = s->cap ? s->cap : 16384;
		uint8_t *b;

		while (cap < s->r->len + len)
			cap *= 2;
		if (cap > CPHTTP_MAX_BODY)
			cap = CPHTTP_MAX_BODY;
		b = realloc(s->r->body, cap);
		if (!b)
			return 0;
		s->r->body = b;
		s->cap = cap;
	}
	memcpy(s->r->body + s->r->len, p, len);
	s->r->len += len;
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t len = size * n;
	uint64_t ns;

	if (backoff_retry_after_header(p, len, (int64_t)time(NULL), &ns) == 0)
		s->r->retry_after_ns = ns;
	return len;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct sink *s = arg;

	return s->abort_fn && s->abort_fn(s->ctx) ? 1 : 0;
}

#define CPHTTP_MAX_EXTRA 16

void cphttp_set_waiter(struct cphttp *h, cphttp_fds_fn fn, void *ctx)
{
	h->waiter = fn;
	h->waiter_ctx = ctx;
}

/*
 * curl_easy_perform(), with s->abort_fn called at least every
 * CPHTTP_TICK_MS, and as soon as a descriptor from the waiter is ready.
 */
static CURLcode perform(struct cphttp *h, struct sink *s)
{
	CURLcode cc = CURLE_OK;
	CURLMsg *msg;
	int running = 1, left;

	if (curl_multi_add_handle(h->multi, h->curl) != CURLM_OK)
		return CURLE_OUT_OF_MEMORY;
	while (running) {
		if (curl_multi_perform(h->multi, &running) != CURLM_OK) {
			cc = CURLE_OUT_OF_MEMORY;
			break;
		}
		if (!running)
			break;
		{
			struct pollfd p[CPHTTP_MAX_EXTRA];
			struct curl_waitfd w[CPHTTP_MAX_EXTRA];
			int timeout = CPHTTP_TICK_MS;
			size_t n = h->waiter ? h->waiter(h->waiter_ctx, p, CPHTTP_MAX_EXTRA, &timeout) : 0;

			for (size_t i = 0; i < n; i++)
				w[i] = (struct curl_waitfd){ .fd = p[i].fd,
							     .events = (short)(((p[i].events & POLLIN) ? CURL_WAIT_POLLIN : 0) |
									       ((p[i].events & POLLOUT) ? CURL_WAIT_POLLOUT : 0) |
									       ((p[i].events & POLLPRI) ? CURL_WAIT_POLLPRI : 0)) };
			if (timeout < 0 || timeout > CPHTTP_TICK_MS)
				timeout = CPHTTP_TICK_MS;
			if (curl_multi_poll(h->multi, n ? w : NULL, (unsigned)n, timeout, NULL) != CURLM_OK) {
				cc = CURLE_OUT_OF_MEMORY;
				break;
			}
		}
		if (s->abort_fn && s->abort_fn(s->ctx)) {
			cc = CURLE_ABORTED_BY_CALLBACK;
			break;
		}
	}
	if (!running && (msg = curl_multi_info_read(h->multi, &left)) && msg->msg == CURLMSG_DONE)
		cc = msg->data.result;
	curl_multi_remove_handle(h->multi, h->curl);
	return cc;
}

int cphttp_post(struct cphttp *h, const uint8_t *body, size_t len, bool gzip, unsigned timeout_s,
		cphttp_abort_fn abort_fn, void *ctx, struct cphttp_result *r)
{
	struct curl_blob cert = { h->cert, h->cert_len, CURL_BLOB_NOCOPY };
	struct curl_blob key = { h->key, h->key_len, CURL_BLOB_NOCOPY };
	struct curl_blob ca = { h->ca, h->ca_len, CURL_BLOB_NOCOPY };
	struct sink s = { .r = r, .abort_fn = abort_fn, .ctx = ctx };
	char errbuf[CURL_ERROR_SIZE] = "";
	uint8_t *gz = NULL;
	size_t gzlen = 0;
	CURLcode cc;
	CURL *c = h->curl;
	int rc;

	memset(r, 0, sizeof(*r));
	if (!h->cert) {
		snprintf(r->err, sizeof(r->err), "no key material yet");
		return -ENOKEY;
	}
	if (gzip && (rc = gzip_compress(body, len, &gz, &gzlen)) < 0) {
		snprintf(r->err, sizeof(r->err), "gzip: %s", strerror(-rc));
		return rc;
	}
	curl_easy_reset(c); /* keeps the connection cache: keep-alive */
	curl_easy_setopt(c, CURLOPT_URL, h->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, gzip ? gz : body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(gzip ? gzlen : len));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, gzip ? h->headers_gz : h->headers);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "vigild/" VIGIL_VERSION);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "gzip");
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)timeout_s);
	curl_easy_setopt(c, CURLOPT_RESOLVE, h->resolve);
	/* TLS: 1.2 or later, peer and name verified against --ca only; our certificate. */
	curltls_pin(c, &ca);
	curltls_client(c, &cert, &key);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &s);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &s);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	cc = perform(h, &s);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL); /* errbuf ends with this call */
	free(gz);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	if (cc == CURLE_OK)
		return 0;
	/* The detail (which name, which certificate problem) when curl has one. */
	snprintf(r->err, sizeof(r->err), "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
	free(r->body);
	r->body = NULL;
	r->len = 0;
	switch (cc) {
	case CURLE_WRITE_ERROR:
		if (s.too_big) {
			snprintf(r->err, sizeof(r->err), "response body over %u bytes", CPHTTP_MAX_BODY);
			return -EFBIG;
		}
		return -ENOMEM;
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EPROTO;
	}
}

void cphttp_result_release(struct cphttp_result *r)
{
	if (!r)
		return;
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

void cphttp_free(struct cphttp *h)
{
	if (!h)
		return;
	if (h->multi)
		curl_multi_cleanup(h->multi);
	if (h->curl)
		curl_easy_cleanup(h->curl);
	curl_slist_free_all(h->resolve);
	curl_slist_free_all(h->headers);
	curl_slist_free_all(h->headers_gz);
	wipe(&h->cert, &h->cert_len);
	wipe(&h->key, &h->key_len);
	wipe(&h->ca, &h->ca_len);
	free(h);
}
