/*
 * httpd.c - vigil-cp's HTTPS server (see httpd.h): evhttp over
 * bufferevent_openssl, routing by the client certificate's role, overload
 * and refusal handling.  Runs in vigil-cp, unprivileged, single-threaded:
 * every handler runs to completion on the event loop, so the work in
 * flight is at most one request and the cap that matters is connections.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/time.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>

#include "gzip.h"
#include "httpd.h"
#include "log.h"
#include "opamp.pb-c.h"
#include "tlsconf.h"

#define OPAMP_PATH "/v1/opamp"
#define API_PREFIX "/api/v1"
#define OPAMP_TYPE "application/x-protobuf"
#define MAX_BODY (OPAMPSRV_MAX_MESSAGE > API_MAX_BODY ? OPAMPSRV_MAX_MESSAGE : API_MAX_BODY)

struct httpd {
	struct event_base *base;
	struct evhttp *http;
	struct evconnlistener *listener;
	SSL_CTX *ctx;
	struct opampsrv *op;
	struct api *api;
	struct httpd_config cfg;
	unsigned live;		/* connections accepted and not yet freed */
	unsigned hard_cap;	/* max_connections + overflow: accepting pauses here */
	bool paused;
	LIST_HEAD(, conn) conns;	/* so that httpd_free() can detach the ones freed later */
};

/* What the server keeps per connection, beside struct tlsconn. */
struct conn {
	struct httpd *h;	/* NULL once the server is gone (a late free) */
	LIST_ENTRY(conn) link;
	struct evbuffer *out;
	struct evbuffer_cb_entry *outcb;
	struct event *peer_ev;	/* notes the peer's address once evhttp gave the socket */
	SSL *ssl;
	bool overflow;		/* accepted beyond max_connections: told 503 */
	bool replying;		/* a handler of ours is writing the response */
	unsigned requests;
	int last_status;	/* of our last reply (req may be gone once it is sent) */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Printable ASCII only: what a client sent must not reach the log as escape sequences. */
static const char *clean(const char *in, char *out, size_t len)
{
	size_t i = 0;

	for (; in && in[i] && i + 1 < len; i++)
		out[i] = (unsigned char)in[i] < 0x20 || (unsigned char)in[i] > 0x7e ? '?' : in[i];
	out[i] = '\0';
	return out;
}

static const char *role_name(enum cp_role r)
{
	return r == CP_ROLE_AGENT ? "agent" : r == CP_ROLE_ADMIN ? "admin" : "none";
}

static void set_paused(struct httpd *h, bool pause)
{
	if (!h->listener || h->paused == pause)
		return;
	if (pause) {
		evconnlistener_disable(h->listener);
		log_warnx("%u connections open (--max-connections %u and %u answered 503): not accepting "
			  "until one closes", h->live, h->cfg.max_connections, h->hard_cap - h->cfg.max_connections);
	} else {
		evconnlistener_enable(h->listener);
		log_info("accepting connections again (%u open)", h->live);
	}
	h->paused = pause;
}

/* Called as the connection's SSL is freed: the connection is over. */
static void conn_closed(struct tlsconn *tc)
{
	struct conn *c = tc->user;
	struct httpd *h;

	if (!c)
		return;
	h = c->h;
	if (c->outcb)
		evbuffer_remove_cb_entry(c->out, c->outcb);
	if (c->peer_ev)
		event_free(c->peer_ev);
	if (!h) {
		free(c);
		return;
	}
	LIST_REMOVE(c, link);
	if (!tc->handshake_done)
		log_warnx("%s: TLS handshake refused: %s", tc->peer[0] ? tc->peer : "?",
			  tc->refusal[0] ? tc->refusal
					 : "no TLS handshake (the client closed, stalled past --idle-timeout "
					   "or spoke no TLS)");
	h->live--;
	if (h->paused && h->live < h->hard_cap)
		set_paused(h, false);
	free(c);
}

/*
 * Responses evhttp writes by itself (a malformed request line or headers,
 * headers or a body over the limits, an unsupported method) never reach
 * our handlers; the status line going out is where we can still log them.
 */
static void out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct tlsconn *tc = arg;
	struct conn *c = tc->user;
	struct evbuffer_ptr p;
	char line[80];
	ev_ssize_t n;
	int code;

