/*
 * test_checkpoint.c - signed checkpoints: a real checkpoint of
 * sum.golang.org verifies with Go's published key (so the format, the key
 * id and the signature are the ones other tools read); ours round-trip;
 * a changed size, root, origin or signature, another key, and every
 * malformed shape are refused with a reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "checkpoint.h"

/*
 * A checkpoint signed by sum.golang.org, and its key as Go publishes it:
 * "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
 * (GOSUMDB's default; the base64 is 0x01 || the Ed25519 public key).
 */
static const char go_note[] = "go.sum database tree\n65664258\nWVVNVD2qx+fTq31zkj6UAqxT5X6HvGphGM+o8Thnbsg=\n\n"
			      "\xe2\x80\x94 sum.golang.org Az3grligJmgX7KGyGPKybykNTh3VgsbLvUuvOwrM5zLVlulmFp2wd"
			      "vbxOw74/gcNxURShXEpb7RXcs3+BYflYN+w0gQ=\n";
static const uint8_t go_pub[32] = { 0xce, 0x33, 0x72, 0xd7, 0x5a, 0xd1, 0xee, 0x5e, 0xcd, 0xaf, 0x87,
				    0x27, 0x29, 0x3d, 0x4b, 0x11, 0x1d, 0x87, 0xeb, 0x37, 0x53, 0x1d,
				    0x7c, 0x86, 0xd4, 0xd3, 0x00, 0x3f, 0x0e, 0xb8, 0x09, 0xfc };

static EVP_PKEY *go_key(void)
{
	EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, go_pub, sizeof(go_pub));

	assert_non_null(k);
	return k;
}

static EVP_PKEY *new_key(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

	assert_non_null(k);
	return k;
}

static int verify(const char *text, EVP_PKEY *k, const char *name, struct checkpoint *c, char *err)
{
	err[0] = '\0';
	return checkpoint_verify(text, strlen(text), k, name, c, err, 256);
}

static void test_go_sumdb(void **state)
{
	EVP_PKEY *k = go_key();
	struct checkpoint c;
	uint8_t id[4];
	char err[256], *bent;

	(void)state;
	assert_int_equal(checkpoint_key_id("sum.golang.org", k, id), 0);
	assert_memory_equal(id, "\x03\x3d\xe0\xae", 4);
	assert_int_equal(verify(go_note, k, "sum.golang.org", &c, err), 0);
	assert_string_equal(c.origin, "go.sum database tree");
	assert_int_equal(c.size, 65664258);
	assert_int_equal(c.root[0], 0x59);
	/* One digit of the size changed. */
	bent = strdup(go_note);
	bent[strlen("go.sum database tree\n6566425")] = '9';
	assert_int_equal(verify(bent, k, "sum.golang.org", &c, err), -EKEYREJECTED);
	assert_non_null(strstr(err, "does not verify"));
	free(bent);
	/* Under another name, the signature is not found at all. */
	assert_int_equal(verify(go_note, k, "sum.golang.com", &c, err), -EKEYREJECTED);
	assert_non_null(strstr(err, "no signature by key"));
	EVP_PKEY_free(k);
}

static char *sign(EVP_PKEY *k, const char *origin, uint64_t size, uint8_t fill)
{
	struct checkpoint c = { .size = size };
	char *text;
	size_t len;

	snprintf(c.origin, sizeof(c.origin), "%s", origin);
	memset(c.root, fill, sizeof(c.root));
	assert_int_equal(checkpoint_sign(&c, k, &text, &len), 0);
	assert_int_equal(strlen(text), len);
	return text;
}

