/*
 * cp_load.c - load generator for vigil-cp (make bench-cp,
 * tests/bench/bench_cp.sh): N simulated OpAMP agents, each with its own
 * instance_uid, its own client certificate and one keep-alive mutual-TLS
 * connection, polling POST /v1/opamp so that the total request rate is
 * fixed, from one process (libevent + bufferevent_openssl).
 *
 *   cp_load --connect HOST:PORT --ca F --pid PID
 *           (--mint-ca F --mint-key F | --cert F --key F)
 *           --agents N [--poll-ms MS] [--window S] [--ramp C] [--label k=v]...
 *
 * Phases:
 *   1. certificates: with --mint-ca/--mint-key (the agent CA's), one EC key
 *      and N certificates, CN=bench-agent-I, clientAuth, signed here; the
 *      server verifies a distinct chain for every agent, as in a real fleet.
 *      (--cert/--key shares one certificate among all agents instead.)
 *   2. warm-up: agents connect, at most --ramp TLS handshakes in flight, and
 *      each sends its first message (full state, as opamp-go does); a
 *      remote config in the reply is answered at once with
 *      RemoteConfigStatus APPLIED and its hash, as an agent would.
 *   3. the measured window (--window S, 60): agent I polls at t0 + I*P/N and
 *      every P = --poll-ms after (30000, opamp-go's default), so N agents
 *      make N/P requests per second, evenly spread.  A poll carries
 *      instance_uid, sequence_num and capabilities (opamp-go's heartbeat);
 *      ReportFullState is answered with full state at once.  A poll due
 *      while that agent's previous request is unanswered is counted late
 *      and skipped (HTTP is half-duplex).  A connection the server closed is
 *      reopened at the agent's next poll, and that request's latency
 *      includes the handshake.
 * Measured over the window: requests sent and answered, HTTP status, latency
 * (request written to reply parsed) p50/p90/p99/max, errors; vigil-cp's
 * writes (/proc/PID/io: bytes that reach storage, write syscalls); its CPU
 * time (utime+stime from /proc/PID/stat) and peak RSS (VmHWM from
 * /proc/PID/status, which covers its whole life, warm-up included); this
 * process's own CPU time over the same window and its peak RSS.
 *
 * Output: readable lines, then one line for scripts:
 *   result agents=N poll_ms=P window_s=W target_rps=X rps=X sent=N ok=N errors=N
 *          late=N reconnects=N resent=N p50_ms=X p90_ms=X p99_ms=X max_ms=X cp_cpu_s=X
 *          cp_cores=X cp_hwm_kb=N cp_rss_kb=N gen_cpu_s=X gen_cores=X gen_maxrss_kb=N
 *          other_cores=X connect_s=X connect_failed=N warm_cp_cpu_s=X warm_cp_ms_per_agent=X
 *          warm_p50_ms=X warm_p99_ms=X cp_write_kib_per_req=X cp_syscw_per_req=X
 * other_cores is what the rest of the host used (all of /proc/stat's busy
 * time less vigil-cp and this process): the machine may be shared.
 * Exit 0 when every agent connected and no request failed, 1 otherwise,
 * 64 usage, 70 setup failed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "opamp.pb-c.h"

#define MAX_LABELS 8
#define MAX_HEADER 16384
#define MAX_BODY (8u << 20)
#define REQUEST_TIMEOUT_S 10

#define PEND_FULL 1u
#define PEND_RCS 2u

#define CAPS (OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_ReportsStatus | \
	      OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_AcceptsRemoteConfig | \
	      OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_ReportsEffectiveConfig | \
	      OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_ReportsHealth | \
	      OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_ReportsRemoteConfig | \
	      OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_ReportsHeartbeat)

enum phase { PH_WARMUP, PH_MEASURE, PH_DRAIN, PH_DONE };

struct sim;

struct agent {
	struct sim *s;
	unsigned idx;
	uint8_t uid[16];
	char uid_text[37];
	uint64_t seq;
	X509 *cert;
	struct bufferevent *bev;
	struct event *poll_ev, *timeout_ev;
	bool connected, busy, connecting, warm, dead;
	bool resent;		/* the request in flight was sent again once */
	unsigned pending, sent_pending;
	uint8_t rcs_hash[32];
	size_t rcs_hash_len;
	int64_t poll_offset_ns;	/* phase of its polls within the period */
	uint64_t next_poll;	/* index of its next poll in the window */
	uint64_t t_start;	/* ns: request written (or connect begun, when reconnecting) */
	bool in_window;		/* the request in flight was started in the window */
	unsigned connect_tries;
	/* reply parser */
	bool have_header, chunked, conn_close;
	int status;
	size_t content_length;
	struct evbuffer *body;
};

struct sim {
	struct event_base *base;
	SSL_CTX *ctx;
	EVP_PKEY *key;		/* shared by every minted certificate */
	X509 *shared_cert;
	struct sockaddr_in addr;
	char host[64];
	unsigned n, ramp;
	long poll_ms, window_s;
	pid_t pid;
	const char *labels[MAX_LABELS][2];
	unsigned n_labels;
	struct agent *agents;
	enum phase phase;

	unsigned next_connect, handshakes_in_flight, warm, dead;
	uint64_t t_connect0, t_connect1;
	uint64_t t0, t_end;
	struct event *end_ev, *drain_ev;

