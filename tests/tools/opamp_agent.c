/*
 * opamp_agent.c - test tool: a protocol-level OpAMP client over plain HTTP
 * (libcurl, mutual TLS) that behaves as opamp-go's HTTP client does, for the
 * interoperability tests of vigil-cp (tests/integration/cp_opamp.sh).
 *
 *   opamp_agent --server URL [--server URL]... --cert F --key F --ca F [options]
 *
 * Several --server (at most MAX_SERVERS): the agent behind a load balancer
 * in front of several vigil-cp processes sharing one store.  Each message
 * goes to the next server in turn (round-robin: consecutive polls alternate
 * between servers, each with its own keep-alive connection); a message that
 * gets a transport error, 503 or 429 is sent again at once to the next
 * server, as a balancer retries on another backend, and only when every
 * server failed it in a row does the client back off (honouring
 * Retry-After) as below.  With one --server nothing changes.
 *
 * What it copies from opamp-go (client/internal/httpsender.go, nextmessage.go,
 * receivedprocessor.go, clientcommon.go):
 *   - POST, "Content-Type: application/x-protobuf", "OpAMP-Instance-UID:
 *     <uuid>"; a poll every --poll MS (30 s by default) when nothing is
 *     pending; one request at a time on one keep-alive connection;
 *   - the first message carries the full state (agent_description,
 *     capabilities, health, effective_config, remote_config_status); later
 *     polls carry only instance_uid, sequence_num and capabilities (what
 *     NextMessage.PopPending leaves), unless something changed;
 *   - sequence_num starts at 0 and grows by one per message popped, whether
 *     or not its delivery succeeds;
 *   - a reply with ReportFullState makes the next message a full one, sent
 *     at once (not at the next poll); so does a changed remote config status;
 *   - 503 and 429 (and transport errors) retry the same message with
 *     exponential backoff (500 ms x1.5, jitter), honouring Retry-After;
 *     any other non-200 drops the message;
 *   - --gzip: gzip request bodies with "Content-Encoding: gzip" (opamp-go's
 *     EnableCompression) and ask for gzip replies.  Without it nothing is
 *     compressed either way; note that Go's transport asks for gzip replies
 *     even then (--accept-gzip alone plays that).
 * Where it follows the specification instead: opamp-go's HTTP client sends no
 * agent_disconnect, the spec says the client SHOULD ("Plain HTTP Transport",
 * closing); this one sends it in its last message on SIGTERM/SIGINT or after
 * --count messages (--no-disconnect to leave like an abrupt exit).
 *
 * A remote config (AgentConfigMap with policy.yaml and policy.yaml.sig) is
 * checked against its config_hash, computed here from configmap.h's
 * definition, saved to --save DIR (atomic renames; DIR/config_hash holds the
 * hex) and answered with RemoteConfigStatus APPLIED and that hash, or FAILED
 * with --fail-config (or, with --fail-hash HEX, only for the config of that
 * hash: an agent that keeps what it ran when a new policy fails, as in
 * opamp-spec#397).  The effective config is then the received map.
 *
 * Output, one line per event on stdout, key=value, stable for grep:
 *   agent uid=HEX uuid=UUID servers=K
 *   send n=N seq=S full=0|1 desc=0|1 health=0|1 effective=0|1 rcs=STATUS
 *        disconnect=0|1 bytes=B wire=W
 *   reply n=N seq=S http=CODE enc=gzip|identity newconn=0|1 ms=T decode=ok|empty|fail
 *        flags=0xF caps=0xC uid=match|none|other|- remote_config_hash=HEX|- hash_ok=0|1|-
 *        policy_bytes=N sig_bytes=N error_type=TYPE|- error="..." retry_after=S|-
 *        [new_uid=HEX] server=I
 *   fail n=N seq=S curl="..." http=CODE retry_in_ms=T server=I
 * where I is the --server that answered (or failed), 1 for the first given.
 *   apply hash=HEX result=applied|failed|unchanged [saved=DIR]
 *   exit replies=N
 * Exit: 0 when the last exchange got an HTTP response, 1 when it did not,
 * 64 usage, 66 a file could not be read, 70 internal error.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "opamp.pb-c.h"

#define MAX_ATTRS 32
#define MAX_UID 64
#define MAX_REPLY (64u << 20)	/* the spec's recommended default limit */
#define MAX_RAW (64u << 20)
#define HASH_LEN 32
#define MAX_SERVERS 8
#define MAX_URL 2048

#define PEND_FULL 1u
#define PEND_RCS 2u
#define PEND_EFFECTIVE 4u

#define CAPS (OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_ReportsStatus | \
	      OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_AcceptsRemoteConfig | \
	      OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_ReportsEffectiveConfig | \
	      OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_ReportsHealth | \
	      OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_ReportsRemoteConfig | \
	      OPAMP__PROTO__V1__AGENT_CAPABILITIES__AgentCapabilities_ReportsHeartbeat)

struct kv {
	char *key, *value;
};

/* One file of a config map, owned. */
struct cfile {
	char *key, *ctype;
	uint8_t *body;
	size_t len;
};

struct agent {
	/* options */
	char urls[MAX_SERVERS][MAX_URL];
	size_t n_servers;
	const char *cert, *key, *ca, *save_dir, *raw_file;
	const char *content_type, *content_encoding;
	bool gzip_req, accept_gzip, fail_config, no_disconnect, resume, first_heartbeat;
	uint8_t fail_hash[HASH_LEN];	/* --fail-hash: refuse only this config */
	size_t fail_hash_len;
	long poll_ms, timeout_ms, backoff_max_ms, retries, count;
	bool seq_skip_set;
	uint64_t seq_skip_at;
	struct kv attrs[MAX_ATTRS], labels[MAX_ATTRS];
	size_t n_attrs, n_labels;
	const char *unhealthy;
	uint64_t start_ns;

	/* protocol state */
	uint8_t uid[MAX_UID];
	size_t uid_len;
	uint64_t next_seq;
	unsigned pending;
	int rcs_status;			/* RemoteConfigStatuses */
	uint8_t rcs_hash[HASH_LEN];
	size_t rcs_hash_len;		/* 0: no hash reported */
	char rcs_error[256];
	struct cfile eff[8];		/* the effective config: the last applied map */
	size_t n_eff;

	/* transport: one handle (one keep-alive connection) per server */
	CURL *curls[MAX_SERVERS];
	size_t next_server;	/* where the next attempt goes */
	char errbuf[CURL_ERROR_SIZE];
	unsigned long n_sent, n_replies;
	bool last_ok;
};