	if (!c || c->replying || info->n_added == 0)
		return;
	if (evbuffer_ptr_set(buf, &p, info->orig_size, EVBUFFER_PTR_SET) < 0)
		return;
	n = evbuffer_copyout_from(buf, &p, line, info->n_added < sizeof(line) - 1 ? info->n_added
										 : sizeof(line) - 1);
	if (n < 12)
		return;
	line[n] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (strncmp(line, "HTTP/1.", 7) != 0 || sscanf(line + 9, "%3d", &code) != 1 || code < 400)
		return;
	if (code == 413)
		log_warnx("%s: %s: refused by the HTTP parser: headers over %u bytes or a body over %u bytes",
			  tc->peer, line + 9, HTTPD_MAX_HEADERS, (unsigned)MAX_BODY);
	else
		log_warnx("%s: %s: refused by the HTTP parser: %s", tc->peer, line + 9,
			  code == 400 ? "malformed request line, headers or body framing"
			  : code == 501 || code == 405 ? "unsupported method" : "refused before routing");
}

/*
 * evhttp hands the socket to the bufferevent after bev_cb() returns; the
 * address is noted on the next turn of the loop, so that even a
 * connection that never says a word is logged with it.
 */
static void note_peer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	tlsconf_note_peer(c->ssl);
}

static struct bufferevent *bev_cb(struct event_base *base, void *arg)
{
	static const struct timeval now = { 0, 0 };

	struct httpd *h = arg;
	struct bufferevent *bev = NULL;
	struct tlsconn *tc = NULL;
	struct conn *c = calloc(1, sizeof(*c));
	SSL *ssl = c ? tlsconf_ssl_new(h->ctx, &tc) : NULL;

	/*
	 * Returning NULL makes evhttp use a plain socket; route() refuses
	 * any request that did not come over verified TLS.
	 */
	if (!ssl) {
		log_warnx("out of memory for a new connection");
		free(c);
		return NULL;
	}
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		log_warnx("cannot make a TLS bufferevent for a new connection");
		SSL_free(ssl);
		free(c);
		return NULL;
	}
	/* Clients that close without close_notify are common; their request was complete. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	c->h = h;
	c->ssl = ssl;
	c->peer_ev = evtimer_new(base, note_peer, c);
	if (c->peer_ev)
		evtimer_add(c->peer_ev, &now);
	c->out = bufferevent_get_output(bev);
	c->outcb = evbuffer_add_cb(c->out, out_cb, tc);
	tc->user = c;
	tc->on_free = conn_closed;
	LIST_INSERT_HEAD(&h->conns, c, link);
	h->live++;
	c->overflow = h->live > h->cfg.max_connections;
	if (h->live >= h->hard_cap)
		set_paused(h, true);
	return bev;
}

/* ---------------------------------------------------------------------
 * Replies.
 */

static const char *status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
	}
}

/*
 * Whether Accept-Encoding lists gzip, x-gzip or * without q=0
 * (RFC 9110 12.5.3: "gzip;q=0" refuses it).
 */
static bool accepts_gzip(struct evhttp_request *req)
{
	const char *ae = evhttp_find_header(evhttp_request_get_input_headers(req), "Accept-Encoding");

	while (ae && *ae) {
		size_t n = strcspn(ae, ","), t = strspn(ae, " \t"), name = strcspn(ae + t, " \t;,");
		const char *params = ae + t + name, *q;

		if ((name == 4 && strncasecmp(ae + t, "gzip", 4) == 0) ||
		    (name == 6 && strncasecmp(ae + t, "x-gzip", 6) == 0) || (name == 1 && ae[t] == '*')) {
			q = strstr(params, "q=");
			if (!q || q >= ae + n || strtod(q + 2, NULL) > 0)
				return true;
		}
		ae += n;
		if (*ae == ',')
			ae++;
	}
	return false;
}

struct reply {
	int status;
	const char *type;	/* Content-Type, or NULL */
	const void *body;
	size_t len;
	bool may_gzip;
	bool close;		/* Connection: close */
	unsigned retry_after;	/* seconds, 0: none */
	const char *allow;	/* Allow: for 405 */
};

