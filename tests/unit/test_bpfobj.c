/*
 * test_bpfobj.c - unit tests for daemon/bpfobj.c: a signed BPF object is
 * read once, verified, and identified by its Vigil note before it may be
 * loaded; everything else is refused with the file and the reason.
 *
 * Works on copies of the real build/bpf/profile.bpf.o (found next to the
 * test binary), signed in a temporary directory by a CA devca_create()
 * makes.  "Rolled back" and "renamed" objects are copies whose note was
 * patched before signing, so that only the identity check can refuse them.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "bpfobj.h"
#include "devca.h"
#include "guard.h"
#include "signing.h"

static char tmpdir[] = "/tmp/vigil-test-bpfobj.XXXXXX";
static struct signing_key *key, *other_key;
static struct signing_trust *trust;
static uint8_t *profile;   /* build/bpf/profile.bpf.o */
static size_t profile_len;
static size_t meta_off;    /* offset of its struct vigil_obj_meta */

/* build/bpf/profile.bpf.o, from build/tests/unit/test_bpfobj. */
static bool object_path(char *buf, size_t len)
{
	char exe[PATH_MAX];
	char *slash;
	struct stat st;

	if (!realpath("/proc/self/exe", exe))
		return false;
	for (int i = 0; i < 3; i++) {
		slash = strrchr(exe, '/');
		if (!slash)
			return false;
		*slash = '\0';
	}
	if ((size_t)snprintf(buf, len, "%s/bpf/profile.bpf.o", exe) < len && stat(buf, &st) == 0)
		return true;
	snprintf(buf, len, "build/bpf/profile.bpf.o"); /* run from the top directory */
	return stat(buf, &st) == 0;
}

