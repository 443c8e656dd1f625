/*
 * test_api.c - vigil-cp's admin API (control-plane/api.c) on a real SQLite
 * store in a temporary directory, with real signatures: a development CA
 * (devca_create) whose codeSigning signer signs policies, certificates made
 * here with the OpenSSL API (the policy-signing EKU, serverAuth only), and
 * another CA nobody trusts.
 *
 * What an administrator would notice: a signed, valid policy with a new
 * serial is stored and listed; everything else (unsigned, garbled,
 * untrusted, tampered, invalid, replayed, oversize, from a non-admin) is
 * refused with the documented status and a reason, and leaves the store as
 * it was; assignments need a stored serial; agents are listed and filtered
 * by selector.  Request bodies are placed so that they end at an unmapped
 * page: reading past them crashes the test.
 * With VIGIL_TEST_PG_URL set (tests/integration/store_pg.sh), every case
 * runs again on PostgreSQL, named pg_*.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "api.h"
#include "devca.h"
#include "guard.h"
#include "pgtest.h"
#include "policy.h"
#include "rollout.h"
#include "signing.h"
#include "store.h"

static char tmpdir[] = "/tmp/vigil-test-api.XXXXXX";
static char dir_a[128], dir_b[128];

struct fixture {
	char db[256];
	struct store *st;
	struct signing_trust *trust;
	struct api *api;
	int changes;			/* calls of the on-change hook */
};

static const struct cp_identity admin = {
	.role = CP_ROLE_ADMIN,
	.subject = "CN=alice,O=Example Ops",
	.serial = "01",
	.fingerprint = "00",
};

static const char good_yaml[] =
	"version: 1\n"
	"serial: %d\n"
	"defaults:\n"
	"  hz: {min: 1, max: 99, start: 49}\n"
	"tenants:\n"
	"  - name: web\n"
	"    cgroups: [\"/sys/fs/cgroup/unified/web*\"]\n"
	"    budget: {max_overhead_percent: 2.0}\n";

/* ------------------------------------------------------------------------
 * PKI and signatures. */

static void *load_pem(const char *dir, const char *name, bool key)
{
	char path[256];
	void *obj;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	assert_non_null(f);
	obj = key ? (void *)PEM_read_PrivateKey(f, NULL, NULL, NULL)
		  : (void *)PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(obj);
	return obj;
}

/* A certificate from dir's CA with this EKU, as dir/name.pem and dir/name.key. */
static void issue_cert(const char *dir, const char *name, const char *eku)
{
	X509 *ca = load_pem(dir, "ca.pem", false), *x = X509_new();
	EVP_PKEY *cakey = load_pem(dir, "ca.key", true), *key = EVP_EC_gen("P-256");
	X509_NAME *n = X509_NAME_new();
	X509_EXTENSION *e;
	X509V3_CTX ctx;
	static long serial = 1000;
	char path[256];
	FILE *f;

	assert_non_null(x);
	assert_non_null(key);
	assert_true(X509_set_version(x, X509_VERSION_3));
	assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++));
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	assert_true(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)name,
					       -1, -1, 0));
	assert_true(X509_set_subject_name(x, n));
	assert_true(X509_set_issuer_name(x, X509_get_subject_name(ca)));
	assert_true(X509_set_pubkey(x, key));
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_ext_key_usage, eku);
	assert_non_null(e);
	assert_true(X509_add_ext(x, e, -1));
	X509_EXTENSION_free(e);
	assert_true(X509_sign(x, cakey, EVP_sha256()) > 0);
	snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
	assert_non_null(f = fopen(path, "w"));
	assert_true(PEM_write_X509(f, x));
	fclose(f);
	snprintf(path, sizeof(path), "%s/%s.key", dir, name);
	assert_non_null(f = fopen(path, "w"));
	assert_true(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL));
	fclose(f);
	X509_NAME_free(n);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(cakey);
}

static int group_setup(void **state)
{
	char err[512];

	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(dir_a, sizeof(dir_a), "%s/a", tmpdir);
	snprintf(dir_b, sizeof(dir_b), "%s/b", tmpdir);
	if (devca_create(dir_a, "Policy A", 30, false, err, sizeof(err)) ||
	    devca_create(dir_b, "Other B", 30, false, err, sizeof(err))) {
		fprintf(stderr, "devca_create: %s\n", err);
		return -1;
	}
	issue_cert(dir_a, "policysigner", SIGNING_POLICY_EKU_OID);
	issue_cert(dir_a, "serverauth", "serverAuth");
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void on_change(void *arg)
{
	((struct fixture *)arg)->changes++;
}

/* The store at url (a new SQLite file when NULL) and the API on it. */
static int setup_store(void **state, const char *pg)
{
	static int n;
	struct fixture *f = calloc(1, sizeof(*f));
	char url[300], ca[256], err[512];

	assert_non_null(f);
	snprintf(f->db, sizeof(f->db), "%s/cp%d.db", tmpdir, n++);
	snprintf(url, sizeof(url), "sqlite:%s", f->db);
	if (store_open(pg ? pg : url, &f->st, err, sizeof(err)))
		fail_msg("store_open: %s", err);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir_a);
	if (signing_trust_load(ca, NULL, &f->trust, err, sizeof(err)))
		fail_msg("signing_trust_load: %s", err);
	assert_int_equal(api_new(f->st, f->trust, &f->api), 0);
	api_set_on_change(f->api, on_change, f);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_store(state, NULL);
}

/* The same cases on PostgreSQL (pgtest.h), each on an emptied database. */
static int setup_pg(void **state)
{
	pg_empty();
	return setup_store(state, pg_url());
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	api_free(f->api);
	store_close(f->st);
	signing_trust_free(f->trust);
	free(f);
	return 0;
}

