/*
 * sysctl.h - the kernel settings vigild's processes read.
 *
 * Library-like: never logs.
 */
#ifndef VIGIL_SYSCTL_H
#define VIGIL_SYSCTL_H

/* What kernel.perf_event_max_sample_rate is taken to be when it cannot be read. */
#define SYSCTL_SAMPLE_RATE_FALLBACK 100000u

/*
 * kernel.perf_event_max_sample_rate: the highest sampling frequency the
 * kernel accepts, and so the limit on every hz a user or policy may give.
 * SYSCTL_SAMPLE_RATE_FALLBACK if it cannot be read.
 */
unsigned sysctl_max_sample_rate(void);

/*
 * kernel.perf_event_paranoid into *ret_level: 0, or -errno when it cannot be
 * read or is not a number (-EINVAL).
 */
int sysctl_perf_paranoid(int *ret_level);

#endif
