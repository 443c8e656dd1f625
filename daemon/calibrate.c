/*
 * calibrate.c - per-sample interrupt cost, measured at start-up (the method
 * is in calibrate.h; the figures in docs/overhead.md).
 *
 * Runs in the monitor, as root, before privileges are dropped.  The parent
 * only forks, waits for the child's reports with a deadline, kills and reaps
 * it, and does the arithmetic.  The child does the measuring and uses
 * nothing but system calls (no malloc, no stdio), so that forking from a
 * process with threads would be safe too.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "calibrate.h"

#define NSEC_PER_SEC 1000000000ull

/* The loop's CPU time is chosen so that all runs take this much CPU ... */
#define WORK_BUDGET_NS 1000000000ull
/* ... assuming a sample costs at most this (more only runs into the deadline) ... */
#define ASSUMED_MAX_COST_NS 25000ull
/* ... and no run is longer than this, nor shorter than that. */
#define RUN_MAX_NS 150000000ull
#define RUN_MIN_NS 20000000ull
/* The loop is timed over chunks of at least this long to size it. */
#define SIZING_NS 10000000ull

/* One run, from the child to the parent.  Written whole: < PIPE_BUF. */
struct report {
	int32_t err;		/* 0, or -errno: the child stops */
	uint32_t loaded;	/* 1: the event was enabled around the loop */
	uint64_t cpu_ns;	/* CPU time of the loop */
	uint64_t count_ns;	/* loaded: the event's count after the run (cumulative) */
};

static volatile uint64_t work_sink;

/*
 * The fixed work: an integer recurrence the compiler can neither vectorize
 * nor shorten, touching no memory, so that its speed does not depend on
 * caches another task may have disturbed.
 */
static void work(uint64_t iters)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (uint64_t i = 0; i < iters; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		x ^= x >> 29;
		__asm__ volatile("" : "+r"(x));
	}
	work_sink = x;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static void send_report(int fd, const struct report *r)
{
	ssize_t n;

	do
		n = write(fd, r, sizeof(*r));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(*r))
		_exit(1);
}

static _Noreturn void child_fail(int fd, int err)
{
	struct report r = { .err = -err };

	send_report(fd, &r);
	_exit(1);
}

/*
 * The sampling event on the child itself, disabled: the sampler's cpu-clock
 * event with its frequency turned into the period the kernel would derive
 * from it (cpu-clock does that at open: NSEC_PER_SEC / sample_freq).
 * Kernel samples are not excluded, as in the sampler.  Where that is not
 * allowed (perf_event_paranoid >= 2 without CAP_PERFMON), user-only
 * sampling costs the same: the timer fires whatever mode it interrupts,
 * and the loop runs in user mode.
 */
static int open_event(uint64_t period)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.sample_period = period,
		.disabled = 1,
	};
	int fd = (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);

	if (fd < 0 && (errno == EACCES || errno == EPERM)) {
		attr.exclude_kernel = 1;
		attr.exclude_hv = 1;
		fd = (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	}
	return fd < 0 ? -errno : fd;
}

/* Iterations of work() that take about run_ns of CPU time. */
static uint64_t size_work(uint64_t run_ns)
{
	uint64_t n = 1u << 16, t = 0;

	for (;;) {
		uint64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);

		work(n);
		t = clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
		if (t >= SIZING_NS || n >= (1ull << 40))
			break;
		n *= 2;
	}
	if (t == 0)
		t = 1;
	/* n x run_ns fits: n <= 2^40 and run_ns <= RUN_MAX_NS < 2^28. */
	return n * run_ns / t + 1;
}

static _Noreturn void child_main(int fd, pid_t parent, int cpu, uint64_t period, uint64_t run_ns,
				 unsigned rounds)
{
	uint64_t iters;
	int efd;

	/* Never outlive the caller, whatever path it takes. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(1);
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		/* Unpinned still works, only noisier: not a reason to fail. */
		(void)sched_setaffinity(0, sizeof(set), &set);
	}
	efd = open_event(period);
	if (efd < 0)
		child_fail(fd, -efd);
	/* Sizing the loop also warms the CPU up before the first timed run. */
	iters = size_work(run_ns);

	for (unsigned i = 0; i < 2 * rounds; i++) {
		/* B L L B B L L B ...: each pair has one of each, and the order alternates. */
		struct report r = { .loaded = (i % 4 == 1 || i % 4 == 2) };
		uint64_t t0, t1;

		if (r.loaded && ioctl(efd, PERF_EVENT_IOC_ENABLE, 0) != 0)
			child_fail(fd, errno);
		t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		work(iters);
		t1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		if (r.loaded) {
			if (ioctl(efd, PERF_EVENT_IOC_DISABLE, 0) != 0)
				child_fail(fd, errno);
			if (read(efd, &r.count_ns, sizeof(r.count_ns)) != (ssize_t)sizeof(r.count_ns))
				child_fail(fd, EIO);
		}
		if (t0 == 0 || t1 < t0)
			child_fail(fd, EIO);
		r.cpu_ns = t1 - t0;
		send_report(fd, &r);
	}
	_exit(0);
}

/*
 * Read one report before the deadline.  1: got it; 0: the deadline passed;
 * -EIO: end of file (the child died); -errno: poll or read failed.
 */
