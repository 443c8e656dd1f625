/*
 * fds.h - small helpers for arrays of file descriptors.
 *
 * Used by every vigild process.  Library-like: never logs.
 */
#ifndef VIGIL_FDS_H
#define VIGIL_FDS_H

#include <stddef.h>

/* Close every fd >= 0 of fds[0..n); fds may be NULL (nothing to do). */
void fds_close(const int *fds, size_t n);

#endif