/* What one exchange brought back. */
struct exchange {
	long http;
	CURLcode cc;
	uint8_t *body;
	size_t len;
	bool too_big;
	char enc[32];
	long retry_after;		/* seconds, -1 when absent */
	long newconn;
	double ms;
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sleep ms unless a signal asks us to stop; false when it did. */
static bool nap(long ms)
{
	uint64_t end = now_ns(CLOCK_MONOTONIC) + (uint64_t)ms * 1000000u;

	while (!stop_flag) {
		uint64_t now = now_ns(CLOCK_MONOTONIC);
		struct timespec ts;

		if (now >= end)
			return true;
		ts.tv_sec = (time_t)((end - now) / 1000000000u);
		ts.tv_nsec = (long)((end - now) % 1000000000u);
		nanosleep(&ts, NULL);
	}
	return false;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int unhex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Hex digits, '-' ignored (UUID form); any even length up to max bytes. */
static int parse_hex(const char *s, uint8_t *out, size_t max, size_t *ret_len)
{
	size_t n = 0;
	int hi = -1;

	for (; *s; s++) {
		int v;

		if (*s == '-')
			continue;
		v = unhex((unsigned char)*s);
		if (v < 0)
			return -EINVAL;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n == max)
			return -E2BIG;
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	if (hi >= 0 || n == 0)
		return -EINVAL;
	*ret_len = n;
	return 0;
}

/* UUID v7 (RFC 9562): 48-bit Unix ms, version 7, variant 10, random rest. */
static void uuid_v7(uint8_t u[16])
{
	uint64_t ms = now_ns(CLOCK_REALTIME) / 1000000u;

	if (getrandom(u, 16, 0) != 16) {
		/* getrandom on 16 bytes does not fail short; make it distinct anyway */
		uint64_t t = now_ns(CLOCK_MONOTONIC) ^ (uint64_t)getpid();

		memcpy(u + 8, &t, 8);
	}
	for (int i = 0; i < 6; i++)
		u[i] = (uint8_t)(ms >> (40 - 8 * i));
	u[6] = (uint8_t)(0x70 | (u[6] & 0x0f));
	u[8] = (uint8_t)(0x80 | (u[8] & 0x3f));
}

static void uuid_string(const uint8_t u[16], char out[37])
{
	char h[33];
	hex(u, 16, h);
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

/* Printable, quote-free rendering of untrusted text for one output line. */
static void print_quoted(const char *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static const char *rcs_name(int st)
{
	switch (st) {
	case OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_UNSET: return "UNSET";
	case OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_APPLIED: return "APPLIED";
	case OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_APPLYING: return "APPLYING";
	case OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_FAILED: return "FAILED";
	default: return "?";
	}
}

static const char *error_type_name(int t)
{
	switch (t) {
	case OPAMP__PROTO__V1__SERVER_ERROR_RESPONSE_TYPE__ServerErrorResponseType_Unknown: return "Unknown";
	case OPAMP__PROTO__V1__SERVER_ERROR_RESPONSE_TYPE__ServerErrorResponseType_BadRequest: return "BadRequest";
	case OPAMP__PROTO__V1__SERVER_ERROR_RESPONSE_TYPE__ServerErrorResponseType_Unavailable: return "Unavailable";
	default: return "Other";
	}
}

/* ---------------------------------------------------------------------------
 * The config hash, from control-plane/configmap.h's definition, written here
 * again so that the tool checks the server instead of sharing its code:
 * SHA-256 over the entries in sorted key order, each as
 *   u32be(len(key)) key u32be(len(content_type)) content_type u32be(len(body)) body
 */

static int entry_cmp(const void *a, const void *b)
{
	const Opamp__Proto__V1__AgentConfigMap__ConfigMapEntry *const *x = a, *const *y = b;

	return strcmp((*x)->key, (*y)->key);
}

static void put_u32be(EVP_MD_CTX *c, size_t n)
{
	uint8_t b[4] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };

	EVP_DigestUpdate(c, b, 4);
}

static int map_hash(const Opamp__Proto__V1__AgentConfigMap *m, uint8_t out[HASH_LEN])
{
	const Opamp__Proto__V1__AgentConfigMap__ConfigMapEntry **e;
	EVP_MD_CTX *c;
	unsigned int len = 0;
	int rc = -ENOMEM;

	e = calloc(m->n_config_map ? m->n_config_map : 1, sizeof(*e));
	c = EVP_MD_CTX_new();
	if (!e || !c)
		goto out;
	for (size_t i = 0; i < m->n_config_map; i++)
		e[i] = m->config_map[i];
	qsort(e, m->n_config_map, sizeof(*e), entry_cmp);
	rc = -EIO;
	if (!EVP_DigestInit_ex(c, EVP_sha256(), NULL))
		goto out;
	for (size_t i = 0; i < m->n_config_map; i++) {
		const char *ct = e[i]->value ? e[i]->value->content_type : "";
		const uint8_t *body = e[i]->value ? e[i]->value->body.data : NULL;
		size_t blen = e[i]->value ? e[i]->value->body.len : 0;

		put_u32be(c, strlen(e[i]->key));
		EVP_DigestUpdate(c, e[i]->key, strlen(e[i]->key));
		put_u32be(c, strlen(ct));
		EVP_DigestUpdate(c, ct, strlen(ct));
		put_u32be(c, blen);
		if (blen)
			EVP_DigestUpdate(c, body, blen);
	}
	if (EVP_DigestFinal_ex(c, out, &len) && len == HASH_LEN)
		rc = 0;
out:
	EVP_MD_CTX_free(c);
	free(e);
	return rc;
}

/* ---------------------------------------------------------------------------
 * Files.
 */

static int read_file(const char *path, size_t max, uint8_t **ret, size_t *ret_len)
{
	FILE *f = fopen(path, "rbe");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	if (!f)
		return -errno;
	for (;;) {
		size_t n;

		if (len == cap) {
			uint8_t *nb;

			cap = cap ? cap * 2 : 65536;
			if (cap > max + 1)
				cap = max + 1;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (len > max) {
			free(buf);
			fclose(f);
			return -EFBIG;
		}
		if (n == 0)
			break;
	}
	fclose(f);
	*ret = buf;
	*ret_len = len;
	return 0;
}

/* Write dir/name through a temporary file and a rename. */
static int save_file(const char *dir, const char *name, const void *p, size_t n)
{
	char tmp[4096], path[4096];
	FILE *f;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	f = fopen(tmp, "wbe");
	if (!f)
		return -errno;
	if (n && fwrite(p, 1, n, f) != n)
		rc = -EIO;
	if (fclose(f) != 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) != 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

/* ---------------------------------------------------------------------------
 * The effective config: the files of the last map applied.
 */

static void eff_clear(struct agent *a)
{
	for (size_t i = 0; i < a->n_eff; i++) {
		free(a->eff[i].key);
		free(a->eff[i].ctype);
		free(a->eff[i].body);
	}
	a->n_eff = 0;
}

static int eff_add(struct agent *a, const char *key, const char *ctype, const uint8_t *body, size_t len)
{
	struct cfile *f;

	if (a->n_eff == sizeof(a->eff) / sizeof(a->eff[0]))
		return -E2BIG;
	f = &a->eff[a->n_eff];
	f->key = strdup(key);
	f->ctype = strdup(ctype);
	f->body = malloc(len ? len : 1);
	if (!f->key || !f->ctype || !f->body) {
		free(f->key);
		free(f->ctype);
		free(f->body);
		return -ENOMEM;
	}
	if (len)
		memcpy(f->body, body, len);
	f->len = len;
	a->n_eff++;
	return 0;
}

/*
 * --resume: start as an agent restarted with the policy it saved in --save
 * DIR, reporting APPLIED with that map's hash (the server then has no reason
 * to send it again).
 */
static int resume_saved(struct agent *a)
{
	Opamp__Proto__V1__AgentConfigFile fy, fs;
	Opamp__Proto__V1__AgentConfigMap__ConfigMapEntry ey, es;
	Opamp__Proto__V1__AgentConfigMap__ConfigMapEntry *ents[2] = { &ey, &es };
	Opamp__Proto__V1__AgentConfigMap m;
	char path[4096];
	uint8_t *y = NULL, *s = NULL;
	size_t ylen = 0, slen = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/policy.yaml", a->save_dir);
	rc = read_file(path, MAX_RAW, &y, &ylen);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/policy.yaml.sig", a->save_dir);
	rc = read_file(path, MAX_RAW, &s, &slen);
	if (rc)
		goto out;
	opamp__proto__v1__agent_config_file__init(&fy);
	opamp__proto__v1__agent_config_file__init(&fs);
	opamp__proto__v1__agent_config_map__config_map_entry__init(&ey);
	opamp__proto__v1__agent_config_map__config_map_entry__init(&es);
	opamp__proto__v1__agent_config_map__init(&m);
	fy.body.data = y;
	fy.body.len = ylen;
	fy.content_type = "text/yaml";
	fs.body.data = s;
	fs.body.len = slen;
	fs.content_type = "application/pkcs7-signature";
	ey.key = "policy.yaml";
	ey.value = &fy;
	es.key = "policy.yaml.sig";
	es.value = &fs;
	m.n_config_map = 2;
	m.config_map = ents;
	rc = map_hash(&m, a->rcs_hash);
	if (rc)
		goto out;
	a->rcs_hash_len = HASH_LEN;
	a->rcs_status = OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_APPLIED;
	rc = eff_add(a, "policy.yaml", "text/yaml", y, ylen);
	if (!rc)
		rc = eff_add(a, "policy.yaml.sig", "application/pkcs7-signature", s, slen);
out:
	free(y);
	free(s);
	return rc;
}

/* ---------------------------------------------------------------------------
 * Building AgentToServer.  Everything points into the agent or the stack of
 * the caller; nothing here is freed by protobuf-c.
 */

struct msgbuf {
	Opamp__Proto__V1__AgentToServer m;
	Opamp__Proto__V1__AgentDescription desc;
	Opamp__Proto__V1__KeyValue kv_id[MAX_ATTRS + 2], kv_non[MAX_ATTRS];
	Opamp__Proto__V1__KeyValue *kv_id_p[MAX_ATTRS + 2], *kv_non_p[MAX_ATTRS];
	Opamp__Proto__V1__AnyValue av_id[MAX_ATTRS + 2], av_non[MAX_ATTRS];
	Opamp__Proto__V1__ComponentHealth health, sampling;
	Opamp__Proto__V1__ComponentHealth__ComponentHealthMapEntry hent;
	Opamp__Proto__V1__ComponentHealth__ComponentHealthMapEntry *hent_p[1];
	Opamp__Proto__V1__EffectiveConfig eff;
	Opamp__Proto__V1__AgentConfigMap effmap;
	Opamp__Proto__V1__AgentConfigMap__ConfigMapEntry effent[8];
	Opamp__Proto__V1__AgentConfigMap__ConfigMapEntry *effent_p[8];
	Opamp__Proto__V1__AgentConfigFile efffile[8];
	Opamp__Proto__V1__RemoteConfigStatus rcs;
	Opamp__Proto__V1__AgentDisconnect disc;
	char hostname[256];
};

static void set_kv(Opamp__Proto__V1__KeyValue *kv, Opamp__Proto__V1__AnyValue *av, char *k, char *v)
{
	opamp__proto__v1__key_value__init(kv);
	opamp__proto__v1__any_value__init(av);
	av->value_case = OPAMP__PROTO__V1__ANY_VALUE__VALUE_STRING_VALUE;
	av->string_value = v;
	kv->key = k;
	kv->value = av;
}

static bool has_attr(const struct agent *a, const char *k)
{
	for (size_t i = 0; i < a->n_attrs; i++)
		if (strcmp(a->attrs[i].key, k) == 0)
			return true;
	return false;
}

static void build_message(struct agent *a, struct msgbuf *b, unsigned what, bool disconnect)
{
	Opamp__Proto__V1__AgentToServer *m = &b->m;
	bool full = what & PEND_FULL;

	opamp__proto__v1__agent_to_server__init(m);
	m->instance_uid.data = a->uid;
	m->instance_uid.len = a->uid_len;
	m->capabilities = CAPS;

	if (full) {
		size_t n = 0;

		opamp__proto__v1__agent_description__init(&b->desc);
		for (size_t i = 0; i < a->n_attrs; i++, n++)
			set_kv(&b->kv_id[n], &b->av_id[n], a->attrs[i].key, a->attrs[i].value);
		if (!has_attr(a, "service.name")) {
			set_kv(&b->kv_id[n], &b->av_id[n], "service.name", "opamp_agent");
			n++;
		}
		if (!has_attr(a, "host.name")) {
			if (gethostname(b->hostname, sizeof(b->hostname) - 1) != 0)
				strcpy(b->hostname, "localhost");
			set_kv(&b->kv_id[n], &b->av_id[n], "host.name", b->hostname);
			n++;
		}
		for (size_t i = 0; i < n; i++)
			b->kv_id_p[i] = &b->kv_id[i];
		b->desc.n_identifying_attributes = n;
		b->desc.identifying_attributes = b->kv_id_p;
		for (size_t i = 0; i < a->n_labels; i++) {
			set_kv(&b->kv_non[i], &b->av_non[i], a->labels[i].key, a->labels[i].value);
			b->kv_non_p[i] = &b->kv_non[i];
		}
		b->desc.n_non_identifying_attributes = a->n_labels;
		b->desc.non_identifying_attributes = b->kv_non_p;
		m->agent_description = &b->desc;

		opamp__proto__v1__component_health__init(&b->health);
		opamp__proto__v1__component_health__init(&b->sampling);
		b->health.healthy = !a->unhealthy;
		b->health.start_time_unix_nano = a->start_ns;
		b->health.status_time_unix_nano = now_ns(CLOCK_REALTIME);
		b->health.status = a->unhealthy ? "failing" : "running";
		if (a->unhealthy)
			b->health.last_error = (char *)(uintptr_t)a->unhealthy;
		b->sampling.healthy = b->health.healthy;
		b->sampling.status = b->health.status;
		b->sampling.start_time_unix_nano = a->start_ns;
		opamp__proto__v1__component_health__component_health_map_entry__init(&b->hent);
		b->hent.key = "sampling";
		b->hent.value = &b->sampling;
		b->hent_p[0] = &b->hent;
		b->health.n_component_health_map = 1;
		b->health.component_health_map = b->hent_p;
		m->health = &b->health;
	}
	if (full || (what & PEND_EFFECTIVE)) {
		opamp__proto__v1__effective_config__init(&b->eff);
		opamp__proto__v1__agent_config_map__init(&b->effmap);
		for (size_t i = 0; i < a->n_eff; i++) {
			opamp__proto__v1__agent_config_file__init(&b->efffile[i]);
			b->efffile[i].body.data = a->eff[i].body;
			b->efffile[i].body.len = a->eff[i].len;
			b->efffile[i].content_type = a->eff[i].ctype;
			opamp__proto__v1__agent_config_map__config_map_entry__init(&b->effent[i]);
			b->effent[i].key = a->eff[i].key;
			b->effent[i].value = &b->efffile[i];
			b->effent_p[i] = &b->effent[i];
		}
		b->effmap.n_config_map = a->n_eff;
		b->effmap.config_map = b->effent_p;
		b->eff.config_map = &b->effmap;
		m->effective_config = &b->eff;
	}
	if (full || (what & PEND_RCS)) {
		opamp__proto__v1__remote_config_status__init(&b->rcs);
		b->rcs.status = a->rcs_status;
		b->rcs.last_remote_config_hash.data = a->rcs_hash_len ? a->rcs_hash : NULL;
		b->rcs.last_remote_config_hash.len = a->rcs_hash_len;
		if (a->rcs_error[0])
			b->rcs.error_message = a->rcs_error;
		m->remote_config_status = &b->rcs;
	}
	if (disconnect) {
		opamp__proto__v1__agent_disconnect__init(&b->disc);
		m->agent_disconnect = &b->disc;
	}

	/* NextMessage.PopPending: the number grows with every message popped. */
	if (a->seq_skip_set && a->next_seq == a->seq_skip_at)
		a->next_seq++;
	m->sequence_num = a->next_seq++;
}

/* ---------------------------------------------------------------------------
 * Transport.
 */

static int gzip_buf(const uint8_t *in, size_t n, uint8_t **ret, size_t *ret_len)
{
	z_stream z = { 0 };
	uint8_t *out;
	size_t cap;

	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	cap = deflateBound(&z, (uLong)n) + 32;
	out = malloc(cap);
	if (!out) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		free(out);
		return -EIO;
	}
	*ret_len = z.total_out;
	deflateEnd(&z);
	*ret = out;
	return 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct exchange *x = arg;
	size_t n = size * nmemb;
	uint8_t *nb;

	if (x->len + n > MAX_REPLY) {
		x->too_big = true;
		return 0;
	}
	nb = realloc(x->body, x->len + n + 1);
	if (!nb)
		return 0;
	x->body = nb;
	memcpy(x->body + x->len, p, n);
	x->len += n;
	return n;
}

static bool header_is(const char *line, size_t n, const char *name, const char **ret_val, size_t *ret_len)
{
	size_t k = strlen(name);

	if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return false;
	line += k + 1;
	n -= k + 1;
	while (n && (*line == ' ' || *line == '\t'))
		line++, n--;
	while (n && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' '))
		n--;
	*ret_val = line;
	*ret_len = n;
	return true;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct exchange *x = arg;
	size_t n = size * nmemb;
	const char *v;
	size_t vl;

	if (header_is(p, n, "Content-Encoding", &v, &vl)) {
		if (vl >= sizeof(x->enc))
			vl = sizeof(x->enc) - 1;
		memcpy(x->enc, v, vl);
		x->enc[vl] = '\0';
	} else if (header_is(p, n, "Retry-After", &v, &vl)) {
		char tmp[32];

		if (vl >= sizeof(tmp))
			vl = sizeof(tmp) - 1;
		memcpy(tmp, v, vl);
		tmp[vl] = '\0';
		x->retry_after = strtol(tmp, NULL, 10);
	}
	return n;
}

static int transport_init(struct agent *a, size_t i)
{
	CURL *c = curl_easy_init();

	if (!c)
		return -ENOMEM;
	a->curls[i] = c;
	curl_easy_setopt(c, CURLOPT_URL, a->urls[i]);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, a->errbuf);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, a->timeout_ms);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	if (a->cert)
		curl_easy_setopt(c, CURLOPT_SSLCERT, a->cert);
	if (a->key)
		curl_easy_setopt(c, CURLOPT_SSLKEY, a->key);
	if (a->ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, a->ca);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	/* Go's transport asks for gzip and decodes it; curl does the same here. */
	if (a->accept_gzip)
		curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "gzip");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	return 0;
}

