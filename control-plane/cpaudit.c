/*
 * cpaudit.c - vigil-cp's audit log (cpaudit.h): canonical records, the
 * Merkle tree kept in step with the store, checkpoints, and a copy of each
 * record in the log (journald's native protocol, else stderr).
 *
 * journald is spoken to directly (one datagram of KEY=VALUE lines to its
 * socket, systemd.io/JOURNAL_NATIVE_PROTOCOL) rather than through
 * libsystemd's sd_journal_send: it is the same datagram, and vigil-cp then
 * needs no libsystemd at build or run time.  A record is compact JSON, so
 * it never holds a newline and needs none of the protocol's binary form.
 *
 * Runs in vigil-cp (unprivileged, single-threaded).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "checkpoint.h"
#include "b64.h"
#include "cpaudit.h"
#include "hexdigit.h"

struct cpaudit {
	struct store *st;
	struct merkle *tree;
	char origin[CHECKPOINT_MAX_ORIGIN + 1];
	EVP_PKEY *key;
	char journal[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int jfd;			/* the journal's datagram socket, -1 until first used */
	bool log_records;
	/*
	 * Records waiting for the next flush: with an event base, every record
	 * made while the loop handles its ready events goes into one
	 * transaction (one fsync) when it next turns; without one, each is
	 * flushed at once.
	 */
	struct pending {
		const char *kind;	/* static: "admin" or cpevent_name() */
		json_t *fields;		/* a reference held */
		int64_t now;
		char *text;		/* as built, for the log after the commit */
	} q[CPAUDIT_MAX_PENDING];
	size_t nq;
	size_t built;			/* of q, built in the append under way */
	uint64_t base;			/* the tree's size when the append began building */
	struct event *flush_ev;		/* NULL: flush at once */
	bool scheduled;
};

static int sha256_hex(const void *p, size_t len, char out[65])
{
	uint8_t md[32];
	unsigned int n = 0;

	if (EVP_Digest(p, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
		return -ENOMEM;
	hexdigit_encode(md, 32, out);
	return 0;
}

int cpaudit_request_hash(const char *method, const char *path, const char *query, const uint8_t *body,
			 size_t len, char out[65])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t md[32];
	unsigned int n = 0;
	int ok;

	if (!ctx)
		return -ENOMEM;
	if (!query)
		query = "";
	/* NUL separators: none of method, path or query holds one, so the framing is unambiguous. */
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, method, strlen(method) + 1) == 1 &&
	     EVP_DigestUpdate(ctx, path, strlen(path) + 1) == 1 &&
	     EVP_DigestUpdate(ctx, query, strlen(query) + 1) == 1 &&
	     (len == 0 || EVP_DigestUpdate(ctx, body, len) == 1) && EVP_DigestFinal_ex(ctx, md, &n) == 1 &&
	     n == 32;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -ENOMEM;
	hexdigit_encode(md, 32, out);
	return 0;
}

/* ------------------------------------------------------------------------
 * The tree and the store. */

struct load {
	struct cpaudit *au;
	bool check;	/* each record must follow the tree (not at start: see cpaudit_new) */
	int64_t bad;	/* the first index out of sequence, -1 none */
};

/*
 * Whether record r (index == our tree's size) follows our tree: its i is
 * its index and its prev our root.  Another server's record always does;
 * a row put into the table by hand does not, and is never signed over.
 */
static bool follows(struct cpaudit *au, const struct store_audit_record *r)
{
	uint8_t root[MERKLE_HASH_LEN];
	char hex[2 * MERKLE_HASH_LEN + 1];
	json_t *o = json_loadb((const char *)r->record, r->len, 0, NULL);
	bool ok = json_is_object(o) && json_integer_value(json_object_get(o, "i")) == r->idx &&
		  json_is_string(json_object_get(o, "prev")) &&
		  merkle_root(au->tree, (uint64_t)r->idx, root) == 0;

	if (ok) {
		hexdigit_encode(root, sizeof(root), hex);
		ok = strcmp(json_string_value(json_object_get(o, "prev")), hex) == 0;
	}
	json_decref(o);
	return ok;
}

/* r onto the tree; check: it must follow it (records another server appended). */
static int take(struct cpaudit *au, const struct store_audit_record *r, bool check)
{
	uint8_t h[MERKLE_HASH_LEN];
	int e;

	if ((uint64_t)r->idx != merkle_size(au->tree) || (check && !follows(au, r)))
		return -EBADMSG;
	if ((e = merkle_leaf_hash(r->record, r->len, h)))
		return e;
	return merkle_append(au->tree, h);
}