static void sign_with(const char *dir, const char *name, const void *data, size_t len,
		      void **sig, size_t *sig_len)
{
	struct signing_key *k;
	char c[256], kp[256], err[512];

	snprintf(c, sizeof(c), "%s/%s.pem", dir, name);
	snprintf(kp, sizeof(kp), "%s/%s.key", dir, name);
	if (signing_key_load(c, kp, &k, err, sizeof(err)))
		fail_msg("signing_key_load: %s", err);
	if (signing_sign(k, data, len, sig, sig_len, err, sizeof(err)))
		fail_msg("signing_sign: %s", err);
	signing_key_free(k);
}

static char *b64(const void *buf, size_t len)
{
	char *s = malloc(4 * ((len + 2) / 3) + 1);

	assert_non_null(s);
	EVP_EncodeBlock((unsigned char *)s, buf, (int)len);
	return s;
}

/* {"yaml":..., "signature":...} from raw bytes (malloc'ed). */
static char *upload_body(const void *yaml, size_t yaml_len, const void *sig, size_t sig_len)
{
	char *y = b64(yaml, yaml_len), *s = b64(sig, sig_len), *body;
	json_t *j = json_pack("{s:s, s:s}", "yaml", y, "signature", s);

	body = json_dumps(j, JSON_COMPACT);
	assert_non_null(body);
	json_decref(j);
	free(y);
	free(s);
	return body;
}

/* ------------------------------------------------------------------------
 * Requests. */

struct reply {
	int status;
	json_t *j;		/* the body, parsed */
	char log[256];
};

static struct reply call_as(struct fixture *f, const struct cp_identity *id, const char *method,
			    const char *path, const char *query, const char *body, size_t len)
{
	struct api_reply r;
	struct reply out = { 0 };
	struct guarded g;
	json_error_t je;

	if (body)
		guard_copy(&g, body, len);
	assert_int_equal(api_handle(f->api, id, method, path, query,
				    body ? (const uint8_t *)g.data : NULL, body ? len : 0,
				    1700000000000, &r), 0);
	if (body)
		guard_free(&g);
	out.status = r.http_status;
	out.j = json_loadb(r.body, r.len, 0, &je);
	if (!out.j)
		fail_msg("reply is not JSON (%s): %.*s", je.text, (int)r.len, r.body);
	assert_true(json_is_object(out.j));
	/* Errors are one line. */
	if (r.http_status >= 400) {
		const char *e = json_string_value(json_object_get(out.j, "error"));

		assert_non_null(e);
		assert_null(strchr(e, '\n'));
		assert_true(r.log[0] != '\0');
	}
	memcpy(out.log, r.log, sizeof(out.log));
	free(r.body);
	return out;
}

static struct reply call(struct fixture *f, const char *method, const char *path, const char *query,
			 const char *body)
{
	return call_as(f, &admin, method, path, query, body, body ? strlen(body) : 0);
}

static const char *err_of(const struct reply *r)
{
	return json_string_value(json_object_get(r->j, "error"));
}

static void expect(struct reply r, int status, const char *needle)
{
	if (r.status != status || (needle && !strstr(err_of(&r) ?: "", needle))) {
		char *s = json_dumps(r.j, 0);

		fail_msg("status %d, expected %d with \"%s\": %s", r.status, status,
			 needle ? needle : "", s);
	}
	json_decref(r.j);
}

/* Upload yaml signed by dir/name; returns the reply. */
static struct reply upload_signed(struct fixture *f, const char *yaml, const char *dir,
				  const char *name)
{
	void *sig;
	size_t sig_len;
	char *body;
	struct reply r;

	sign_with(dir, name, yaml, strlen(yaml), &sig, &sig_len);
	body = upload_body(yaml, strlen(yaml), sig, sig_len);
	r = call(f, "POST", "/api/v1/policies", NULL, body);
	free(body);
	free(sig);
	return r;
}

static char *policy_text(int serial)
{
	char *s;

	assert_true(asprintf(&s, good_yaml, serial) > 0);
	return s;
}

static size_t n_policies(struct fixture *f)
{
	struct reply r = call(f, "GET", "/api/v1/policies", NULL, NULL);
	size_t n;

	assert_int_equal(r.status, 200);
	n = json_array_size(json_object_get(r.j, "policies"));
	json_decref(r.j);
	return n;
}

/* ------------------------------------------------------------------------
 * Tests. */

