/*
 * fds.h - small helpers for file descriptors and arrays of them.
 *
 * Used by every vigild process.  Library-like: never logs.
 */
#ifndef VIGIL_FDS_H
#define VIGIL_FDS_H

#include <stddef.h>

/* Close every fd >= 0 of fds[0..n); fds may be NULL (nothing to do). */
void fds_close(const int *fds, size_t n);

/* Write all of buf[0..len) to fd, again after EINTR and short writes.  0 or -errno. */
int fds_write_all(int fd, const void *buf, size_t len);

#endif
