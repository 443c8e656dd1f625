/*
 * procstat.h - a process's start time, from /proc/PID/stat, which tells a
 * process from a later one that reused its pid.
 *
 * Used by the collector (symbolizer: is the live process the one sampled?)
 * and by the monitor (broker: are the maps it kept still this process's?).
 * Library-like: returns 0 or -errno and never logs.
 */
#ifndef VIGIL_PROCSTAT_H
#define VIGIL_PROCSTAT_H

#include <stdint.h>

/*
 * Field 22 of /proc/PID/stat: the start time in clock ticks since boot
 * (sysconf(_SC_CLK_TCK) a second).  Returns 0 and *ret_ticks, -ESRCH if
 * the process is gone, -EINVAL if the line cannot be read, or another
 * -errno from opening it.
 */
int procstat_start_ticks(uint32_t pid, uint64_t *ret_ticks);

#endif
