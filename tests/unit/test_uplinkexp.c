/*
 * test_uplinkexp.c - the uplink's checks on what the collector sends for
 * export: each malformed MSG_EXPORT_PROFILE (length 0 or past the limit, a
 * memfd of another size or not sealed, no series or more than a message
 * may say, another version, a second file while one is in flight) ends the
 * uplink with exit 70, a protocol break, in a child process; a good one is
 * queued.  And
 * a configuration from the monitor naming another port than the first is
 * a break too.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "memblob.h"
#include "uplinkexp.h"

/* Bytes the uplink pushes as they are: it never looks inside. */
static const uint8_t gz[] = { 0x0a, 0x02, 0x12, 0x00, 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0 };

static struct msg_uplink_setup setup(void)
{
	struct msg_uplink_setup s = { .version = PRIVSEP_VERSION, .nlabels = 1 };

	snprintf(s.hostname, sizeof(s.hostname), "h1");
	memcpy(s.labels, "env=x", 6);
	return s;
}

static struct msg_export_profile good(void)
{
	struct msg_export_profile m = { .hdr = { MSG_EXPORT_PROFILE, sizeof(m) }, .version = PRIVSEP_VERSION,
					.len = sizeof(gz), .seq = 1, .nseries = 3, .samples = 12 };

	return m;
}

/* The exit status of a child that gives x the profile m with a memfd of len bytes (sealed or not). */
static int child(const struct msg_export_profile *m, size_t len, bool sealed, bool twice)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct msg_uplink_setup s = setup();
		struct uplinkexp *x = uplinkexp_new(&s);
		int fd;

		if (sealed) {
			if (memblob_new("p", gz, len, NULL, 0, &fd))
				_exit(99);
		} else {
			fd = memfd_create("p", MFD_CLOEXEC);
			if (fd < 0 || write(fd, gz, len) != (ssize_t)len)
				_exit(99);
		}
		uplinkexp_profile(x, m, fd);
		if (twice) {
			struct msg_export_profile m2 = *m;

			m2.seq = 2;
			if (memblob_new("p", gz, len, NULL, 0, &fd))
				_exit(99);
			uplinkexp_profile(x, &m2, fd);
		}
		uplinkexp_free(x);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void test_profile_checks(void **state)
{
	struct msg_export_profile m;

	(void)state;
	m = good();
	assert_int_equal(child(&m, sizeof(gz), true, false), 0);
	/* the memfd's size is not the length said */
	assert_int_equal(child(&m, sizeof(gz) - 1, true, false), 70);
	/* not sealed */
	assert_int_equal(child(&m, sizeof(gz), false, false), 70);
	/* length 0, or past the limit */
	m.len = 0;
	assert_int_equal(child(&m, sizeof(gz), true, false), 70);
	m = good();
	m.len = EXPORT_PROFILE_MAX + 1;
	assert_int_equal(child(&m, sizeof(gz), true, false), 70);
	/* no series, more than a file may hold, padding not zero */
	m = good();
	m.nseries = 0;
	assert_int_equal(child(&m, sizeof(gz), true, false), 70);
	m = good();
	m.nseries = EXPORT_SERIES_MAX + 1;
	assert_int_equal(child(&m, sizeof(gz), true, false), 70);
	m = good();
	m.nseries = EXPORT_SERIES_MAX;
	assert_int_equal(child(&m, sizeof(gz), true, false), 0);
	m = good();
	m.pad = 1;
	assert_int_equal(child(&m, sizeof(gz), true, false), 70);
	m = good();
	m.version = PRIVSEP_VERSION + 1;
	assert_int_equal(child(&m, sizeof(gz), true, false), 70);
	/* one at a time */
	m = good();
	assert_int_equal(child(&m, sizeof(gz), true, true), 70);
}

static void test_config_port_fixed(void **state)
{
	pid_t pid;
	int st;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct msg_uplink_setup s = setup();
		struct uplinkexp *x = uplinkexp_new(&s);
		struct msg_uplink_export m = { .hdr = { MSG_UPLINK_EXPORT, sizeof(m) }, .version = PRIVSEP_VERSION,
					       .flags = UPLINK_EXPORT_F_ON, .port = 4040, .max_rate = 10 };
		int fds[5];

		snprintf(m.url, sizeof(m.url), "http://127.0.0.1:4040");
		snprintf(m.host, sizeof(m.host), "127.0.0.1");
		for (int i = 0; i < 5; i++)
			if (memblob_new("e", "", 0, NULL, 0, &fds[i]))
				_exit(99);
		uplinkexp_config(x, &m, fds);
		if (uplinkexp_port(x) != 4040)
			_exit(98);
		/* the same port again: fine; another: a break */
		for (int i = 0; i < 5; i++)
			if (memblob_new("e", "", 0, NULL, 0, &fds[i]))
				_exit(99);
		uplinkexp_config(x, &m, fds);
		m.port = 4041;
		snprintf(m.url, sizeof(m.url), "http://127.0.0.1:4041");
		for (int i = 0; i < 5; i++)
			if (memblob_new("e", "", 0, NULL, 0, &fds[i]))
				_exit(99);
		uplinkexp_config(x, &m, fds);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 70);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_profile_checks),
		cmocka_unit_test(test_config_port_fixed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