	/* window counters */
	uint64_t sent, ok, errors, late, reconnects, http_other, conn_errors, timeouts, full_state, resent;
	struct lat {
		uint64_t *us;
		size_t n, cap;
	} lat, warm_lat;	/* polls in the window; warm-up messages (full state, status) */
	/* warm-up counters */
	uint64_t w_configs, w_errors, connect_failed;
	char first_error[256];

	/* CPU */
	double cp_cpu_w, cp_cpu0, cp_cpu1, gen_cpu0, gen_cpu1, host0, host1;
	long long cp_syscw0, cp_syscw1, cp_wbytes0, cp_wbytes1;	/* vigil-cp's writes (files and sockets) */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((format(printf, 2, 3))) static void note_error(struct sim *s, const char *fmt, ...)
{
	va_list ap;

	if (s->first_error[0])
		return;
	va_start(ap, fmt);
	vsnprintf(s->first_error, sizeof(s->first_error), fmt, ap);
	va_end(ap);
}

/* ---------------------------------------------------------------------------
 * /proc readings.
 */

static double proc_cpu_s(pid_t pid)
{
	char path[64], buf[2048], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields start after the last ')' */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long proc_status_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t fl = strlen(field);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
			v = strtol(line + fl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* CPU time the whole host spent busy (all CPUs), from /proc/stat. */
static double host_busy_s(void)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "re");
	int n;

	if (!f)
		return -1;
	/* user nice system idle iowait irq softirq steal */
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		   &v[6], &v[7]);
	fclose(f);
	if (n != 8)
		return -1;
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

/* One counter of /proc/PID/io ("syscw", "wchar", "write_bytes"), -1 when unreadable. */
static long long proc_io(pid_t pid, const char *field)
{
	char path[64], line[128];
	size_t fl = strlen(field);
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/io", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
			v = strtoll(line + fl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---------------------------------------------------------------------------
 * Certificates.
 */

static X509 *mint(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *key, unsigned idx)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX v3;
	ASN1_INTEGER *serial = NULL;
	BIGNUM *bn = BN_new();
	char cn[64];
	static const char *const exts[][2] = {
		{ "basicConstraints", "critical,CA:FALSE" },
		{ "keyUsage", "critical,digitalSignature" },
		{ "extendedKeyUsage", "clientAuth" },
		{ "subjectKeyIdentifier", "hash" },
		{ "authorityKeyIdentifier", "keyid" },
	};
	bool ok = x && name && bn;

	snprintf(cn, sizeof(cn), "bench-agent-%u", idx);
	ok = ok && X509_set_version(x, 2) && BN_rand(bn, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
	     (serial = BN_to_ASN1_INTEGER(bn, NULL)) && X509_set_serialNumber(x, serial) &&
	     X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"vigil-bench", -1, -1, 0) &&
	     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) &&
	     X509_set_subject_name(x, name) && X509_set_issuer_name(x, X509_get_subject_name(ca)) &&
	     X509_gmtime_adj(X509_getm_notBefore(x), -3600) && X509_gmtime_adj(X509_getm_notAfter(x), 86400) &&
	     X509_set_pubkey(x, key);
	if (ok) {
		X509V3_set_ctx(&v3, ca, x, NULL, NULL, 0);
		for (size_t i = 0; ok && i < sizeof(exts) / sizeof(exts[0]); i++) {
			X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, exts[i][0], exts[i][1]);

			ok = e && X509_add_ext(x, e, -1);
			X509_EXTENSION_free(e);
		}
	}
	ok = ok && X509_sign(x, ca_key, EVP_sha256()) > 0;
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	X509_NAME_free(name);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static X509 *load_cert(const char *path)
{
	FILE *f = fopen(path, "re");
	X509 *x;

	if (!f)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

static EVP_PKEY *load_key(const char *path)
{
	FILE *f = fopen(path, "re");
	EVP_PKEY *k;

	if (!f)
		return NULL;
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return k;
}

/* ---------------------------------------------------------------------------
 * Messages.
 */

static void set_kv(Opamp__Proto__V1__KeyValue *kv, Opamp__Proto__V1__AnyValue *av, const char *k, const char *v)
{
	opamp__proto__v1__key_value__init(kv);
	opamp__proto__v1__any_value__init(av);
	av->value_case = OPAMP__PROTO__V1__ANY_VALUE__VALUE_STRING_VALUE;
	av->string_value = (char *)(uintptr_t)v;
	kv->key = (char *)(uintptr_t)k;
	kv->value = av;
}

/* Serialize agent a's next message, with what it has pending, into out. */
static void write_message(struct agent *a, struct evbuffer *out)
{
	struct sim *s = a->s;
	Opamp__Proto__V1__AgentToServer m;
	Opamp__Proto__V1__AgentDescription d;
	Opamp__Proto__V1__KeyValue kv[2 + MAX_LABELS], *idp[2], *nonp[MAX_LABELS];
	Opamp__Proto__V1__AnyValue av[2 + MAX_LABELS];
	Opamp__Proto__V1__ComponentHealth h;
	Opamp__Proto__V1__EffectiveConfig ec;
	Opamp__Proto__V1__AgentConfigMap em;
	Opamp__Proto__V1__RemoteConfigStatus rcs;
	char host[32];
	uint8_t buf[4096], *p = buf;
	size_t len;

	opamp__proto__v1__agent_to_server__init(&m);
	m.instance_uid.data = a->uid;
	m.instance_uid.len = 16;
	m.sequence_num = a->seq++;
	m.capabilities = CAPS;
	if (a->pending & PEND_FULL) {
		snprintf(host, sizeof(host), "bench-%u", a->idx);
		opamp__proto__v1__agent_description__init(&d);
		set_kv(&kv[0], &av[0], "service.name", "vigil");
		set_kv(&kv[1], &av[1], "host.name", host);
		idp[0] = &kv[0];
		idp[1] = &kv[1];
		d.n_identifying_attributes = 2;
		d.identifying_attributes = idp;
		for (unsigned i = 0; i < s->n_labels; i++) {
			set_kv(&kv[2 + i], &av[2 + i], s->labels[i][0], s->labels[i][1]);
			nonp[i] = &kv[2 + i];
		}
		d.n_non_identifying_attributes = s->n_labels;
		d.non_identifying_attributes = nonp;
		m.agent_description = &d;
		opamp__proto__v1__component_health__init(&h);
		h.healthy = 1;
		h.status = "running";
		m.health = &h;
		opamp__proto__v1__effective_config__init(&ec);
		opamp__proto__v1__agent_config_map__init(&em);
		ec.config_map = &em;
		m.effective_config = &ec;
	}
	if (a->pending & (PEND_FULL | PEND_RCS)) {
		opamp__proto__v1__remote_config_status__init(&rcs);
		if (a->rcs_hash_len) {
			rcs.status = OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_APPLIED;
			rcs.last_remote_config_hash.data = a->rcs_hash;
			rcs.last_remote_config_hash.len = a->rcs_hash_len;
		}
		m.remote_config_status = &rcs;
	}
	a->sent_pending = a->pending;
	a->pending = 0;
	len = opamp__proto__v1__agent_to_server__get_packed_size(&m);
	if (len > sizeof(buf))
		p = malloc(len);
	if (!p) {
		fprintf(stderr, "cp_load: out of memory\n");
		exit(70);
	}
	opamp__proto__v1__agent_to_server__pack(&m, p);
	evbuffer_add_printf(out,
			    "POST /v1/opamp HTTP/1.1\r\n"
			    "Host: %s\r\n"
			    "Content-Type: application/x-protobuf\r\n"
			    "OpAMP-Instance-UID: %s\r\n"
			    "Content-Length: %zu\r\n\r\n",
			    s->host, a->uid_text, len);
	evbuffer_add(out, p, len);
	if (p != buf)
		free(p);
}

/* ---------------------------------------------------------------------------
 * Connections and requests.
 */

static void agent_connect(struct agent *a);
static void send_request(struct agent *a);
static void maybe_start_measure(struct sim *s);
static void ramp_more(struct sim *s);

static void record_latency(struct lat *l, uint64_t us)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 65536;
		uint64_t *nl = realloc(l->us, nc * sizeof(*nl));

		if (!nl)
			return;
		l->us = nl;
		l->cap = nc;
	}
	l->us[l->n++] = us;
}

