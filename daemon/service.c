/*
 * service.c - the service of a sample from its cgroup and comm (see
 * service.h).  Runs in the collector; pure string work.
 *
 * Innermost first: a cgroup tree nests the grouping an operator thinks
 * of as "the service" inside coarser ones (a container's scope inside
 * system.slice, a unit inside a user's user@.service manager), so the
 * deepest component that names a unit or a container is the most
 * specific answer.  Container ids are shortened to 12 hex digits (what
 * `docker ps` prints): stable for the container's life, short enough for
 * a label and a file name.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "service.h"

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return n > 0;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static int put(char *buf, size_t len, const char *prefix, const char *s, size_t n)
{
	int k = snprintf(buf, len, "%s%.*s", prefix, (int)n, s);

	return k < 0 || (size_t)k >= len ? -ENAMETOOLONG : 0;
}

/* "<runtime>-<id>.scope" of a systemd-driven container runtime. */
static int scope_container(const char *c, size_t n, char *buf, size_t len)
{
	static const char *const runtimes[] = { "docker-", "cri-containerd-", "crio-", "libpod-" };

	if (!ends_with(c, n, ".scope"))
		return -ENOENT;
	for (size_t i = 0; i < sizeof(runtimes) / sizeof(runtimes[0]); i++) {
		size_t pl = strlen(runtimes[i]), idl;

		if (n <= pl || memcmp(c, runtimes[i], pl) != 0)
			continue;
		idl = n - pl - strlen(".scope");
		if (!is_hex(c + pl, idl))
			continue; /* e.g. crio-conmon-<id>.scope: the runtime's helper, not a container */
		return put(buf, len, runtimes[i], c + pl, idl < SERVICE_ID_DIGITS ? idl : SERVICE_ID_DIGITS);
	}
	return -ENOENT;
}

int service_of(const char *cgpath, const char *comm, char *buf, size_t len)
{
	if (!len)
		return -EINVAL;
	if (cgpath && cgpath[0] == '/') {
		const char *end = cgpath + strlen(cgpath);

		while (end > cgpath) {
			const char *c = end;
			size_t n;
			int rc;

			while (c > cgpath && c[-1] != '/')
				c--;
			n = (size_t)(end - c);
			if (n > strlen(".service") && ends_with(c, n, ".service"))
				return put(buf, len, "", c, n);
			rc = scope_container(c, n, buf, len);
			if (rc != -ENOENT)
				return rc;
			if (n == 64 && is_hex(c, n) && c > cgpath + 1) {
				/* cgroupfs driver: /docker/<id>, /kubepods/<qos>/pod<uid>/<id> */
				if (strstr(cgpath, "/docker/") && (size_t)(c - cgpath) >= 8 &&
				    memcmp(c - 8, "/docker/", 8) == 0)
					return put(buf, len, "docker-", c, SERVICE_ID_DIGITS);
				if (strncmp(cgpath, "/kubepods", 9) == 0 || strstr(cgpath, "/kubepods"))
					return put(buf, len, "kubepods-", c, SERVICE_ID_DIGITS);
			}
			end = c > cgpath ? c - 1 : cgpath;
		}
	}
	if (!comm || !comm[0])
		comm = "unknown";
	return put(buf, len, "", comm, strlen(comm));
}