static int setup(void **state)
{
	char p[PATH_MAX], c[PATH_MAX], k[PATH_MAX], err[512];
	static const uint8_t note_head[] = "Vigil\0\0\0" VIGIL_OBJ_MAGIC;
	const uint8_t *hit;
	void *buf;

	if (!object_path(p, sizeof(p))) {
		fprintf(stderr, "build/bpf/profile.bpf.o is not built\n");
		return -1;
	}
	if (signing_read_file(AT_FDCWD, p, BPFOBJ_MAX_BYTES, false, &buf, &profile_len))
		return -1;
	profile = buf;
	hit = memmem(profile, profile_len, note_head, sizeof(note_head) - 1);
	if (!hit || memmem(hit + 1, profile_len - (size_t)(hit + 1 - profile), note_head,
			   sizeof(note_head) - 1)) {
		fprintf(stderr, "%s: no single Vigil note\n", p);
		return -1;
	}
	meta_off = (size_t)(hit - profile) + 8;

	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(p, sizeof(p), "%s/ca", tmpdir);
	snprintf(c, sizeof(c), "%s/other", tmpdir);
	if (devca_create(p, "Test", 30, false, err, sizeof(err)) ||
	    devca_create(c, "Other", 30, false, err, sizeof(err))) {
		fprintf(stderr, "devca_create: %s\n", err);
		return -1;
	}
	snprintf(c, sizeof(c), "%s/ca/signer.pem", tmpdir);
	snprintf(k, sizeof(k), "%s/ca/signer.key", tmpdir);
	snprintf(p, sizeof(p), "%s/ca/ca.pem", tmpdir);
	if (signing_key_load(c, k, &key, err, sizeof(err)) ||
	    signing_trust_load(p, NULL, &trust, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	snprintf(c, sizeof(c), "%s/other/signer.pem", tmpdir);
	snprintf(k, sizeof(k), "%s/other/signer.key", tmpdir);
	if (signing_key_load(c, k, &other_key, err, sizeof(err)))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[256];

	signing_key_free(key);
	signing_key_free(other_key);
	signing_trust_free(trust);
	free(profile);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* A fresh directory tmpdir/case for one test case; its path in dir. */
static void case_dir(char *dir, size_t len, const char *name)
{
	snprintf(dir, len, "%s/%s", tmpdir, name);
	assert_int_equal(mkdir(dir, 0700), 0);
}

/* dir/file := obj, and dir/file.sig := its signature by k (NULL: no signature). */
static void put(const char *dir, const char *file, const void *obj, size_t len,
		const struct signing_key *k)
{
	char p[PATH_MAX], err[512];
	void *sig;
	size_t sig_len;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	write_file(p, obj, len);
	if (!k)
		return;
	assert_int_equal(signing_sign(k, obj, len, &sig, &sig_len, err, sizeof(err)), 0);
	snprintf(p, sizeof(p), "%s/%s.sig", dir, file);
	write_file(p, sig, sig_len);
	free(sig);
}

/* A copy of profile.bpf.o with its note changed by edit(). */
static uint8_t *patched(void (*edit)(struct vigil_obj_meta *m))
{
	uint8_t *copy = malloc(profile_len);
	struct vigil_obj_meta m;

	assert_non_null(copy);
	memcpy(copy, profile, profile_len);
	memcpy(&m, copy + meta_off, sizeof(m));
	edit(&m);
	memcpy(copy + meta_off, &m, sizeof(m));
	return copy;
}

/* bpfobj_read_verified must refuse with rc and an error naming the file and token. */
static void expect_refused(const char *dir, const char *name, uint32_t min, int rc,
			   const char *token)
{
	struct bpfobj *o = (struct bpfobj *)0x1;
	char err[2048], want[PATH_MAX + 64];
	int got = bpfobj_read_verified(dir, name, min, trust, &o, err, sizeof(err));

	if (got != rc)
		fail_msg("%s/%s: rc %d, expected %d (%s)", dir, name, got, rc, err);
	assert_ptr_equal(o, (struct bpfobj *)0x1);
	if (token) {
		snprintf(want, sizeof(want), "%s/%s.bpf.o: refused (%s): ", dir, name, token);
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("error \"%s\" does not start with \"%s\"", err, want);
	}
}

static void test_ok(void **state)
{
	struct bpfobj *o = NULL;
	char dir[256], err[2048];

	case_dir(dir, sizeof(dir), "ok");
	put(dir, "profile.bpf.o", profile, profile_len, key);
	if (bpfobj_read_verified(dir, "profile", VIGIL_PROFILE_OBJ_VERSION, trust, &o, err,
				 sizeof(err)))
		fail_msg("%s", err);
	/* The verified bytes are exactly the file's. */
	assert_int_equal(o->len, profile_len);
	assert_memory_equal(o->buf, profile, profile_len);
	assert_string_equal(o->meta.name, "profile");
	assert_int_equal(o->meta.obj_version, VIGIL_PROFILE_OBJ_VERSION);
	assert_int_equal(o->meta.abi_version, VIGIL_ABI_VERSION);
	assert_non_null(strstr(o->signer, "signed by CN=Test signer"));
	assert_non_null(strstr(o->path, "/ok/profile.bpf.o"));
	bpfobj_free(o);
	bpfobj_free(NULL);
	/* min_version 0 and equal versions are accepted. */
	assert_int_equal(bpfobj_read_verified(dir, "profile", 0, trust, &o, err, sizeof(err)), 0);
	bpfobj_free(o);
}

static void set_version_0(struct vigil_obj_meta *m) { m->obj_version = 0; }
static void set_abi_99(struct vigil_obj_meta *m) { m->abi_version = 99; }
static void set_bad_magic(struct vigil_obj_meta *m) { m->magic[0] = 'X'; }
static void set_unterminated(struct vigil_obj_meta *m) { memset(m->name, 'p', sizeof(m->name)); }

static void test_identity(void **state)
{
	char dir[256];
	uint8_t *obj;

	/* A properly signed profile object in the "empty" slot. */
	case_dir(dir, sizeof(dir), "wrong-name");
	put(dir, "empty.bpf.o", profile, profile_len, key);
	expect_refused(dir, "empty", 0, -EKEYREJECTED, "wrong-name");

	/* Older than vigild accepts: rollback. */
	case_dir(dir, sizeof(dir), "old-version");
	put(dir, "profile.bpf.o", profile, profile_len, key);
	expect_refused(dir, "profile", VIGIL_PROFILE_OBJ_VERSION + 1, -EKEYREJECTED, "old-version");
	case_dir(dir, sizeof(dir), "old-version-0");
	obj = patched(set_version_0);
	put(dir, "profile.bpf.o", obj, profile_len, key);
	expect_refused(dir, "profile", 1, -EKEYREJECTED, "old-version");
	free(obj);

	case_dir(dir, sizeof(dir), "abi");
	obj = patched(set_abi_99);
	put(dir, "profile.bpf.o", obj, profile_len, key);
	expect_refused(dir, "profile", 0, -EKEYREJECTED, "abi-mismatch");
	free(obj);

	case_dir(dir, sizeof(dir), "magic");
	obj = patched(set_bad_magic);
	put(dir, "profile.bpf.o", obj, profile_len, key);
	expect_refused(dir, "profile", 0, -EKEYREJECTED, "no-metadata");
	free(obj);

	case_dir(dir, sizeof(dir), "unterminated");
	obj = patched(set_unterminated);
	put(dir, "profile.bpf.o", obj, profile_len, key);
	expect_refused(dir, "profile", 0, -EKEYREJECTED, "wrong-name");
	free(obj);

	/* The note's type changed: no identity at all. */
	case_dir(dir, sizeof(dir), "no-note");
	obj = malloc(profile_len);
	assert_non_null(obj);
	memcpy(obj, profile, profile_len);
	obj[meta_off - 8 - 4] = 2; /* n_type, little-endian low byte */
	put(dir, "profile.bpf.o", obj, profile_len, key);
	expect_refused(dir, "profile", 0, -EKEYREJECTED, "no-metadata");
	free(obj);
}

static void test_signature(void **state)
{
	char dir[256], p[PATH_MAX];
	uint8_t *obj;

	case_dir(dir, sizeof(dir), "no-sig");
	put(dir, "profile.bpf.o", profile, profile_len, NULL);
	expect_refused(dir, "profile", 0, -EKEYREJECTED, "no-signature");

	/* Signed, then one byte changed (in the note, then in the code). */
	case_dir(dir, sizeof(dir), "flipped");
	put(dir, "profile.bpf.o", profile, profile_len, key);
	obj = malloc(profile_len);
	assert_non_null(obj);
	memcpy(obj, profile, profile_len);
	obj[meta_off + 12] ^= 1; /* obj_version: a rollback attempt without re-signing */
	put(dir, "profile.bpf.o", obj, profile_len, NULL);
	expect_refused(dir, "profile", 0, -EKEYREJECTED, "digest-mismatch");
	obj[meta_off + 12] ^= 1;
	obj[profile_len / 2] ^= 0x80;
	put(dir, "profile.bpf.o", obj, profile_len, NULL);
	expect_refused(dir, "profile", 0, -EKEYREJECTED, "digest-mismatch");
	free(obj);

	case_dir(dir, sizeof(dir), "other-ca");
	put(dir, "profile.bpf.o", profile, profile_len, other_key);
	expect_refused(dir, "profile", 0, -EKEYREJECTED, "untrusted");

	case_dir(dir, sizeof(dir), "garbage-sig");
	put(dir, "profile.bpf.o", profile, profile_len, NULL);
	snprintf(p, sizeof(p), "%s/profile.bpf.o.sig", dir);
	write_file(p, profile, 600);
	expect_refused(dir, "profile", 0, -EKEYREJECTED, "malformed-signature");
	write_file(p, "", 0);
	expect_refused(dir, "profile", 0, -EKEYREJECTED, "no-signature");

	/* A signed file that is not a BPF object. */
	case_dir(dir, sizeof(dir), "not-bpf");
	put(dir, "profile.bpf.o", "\177ELF but not really", 20, key);
	expect_refused(dir, "profile", 0, -EKEYREJECTED, "not-bpf-object");
}

static void test_files(void **state)
{
	char dir[256], p[PATH_MAX], q[PATH_MAX];
	int fd;

	case_dir(dir, sizeof(dir), "empty");
	put(dir, "profile.bpf.o", "", 0, NULL);
	expect_refused(dir, "profile", 0, -EKEYREJECTED, "empty-object");

	/* Symlinks are refused, for the object and for its signature. */
	case_dir(dir, sizeof(dir), "symlink");
	put(dir, "real.bpf.o", profile, profile_len, key);
	snprintf(p, sizeof(p), "%s/profile.bpf.o", dir);
	assert_int_equal(symlink("real.bpf.o", p), 0);
	snprintf(p, sizeof(p), "%s/profile.bpf.o.sig", dir);
	assert_int_equal(symlink("real.bpf.o.sig", p), 0);
	expect_refused(dir, "profile", 0, -EKEYREJECTED, "not-regular-file");
	case_dir(dir, sizeof(dir), "symlink-sig");
	put(dir, "profile.bpf.o", profile, profile_len, key);
	snprintf(p, sizeof(p), "%s/profile.bpf.o.sig", dir);
	snprintf(q, sizeof(q), "%s/real.sig", dir);
	assert_int_equal(rename(p, q), 0);
	assert_int_equal(symlink("real.sig", p), 0);
	expect_refused(dir, "profile", 0, -EKEYREJECTED, "not-regular-file");

	/* A FIFO would block a naive reader forever. */
	case_dir(dir, sizeof(dir), "fifo");
	snprintf(p, sizeof(p), "%s/profile.bpf.o", dir);
	assert_int_equal(mkfifo(p, 0600), 0);
	expect_refused(dir, "profile", 0, -EKEYREJECTED, "not-regular-file");

	case_dir(dir, sizeof(dir), "huge");
	snprintf(p, sizeof(p), "%s/profile.bpf.o", dir);
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, BPFOBJ_MAX_BYTES + 1), 0);
	close(fd);
	expect_refused(dir, "profile", 0, -EKEYREJECTED, "too-large");

	/* Missing object or directory: not a refusal, a missing file. */
	case_dir(dir, sizeof(dir), "missing");
	expect_refused(dir, "profile", 0, -ENOENT, NULL);
	snprintf(p, sizeof(p), "%s/no-such-dir", tmpdir);
	expect_refused(p, "profile", 0, -ENOENT, NULL);
}

static void test_bad_names(void **state)
{
	static const char *const bad[] = { "", "../profile", "a/b", "prof ile", "profile.bpf",
					   "0123456789012345678901234567890123" };
	struct bpfobj *o = NULL;
	char err[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(bpfobj_read_verified(tmpdir, bad[i], 0, trust, &o, err, sizeof(err)),
				 -EINVAL);
	assert_int_equal(bpfobj_read_verified(tmpdir, NULL, 0, trust, &o, err, sizeof(err)), -EINVAL);
	assert_null(o);
}

/* check_meta never reads outside what it is given: every prefix, at a page end. */
static void test_meta_truncated(void **state)
{
	struct vigil_obj_meta m;
	char err[512];

	assert_int_equal(bpfobj_check_meta(profile, profile_len, "profile", 0, &m, err, sizeof(err)), 0);
	for (size_t n = 0; n < profile_len; n += n < 256 ? 1 : 97) {
		struct guarded g;
		int rc;

		guard_copy(&g, profile, n);
		rc = bpfobj_check_meta(g.data, n, "profile", 0, &m, err, sizeof(err));
		guard_free(&g);
		if (rc != -EKEYREJECTED)
			fail_msg("prefix of %zu bytes: rc %d (%s)", n, rc, err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_signature),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_meta_truncated),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
