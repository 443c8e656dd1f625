/*
 * tlsconf.c - vigil-cp's TLS contexts and per-connection TLS state (see
 * tlsconf.h).  Runs in vigil-cp, unprivileged, single-threaded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "hexdigit.h"
#include "pemfile.h"
#include "signing.h"
#include "sslutil.h"
#include "tlsconf.h"

/* TLS 1.2: ECDHE key exchange, AEAD ciphers only.  TLS 1.3's suites are all AEAD. */
#define TLS12_CIPHERS                                                                         \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                          \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                          \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS "X25519:P-256:P-384"
#define VERIFY_DEPTH 6

/* What one configuration knows beyond the SSL_CTX: attached to it, freed with it. */
struct tlsconf {
	STACK_OF(X509) *agent, *admin;	/* the anchors of each role */
	int ncrl;
	unsigned generation;
};

static int ctx_idx = -1, ssl_idx = -1;

static void ctx_data_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct tlsconf *tc = ptr;

	if (!tc)
		return;
	sk_X509_pop_free(tc->agent, X509_free);
	sk_X509_pop_free(tc->admin, X509_free);
	free(tc);
}

static void ssl_data_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct tlsconn *c = ptr;

	if (!c)
		return;
	if (c->on_free)
		c->on_free(c);
	free(c);
}

static int ex_indexes(void)
{
	if (ctx_idx < 0)
		ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctx_data_free);
	if (ssl_idx < 0)
		ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, ssl_data_free);
	return ctx_idx >= 0 && ssl_idx >= 0 ? 0 : -ENOMEM;
}

static const struct tlsconf *ctx_conf(const SSL_CTX *ctx)
{
	return ctx_idx < 0 ? NULL : SSL_CTX_get_ex_data(ctx, ctx_idx);
}

struct tlsconn *tlsconf_conn(const SSL *ssl)
{
	return ssl_idx < 0 || !ssl ? NULL : SSL_get_ex_data(ssl, ssl_idx);
}

/* ---------------------------------------------------------------------
 * Loading files.
 */

static int load_crls(const char *path, STACK_OF(X509_CRL) **ret, char *err, size_t errlen)
{
	STACK_OF(X509_CRL) *sk = NULL;
	void *buf = NULL;
	size_t len;
	BIO *b = NULL;
	X509_CRL *crl;
	char why[200];
	int r;

	r = pemfile_read("--crl", path, PEMFILE_MAX_CRL_BYTES, &buf, &len, err, errlen);
	if (r)
		return r;
	r = -ENOMEM;
	sk = sk_X509_CRL_new_null();
	b = BIO_new_mem_buf(buf, (int)len);
	if (!sk || !b)
		goto out;
	while ((crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL))) {
		if (!sk_X509_CRL_push(sk, crl)) {
			X509_CRL_free(crl);
			goto out;
		}
	}
	ERR_clear_error();
	if (sk_X509_CRL_num(sk) == 0) {
		const unsigned char *p = buf;

		crl = d2i_X509_CRL(NULL, &p, (long)len);
		if (!crl || p != (const unsigned char *)buf + len) {
			X509_CRL_free(crl);
			snprintf(err, errlen, "--crl %s: neither PEM CRLs nor one DER CRL: %s", path,
				 sslutil_reason(why, sizeof(why)));
			r = -EBADMSG;
			goto out;
		}
		if (!sk_X509_CRL_push(sk, crl)) {
			X509_CRL_free(crl);
			goto out;
		}
	}
	*ret = sk;
	sk = NULL;
	r = 0;
out:
	sk_X509_CRL_pop_free(sk, X509_CRL_free);
	BIO_free(b);
	free(buf);
	return r;
}

static bool in_set(const STACK_OF(X509) *set, const X509 *x)
{
	for (int i = 0; i < sk_X509_num(set); i++)
		if (X509_cmp(sk_X509_value(set, i), x) == 0)
			return true;
	return false;
}