static void test_upload_good(void **state)
{
	struct fixture *f = *state;
	char *yaml = policy_text(5), sum[65];
	uint8_t md[32];
	struct reply r = upload_signed(f, yaml, dir_a, "signer");
	json_t *p;

	assert_int_equal(r.status, 201);
	assert_int_equal(json_integer_value(json_object_get(r.j, "serial")), 5);
	assert_non_null(strstr(json_string_value(json_object_get(r.j, "signer")),
			       "signed by CN=Policy A signer"));
	assert_true(EVP_Digest(yaml, strlen(yaml), md, NULL, EVP_sha256(), NULL));
	for (int i = 0; i < 32; i++)
		snprintf(sum + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(json_string_value(json_object_get(r.j, "sha256")), sum);
	assert_non_null(strstr(r.log, "CN=alice,O=Example Ops uploaded policy serial 5"));
	assert_int_equal(f->changes, 1);
	json_decref(r.j);

	/* Listed, with who uploaded it and when. */
	r = call(f, "GET", "/api/v1/policies", NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(json_object_get(r.j, "policies")), 1);
	p = json_array_get(json_object_get(r.j, "policies"), 0);
	assert_int_equal(json_integer_value(json_object_get(p, "serial")), 5);
	assert_string_equal(json_string_value(json_object_get(p, "uploaded_by")), admin.subject);
	assert_int_equal(json_integer_value(json_object_get(p, "uploaded_at")), 1700000000000);
	assert_int_equal(json_integer_value(json_object_get(p, "size")), strlen(yaml));
	assert_string_equal(json_string_value(json_object_get(p, "sha256")), sum);
	assert_null(json_object_get(p, "yaml"));
	json_decref(r.j);

	/* Shown with the exact bytes that were signed, and they still verify. */
	r = call(f, "GET", "/api/v1/policies/5", NULL, NULL);
	assert_int_equal(r.status, 200);
	{
		const char *y = json_string_value(json_object_get(r.j, "yaml"));
		const char *s = json_string_value(json_object_get(r.j, "signature"));
		unsigned char *yb = malloc(strlen(y)), *sb = malloc(strlen(s));
		int yl = EVP_DecodeBlock(yb, (const unsigned char *)y, (int)strlen(y));
		int sl = EVP_DecodeBlock(sb, (const unsigned char *)s, (int)strlen(s));

		/* DecodeBlock keeps the padding's zero bytes. */
		yl -= (int)(strlen(y) > 0 && y[strlen(y) - 1] == '=') +
		      (int)(strlen(y) > 1 && y[strlen(y) - 2] == '=');
		sl -= (int)(s[strlen(s) - 1] == '=') + (int)(s[strlen(s) - 2] == '=');
		assert_int_equal(yl, strlen(yaml));
		assert_memory_equal(yb, yaml, strlen(yaml));
		assert_int_equal(signing_verify_policy(f->trust, yb, (size_t)yl, sb, (size_t)sl, NULL, 0),
				 SIGNING_OK);
		free(yb);
		free(sb);
	}
	json_decref(r.j);
	expect(call(f, "GET", "/api/v1/policies/6", NULL, NULL), 404, "no policy with serial 6");
	expect(call(f, "GET", "/api/v1/policies/x", NULL, NULL), 400, "positive decimal");
	free(yaml);
}

/* The policy-signing EKU is enough for a policy; serverAuth is not. */
static void test_upload_policy_eku(void **state)
{
	struct fixture *f = *state;
	char *y1 = policy_text(1), *y2 = policy_text(2);
	struct reply r = upload_signed(f, y1, dir_a, "policysigner");

	assert_int_equal(r.status, 201);
	assert_non_null(strstr(json_string_value(json_object_get(r.j, "signer")), "policysigner"));
	json_decref(r.j);
	r = upload_signed(f, y2, dir_a, "serverauth");
	assert_int_equal(r.status, 422);
	assert_string_equal(json_string_value(json_object_get(r.j, "reason")), "bad-eku");
	assert_non_null(strstr(err_of(&r), "policy signature: bad-eku: "));
	assert_non_null(strstr(err_of(&r), SIGNING_POLICY_EKU_OID));
	json_decref(r.j);
	assert_int_equal(n_policies(f), 1);
	assert_int_equal(f->changes, 1);
	free(y1);
	free(y2);
}

static void test_unsigned_and_garbled(void **state)
{
	struct fixture *f = *state;
	char *yaml = policy_text(3), *y64 = b64(yaml, strlen(yaml)), *body;
	uint8_t junk[600];
	void *sig;
	size_t sig_len;
	struct reply r;

	/* No signature at all. */
	assert_true(asprintf(&body, "{\"yaml\":\"%s\"}", y64) > 0);
	expect(call(f, "POST", "/api/v1/policies", NULL, body), 400, "\"signature\"");
	free(body);
	assert_true(asprintf(&body, "{\"yaml\":\"%s\",\"signature\":\"\"}", y64) > 0);
	expect(call(f, "POST", "/api/v1/policies", NULL, body), 400, "\"signature\" is empty");
	free(body);
	/* A signature that is not base64. */
	assert_true(asprintf(&body, "{\"yaml\":\"%s\",\"signature\":\"MII*\"}", y64) > 0);
	expect(call(f, "POST", "/api/v1/policies", NULL, body), 400, "not base64");
	free(body);
	/* Random bytes. */
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 131 + 7);
	body = upload_body(yaml, strlen(yaml), junk, sizeof(junk));
	r = call(f, "POST", "/api/v1/policies", NULL, body);
	assert_int_equal(r.status, 422);
	assert_string_equal(json_string_value(json_object_get(r.j, "reason")), "malformed-signature");
	assert_non_null(strstr(err_of(&r), "policy signature: malformed-signature"));
	json_decref(r.j);
	free(body);
	/* A real signature cut short, and one with a byte flipped at its end. */
	sign_with(dir_a, "signer", yaml, strlen(yaml), &sig, &sig_len);
	body = upload_body(yaml, strlen(yaml), sig, sig_len - 10);
	expect(call(f, "POST", "/api/v1/policies", NULL, body), 422, "malformed-signature");
	free(body);
	((uint8_t *)sig)[sig_len - 3] ^= 0x40;
	body = upload_body(yaml, strlen(yaml), sig, sig_len);
	expect(call(f, "POST", "/api/v1/policies", NULL, body), 422, "policy signature: bad-signature");
	free(body);
	free(sig);
	assert_int_equal(n_policies(f), 0);
	assert_int_equal(f->changes, 0);
	free(y64);
	free(yaml);
}

static void test_untrusted(void **state)
{
	struct fixture *f = *state;
	char *yaml = policy_text(4);
	struct reply r = upload_signed(f, yaml, dir_b, "signer");

	assert_int_equal(r.status, 422);
	assert_string_equal(json_string_value(json_object_get(r.j, "reason")), "untrusted");
	assert_non_null(strstr(err_of(&r), "policy signature: untrusted: "));
	assert_non_null(strstr(err_of(&r), "Other B signer"));
	assert_non_null(strstr(r.log, "422"));
	assert_non_null(strstr(r.log, admin.subject));
	json_decref(r.j);
	assert_int_equal(n_policies(f), 0);

	/* No trust store loaded: nothing can verify. */
	api_set_trust(f->api, NULL);
	expect(upload_signed(f, yaml, dir_a, "signer"), 500, "no policy trust store");
	api_set_trust(f->api, f->trust);
	free(yaml);
}