/* One POST of body (already encoded as wire bytes) to server srv.  0 when the call ran. */
static int post(struct agent *a, size_t srv, const uint8_t *wire, size_t len, bool gzipped, struct exchange *x)
{
	CURL *curl = a->curls[srv];
	struct curl_slist *h = NULL;
	char line[128];
	curl_off_t t = 0;

	memset(x, 0, sizeof(*x));
	x->retry_after = -1;
	snprintf(line, sizeof(line), "Content-Type: %s",
		 a->content_type ? a->content_type : "application/x-protobuf");
	h = curl_slist_append(h, line);
	if (a->content_encoding) {
		snprintf(line, sizeof(line), "Content-Encoding: %s", a->content_encoding);
		h = curl_slist_append(h, line);
	} else if (gzipped) {
		h = curl_slist_append(h, "Content-Encoding: gzip");
	}
	if (a->uid_len == 16) {
		char u[37];

		uuid_string(a->uid, u);
		snprintf(line, sizeof(line), "OpAMP-Instance-UID: %s", u);
		h = curl_slist_append(h, line);
	}
	/* Go sends no "Expect: 100-continue"; curl would for bodies > 1 KiB. */
	h = curl_slist_append(h, "Expect:");
	if (!h)
		return -ENOMEM;
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, (const char *)wire);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, x);
	a->errbuf[0] = '\0';
	x->cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &x->http);
	curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &x->newconn);
	curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME_T, &t);
	x->ms = (double)t / 1000.0;
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	return 0;
}