static void send_reply(struct evhttp_request *req, struct conn *c, const struct reply *r)
{
	struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	uint8_t *gz = NULL;
	size_t gzlen = 0;
	char num[24];

	if (r->may_gzip) {
		evhttp_add_header(hd, "Vary", "Accept-Encoding");
		if (r->len > 0 && accepts_gzip(req) && gzip_compress(r->body, r->len, &gz, &gzlen) == 0)
			evhttp_add_header(hd, "Content-Encoding", "gzip");
	}
	if (r->type)
		evhttp_add_header(hd, "Content-Type", r->type);
	if (r->close)
		evhttp_add_header(hd, "Connection", "close");
	if (r->retry_after) {
		snprintf(num, sizeof(num), "%u", r->retry_after);
		evhttp_add_header(hd, "Retry-After", num);
	}
	if (r->allow)
		evhttp_add_header(hd, "Allow", r->allow);
	evhttp_add_header(hd, "Cache-Control", "no-store");
	if (gz)
		evbuffer_add(out, gz, gzlen);
	else if (r->len)
		evbuffer_add(out, r->body, r->len);
	free(gz);
	if (c) {
		c->replying = true;
		c->last_status = r->status;
	}
	evhttp_send_reply(req, r->status, status_text(r->status), NULL);
	if (c)
		c->replying = false;
}

/*
 * The instance_uid of a plain AgentToServer, when it comes first (field 1,
 * 16 bytes: 0x0a 0x10 ...), as every encoder writes it: enough to address
 * a refusal to its agent without parsing a message we refuse to handle.
 */
static bool peek_uid(struct evhttp_request *req, uint8_t uid[16])
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const char *enc = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Encoding");
	uint8_t head[18];

	if ((enc && strcasecmp(enc, "identity") != 0) || evbuffer_copyout(in, head, sizeof(head)) != sizeof(head) ||
	    head[0] != 0x0a || head[1] != 16)
		return false;
	memcpy(uid, head + 2, 16);
	return true;
}

/* A ServerToAgent carrying only an error_response (OpAMP's way of saying no). */
static void send_opamp_error(struct evhttp_request *req, struct conn *c, int status, bool unavailable,
			     const char *msg, unsigned retry_after, bool close)
{
	Opamp__Proto__V1__ServerToAgent m;
	Opamp__Proto__V1__ServerErrorResponse e;
	Opamp__Proto__V1__RetryInfo ri;
	struct reply r = { .status = status, .type = OPAMP_TYPE, .may_gzip = true, .close = close,
			   .retry_after = retry_after };
	uint8_t buf[512], uid[16];

	/* The generated _INIT macros cast away const; the init functions do not. */
	opamp__proto__v1__server_to_agent__init(&m);
	opamp__proto__v1__server_error_response__init(&e);
	opamp__proto__v1__retry_info__init(&ri);
	e.type = unavailable ? OPAMP__PROTO__V1__SERVER_ERROR_RESPONSE_TYPE__ServerErrorResponseType_Unavailable
			     : OPAMP__PROTO__V1__SERVER_ERROR_RESPONSE_TYPE__ServerErrorResponseType_BadRequest;
	e.error_message = (char *)(uintptr_t)msg;
	if (retry_after) {
		ri.retry_after_nanoseconds = (uint64_t)retry_after * 1000000000u;
		e.details_case = OPAMP__PROTO__V1__SERVER_ERROR_RESPONSE__DETAILS_RETRY_INFO;
		e.retry_info = &ri;
	}
	m.error_response = &e;
	if (peek_uid(req, uid)) {
		m.instance_uid.data = uid;
		m.instance_uid.len = sizeof(uid);
	}
	if (opamp__proto__v1__server_to_agent__get_packed_size(&m) <= sizeof(buf)) {
		r.len = opamp__proto__v1__server_to_agent__pack(&m, buf);
		r.body = buf;
	}
	send_reply(req, c, &r);
}

