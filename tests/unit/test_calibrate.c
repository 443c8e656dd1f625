/*
 * test_calibrate.c - the start-up calibration of the per-sample interrupt
 * cost, run for real (root, perf events): a figure within bounds measured
 * on this host, repeatable, independent of the rate it is measured at
 * (down to the lowest rate, where the signal is weakest), given on a host
 * with every CPU busy, within its time budget, leaving no child, fd or
 * mapping behind; bad arguments refused.
 *
 * No figure of the development VM is assumed: the cost of one sample
 * differs between hosts (~12 us on one, 3-5 us on another of the same
 * kind).  The bounds are what this host shows: a sample costs at least a
 * null system call (every interrupt enters and leaves the kernel), and the
 * interrupts at the default rate cannot take more than the CPU's time.
 *
 * A busy host may make one calibration too noisy (-EAGAIN): like the
 * monitor, the test tries three times before it fails.
 */
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "calibrate.h"

#define ATTEMPTS 3	/* as the monitor */
/*
 * Wall time allowed past the deadline for the fork and the reaping, where
 * the bound is only a sanity check (calibrate()): a second, since make
 * check runs these tests beside others that load the host (200 ms was once
 * exceeded there).  test_busy_host, whose point the deadline is, keeps
 * 200 ms (BUSY_SLACK_NS): with the CPU shared, the default rounds alone
 * would take longer than the deadline and that.
 */
#define REAP_SLACK_NS 1000000000ull
#define BUSY_SLACK_NS 200000000ull

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own fd */
}

/* Shared anonymous mappings (what calibrate uses for its results). */
static int shared_anon_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "/dev/zero") != NULL || strstr(line, "perf_event") != NULL;
	fclose(f);
	return n;
}

/*
 * The CPU time of the cheapest system call on this host, in ns: the
 * fastest of 20 batches of 1000 getppid() calls.  Every interrupt enters
 * and leaves the kernel too, so one sample cannot cost less.
 */
static double null_syscall_ns(void)
{
	double best = 1e9;

	for (int b = 0; b < 20; b++) {
		uint64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);

		for (int i = 0; i < 1000; i++)
			(void)syscall(SYS_getppid);
		t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
		if (t0 / 1000.0 < best)
			best = t0 / 1000.0;
	}
	return best;
}

/* Calibrate, retrying a too-noisy measurement; checks what holds for every result. */
static struct calibrate_result calibrate(unsigned hz, unsigned rounds)
{
	struct calibrate_result r;
	int rc = -EAGAIN;

	for (int i = 0; i < ATTEMPTS && rc == -EAGAIN; i++) {
		uint64_t t0 = clock_ns(CLOCK_MONOTONIC);

		memset(&r, 0xa5, sizeof(r));
		rc = calibrate_sample_cost(hz, rounds, &r);
		/* The time budget holds whatever the outcome (plus fork and reaping). */
		assert_true(clock_ns(CLOCK_MONOTONIC) - t0 < CALIBRATE_DEADLINE_NS + REAP_SLACK_NS);
		if (rc == -EAGAIN)
			fprintf(stderr, "calibrate(%u, %u): too noisy, retrying\n", hz, rounds);
	}
	assert_int_equal(rc, 0);
	print_message("hz=%u rounds=%u used=%u ns_per_sample=%llu +-%llu samples=%llu base=%llu loaded=%llu\n",
		      r.hz, r.rounds, r.used, (unsigned long long)r.ns_per_sample,
		      (unsigned long long)r.uncertainty_ns, (unsigned long long)r.samples,
		      (unsigned long long)r.base_ns, (unsigned long long)r.loaded_ns);
	assert_int_equal(r.hz, hz);
	assert_true(r.rounds >= CALIBRATE_ROUNDS_MIN && r.rounds <= rounds);
	/*
	 * The fastest tenth of the loaded runs, at least one.  rounds counts
	 * the kind with fewer runs: cut by the deadline, B L L B ... may have
	 * one loaded run more than base runs.
	 */
	assert_true(r.used >= 1 && r.used <= ((r.rounds + 1) / 10 > 0 ? (r.rounds + 1) / 10 : 1));
	assert_true(r.ns_per_sample >= CALIBRATE_MIN_NS && r.ns_per_sample <= CALIBRATE_MAX_NS);
	assert_true(r.uncertainty_ns * 2 <= r.ns_per_sample + 1); /* both rounded */
	/*
	 * cpu-clock samples once per period of the task's CPU time, interrupts
	 * included, so loaded runs of loaded_ns in all hold loaded_ns x hz
	 * samples: to within one per run (where in its period each run began),
	 * and 2% for the CPU time outside the timed loop.  A count taken from
	 * anything but real overflows (a stolen vCPU advances the event's
	 * time without interrupts) would be off by more.
	 */
	{
		double expect = (double)r.loaded_ns * hz / 1e9;
		/*
		 * That holds while the interrupts leave the timer room: where
		 * one sample costs a good part of its own period (45 us at
		 * 20 kHz is 90% of it, seen on a slow VM), the hrtimer behind
		 * cpu-clock overruns and periods are skipped.  There
		 * the count is no claim either way (a slow VM gave one sample
		 * too many of 29 at 35% there, too few at 90%): the host's
		 * measured cost decides, and the skip is said.
		 */
		double busy = (double)r.ns_per_sample * hz / 1e9;

		if (busy < 0.25)
			assert_true(r.samples > 0.98 * expect - r.used &&
				    r.samples < 1.02 * expect + r.used);
		else
			print_message("interrupts take %.0f%% of the CPU at %u Hz: sample count not checked\n",
				      100 * busy, hz);
	}
	if (!r.clamped) {
		uint64_t cost;

		assert_true(r.loaded_ns > r.base_ns);
		cost = (r.loaded_ns - r.base_ns + r.samples / 2) / r.samples;
		assert_true(cost + 1 >= r.ns_per_sample && cost <= r.ns_per_sample + 1);
	}
	return r;
}