static int load_one(const struct store_audit_record *r, void *arg)
{
	struct load *l = arg;
	int e = take(l->au, r, l->check);

	if (e == -EBADMSG)
		l->bad = (int64_t)merkle_size(l->au->tree);
	return e;
}

static int load_from(struct cpaudit *au, bool check, int64_t *ret_bad)
{
	struct load l = { .au = au, .check = check, .bad = -1 };
	int e;

	for (;;) {
		uint64_t before = merkle_size(au->tree);

		e = store_audit_list(au->st, (int64_t)before, STORE_MAX_AUDIT_LIST, load_one, &l);
		if (e || merkle_size(au->tree) == before)
			break;
	}
	*ret_bad = l.bad;
	return e;
}

int cpaudit_new(struct store *st, const struct cpaudit_config *cfg, struct cpaudit **ret, char *err,
		size_t errlen)
{
	struct cpaudit *au;
	char why[256];
	int64_t bad = -1;
	int e;

	if (!st || !cfg || !cfg->origin) {
		snprintf(err, errlen, "audit log: no store or origin");
		return -EINVAL;
	}
	if (checkpoint_check_name(cfg->origin, why, sizeof(why))) {
		snprintf(err, errlen, "--audit-origin: %s", why);
		return -EINVAL;
	}
	if (cfg->key && EVP_PKEY_id(cfg->key) != EVP_PKEY_ED25519) {
		snprintf(err, errlen, "--audit-key: not an Ed25519 key");
		return -EINVAL;
	}
	au = calloc(1, sizeof(*au));
	if (!au || merkle_new(&au->tree)) {
		free(au);
		snprintf(err, errlen, "audit log: out of memory");
		return -ENOMEM;
	}
	au->st = st;
	au->key = cfg->key;
	au->jfd = -1;
	au->log_records = cfg->log_records != 0;
	snprintf(au->origin, sizeof(au->origin), "%s", cfg->origin);
	snprintf(au->journal, sizeof(au->journal), "%s",
		 cfg->journal_socket ? cfg->journal_socket : CPAUDIT_JOURNAL_SOCKET);
	/*
	 * At start every stored record is taken as it is (checking each prev
	 * would cost a root per record, ~20 s at 1M): vigilctl audit verify is
	 * what checks them.  Only the indexes must run on.
	 */
	e = load_from(au, false, &bad);
	if (e == -EBADMSG && bad >= 0)
		snprintf(err, errlen,
			 "audit log: the stored records do not run on at index %" PRId64
			 " (a row was deleted): the audit table was altered; restore it from a "
			 "backup, or run vigilctl audit verify to see where",
			 bad);
	else if (e)
		snprintf(err, errlen, "audit log: reading the stored records: %s", strerror(-e));
	if (e) {
		cpaudit_free(au);
		return e;
	}
	*ret = au;
	return 0;
}

void cpaudit_free(struct cpaudit *au)
{
	if (!au)
		return;
	cpaudit_flush(au);
	if (au->flush_ev)
		event_free(au->flush_ev);
	if (au->jfd >= 0)
		close(au->jfd);
	merkle_free(au->tree);
	free(au);
}

int cpaudit_sync(struct cpaudit *au)
{
	int64_t bad = -1;
	int e;

	cpaudit_flush(au);
	e = load_from(au, true, &bad);

	if (e == -EBADMSG && bad >= 0)
		fprintf(stderr,
			"vigil-cp: audit: the stored record %" PRId64 " does not follow this server's log (its "
			"index or prev is not ours): the audit table was altered; checkpoints stay at %" PRIu64
			" records and no record can be appended until it is restored\n",
			bad, merkle_size(au->tree));
	return e;
}

uint64_t cpaudit_size(const struct cpaudit *au)
{
	return merkle_size(au->tree);
}

const struct merkle *cpaudit_tree(const struct cpaudit *au)
{
	return au->tree;
}

const char *cpaudit_origin(const struct cpaudit *au)
{
	return au->origin;
}

struct store *cpaudit_store(const struct cpaudit *au)
{
	return au->st;
}

int cpaudit_signs(const struct cpaudit *au)
{
	return au->key != NULL;
}

/* ------------------------------------------------------------------------
 * Records. */

static int seen(const struct store_audit_record *r, void *arg)
{
	return take(arg, r, true);
}