static void reset_parser(struct agent *a)
{
	a->have_header = a->chunked = a->conn_close = false;
	a->status = 0;
	a->content_length = 0;
	if (a->body)
		evbuffer_drain(a->body, evbuffer_get_length(a->body));
}

static void drop_connection(struct agent *a)
{
	struct sim *s = a->s;

	if (a->connecting && s->phase == PH_WARMUP && !a->warm)
		s->handshakes_in_flight--;
	if (a->bev) {
		bufferevent_free(a->bev);	/* frees the SSL object too */
		a->bev = NULL;
	}
	a->connected = a->connecting = false;
	reset_parser(a);
}

/* The request in flight ended without a reply. */
static void request_failed(struct agent *a, const char *why)
{
	struct sim *s = a->s;

	evtimer_del(a->timeout_ev);
	if (a->busy) {
		a->busy = false;
		if (a->in_window) {
			s->errors++;
			s->conn_errors++;
		} else if (s->phase == PH_WARMUP) {
			s->w_errors++;
		}
		note_error(s, "request failed: %s", why);
	}
	drop_connection(a);
	if (s->phase == PH_WARMUP && !a->warm) {
		/* not warm yet: try again a few times, then give up on it */
		if (++a->connect_tries <= 3) {
			a->pending |= PEND_FULL;
			agent_connect(a);
		} else {
			a->dead = true;
			s->dead++;
			s->connect_failed++;
		}
		ramp_more(s);
		maybe_start_measure(s);
	}
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;

	(void)fd;
	(void)what;
	if (a->busy && a->in_window)
		a->s->timeouts++;
	request_failed(a, "timed out");
}

static void apply_reply(struct agent *a, const uint8_t *body, size_t len)
{
	Opamp__Proto__V1__ServerToAgent *r = opamp__proto__v1__server_to_agent__unpack(NULL, len, body);

	if (!r)
		return;
	if (r->flags & OPAMP__PROTO__V1__SERVER_TO_AGENT_FLAGS__ServerToAgentFlags_ReportFullState)
		a->pending |= PEND_FULL;
	if (r->remote_config && r->remote_config->config_hash.len &&
	    r->remote_config->config_hash.len <= sizeof(a->rcs_hash) &&
	    (a->rcs_hash_len != r->remote_config->config_hash.len ||
	     memcmp(a->rcs_hash, r->remote_config->config_hash.data, a->rcs_hash_len) != 0)) {
		memcpy(a->rcs_hash, r->remote_config->config_hash.data, r->remote_config->config_hash.len);
		a->rcs_hash_len = r->remote_config->config_hash.len;
		a->pending |= PEND_RCS;
		if (a->s->phase == PH_WARMUP)
			a->s->w_configs++;
	}
	opamp__proto__v1__server_to_agent__free_unpacked(r, NULL);
}

