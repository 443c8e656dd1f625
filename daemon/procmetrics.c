/*
 * procmetrics.c - process_* figures from /proc (see procmetrics.h).
 *
 * Library-like; runs in vigild's monitor (uid vigil after start-up, with
 * CAP_SYS_PTRACE among the capabilities it keeps).  Field positions are
 * proc(5)'s: in /proc/PID/stat, after the command in parentheses (which
 * may itself hold ')' or spaces: hence the last ')'), field 14 utime and
 * 15 stime in clock ticks, 22 starttime in ticks since boot, 23 vsize in
 * bytes, 24 rss in pages.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procmetrics.h"

/* /proc/PID/stat and /proc/PID/limits are well under this. */
#define PROC_TEXT_MAX 4096

static int read_text(const char *path, char *buf, size_t len)
{
	size_t off = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	while (off < len - 1) {
		ssize_t n = read(fd, buf + off, len - 1 - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = errno == ESRCH ? -ESRCH : -errno;
			break;
		}
		if (n == 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	buf[off] = '\0';
	return rc;
}

int procmetrics_parse_stat(const char *text, uint64_t btime, long ticks_per_s, long page_size,
			   struct proc_row *ret)
{
	const char *p = strrchr(text, ')');
	unsigned long long v[25] = { 0 };
	int field = 3;

	if (!p || p[1] != ' ' || ticks_per_s <= 0 || page_size <= 0)
		return -EBADMSG;
	p += 2;
	/* field 3 is the state, a letter */
	if (!*p || *p == ' ')
		return -EBADMSG;
	p = strchr(p, ' ');
	while (p && field < 24) {
		char *end;

		field++;
		p++;
		/* some fields (e.g. kstkeip when masked) may be negative: signed, then kept as bits */
		v[field] = (unsigned long long)strtoll(p, &end, 10);
		if (end == p || (*end != ' ' && *end != '\n' && *end != '\0'))
			return -EBADMSG;
		p = *end == ' ' ? end : NULL;
	}
	if (field < 24)
		return -EBADMSG;
	ret->cpu_seconds = (double)(v[14] + v[15]) / (double)ticks_per_s;
	ret->start_time_seconds = (double)btime + (double)v[22] / (double)ticks_per_s;
	ret->virtual_bytes = v[23];
	ret->resident_bytes = v[24] * (uint64_t)page_size;
	return 0;
}

int procmetrics_parse_limits(const char *text, uint64_t *ret_max_fds)
{
	const char *p = strstr(text, "\nMax open files");
	char *end;

	if (!p)
		return -EBADMSG;
	p += strlen("\nMax open files");
	while (*p == ' ')
		p++;
	if (!strncmp(p, "unlimited", 9)) {
		*ret_max_fds = 0;
		return 0;
	}
	*ret_max_fds = strtoull(p, &end, 10);
	return end == p ? -EBADMSG : 0;
}

int procmetrics_boot_time(uint64_t *ret)
{
	char buf[PROC_TEXT_MAX * 4];
	const char *p;
	int rc = read_text("/proc/stat", buf, sizeof(buf));

	if (rc)
		return rc;
	p = strstr(buf, "\nbtime ");
	if (!p)
		return -EBADMSG;
	*ret = strtoull(p + 7, NULL, 10);
	return *ret ? 0 : -EBADMSG;
}

int procmetrics_read(pid_t pid, uint64_t btime, struct proc_row *ret)
{
	char path[64], buf[PROC_TEXT_MAX];
	struct proc_row r = { 0 };
	struct stat st;
	int rc;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	rc = read_text(path, buf, sizeof(buf));
	if (!rc)
		rc = procmetrics_parse_stat(buf, btime, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), &r);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	rc = read_text(path, buf, sizeof(buf));
	if (!rc)
		rc = procmetrics_parse_limits(buf, &r.max_fds);
	if (rc)
		return rc;
	/*
	 * Since Linux 6.2 the size of /proc/PID/fd is the number of open
	 * fds: one stat, no directory listing (and no getdents64 in the
	 * monitor's allowlist).  Before, it is 0 and the figure is left out.
	 */
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if (stat(path, &st) == 0 && st.st_size > 0) {
		r.open_fds = (uint64_t)st.st_size;
		r.flags |= PROC_ROW_OPEN_FDS;
	}
	r.valid = 1;
	*ret = r;
	return 0;
}

int procmetrics_send(int sock, const pid_t pids[METRICS_NPROC], uint64_t btime)
{
	struct msg_proc_metrics m = { .hdr = { MSG_PROC_METRICS, sizeof(m) }, .version = PRIVSEP_VERSION };

	for (int i = 0; i < METRICS_NPROC; i++)
		if (pids[i] > 0 && procmetrics_read(pids[i], btime, &m.rows[i]))
			memset(&m.rows[i], 0, sizeof(m.rows[i]));
	return privsep_send(sock, &m, sizeof(m), NULL, 0);
}
