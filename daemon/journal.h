/*
 * journal.h - journald's native protocol, spoken directly: an entry is one
 * datagram of fields sent to the journal's socket
 * (systemd.io/JOURNAL_NATIVE_PROTOCOL; systemd's
 * src/journal/journald-native.c parses it).  Each field is "KEY=VALUE\n"
 * when VALUE holds no newline, else "KEY\n", VALUE's length as a
 * little-endian 64-bit integer, VALUE and "\n" (so that a newline in a
 * value can never start a field of its own).
 *
 * It is what libsystemd's sd_journal_sendv sends for an entry that fits
 * a datagram; vigild's entries always do (JOURNAL_MAX_ENTRY), so the
 * memfd libsystemd would pass for a larger one is never needed, and the
 * processes that log do not map libsystemd and the compression and
 * crypto libraries it pulls in (docs/benchmarks.md, "Memory at 19 Hz").
 *
 * Used by every process of vigild (log.c), before and after confinement
 * (vigil-cp's audit records, cpaudit.c, go their own way: one field of
 * compact JSON, never a newline, and a larger entry than fits here): one socket(AF_UNIX, SOCK_DGRAM |
 * SOCK_CLOEXEC, 0), made at the first entry and kept, and sendmsg() (what
 * sandbox.c allows).  Library-like: returns 0 or -errno, never logs.
 */
#ifndef VIGIL_JOURNAL_H
#define VIGIL_JOURNAL_H

#include <stddef.h>
#include <sys/uio.h>

#define JOURNAL_SOCKET "/run/systemd/journal/socket"
/* A longer entry is refused (-EMSGSIZE): the caller writes it elsewhere. */
#define JOURNAL_MAX_ENTRY 16384

struct journal {
	int fd;           /* -1 until the first entry */
	const char *path; /* the socket; JOURNAL_SOCKET but in tests */
};

#define JOURNAL_INIT(p) { .fd = -1, .path = (p) }

/*
 * Send one entry of n fields, each "KEY=VALUE" (VALUE may hold any byte
 * but NUL).  KEY must be 1 to 64 of [A-Z0-9_], not starting with a digit
 * or '_' (journald drops such fields; here they are refused): -EINVAL.
 * 0, or -EMSGSIZE (entry too long), -errno of socket/sendmsg (-ENOENT or
 * -ECONNREFUSED: no journal listening).
 */
int journal_send(struct journal *j, const struct iovec *fields, size_t n);

/* Close the socket, if made. */
void journal_close(struct journal *j);

#endif
