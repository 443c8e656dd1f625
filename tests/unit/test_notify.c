/*
 * test_notify.c - the monitor's side of sd_notify(3)'s protocol, on a real
 * datagram socket (a path, and the abstract namespace):
 * nothing is sent without NOTIFY_SOCKET; READY=1 carries a STATUS= that
 * waited; STATUS= is rate-limited (a changed line waits, an unchanged one
 * is not sent again, the latest waiting one wins); RELOADING=1 carries
 * MONOTONIC_USEC; the watchdog is on only for this pid, at half its
 * interval, and off when WATCHDOG_USEC is not a plain number.
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

#include "notify.h"

#define MS 1000ull

static int sock = -1;
static char path[108];

static int setup(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(path, sizeof(path), "/tmp/vigil-test-notify.%d", (int)getpid());
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(sock >= 0);
	assert_int_equal(bind(sock, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setenv("NOTIFY_SOCKET", path, 1);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	return 0;
}

static int teardown(void **state)
{
	close(sock);
	unlink(path);
	unsetenv("NOTIFY_SOCKET");
	return 0;
}

/* The next datagram, or "" when none waits. */
static const char *next(void)
{
	static char buf[4096];
	ssize_t n = recv(sock, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void test_off_without_socket(void **state)
{
	struct notify n;

	unsetenv("NOTIFY_SOCKET");
	setenv("WATCHDOG_USEC", "2000000", 1);
	notify_init(&n, 0);
	assert_false(n.on);
	assert_int_equal(n.watchdog_usec, 0);
	assert_int_equal(notify_ready(&n, 0), 0);
	assert_int_equal(notify_status(&n, "x", 0), 0);
	assert_int_equal(n.sent, 0);
	assert_string_equal(next(), "");
	assert_int_equal(notify_timeout_ms(&n, 0), -1);
	setenv("NOTIFY_SOCKET", path, 1);
	unsetenv("WATCHDOG_USEC");
}

static void test_status_rate_limit(void **state)
{
	struct notify n;
	uint64_t t = 1000 * MS;

	notify_init(&n, t);
	assert_int_equal(notify_status(&n, "starting", t), 0);
	assert_string_equal(next(), "STATUS=starting");
	/* The same line again: nothing. */
	assert_int_equal(notify_status(&n, "starting", t + 2000 * MS), 0);
	assert_string_equal(next(), "");
	/* Two changes inside the limit: nothing now, the latest later. */
	t += 2000 * MS;
	assert_int_equal(notify_status(&n, "a", t), 0);
	assert_string_equal(next(), "STATUS=a");
	assert_int_equal(notify_status(&n, "b", t + 100 * MS), 0);
	assert_int_equal(notify_status(&n, "c", t + 200 * MS), 0);
	assert_string_equal(next(), "");
	assert_int_equal(notify_timeout_ms(&n, t + 200 * MS), NOTIFY_STATUS_MIN_MS - 200);
	assert_int_equal(notify_tick(&n, t + 900 * MS), 0);
	assert_string_equal(next(), "");
	assert_int_equal(notify_tick(&n, t + NOTIFY_STATUS_MIN_MS * MS), 0);
	assert_string_equal(next(), "STATUS=c");
	assert_int_equal(notify_timeout_ms(&n, t + NOTIFY_STATUS_MIN_MS * MS), -1);
	/* Changed and changed back within the limit: nothing to say. */
	t += NOTIFY_STATUS_MIN_MS * MS;
	assert_int_equal(notify_status(&n, "d", t + 10 * MS), 0);
	assert_int_equal(notify_status(&n, "c", t + 20 * MS), 0);
	assert_int_equal(notify_tick(&n, t + 5000 * MS), 0);
	assert_string_equal(next(), "");
}

static void test_ready_reloading_stopping(void **state)
{
	struct notify n;
	uint64_t t = 5000 * MS;

	notify_init(&n, t);
	assert_int_equal(notify_ready(&n, t), 0);
	assert_string_equal(next(), "READY=1");
	assert_int_equal(notify_status(&n, "x", t), 0);
	assert_string_equal(next(), "STATUS=x");
	assert_int_equal(notify_reloading(&n, 123456789), 0);
	assert_string_equal(next(), "RELOADING=1\nMONOTONIC_USEC=123456789");
	/* A status waiting for the limit goes out with READY=1. */
	assert_int_equal(notify_status(&n, "y", t + 10 * MS), 0);
	assert_string_equal(next(), "");
	assert_int_equal(notify_ready(&n, t + 20 * MS), 0);
	assert_string_equal(next(), "READY=1\nSTATUS=y");
	assert_false(n.have_pending);
	assert_int_equal(notify_stopping(&n), 0);
	assert_string_equal(next(), "STOPPING=1");
	assert_int_equal(n.sent, 5);
}

static void test_watchdog(void **state)
{
	struct notify n;
	char pid[32];

	/* For another process: not ours to pet. */
	setenv("WATCHDOG_USEC", "2000000", 1);
	snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1);
	notify_init(&n, 0);
	assert_int_equal(n.watchdog_usec, 0);
	assert_false(notify_watchdog_due(&n, UINT64_MAX / 2));

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	notify_init(&n, 10 * 1000 * MS);
	assert_int_equal(n.watchdog_usec, 2000000);
	assert_int_equal(notify_timeout_ms(&n, 10 * 1000 * MS), 1000);
	assert_false(notify_watchdog_due(&n, 10 * 1000 * MS + 999 * MS));
	assert_true(notify_watchdog_due(&n, 11 * 1000 * MS));
	assert_false(notify_watchdog_due(&n, 11 * 1000 * MS + 1));
	assert_int_equal(notify_watchdog(&n), 0);
	assert_string_equal(next(), "WATCHDOG=1");
	assert_true(notify_watchdog_due(&n, 12 * 1000 * MS));
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

/* WATCHDOG_USEC that is not a plain number: no watchdog (as sd_watchdog_enabled refuses it). */
static void test_watchdog_malformed(void **state)
{
	static const char *const bad[] = { "", "-5", "0x10", "2000000 ", "1e6", "0",
					    "99999999999999999999999" };
	struct notify n;

	unsetenv("WATCHDOG_PID");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("WATCHDOG_USEC", bad[i], 1);
		notify_init(&n, 0);
		assert_int_equal(n.watchdog_usec, 0);
	}
	{
		char pid[32];

		/* This pid with junk after it: not this pid. */
		snprintf(pid, sizeof(pid), "%dx", (int)getpid());
		setenv("WATCHDOG_USEC", "2000000", 1);
		setenv("WATCHDOG_PID", pid, 1);
		notify_init(&n, 0);
		assert_int_equal(n.watchdog_usec, 0);
	}
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

/* NOTIFY_SOCKET="@name": the abstract namespace, as systemd may pass it. */
static void test_abstract_socket(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char name[64], buf[64];
	struct notify n;
	int s;
	ssize_t got;

	snprintf(name, sizeof(name), "@vigil-test-notify.%d", (int)getpid());
	memcpy(sa.sun_path, name, strlen(name));
	sa.sun_path[0] = '\0';
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name))), 0);
	setenv("NOTIFY_SOCKET", name, 1);
	notify_init(&n, 0);
	assert_true(n.on);
	assert_int_equal(notify_stopping(&n), 0);
	got = recv(s, buf, sizeof(buf) - 1, 0);
	assert_int_equal(got, 10);
	buf[got] = '\0';
	assert_string_equal(buf, "STOPPING=1");
	/* Neither a path nor '@': refused, nothing sent. */
	setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
	notify_init(&n, 0);
	assert_int_equal(notify_stopping(&n), -EAFNOSUPPORT);
	assert_int_equal(n.sent, 0);
	/* An abstract name may fill sun_path (108 bytes), a path one byte less. */
	{
		char longname[120];

		memset(longname, 'a', sizeof(longname));
		longname[0] = '@';
		longname[109] = '\0';
		setenv("NOTIFY_SOCKET", longname, 1);
		notify_init(&n, 0);
		assert_int_equal(notify_stopping(&n), -ENAMETOOLONG);
		longname[108] = '\0'; /* 108 bytes: fits, nobody listening */
		setenv("NOTIFY_SOCKET", longname, 1);
		notify_init(&n, 0);
		assert_int_equal(notify_stopping(&n), -ECONNREFUSED);
		longname[0] = '/';
		setenv("NOTIFY_SOCKET", longname, 1);
		notify_init(&n, 0);
		assert_int_equal(notify_stopping(&n), -ENAMETOOLONG);
		assert_int_equal(n.sent, 0);
	}
	close(s);
	setenv("NOTIFY_SOCKET", path, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_off_without_socket),
		cmocka_unit_test(test_status_rate_limit),
		cmocka_unit_test(test_ready_reloading_stopping),
		cmocka_unit_test(test_watchdog),
		cmocka_unit_test(test_watchdog_malformed),
		cmocka_unit_test(test_abstract_socket),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