static bool is_api_path(const char *path)
{
	return strncmp(path, API_PREFIX, strlen(API_PREFIX)) == 0 &&
	       (path[strlen(API_PREFIX)] == '\0' || path[strlen(API_PREFIX)] == '/');
}

/* A refusal: one log line, and the reply in the form the route speaks. */
static void refuse(struct evhttp_request *req, struct conn *c, const char *peer, const char *who,
		   int status, bool close, const char *allow, const char *fmt, ...)
	__attribute__((format(printf, 8, 9)));

static void refuse(struct evhttp_request *req, struct conn *c, const char *peer, const char *who,
		   int status, bool close, const char *allow, const char *fmt, ...)
{
	const char *uri = evhttp_request_get_uri(req);
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct reply r = { .status = status, .close = close, .allow = allow };
	char raw[400], why[400], body[480], where[208];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	clean(raw, why, sizeof(why));
	log_warnx("%s: %s: %s: %d %s: %s", peer, who, clean(uri ? uri : "?", where, sizeof(where)), status,
		  status_text(status), why);
	if (path && is_api_path(path)) {
		/* The reason is JSON-safe: no quotes or backslashes come from a client. */
		for (char *p = why; *p; p++)
			if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
				*p = '\'';
		snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", why);
		r.type = "application/json";
	} else {
		snprintf(body, sizeof(body), "%s\n", why);
		r.type = "text/plain; charset=utf-8";
	}
	r.body = body;
	r.len = strlen(body);
	send_reply(req, c, &r);
}

/* ---------------------------------------------------------------------
 * Routes.
 */

static bool media_type_is(const char *v, const char *want)
{
	size_t n = strlen(want);

	if (!v)
		return false;
	v += strspn(v, " \t");
	return strncasecmp(v, want, n) == 0 && (v[n] == '\0' || v[n] == ';' || v[n] == ' ');
}

static void handle_opamp(struct evhttp_request *req, struct conn *c, const struct tlsconn *tc, X509 *peer)
{
	struct httpd *h = c->h;
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evbuffer *buf = evhttp_request_get_input_buffer(req);
	const char *enc = evhttp_find_header(in, "Content-Encoding");
	size_t len = evbuffer_get_length(buf);
	const uint8_t *body = len ? evbuffer_pullup(buf, -1) : (const uint8_t *)"";
	uint8_t *plain = NULL;
	struct opampsrv_reply rep = { 0 };
	struct reply r = { .type = OPAMP_TYPE, .may_gzip = true };
	struct cp_identity id = tc->id;
	char line[sizeof(rep.log)];
	int e;

	if (!media_type_is(evhttp_find_header(in, "Content-Type"), OPAMP_TYPE)) {
		refuse(req, c, tc->peer, tc->id.subject, 415, false, NULL,
		       "Content-Type must be " OPAMP_TYPE);
		return;
	}
	if (enc && strcasecmp(enc, "identity") != 0) {
		if (strcasecmp(enc, "gzip") != 0 && strcasecmp(enc, "x-gzip") != 0) {
			refuse(req, c, tc->peer, tc->id.subject, 415, false, NULL,
			       "Content-Encoding '%.40s' is not supported (gzip or none)", enc);
			return;
		}
		e = gzip_decompress(body, len, OPAMPSRV_MAX_MESSAGE, &plain, &len);
		if (e == -E2BIG) {
			refuse(req, c, tc->peer, tc->id.subject, 413, true, NULL,
			       "the gzip body inflates past %u bytes", OPAMPSRV_MAX_MESSAGE);
			return;
		}
		if (e) {
			log_warnx("%s: %s: POST " OPAMP_PATH ": 400 Bad Request: the gzip body does not "
				  "inflate: %s", tc->peer, tc->id.subject, strerror(-e));
			send_opamp_error(req, c, 400, false, "the gzip body does not inflate", 0, false);
			return;
		}
		body = plain;
	}
	if (len > OPAMPSRV_MAX_MESSAGE) {
		refuse(req, c, tc->peer, tc->id.subject, 413, true, NULL, "an AgentToServer is at most %u bytes",
		       OPAMPSRV_MAX_MESSAGE);
		free(plain);
		return;
	}
	id.cert = peer;	/* the CSR flow renews this certificate's identity */
	e = opampsrv_handle(h->op, &id, body, len, now_ms(), &rep);
	free(plain);
	if (e) {
		refuse(req, c, tc->peer, tc->id.subject, 500, false, NULL, "the OpAMP handler failed: %s",
		       strerror(-e));
		return;
	}
	if (rep.log[0])
		log_warnx("%s: %s: POST " OPAMP_PATH ": %d: %s", tc->peer, tc->id.subject, rep.http_status,
			  clean(rep.log, line, sizeof(line)));
	r.status = rep.http_status;
	r.body = rep.body;
	r.len = rep.len;
	send_reply(req, c, &r);
	free(rep.body);
}