static void reply_done(struct agent *a)
{
	struct sim *s = a->s;
	uint64_t lat = (now_ns() - a->t_start) / 1000u;
	size_t blen = evbuffer_get_length(a->body);
	uint8_t *body = blen ? evbuffer_pullup(a->body, (ssize_t)blen) : NULL;
	bool close_after = a->conn_close;
	int status = a->status;

	evtimer_del(a->timeout_ev);
	a->busy = false;
	if (status == 200)
		apply_reply(a, body, blen);
	if (s->phase == PH_WARMUP && !a->in_window)
		record_latency(&s->warm_lat, lat);
	if (a->in_window) {
		record_latency(&s->lat, lat);
		if (status == 200) {
			s->ok++;
		} else {
			s->errors++;
			s->http_other++;
			note_error(s, "HTTP %d in the window", status);
		}
	} else if (s->phase == PH_WARMUP && status != 200) {
		s->w_errors++;
		note_error(s, "HTTP %d in the warm-up", status);
	}
	reset_parser(a);
	if (close_after)
		drop_connection(a);

	/* opamp-go sends what a reply asked for at once, not at the next poll */
	if (a->pending && s->phase != PH_DONE && s->phase != PH_DRAIN) {
		if (a->pending & PEND_FULL && a->in_window)
			s->full_state++;
		send_request(a);
		return;
	}
	if (s->phase == PH_WARMUP && !a->warm) {
		a->warm = true;
		s->warm++;
		maybe_start_measure(s);
	}
}

