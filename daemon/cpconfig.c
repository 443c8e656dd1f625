/*
 * cpconfig.c - key material, policy trust and the control plane's
 * addresses, gathered by the monitor for the workers (see cpconfig.h).
 *
 * Runs in the monitor (root at start-up; the dropped monitor on SIGHUP).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <stdbool.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certrot.h"
#include "cpconfig.h"
#include "memblob.h"
#include "policyfile.h"
#include "signing.h"
#include "statedir.h"

int cpconfig_open_file(const char *opt, const char *path, bool secret, int *ret_fd, char *why,
		       size_t why_len)
{
	char r[400];
	struct stat st;
	int fd, rc;

	rc = policyfile_open(path, &fd, r, sizeof(r));
	if (rc) {
		snprintf(why, why_len, "%s: %s", opt, r);
		return rc;
	}
	if (secret && (fstat(fd, &st) < 0 || (st.st_mode & 077))) {
		snprintf(why, why_len, "%s: %s (mode %04o) is readable by %s: it holds a secret; chmod 600 %s",
			 opt, path, (unsigned)(st.st_mode & 07777), (st.st_mode & 070) ? "its group" : "others",
			 path);
		close(fd);
		return -EPERM;
	}
	*ret_fd = fd;
	return 0;
}

static int read_one(const char *opt, const char *path, bool secret, size_t max, int *ret_fd,
		    char *why, size_t why_len)
{
	int fd, rc = cpconfig_open_file(opt, path, secret, &fd, why, why_len);

	if (rc)
		return rc;
	rc = memblob_from_file(opt + 2, fd, max, ret_fd);
	close(fd);
	if (rc)
		snprintf(why, why_len, "%s: %s: %s", opt, path,
			 rc == -EFBIG ? "too large" : strerror(-rc));
	return rc;
}

int cpconfig_read_creds(const struct vigild_opts *o, int fds[3], char *why, size_t why_len)
{
	int rc;

	fds[0] = fds[1] = fds[2] = -1;
	rc = read_one("--cert", o->cert, false, SIGNING_MAX_KEY_BYTES, &fds[0], why, why_len);
	if (!rc)
		rc = read_one("--key", o->key, true, SIGNING_MAX_KEY_BYTES, &fds[1], why, why_len);
	if (!rc)
		rc = read_one("--ca", o->ca, false, SIGNING_MAX_TRUST_BYTES, &fds[2], why, why_len);
	if (rc) {
		for (int i = 0; i < 3; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		fds[0] = fds[1] = fds[2] = -1;
	}
	return rc;
}

int cpconfig_prefer_renewed(int state_fd, uid_t owner, int fds[3], char *why, size_t why_len)
{
	void *cur = NULL, *id = NULL;
	size_t cur_len, id_len, key_off;
	struct stat st;
	int fd, cfd = -1, kfd = -1, rc;

	why[0] = '\0';
	fd = openat(state_fd, STATEDIR_IDENTITY, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? 0 : (snprintf(why, why_len, "%s: %s", STATEDIR_IDENTITY,
						       strerror(errno)), 0);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_uid != 0 && st.st_uid != owner) ||
	    (st.st_mode & 077)) {
		snprintf(why, why_len, "%s in the state directory is not a 0600 regular file of vigil's or "
			 "root's: not used", STATEDIR_IDENTITY);
		close(fd);
		return 0;
	}
	rc = memblob_from_file("identity", fd, IDENTITY_MAX, &cfd);
	close(fd);
	if (rc) {
		snprintf(why, why_len, "%s: %s: not used", STATEDIR_IDENTITY, strerror(-rc));
		return 0;
	}
	rc = memblob_read(cfd, IDENTITY_MAX, &id, &id_len);
	close(cfd);
	cfd = -1;
	if (!rc)
		rc = memblob_read(fds[0], SIGNING_MAX_KEY_BYTES, &cur, &cur_len);
	if (rc)
		goto out;
	if (certrot_split(id, id_len, &key_off) ||
	    certrot_pair(id, key_off, (const char *)id + key_off, id_len - key_off)) {
		snprintf(why, why_len, "%s: not a certificate followed by its key: not used", STATEDIR_IDENTITY);
		goto out;
	}
	if (!certrot_newer(id, key_off, cur, cur_len, time(NULL))) {
		snprintf(why, why_len, "%s: not a renewal of --cert valid now (another subject, expired, or "
			 "expiring before it): --cert and --key are used", STATEDIR_IDENTITY);
		goto out;
	}
	rc = memblob_new("--cert", id, key_off, NULL, 0, &cfd);
	if (!rc)
		rc = memblob_new("--key", (const char *)id + key_off, id_len - key_off, NULL, 0, &kfd);
	if (rc)
		goto out;
	close(fds[0]);
	close(fds[1]);
	fds[0] = cfd;
	fds[1] = kfd;
	cfd = kfd = -1;
	snprintf(why, why_len, "using the certificate renewed through the control plane (%s in the state "
		 "directory), which expires later than --cert", STATEDIR_IDENTITY);
	rc = 1;
out:
	if (cfd >= 0)
		close(cfd);
	if (kfd >= 0)
		close(kfd);
	if (id) {
		explicit_bzero(id, id_len);
		free(id);
	}
	free(cur);
	return rc;
}

int cpconfig_read_trust(const struct vigild_opts *o, int *ret_fd, char *why, size_t why_len)
{
	return read_one("--policy-trust", o->policy_trust, false, SIGNING_MAX_TRUST_BYTES, ret_fd,
			why, why_len);
}

int cpconfig_resolve_host(const char *host, struct uplink_addr addrs[UPLINK_MAX_ADDRS],
			  uint32_t *ret_n, char *why, size_t why_len)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res, *ai;
	uint32_t n = 0;
	int rc;

	*ret_n = 0;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc) {
		snprintf(why, why_len, "%s: %s", host,
			 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	for (ai = res; ai && n < UPLINK_MAX_ADDRS; ai = ai->ai_next) {
		struct uplink_addr a = { 0 };
		bool dup = false;

		if (ai->ai_family == AF_INET) {
			a.family = AF_INET;
			memcpy(a.addr, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
		} else if (ai->ai_family == AF_INET6) {
			a.family = AF_INET6;
			memcpy(a.addr, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		for (uint32_t i = 0; i < n; i++)
			dup |= !memcmp(&addrs[i], &a, sizeof(a));
		if (!dup)
			addrs[n++] = a;
	}
	freeaddrinfo(res);
	if (!n) {
		snprintf(why, why_len, "%s: no IPv4 or IPv6 address", host);
		return -EHOSTUNREACH;
	}
	*ret_n = n;
	return 0;
}

int cpconfig_resolve(const struct vigild_opts *o, struct msg_uplink_creds *m, char *why,
		     size_t why_len)
{
	return cpconfig_resolve_host(o->cp_host, m->addrs, &m->naddrs, why, why_len);
}

void cpconfig_uplink_identity(const struct vigild_opts *o, struct msg_uplink_setup *m)
{
	size_t off = 0;

	if (gethostname(m->hostname, sizeof(m->hostname) - 1) < 0)
		snprintf(m->hostname, sizeof(m->hostname), "unknown");
	m->hostname[sizeof(m->hostname) - 1] = '\0';
	/* options_parse bounded them to VIGILD_LABELS_BYTES == UPLINK_LABELS_LEN */
	for (unsigned i = 0; i < o->nlabels; i++) {
		size_t n = strlen(o->labels[i]) + 1;

		if (off + n > sizeof(m->labels))
			break;
		memcpy(m->labels + off, o->labels[i], n);
		off += n;
		m->nlabels++;
	}
}

void cpconfig_uplink_setup(const struct vigild_opts *o, struct msg_uplink_setup *m)
{
	if (!o->control_plane)
		return;
	m->flags |= UPLINK_F_CONTROL_PLANE;
	m->port = o->cp_port;
	m->poll_interval_s = o->poll_interval_s;
	snprintf(m->host, sizeof(m->host), "%s", o->cp_host);
	cpconfig_uplink_identity(o, m);
}