/* Signed, then changed: a serial bumped, a tenant's budget raised, a byte appended. */
static void test_tampered(void **state)
{
	struct fixture *f = *state;
	char *yaml = policy_text(7), *body;
	void *sig;
	size_t sig_len, len = strlen(yaml);
	static const char *const edits[][2] = {
		{ "serial: 7", "serial: 8" },
		{ "max_overhead_percent: 2.0", "max_overhead_percent: 9.0" },
	};

	sign_with(dir_a, "signer", yaml, len, &sig, &sig_len);
	for (size_t i = 0; i < 2; i++) {
		char *t = strdup(yaml), *at = strstr(t, edits[i][0]);

		assert_non_null(at);
		memcpy(at, edits[i][1], strlen(edits[i][1]));
		body = upload_body(t, len, sig, sig_len);
		expect(call(f, "POST", "/api/v1/policies", NULL, body), 422,
		       "policy signature: digest-mismatch");
		free(body);
		free(t);
	}
	{
		char *t = malloc(len + 1);

		memcpy(t, yaml, len);
		t[len] = '\n';
		body = upload_body(t, len + 1, sig, sig_len);
		expect(call(f, "POST", "/api/v1/policies", NULL, body), 422, "digest-mismatch");
		free(body);
		free(t);
	}
	/* The untouched bytes still go through. */
	body = upload_body(yaml, len, sig, sig_len);
	expect(call(f, "POST", "/api/v1/policies", NULL, body), 201, NULL);
	free(body);
	free(sig);
	free(yaml);
	assert_int_equal(n_policies(f), 1);
}

/* A valid signature over an invalid policy: every problem, file:line:col. */
static void test_signed_invalid_yaml(void **state)
{
	static const char yaml[] = "version: 1\n"
				   "serial: 9\n"
				   "defaults:\n"
				   "  hz: {min: 0, max: 99}\n"
				   "tenants:\n"
				   "  - name: web\n"
				   "    cgroups: [relative/path]\n"
				   "    colour: blue\n";
	static const char *const want[] = {
		"policy.yaml:4:13: defaults.hz.min must be between 1 and 100000, got \"0\"",
		"policy.yaml:7:15: tenants[0].cgroups[0] \"relative/path\" must be an absolute path",
		"policy.yaml:8:5: unknown key \"colour\"",
	};
	struct fixture *f = *state;
	struct reply r = upload_signed(f, yaml, dir_a, "signer");
	json_t *errs = json_object_get(r.j, "errors");

	assert_int_equal(r.status, 422);
	assert_non_null(strstr(err_of(&r), "policy.yaml is not a valid policy: policy.yaml:4:13: "));
	assert_true(json_is_array(errs));
	if (json_array_size(errs) != 3)
		fail_msg("%s", json_dumps(errs, 0));
	for (size_t i = 0; i < 3; i++) {
		const char *e = json_string_value(json_array_get(errs, i));

		if (!e || strncmp(e, want[i], strlen(want[i])))
			fail_msg("error %zu: got %s, want %s...", i, e ? e : "(none)", want[i]);
	}
	json_decref(r.j);

	/* Signed and valid, but no serial: a signed policy must have one. */
	r = upload_signed(f, "version: 1\n", dir_a, "signer");
	expect(r, 422, "has no serial");
	/* A YAML syntax error. */
	expect(upload_signed(f, "version: 1\nserial: 10\ntenants: [\n", dir_a, "signer"), 422,
	       "policy.yaml:4:1: ");
	/* The server's hz ceiling is generous: 50000 Hz is for the agent to judge. */
	expect(upload_signed(f, "version: 1\nserial: 11\ndefaults: {hz: {max: 50000}}\n", dir_a,
			     "signer"), 201, NULL);
	assert_int_equal(n_policies(f), 1);
}

static void test_serial_forward(void **state)
{
	struct fixture *f = *state;
	char *y10 = policy_text(10), *y9 = policy_text(9), *y11 = policy_text(11);
	void *sig;
	size_t sig_len;
	char *body;
	struct reply r;

	expect(upload_signed(f, y10, dir_a, "signer"), 201, NULL);
	/* The same signed upload again (a replay). */
	sign_with(dir_a, "signer", y10, strlen(y10), &sig, &sig_len);
	body = upload_body(y10, strlen(y10), sig, sig_len);
	r = call(f, "POST", "/api/v1/policies", NULL, body);
	assert_int_equal(r.status, 409);
	assert_int_equal(json_integer_value(json_object_get(r.j, "max_serial")), 10);
	assert_non_null(strstr(err_of(&r), "serial 10 is not new"));
	json_decref(r.j);
	free(body);
	free(sig);
	/* An older one, properly signed. */
	expect(upload_signed(f, y9, dir_a, "signer"), 409, "serial 9 is not new");
	assert_int_equal(n_policies(f), 1);
	assert_int_equal(f->changes, 1);
	/* Forward again. */
	expect(upload_signed(f, y11, dir_a, "signer"), 201, NULL);
	assert_int_equal(n_policies(f), 2);
	/* The largest serial, and nothing after it. */
	expect(upload_signed(f, "version: 1\nserial: 9223372036854775807\n", dir_a, "signer"), 201,
	       NULL);
	expect(upload_signed(f, "version: 1\nserial: 9223372036854775807\n", dir_a, "signer"), 409,
	       NULL);
	free(y9);
	free(y10);
	free(y11);
}