/* The next queued record as the record of index idx, its leaf on the tree; 1 when none is left. */
static int build(int64_t idx, void *arg, uint8_t **ret, size_t *ret_len, int64_t *ret_at)
{
	struct cpaudit *au = arg;
	struct pending *p;
	uint8_t root[MERKLE_HASH_LEN], leaf[MERKLE_HASH_LEN];
	char hex[2 * MERKLE_HASH_LEN + 1];
	json_t *o;
	char *text;
	int e;

	if (au->built == au->nq)
		return 1;
	p = &au->q[au->built];
	/* seen() brought the tree to the store's size; each record built since is on it too. */
	if ((uint64_t)idx != merkle_size(au->tree))
		return -EPROTO;
	if (au->built == 0)
		au->base = merkle_size(au->tree);
	if ((e = merkle_root(au->tree, (uint64_t)idx, root)))
		return e;
	hexdigit_encode(root, sizeof(root), hex);
	o = json_object();
	if (!o || json_object_update(o, p->fields) || json_object_set_new(o, "i", json_integer(idx)) ||
	    json_object_set_new(o, "prev", json_string(hex)) || json_object_set_new(o, "t", json_integer(p->now)) ||
	    json_object_set_new(o, "kind", json_string(p->kind))) {
		json_decref(o);
		return -ENOMEM;
	}
	text = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	if (!text)
		return -ENOMEM;
	if ((e = merkle_leaf_hash(text, strlen(text), leaf)) || (e = merkle_append(au->tree, leaf)) ||
	    !(p->text = strdup(text))) {
		free(text);
		return e ? e : -ENOMEM;
	}
	au->built++;
	*ret = (uint8_t *)text;
	*ret_len = strlen(text);
	*ret_at = p->now;
	return 0;
}

static bool to_journal(struct cpaudit *au, int64_t idx, const char *kind, const char *text)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t cap = strlen(text) + 512;
	char *msg;
	int n;
	ssize_t w;

	if (!au->journal[0] || access(au->journal, F_OK) != 0)
		return false;
	if (au->jfd < 0) {
		au->jfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (au->jfd < 0)
			return false;
	}
	msg = malloc(cap);
	if (!msg)
		return false;
	n = snprintf(msg, cap,
		     "MESSAGE_ID=" CPAUDIT_MESSAGE_ID "\nPRIORITY=5\nSYSLOG_IDENTIFIER=vigil-cp\n"
		     "MESSAGE=audit record %" PRId64 ": %s\nVIGIL_AUDIT_INDEX=%" PRId64 "\nVIGIL_AUDIT_KIND=%s\n"
		     "VIGIL_AUDIT_RECORD=%s\n",
		     idx, kind, idx, kind, text);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", au->journal);
	w = n > 0 && (size_t)n < cap ? sendto(au->jfd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&sa,
					       sizeof(sa))
				     : -1;
	free(msg);
	return w == n;
}

static void log_record(struct cpaudit *au, int64_t idx, const char *kind, const char *text)
{
	if (!au->log_records)
		return;
	if (!to_journal(au, idx, kind, text))
		fprintf(stderr, "vigil-cp: audit %" PRId64 " %s: %s\n", idx, kind, text);
}

static void set_str(json_t *o, const char *k, const char *v)
{
	json_object_set_new(o, k, v ? json_string(v) : json_null());
}

/* The length of a valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len = p[0] < 0x80 ? 1 : (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3 : (p[0] & 0xf8) == 0xf0 ? 4 : 0;

	if (len == 0 || len > n || (len == 2 && p[0] < 0xc2))
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/*
 * Text from a peer (an agent's error, a certificate's subject, a query) as
 * a JSON string: at most max bytes (cut at a character, "..." after), and
 * each byte that is not UTF-8 written '?', so that no such text can make a
 * record unwritable (jansson takes UTF-8 only; a record has a size limit).
 */
static void set_text(json_t *o, const char *k, const char *v, size_t max)
{
	size_t n, i = 0, out = 0;
	char *buf;

	if (!v) {
		json_object_set_new(o, k, json_null());
		return;
	}
	n = strlen(v);
	buf = malloc((n < max ? n : max) + 4);
	if (!buf)
		return;
	while (i < n) {
		size_t c = utf8_len((const unsigned char *)v + i, n - i);

		if (out + (c ? c : 1) > max) {
			memcpy(buf + out, "...", 3);
			out += 3;
			break;
		}
		if (c) {
			memcpy(buf + out, v + i, c);
			out += c;
			i += c;
		} else {
			buf[out++] = '?';
			i++;
		}
	}
	json_object_set_new(o, k, json_stringn(buf, out));
	free(buf);
}

