/*
 * calibrate.c - per-sample interrupt cost, measured at start-up (the method
 * is in calibrate.h; the figures in docs/overhead.md).
 *
 * Runs in the monitor, as root, before privileges are dropped.  The parent
 * only forks, waits for the child with a deadline, kills and reaps it, and
 * does the arithmetic on the runs the child left in a shared mapping.  The
 * child does the measuring and uses nothing but system calls (no malloc,
 * no stdio), so that forking from a process with threads would be safe too.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "calibrate.h"

#define NSEC_PER_SEC 1000000000ull

/* The loop is timed over chunks of at least this long to size it. */
#define SIZING_NS 10000000ull
/*
 * Data pages of the event's ring buffer (a power of two).  A run holds at
 * most ~60 samples of 8 bytes; a full buffer would only turn records into
 * a "lost" count, which is counted too.
 */
#define RB_PAGES 2u
/* Each kind is represented by its fastest 1/TRIM runs (at least one). */
#define TRIM 10u

/* One run, written by the child into the shared mapping. */
struct run {
	uint64_t cpu_ns;	/* CPU time of the loop */
	uint32_t samples;	/* loaded: overflows counted during the run */
	uint32_t loaded;	/* 1: the event was enabled around the loop */
};

/* The mapping shared with the child: runs [0, done) are complete. */
struct shared {
	uint32_t done;
	uint32_t pad;
	struct run run[2 * CALIBRATE_ROUNDS_MAX];
};

