/*
 * auditlog.h - which system call got a process killed by seccomp, in the
 * kernel's own words.
 *
 * A seccomp filter that kills (SECCOMP_RET_KILL_PROCESS) leaves its victim
 * no chance to say anything, and its parent only sees SIGSYS.  The kernel,
 * though, logs every such kill as an audit record (type 1326, AUDIT_SECCOMP)
 * naming the pid, the architecture and the system call number; without an
 * audit daemon the record goes to the kernel log, /dev/kmsg.  The monitor
 * opens /dev/kmsg while it is root (reading it needs CAP_SYSLOG when
 * kernel.dmesg_restrict is 1, checked at open only), keeps the fd, and
 * looks the record up when a worker or the loader dies of SIGSYS, so that
 * it can log which process made which forbidden call without trusting
 * anything the dead process wrote.
 *
 * Only records the kernel wrote are believed (syslog facility 0: a record
 * written into /dev/kmsg from userspace carries another), and in them only
 * whole space-separated fields: the kernel hex-encodes comm and exe
 * whenever they hold a space or a quote, so a process name cannot forge a
 * field.  Where an audit daemon takes the records, or seccomp kills are
 * not logged (/proc/sys/kernel/seccomp/actions_logged), nothing is found.
 *
 * Runs in the monitor (reading and poll() only, after it is confined).
 * Library-like: returns 0 or -errno, never logs.
 */
#ifndef VIGIL_AUDITLOG_H
#define VIGIL_AUDITLOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AUDITLOG_TYPE_SECCOMP 1326 /* AUDIT_SECCOMP, include/uapi/linux/audit.h */
#define AUDITLOG_KEEP 32           /* seccomp records remembered, newest kept */

struct auditlog_seccomp {
	uint64_t usec;   /* when the kernel logged it: microseconds since boot */
	pid_t pid;
	uint32_t arch;   /* AUDIT_ARCH_* (0xc000003e: x86_64) */
	int syscall;     /* the number, for that architecture */
	int sig;         /* the signal the process got (31: SIGSYS) */
};

struct auditlog;

/*
 * Open the kernel log (path: normally "/dev/kmsg") non-blocking at its
 * end: records written before this call are never read.  0 and *ret, or
 * -errno (-EPERM without CAP_SYSLOG under dmesg_restrict, -ENOENT).
 */
int auditlog_open(const char *path, struct auditlog **ret);

/*
 * The record of pid killed by SIGSYS, read from what the kernel logged
 * since the last call (or kept from an earlier one), and logged no earlier
 * than not_before_usec (CLOCK_MONOTONIC microseconds, the clock of the
 * kernel log's time stamps when the machine has not been suspended: pass
 * the time the process was started, so that a record of an earlier
 * process with the same pid is never taken for it).  The kernel's audit
 * thread writes it a little after the kill, possibly after the parent
 * reaped the process: wait up to timeout_ms for it.  0 and *ret, or
 * -ENOENT (also for a NULL a), -ENOMEM.
 */
int auditlog_seccomp_of(struct auditlog *a, pid_t pid, uint64_t not_before_usec, int timeout_ms,
			struct auditlog_seccomp *ret);

/*
 * Parse one /dev/kmsg record ("PRI,SEQ,USEC,FLAGS;MESSAGE[\n KEY=VALUE...]").
 * 0 and *ret for a seccomp audit record the kernel wrote; -ENOENT for any
 * other record (userspace's, another type); -EINVAL when malformed.
 */
int auditlog_parse(const char *rec, size_t len, struct auditlog_seccomp *ret);

/* The system call's name ("execve"), or NULL if unknown; static storage. */
const char *auditlog_syscall_name(const struct auditlog_seccomp *r);

void auditlog_free(struct auditlog *a);

#endif