static void test_round_trip(void **state)
{
	EVP_PKEY *k = new_key();
	struct checkpoint c;
	char err[256], *text = sign(k, CHECKPOINT_DEFAULT_ORIGIN, 1234, 0xab);

	(void)state;
	assert_int_equal(verify(text, k, NULL, &c, err), 0);
	assert_string_equal(c.origin, CHECKPOINT_DEFAULT_ORIGIN);
	assert_int_equal(c.size, 1234);
	for (int i = 0; i < 32; i++)
		assert_int_equal(c.root[i], 0xab);
	/* The exact text, up to the signature (which Ed25519 makes deterministic, but for a new key). */
	{
		const char *want = CHECKPOINT_DEFAULT_ORIGIN "\n1234\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n\n"
				   "\xe2\x80\x94 " CHECKPOINT_DEFAULT_ORIGIN " ";

		assert_int_equal(strncmp(text, want, strlen(want)), 0);
		assert_int_equal(strlen(text), strlen(want) + 92 + 1); /* base64 of 4 + 64 bytes, '\n' */
	}
	/* Size 0 (the empty log) is a valid checkpoint. */
	free(text);
	text = sign(k, "x", 0, 0);
	assert_int_equal(verify(text, k, NULL, &c, err), 0);
	assert_int_equal(c.size, 0);
	free(text);
	EVP_PKEY_free(k);
}