/* Parse what has arrived; call reply_done when a whole reply is in. */
static void on_read(struct bufferevent *bev, void *arg)
{
	struct agent *a = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	for (;;) {
		if (!a->have_header) {
			struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
			char hdr[MAX_HEADER + 1], *line, *save = NULL;
			size_t hl;

			if (p.pos < 0) {
				if (evbuffer_get_length(in) > MAX_HEADER)
					request_failed(a, "reply header too long");
				return;
			}
			hl = (size_t)p.pos + 4;
			if (hl > MAX_HEADER) {
				request_failed(a, "reply header too long");
				return;
			}
			evbuffer_remove(in, hdr, hl);
			hdr[hl] = '\0';
			if (!a->busy) {
				request_failed(a, "reply without a request");
				return;
			}
			if (strncmp(hdr, "HTTP/1.", 7) != 0 || strlen(hdr) < 12) {
				request_failed(a, "not HTTP");
				return;
			}
			a->status = atoi(hdr + 9);
			a->content_length = 0;
			for (line = strtok_r(hdr, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
				if (strncasecmp(line, "Content-Length:", 15) == 0)
					a->content_length = strtoul(line + 15, NULL, 10);
				else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 && strcasestr(line, "chunked"))
					a->chunked = true;
				else if (strncasecmp(line, "Connection:", 11) == 0 && strcasestr(line, "close"))
					a->conn_close = true;
			}
			if (!strncmp(hdr, "HTTP/1.0", 8))
				a->conn_close = true;
			if (a->content_length > MAX_BODY) {
				request_failed(a, "reply too large");
				return;
			}
			a->have_header = true;
		}
		if (!a->chunked) {
			if (evbuffer_get_length(in) < a->content_length)
				return;
			evbuffer_remove_buffer(in, a->body, a->content_length);
			reply_done(a);
			return;
		}
		/* chunked: "SIZE\r\n" DATA "\r\n" ... "0\r\n\r\n" */
		for (;;) {
			struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_CRLF_STRICT);
			char sz[32];
			unsigned long n;

			if (eol.pos < 0 || eol.pos >= (ssize_t)sizeof(sz))
				return;
			evbuffer_copyout(in, sz, (size_t)eol.pos);
			sz[eol.pos] = '\0';
			n = strtoul(sz, NULL, 16);
			if (n > MAX_BODY || evbuffer_get_length(a->body) + n > MAX_BODY) {
				request_failed(a, "reply too large");
				return;
			}
			if (evbuffer_get_length(in) < (size_t)eol.pos + 2 + n + 2)
				return;
			evbuffer_drain(in, (size_t)eol.pos + 2);
			evbuffer_remove_buffer(in, a->body, n);
			evbuffer_drain(in, 2);
			if (n == 0) {
				reply_done(a);
				return;
			}
		}
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct agent *a = arg;
	struct sim *s = a->s;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		int one = 1;

		setsockopt(bufferevent_getfd(a->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (s->phase == PH_WARMUP && !a->warm) {
			s->handshakes_in_flight--;
			ramp_more(s);
		}
		a->connecting = false;
		a->connected = true;
		if (a->busy) {
			/* a poll that found the connection closed: send it now */
			write_message(a, bufferevent_get_output(a->bev));
		} else {
			send_request(a);
		}
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		char why[160] = "connection closed";
		unsigned long e = bufferevent_get_openssl_error(a->bev);

		if (e)
			ERR_error_string_n(e, why, sizeof(why));
		else if ((what & BEV_EVENT_ERROR) && EVUTIL_SOCKET_ERROR())
			snprintf(why, sizeof(why), "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		if (a->busy && a->connected && !a->have_header && !a->resent && s->phase == PH_MEASURE) {
			/*
			 * The keep-alive race: the server closed the idle connection
			 * as the poll went out.  opamp-go retries a transport error
			 * with the same message; so does this, once, on a new
			 * connection, and the latency counts from the first try.
			 */
			a->resent = true;
			if (a->in_window)
				s->resent++;
			drop_connection(a);
			a->seq--;
			a->pending = a->sent_pending;
			agent_connect(a);	/* still busy: the message goes out once connected */
			return;
		}
		if (a->busy || a->connecting) {
			request_failed(a, why);
		} else {
			/* idle keep-alive closed by the server: reopen at the next poll */
			drop_connection(a);
		}
	}
}

static void agent_connect(struct agent *a)
{
	struct sim *s = a->s;
	SSL *ssl = SSL_new(s->ctx);

	if (!ssl || SSL_use_certificate(ssl, a->cert ? a->cert : s->shared_cert) != 1 ||
	    SSL_use_PrivateKey(ssl, s->key) != 1) {
		fprintf(stderr, "cp_load: SSL_new: %s\n", ERR_error_string(ERR_get_error(), NULL));
		exit(70);
	}
	a->bev = bufferevent_openssl_socket_new(s->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
					       BEV_OPT_CLOSE_ON_FREE);
	if (!a->bev) {
		fprintf(stderr, "cp_load: bufferevent_openssl_socket_new failed\n");
		exit(70);
	}
	bufferevent_openssl_set_allow_dirty_shutdown(a->bev, 1);
	bufferevent_setcb(a->bev, on_read, NULL, on_event, a);
	bufferevent_enable(a->bev, EV_READ | EV_WRITE);
	a->connecting = true;
	if (s->phase == PH_WARMUP && !a->warm)
		s->handshakes_in_flight++;
	if (!a->busy) {
		/* a handshake that stalls fails like a request would */
		struct timeval tv = { REQUEST_TIMEOUT_S, 0 };

		evtimer_add(a->timeout_ev, &tv);
	}
	if (bufferevent_socket_connect(a->bev, (struct sockaddr *)&s->addr, sizeof(s->addr)) < 0)
		request_failed(a, "connect failed");
}

static void send_request(struct agent *a)
{
	struct sim *s = a->s;
	struct timeval tv = { REQUEST_TIMEOUT_S, 0 };

	a->busy = true;
	a->resent = false;
	a->in_window = s->phase == PH_MEASURE;
	a->t_start = now_ns();
	if (a->in_window)
		s->sent++;
	evtimer_add(a->timeout_ev, &tv);
	if (!a->connected) {
		/* the server closed it: a new handshake is part of this request */
		if (a->in_window)
			s->reconnects++;
		if (!a->connecting)
			agent_connect(a);
		return;
	}
	write_message(a, bufferevent_get_output(a->bev));
}

/* ---------------------------------------------------------------------------
 * Phases.
 */

static void ramp_more(struct sim *s)
{
	while (s->next_connect < s->n && s->handshakes_in_flight < s->ramp) {
		struct agent *a = &s->agents[s->next_connect++];

		a->pending = PEND_FULL;	/* the first message: full state */
		agent_connect(a);
	}
}

static void schedule_poll(struct agent *a)
{
	struct sim *s = a->s;
	uint64_t due = s->t0 + (uint64_t)a->poll_offset_ns + a->next_poll * (uint64_t)s->poll_ms * 1000000u;
	uint64_t now = now_ns();
	uint64_t d = due > now ? due - now : 0;
	struct timeval tv = { (time_t)(d / 1000000000u), (suseconds_t)(d % 1000000000u / 1000u) };

	evtimer_add(a->poll_ev, &tv);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;
	struct sim *s = a->s;

	(void)fd;
	(void)what;
	if (s->phase != PH_MEASURE)
		return;
	a->next_poll++;
	if (a->busy)
		s->late++;
	else
		send_request(a);
	schedule_poll(a);
}

static void print_and_finish(struct sim *s);

static void on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct sim *s = arg;
	unsigned busy = 0;

	(void)fd;
	(void)what;
	for (unsigned i = 0; i < s->n; i++)
		busy += s->agents[i].busy;
	if (busy == 0 || now_ns() > s->t_end + (uint64_t)(REQUEST_TIMEOUT_S + 1) * 1000000000u) {
		print_and_finish(s);
		return;
	}
	{
		struct timeval tv = { 0, 50000 };

		evtimer_add(s->drain_ev, &tv);
	}
}

static void on_end(evutil_socket_t fd, short what, void *arg)
{
	struct sim *s = arg;
	struct timeval tv = { 0, 0 };

	(void)fd;
	(void)what;
	s->t_end = now_ns();
	s->cp_cpu1 = proc_cpu_s(s->pid);
	s->cp_syscw1 = proc_io(s->pid, "syscw");
	s->cp_wbytes1 = proc_io(s->pid, "write_bytes");
	s->gen_cpu1 = self_cpu_s();
	s->host1 = host_busy_s();
	s->phase = PH_DRAIN;
	for (unsigned i = 0; i < s->n; i++)
		evtimer_del(s->agents[i].poll_ev);
	evtimer_add(s->drain_ev, &tv);
}

