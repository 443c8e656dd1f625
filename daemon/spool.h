/*
 * spool.h - write profile files atomically into the output directory.
 *
 * Runs in the collector, which holds only an fd of the directory: every
 * name is relative to it.  A file is written as a hidden temporary, synced,
 * then renamed into place, so a reader never sees a partial profile.
 *
 * Library-like: returns 0 or -errno, never logs.
 */
#ifndef VIGIL_SPOOL_H
#define VIGIL_SPOOL_H

#include <stddef.h>
#include <stdint.h>

/*
 * Name for a profile that starts at realtime_ns: "cpu-YYYYmmddTHHMMSS.mmmZ.pb.gz"
 * (UTC), which sorts by time.  0 or -ENAMETOOLONG.
 */
int spool_name(char *buf, size_t len, int64_t realtime_ns);

/*
 * Write buf into dirfd/name atomically.  If name exists, "-1", "-2"... is put
 * before the extension rather than replacing it.  The name actually used is
 * copied to ret_name (may be NULL).  On error nothing is left behind:
 * -ENOSPC, -EDQUOT, -EACCES, -EROFS... from the filesystem.
 */
int spool_write(int dirfd, const char *name, const void *buf, size_t len, char *ret_name,
		size_t ret_len);

#endif