/* ---------------------------------------------------------------------------
 * Replies.
 */

/* Apply a remote config: check, save, set the status to report. */
static void apply_config(struct agent *a, const Opamp__Proto__V1__AgentRemoteConfig *rc)
{
	const Opamp__Proto__V1__AgentConfigMap *m = rc->config;
	const Opamp__Proto__V1__AgentConfigFile *y = NULL, *s = NULL;
	char h[2 * HASH_LEN + 1];
	char err[256] = "";

	if (rc->config_hash.len == 0 || rc->config_hash.len > HASH_LEN) {
		printf("apply hash=- result=ignored reason=\"config_hash of %zu bytes\"\n", rc->config_hash.len);
		return;
	}
	hex(rc->config_hash.data, rc->config_hash.len, h);
	if (a->rcs_hash_len == rc->config_hash.len &&
	    memcmp(a->rcs_hash, rc->config_hash.data, a->rcs_hash_len) == 0) {
		/* What an agent does with an offer it already has: nothing new to say. */
		printf("apply hash=%s result=unchanged\n", h);
		return;
	}
	for (size_t i = 0; m && i < m->n_config_map; i++) {
		const Opamp__Proto__V1__AgentConfigMap__ConfigMapEntry *e = m->config_map[i];

		if (strcmp(e->key, "policy.yaml") == 0 && e->value)
			y = e->value;
		else if (strcmp(e->key, "policy.yaml.sig") == 0 && e->value)
			s = e->value;
	}
	if (a->fail_config)
		snprintf(err, sizeof(err), "opamp_agent: refused (--fail-config)");
	else if (a->fail_hash_len && a->fail_hash_len == rc->config_hash.len &&
		 memcmp(a->fail_hash, rc->config_hash.data, a->fail_hash_len) == 0)
		snprintf(err, sizeof(err), "opamp_agent: refused (--fail-hash)");
	else if (!y || !s)
		snprintf(err, sizeof(err), "opamp_agent: the config map lacks %s",
			 !y ? "policy.yaml" : "policy.yaml.sig");

	memcpy(a->rcs_hash, rc->config_hash.data, rc->config_hash.len);
	a->rcs_hash_len = rc->config_hash.len;
	a->pending |= PEND_RCS;
	if (err[0]) {
		a->rcs_status = OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_FAILED;
		snprintf(a->rcs_error, sizeof(a->rcs_error), "%s", err);
		printf("apply hash=%s result=failed reason=", h);
		print_quoted(err, sizeof(err));
		putchar('\n');
		return;
	}
	if (a->save_dir) {
		int r = save_file(a->save_dir, "policy.yaml", y->body.data, y->body.len);

		if (!r)
			r = save_file(a->save_dir, "policy.yaml.sig", s->body.data, s->body.len);
		if (!r) {
			char line[2 * HASH_LEN + 2];

			snprintf(line, sizeof(line), "%s\n", h);
			r = save_file(a->save_dir, "config_hash", line, strlen(line));
		}
		if (r) {
			a->rcs_status = OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_FAILED;
			snprintf(a->rcs_error, sizeof(a->rcs_error), "opamp_agent: saving to %s: %s",
				 a->save_dir, strerror(-r));
			printf("apply hash=%s result=failed reason=", h);
			print_quoted(a->rcs_error, sizeof(a->rcs_error));
			putchar('\n');
			return;
		}
	}
	eff_clear(a);
	if (eff_add(a, "policy.yaml", y->content_type, y->body.data, y->body.len) ||
	    eff_add(a, "policy.yaml.sig", s->content_type, s->body.data, s->body.len)) {
		fprintf(stderr, "opamp_agent: out of memory\n");
		exit(70);
	}
	a->rcs_status = OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_APPLIED;
	a->rcs_error[0] = '\0';
	a->pending |= PEND_EFFECTIVE;
	printf("apply hash=%s result=applied%s%s\n", h, a->save_dir ? " saved=" : "",
	       a->save_dir ? a->save_dir : "");
}