static void test_not_admin(void **state)
{
	static const struct {
		const char *method, *path, *body;
	} reqs[] = {
		{ "GET", "/api/v1/agents", NULL },
		{ "GET", "/api/v1/agents/00000000000000000000000000000001", NULL },
		{ "GET", "/api/v1/policies", NULL },
		{ "POST", "/api/v1/policies", "{}" },
		{ "POST", "/api/v1/assignments", "{\"serial\":1,\"selector\":\"env=prod\"}" },
		{ "GET", "/api/v1/assignments", NULL },
		{ "GET", "/nowhere", NULL },
	};
	struct fixture *f = *state;
	struct cp_identity agent = admin, none = admin;
	char *yaml = policy_text(1), *body;
	void *sig;
	size_t sig_len;

	agent.role = CP_ROLE_AGENT;
	snprintf(agent.subject, sizeof(agent.subject), "CN=host1");
	none.role = CP_ROLE_NONE;
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		const char *b = reqs[i].body;
		size_t len = b ? strlen(b) : 0;

		expect(call_as(f, &agent, reqs[i].method, reqs[i].path, NULL, b, len), 403,
		       "administrator");
		expect(call_as(f, &none, reqs[i].method, reqs[i].path, NULL, b, len), 403, NULL);
		expect(call_as(f, NULL, reqs[i].method, reqs[i].path, NULL, b, len), 403, NULL);
	}
	/* Even a well-signed policy from an agent's connection is not stored. */
	sign_with(dir_a, "signer", yaml, strlen(yaml), &sig, &sig_len);
	body = upload_body(yaml, strlen(yaml), sig, sig_len);
	{
		struct reply r = call_as(f, &agent, "POST", "/api/v1/policies", NULL, body, strlen(body));

		assert_int_equal(r.status, 403);
		assert_non_null(strstr(r.log, "CN=host1"));
		json_decref(r.j);
	}
	assert_int_equal(n_policies(f), 0);
	assert_int_equal(f->changes, 0);
	free(body);
	free(sig);
	free(yaml);
}

static void test_bad_json(void **state)
{
	static const struct {
		const char *body, *needle;
	} cases[] = {
		{ "", "empty body" },
		{ "not json", "not JSON" },
		{ "{\"yaml\":", "not JSON" },
		{ "[1,2]", "must be a JSON object" },
		{ "\"yaml\"", "not JSON" },
		{ "{}", "\"yaml\"" },
		{ "{\"yaml\":42,\"signature\":\"AA==\"}", "\"yaml\"" },
		{ "{\"yaml\":\"AA==\",\"signature\":\"AA==\",\"serial\":3}", "unknown field \"serial\"" },
		{ "{\"yaml\":\"AA==\",\"yaml\":\"AA==\",\"signature\":\"AA==\"}", "duplicate" },
		{ "{\"yaml\":\"A\",\"signature\":\"AA==\"}", "\"yaml\" is not base64" },
		{ "{\"yaml\":\"AB==\",\"signature\":\"AA==\"}", "\"yaml\" is not base64" },
		{ "{\"yaml\":\"AA==\\n\",\"signature\":\"AA==\"}", "\"yaml\" is not base64" },
		{ "{\"yaml\":\"AA=A\",\"signature\":\"AA==\"}", "\"yaml\" is not base64" },
		/* A NUL inside a string could cut it short: jansson refuses it. */
		{ "{\"yaml\":\"AA\\u0000AA\",\"signature\":\"AA==\"}", "not JSON" },
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct reply r = call(f, "POST", "/api/v1/policies", NULL, cases[i].body);

		if (r.status != 400 || !strstr(err_of(&r), cases[i].needle))
			fail_msg("case %zu (%s): %d %s", i, cases[i].body, r.status, err_of(&r));
		json_decref(r.j);
	}
	/* A body with a NUL inside is not JSON either. */
	expect(call_as(f, &admin, "POST", "/api/v1/policies", NULL, "{}\0{}", 5), 400, "not JSON");
	/* Assignments check their fields the same way. */
	expect(call(f, "POST", "/api/v1/assignments", NULL, "{\"serial\":\"1\",\"selector\":\"a=b\"}"),
	       400, "\"serial\"");
	expect(call(f, "POST", "/api/v1/assignments", NULL, "{\"serial\":0,\"selector\":\"a=b\"}"), 400,
	       "\"serial\"");
	expect(call(f, "POST", "/api/v1/assignments", NULL, "{\"serial\":1.5,\"selector\":\"a=b\"}"),
	       400, "\"serial\"");
	expect(call(f, "POST", "/api/v1/assignments", NULL, "{\"serial\":1}"), 400, "\"selector\"");
	expect(call(f, "POST", "/api/v1/assignments", NULL, "{\"serial\":1,\"selector\":\"\"}"), 400,
	       "selector");
	expect(call(f, "POST", "/api/v1/assignments", NULL,
		    "{\"serial\":1,\"selector\":\"a=b\",\"by\":\"x\"}"),
	       400, "unknown field");
	assert_int_equal(n_policies(f), 0);
}

static void test_oversize(void **state)
{
	struct fixture *f = *state;
	size_t n = API_MAX_BODY + 1, ylen = POLICY_MAX_SIZE + 1;
	char *big = malloc(n + 1), *yaml, *body;
	uint8_t *sig;

	/* The body itself. */
	assert_non_null(big);
	memset(big, ' ', n);
	big[n] = '\0';
	expect(call(f, "POST", "/api/v1/policies", NULL, big), 413, "larger than");
	free(big);
	/* A YAML one byte over the policy limit (a comment is valid YAML). */
	yaml = malloc(ylen);
	assert_non_null(yaml);
	memset(yaml, '#', ylen);
	body = upload_body(yaml, ylen, "x", 1);
	expect(call(f, "POST", "/api/v1/policies", NULL, body), 413, "yaml is larger than 1048576");
	free(body);
	/* Exactly at the limit: decoded, then refused for its signature. */
	body = upload_body(yaml, ylen - 1, "x", 1);
	expect(call(f, "POST", "/api/v1/policies", NULL, body), 422, "malformed-signature");
	free(body);
	free(yaml);
	/* A signature over its limit. */
	sig = calloc(1, SIGNING_MAX_SIG_BYTES + 1);
	assert_non_null(sig);
	body = upload_body("version: 1\n", 11, sig, SIGNING_MAX_SIG_BYTES + 1);
	expect(call(f, "POST", "/api/v1/policies", NULL, body), 413, "signature is larger than");
	free(body);
	free(sig);
	assert_int_equal(n_policies(f), 0);
}

