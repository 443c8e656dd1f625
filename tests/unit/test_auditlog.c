/*
 * test_auditlog.c - the kernel's record of a seccomp kill: parsing (every
 * input placed against an unmapped page), refusal of records the kernel
 * did not write, and a real kill found in the real /dev/kmsg (root).
 */
#include <errno.h>
#include <seccomp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "guard.h"
#include "auditlog.h"

#define REAL "6,1031,498827752,-;audit: type=1326 audit(1796018553.807:8): auid=4294967295 " \
	     "uid=999 gid=995 ses=4294967295 pid=8628 comm=\"vigild\" exe=\"/usr/sbin/vigild\" " \
	     "sig=31 arch=c000003e syscall=59 compat=0 ip=0x7f3e2735d4f7 code=0x80000000"

static int parse(const char *s, struct auditlog_seccomp *r)
{
	struct guarded g;
	int rc;

	guard_copy(&g, s, strlen(s));
	rc = auditlog_parse((const char *)g.data, strlen(s), r);
	guard_free(&g);
	return rc;
}

static void test_parse_kernel_record(void **state)
{
	struct auditlog_seccomp r;

	assert_int_equal(parse(REAL, &r), 0);
	assert_int_equal(r.pid, 8628);
	assert_int_equal(r.usec, 498827752);
	assert_int_equal(r.arch, 0xc000003e);
	assert_int_equal(r.syscall, 59);
	assert_int_equal(r.sig, 31);
	assert_string_equal(auditlog_syscall_name(&r), "execve");
	/* the dictionary lines after the message are not read as fields */
	assert_int_equal(parse(REAL "\n SUBSYSTEM=x pid=1", &r), 0);
	assert_int_equal(r.pid, 8628);
}

static void test_refuse_what_the_kernel_did_not_write(void **state)
{
	struct auditlog_seccomp r;

	char user[sizeof(REAL) + 4];

	/* written into /dev/kmsg from userspace: PRI 14 is facility 1 (user), not 0 */
	snprintf(user, sizeof(user), "14%s", strchr(REAL, ','));
	assert_int_equal(parse(user, &r), -ENOENT);
	/* another audit type, another message */
	assert_int_equal(parse("6,1,2,-;audit: type=1400 pid=5 arch=c000003e syscall=1 sig=0", &r), -ENOENT);
	assert_int_equal(parse("6,1,2,-;hello", &r), -ENOENT);
	/* "pid=" inside a word is not the pid field */
	assert_int_equal(parse("6,1,2,-;audit: type=1326 comm=xpid=5 arch=c000003e syscall=59 sig=31", &r),
			 -EINVAL);
	/* malformed: no prefix, bad numbers, a field missing, overflow */
	assert_int_equal(parse("audit: type=1326 pid=5", &r), -EINVAL);
	assert_int_equal(parse("6;audit: type=1326 pid=5", &r), -EINVAL);
	assert_int_equal(parse("6,1,2,-;audit: type=1326 pid=-5 arch=c000003e syscall=59 sig=31", &r), -EINVAL);
	assert_int_equal(parse("6,1,2,-;audit: type=1326 pid=5 arch=zz syscall=59 sig=31", &r), -EINVAL);
	assert_int_equal(parse("6,1,2,-;audit: type=1326 pid=5 arch=c000003e sig=31", &r), -EINVAL);
	assert_int_equal(parse("6,1,2,-;audit: type=1326 pid=99999999999 arch=c000003e syscall=59 sig=31", &r),
			 -EINVAL);
	assert_int_equal(parse("6,1,2,-;audit: type=1326 pid= arch=c000003e syscall=59 sig=31", &r), -EINVAL);
	assert_int_equal(parse("", &r), -EINVAL);
	/* every prefix of a good record: no over-read, no crash */
	for (size_t n = 0; n < strlen(REAL); n++) {
		struct guarded g;

		guard_copy(&g, REAL, n);
		(void)auditlog_parse((const char *)g.data, n, &r);
		guard_free(&g);
	}
}

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* A child killed by a real seccomp filter: its record is found by pid. */
static void test_real_kill(void **state)
{
	struct auditlog *a;
	struct auditlog_seccomp r;
	uint64_t since;
	int status;
	pid_t pid;

	assert_int_equal(auditlog_open("/dev/kmsg", &a), 0);
	/* the kernel log's clock trails CLOCK_MONOTONIC by a few ms here: a second of slack */
	since = mono_us() - 1000000;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		scmp_filter_ctx c = seccomp_init(SCMP_ACT_ALLOW);

		if (!c || seccomp_rule_add(c, SCMP_ACT_KILL_PROCESS, SCMP_SYS(getppid), 0) < 0 ||
		    seccomp_load(c) < 0)
			_exit(2);
		syscall(SYS_getppid);
		_exit(3);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSYS);
	assert_int_equal(auditlog_seccomp_of(a, pid, since, 2000, &r), 0);
	assert_int_equal(r.pid, pid);
	assert_int_equal(r.syscall, SYS_getppid);
	assert_int_equal(r.sig, SIGSYS);
	assert_string_equal(auditlog_syscall_name(&r), "getppid");
	/* logged after the fork, by the kernel's clock as by ours (within the slack) */
	assert_true(r.usec >= since);
	/* kept: asked again, still there; another pid, not; not from before */
	assert_int_equal(auditlog_seccomp_of(a, pid, since, 2000, &r), 0);
	assert_int_equal(auditlog_seccomp_of(a, pid, r.usec + 1, 0, &r), -ENOENT);
	assert_int_equal(auditlog_seccomp_of(a, getpid(), 0, 0, &r), -ENOENT);
	auditlog_free(a);
	auditlog_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_kernel_record),
		cmocka_unit_test(test_refuse_what_the_kernel_did_not_write),
		cmocka_unit_test(test_real_kill),
	};
	return cmocka_run_group_tests_name("auditlog", tests, NULL, NULL);
}