static const char *method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_PATCH: return "PATCH";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	default: return "?";
	}
}

static void handle_api(struct evhttp_request *req, struct conn *c, const struct tlsconn *tc,
		       const char *path, const char *query)
{
	struct evbuffer *buf = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(buf);
	const uint8_t *body = len ? evbuffer_pullup(buf, -1) : NULL;
	struct api_reply rep = { 0 };
	struct reply r = { .type = "application/json", .may_gzip = true };
	char line[sizeof(rep.log)], where[208];
	int e;

	e = api_handle(c->h->api, &tc->id, method_name(evhttp_request_get_command(req)), path, query, body,
		       len, now_ms(), &rep);
	if (e) {
		refuse(req, c, tc->peer, tc->id.subject, 500, false, NULL, "the admin API failed: %s",
		       strerror(-e));
		return;
	}
	if (rep.log[0])
		log_warnx("%s: %s: %s %s: %d: %s", tc->peer, tc->id.subject,
			  method_name(evhttp_request_get_command(req)), clean(path, where, sizeof(where)),
			  rep.http_status, clean(rep.log, line, sizeof(line)));
	r.status = rep.http_status;
	r.body = rep.body;
	r.len = rep.len;
	if (rep.content_type)
		r.type = rep.content_type;
	send_reply(req, c, &r);
	free(rep.body);
}

static void route(struct evhttp_request *req, void *arg)
{
	struct httpd *h = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	struct tlsconn *tc = tlsconf_conn(ssl);
	struct conn *c = tc ? tc->user : NULL;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	char why[400], where[208];

	if (!c || !tc->verified) {
		char *host = NULL;
		ev_uint16_t port = 0;

		if (evcon)
			evhttp_connection_get_peer(evcon, &host, &port);
		refuse(req, c, tc && tc->peer[0] ? tc->peer : host ? host : "?", "-", 403, true, NULL,
		       "no verified client certificate on this connection");
		return;
	}
	if (c->requests++ == 0 && c->h->cfg.log_requests)
		log_info("%s: %s certificate %s, serial %s, SHA-256 %s, SANs %s", tc->peer, role_name(tc->id.role),
			 tc->id.subject, tc->id.serial, tc->id.fingerprint, tc->id.sans[0] ? tc->id.sans : "none");
	if (c->overflow) {
		if (path && strcmp(path, OPAMP_PATH) == 0) {
			log_warnx("%s: %s: " OPAMP_PATH ": 503 Service Unavailable: over --max-connections %u, "
				  "retry after %u s", tc->peer, tc->id.subject, h->cfg.max_connections,
				  h->cfg.retry_after_s);
			send_opamp_error(req, c, 503, true, "server overloaded: retry later",
					 h->cfg.retry_after_s, true);
		} else {
			struct reply r = { .status = 503, .close = true, .retry_after = h->cfg.retry_after_s,
					   .type = "text/plain; charset=utf-8", .body = "server overloaded\n",
					   .len = 18 };

			log_warnx("%s: %s: %s: 503 Service Unavailable: over --max-connections %u, retry after "
				  "%u s", tc->peer, tc->id.subject, clean(path ? path : "?", where, sizeof(where)),
				  h->cfg.max_connections, h->cfg.retry_after_s);
			send_reply(req, c, &r);
		}
		return;
	}
	if (tc->generation != tlsconf_generation(h->ctx)) {
		struct cp_identity id;

		if (tlsconf_reverify(h->ctx, ssl, &id, why, sizeof(why))) {
			refuse(req, c, tc->peer, tc->id.subject, 403, true, NULL, "%s", why);
			return;
		}
		tc->id = id;
		tc->generation = tlsconf_generation(h->ctx);
	}
	if (!path || !*path) {
		refuse(req, c, tc->peer, tc->id.subject, 404, false, NULL, "no such resource");
		return;
	}
	if (strcmp(path, OPAMP_PATH) == 0) {
		if (tc->id.role != CP_ROLE_AGENT) {
			refuse(req, c, tc->peer, tc->id.subject, 403, true, NULL,
			       "an %s certificate cannot speak OpAMP (agents' certificates chain to --agent-ca)",
			       role_name(tc->id.role));
			return;
		}
		if (cmd != EVHTTP_REQ_POST) {
			refuse(req, c, tc->peer, tc->id.subject, 405, false, "POST", "%s: only POST",
			       method_name(cmd));
			return;
		}
		handle_opamp(req, c, tc, SSL_get0_peer_certificate(ssl));
	} else if (is_api_path(path)) {
		if (tc->id.role != CP_ROLE_ADMIN) {
			refuse(req, c, tc->peer, tc->id.subject, 403, true, NULL,
			       "an %s certificate cannot use the admin API (administrators' certificates chain "
			       "to --admin-ca)", role_name(tc->id.role));
			return;
		}
		if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_POST && cmd != EVHTTP_REQ_PUT &&
		    cmd != EVHTTP_REQ_DELETE && cmd != EVHTTP_REQ_PATCH) {
			refuse(req, c, tc->peer, tc->id.subject, 405, false, "GET, POST", "%s: not allowed",
			       method_name(cmd));
			return;
		}
		handle_api(req, c, tc, path, query);
	} else {
		refuse(req, c, tc->peer, tc->id.subject, 404, false, NULL, "no such resource");
		return;
	}
	if (h->cfg.log_requests)
		log_info("%s: %s (%s): %s %s: %d", tc->peer, tc->id.subject, role_name(tc->id.role),
			 method_name(cmd), clean(path, where, sizeof(where)), c->last_status);
}