/* The event and its ring buffer, in the child. */
struct event {
	int fd;
	struct perf_event_mmap_page *meta;
	const unsigned char *data;
	uint64_t mask;		/* data size - 1 */
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

/* The child's last word: 0 (all runs done) or -errno.  Then it exits. */
static _Noreturn void child_exit(int fd, int32_t err)
{
	ssize_t n;

	do
		n = write(fd, &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	_exit(err ? 1 : 0);
}

/*
 * The sampling event on the child itself, disabled: the sampler's cpu-clock
 * event with its frequency turned into the period the kernel would derive
 * from it (cpu-clock does that at open: NSEC_PER_SEC / sample_freq).
 * Kernel samples are not excluded, as in the sampler.  Where that is not
 * allowed (perf_event_paranoid >= 2 without CAP_PERFMON), user-only
 * sampling costs the same: the timer fires whatever mode it interrupts,
 * and the loop runs in user mode.
 *
 * Each overflow writes an 8-byte record (no sample fields) into a small
 * ring buffer, only so that overflows can be counted.  The wakeup
 * watermark is the whole buffer, so that records almost never raise the
 * extra interrupt that wakes a reader.
 */
static int open_event(uint64_t period, size_t page, struct event *ret)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.sample_period = period,
		.disabled = 1,
		.watermark = 1,
		.wakeup_watermark = UINT32_MAX,
	};
	int fd = (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	void *m;

	if (fd < 0 && (errno == EACCES || errno == EPERM)) {
		attr.exclude_kernel = 1;
		attr.exclude_hv = 1;
		fd = (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	}
	if (fd < 0)
		return errno ? -errno : -EIO;
	m = mmap(NULL, (1 + RB_PAGES) * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return errno ? -errno : -EIO;	/* the child exits: the kernel closes fd */
	ret->fd = fd;
	ret->meta = m;
	ret->data = (const unsigned char *)m + page;
	ret->mask = RB_PAGES * page - 1;
	return 0;
}

/*
 * Overflows recorded since the last call, and the buffer emptied: sample
 * records, plus what "lost" records say was dropped.  -EIO on a record
 * that makes no sense.
 */
static int64_t drain_samples(struct event *ev)
{
	uint64_t head = __atomic_load_n(&ev->meta->data_head, __ATOMIC_ACQUIRE);
	uint64_t tail = ev->meta->data_tail, n = 0;

	while (tail < head) {
		struct perf_event_header h;

		/* Records are 8-byte aligned: a header never wraps. */
		memcpy(&h, ev->data + (tail & ev->mask), sizeof(h));
		if (h.size < sizeof(h) || h.size % 8 || h.size > head - tail)
			return -EIO;
		if (h.type == PERF_RECORD_SAMPLE) {
			n++;
		} else if (h.type == PERF_RECORD_LOST && h.size >= sizeof(h) + 16) {
			uint64_t lost;	/* after the header and the event id */

			memcpy(&lost, ev->data + ((tail + sizeof(h) + 8) & ev->mask), sizeof(lost));
			n += lost;
		}
		tail += h.size;
	}
	__atomic_store_n(&ev->meta->data_tail, tail, __ATOMIC_RELEASE);
	return (int64_t)n;
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
	/* n x run_ns fits: n <= 2^40 and run_ns < 2^22. */
	return n * run_ns / t + 1;
}

static _Noreturn void child_main(int fd, struct shared *sh, pid_t parent, int cpu, uint64_t period,
				 size_t page, unsigned rounds)
{
	struct event ev = { .fd = -1 };
	uint64_t iters;
	int rc;

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
	rc = open_event(period, page, &ev);
	if (rc < 0)
		child_exit(fd, rc);
	/* Sizing the loop also warms the CPU up before the first timed run. */
	iters = size_work(CALIBRATE_RUN_NS);

	for (unsigned i = 0; i < 2 * rounds; i++) {
		/* B L L B B L L B ...: each pair has one of each, and the order alternates. */
		struct run r = { .loaded = (i % 4 == 1 || i % 4 == 2) };
		uint64_t t0, t1;

		if (r.loaded && ioctl(ev.fd, PERF_EVENT_IOC_ENABLE, 0) != 0)
			child_exit(fd, -errno);
		t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		work(iters);
		t1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		if (r.loaded) {
			int64_t n;

			if (ioctl(ev.fd, PERF_EVENT_IOC_DISABLE, 0) != 0)
				child_exit(fd, -errno);
			n = drain_samples(&ev);
			if (n < 0 || n > UINT32_MAX)
				child_exit(fd, -EIO);
			r.samples = (uint32_t)n;
		}
		if (t0 == 0 || t1 < t0)
			child_exit(fd, -EIO);
		r.cpu_ns = t1 - t0;
		sh->run[i] = r;
		__atomic_store_n(&sh->done, i + 1, __ATOMIC_RELEASE);
	}
	child_exit(fd, 0);
}

/*
 * Wait for the child's last word until the deadline.  1: got it in *err;
 * 0: the deadline passed; -EIO: end of file (the child died); -errno: poll
 * or read failed.
 */
static int wait_child(int fd, uint64_t deadline, int32_t *err)
{
	size_t got = 0;

	while (got < sizeof(*err)) {
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
		n = read(fd, (char *)err + got, sizeof(*err) - got);
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

static int cmp_run(const void *a, const void *b)
{
	uint64_t x = ((const struct run *)a)->cpu_ns, y = ((const struct run *)b)->cpu_ns;

	return (x > y) - (x < y);
}

/* The estimate from one set of runs: the fastest tenth of each kind. */
struct fit {
	double est;
	double base_ns;		/* used x the mean of the fastest base runs */
	uint64_t loaded_ns, samples;
	unsigned nbase, nloaded, used;
};

/*
 * Runs [0, n) whose group of four (B L L B) has parity half (0 or 1), or
 * all of them (half < 0).  scratch holds n runs.  -EAGAIN when either kind
 * has fewer than min runs, or the fastest loaded runs have no sample.
 */
static int fit_runs(const struct run *runs, unsigned n, int half, unsigned min, struct run *scratch,
		    struct fit *ret)
{
	struct run *base = scratch, *loaded;
	unsigned nb = 0, nl = 0, kb, kl;
	double bmean = 0;
	struct fit f = { 0 };

	for (unsigned i = 0; i < n; i++)
		if ((half < 0 || (int)(i / 4 % 2) == half) && !runs[i].loaded)
			base[nb++] = runs[i];
	loaded = base + nb;
	for (unsigned i = 0; i < n; i++)
		if ((half < 0 || (int)(i / 4 % 2) == half) && runs[i].loaded)
			loaded[nl++] = runs[i];
	if (nb < min || nl < min || nb == 0 || nl == 0)
		return -EAGAIN;
	qsort(base, nb, sizeof(*base), cmp_run);
	qsort(loaded, nl, sizeof(*loaded), cmp_run);
	kb = nb / TRIM > 0 ? nb / TRIM : 1;
	kl = nl / TRIM > 0 ? nl / TRIM : 1;
	for (unsigned i = 0; i < kb; i++)
		bmean += (double)base[i].cpu_ns;
	bmean /= kb;
	for (unsigned i = 0; i < kl; i++) {
		f.loaded_ns += loaded[i].cpu_ns;
		f.samples += loaded[i].samples;
	}
	if (f.samples == 0)
		return -EAGAIN;
	f.base_ns = bmean * kl;
	f.est = ((double)f.loaded_ns - f.base_ns) / (double)f.samples;
	f.nbase = nb;
	f.nloaded = nl;
	f.used = kl;
	*ret = f;
	return 0;
}

static int estimate(const struct run *runs, unsigned n, unsigned hz, struct calibrate_result *ret)
{
	struct run scratch[2 * CALIBRATE_ROUNDS_MAX];
	struct fit all, h0, h1;
	double unc, floor_or_est;
	int rc;

	rc = fit_runs(runs, n, -1, CALIBRATE_ROUNDS_MIN, scratch, &all);
	if (rc == 0)
		rc = fit_runs(runs, n, 0, 1, scratch, &h0);
	if (rc == 0)
		rc = fit_runs(runs, n, 1, 1, scratch, &h1);
	if (rc)
		return rc;
	unc = (h0.est > h1.est ? h0.est - h1.est : h1.est - h0.est) / 2;
	/* Known to within half of itself, or of the floor when it is below. */
	floor_or_est = all.est > (double)CALIBRATE_MIN_NS ? all.est : (double)CALIBRATE_MIN_NS;
	if (unc > floor_or_est / 2)
		return -EAGAIN;
	if (all.est > (double)CALIBRATE_MAX_NS)
		return -ERANGE;

	memset(ret, 0, sizeof(*ret));
	ret->clamped = all.est < (double)CALIBRATE_MIN_NS;
	ret->ns_per_sample = ret->clamped ? CALIBRATE_MIN_NS : (uint64_t)(all.est + 0.5);
	ret->samples = all.samples;
	ret->loaded_ns = all.loaded_ns;
	ret->base_ns = (uint64_t)(all.base_ns + 0.5);
	ret->uncertainty_ns = (uint64_t)(unc + 0.5);
	ret->rounds = all.nbase < all.nloaded ? all.nbase : all.nloaded;
	ret->used = all.used;
	ret->hz = hz;
	return 0;
}

int calibrate_sample_cost(unsigned hz, unsigned rounds, struct calibrate_result *ret_result)
{
	uint64_t deadline = clock_ns(CLOCK_MONOTONIC) + CALIBRATE_DEADLINE_NS;
	struct calibrate_result res;
	struct shared *sh;
	long page = sysconf(_SC_PAGESIZE);
	int fds[2], rc = 0, cpu;
	int32_t err;
	pid_t parent, pid;
	unsigned done;

	if (hz < CALIBRATE_HZ_MIN || hz > CALIBRATE_HZ_MAX || rounds < CALIBRATE_ROUNDS_MIN ||
	    rounds > CALIBRATE_ROUNDS_MAX || !ret_result)
		return -EINVAL;
	if (page <= 0)
		return -EINVAL;
	cpu = sched_getcpu();	/* just woken here: likely the idlest CPU */

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return -errno;
	if (pipe2(fds, O_CLOEXEC) != 0) {
		rc = -errno;
		munmap(sh, sizeof(*sh));
		return rc;
	}
	parent = getpid();
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(fds[0]);
		close(fds[1]);
		munmap(sh, sizeof(*sh));
		return rc;
	}
	if (pid == 0) {
		close(fds[0]);
		child_main(fds[1], sh, parent, cpu, NSEC_PER_SEC / hz, (size_t)page, rounds);
	}
	close(fds[1]);

	/* The deadline (0) is no error: judge on the runs done by then. */
	rc = wait_child(fds[0], deadline, &err);
	if (rc == 1)
		rc = err < 0 ? err : 0;
	else if (rc == 0)
		rc = 0;
	reap(pid);
	close(fds[0]);
	/* The child is gone: its runs can no longer change. */
	done = __atomic_load_n(&sh->done, __ATOMIC_ACQUIRE);
	if (done > 2 * rounds)
		rc = rc ? rc : -EIO;
	if (rc == 0)
		rc = estimate(sh->run, done, hz, &res);
	munmap(sh, sizeof(*sh));
	if (rc == 0)
		*ret_result = res;
	return rc;
}
