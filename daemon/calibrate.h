/*
 * calibrate.h - measure, on this host, what one cpu-clock sample costs the
 * task it interrupts: the timer interrupt and the perf overflow path, not
 * counting the BPF program (which measures its own run time).
 *
 * Runs in the monitor at start-up, as root, before it drops privileges and
 * enters its sandbox: it forks one short-lived child and uses pipe2, mmap
 * (a shared page for the results, the event's ring buffer), munmap,
 * sched_setaffinity, perf_event_open, ioctl, poll, kill and waitpid.
 *
 * Method (docs/overhead.md, "Calibrating the per-sample cost", has the
 * reasoning and the figures measured on the development VM):
 *
 *   - The child pins itself to one CPU (the caller's current one) and opens
 *     a sampling cpu-clock perf event on itself, disabled, with period
 *     1e9 / hz ns: what the sampler opens per CPU, with no BPF program,
 *     and with a small ring buffer whose records are only counted.  (A BPF
 *     program that only counts samples, or the 8-byte record, changes the
 *     figure by less than the noise: the interrupt is the cost.)
 *   - It then runs the same fixed integer loop (no memory traffic) of about
 *     CALIBRATE_RUN_NS of CPU 2 x rounds times, alternating "base" (event
 *     disabled) and "loaded" (event enabled only around the loop) in the
 *     order B L L B B L ..., so that a drift in the machine's speed does
 *     not favour one kind.  Each run measures its own
 *     CLOCK_THREAD_CPUTIME_ID.  The hardirq time of the timer interrupt is
 *     charged to the interrupted task when the kernel has no
 *     CONFIG_IRQ_TIME_ACCOUNTING (the case here); with it, the interrupt
 *     would not show up in the task's CPU time, and a clean measurement
 *     comes out as the floor (see "clamped" below).
 *   - The samples of a loaded run are counted exactly: one ring-buffer
 *     record (or one "lost" count) per overflow that really ran.  They are
 *     not derived from the event's time count, which a stolen vCPU or a
 *     late timer advances without the interrupts that time stands for.
 *   - Noise from other load only ever adds time to fixed work, so each kind
 *     is represented by its fastest runs: the fastest tenth of the base
 *     runs gives the base time of one run, the fastest tenth of the loaded
 *     runs their time and samples, and cost = (their time - as many base
 *     runs) / their samples.  Many short runs rather than a few long ones:
 *     on a busy host a short run is often not disturbed at all, and the
 *     mean of several fastest runs does not rest on one lucky run.
 *   - The uncertainty is half the difference between the same estimate
 *     made on each half of the rounds (even and odd groups of B L L B):
 *     about one standard deviation of the result.
 *
 * Total wall time: at most CALIBRATE_DEADLINE_NS.  The default rounds take
 * about 0.9 s of CPU; a busy host finishes fewer before the deadline, and
 * the estimate rests on what was done; fewer than CALIBRATE_ROUNDS_MIN of
 * each kind gives -EAGAIN.
 *
 * Library-like: returns 0 or -errno, never logs.  The child is killed and
 * reaped on every path, and no fd or mapping is left.  A caller's SIGCHLD
 * handler that reaps every child may reap it first; that is harmless.
 */
#ifndef VIGIL_CALIBRATE_H
#define VIGIL_CALIBRATE_H

#include <stdbool.h>
#include <stdint.h>

#define CALIBRATE_HZ_MIN 2000u		/* fewer samples: too little signal per run */
#define CALIBRATE_HZ_MAX 20000u		/* more: interrupts could starve the loop */
#define CALIBRATE_ROUNDS_MIN 16u	/* the fastest tenth of each half is one run */
#define CALIBRATE_ROUNDS_MAX 256u
#define CALIBRATE_HZ_DEFAULT 10000u	/* what the monitor should ask for */
#define CALIBRATE_ROUNDS_DEFAULT 200u	/* ~0.9 s of CPU at 10 kHz */
#define CALIBRATE_RUN_NS 2000000ull	/* CPU time of the loop in one run */
#define CALIBRATE_DEADLINE_NS 1500000000ull	/* wall time, fork to reap */
#define CALIBRATE_MIN_NS 500ull		/* floor of the estimate: 0.5 us */
#define CALIBRATE_MAX_NS 500000ull	/* above 500 us the measurement is wrong */

/*
 * What the caller should use, and say so in its log, when calibration
 * fails: above every figure measured at the default rate on the
 * development VM (12-15 us while others load it, up to ~17 us with a
 * burner on every CPU as well), so that a budget computed with it errs
 * on the safe side (a lower frequency than needed).
 */
#define CALIBRATE_FALLBACK_NS 20000ull

struct calibrate_result {
	uint64_t ns_per_sample;		/* the estimate, in [CALIBRATE_MIN_NS, CALIBRATE_MAX_NS] */
	uint64_t samples;		/* samples counted in the loaded runs used */
	uint64_t loaded_ns;		/* CPU time of the loaded runs used */
	uint64_t base_ns;		/* CPU time of as many runs without sampling
					   (that many times the base time of one run) */
	uint64_t uncertainty_ns;	/* +- on ns_per_sample (see the method) */
	unsigned rounds;		/* runs of each kind that were measured */
	unsigned used;			/* loaded runs the estimate rests on */
	unsigned hz;			/* the sampling frequency used */
	bool clamped;			/* the measurement was below CALIBRATE_MIN_NS */
};

/*
 * Calibrate at hz samples per second over rounds runs of each kind.
 * On success writes *ret_result; unless clamped, ns_per_sample =
 * (loaded_ns - base_ns) / samples.
 *
 * Returns 0, or
 *   -EINVAL  hz outside [CALIBRATE_HZ_MIN, CALIBRATE_HZ_MAX], rounds outside
 *            [CALIBRATE_ROUNDS_MIN, CALIBRATE_ROUNDS_MAX], ret_result NULL;
 *   -EAGAIN  too noisy to say (the uncertainty is more than half the
 *            estimate, or half the floor, whichever is larger), or fewer
 *            than CALIBRATE_ROUNDS_MIN runs of each kind before the
 *            deadline: the host is busy, try later or use
 *            CALIBRATE_FALLBACK_NS;
 *   -ERANGE  consistent, but above CALIBRATE_MAX_NS;
 *   -EIO     the child died without reporting;
 *   any -errno of pipe2, mmap, fork, poll or perf_event_open (e.g. -EACCES
 *            without CAP_PERFMON when perf_event_paranoid > 2, -ENOENT
 *            without the cpu-clock event, -EPERM when the ring buffer
 *            exceeds the locked-memory limit).
 */
int calibrate_sample_cost(unsigned hz, unsigned rounds, struct calibrate_result *ret_result);

#endif