static void test_assign(void **state)
{
	struct fixture *f = *state;
	char *yaml = policy_text(3);
	struct reply r;
	json_t *a;

	expect(call(f, "POST", "/api/v1/assignments", NULL, "{\"serial\":3,\"selector\":\"env=prod\"}"),
	       404, "no policy with serial 3");
	assert_int_equal(f->changes, 0);
	expect(upload_signed(f, yaml, dir_a, "signer"), 201, NULL);
	r = call(f, "POST", "/api/v1/assignments", NULL,
		 "{\"serial\":3,\"selector\":\"env=prod,vigil.tenant-set=web\"}");
	assert_int_equal(r.status, 201);
	assert_int_equal(json_integer_value(json_object_get(r.j, "serial")), 3);
	assert_string_equal(json_string_value(json_object_get(r.j, "selector")),
			    "env=prod,vigil.tenant-set=web");
	assert_true(json_integer_value(json_object_get(r.j, "id")) > 0);
	assert_non_null(strstr(r.log, "assigned policy serial 3 to env=prod,vigil.tenant-set=web"));
	json_decref(r.j);
	assert_int_equal(f->changes, 2);
	/* Bad selectors are refused before the store sees them. */
	expect(call(f, "POST", "/api/v1/assignments", NULL, "{\"serial\":3,\"selector\":\"env\"}"),
	       400, "selector: ");
	expect(call(f, "POST", "/api/v1/assignments", NULL,
		    "{\"serial\":3,\"selector\":\"a=1,a=2\"}"),
	       400, "selector: ");
	expect(call(f, "POST", "/api/v1/assignments", NULL, "{\"serial\":4,\"selector\":\"a=1\"}"),
	       404, NULL);
	r = call(f, "GET", "/api/v1/assignments", NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(json_object_get(r.j, "assignments")), 1);
	a = json_array_get(json_object_get(r.j, "assignments"), 0);
	assert_string_equal(json_string_value(json_object_get(a, "assigned_by")), admin.subject);
	assert_int_equal(json_integer_value(json_object_get(a, "assigned_at")), 1700000000000);
	assert_int_equal(json_integer_value(json_object_get(a, "serial")), 3);
	json_decref(r.j);
	assert_int_equal(f->changes, 2);
	free(yaml);
}

static void put_agent(struct fixture *f, unsigned n, const char *desc)
{
	struct store_agent a = { 0 };
	char subj[64];

	memset(a.uid, 0, STORE_UID_LEN);
	a.uid[0] = 0xab;
	a.uid[15] = (uint8_t)n;
	snprintf(subj, sizeof(subj), "CN=host%u", n);
	a.cert_subject = subj;
	a.cert_sans = "DNS:host.example";
	a.cert_serial = "0A";
	a.cert_fingerprint = "ff";
	a.description_json = (char *)(uintptr_t)desc;
	a.first_seen = 1000;
	a.last_seen = 2000 + n;
	a.healthy = n % 2 ? 1 : -1;
	a.applied_serial = n;
	a.remote_config_status = 3;
	a.last_error = n == 2 ? "policy signature: untrusted" : NULL;
	assert_int_equal(store_agent_put(f->st, &a), 0);
}

static size_t n_agents(struct fixture *f, const char *query, int want_status)
{
	struct reply r = call(f, "GET", "/api/v1/agents", query, NULL);
	size_t n;

	if (r.status != want_status)
		fail_msg("?%s: %d %s", query ? query : "", r.status, err_of(&r) ?: "");
	n = json_array_size(json_object_get(r.j, "agents"));
	json_decref(r.j);
	return n;
}

