/*
 * log.c - stderr and journal logging for vigild's processes (see log.h).
 *
 * Runs in every process of vigild, before and after confinement.  The
 * journal path (journal.h: the native protocol, spoken without libsystemd)
 * needs, after confinement, one socket(AF_UNIX, SOCK_DGRAM|SOCK_CLOEXEC)
 * made at the first entry and kept, and sendmsg() to
 * /run/systemd/journal/socket (sandbox.c allows exactly that socket;
 * docs/security.md says why).  Entries stay far below the socket's buffer
 * (LOG_LINE_MAX); one that did not fit would go to stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"

#define LOG_LINE_MAX 1024

static const char *log_role = "vigild";
static const char *log_process = "monitor";
static char log_ident[32] = "vigild";
static bool log_journal;
static struct journal journal = JOURNAL_INIT(JOURNAL_SOCKET);

/*
 * JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected to
 * stdout/stderr (systemd.exec(5)); it is inherited by children whose
 * stderr may be something else, hence the comparison with fd 2.
 */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (!e || sscanf(e, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	if ((unsigned long long)st.st_dev != dev || (unsigned long long)st.st_ino != ino)
		return false;
	/* No socket, no journal: keep stderr then. */
	return access(JOURNAL_SOCKET, F_OK) == 0;
}

void log_init(const char *role)
{
	const char *open = strchr(role, '[');

	log_role = role;
	/* "vigild" is the monitor; another program ("vigil-cp") is its own process. */
	log_process = strcmp(role, "vigild") ? role : "monitor";
	snprintf(log_ident, sizeof(log_ident), "%.*s", (int)strcspn(role, "["), role);
	if (open) {
		static char process[32];
		size_t n = strcspn(open + 1, "]");

		if (n >= sizeof(process))
			n = sizeof(process) - 1;
		memcpy(process, open + 1, n);
		process[n] = '\0';
		log_process = process;
	}
	log_journal = stderr_is_journal();
}

bool log_to_journal(void)
{
	return log_journal;
}

/* 0 when the journal took the entry. */
static int to_journal(const struct log_event *ev, const char *text)
{
	char msg[LOG_LINE_MAX + 300], prio[16], ident[64], proc[48], id[48], tenant[96], hz[32],
		serial[48], worker[48], err[24];
	struct iovec iov[10];
	int n = 0;

#define ADD(buf, ...)                                                      \
	do {                                                               \
		snprintf(buf, sizeof(buf), __VA_ARGS__);                   \
		iov[n].iov_base = buf;                                     \
		iov[n++].iov_len = strlen(buf);                            \
	} while (0)
	ADD(msg, "MESSAGE=%s", text);
	ADD(prio, "PRIORITY=%d", ev->priority);
	ADD(ident, "SYSLOG_IDENTIFIER=%s", log_ident);
	ADD(proc, "VIGIL_PROCESS=%s", log_process);
	if (ev->id)
		ADD(id, "MESSAGE_ID=%s", ev->id);
	if (ev->tenant)
		ADD(tenant, "VIGIL_TENANT=%s", ev->tenant);
	if (ev->hz)
		ADD(hz, "VIGIL_HZ=%u", ev->hz);
	if (ev->serial)
		ADD(serial, "VIGIL_SERIAL=%" PRIu64, ev->serial);
	if (ev->worker)
		ADD(worker, "VIGIL_WORKER=%s", ev->worker);
	if (ev->err)
		ADD(err, "ERRNO=%d", ev->err < 0 ? -ev->err : ev->err);
#undef ADD
	return journal_send(&journal, iov, (size_t)n);
}

static void log_vevent(const struct log_event *ev, const char *fmt, va_list ap)
{
	char buf[LOG_LINE_MAX], line[LOG_LINE_MAX + 256];
	int err = ev->err < 0 ? -ev->err : ev->err;

	if (vsnprintf(buf, sizeof(buf), fmt, ap) < 0)
		return;
	if (err)
		snprintf(line, sizeof(line), "%s: %s", buf, strerror(err));
	else
		snprintf(line, sizeof(line), "%s", buf);
	if (log_journal && to_journal(ev, line) >= 0)
		return;
	fprintf(stderr, "%s: %s\n", log_role, line);
}

static void log_vline(int priority, const char *fmt, va_list ap, int err)
{
	struct log_event ev = { .priority = priority, .err = err };

	log_vevent(&ev, fmt, ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(LOG_INFO, fmt, ap, 0);
	va_end(ap);
}

void log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(LOG_WARNING, fmt, ap, 0);
	va_end(ap);
}

void log_warn_errno(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(LOG_WARNING, fmt, ap, err);
	va_end(ap);
}

void log_event(const struct log_event *ev, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vevent(ev, fmt, ap);
	va_end(ap);
}

void fatalx(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(LOG_ERR, fmt, ap, 0);
	va_end(ap);
	exit(code);
}

void fatalx_event(int code, const struct log_event *ev, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vevent(ev, fmt, ap);
	va_end(ap);
	exit(code);
}