/* A record that could not be written still reaches the log, with the reason. */
static void lost(const char *kind, json_t *fields, int e)
{
	char *text = json_dumps(fields, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENSURE_ASCII);

	fprintf(stderr, "vigil-cp: audit: could not record %s %s: %s%s\n", kind, text ? text : "",
		strerror(-e), e == -ESTALE ? " (the stored audit log is shorter than the one this server "
					     "holds: it was cut short; run vigilctl audit verify)"
					   : "");
	free(text);
}

static void drop_queue(struct cpaudit *au)
{
	for (size_t i = 0; i < au->nq; i++) {
		json_decref(au->q[i].fields);
		free(au->q[i].text);
	}
	au->nq = 0;
	au->built = 0;
}

int cpaudit_flush(struct cpaudit *au)
{
	int64_t last = -1;
	int e = 0;

	au->scheduled = false;
	while (e == 0 && au->nq > 0) {
		size_t done;

		au->built = 0;
		e = store_audit_append(au->st, (int64_t)merkle_size(au->tree), seen, build, au, &last);
		done = au->built;
		if (e) {
			/* Nothing of it was committed: the tree forgets what build put on it. */
			if (done > 0)
				merkle_truncate(au->tree, au->base);
			for (size_t i = 0; i < au->nq; i++)
				lost(au->q[i].kind, au->q[i].fields, e);
			drop_queue(au);
			break;
		}
		for (size_t i = 0; i < done; i++)
			log_record(au, last - (int64_t)done + 1 + (int64_t)i, au->q[i].kind, au->q[i].text);
		/* What did not fit in one batch goes first in the next. */
		for (size_t i = 0; i < done; i++) {
			json_decref(au->q[i].fields);
			free(au->q[i].text);
		}
		memmove(au->q, au->q + done, (au->nq - done) * sizeof(au->q[0]));
		au->nq -= done;
		au->built = 0;
	}
	return e;
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	cpaudit_flush(arg);
}

int cpaudit_set_event_base(struct cpaudit *au, struct event_base *base)
{
	if (au->flush_ev)
		event_free(au->flush_ev);
	au->flush_ev = base ? evtimer_new(base, on_flush, au) : NULL;
	return base && !au->flush_ev ? -ENOMEM : 0;
}

/* Queue a record (fields: a reference is taken); flushed at once without an event base. */
static int enqueue(struct cpaudit *au, const char *kind, json_t *fields, int64_t now)
{
	int e;

	if (au->nq == CPAUDIT_MAX_PENDING && (e = cpaudit_flush(au))) {
		lost(kind, fields, e);
		return e;
	}
	au->q[au->nq++] = (struct pending){ .kind = kind, .fields = json_incref(fields), .now = now };
	if (!au->flush_ev)
		return cpaudit_flush(au);
	if (!au->scheduled) {
		/* A zero timeout runs after the events the loop already has in hand: they share the commit. */
		static const struct timeval next_turn = { 0, 0 };

		if (evtimer_add(au->flush_ev, &next_turn) != 0)
			return cpaudit_flush(au);
		au->scheduled = true;
	}
	return 0;
}

int cpaudit_append(struct cpaudit *au, const char *kind, json_t *fields, int64_t now, int64_t *ret_idx)
{
	int e;

	if (!au || !kind || !json_is_object(fields))
		return -EINVAL;
	/* Whatever is queued goes first, then this one, in one flush. */
	if (au->nq == CPAUDIT_MAX_PENDING && (e = cpaudit_flush(au)))
		return e;
	au->q[au->nq++] = (struct pending){ .kind = kind, .fields = json_incref(fields), .now = now };
	e = cpaudit_flush(au);
	if (e == 0 && ret_idx)
		*ret_idx = (int64_t)merkle_size(au->tree) - 1;
	return e;
}

void cpaudit_on_event(const struct cpevent *ev, void *arg)
{
	struct cpaudit *au = arg;
	const char *kind = cpevent_name(ev->kind);
	json_t *f = json_object();

	if (!f)
		return;
	if (ev->kind >= CPEVENT_ROLLOUT_STAGE_STARTED) {
		json_object_set_new(f, "rollout", json_integer(ev->rollout_id));
		json_object_set_new(f, "serial", json_integer(ev->serial));
		if (ev->kind != CPEVENT_ROLLOUT_HALTED && ev->kind != CPEVENT_ROLLOUT_COMPLETED)
			json_object_set_new(f, "stage", json_integer(ev->stage));
	} else {
		char uid[2 * STORE_UID_LEN + 1];

		hexdigit_encode(ev->uid, STORE_UID_LEN, uid);
		set_str(f, "uid", uid);
		set_text(f, "subject", ev->subject, CPAUDIT_MAX_TEXT);
		set_text(f, "fingerprint", ev->fingerprint, CPAUDIT_MAX_TEXT);
		if (ev->kind == CPEVENT_POLICY_APPLIED || ev->kind == CPEVENT_POLICY_FAILED)
			json_object_set_new(f, "serial", json_integer(ev->serial));
		if (ev->kind == CPEVENT_HEALTH_CHANGED)
			json_object_set_new(f, "healthy", json_boolean(ev->healthy));
	}
	if (ev->detail)
		set_text(f, "detail", ev->detail, CPAUDIT_MAX_TEXT);
	enqueue(au, kind, f, ev->at); /* a failure is logged with the record */
	json_decref(f);
}