static void test_agents(void **state)
{
	struct fixture *f = *state;
	char *yaml = policy_text(4);
	struct reply r;
	json_t *ag;

	assert_int_equal(n_agents(f, NULL, 200), 0);
	put_agent(f, 1, "{\"identifying\":{\"host.name\":\"h1\"},\"non_identifying\":{\"env\":\"prod\"}}");
	put_agent(f, 2, "{\"identifying\":{\"host.name\":\"h2\"},\"non_identifying\":{\"env\":\"dev\"}}");
	put_agent(f, 3, "{\"identifying\":{\"host.name\":\"h 3\"},\"non_identifying\":{\"env\":\"prod\","
			"\"vigil.tenant-set\":\"web\"}}");
	put_agent(f, 4, NULL);

	assert_int_equal(n_agents(f, NULL, 200), 4);
	assert_int_equal(n_agents(f, "", 200), 4);
	assert_int_equal(n_agents(f, "selector=env=prod", 200), 2);
	assert_int_equal(n_agents(f, "selector=env%3Dprod%2Cvigil.tenant-set%3Dweb", 200), 1);
	assert_int_equal(n_agents(f, "selector=host.name=h%203", 200), 1);
	assert_int_equal(n_agents(f, "selector=host.name=h2", 200), 1);
	assert_int_equal(n_agents(f, "selector=env=staging", 200), 0);
	/* Bad filters are refused, not ignored (which would list every agent). */
	assert_int_equal(n_agents(f, "selector=env", 400), 0);
	assert_int_equal(n_agents(f, "selector=", 400), 0);
	assert_int_equal(n_agents(f, "selector=a%3", 400), 0);
	assert_int_equal(n_agents(f, "selector=a%00=b", 400), 0);
	assert_int_equal(n_agents(f, "env=prod", 400), 0);
	assert_int_equal(n_agents(f, "selector=env=prod&selector=env=dev", 400), 0);

	/* Their details, and what the newest matching assignment gives them. */
	expect(upload_signed(f, yaml, dir_a, "signer"), 201, NULL);
	expect(call(f, "POST", "/api/v1/assignments", NULL, "{\"serial\":4,\"selector\":\"env=prod\"}"),
	       201, NULL);
	r = call(f, "GET", "/api/v1/agents", "selector=env=prod", NULL);
	assert_int_equal(r.status, 200);
	ag = json_array_get(json_object_get(r.j, "agents"), 0);
	assert_string_equal(json_string_value(json_object_get(ag, "uid")),
			    "ab000000000000000000000000000001");
	assert_string_equal(json_string_value(json_object_get(ag, "uuid")),
			    "ab000000-0000-0000-0000-000000000001");
	assert_string_equal(json_string_value(json_object_get(json_object_get(ag, "certificate"),
								  "subject")), "CN=host1");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(
				    ag, "description"), "identifying"), "host.name")), "h1");
	assert_true(json_is_true(json_object_get(ag, "healthy")));
	assert_int_equal(json_integer_value(json_object_get(ag, "assigned_serial")), 4);
	assert_int_equal(json_integer_value(json_object_get(ag, "applied_serial")), 1);
	assert_string_equal(json_string_value(json_object_get(ag, "remote_config_status")), "FAILED");
	assert_int_equal(json_integer_value(json_object_get(ag, "last_seen")), 2001);
	json_decref(r.j);

	r = call(f, "GET", "/api/v1/agents/AB000000-0000-0000-0000-000000000002", NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_string_value(json_object_get(r.j, "last_error")),
			    "policy signature: untrusted");
	assert_int_equal(json_integer_value(json_object_get(r.j, "assigned_serial")), 0);
	assert_true(json_is_null(json_object_get(r.j, "healthy")));
	json_decref(r.j);
	r = call(f, "GET", "/api/v1/agents/ab000000000000000000000000000004", NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_true(json_is_null(json_object_get(r.j, "description")));
	json_decref(r.j);
	expect(call(f, "GET", "/api/v1/agents/ab000000000000000000000000000005", NULL, NULL), 404,
	       "no agent");
	expect(call(f, "GET", "/api/v1/agents/ab00000000000000000000000000000", NULL, NULL), 400,
	       "32 hex digits");
	expect(call(f, "GET", "/api/v1/agents/ab000000000000000000000000000g04", NULL, NULL), 400, NULL);
	expect(call(f, "GET", "/api/v1/agents/ab000000+0000-0000-0000-000000000002", NULL, NULL), 400,
	       NULL);
	expect(call(f, "GET", "/api/v1/agents/ab000000000000000000000000000004/x", NULL, NULL), 404,
	       NULL);
	free(yaml);
}

static void test_routes(void **state)
{
	struct fixture *f = *state;
	struct reply r;

	expect(call(f, "GET", "/api/v1/", NULL, NULL), 404, "no such resource");
	expect(call(f, "GET", "/api/v2/agents", NULL, NULL), 404, NULL);
	expect(call(f, "GET", "/v1/opamp", NULL, NULL), 404, NULL);
	expect(call(f, "GET", "/api/v1/agentsx", NULL, NULL), 404, NULL);
	r = call(f, "DELETE", "/api/v1/policies", NULL, NULL);
	assert_int_equal(r.status, 405);
	assert_string_equal(json_string_value(json_object_get(r.j, "allow")), "GET, POST");
	json_decref(r.j);
	expect(call(f, "POST", "/api/v1/agents", NULL, "{}"), 405, "allowed: GET");
	expect(call(f, "PUT", "/api/v1/assignments", NULL, "{}"), 405, NULL);
	expect(call(f, "GET", "/api/v1/policies", "x=1", NULL), 400, "no query");
	/* Refusals leave a log line naming who asked. */
	r = call(f, "GET", "/api/v1/nope", NULL, NULL);
	assert_non_null(strstr(r.log, admin.subject));
	json_decref(r.j);
	api_free(NULL);
}

/*
 * /api/v1/rollouts: start (defaults filled, unknown fields and bad stages
 * refused, 404/409 as documented), list, status with per-stage counts and
 * the failures, halt/resume/abort with 409 + "state" for a wrong state,
 * and 503 without an engine.  Each change calls the on-change hook.
 */