/* -EINVAL when a certificate could chain to both roles. */
static int check_roles(const struct tlsconf_files *f, const STACK_OF(X509) *agent,
		       const STACK_OF(X509) *admin, char *err, size_t errlen)
{
	struct stat a, b;
	char subj[256];

	if (strcmp(f->agent_ca, f->admin_ca) == 0 ||
	    (stat(f->agent_ca, &a) == 0 && stat(f->admin_ca, &b) == 0 && a.st_dev == b.st_dev &&
	     a.st_ino == b.st_ino)) {
		snprintf(err, errlen, "--agent-ca %s and --admin-ca %s are the same file: an agent could "
			 "act as an administrator; give each role its own CA", f->agent_ca, f->admin_ca);
		return -EINVAL;
	}
	for (int i = 0; i < sk_X509_num(admin); i++) {
		X509 *x = sk_X509_value(admin, i);

		sslutil_name(X509_get_subject_name(x), subj, sizeof(subj));
		if (in_set(agent, x)) {
			snprintf(err, errlen, "--admin-ca %s: %s is also in --agent-ca %s: roles would be "
				 "ambiguous; give each role its own CA", f->admin_ca, subj, f->agent_ca);
			return -EINVAL;
		}
		for (int j = 0; j < sk_X509_num(agent); j++) {
			X509 *y = sk_X509_value(agent, j);

			if (X509_check_issued(y, x) == X509_V_OK || X509_check_issued(x, y) == X509_V_OK) {
				char other[256];

				sslutil_name(X509_get_subject_name(y), other, sizeof(other));
				snprintf(err, errlen, "--admin-ca %s (%s) and --agent-ca %s (%s): one CA issued "
					 "the other, so certificates would chain to both roles", f->admin_ca,
					 subj, f->agent_ca, other);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* Warnings: CAs no CRL covers, CRLs past their next update. */
static void crl_warnings(const STACK_OF(X509) *agent, const STACK_OF(X509) *admin,
			 const STACK_OF(X509_CRL) *crls, char *warn, size_t warnlen)
{
	const STACK_OF(X509) *sets[2] = { agent, admin };
	size_t off = 0;
	char subj[256];

	for (int s = 0; s < 2; s++) {
		for (int i = 0; i < sk_X509_num(sets[s]); i++) {
			X509 *ca = sk_X509_value(sets[s], i);
			bool covered = false;

			for (int j = 0; j < sk_X509_CRL_num(crls) && !covered; j++) {
				X509_CRL *crl = sk_X509_CRL_value(crls, j);

				covered = X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) == 0 &&
					  X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1;
			}
			ERR_clear_error();
			if (covered || off >= warnlen)
				continue;
			sslutil_name(X509_get_subject_name(ca), subj, sizeof(subj));
			off += (size_t)snprintf(warn + off, warnlen - off,
						"%sno CRL covers %s CA %s: certificates it issued are refused",
						off ? "; " : "", s ? "admin" : "agent", subj);
		}
	}
	for (int j = 0; j < sk_X509_CRL_num(crls); j++) {
		X509_CRL *crl = sk_X509_CRL_value(crls, j);
		const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);

		if (!next || X509_cmp_current_time(next) > 0 || off >= warnlen)
			continue;
		sslutil_name(X509_CRL_get_issuer(crl), subj, sizeof(subj));
		off += (size_t)snprintf(warn + off, warnlen - off,
					"%sthe CRL of %s is past its next update: certificates it covers "
					"are refused until it is renewed", off ? "; " : "", subj);
	}
}

/* ---------------------------------------------------------------------
 * Verification.
 */

/*
 * The role of a verified chain (chain[0] the client's certificate): the
 * role whose anchors it reaches.  -EPERM with why when it reaches neither
 * or both, or the certificate is not for client authentication (no
 * clientAuth extended key usage, or a CA certificate).
 */
static int classify(const struct tlsconf *tc, STACK_OF(X509) *chain, enum cp_role *ret, char *why,
		    size_t whylen)
{
	X509 *leaf = sk_X509_value(chain, 0);
	bool agent = false, admin = false;
	char subj[256];

	sslutil_name(X509_get_subject_name(leaf), subj, sizeof(subj));
	if (!(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) ||
	    !(X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT)) {
		snprintf(why, whylen, "certificate %s has no clientAuth extended key usage", subj);
		return -EPERM;
	}
	if (X509_get_extension_flags(leaf) & EXFLAG_CA) {
		snprintf(why, whylen, "certificate %s is a CA certificate, not a client's", subj);
		return -EPERM;
	}
	for (int i = 1; i < sk_X509_num(chain); i++) {
		agent |= in_set(tc->agent, sk_X509_value(chain, i));
		admin |= in_set(tc->admin, sk_X509_value(chain, i));
	}
	if (agent == admin) {
		snprintf(why, whylen, "certificate %s chains to %s", subj,
			 agent ? "both --agent-ca and --admin-ca: its role is ambiguous"
			       : "neither --agent-ca nor --admin-ca");
		return -EPERM;
	}
	*ret = agent ? CP_ROLE_AGENT : CP_ROLE_ADMIN;
	return 0;
}

static time_t asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return timegm(&tm);
}


/* Printable ASCII only: certificate text ends up in logs and JSON. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

static void fill_sans(X509 *x, char *buf, size_t len)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && off < len; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const char *kind = NULL;
		char val[256] = "";

		switch (g->type) {
		case GEN_DNS:
		case GEN_URI:
		case GEN_EMAIL: {
			const ASN1_IA5STRING *s = g->type == GEN_DNS ? g->d.dNSName
						  : g->type == GEN_URI ? g->d.uniformResourceIdentifier
						  : g->d.rfc822Name;
			int n = ASN1_STRING_length(s);

			kind = g->type == GEN_DNS ? "DNS" : g->type == GEN_URI ? "URI" : "email";
			if (n > (int)sizeof(val) - 1)
				n = (int)sizeof(val) - 1;
			memcpy(val, ASN1_STRING_get0_data(s), (size_t)n);
			val[n] = '\0';
			break;
		}
		case GEN_IPADD: {
			int n = ASN1_STRING_length(g->d.iPAddress);

			kind = "IP";
			if (n == 4 || n == 16)
				inet_ntop(n == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(g->d.iPAddress),
					  val, sizeof(val));
			break;
		}
		default:
			continue;
		}
		/* A NUL inside a name would cut it short; what is left still reads. */
		off += (size_t)snprintf(buf + off, len - off, "%s%s:%s", off ? ", " : "", kind, val);
	}
	GENERAL_NAMES_free(gens);
	sanitize(buf);
}