/* ------------------------------------------------------------------------
 * Admin actions. */

/* "sha256:HEX" of a base64 string's bytes (of the string itself when it is not base64). */
static json_t *blob_hash(const char *s, size_t len)
{
	uint8_t *buf = NULL;
	size_t n = 0;
	char hex[65], out[72];
	int r = b64_decode(s, len, len, &buf, &n);

	if (r == -ENOMEM)
		return NULL;
	r = r ? sha256_hex(s, len, hex) : sha256_hex(buf, n, hex);
	free(buf);
	if (r)
		return NULL;
	snprintf(out, sizeof(out), "sha256:%s", hex);
	return json_string(out);
}

static bool has_real(json_t *v)
{
	const char *k;
	json_t *m;
	size_t i;

	if (json_is_real(v))
		return true;
	if (json_is_object(v)) {
		json_object_foreach(v, k, m)
			if (has_real(m))
				return true;
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, m)
			if (has_real(m))
				return true;
	}
	return false;
}

/* The body as the record's "args" (see cpaudit.h). */
static json_t *action_args(const uint8_t *body, size_t len)
{
	static const char *const blobs[] = { "yaml", "signature" };
	json_t *o, *v;
	char hex[65], *text;
	bool too_big;

	if (!body || len == 0)
		return json_null();
	o = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return json_null();
	}
	for (size_t i = 0; i < sizeof(blobs) / sizeof(blobs[0]); i++)
		if ((v = json_object_get(o, blobs[i])) && json_is_string(v))
			json_object_set_new(o, blobs[i], blob_hash(json_string_value(v), json_string_length(v)));
	text = has_real(o) ? NULL : json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	too_big = !text || strlen(text) > CPAUDIT_MAX_ARGS;
	free(text);
	if (!too_big)
		return o;
	json_decref(o);
	if (sha256_hex(body, len, hex))
		return NULL;
	return json_pack("{s:s, s:I}", "sha256", hex, "bytes", (json_int_t)len);
}

void cpaudit_on_action(const struct api_action *act, void *arg)
{
	struct cpaudit *au = arg;
	const struct cp_identity *id = act->id;
	char action[160], hex[65];
	json_t *f = json_object();

	if (!f)
		return;
	snprintf(action, sizeof(action), "%.16s %.128s", act->method, act->path);
	set_text(f, "subject", id ? id->subject : NULL, CPAUDIT_MAX_TEXT);
	set_text(f, "fingerprint", id ? id->fingerprint : NULL, CPAUDIT_MAX_TEXT);
	set_text(f, "action", action, sizeof(action));
	set_text(f, "query", act->query && *act->query ? act->query : NULL, CPAUDIT_MAX_TEXT);
	json_object_set_new(f, "args", action_args(act->body, act->len));
	json_object_set_new(f, "status", json_integer(act->http_status));
	if (cpaudit_request_hash(act->method, act->path, act->query, act->body, act->len, hex) == 0)
		set_str(f, "request_sha256", hex);
	enqueue(au, "admin", f, act->now); /* a failure is logged with the record */
	json_decref(f);
}

/* ------------------------------------------------------------------------
 * Checkpoints. */

int cpaudit_checkpoint(struct cpaudit *au, char **ret, size_t *ret_len)
{
	struct checkpoint c = { 0 };
	int e;

	if (!au->key)
		return -ENOKEY;
	/* A row that does not follow our tree is not signed over: sign what we hold. */
	if ((e = cpaudit_sync(au)) && e != -EBADMSG)
		return e;
	snprintf(c.origin, sizeof(c.origin), "%s", au->origin);
	c.size = merkle_size(au->tree);
	if ((e = merkle_root(au->tree, c.size, c.root)))
		return e;
	return checkpoint_sign(&c, au->key, ret, ret_len);
}
