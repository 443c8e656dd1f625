/*
 * procmetrics.h - the standard process_* figures of one process, read from
 * /proc: CPU time, resident and virtual memory, open and allowed fds,
 * start time.
 *
 * Library-like (0 or -errno, never logs).  Runs in vigild's monitor, which
 * reads them for itself and its two workers (it keeps CAP_SYS_PTRACE, which
 * /proc/PID/fd of a non-dumpable worker asks for) and hands them to the
 * uplink (MSG_PROC_METRICS), which never opens a file.  The parsers are
 * separate so that they can be tested on fixed text.
 */
#ifndef VIGIL_PROCMETRICS_H
#define VIGIL_PROCMETRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "privsep.h"

/*
 * Fill *ret for pid from /proc (btime: the boot time, Unix seconds, from
 * procmetrics_boot_time).  0, or -errno (-ESRCH: gone; -EBADMSG: a file
 * that does not parse).
 */
int procmetrics_read(pid_t pid, uint64_t btime, struct proc_row *ret);

/* The boot time, Unix seconds ("btime" of /proc/stat).  0 or -errno. */
int procmetrics_boot_time(uint64_t *ret);

/*
 * The text of /proc/PID/stat: CPU seconds, start time (with btime), virtual
 * and resident bytes.  0 or -EBADMSG.
 */
int procmetrics_parse_stat(const char *text, uint64_t btime, long ticks_per_s, long page_size,
			   struct proc_row *ret);

/* The text of /proc/PID/limits: the soft "Max open files" (0: unlimited).  0 or -EBADMSG. */
int procmetrics_parse_limits(const char *text, uint64_t *ret_max_fds);

/*
 * Read the three processes (pids by enum metrics_proc; 0: not running)
 * and send MSG_PROC_METRICS on sock.  0 or -errno from the socket.
 */
int procmetrics_send(int sock, const pid_t pids[METRICS_NPROC], uint64_t btime);

#endif
