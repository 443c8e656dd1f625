/*
 * spool.c - atomic profile files (see spool.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fds.h"
#include "spool.h"

#define SUFFIX ".pb.gz"

int spool_name(char *buf, size_t len, int64_t realtime_ns)
{
	time_t secs = (time_t)(realtime_ns / 1000000000);
	unsigned ms = (unsigned)((realtime_ns % 1000000000) / 1000000);
	struct tm tm;
	char stamp[32];
	int n;

	if (!gmtime_r(&secs, &tm))
		return -EINVAL;
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	n = snprintf(buf, len, "cpu-%s.%03uZ" SUFFIX, stamp, ms);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* name with "-k" before SUFFIX. */
static int variant(char *out, size_t len, const char *name, unsigned k)
{
	size_t nl = strlen(name), sl = strlen(SUFFIX);
	int n;

	if (k == 0)
		n = snprintf(out, len, "%s", name);
	else if (nl > sl && strcmp(name + nl - sl, SUFFIX) == 0)
		n = snprintf(out, len, "%.*s-%u%s", (int)(nl - sl), name, k, SUFFIX);
	else
		n = snprintf(out, len, "%s-%u", name, k);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int spool_write(int dirfd, const char *name, const void *buf, size_t len, char *ret_name,
		size_t ret_len)
{
	char tmp[300], final[256];
	int fd, rc;

	if (strchr(name, '/') || name[0] == '.' || strlen(name) > 200)
		return -EINVAL;
	snprintf(tmp, sizeof(tmp), ".%s.tmp-%d", name, (int)getpid());
	/* A file of our own; a leftover of a crashed run with this pid is removed first. */
	fd = fds_create_new(dirfd, tmp, 0640);
	if (fd < 0)
		return fd;
	rc = fds_write_all(fd, buf, len);
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (rc)
		goto fail;
	for (unsigned k = 0; k < 1000; k++) {
		rc = variant(final, sizeof(final), name, k);
		if (rc)
			goto fail;
		if (renameat2(dirfd, tmp, dirfd, final, RENAME_NOREPLACE) == 0) {
			if (ret_name)
				snprintf(ret_name, ret_len, "%s", final);
			fsync(dirfd); /* the rename itself survives a crash */
			return 0;
		}
		rc = -errno;
		if (rc != -EEXIST)
			goto fail;
	}
fail:
	unlinkat(dirfd, tmp, 0);
	return rc;
}