/* The route class of a request, for the metrics (before route() may free req). */
static const char *route_class(struct evhttp_request *req)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

	if (path && strcmp(path, OPAMP_PATH) == 0)
		return "opamp";
	if (path && is_api_path(path))
		return "api";
	return "other";
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void handle_request(struct evhttp_request *req, void *arg)
{
	struct httpd *h = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	struct tlsconn *tc = tlsconf_conn(bev ? bufferevent_openssl_get_ssl(bev) : NULL);
	struct conn *c = tc ? tc->user : NULL;
	const char *rc = h->cfg.observe ? route_class(req) : NULL;
	double t0 = h->cfg.observe ? mono_s() : 0;

	if (c)
		c->last_status = 0;
	route(req, arg);
	/* Without a connection of ours, route() refused with 403 (no verified certificate). */
	if (h->cfg.observe)
		h->cfg.observe(h->cfg.observe_arg, rc, c ? c->last_status : 403, mono_s() - t0);
	/*
	 * Whatever OpenSSL left on this thread's error queue (signature checks
	 * in the admin API...) must not read as the reason of a handshake that
	 * fails later (tlsconf.c's info callback).
	 */
	ERR_clear_error();
}

/* ---------------------------------------------------------------------
 * Life cycle.
 */

/*
 * The listening socket, made here rather than by evhttp_bind_socket() for
 * its backlog: evhttp's is 128, and a fleet reconnecting at once after an
 * outage should queue in the kernel, not be dropped.
 */
