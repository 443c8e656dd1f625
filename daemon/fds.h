/*
 * fds.h - small helpers for file descriptors and arrays of them.
 *
 * Used by every vigild process.  Library-like: never logs.
 */
#ifndef VIGIL_FDS_H
#define VIGIL_FDS_H

#include <stddef.h>
#include <sys/types.h>

/* Close every fd >= 0 of fds[0..n); fds may be NULL (nothing to do). */
void fds_close(const int *fds, size_t n);

/* Write all of buf[0..len) to fd, again after EINTR and short writes.  0 or -errno. */
int fds_write_all(int fd, const void *buf, size_t len);

/*
 * Create dirfd/name for writing (mode, O_CLOEXEC), as a new file of our
 * own: never one already there (a FIFO would block the writer, a symlink
 * would write elsewhere), so O_EXCL, O_NOFOLLOW and O_NONBLOCK.  An entry
 * already there (a temporary left by a crash) is removed first, once.
 * The fd, or -errno.
 */
int fds_create_new(int dirfd, const char *name, mode_t mode);

#endif
