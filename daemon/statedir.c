/*
 * statedir.c - the last-known-good policy and the instance id in the
 * state directory (see statedir.h).  Runs in the collector.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fds.h"
#include "hexdigit.h"
#include "policy.h"
#include "signing.h"
#include "statedir.h"

#define HEADER_MAX 64

/* Write parts into dirfd/name atomically (temporary, fsync, rename over). */
static int replace_file(int dirfd, const char *name, const void *a, size_t alen, const void *b,
			size_t blen, const void *c, size_t clen)
{
	char tmp[128];
	int fd, rc;

	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	fd = fds_create_new(dirfd, tmp, 0600);
	if (fd < 0)
		return fd;
	rc = fds_write_all(fd, a, alen);
	if (!rc && b)
		rc = fds_write_all(fd, b, blen);
	if (!rc && c)
		rc = fds_write_all(fd, c, clen);
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	/* renameat2 itself: glibc turns flags 0 into renameat, which the collector may not call */
	if (!rc && syscall(SYS_renameat2, dirfd, tmp, dirfd, name, 0) < 0)
		rc = -errno;
	if (rc) {
		unlinkat(dirfd, tmp, 0);
		return rc;
	}
	fsync(dirfd); /* the rename itself survives a crash */
	return 0;
}

int statedir_save_identity(int dirfd, const void *cert, size_t cert_len, const void *key, size_t key_len)
{
	return replace_file(dirfd, STATEDIR_IDENTITY, cert, cert_len, key, key_len, NULL, 0);
}

int statedir_save_policy(int dirfd, const void *yaml, size_t yaml_len, const void *sig,
			 size_t sig_len)
{
	char hdr[HEADER_MAX];
	int n = snprintf(hdr, sizeof(hdr), "vigil-policy 1 %zu %zu\n", yaml_len, sig_len);

	return replace_file(dirfd, STATEDIR_POLICY, hdr, (size_t)n, yaml, yaml_len, sig, sig_len);
}

int statedir_load_policy(int dirfd, void **ret_buf, const char **ret_yaml, size_t *ret_yaml_len,
			 const char **ret_sig, size_t *ret_sig_len)
{
	char hdr[HEADER_MAX + 1], *buf, *nl;
	size_t len, yl, sl;
	void *data;
	int rc, used = 0;

	rc = signing_read_file(dirfd, STATEDIR_POLICY, HEADER_MAX + POLICY_MAX_SIZE +
			       SIGNING_MAX_SIG_BYTES, true, &data, &len);
	if (rc)
		return rc == -EINVAL ? -EBADMSG : rc; /* -EINVAL: not a regular file */
	buf = data;
	/* The header alone, as a string: the buffer is not NUL-terminated. */
	nl = memchr(buf, '\n', len < HEADER_MAX ? len : HEADER_MAX);
	if (nl) {
		memcpy(hdr, buf, (size_t)(nl - buf));
		hdr[nl - buf] = '\0';
	}
	if (!nl || sscanf(hdr, "vigil-policy 1 %zu %zu%n", &yl, &sl, &used) != 2 ||
	    used != nl - buf || yl > POLICY_MAX_SIZE || sl > SIGNING_MAX_SIG_BYTES ||
	    (size_t)(nl + 1 - buf) + yl + sl != len) {
		free(buf);
		return -EBADMSG;
	}
	*ret_buf = buf;
	*ret_yaml = nl + 1;
	*ret_yaml_len = yl;
	*ret_sig = nl + 1 + yl;
	*ret_sig_len = sl;
	return 0;
}

int statedir_uuid_v7(uint64_t ms, uint8_t u[16])
{
	ssize_t n;

	do
		n = getrandom(u + 6, 10, 0);
	while (n < 0 && errno == EINTR);
	if (n != 10)
		return n < 0 ? -errno : -EIO;
	for (int i = 0; i < 6; i++)
		u[i] = (uint8_t)(ms >> (40 - 8 * i));
	u[6] = (uint8_t)(0x70 | (u[6] & 0x0f)); /* version 7 */
	u[8] = (uint8_t)(0x80 | (u[8] & 0x3f)); /* variant 10 */
	return 0;
}

void statedir_uuid_format(const uint8_t u[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	char *o = out;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[u[i] >> 4];
		*o++ = hex[u[i] & 15];
	}
	*o = '\0';
}


static int uuid_parse(const char *s, size_t len, uint8_t u[16])
{
	size_t k = 0;

	if (len != 36 && !(len == 37 && s[36] == '\n'))
		return -EBADMSG;
	for (size_t i = 0; i < 36; i++) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EBADMSG;
			continue;
		}
		hi = hexdigit_value(s[i]);
		lo = hexdigit_value(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -EBADMSG;
		u[k++] = (uint8_t)(hi << 4 | lo);
		i++;
	}
	return k == 16 ? 0 : -EBADMSG;
}

int statedir_instance_uid(int dirfd, uint8_t ret_uid[16], int *ret_made)
{
	uint8_t u[16];
	char text[38];
	struct timespec ts;
	size_t len;
	void *buf;
	int rc;

	rc = signing_read_file(dirfd, STATEDIR_UID, 64, true, &buf, &len);
	if (rc == 0) {
		rc = uuid_parse(buf, len, u);
		free(buf);
		if (rc == 0) {
			memcpy(ret_uid, u, 16);
			*ret_made = 0;
			return 0;
		}
	}
	if (rc != -ENOENT && rc != -EBADMSG && rc != -EINVAL && rc != -ELOOP && rc != -EFBIG)
		return rc;
	/*
	 * None, or not one we wrote (a symlink or another kind of file is
	 * replaced, never followed): make one (the control plane sees a new agent).
	 */
	clock_gettime(CLOCK_REALTIME, &ts);
	rc = statedir_uuid_v7((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000, u);
	if (rc)
		return rc;
	statedir_uuid_format(u, text);
	text[36] = '\n';
	rc = replace_file(dirfd, STATEDIR_UID, text, 37, NULL, 0, NULL, 0);
	if (rc)
		return rc;
	memcpy(ret_uid, u, 16);
	*ret_made = 1;
	return 0;
}