static void fill_identity(X509 *x, enum cp_role role, struct cp_identity *id)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	BIO *b;
	int r;

	memset(id, 0, sizeof(*id));
	id->role = role;
	sslutil_name(X509_get_subject_name(x), id->subject, sizeof(id->subject));
	sanitize(id->subject);
	fill_sans(x, id->sans, sizeof(id->sans));
	b = BIO_new(BIO_s_mem());
	if (b && i2a_ASN1_INTEGER(b, X509_get0_serialNumber(x)) > 0) {
		r = BIO_read(b, id->serial, sizeof(id->serial) - 1);
		id->serial[r > 0 ? r : 0] = '\0';
	}
	BIO_free(b);
	if (X509_digest(x, EVP_sha256(), md, &mdlen) && mdlen == 32)
		hexdigit_encode(md, mdlen, id->fingerprint);
	id->not_before = asn1_time(X509_get0_notBefore(x));
	id->not_after = asn1_time(X509_get0_notAfter(x));
	ERR_clear_error();
}

static int verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tlsconn *c = tlsconf_conn(ssl);
	const struct tlsconf *tc = ssl ? ctx_conf(SSL_get_SSL_CTX(ssl)) : NULL;
	X509 *cur = X509_STORE_CTX_get_current_cert(xs);
	int depth = X509_STORE_CTX_get_error_depth(xs);
	enum cp_role role;
	char subj[256] = "", issuer[256] = "", why[300];

	if (!c || !tc)
		return 0;
	if (!ok) {
		int e = X509_STORE_CTX_get_error(xs);

		if (cur) {
			sslutil_name(X509_get_subject_name(cur), subj, sizeof(subj));
			sslutil_name(X509_get_issuer_name(cur), issuer, sizeof(issuer));
		}
		if (!c->refusal[0])
			snprintf(c->refusal, sizeof(c->refusal),
				 "client certificate refused: %s (subject %.150s, issuer %.150s, depth %d)",
				 X509_verify_cert_error_string(e), subj[0] ? subj : "?",
				 issuer[0] ? issuer : "?", depth);
		return 0;
	}
	if (depth != 0)
		return 1;
	if (classify(tc, X509_STORE_CTX_get0_chain(xs), &role, why, sizeof(why))) {
		if (!c->refusal[0])
			snprintf(c->refusal, sizeof(c->refusal), "client certificate refused: %s", why);
		X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	fill_identity(X509_STORE_CTX_get0_cert(xs), role, &c->id);
	c->generation = tc->generation;
	return 1;
}