/* Print one reply and act on it as receivedprocessor.go does. */
static void handle_reply(struct agent *a, size_t srv, bool seq_text_valid, uint64_t seq,
			 const struct exchange *x, bool act)
{
	Opamp__Proto__V1__ServerToAgent *r = NULL;
	const char *decode = "empty";
	char hbuf[2 * MAX_UID + 1] = "-";
	const char *hash_ok = "-";
	size_t pol = 0, sig = 0;

	if (x->len) {
		r = opamp__proto__v1__server_to_agent__unpack(NULL, x->len, x->body);
		decode = r ? "ok" : "fail";
	}
	if (r && r->remote_config) {
		const Opamp__Proto__V1__AgentRemoteConfig *rc = r->remote_config;

		if (rc->config_hash.len <= MAX_UID && rc->config_hash.len)
			hex(rc->config_hash.data, rc->config_hash.len, hbuf);
		if (rc->config) {
			uint8_t mine[HASH_LEN];

			hash_ok = map_hash(rc->config, mine) == 0 && rc->config_hash.len == HASH_LEN &&
					  memcmp(mine, rc->config_hash.data, HASH_LEN) == 0
				  ? "1"
				  : "0";
			for (size_t i = 0; i < rc->config->n_config_map; i++) {
				const Opamp__Proto__V1__AgentConfigMap__ConfigMapEntry *e = rc->config->config_map[i];

				if (!e->value)
					continue;
				if (strcmp(e->key, "policy.yaml") == 0)
					pol = e->value->body.len;
				else if (strcmp(e->key, "policy.yaml.sig") == 0)
					sig = e->value->body.len;
			}
		} else {
			hash_ok = "0";
		}
	}
	printf("reply n=%lu seq=", a->n_replies);
	if (seq_text_valid)
		printf("%" PRIu64, seq);
	else
		printf("-");
	printf(" http=%ld enc=%s newconn=%ld ms=%.1f decode=%s", x->http, x->enc[0] ? x->enc : "identity",
	       x->newconn, x->ms, decode);
	printf(" flags=0x%" PRIx64 " caps=0x%" PRIx64, r ? r->flags : 0, r ? r->capabilities : 0);
	/* ServerToAgent.instance_uid MUST match the one the agent sent (spec) */
	printf(" uid=%s", !seq_text_valid ? "-" /* --raw: the body's uid is not ours */
			  : !r || !r->instance_uid.len ? "none"
			  : r->instance_uid.len == a->uid_len && memcmp(r->instance_uid.data, a->uid, a->uid_len) == 0
				  ? "match"
				  : "other");
	printf(" remote_config_hash=%s hash_ok=%s policy_bytes=%zu sig_bytes=%zu", hbuf, hash_ok, pol, sig);
	if (r && r->error_response) {
		printf(" error_type=%s error=", error_type_name(r->error_response->type));
		print_quoted(r->error_response->error_message, strlen(r->error_response->error_message));
		if (r->error_response->details_case == OPAMP__PROTO__V1__SERVER_ERROR_RESPONSE__DETAILS_RETRY_INFO &&
		    r->error_response->retry_info)
			printf(" retry_info_ns=%" PRIu64, r->error_response->retry_info->retry_after_nanoseconds);
	} else {
		printf(" error_type=- error=\"\"");
	}
	if (x->retry_after >= 0)
		printf(" retry_after=%ld", x->retry_after);
	else
		printf(" retry_after=-");
	if (r && r->agent_identification && r->agent_identification->new_instance_uid.len) {
		char nu[2 * MAX_UID + 1] = "-";

		if (r->agent_identification->new_instance_uid.len <= MAX_UID)
			hex(r->agent_identification->new_instance_uid.data,
			    r->agent_identification->new_instance_uid.len, nu);
		printf(" new_uid=%s", nu);
	}
	printf(" server=%zu\n", srv + 1);

	/* opamp-go processes a body only from a 200. */
	if (act && r && x->http == 200) {
		if (r->flags & OPAMP__PROTO__V1__SERVER_TO_AGENT_FLAGS__ServerToAgentFlags_ReportFullState)
			a->pending |= PEND_FULL;
		if (r->remote_config)
			apply_config(a, r->remote_config);
		/* rcvAgentIdentification: a 16-byte new uid replaces ours. */
		if (r->agent_identification && r->agent_identification->new_instance_uid.len == 16) {
			memcpy(a->uid, r->agent_identification->new_instance_uid.data, 16);
			a->uid_len = 16;
		}
	}
	if (r)
		opamp__proto__v1__server_to_agent__free_unpacked(r, NULL);
}