static void test_bad_arguments(void **state)
{
	struct calibrate_result r;

	memset(&r, 0x5a, sizeof(r));
	assert_int_equal(calibrate_sample_cost(0, CALIBRATE_ROUNDS_DEFAULT, &r), -EINVAL);
	assert_int_equal(calibrate_sample_cost(CALIBRATE_HZ_MIN - 1, CALIBRATE_ROUNDS_DEFAULT, &r), -EINVAL);
	assert_int_equal(calibrate_sample_cost(CALIBRATE_HZ_MAX + 1, CALIBRATE_ROUNDS_DEFAULT, &r), -EINVAL);
	assert_int_equal(calibrate_sample_cost(100000, CALIBRATE_ROUNDS_DEFAULT, &r), -EINVAL);
	assert_int_equal(calibrate_sample_cost(10000, 0, &r), -EINVAL);
	assert_int_equal(calibrate_sample_cost(10000, CALIBRATE_ROUNDS_MIN - 1, &r), -EINVAL);
	assert_int_equal(calibrate_sample_cost(10000, CALIBRATE_ROUNDS_MAX + 1, &r), -EINVAL);
	assert_int_equal(calibrate_sample_cost(10000, CALIBRATE_ROUNDS_DEFAULT, NULL), -EINVAL);
	/* ret_result is written on success only. */
	for (size_t i = 0; i < sizeof(r); i++)
		assert_int_equal(((unsigned char *)&r)[i], 0x5a);
}

/*
 * What the monitor asks for gives a figure within this host's bounds: more
 * than a null system call, and less than the sampling period (the
 * interrupts at hz cannot take more than all of the CPU).  The calibration
 * leaves no child (waitpid finds none), no fd and no mapping.
 */