static int read_report(int fd, uint64_t deadline, struct report *r)
{
	size_t got = 0;

	while (got < sizeof(*r)) {
		uint64_t now = clock_ns(CLOCK_MONOTONIC);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int rc;

		if (now >= deadline)
			return 0;
		rc = poll(&p, 1, (int)((deadline - now + 999999) / 1000000));
		if (rc < 0 && errno != EINTR)
			return -errno;
		if (rc <= 0)
			continue;
		n = read(fd, (char *)r + got, sizeof(*r) - got);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n == 0)
			return -EIO;
		if (n > 0)
			got += (size_t)n;
	}
	return 1;
}

static void reap(pid_t pid)
{
	(void)kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* Fastest and second-fastest run of one kind. */
struct best {
	uint64_t first, second;
	uint64_t samples;	/* of the fastest */
	unsigned runs;
};

static void best_add(struct best *b, uint64_t ns, uint64_t samples)
{
	if (b->runs++ == 0 || ns < b->first) {
		b->second = b->runs == 1 ? ns : b->first;
		b->first = ns;
		b->samples = samples;
	} else if (b->runs == 2 || ns < b->second) {
		b->second = ns;
	}
}

/* Length of one run's loop, in CPU ns, so that all of them fit the budget. */
static uint64_t run_length(unsigned hz, unsigned rounds)
{
	/*
	 * A loaded run of base length T takes T / (1 - hz x cost): samples
	 * come per CPU time, interrupts included.  With hz <= 20000 and the
	 * assumed cost, 1 - hz x cost >= 1/2.
	 */
	double busy = (double)hz * (double)ASSUMED_MAX_COST_NS / (double)NSEC_PER_SEC;
	double per_round = 1.0 + 1.0 / (1.0 - busy);
	double t = (double)WORK_BUDGET_NS / ((double)rounds * per_round);

	if (t > (double)RUN_MAX_NS)
		return RUN_MAX_NS;
	if (t < (double)RUN_MIN_NS)
		return RUN_MIN_NS;
	return (uint64_t)t;
}

static int estimate(const struct best *base, const struct best *loaded, unsigned hz,
		    struct calibrate_result *ret)
{
	double est, unc;

	if (base->runs < 2 || loaded->runs < 2 || loaded->samples == 0)
		return -EAGAIN;
	est = ((double)loaded->first - (double)base->first) / (double)loaded->samples;
	unc = ((double)(base->second - base->first) + (double)(loaded->second - loaded->first)) /
	      (double)loaded->samples;
	/* Known to within half of itself, or of the floor when it is below. */
	if (unc > (est > (double)CALIBRATE_MIN_NS ? est : (double)CALIBRATE_MIN_NS) / 2)
		return -EAGAIN;
	if (est > (double)CALIBRATE_MAX_NS)
		return -ERANGE;

	memset(ret, 0, sizeof(*ret));
	ret->clamped = est < (double)CALIBRATE_MIN_NS;
	ret->ns_per_sample = ret->clamped ? CALIBRATE_MIN_NS : (uint64_t)(est + 0.5);
	ret->samples = loaded->samples;
	ret->base_ns = base->first;
	ret->loaded_ns = loaded->first;
	ret->uncertainty_ns = (uint64_t)(unc + 0.5);
	ret->rounds = base->runs < loaded->runs ? base->runs : loaded->runs;
	ret->hz = hz;
	return 0;
}

int calibrate_sample_cost(unsigned hz, unsigned rounds, struct calibrate_result *ret_result)
{
	uint64_t deadline = clock_ns(CLOCK_MONOTONIC) + CALIBRATE_DEADLINE_NS;
	uint64_t period, run_ns, prev_count = 0;
	struct best base = { 0 }, loaded = { 0 };
	struct calibrate_result res;
	int fds[2], rc = 0, cpu;
	pid_t parent, pid;

	if (hz < CALIBRATE_HZ_MIN || hz > CALIBRATE_HZ_MAX || rounds < CALIBRATE_ROUNDS_MIN ||
	    rounds > CALIBRATE_ROUNDS_MAX || !ret_result)
		return -EINVAL;
	period = NSEC_PER_SEC / hz;
	run_ns = run_length(hz, rounds);
	cpu = sched_getcpu();	/* just woken here: likely the idlest CPU */

	if (pipe2(fds, O_CLOEXEC) != 0)
		return -errno;
	parent = getpid();
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(fds[0]);
		close(fds[1]);
		return rc;
	}
	if (pid == 0) {
		close(fds[0]);
		child_main(fds[1], parent, cpu, period, run_ns, rounds);
	}
	close(fds[1]);

	for (unsigned i = 0; i < 2 * rounds; i++) {
		struct report r;
		int got = read_report(fds[0], deadline, &r);

		if (got < 0) {
			rc = got;
			break;
		}
		if (got == 0)
			break;	/* the deadline: judge on what arrived */
		if (r.err < 0) {
			rc = r.err;
			break;
		}
		if (r.loaded) {
			/* Overflows so far are floor(count / period): see calibrate.h. */
			best_add(&loaded, r.cpu_ns, r.count_ns / period - prev_count / period);
			prev_count = r.count_ns;
		} else {
			best_add(&base, r.cpu_ns, 0);
		}
	}
	reap(pid);
	close(fds[0]);
	if (rc < 0)
		return rc;

	rc = estimate(&base, &loaded, hz, &res);
	if (rc == 0)
		*ret_result = res;
	return rc;
}