/* ---------------------------------------------------------------------------
 * The loop.
 */

static long backoff_next(long cur, long max)
{
	long n = cur ? cur + cur / 2 : 500;
	unsigned r = 0;

	if (n > max)
		n = max;
	(void)!getrandom(&r, sizeof(r), 0);
	/* randomization factor 0.5, as cenkalti/backoff's default */
	return n / 2 + (long)(r % (unsigned)(n + 1));
}

/*
 * Send one message until it gets an HTTP answer that is not 429/503 (or the
 * retries run out, or a signal says stop).  Each attempt goes to the next
 * server; after a failure the next server is tried at once, and the client
 * waits only when all of them failed this message in a row.  true when a
 * reply came back.
 */
static bool exchange_message(struct agent *a, unsigned what, bool disconnect, bool retry)
{
	struct msgbuf *b = calloc(1, sizeof(*b));
	uint8_t *plain = NULL, *gz = NULL;
	const uint8_t *wire;
	size_t plen, glen = 0, wlen;
	struct exchange x;
	long interval = 0;
	long attempts = 0;
	size_t failed_in_row = 0;
	bool got = false;

	if (!b) {
		fprintf(stderr, "opamp_agent: out of memory\n");
		exit(70);
	}
	build_message(a, b, what, disconnect);
	plen = opamp__proto__v1__agent_to_server__get_packed_size(&b->m);
	plain = malloc(plen ? plen : 1);
	if (!plain) {
		fprintf(stderr, "opamp_agent: out of memory\n");
		exit(70);
	}
	opamp__proto__v1__agent_to_server__pack(&b->m, plain);
	if (a->gzip_req && gzip_buf(plain, plen, &gz, &glen) != 0) {
		fprintf(stderr, "opamp_agent: gzip failed\n");
		exit(70);
	}
	wire = gz ? gz : plain;
	wlen = gz ? glen : plen;
	a->n_sent++;
	printf("send n=%lu seq=%" PRIu64 " full=%d desc=%d health=%d effective=%d rcs=%s disconnect=%d bytes=%zu wire=%zu\n",
	       a->n_sent, b->m.sequence_num, !!(what & PEND_FULL), b->m.agent_description != NULL,
	       b->m.health != NULL, b->m.effective_config != NULL,
	       b->m.remote_config_status ? rcs_name(b->m.remote_config_status->status) : "-",
	       disconnect, plen, wlen);

	for (;;) {
		size_t srv = a->next_server;
		long wait_ms;

		a->next_server = (srv + 1) % a->n_servers;
		post(a, srv, wire, wlen, gz != NULL, &x);
		attempts++;
		if (x.cc == CURLE_OK && x.http != 429 && x.http != 503) {
			a->n_replies++;
			handle_reply(a, srv, 1, b->m.sequence_num, &x, true);
			got = true;
			free(x.body);
			break;
		}
		if (x.cc == CURLE_OK) {
			/* 429/503: show what came with it, then back off */
			a->n_replies++;
			handle_reply(a, srv, 1, b->m.sequence_num, &x, false);
		}
		if (++failed_in_row < a->n_servers) {
			wait_ms = 0;	/* another server has not had this message yet */
		} else {
			failed_in_row = 0;
			interval = backoff_next(interval, a->backoff_max_ms);
			if (x.retry_after >= 0 && x.retry_after * 1000 > interval)
				interval = x.retry_after * 1000;
			wait_ms = interval;
		}
		printf("fail n=%lu seq=%" PRIu64 " curl=", a->n_sent, b->m.sequence_num);
		if (x.cc != CURLE_OK) {
			const char *e = a->errbuf[0] ? a->errbuf : curl_easy_strerror(x.cc);

			print_quoted(e, strlen(e));
		} else {
			printf("\"\"");
		}
		printf(" http=%ld%s retry_in_ms=%ld server=%zu\n", x.http, x.too_big ? " too_big=1" : "",
		       retry ? wait_ms : -1L, srv + 1);
		free(x.body);
		if (!retry || (a->retries >= 0 && attempts > a->retries) || stop_flag)
			break;
		if (wait_ms && !nap(wait_ms))
			break;
	}
	a->last_ok = got;
	free(gz);
	free(plain);
	free(b);
	return got;
}

