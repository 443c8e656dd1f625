/*
 * memblob.c - bytes between vigild's processes as sealed memfds (see
 * memblob.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fds.h"
#include "memblob.h"

#define SEALS_NEEDED (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK)

/* Written (rc 0): seal fd and hand it over; otherwise, or if sealing fails, close it. */
static int seal_and_return(int fd, int rc, int *ret_fd)
{
	if (!rc && fcntl(fd, F_ADD_SEALS, SEALS_NEEDED | F_SEAL_SEAL) < 0)
		rc = -errno;
	if (rc) {
		close(fd);
		return rc;
	}
	*ret_fd = fd;
	return 0;
}

int memblob_new(const char *name, const void *a, size_t alen, const void *b, size_t blen,
		int *ret_fd)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING), rc;

	if (fd < 0)
		return -errno;
	rc = fds_write_all(fd, a, alen);
	if (!rc && b)
		rc = fds_write_all(fd, b, blen);
	return seal_and_return(fd, rc, ret_fd);
}

int memblob_from_file(const char *name, int src, size_t max, int *ret_fd)
{
	struct stat st;
	char buf[16384];
	size_t total = 0;
	int fd, rc = 0;

	if (fstat(src, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = pread(src, buf, sizeof(buf), (off_t)total);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		total += (size_t)n;
		if (total > max) {
			rc = -EFBIG;
			break;
		}
		rc = fds_write_all(fd, buf, (size_t)n);
		if (rc)
			break;
	}
	explicit_bzero(buf, sizeof(buf)); /* may have held a private key */
	return seal_and_return(fd, rc, ret_fd);
}

int memblob_read(int fd, size_t max, void **ret_buf, size_t *ret_len)
{
	struct stat st;
	size_t len, got = 0;
	char *buf;
	int seals;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return -EPROTO;
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & SEALS_NEEDED) != SEALS_NEEDED)
		return -EPROTO; /* not a memfd, or one its sender can still change */
	if (st.st_size < 0 || (uint64_t)st.st_size > max)
		return -EFBIG;
	len = (size_t)st.st_size;
	buf = malloc(len + 1);
	if (!buf)
		return -ENOMEM;
	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return -EIO;
		}
		got += (size_t)n;
	}
	buf[len] = '\0';
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}