/* Replace the first occurrence of from by to in text (a new string). */
static char *replace(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	char *out;

	assert_non_null(at);
	out = malloc(strlen(text) + strlen(to) + 1);
	assert_non_null(out);
	sprintf(out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
	return out;
}

static void expect(const char *text, EVP_PKEY *k, int want, const char *reason)
{
	struct checkpoint c;
	char err[256];

	assert_int_equal(verify(text, k, NULL, &c, err), want);
	if (!strstr(err, reason))
		fail_msg("\"%s\" does not say \"%s\"", err, reason);
}

static void test_tampered(void **state)
{
	EVP_PKEY *k = new_key(), *other = new_key();
	char *text = sign(k, "vigil-cp/audit-log", 57, 0x11), *t, *sigline;

	(void)state;
	/* Size, root, origin changed; the signature altered; another key. */
	t = replace(text, "\n57\n", "\n56\n");
	expect(t, k, -EKEYREJECTED, "does not verify");
	free(t);
	t = replace(text, "ERER", "ERES");
	expect(t, k, -EKEYREJECTED, "does not verify");
	free(t);
	/* Another origin: the key id (name-bound) no longer matches anything. */
	t = replace(text, "vigil-cp/audit-log\n", "vigil-cp/audit-lug\n");
	expect(t, k, -EKEYREJECTED, "no signature by key");
	free(t);
	sigline = strstr(text, "\xe2\x80\x94 ");
	t = strdup(text);
	t[sigline - text + 4 + strlen("vigil-cp/audit-log ") + 10] ^= 0x01; /* a base64 letter's case */
	expect(t, k, -EKEYREJECTED, "");
	free(t);
	expect(text, other, -EKEYREJECTED, "no signature by key");
	/* A cosigner's line before ours is ignored; ours still counts. */
	t = replace(text, "\xe2\x80\x94 vigil-cp", "\xe2\x80\x94 witness.example AAAA\n\xe2\x80\x94 vigil-cp");
	expect(t, k, 0, "");
	free(t);
	free(text);
	EVP_PKEY_free(k);
	EVP_PKEY_free(other);
}

static void test_malformed(void **state)
{
	EVP_PKEY *k = new_key();
	char *text = sign(k, "o", 12, 0x22), *t;
	const char *root = "IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI=";
	char big[CHECKPOINT_MAX_TEXT + 2];

	(void)state;
	assert_non_null(strstr(text, root));
	t = replace(text, "\n12\n", "\n012\n");
	expect(t, k, -EBADMSG, "line 2 is not a tree size");
	free(t);
	t = replace(text, "\n12\n", "\n+12\n");
	expect(t, k, -EBADMSG, "line 2 is not a tree size");
	free(t);
	t = replace(text, "\n12\n", "\n99999999999999999999\n");
	expect(t, k, -EBADMSG, "line 2 is not a tree size");
	free(t);
	t = replace(text, "\n12\n", "\n9223372036854775808\n");
	expect(t, k, -EBADMSG, "line 2 is not a tree size");
	free(t);
	t = replace(text, root, "IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI");
	expect(t, k, -EBADMSG, "line 3");
	free(t);
	/* Not canonical: the last character's unused bits set. */
	t = replace(text, root, "IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiJ=");
	expect(t, k, -EBADMSG, "line 3");
	free(t);
	t = replace(text, root, "IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIi");
	expect(t, k, -EBADMSG, "line 3");
	free(t);
	t = replace(text, "=\n\n", "=\nextension\n\n");
	expect(t, k, -EBADMSG, "more than three lines");
	free(t);
	t = replace(text, "=\n\n\xe2\x80\x94", "=\n\n- ");
	expect(t, k, -EBADMSG, "not a signature line");
	free(t);
	t = replace(text, "=\n\n\xe2\x80\x94", "=\n\n");
	expect(t, k, -EBADMSG, "");
	free(t);
	t = replace(text, "=\n\n\xe2\x80\x94", "=\n");
	expect(t, k, -EBADMSG, "");
	free(t);
	/* No final newline, nothing after the blank line, a NUL. */
	t = strdup(text);
	t[strlen(t) - 1] = '\0';
	expect(t, k, -EBADMSG, "not a signature line");
	free(t);
	t = strdup(text);
	*(strstr(t, "=\n\n") + 3) = '\0';
	expect(t, k, -EBADMSG, "no signature line");
	free(t);
	expect("", k, -EBADMSG, "line 1");
	expect("\n12\n", k, -EBADMSG, "line 1");
	expect("o\x01\n12\n", k, -EBADMSG, "line 1");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect(big, k, -EBADMSG, "longer than");
	free(text);
	EVP_PKEY_free(k);
}

static void test_names_and_keys(void **state)
{
	struct checkpoint c = { .size = 1 };
	EVP_PKEY *k = new_key(), *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	char err[256], *text, path[] = "/tmp/test_checkpoint.XXXXXX";
	size_t len;
	EVP_PKEY *loaded = NULL;
	FILE *f;
	int fd;

	(void)state;
	assert_int_equal(checkpoint_check_name("vigil-cp/audit-log", err, sizeof(err)), 0);
	assert_int_equal(checkpoint_check_name("two words", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "space, '+'"));
	assert_int_equal(checkpoint_check_name("a+b", err, sizeof(err)), -EINVAL);
	assert_int_equal(checkpoint_check_name("", err, sizeof(err)), -EINVAL);
	snprintf(c.origin, sizeof(c.origin), "two words");
	assert_int_equal(checkpoint_sign(&c, k, &text, &len), -EINVAL);
	snprintf(c.origin, sizeof(c.origin), "o");
	assert_non_null(rsa);
	assert_int_equal(checkpoint_sign(&c, rsa, &text, &len), -EINVAL);

	/* A PEM private key file gives its public half; a public key file itself; RSA is refused. */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	assert_int_equal(checkpoint_load_key("--audit-pubkey", path, &loaded, err, sizeof(err)), 0);
	assert_int_equal(checkpoint_sign(&c, k, &text, &len), 0);
	assert_int_equal(checkpoint_verify(text, len, loaded, NULL, &c, err, sizeof(err)), 0);
	EVP_PKEY_free(loaded);
	f = fopen(path, "w");
	assert_int_equal(PEM_write_PUBKEY(f, k), 1);
	fclose(f);
	assert_int_equal(checkpoint_load_key("--audit-pubkey", path, &loaded, err, sizeof(err)), 0);
	assert_int_equal(checkpoint_verify(text, len, loaded, NULL, &c, err, sizeof(err)), 0);
	EVP_PKEY_free(loaded);
	f = fopen(path, "w");
	assert_int_equal(PEM_write_PUBKEY(f, rsa), 1);
	fclose(f);
	assert_int_equal(checkpoint_load_key("--audit-pubkey", path, &loaded, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not Ed25519"));
	f = fopen(path, "w");
	fputs("not a key\n", f);
	fclose(f);
	assert_int_equal(checkpoint_load_key("--audit-pubkey", path, &loaded, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "--audit-pubkey"));
	unlink(path);
	assert_true(checkpoint_load_key("--audit-pubkey", path, &loaded, err, sizeof(err)) < 0);
	free(text);
	EVP_PKEY_free(k);
	EVP_PKEY_free(rsa);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_go_sumdb),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_names_and_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