static int listen_on(struct httpd *h, char *err, size_t errlen)
{
	struct evutil_addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
					 .ai_protocol = IPPROTO_TCP, .ai_flags = EVUTIL_AI_PASSIVE };
	struct evutil_addrinfo *ai = NULL;
	char port[8];
	int e;

	snprintf(port, sizeof(port), "%u", h->cfg.port);
	e = evutil_getaddrinfo(h->cfg.host, port, &hints, &ai);
	if (e || !ai) {
		snprintf(err, errlen, "cannot listen on %s:%u: %s", h->cfg.host, h->cfg.port,
			 e ? evutil_gai_strerror(e) : "no address");
		return -EADDRNOTAVAIL;
	}
	errno = 0;
	h->listener = evconnlistener_new_bind(h->base, NULL, NULL,
					      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
					      HTTPD_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
	e = errno ? errno : EADDRNOTAVAIL;
	evutil_freeaddrinfo(ai);
	if (!h->listener) {
		snprintf(err, errlen, "cannot listen on %s:%u: %s", h->cfg.host, h->cfg.port, strerror(e));
		return -e;
	}
	/*
	 * TCP_NODELAY, which accepted sockets inherit: a reply goes out as
	 * two TLS records (headers, body), and with Nagle the body waited for
	 * the client's delayed ACK of the first, ~40 ms on every new
	 * connection's first exchange (docs/benchmarks.md).
	 */
	if (setsockopt(evconnlistener_get_fd(h->listener), IPPROTO_TCP, TCP_NODELAY, &(int){ 1 },
		       sizeof(int)) < 0) {
		e = errno;
		evconnlistener_free(h->listener);
		h->listener = NULL;
		snprintf(err, errlen, "cannot set TCP_NODELAY on the listener: %s", strerror(e));
		return -e;
	}
	if (!evhttp_bind_listener(h->http, h->listener)) {
		evconnlistener_free(h->listener);
		h->listener = NULL;
		snprintf(err, errlen, "libevent: cannot serve HTTP on the listener");
		return -ENOMEM;
	}
	return 0;
}

int httpd_new(struct event_base *base, const struct httpd_config *cfg, SSL_CTX *ctx,
	      struct opampsrv *op, struct api *api, struct httpd **ret, char *err, size_t errlen)
{
	struct httpd *h = calloc(1, sizeof(*h));
	int e;

	if (!h) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	h->base = base;
	h->cfg = *cfg;
	h->op = op;
	h->api = api;
	LIST_INIT(&h->conns);
	h->hard_cap = cfg->max_connections + HTTPD_OVERFLOW(cfg->max_connections);
	h->http = evhttp_new(base);
	if (!h->http) {
		snprintf(err, errlen, "libevent: cannot make an HTTP server");
		free(h);
		return -ENOMEM;
	}
	SSL_CTX_up_ref(ctx);
	h->ctx = ctx;
	evhttp_set_bevcb(h->http, bev_cb, h);
	evhttp_set_gencb(h->http, handle_request, h);
	evhttp_set_max_body_size(h->http, MAX_BODY);
	evhttp_set_max_headers_size(h->http, HTTPD_MAX_HEADERS);
	evhttp_set_timeout(h->http, (int)cfg->idle_timeout_s);
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
						    EVHTTP_REQ_PATCH);
	/* A body over the limit is read and dropped, so that the client sees the 413. */
	evhttp_set_flags(h->http, EVHTTP_SERVER_LINGERING_CLOSE);
	e = listen_on(h, err, errlen);
	if (e) {
		httpd_free(h);
		return e;
	}
	*ret = h;
	return 0;
}

void httpd_set_ssl_ctx(struct httpd *h, SSL_CTX *ctx)
{
	SSL_CTX_up_ref(ctx);
	SSL_CTX_free(h->ctx);
	h->ctx = ctx;
}

unsigned httpd_connections(const struct httpd *h)
{
	return h->live;
}

void httpd_free(struct httpd *h)
{
	struct conn *c;

	if (!h)
		return;
	/*
	 * Frees every connection; libevent may finalize some bufferevents (and
	 * so free their SSL) later, when h is gone: those are detached.
	 */
	if (h->http)
		evhttp_free(h->http);
	while ((c = LIST_FIRST(&h->conns))) {
		LIST_REMOVE(c, link);
		c->h = NULL;
		/* The base may be gone by the late free: let go of what hangs on it now. */
		if (c->peer_ev)
			event_free(c->peer_ev);
		c->peer_ev = NULL;
		if (c->outcb)
			evbuffer_remove_cb_entry(c->out, c->outcb);
		c->outcb = NULL;
	}
	SSL_CTX_free(h->ctx);
	free(h);
}