static void peer_text(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char a[INET6_ADDRSTRLEN] = "?";

	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0) {
		snprintf(buf, len, "?");
		return;
	}
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(s4->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		snprintf(buf, len, "?");
	}
}

/* OpenSSL 3.0 has no text for TLS 1.3's certificate_required (RFC 8446, 116). */
static const char *alert_text(int ret)
{
	return (ret & 0xff) == 116 ? "certificate required" : SSL_alert_desc_string_long(ret);
}

static void info_cb(const SSL *ssl, int where, int ret)
{
	struct tlsconn *c = tlsconf_conn(ssl);

	if (!c)
		return;
	if ((where & (SSL_CB_HANDSHAKE_START | SSL_CB_ACCEPT_LOOP)) && !c->peer[0])
		peer_text(SSL_get_fd(ssl), c->peer, sizeof(c->peer));
	/* Errors left by other work on this thread must not pass for this handshake's. */
	if (where & SSL_CB_HANDSHAKE_START)
		ERR_clear_error();
	if (where & SSL_CB_HANDSHAKE_DONE) {
		c->handshake_done = true;
		c->verified = c->id.role != CP_ROLE_NONE && SSL_get_verify_result(ssl) == X509_V_OK &&
			      SSL_get0_peer_certificate(ssl) != NULL;
	}
	/*
	 * A handshake that stopped on an error without an alert (plain HTTP,
	 * garbage).  One that waits for the network leaves no error: the queue
	 * is clean here because it is emptied at the start of the handshake
	 * and after each request vigil-cp handles (httpd.c).
	 */
	if ((where & SSL_CB_EXIT) && ret <= 0 && !c->handshake_done && !c->refusal[0]) {
		unsigned long e = ERR_peek_last_error();
		const char *reason = e ? ERR_reason_error_string(e) : NULL;

		if (reason)
			snprintf(c->refusal, sizeof(c->refusal), "%s", reason);
	}
	/* A fatal alert during the handshake: ours says why we refused, the peer's why it did. */
	if ((where & SSL_CB_ALERT) && (ret >> 8) == SSL3_AL_FATAL && !c->handshake_done &&
	    !c->refusal[0]) {
		if (where & SSL_CB_WRITE) {
			unsigned long e = ERR_peek_last_error();
			const char *reason = e ? ERR_reason_error_string(e) : NULL;

			snprintf(c->refusal, sizeof(c->refusal), "%s (alert sent: %s)",
				 reason ? reason : "refused", alert_text(ret));
		} else {
			snprintf(c->refusal, sizeof(c->refusal), "the client gave up: alert %s", alert_text(ret));
		}
	}
}

/* ---------------------------------------------------------------------
 * The context.
 */

