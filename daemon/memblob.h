/*
 * memblob.h - bytes handed from one vigild process to another as a sealed
 * memfd: key material (monitor -> uplink), the policy trust store
 * (monitor -> collector), a policy and its signature (uplink -> collector)
 * and the policy in force (collector -> uplink).  A privsep message is at
 * most PRIVSEP_MAX_MSG bytes; these are up to a few MiB.
 *
 * The sender writes the bytes and seals the memfd (no write, grow or
 * shrink, no more seals), so what the receiver checks is what it keeps: the
 * receiver takes only a sealed memfd of a bounded size, and copies the
 * bytes out once.  Used by every vigild process.  Library-like: 0 or -errno,
 * never logs.
 */
#ifndef VIGIL_MEMBLOB_H
#define VIGIL_MEMBLOB_H

#include <stddef.h>

/*
 * A sealed memfd (MFD_CLOEXEC) holding a[0..alen) then b[0..blen) (b may be
 * NULL).  0 and *ret_fd (the caller closes it), or -errno.
 */
int memblob_new(const char *name, const void *a, size_t alen, const void *b, size_t blen,
		int *ret_fd);

/*
 * Read a whole regular file from fd (at most max bytes) into a sealed
 * memfd.  0 and *ret_fd, -EFBIG past max, -EINVAL not a regular file, or
 * another -errno.
 */
int memblob_from_file(const char *name, int fd, size_t max, int *ret_fd);

/*
 * The bytes of a blob received from another process: fd must be a memfd
 * sealed against write, grow and shrink, of at most max bytes.  On
 * success *ret_buf is malloc'd (never NULL, NUL-terminated one byte past
 * *ret_len for text) and owned by the caller.  -EPROTO when fd is not
 * such a memfd (the sender broke the protocol), -EFBIG past max, -ENOMEM,
 * -EIO.  fd stays open.
 */
int memblob_read(int fd, size_t max, void **ret_buf, size_t *ret_len);

#endif