static void maybe_start_measure(struct sim *s)
{
	struct timeval tv = { s->window_s, 0 };

	if (s->phase != PH_WARMUP || s->warm + s->dead < s->n)
		return;
	s->t_connect1 = now_ns();
	s->phase = PH_MEASURE;
	s->t0 = now_ns();
	s->cp_cpu0 = proc_cpu_s(s->pid);
	s->cp_syscw0 = proc_io(s->pid, "syscw");
	s->cp_wbytes0 = proc_io(s->pid, "write_bytes");
	printf("warm-up: %u agents connected and reported full state in %.1f s (%.0f handshakes/s), "
	       "%u failed, %" PRIu64 " remote configs applied, %" PRIu64 " errors; vigil-cp used %.2f s CPU "
	       "(%.2f ms per agent)\n",
	       s->warm, (double)(s->t_connect1 - s->t_connect0) / 1e9,
	       s->warm / ((double)(s->t_connect1 - s->t_connect0) / 1e9), s->dead, s->w_configs, s->w_errors,
	       s->cp_cpu0 - s->cp_cpu_w, s->warm ? (s->cp_cpu0 - s->cp_cpu_w) * 1e3 / s->warm : 0.0);
	fflush(stdout);
	s->gen_cpu0 = self_cpu_s();
	s->host0 = host_busy_s();
	for (unsigned i = 0; i < s->n; i++) {
		struct agent *a = &s->agents[i];

		if (a->dead)
			continue;	/* never got through the warm-up: not simulated */
		a->poll_offset_ns = (int64_t)((uint64_t)i * (uint64_t)s->poll_ms * 1000000u / s->n);
		a->next_poll = 0;
		schedule_poll(a);
	}
	evtimer_add(s->end_ev, &tv);
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

static double pct(const struct lat *l, double p)
{
	size_t i;

	if (!l->n)
		return 0;
	i = (size_t)(p * (double)(l->n - 1) + 0.5);
	return (double)l->us[i] / 1000.0;
}

static void print_and_finish(struct sim *s)
{
	double w = (double)(s->t_end - s->t0) / 1e9;
	double cp = s->cp_cpu1 - s->cp_cpu0, gen = s->gen_cpu1 - s->gen_cpu0;
	double others = s->host1 - s->host0 - cp - gen;

	if (others < 0)	/* the clocks tick at 100 Hz: a quiet host can come out a tick below zero */
		others = 0;
	double target = (double)s->n * 1000.0 / (double)s->poll_ms;
	long hwm = proc_status_kb(s->pid, "VmHWM"), rss = proc_status_kb(s->pid, "VmRSS");
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	qsort(s->lat.us, s->lat.n, sizeof(*s->lat.us), cmp_u64);
	qsort(s->warm_lat.us, s->warm_lat.n, sizeof(*s->warm_lat.us), cmp_u64);
	printf("window: %.1f s, %" PRIu64 " requests sent, %" PRIu64 " answered 200 (%.1f/s, target %.1f/s), "
	       "%" PRIu64 " errors (%" PRIu64 " HTTP non-200, %" PRIu64 " connection, %" PRIu64 " timeouts), "
	       "%" PRIu64 " late, %" PRIu64 " reconnects, %" PRIu64 " sent again after the server closed the idle "
	       "connection, %" PRIu64 " full-state resends\n",
	       w, s->sent, s->ok, (double)s->ok / w, target, s->errors, s->http_other, s->conn_errors, s->timeouts,
	       s->late, s->reconnects, s->resent, s->full_state);
	printf("latency: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n", pct(&s->lat, 0.5),
	       pct(&s->lat, 0.9), pct(&s->lat, 0.99), pct(&s->lat, 1.0));
	printf("warm-up messages (full state, status; %zu, handshakes not included): p50 %.2f ms, p99 %.2f ms, "
	       "max %.2f ms\n",
	       s->warm_lat.n, pct(&s->warm_lat, 0.5), pct(&s->warm_lat, 0.99), pct(&s->warm_lat, 1.0));
	printf("vigil-cp (pid %d): %.2f s CPU in the window = %.3f cores; VmHWM %ld kB, VmRSS %ld kB\n", (int)s->pid, cp,
	       cp / w, hwm, rss);
	if (s->cp_syscw0 >= 0 && s->cp_syscw1 >= 0 && s->ok)
		printf("vigil-cp's writes in the window: %.1f write syscalls per request (sockets and files), "
		       "%.1f KiB per request to storage\n",
		       (double)(s->cp_syscw1 - s->cp_syscw0) / (double)s->ok,
		       (double)(s->cp_wbytes1 - s->cp_wbytes0) / 1024.0 / (double)s->ok);
	printf("cp_load: %.2f s CPU in the window = %.3f cores; maxrss %ld kB\n", gen, gen / w, ru.ru_maxrss);
	printf("the rest of the host: %.3f cores busy in the window (of %ld)\n", others / w, sysconf(_SC_NPROCESSORS_ONLN));
	if (s->first_error[0])
		printf("first error: %s\n", s->first_error);
	printf("result agents=%u poll_ms=%ld window_s=%.1f target_rps=%.1f rps=%.1f sent=%" PRIu64 " ok=%" PRIu64
	       " errors=%" PRIu64 " late=%" PRIu64 " reconnects=%" PRIu64 " resent=%" PRIu64
	       " p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f cp_cpu_s=%.2f cp_cores=%.3f cp_hwm_kb=%ld"
	       " cp_rss_kb=%ld gen_cpu_s=%.2f gen_cores=%.3f gen_maxrss_kb=%ld other_cores=%.3f connect_s=%.1f"
	       " connect_failed=%" PRIu64 " warm_cp_cpu_s=%.2f warm_cp_ms_per_agent=%.2f"
	       " warm_p50_ms=%.2f warm_p99_ms=%.2f cp_write_kib_per_req=%.1f cp_syscw_per_req=%.1f\n",
	       s->n, s->poll_ms, w, target, (double)s->ok / w, s->sent, s->ok, s->errors, s->late, s->reconnects, s->resent,
	       pct(&s->lat, 0.5), pct(&s->lat, 0.9), pct(&s->lat, 0.99), pct(&s->lat, 1.0), cp, cp / w, hwm, rss, gen,
	       gen / w, ru.ru_maxrss,
	       others / w, (double)(s->t_connect1 - s->t_connect0) / 1e9, s->connect_failed, s->cp_cpu0 - s->cp_cpu_w,
	       s->n ? (s->cp_cpu0 - s->cp_cpu_w) * 1e3 / s->n : 0.0, pct(&s->warm_lat, 0.5), pct(&s->warm_lat, 0.99),
	       s->ok && s->cp_wbytes0 >= 0 ? (double)(s->cp_wbytes1 - s->cp_wbytes0) / 1024.0 / (double)s->ok : -1.0,
	       s->ok && s->cp_syscw0 >= 0 ? (double)(s->cp_syscw1 - s->cp_syscw0) / (double)s->ok : -1.0);
	fflush(stdout);
	s->phase = PH_DONE;
	event_base_loopexit(s->base, NULL);
}

/* ---------------------------------------------------------------------------
 * Set-up.
 */

static void raise_nofile(unsigned need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur >= need)
		return;
	if (rl.rlim_max < need) {
		struct rlimit up = { need, need };

		if (setrlimit(RLIMIT_NOFILE, &up) == 0)	/* root may raise the hard limit */
			return;
	}
	rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need)
		fprintf(stderr, "cp_load: warning: RLIMIT_NOFILE is %llu, %u agents need %u\n",
			(unsigned long long)rl.rlim_cur, need - 64, need);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: cp_load --connect HOST:PORT --ca F --pid PID (--mint-ca F --mint-key F | --cert F --key F)\n"
		"               --agents N [--poll-ms MS] [--window S] [--ramp C] [--label k=v]...\n");
	exit(64);
}

