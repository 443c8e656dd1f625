/*
 * test_procmetrics.c - process_* figures: /proc/PID/stat parsed after the
 * last ')' (a command may hold ") (" and spaces), ticks and pages turned
 * into seconds and bytes, short or garbled lines refused; "Max open files"
 * of /proc/PID/limits (a number or unlimited); and this very process read
 * from the real /proc, compared with what getrusage and getrlimit say.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "procmetrics.h"

/* proc(5) fields 1..24 of a made-up process; utime 250, stime 50, starttime 1000, vsize, rss 300 */
#define STAT_TAIL " S 1 1 1 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 1000 123456789 300 18446744073709551615\n"

static void test_stat(void **state)
{
	struct proc_row r = { 0 };

	(void)state;
	assert_int_equal(procmetrics_parse_stat("42 (vigild)" STAT_TAIL, 1700000000, 100, 4096, &r), 0);
	assert_true(r.cpu_seconds == 3.0);
	assert_true(r.start_time_seconds == 1700000010.0);
	assert_int_equal(r.virtual_bytes, 123456789);
	assert_int_equal(r.resident_bytes, 300 * 4096);
	/* a command that looks like the end of the field, with spaces */
	memset(&r, 0, sizeof(r));
	assert_int_equal(procmetrics_parse_stat("42 (a) (b c) S 9)" STAT_TAIL, 0, 100, 4096, &r), 0);
	assert_int_equal(r.resident_bytes, 300 * 4096);
	assert_true(r.cpu_seconds == 3.0);
}

static void test_stat_refused(void **state)
{
	struct proc_row r;

	(void)state;
	assert_int_equal(procmetrics_parse_stat("", 0, 100, 4096, &r), -EBADMSG);
	assert_int_equal(procmetrics_parse_stat("42 vigild S 1 2 3", 0, 100, 4096, &r), -EBADMSG);
	assert_int_equal(procmetrics_parse_stat("42 (vigild) S 1 1 1 0 -1 4194560 100 0 0 0 250 50\n", 0, 100,
						4096, &r), -EBADMSG);
	assert_int_equal(procmetrics_parse_stat("42 (vigild) S 1 1 1 0 -1 4194560 100 0 0 0 x50 50 0 0 20 0 1 "
						"0 1000 1 300\n", 0, 100, 4096, &r), -EBADMSG);
	assert_int_equal(procmetrics_parse_stat("42 (vigild)" STAT_TAIL, 0, 0, 4096, &r), -EBADMSG);
}

static void test_limits(void **state)
{
	uint64_t v = 1;

	(void)state;
	assert_int_equal(procmetrics_parse_limits("Limit                     Soft Limit           Hard Limit           Units\n"
						  "Max open files            1024                 524288               files\n",
						  &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(procmetrics_parse_limits("Limit x\nMax open files            unlimited            unlimited            files\n",
						  &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(procmetrics_parse_limits("Limit x\nMax processes 5 5 processes\n", &v), -EBADMSG);
	assert_int_equal(procmetrics_parse_limits("Limit x\nMax open files            many\n", &v), -EBADMSG);
}

static void test_self(void **state)
{
	struct proc_row r;
	struct rusage ru;
	struct rlimit rl;
	uint64_t btime;
	double cpu;
	volatile unsigned long spin = 0;

	(void)state;
	for (unsigned long i = 0; i < 50000000; i++)
		spin += i;
	assert_int_equal(procmetrics_boot_time(&btime), 0);
	assert_true(btime > 1000000000 && btime <= (uint64_t)time(NULL));
	assert_int_equal(procmetrics_read(getpid(), btime, &r), 0);
	assert_int_equal(r.valid, 1);
	getrusage(RUSAGE_SELF, &ru);
	cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	/* clock ticks against microseconds: within two ticks and a little */
	assert_true(r.cpu_seconds > 0 && r.cpu_seconds <= cpu + 0.05 && r.cpu_seconds >= cpu - 0.05);
	assert_true(r.resident_bytes > 100000);
	assert_true(r.virtual_bytes >= r.resident_bytes);
	assert_true(r.start_time_seconds <= (double)time(NULL) + 1 && r.start_time_seconds > time(NULL) - 3600);
	getrlimit(RLIMIT_NOFILE, &rl);
	assert_int_equal(r.max_fds, rl.rlim_cur == RLIM_INFINITY ? 0 : rl.rlim_cur);
	if (r.flags & PROC_ROW_OPEN_FDS)
		assert_true(r.open_fds >= 3);
	assert_int_equal(procmetrics_read(999999999, btime, &r), -ESRCH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stat),
		cmocka_unit_test(test_stat_refused),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_self),
	};
	return cmocka_run_group_tests_name("procmetrics", tests, NULL, NULL);
}