static int run_raw(struct agent *a)
{
	uint8_t *body = NULL, *gz = NULL;
	size_t len = 0, glen = 0;
	struct exchange x;
	int rc = read_file(a->raw_file, MAX_RAW, &body, &len);

	if (rc) {
		fprintf(stderr, "opamp_agent: %s: %s\n", a->raw_file, strerror(-rc));
		return 66;
	}
	if (a->gzip_req && gzip_buf(body, len, &gz, &glen) != 0) {
		fprintf(stderr, "opamp_agent: gzip failed\n");
		return 70;
	}
	printf("send n=1 seq=- raw=%s bytes=%zu wire=%zu\n", a->raw_file, len, gz ? glen : len);
	/* --raw: once, to the first server */
	post(a, 0, gz ? gz : body, gz ? glen : len, gz != NULL, &x);
	a->n_replies = 1;
	if (x.cc != CURLE_OK) {
		const char *e = a->errbuf[0] ? a->errbuf : curl_easy_strerror(x.cc);

		printf("fail n=1 seq=- curl=");
		print_quoted(e, strlen(e));
		printf(" http=%ld retry_in_ms=-1 server=1\n", x.http);
		rc = 1;
	} else {
		handle_reply(a, 0, 0, 0, &x, false);
		rc = 0;
	}
	free(x.body);
	free(gz);
	free(body);
	return rc;
}

static int run(struct agent *a)
{
	long done = 0;

	/* PrepareFirstMessage; --first-heartbeat plays a client that believes
	 * the server already has its state (a server that lost its store). */
	a->pending = a->first_heartbeat ? 0 : PEND_FULL;
	while (!stop_flag) {
		unsigned what = a->pending;

		a->pending = 0;
		exchange_message(a, what, false, true);
		done++;
		if (a->count > 0 && done >= a->count)
			break;
		if (stop_flag)
			break;
		if (a->pending)	/* ReportFullState, a new status: at once */
			continue;
		if (!nap(a->poll_ms))
			break;
	}
	if (!a->no_disconnect) {
		unsigned what = a->pending;

		a->pending = 0;
		exchange_message(a, what, true, false);
	}
	printf("exit replies=%lu\n", a->n_replies);
	return a->last_ok ? 0 : 1;
}

/* ---------------------------------------------------------------------------
 * Options.
 */

static void usage(void)
{
	fprintf(stderr,
		"usage: opamp_agent --server URL [--cert F --key F] --ca F [options]\n"
		"  --server URL        https://HOST:PORT (path /v1/opamp added when absent);\n"
		"                      repeat (at most %d) to alternate between servers, each\n"
		"                      message to the next, a failed one retried on the next\n"
		"  --uid HEX           instance_uid (32 hex digits or UUID form; other lengths\n"
		"                      are sent as given); default a random UUID v7\n"
		"  --attr k=v          identifying attribute (repeatable)\n"
		"  --label k=v         non-identifying attribute (repeatable)\n"
		"  --poll MS           poll interval when nothing is pending (30000)\n"
		"  --count N           exit after N messages (then agent_disconnect)\n"
		"  --no-disconnect     leave without agent_disconnect\n"
		"  --seq-skip S        never send sequence_num S (a gap the server must see)\n"
		"  --first-heartbeat   start with a poll, not the full state (as if the server\n"
		"                      had lost what this client told it)\n"
		"  --gzip              gzip requests and accept gzip replies\n"
		"  --gzip-request      gzip requests only\n"
		"  --accept-gzip       accept gzip replies only\n"
		"  --save DIR          write a received policy.yaml/.sig and config_hash to DIR\n"
		"  --resume            start with the policy saved in --save DIR as applied\n"
		"  --report-hash HEX   start reporting this last_remote_config_hash (APPLIED)\n"
		"  --fail-config       answer a remote config with FAILED\n"
		"  --fail-hash HEX     answer only the remote config with this hash with FAILED\n"
		"  --unhealthy MSG     report health false with MSG as last_error\n"
		"  --raw FILE          send FILE's bytes as the body once, print the reply, exit\n"
		"  --content-type T    Content-Type to send (application/x-protobuf)\n"
		"  --content-encoding E  Content-Encoding header to send, body left as it is\n"
		"  --timeout MS        per-request timeout (30000)\n"
		"  --backoff-max MS    longest wait between retries (60000)\n"
		"  --retries N         give up a message after N retries (unlimited)\n",
		MAX_SERVERS);
	exit(64);
}

static long parse_long(const char *opt, const char *s, long min)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min) {
		fprintf(stderr, "opamp_agent: %s: '%s' is not a number >= %ld\n", opt, s, min);
		exit(64);
	}
	return v;
}

static void parse_kv(const char *opt, char *s, struct kv *kv, size_t *n)
{
	char *eq = strchr(s, '=');

	if (!eq || eq == s || *n == MAX_ATTRS) {
		fprintf(stderr, "opamp_agent: %s: want k=v (at most %d)\n", opt, MAX_ATTRS);
		exit(64);
	}
	*eq = '\0';
	kv[*n].key = s;
	kv[*n].value = eq + 1;
	(*n)++;
}