static void test_rollouts(void **state)
{
	struct fixture *f = *state;
	char *yaml = policy_text(5);
	struct rollout *ro;
	struct reply r;
	json_t *st;
	int changes;

	expect(call(f, "GET", "/api/v1/rollouts", NULL, NULL), 503, "rollouts are not enabled");
	assert_int_equal(rollout_new(f->st, &ro), 0);
	api_set_rollouts(f->api, ro);
	put_agent(f, 1, "{\"identifying\":{},\"non_identifying\":{\"env\":\"prod\"}}");
	put_agent(f, 2, "{\"identifying\":{},\"non_identifying\":{\"env\":\"prod\"}}");
	put_agent(f, 3, "{\"identifying\":{},\"non_identifying\":{\"env\":\"dev\"}}");
	expect(call(f, "POST", "/api/v1/rollouts", NULL, "{\"serial\":5,\"selector\":\"env=prod\",\"stages\":\"1\"}"),
	       404, "no policy with serial 5");
	expect(upload_signed(f, yaml, dir_a, "signer"), 201, NULL);
	expect(call(f, "POST", "/api/v1/rollouts", NULL,
		    "{\"serial\":5,\"selector\":\"env=prod\",\"stages\":\"1\",\"canary\":1}"),
	       400, "unknown field \"canary\"");
	expect(call(f, "POST", "/api/v1/rollouts", NULL, "{\"serial\":5,\"selector\":\"env=prod\",\"stages\":\"150%\"}"),
	       400, "stages: stage 1: 150% is over 100%");
	expect(call(f, "POST", "/api/v1/rollouts", NULL, "{\"serial\":5,\"selector\":\"env=prod\"}"), 400,
	       "\"stages\"");
	expect(call(f, "POST", "/api/v1/rollouts", NULL,
		    "{\"serial\":5,\"selector\":\"env=prod\",\"stages\":\"1\",\"bake_ms\":-1}"),
	       400, "non-negative");
	expect(call(f, "POST", "/api/v1/rollouts", NULL, "{\"serial\":5,\"selector\":\"env=qa\",\"stages\":\"1\"}"),
	       409, "no agent matches selector env=qa");
	changes = f->changes;
	r = call(f, "POST", "/api/v1/rollouts", NULL, "{\"serial\":5,\"selector\":\"env=prod\",\"stages\":\"1,100%\"}");
	assert_int_equal(r.status, 201);
	assert_int_equal(json_integer_value(json_object_get(r.j, "id")), 1);
	assert_string_equal(json_string_value(json_object_get(r.j, "state")), "running");
	assert_int_equal(json_integer_value(json_object_get(r.j, "bake_ms")), 300000);
	assert_int_equal(json_integer_value(json_object_get(r.j, "report_timeout_ms")), 600000);
	assert_int_equal(json_integer_value(json_object_get(r.j, "max_failures")), 0);
	assert_string_equal(json_string_value(json_object_get(r.j, "created_by")), admin.subject);
	assert_non_null(strstr(r.log, "started rollout 1 of policy serial 5"));
	json_decref(r.j);
	assert_int_equal(f->changes, changes + 1);
	r = call(f, "POST", "/api/v1/rollouts", NULL, "{\"serial\":5,\"selector\":\"env=prod\",\"stages\":\"1\"}");
	assert_int_equal(r.status, 409);
	assert_non_null(strstr(err_of(&r), "2 agents are already in a running or halted rollout: "
					   "ab000000000000000000000000000001 (rollout 1)"));
	json_decref(r.j);

	r = call(f, "GET", "/api/v1/rollouts/1", NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_integer_value(json_object_get(r.j, "member_count")), 2);
	assert_true(json_is_true(json_object_get(r.j, "covers_all")));
	st = json_object_get(r.j, "stage_status");
	assert_int_equal(json_array_size(st), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(st, 0), "status")), "running");
	assert_string_equal(json_string_value(json_object_get(json_array_get(st, 1), "status")), "waiting");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(st, 1), "size")), 2);
	assert_int_equal(json_array_size(json_object_get(r.j, "members")), 2);
	assert_int_equal(json_array_size(json_object_get(r.j, "failures")), 0);
	json_decref(r.j);
	r = call(f, "GET", "/api/v1/rollouts", NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(json_object_get(r.j, "rollouts")), 1);
	json_decref(r.j);

	/* A failure shows in the status with the agent and the reason. */
	{
		struct store_rollout_member_probe {
			uint8_t uid[STORE_UID_LEN];
		} p = { { 0xab, [15] = 1 } };
		struct cpevent ev = { .kind = CPEVENT_POLICY_FAILED, .at = 1700000000500, .serial = 5,
				      .detail = "bad yaml" };

		memcpy(ev.uid, p.uid, STORE_UID_LEN);
		assert_int_equal(rollout_event(ro, &ev), 0);
	}
	r = call(f, "GET", "/api/v1/rollouts/1", NULL, NULL);
	assert_int_equal(json_array_size(json_object_get(r.j, "failures")), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(r.j, "failures"), 0),
							       "reason")),
			    "policy failed: bad yaml");
	json_decref(r.j);

	expect(call(f, "POST", "/api/v1/rollouts/1/resume", NULL, NULL), 409, "cannot resume: rollout 1 is running");
	r = call(f, "POST", "/api/v1/rollouts/1/halt", NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_string_value(json_object_get(r.j, "state")), "halted");
	assert_string_equal(json_string_value(json_object_get(r.j, "reason")), "halted by CN=alice,O=Example Ops");
	json_decref(r.j);
	r = call(f, "POST", "/api/v1/rollouts/1/halt", NULL, "{}");
	assert_int_equal(r.status, 409);
	assert_string_equal(json_string_value(json_object_get(r.j, "state")), "halted");
	json_decref(r.j);
	expect(call(f, "POST", "/api/v1/rollouts/1/abort", NULL, "{\"why\":1}"), 400, "unknown field");
	expect(call(f, "POST", "/api/v1/rollouts/1/abort", NULL, NULL), 200, NULL);
	expect(call(f, "POST", "/api/v1/rollouts/1/resume", NULL, NULL), 409, "is aborted");
	expect(call(f, "POST", "/api/v1/rollouts/2/halt", NULL, NULL), 404, "no rollout 2");
	expect(call(f, "GET", "/api/v1/rollouts/2", NULL, NULL), 404, "no rollout 2");
	expect(call(f, "GET", "/api/v1/rollouts/x", NULL, NULL), 400, "rollout id");
	expect(call(f, "POST", "/api/v1/rollouts/1/restart", NULL, NULL), 404, NULL);
	expect(call(f, "GET", "/api/v1/rollouts/1/halt", NULL, NULL), 405, "allowed: POST");
	expect(call(f, "DELETE", "/api/v1/rollouts", NULL, NULL), 405, NULL);
	assert_int_equal(f->changes, changes + 3);
	api_set_rollouts(f->api, NULL);
	rollout_free(ro);
	free(yaml);
}

#define CASE(fn) { #fn, fn, setup, teardown, NULL }
#define PG_CASE(fn) { "pg_" #fn, fn, setup_pg, teardown, NULL }
#define ALL_CASES(C)                                                                                   \
	C(test_upload_good), C(test_upload_policy_eku), C(test_unsigned_and_garbled), C(test_untrusted), \
	C(test_tampered), C(test_signed_invalid_yaml), C(test_serial_forward), C(test_not_admin),        \
	C(test_bad_json), C(test_oversize), C(test_assign), C(test_agents), C(test_routes),            \
	C(test_rollouts)

int main(void)
{
	const struct CMUnitTest sqlite_tests[] = { ALL_CASES(CASE) };
	const struct CMUnitTest pg_tests[] = { ALL_CASES(PG_CASE) };
	return pg_run_groups("test_api", sqlite_tests, pg_tests, group_setup, group_teardown);
}
