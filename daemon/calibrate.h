/*
 * calibrate.h - measure, on this host, what one cpu-clock sample costs the
 * task it interrupts: the timer interrupt and the perf overflow path, not
 * counting the BPF program (which measures its own run time).
 *
 * Runs in the monitor at start-up, as root, before it drops privileges and
 * enters its sandbox: it forks one short-lived child and uses pipe2,
 * sched_setaffinity, perf_event_open, ioctl, poll, kill and waitpid.
 *
 * Method (docs/overhead.md, "Calibrating the per-sample cost", has the
 * reasoning and the figures measured on the development VM):
 *
 *   - The child pins itself to one CPU (the caller's current one) and opens
 *     a sampling cpu-clock perf event on itself, disabled, with period
 *     1e9 / hz ns: what the sampler opens per CPU, with no ring buffer and
 *     no BPF program.  (A BPF program that only counts samples changes the
 *     figure by less than the noise: the interrupt is the cost.)
 *   - It then runs the same fixed integer loop (no memory traffic) 2 x
 *     rounds times, alternating "base" (event disabled) and "loaded" (event
 *     enabled only around the loop) in the order B L L B B L ..., so that a
 *     drift in the machine's speed does not favour one kind.  Each run
 *     measures its own CLOCK_THREAD_CPUTIME_ID.  The hardirq time of the
 *     timer interrupt is charged to the interrupted task when the kernel
 *     has no CONFIG_IRQ_TIME_ACCOUNTING (the case here); with it, the
 *     interrupt would not show up in the task's CPU time, and a clean
 *     measurement comes out as the floor (see "clamped" below).
 *   - Samples of a loaded run are exact up to +-1 per run: the event's count
 *     is the time it was enabled, in ns; the kernel carries the unexpired
 *     part of a period across disable/enable, so the number of overflows
 *     so far is floor(cumulative count / period).
 *   - Noise from other load only ever adds time to fixed work, so each kind
 *     is represented by its fastest run: cost = (loaded_ns - base_ns) /
 *     samples of the fastest loaded run.  The uncertainty is the distance
 *     of the second-fastest run of each kind from the fastest, summed and
 *     divided by samples.
 *
 * Total wall time: at most CALIBRATE_DEADLINE_NS (the loop length is chosen
 * to fit about two thirds of it); a machine too busy to finish two rounds
 * of each kind by then gives -EAGAIN.
 *
 * Library-like: returns 0 or -errno, never logs.  The child is killed and
 * reaped on every path, and no fd is left open.  A caller's SIGCHLD handler
 * that reaps every child may reap it first; that is harmless.
 */
#ifndef VIGIL_CALIBRATE_H
#define VIGIL_CALIBRATE_H

#include <stdbool.h>
#include <stdint.h>

#define CALIBRATE_HZ_MIN 2000u		/* fewer samples: the signal drowns in noise */
#define CALIBRATE_HZ_MAX 20000u		/* more: interrupts could starve the loop */
#define CALIBRATE_ROUNDS_MIN 2u		/* two of each kind give an uncertainty */
#define CALIBRATE_ROUNDS_MAX 16u
#define CALIBRATE_HZ_DEFAULT 10000u	/* what the monitor should ask for */
#define CALIBRATE_ROUNDS_DEFAULT 8u
#define CALIBRATE_DEADLINE_NS 1500000000ull	/* wall time, fork to reap */
#define CALIBRATE_MIN_NS 500ull		/* floor of the estimate: 0.5 us */
#define CALIBRATE_MAX_NS 500000ull	/* above 500 us the measurement is wrong */

/*
 * What the caller should use, and say so in its log, when calibration
 * fails: above every figure measured on the development VM (11-13 us
 * quiet, up to ~15 us under load), so that a budget computed with it errs
 * on the safe side (a lower frequency than needed).
 */
#define CALIBRATE_FALLBACK_NS 20000ull

struct calibrate_result {
	uint64_t ns_per_sample;		/* the estimate, in [CALIBRATE_MIN_NS, CALIBRATE_MAX_NS] */
	uint64_t samples;		/* samples taken during the loaded run of loaded_ns */
	uint64_t base_ns, loaded_ns;	/* CPU time of the fixed work without / with
					   sampling (fastest run of each kind) */
	uint64_t uncertainty_ns;	/* +- on ns_per_sample (see the method) */
	unsigned rounds;		/* runs of each kind that were measured */
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
 *            than two runs of each kind before the deadline: the host is
 *            busy, try later or use CALIBRATE_FALLBACK_NS;
 *   -ERANGE  consistent, but above CALIBRATE_MAX_NS;
 *   -EIO     the child died without reporting;
 *   any -errno of pipe2, fork, poll or perf_event_open (e.g. -EACCES
 *            without CAP_PERFMON when perf_event_paranoid > 2, -ENOENT
 *            without the cpu-clock event).
 */
int calibrate_sample_cost(unsigned hz, unsigned rounds, struct calibrate_result *ret_result);

#endif