int tlsconf_new(const struct tlsconf_files *f, unsigned generation, SSL_CTX **ret_ctx, char *err,
		size_t errlen, char *warn, size_t warnlen)
{
	STACK_OF(X509) *chain = NULL, *agent = NULL, *admin = NULL;
	STACK_OF(X509_CRL) *crls = NULL;
	STACK_OF(X509_NAME) *names = NULL;
	struct tlsconf *tc = NULL;
	X509_STORE *store = NULL;
	EVP_PKEY *key = NULL;
	SSL_CTX *ctx = NULL;
	unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN;
	static const unsigned char sid_ctx[] = "vigil-cp";
	char why[200];
	int r;

	if (warn && warnlen)
		warn[0] = '\0';
	r = ex_indexes();
	if (r) {
		snprintf(err, errlen, "OpenSSL: cannot register connection data");
		return r;
	}
	r = pemfile_certs("--cert", f->cert, false, &chain, err, errlen);
	if (r)
		goto out;
	r = pemfile_key("--key", f->key, &key, err, errlen);
	if (r)
		goto out;
	r = pemfile_certs("--agent-ca", f->agent_ca, true, &agent, err, errlen);
	if (r)
		goto out;
	r = pemfile_certs("--admin-ca", f->admin_ca, true, &admin, err, errlen);
	if (r)
		goto out;
	r = check_roles(f, agent, admin, err, errlen);
	if (r)
		goto out;
	if (f->crl) {
		r = load_crls(f->crl, &crls, err, errlen);
		if (r)
			goto out;
		flags |= X509_V_FLAG_CRL_CHECK;
	}

	r = -EIO;
	ctx = SSL_CTX_new(TLS_server_method());
	store = X509_STORE_new();
	names = sk_X509_NAME_new_null();
	tc = calloc(1, sizeof(*tc));
	if (!ctx || !store || !names || !tc) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) || !SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) ||
	    !SSL_CTX_set1_groups_list(ctx, TLS_GROUPS)) {
		snprintf(err, errlen, "OpenSSL refused the protocol settings: %s", sslutil_reason(why, sizeof(why)));
		goto out;
	}
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
				 SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);

	if (SSL_CTX_use_certificate(ctx, sk_X509_value(chain, 0)) != 1) {
		snprintf(err, errlen, "--cert %s: %s", f->cert, sslutil_reason(why, sizeof(why)));
		r = -EBADMSG;
		goto out;
	}
	for (int i = 1; i < sk_X509_num(chain); i++) {
		if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) != 1) {
			snprintf(err, errlen, "--cert %s: %s", f->cert, sslutil_reason(why, sizeof(why)));
			goto out;
		}
	}
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "--key %s does not match the certificate of --cert %s: %s", f->key,
			 f->cert, sslutil_reason(why, sizeof(why)));
		r = -EBADMSG;
		goto out;
	}

	/* Both roles' anchors in one store; the chain found decides the role. */
	for (int s = 0; s < 2; s++) {
		STACK_OF(X509) *set = s ? admin : agent;

		for (int i = 0; i < sk_X509_num(set); i++) {
			X509_NAME *n = X509_NAME_dup(X509_get_subject_name(sk_X509_value(set, i)));

			if (!X509_STORE_add_cert(store, sk_X509_value(set, i)) || !n ||
			    !sk_X509_NAME_push(names, n)) {
				X509_NAME_free(n);
				snprintf(err, errlen, "%s %s: %s", s ? "--admin-ca" : "--agent-ca",
					 s ? f->admin_ca : f->agent_ca, sslutil_reason(why, sizeof(why)));
				goto out;
			}
		}
	}
	for (int i = 0; i < sk_X509_CRL_num(crls); i++) {
		if (!X509_STORE_add_crl(store, sk_X509_CRL_value(crls, i))) {
			snprintf(err, errlen, "--crl %s: %s", f->crl, sslutil_reason(why, sizeof(why)));
			goto out;
		}
	}
	X509_STORE_set_flags(store, flags);
	X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), flags);
	SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	SSL_CTX_set_cert_store(ctx, store);
	store = NULL;
	SSL_CTX_set_client_CA_list(ctx, names);
	names = NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	SSL_CTX_set_verify_depth(ctx, VERIFY_DEPTH);
	SSL_CTX_set_info_callback(ctx, info_cb);

	if (warn && warnlen) {
		if (crls)
			crl_warnings(agent, admin, crls, warn, warnlen);
		struct stat st;

		if (stat(f->key, &st) == 0 && (st.st_mode & 077))
			snprintf(warn + strlen(warn), warnlen - strlen(warn),
				 "%s--key %s is readable by group or others (chmod 600 it)", warn[0] ? "; " : "",
				 f->key);
		if (X509_cmp_current_time(X509_get0_notAfter(sk_X509_value(chain, 0))) < 0)
			snprintf(warn + strlen(warn), warnlen - strlen(warn),
				 "%s--cert %s has expired: clients will refuse it", warn[0] ? "; " : "", f->cert);
	}
	tc->agent = agent;
	tc->admin = admin;
	tc->ncrl = crls ? sk_X509_CRL_num(crls) : 0;
	tc->generation = generation;
	if (!SSL_CTX_set_ex_data(ctx, ctx_idx, tc)) {
		snprintf(err, errlen, "OpenSSL: cannot attach the configuration");
		tc->agent = tc->admin = NULL;
		goto out;
	}
	agent = admin = NULL;
	tc = NULL;
	*ret_ctx = ctx;
	ctx = NULL;
	r = 0;
out:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_NAME_pop_free(names, X509_NAME_free);
	free(tc);
	EVP_PKEY_free(key);
	sk_X509_pop_free(chain, X509_free);
	sk_X509_pop_free(agent, X509_free);
	sk_X509_pop_free(admin, X509_free);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	return r;
}

unsigned tlsconf_generation(const SSL_CTX *ctx)
{
	const struct tlsconf *tc = ctx_conf(ctx);

	return tc ? tc->generation : 0;
}

void tlsconf_describe(const SSL_CTX *ctx, char *buf, size_t len)
{
	const struct tlsconf *tc = ctx_conf(ctx);

	if (!tc) {
		snprintf(buf, len, "?");
		return;
	}
	snprintf(buf, len, "%d agent CA certificate(s), %d admin CA certificate(s), %s", sk_X509_num(tc->agent),
		 sk_X509_num(tc->admin), tc->ncrl ? "CRL checked" : "no CRL");
	if (tc->ncrl)
		snprintf(buf + strlen(buf), len - strlen(buf), " (%d CRL(s))", tc->ncrl);
}

void tlsconf_note_peer(SSL *ssl)
{
	struct tlsconn *c = tlsconf_conn(ssl);

	if (c && !c->peer[0] && SSL_get_fd(ssl) >= 0)
		peer_text(SSL_get_fd(ssl), c->peer, sizeof(c->peer));
}

SSL *tlsconf_ssl_new(SSL_CTX *ctx, struct tlsconn **ret_conn)
{
	struct tlsconn *c = calloc(1, sizeof(*c));
	SSL *ssl = c ? SSL_new(ctx) : NULL;

	if (!ssl || !SSL_set_ex_data(ssl, ssl_idx, c)) {
		SSL_free(ssl);
		free(c);
		return NULL;
	}
	*ret_conn = c;
	return ssl;
}

int tlsconf_reverify(SSL_CTX *ctx, SSL *ssl, struct cp_identity *ret, char *why, size_t whylen)
{
	const struct tlsconf *tc = ctx_conf(ctx);
	X509 *leaf = SSL_get0_peer_certificate(ssl);
	X509_STORE_CTX *xs = NULL;
	enum cp_role role;
	char subj[256] = "";
	int r = -EPERM;

	if (!tc || !leaf) {
		snprintf(why, whylen, "no client certificate");
		return -EPERM;
	}
	xs = X509_STORE_CTX_new();
	if (!xs || !X509_STORE_CTX_init(xs, SSL_CTX_get_cert_store(ctx), leaf, SSL_get_peer_cert_chain(ssl))) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(xs), SSL_CTX_get0_param(ctx));
	X509_STORE_CTX_set_purpose(xs, X509_PURPOSE_SSL_CLIENT);
	if (X509_verify_cert(xs) != 1) {
		X509 *cur = X509_STORE_CTX_get_current_cert(xs);

		sslutil_name(X509_get_subject_name(cur ? cur : leaf), subj, sizeof(subj));
		snprintf(why, whylen, "client certificate refused under the reloaded configuration: %s "
			 "(subject %s, depth %d)", X509_verify_cert_error_string(X509_STORE_CTX_get_error(xs)),
			 subj, X509_STORE_CTX_get_error_depth(xs));
		goto out;
	}
	if (classify(tc, X509_STORE_CTX_get0_chain(xs), &role, why, whylen))
		goto out;
	fill_identity(leaf, role, ret);
	r = 0;
out:
	X509_STORE_CTX_free(xs);
	ERR_clear_error();
	return r;
}