int main(int argc, char **argv)
{
	enum {
		O_SERVER = 256, O_CERT, O_KEY, O_CA, O_UID, O_ATTR, O_LABEL, O_POLL, O_COUNT, O_NODISC,
		O_SEQSKIP, O_GZIP, O_GZIPREQ, O_ACCEPTGZ, O_SAVE, O_RESUME, O_REPORTHASH, O_FAILCFG,
		O_UNHEALTHY, O_RAW, O_CTYPE, O_CENC, O_TIMEOUT, O_BACKOFF, O_RETRIES, O_FIRSTHB, O_FAILHASH,
	};
	static const struct option opts[] = {
		{ "server", required_argument, NULL, O_SERVER },
		{ "cert", required_argument, NULL, O_CERT },
		{ "key", required_argument, NULL, O_KEY },
		{ "ca", required_argument, NULL, O_CA },
		{ "uid", required_argument, NULL, O_UID },
		{ "attr", required_argument, NULL, O_ATTR },
		{ "label", required_argument, NULL, O_LABEL },
		{ "poll", required_argument, NULL, O_POLL },
		{ "count", required_argument, NULL, O_COUNT },
		{ "no-disconnect", no_argument, NULL, O_NODISC },
		{ "seq-skip", required_argument, NULL, O_SEQSKIP },
		{ "gzip", no_argument, NULL, O_GZIP },
		{ "gzip-request", no_argument, NULL, O_GZIPREQ },
		{ "accept-gzip", no_argument, NULL, O_ACCEPTGZ },
		{ "save", required_argument, NULL, O_SAVE },
		{ "resume", no_argument, NULL, O_RESUME },
		{ "report-hash", required_argument, NULL, O_REPORTHASH },
		{ "fail-config", no_argument, NULL, O_FAILCFG },
		{ "fail-hash", required_argument, NULL, O_FAILHASH },
		{ "unhealthy", required_argument, NULL, O_UNHEALTHY },
		{ "raw", required_argument, NULL, O_RAW },
		{ "content-type", required_argument, NULL, O_CTYPE },
		{ "content-encoding", required_argument, NULL, O_CENC },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "backoff-max", required_argument, NULL, O_BACKOFF },
		{ "retries", required_argument, NULL, O_RETRIES },
		{ "first-heartbeat", no_argument, NULL, O_FIRSTHB },
		{ NULL, 0, NULL, 0 },
	};
	static struct agent ag;
	struct agent *a = &ag;
	const char *servers[MAX_SERVERS], *uid = NULL, *report_hash = NULL;
	char u[37], uh[2 * MAX_UID + 1];
	struct sigaction sa = { .sa_handler = on_signal };
	int c, rc;

	a->poll_ms = 30000;
	a->timeout_ms = 30000;
	a->backoff_max_ms = 60000;
	a->retries = -1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_SERVER:
			if (a->n_servers == MAX_SERVERS) {
				fprintf(stderr, "opamp_agent: --server: at most %d servers\n", MAX_SERVERS);
				exit(64);
			}
			servers[a->n_servers++] = optarg;
			break;
		case O_CERT: a->cert = optarg; break;
		case O_KEY: a->key = optarg; break;
		case O_CA: a->ca = optarg; break;
		case O_UID: uid = optarg; break;
		case O_ATTR: parse_kv("--attr", optarg, a->attrs, &a->n_attrs); break;
		case O_LABEL: parse_kv("--label", optarg, a->labels, &a->n_labels); break;
		case O_POLL: a->poll_ms = parse_long("--poll", optarg, 1); break;
		case O_COUNT: a->count = parse_long("--count", optarg, 1); break;
		case O_NODISC: a->no_disconnect = true; break;
		case O_SEQSKIP:
			a->seq_skip_at = (uint64_t)parse_long("--seq-skip", optarg, 0);
			a->seq_skip_set = true;
			break;
		case O_GZIP: a->gzip_req = a->accept_gzip = true; break;
		case O_GZIPREQ: a->gzip_req = true; break;
		case O_ACCEPTGZ: a->accept_gzip = true; break;
		case O_SAVE: a->save_dir = optarg; break;
		case O_RESUME: a->resume = true; break;
		case O_REPORTHASH: report_hash = optarg; break;
		case O_FAILCFG: a->fail_config = true; break;
		case O_FAILHASH:
			if (parse_hex(optarg, a->fail_hash, HASH_LEN, &a->fail_hash_len) != 0 || !a->fail_hash_len) {
				fprintf(stderr, "opamp_agent: --fail-hash: want hex of at most %d bytes\n", HASH_LEN);
				return 64;
			}
			break;
		case O_UNHEALTHY: a->unhealthy = optarg; break;
		case O_RAW: a->raw_file = optarg; break;
		case O_CTYPE: a->content_type = optarg; break;
		case O_CENC: a->content_encoding = optarg; break;
		case O_TIMEOUT: a->timeout_ms = parse_long("--timeout", optarg, 1); break;
		case O_BACKOFF: a->backoff_max_ms = parse_long("--backoff-max", optarg, 1); break;
		case O_RETRIES: a->retries = parse_long("--retries", optarg, 0); break;
		case O_FIRSTHB: a->first_heartbeat = true; break;
		default: usage();
		}
	}
	if (optind != argc || !a->n_servers)
		usage();
	if (a->resume && !a->save_dir) {
		fprintf(stderr, "opamp_agent: --resume needs --save DIR\n");
		return 64;
	}
	for (size_t i = 0; i < a->n_servers; i++) {
		const char *p = strstr(servers[i], "://");
		int n;

		p = p ? strchr(p + 3, '/') : NULL;
		n = snprintf(a->urls[i], MAX_URL, "%s%s", servers[i], p && p[1] ? "" : (p ? "v1/opamp" : "/v1/opamp"));
		if (n < 0 || n >= MAX_URL) {
			fprintf(stderr, "opamp_agent: --server: a URL of at most %d bytes\n", MAX_URL - 16);
			return 64;
		}
	}
	if (uid) {
		if (parse_hex(uid, a->uid, MAX_UID, &a->uid_len) != 0) {
			fprintf(stderr, "opamp_agent: --uid: '%s' is not hex of at most %d bytes\n", uid, MAX_UID);
			return 64;
		}
	} else {
		uuid_v7(a->uid);
		a->uid_len = 16;
	}
	if (report_hash) {
		if (parse_hex(report_hash, a->rcs_hash, HASH_LEN, &a->rcs_hash_len) != 0) {
			fprintf(stderr, "opamp_agent: --report-hash: want hex of at most %d bytes\n", HASH_LEN);
			return 64;
		}
		a->rcs_status = OPAMP__PROTO__V1__REMOTE_CONFIG_STATUSES__RemoteConfigStatuses_APPLIED;
	}
	if (a->resume && (rc = resume_saved(a)) != 0) {
		fprintf(stderr, "opamp_agent: --resume: the policy in %s: %s\n", a->save_dir, strerror(-rc));
		return 66;
	}
	a->start_ns = now_ns(CLOCK_REALTIME);

	setvbuf(stdout, NULL, _IOLBF, 0);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		fprintf(stderr, "opamp_agent: cannot initialise libcurl\n");
		return 70;
	}
	for (size_t i = 0; i < a->n_servers; i++) {
		if (transport_init(a, i) != 0) {
			fprintf(stderr, "opamp_agent: cannot initialise libcurl\n");
			return 70;
		}
	}
	hex(a->uid, a->uid_len, uh);
	if (a->uid_len == 16)
		uuid_string(a->uid, u);
	printf("agent uid=%s uuid=%s servers=%zu\n", uh, a->uid_len == 16 ? u : "-", a->n_servers);

	rc = a->raw_file ? run_raw(a) : run(a);
	eff_clear(a);
	for (size_t i = 0; i < a->n_servers; i++)
		curl_easy_cleanup(a->curls[i]);
	curl_global_cleanup();
	return rc;
}