static long num(const char *opt, const char *s, long min)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min) {
		fprintf(stderr, "cp_load: %s: '%s' is not a number >= %ld\n", opt, s, min);
		exit(64);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "ca", required_argument, NULL, 'A' },
		{ "cert", required_argument, NULL, 'C' },
		{ "key", required_argument, NULL, 'K' },
		{ "mint-ca", required_argument, NULL, 'm' },
		{ "mint-key", required_argument, NULL, 'M' },
		{ "agents", required_argument, NULL, 'n' },
		{ "poll-ms", required_argument, NULL, 'p' },
		{ "window", required_argument, NULL, 'w' },
		{ "ramp", required_argument, NULL, 'r' },
		{ "pid", required_argument, NULL, 'P' },
		{ "label", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	static struct sim sim;
	struct sim *s = &sim;
	const char *connect_to = NULL, *ca = NULL, *cert = NULL, *key = NULL, *mint_ca = NULL, *mint_key = NULL;
	X509 *ca_cert = NULL;
	EVP_PKEY *ca_key = NULL;
	char hostpart[64], *colon;
	uint64_t t;
	int c;

	s->poll_ms = 30000;
	s->window_s = 60;
	s->ramp = 64;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': connect_to = optarg; break;
		case 'A': ca = optarg; break;
		case 'C': cert = optarg; break;
		case 'K': key = optarg; break;
		case 'm': mint_ca = optarg; break;
		case 'M': mint_key = optarg; break;
		case 'n': s->n = (unsigned)num("--agents", optarg, 1); break;
		case 'p': s->poll_ms = num("--poll-ms", optarg, 1); break;
		case 'w': s->window_s = num("--window", optarg, 1); break;
		case 'r': s->ramp = (unsigned)num("--ramp", optarg, 1); break;
		case 'P': s->pid = (pid_t)num("--pid", optarg, 1); break;
		case 'l': {
			char *eq = strchr(optarg, '=');

			if (!eq || s->n_labels == MAX_LABELS)
				usage();
			*eq = '\0';
			s->labels[s->n_labels][0] = optarg;
			s->labels[s->n_labels][1] = eq + 1;
			s->n_labels++;
			break;
		}
		default: usage();
		}
	}
	if (optind != argc || !connect_to || !ca || !s->n || !s->pid || (!cert == !mint_ca) ||
	    (cert && !key) || (mint_ca && !mint_key))
		usage();
	snprintf(hostpart, sizeof(hostpart), "%s", connect_to);
	colon = strrchr(hostpart, ':');
	if (!colon)
		usage();
	*colon = '\0';
	s->addr.sin_family = AF_INET;
	s->addr.sin_port = htons((uint16_t)num("--connect port", colon + 1, 1));
	if (inet_pton(AF_INET, hostpart, &s->addr.sin_addr) != 1) {
		fprintf(stderr, "cp_load: --connect: want IPv4:PORT\n");
		return 64;
	}
	snprintf(s->host, sizeof(s->host), "%s", connect_to);
	if (proc_cpu_s(s->pid) < 0) {
		fprintf(stderr, "cp_load: --pid %d: no such process\n", (int)s->pid);
		return 64;
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	raise_nofile(s->n + 64);

	s->ctx = SSL_CTX_new(TLS_client_method());
	if (!s->ctx || SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_load_verify_locations(s->ctx, ca, NULL) != 1) {
		fprintf(stderr, "cp_load: %s: %s\n", ca, ERR_error_string(ERR_get_error(), NULL));
		return 70;
	}
	SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, NULL);
	X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(s->ctx), hostpart);
	/* 10k idle connections: let OpenSSL free its buffers between records */
	SSL_CTX_set_mode(s->ctx, SSL_MODE_RELEASE_BUFFERS);
	/* no session resumption: every agent does a full handshake, as a fleet's first connect */
	SSL_CTX_set_session_cache_mode(s->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(s->ctx, SSL_OP_NO_TICKET);

	t = now_ns();
	if (mint_ca) {
		EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);

		ca_cert = load_cert(mint_ca);
		ca_key = load_key(mint_key);
		if (!ca_cert || !ca_key) {
			fprintf(stderr, "cp_load: cannot read %s / %s\n", mint_ca, mint_key);
			return 70;
		}
		if (!kc || EVP_PKEY_keygen_init(kc) <= 0 ||
		    EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kc, NID_X9_62_prime256v1) <= 0 ||
		    EVP_PKEY_keygen(kc, &s->key) <= 0) {
			fprintf(stderr, "cp_load: EC key generation failed\n");
			return 70;
		}
		EVP_PKEY_CTX_free(kc);
	} else {
		s->shared_cert = load_cert(cert);
		s->key = load_key(key);
		if (!s->shared_cert || !s->key) {
			fprintf(stderr, "cp_load: cannot read %s / %s\n", cert, key);
			return 70;
		}
	}

	s->base = event_base_new();
	s->agents = calloc(s->n, sizeof(*s->agents));
	s->end_ev = evtimer_new(s->base, on_end, s);
	s->drain_ev = evtimer_new(s->base, on_drain, s);
	if (!s->base || !s->agents || !s->end_ev || !s->drain_ev) {
		fprintf(stderr, "cp_load: out of memory\n");
		return 70;
	}
	for (unsigned i = 0; i < s->n; i++) {
		struct agent *a = &s->agents[i];
		uint64_t ms = (uint64_t)time(NULL) * 1000u;

		a->s = s;
		a->idx = i;
		/* UUID v7: ms time, version 7, variant 10, random rest */
		if (getrandom(a->uid, 16, 0) != 16)
			return 70;
		for (int b = 0; b < 6; b++)
			a->uid[b] = (uint8_t)(ms >> (40 - 8 * b));
		a->uid[6] = (uint8_t)(0x70 | (a->uid[6] & 0x0f));
		a->uid[8] = (uint8_t)(0x80 | (a->uid[8] & 0x3f));
		snprintf(a->uid_text, sizeof(a->uid_text),
			 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", a->uid[0], a->uid[1],
			 a->uid[2], a->uid[3], a->uid[4], a->uid[5], a->uid[6], a->uid[7], a->uid[8], a->uid[9],
			 a->uid[10], a->uid[11], a->uid[12], a->uid[13], a->uid[14], a->uid[15]);
		a->poll_ev = evtimer_new(s->base, on_poll, a);
		a->timeout_ev = evtimer_new(s->base, on_timeout, a);
		a->body = evbuffer_new();
		if (!a->poll_ev || !a->timeout_ev || !a->body) {
			fprintf(stderr, "cp_load: out of memory\n");
			return 70;
		}
		if (mint_ca && !(a->cert = mint(ca_cert, ca_key, s->key, i))) {
			fprintf(stderr, "cp_load: minting certificate %u: %s\n", i,
				ERR_error_string(ERR_get_error(), NULL));
			return 70;
		}
	}
	printf("cp_load: %u agents, poll every %ld ms (%.1f requests/s), window %ld s; %s in %.2f s\n", s->n,
	       s->poll_ms, (double)s->n * 1000.0 / (double)s->poll_ms, s->window_s,
	       mint_ca ? "one certificate per agent minted" : "one certificate shared by all agents",
	       (double)(now_ns() - t) / 1e9);

	s->phase = PH_WARMUP;
	s->cp_cpu_w = proc_cpu_s(s->pid);
	s->t_connect0 = now_ns();
	ramp_more(s);
	event_base_dispatch(s->base);

	{
		bool good = s->phase == PH_DONE && s->errors == 0 && s->connect_failed == 0;

		for (unsigned i = 0; i < s->n; i++) {
			drop_connection(&s->agents[i]);
			event_free(s->agents[i].poll_ev);
			event_free(s->agents[i].timeout_ev);
			evbuffer_free(s->agents[i].body);
			X509_free(s->agents[i].cert);
		}
		free(s->agents);
		free(s->lat.us);
		free(s->warm_lat.us);
		event_free(s->end_ev);
		event_free(s->drain_ev);
		event_base_free(s->base);
		SSL_CTX_free(s->ctx);
		EVP_PKEY_free(s->key);
		X509_free(s->shared_cert);
		X509_free(ca_cert);
		EVP_PKEY_free(ca_key);
		return good ? 0 : 1;
	}
}