static void test_plausible_and_clean(void **state)
{
	int fds = open_fds(), maps = shared_anon_maps();
	double floor_ns = null_syscall_ns();
	struct calibrate_result r = calibrate(CALIBRATE_HZ_DEFAULT, CALIBRATE_ROUNDS_DEFAULT);

	print_message("null system call: %.0f ns\n", floor_ns);
	assert_false(r.clamped);
	assert_true((double)r.ns_per_sample > floor_ns);
	assert_true(r.ns_per_sample < 1000000000ull / CALIBRATE_HZ_DEFAULT);
	assert_int_equal(open_fds(), fds);
	assert_int_equal(shared_anon_maps(), maps);
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/* Three in a row agree to within a factor of two. */
static void test_repeatable(void **state)
{
	uint64_t lo = UINT64_MAX, hi = 0;

	for (int i = 0; i < 3; i++) {
		uint64_t c = calibrate(CALIBRATE_HZ_DEFAULT, CALIBRATE_ROUNDS_DEFAULT).ns_per_sample;

		lo = c < lo ? c : lo;
		hi = c > hi ? c : hi;
	}
	assert_true(hi <= 2 * lo);
}

/*
 * The cost is per sample: ten times the rate, about the same figure.  At
 * the lowest rate the signal is a tenth of the highest's: on this VM,
 * ~2.5% of the loop's time, what a host where a sample costs 2.5 us has
 * at 10 kHz.  An answer there is what the monitor needs on such hosts.
 */
static void test_rate_independent(void **state)
{
	uint64_t slow = calibrate(CALIBRATE_HZ_MIN, CALIBRATE_ROUNDS_DEFAULT).ns_per_sample;
	uint64_t fast = calibrate(CALIBRATE_HZ_MAX, CALIBRATE_ROUNDS_DEFAULT).ns_per_sample;

	assert_true(fast <= 2 * slow && slow <= 2 * fast);
}

/* The fewest rounds still give an answer (and an uncertainty). */
static void test_min_rounds(void **state)
{
	struct calibrate_result r = calibrate(CALIBRATE_HZ_DEFAULT, CALIBRATE_ROUNDS_MIN);

	assert_int_equal(r.rounds, CALIBRATE_ROUNDS_MIN);
}

/*
 * Every CPU busy (a spinning child pinned to each), and the weakest
 * signal: the monitor still gets an answer within the deadline, which
 * agrees with the figure of a default calibration taken just before to
 * within a factor of two.
 */
static void test_busy_host(void **state)
{
	uint64_t quiet = calibrate(CALIBRATE_HZ_DEFAULT, CALIBRATE_ROUNDS_DEFAULT).ns_per_sample;
	uint64_t t0, longest = 0;
	cpu_set_t online;
	pid_t burners[CPU_SETSIZE];
	int n = 0, rc = -EAGAIN, tries = 0;
	struct calibrate_result r;

	assert_int_equal(sched_getaffinity(0, sizeof(online), &online), 0);
	for (int cpu = 0; cpu < CPU_SETSIZE && n < CPU_COUNT(&online); cpu++) {
		pid_t pid;

		if (!CPU_ISSET(cpu, &online))
			continue;
		pid = fork();
		if (pid == 0) {
			cpu_set_t one;

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			CPU_ZERO(&one);
			CPU_SET(cpu, &one);
			(void)sched_setaffinity(0, sizeof(one), &one);
			for (;;)
				__asm__ volatile("");
		}
		if (pid < 0)
			break;
		burners[n++] = pid;
	}
	usleep(100000);	/* let them settle on their CPUs */
	/* No assertion until the burners are gone: a failure would leave them. */
	while (rc == -EAGAIN && tries++ < ATTEMPTS) {
		t0 = clock_ns(CLOCK_MONOTONIC);
		rc = calibrate_sample_cost(CALIBRATE_HZ_MIN, CALIBRATE_ROUNDS_DEFAULT, &r);
		t0 = clock_ns(CLOCK_MONOTONIC) - t0;
		longest = t0 > longest ? t0 : longest;
	}
	for (int i = 0; i < n; i++) {
		kill(burners[i], SIGKILL);
		waitpid(burners[i], NULL, 0);
	}
	print_message("busy: %d burners, %d attempt(s), rc %d, longest %llu ms; quiet figure %llu ns\n",
		      n, tries, rc, (unsigned long long)(longest / 1000000), (unsigned long long)quiet);
	assert_int_equal(n, CPU_COUNT(&online));
	assert_true(longest < CALIBRATE_DEADLINE_NS + BUSY_SLACK_NS);
	assert_int_equal(rc, 0);
	print_message("hz=%u rounds=%u used=%u ns_per_sample=%llu +-%llu samples=%llu\n", r.hz, r.rounds,
		      r.used, (unsigned long long)r.ns_per_sample, (unsigned long long)r.uncertainty_ns,
		      (unsigned long long)r.samples);
	assert_false(r.clamped);
	assert_true(r.uncertainty_ns * 2 <= r.ns_per_sample + 1);
	assert_true(r.ns_per_sample <= 2 * quiet && quiet <= 2 * r.ns_per_sample);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_plausible_and_clean),
		cmocka_unit_test(test_repeatable),
		cmocka_unit_test(test_rate_independent),
		cmocka_unit_test(test_min_rounds),
		cmocka_unit_test(test_busy_host),
	};
	return cmocka_run_group_tests_name("calibrate", tests, NULL, NULL);
}
