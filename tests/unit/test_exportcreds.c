/*
 * test_exportcreds.c - the export files the monitor reads for the uplink:
 * a secret others or the group may read is refused (-EPERM, the message
 * says chmod 600), a secret of two lines or a basic auth without ':' is
 * refused, the final newline is dropped, five sealed memfds always come
 * back (empty where nothing was asked), an https URL without --export-ca
 * takes the system bundle; and the rule for files a policy may name
 * (under /etc/vigil/ only, no . or ..).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "exportcreds.h"
#include "exporturl.h"
#include "memblob.h"
#include "rootonly.h"

static char dir[] = "/tmp/vigil-test-exportcreds.XXXXXX";
static char basic[256], bearer[256], ca[256];

static void put(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static int setup(void **st)
{
	(void)st;
	if (!mkdtemp(dir) || chmod(dir, 0755))
		return -1;
	snprintf(basic, sizeof(basic), "%s/basic", dir);
	snprintf(bearer, sizeof(bearer), "%s/bearer", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	rm_tree(dir);
	return 0;
}

static void closeall(int *fds)
{
	for (int i = 0; i < EXPORTCREDS_NFDS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* The bytes of memfd fd, NUL-terminated (freed by the caller). */
static char *bytes(int fd, size_t *len)
{
	void *b;

	assert_int_equal(memblob_read(fd, 1u << 24, &b, len), 0);
	return b;
}

static void test_secrets(void **state)
{
	struct vigild_opts o = { .export_url = "http://p:4040", .export_port = 4040 };
	int fds[EXPORTCREDS_NFDS];
	uint32_t flags = 0;
	char why[512];
	size_t len;
	char *b;

	(void)state;
	need_root();
	snprintf(o.export_host, sizeof(o.export_host), "p");
	/* nothing asked: five empty memfds, export on */
	assert_int_equal(exportcreds_read(&o, fds, &flags, why, sizeof(why)), 0);
	assert_int_equal(flags, UPLINK_EXPORT_F_ON);
	for (int i = 0; i < EXPORTCREDS_NFDS; i++) {
		b = bytes(fds[i], &len);
		assert_int_equal(len, 0);
		free(b);
	}
	closeall(fds);

	/* basic auth: one line, the newline dropped */
	put(basic, "alice:s3cret\n", 0600);
	o.export_basic_auth_file = basic;
	assert_int_equal(exportcreds_read(&o, fds, &flags, why, sizeof(why)), 0);
	assert_int_equal(flags, UPLINK_EXPORT_F_ON | UPLINK_EXPORT_F_BASIC);
	b = bytes(fds[0], &len);
	assert_int_equal(len, 12);
	assert_memory_equal(b, "alice:s3cret", 12);
	free(b);
	closeall(fds);

	/* readable by others, or by the group: refused, and the fix named */
	put(basic, "alice:s3cret\n", 0644);
	assert_int_equal(exportcreds_read(&o, fds, &flags, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "--export-basic-auth-file"));
	assert_non_null(strstr(why, "chmod 600"));
	for (int i = 0; i < EXPORTCREDS_NFDS; i++)
		assert_int_equal(fds[i], -1);
	put(basic, "alice:s3cret\n", 0640);
	assert_int_equal(exportcreds_read(&o, fds, &flags, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "its group"));

	/* not one line; no ':' */
	put(basic, "alice:s3cret\nX-Evil: 1\n", 0600);
	assert_int_equal(exportcreds_read(&o, fds, &flags, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "one line"));
	put(basic, "alice\n", 0600);
	assert_int_equal(exportcreds_read(&o, fds, &flags, why, sizeof(why)), -EINVAL);
	put(basic, "\n", 0600);
	assert_int_equal(exportcreds_read(&o, fds, &flags, why, sizeof(why)), -EINVAL);

	/* a bearer token, CRLF-terminated */
	o.export_basic_auth_file = NULL;
	put(bearer, "tok-123\r\n", 0600);
	o.export_bearer_token_file = bearer;
	assert_int_equal(exportcreds_read(&o, fds, &flags, why, sizeof(why)), 0);
	assert_int_equal(flags, UPLINK_EXPORT_F_ON | UPLINK_EXPORT_F_BEARER);
	b = bytes(fds[1], &len);
	assert_int_equal(len, 7);
	free(b);
	closeall(fds);

	/* a missing file: named */
	o.export_bearer_token_file = "/nonexistent/token";
	assert_true(exportcreds_read(&o, fds, &flags, why, sizeof(why)) < 0);
	assert_non_null(strstr(why, "--export-bearer-token-file"));
}

static void test_ca(void **state)
{
	struct vigild_opts o = { .export_url = "https://p", .export_port = 443, .export_https = true };
	int fds[EXPORTCREDS_NFDS];
	uint32_t flags = 0;
	char why[512];
	struct stat st;
	size_t len;
	char *b;

	(void)state;
	need_root();
	put(ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", 0644);
	o.export_ca = ca;
	assert_int_equal(exportcreds_read(&o, fds, &flags, why, sizeof(why)), 0);
	assert_int_equal(flags, UPLINK_EXPORT_F_ON | UPLINK_EXPORT_F_CA);
	b = bytes(fds[2], &len);
	assert_non_null(strstr(b, "BEGIN CERTIFICATE"));
	free(b);
	closeall(fds);
	/* no --export-ca: the system's bundle, when this host has one */
	o.export_ca = NULL;
	if (stat(VIGILD_SYSTEM_CA, &st) == 0) {
		assert_int_equal(exportcreds_read(&o, fds, &flags, why, sizeof(why)), 0);
		b = bytes(fds[2], &len);
		assert_int_equal(len, (size_t)st.st_size);
		free(b);
		closeall(fds);
	}
}

static void test_policy_files(void **state)
{
	char err[300];
	static const char *const ok[] = { "/etc/vigil/a", "/etc/vigil/export/token.txt", "/etc/vigil/..a" };
	static const char *const bad[] = { "/etc/shadow", "/etc/vigil/", "/etc/vigil", "etc/vigil/a",
					   "/etc/vigil/../shadow", "/etc/vigil/./a", "/etc/vigil//a",
					   "/etc/vigil/a/..", "/etc/vigil/a/.", "/etc/vigilx/a", "/etc/vigil/a/" };

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_int_equal(exporturl_check_file("export.ca", ok[i], err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(exporturl_check_file("export.ca", bad[i], err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "/etc/vigil/"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secrets),
		cmocka_unit_test(test_ca),
		cmocka_unit_test(test_policy_files),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
