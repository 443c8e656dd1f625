/*
 * test_journal.c - journald's native protocol (daemon/journal.c), on a
 * real datagram socket, byte for byte: "KEY=VALUE\n" fields; a value with
 * a newline in the binary form (so that it cannot start a field of its
 * own: "MESSAGE=x\nPRIORITY=0" stays one MESSAGE); bad keys and entries
 * too long refused with nothing sent; no listener: an error, not a hang.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "journal.h"

static int sock = -1;
static char path[108];

static int setup(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(path, sizeof(path), "/tmp/vigil-test-journal.%d", (int)getpid());
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(sock >= 0);
	assert_int_equal(bind(sock, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return 0;
}

static int teardown(void **state)
{
	close(sock);
	unlink(path);
	return 0;
}

#define FIELD(s) { .iov_base = (void *)(uintptr_t)(s), .iov_len = sizeof(s) - 1 }

/* The next datagram into buf; its length, or -1 when none waits. */
static ssize_t next(uint8_t *buf, size_t len)
{
	return recv(sock, buf, len, 0);
}

static void test_plain_fields(void **state)
{
	struct journal j = JOURNAL_INIT(path);
	const struct iovec f[] = { FIELD("MESSAGE=hello"), FIELD("PRIORITY=6"),
				   FIELD("VIGIL_PROCESS=collector") };
	static const char want[] = "MESSAGE=hello\nPRIORITY=6\nVIGIL_PROCESS=collector\n";
	uint8_t buf[256];

	assert_int_equal(journal_send(&j, f, 3), 0);
	assert_int_equal(next(buf, sizeof(buf)), sizeof(want) - 1);
	assert_memory_equal(buf, want, sizeof(want) - 1);
	/* The socket is kept for the next entry. */
	assert_true(j.fd >= 0);
	assert_int_equal(journal_send(&j, f, 1), 0);
	assert_int_equal(next(buf, sizeof(buf)), 14);
	journal_close(&j);
	assert_int_equal(j.fd, -1);
}

/* A newline in a value: "KEY\n", the length (64-bit little-endian), the bytes, "\n". */
static void test_newline_binary_form(void **state)
{
	struct journal j = JOURNAL_INIT(path);
	const struct iovec f[] = { FIELD("MESSAGE=x\nPRIORITY=0"), FIELD("PRIORITY=6") };
	static const uint8_t want[] = "MESSAGE\n\x0c\0\0\0\0\0\0\0x\nPRIORITY=0\nPRIORITY=6\n";
	uint8_t buf[256];

	assert_int_equal(journal_send(&j, f, 2), 0);
	assert_int_equal(next(buf, sizeof(buf)), sizeof(want) - 1);
	assert_memory_equal(buf, want, sizeof(want) - 1);
	journal_close(&j);
}

static void test_refused(void **state)
{
	struct journal j = JOURNAL_INIT(path);
	const struct iovec nokey[] = { FIELD("=x") }, lower[] = { FIELD("message=x") },
			   under[] = { FIELD("_PID=1") }, digit[] = { FIELD("1A=x") },
			   noeq[] = { FIELD("MESSAGE") },
			   long_key[] = { FIELD("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=x") };
	char *big = malloc(JOURNAL_MAX_ENTRY + 16);
	struct iovec bigf;
	uint8_t buf[64];

	assert_int_equal(journal_send(&j, nokey, 1), -EINVAL);
	assert_int_equal(journal_send(&j, lower, 1), -EINVAL);
	assert_int_equal(journal_send(&j, under, 1), -EINVAL);
	assert_int_equal(journal_send(&j, digit, 1), -EINVAL);
	assert_int_equal(journal_send(&j, noeq, 1), -EINVAL);
	assert_int_equal(journal_send(&j, long_key, 1), -EINVAL);
	assert_non_null(big);
	memcpy(big, "MESSAGE=", 8);
	memset(big + 8, 'a', JOURNAL_MAX_ENTRY);
	bigf = (struct iovec){ .iov_base = big, .iov_len = JOURNAL_MAX_ENTRY + 8 };
	assert_int_equal(journal_send(&j, &bigf, 1), -EMSGSIZE);
	/* Nothing was sent for any of them. */
	assert_int_equal(next(buf, sizeof(buf)), -1);
	free(big);
	journal_close(&j);
}

/* The limits themselves are taken: a 64-character key, an entry of JOURNAL_MAX_ENTRY bytes. */
static void test_limits(void **state)
{
	struct journal j = JOURNAL_INIT(path);
	const struct iovec key64[] = { FIELD("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=x") };
	char *big = malloc(JOURNAL_MAX_ENTRY), *got = malloc(JOURNAL_MAX_ENTRY + 1);
	struct iovec bigf;

	assert_non_null(big);
	assert_non_null(got);
	assert_int_equal(journal_send(&j, key64, 1), 0);
	assert_int_equal(next((uint8_t *)got, JOURNAL_MAX_ENTRY), 67);
	/* "MESSAGE=" and letters, then the "\n" the field gets: JOURNAL_MAX_ENTRY in all. */
	memcpy(big, "MESSAGE=", 8);
	memset(big + 8, 'a', JOURNAL_MAX_ENTRY - 9);
	bigf = (struct iovec){ .iov_base = big, .iov_len = JOURNAL_MAX_ENTRY - 1 };
	assert_int_equal(journal_send(&j, &bigf, 1), 0);
	assert_int_equal(next((uint8_t *)got, JOURNAL_MAX_ENTRY + 1), JOURNAL_MAX_ENTRY);
	big[JOURNAL_MAX_ENTRY - 1] = 'a';
	bigf.iov_len = JOURNAL_MAX_ENTRY;
	assert_int_equal(journal_send(&j, &bigf, 1), -EMSGSIZE);
	free(big);
	free(got);
	journal_close(&j);
}

/* Nobody listening: an error the caller can act on (log.c then writes to stderr). */
static void test_no_listener(void **state)
{
	char gone[120];
	struct journal j = JOURNAL_INIT(gone);
	const struct iovec f[] = { FIELD("MESSAGE=hello") };

	snprintf(gone, sizeof(gone), "%s.gone", path);
	unlink(gone);
	assert_int_equal(journal_send(&j, f, 1), -ENOENT);
	journal_close(&j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_fields),
		cmocka_unit_test(test_newline_binary_form),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_no_listener),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
