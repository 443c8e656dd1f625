/*
 * exportcreds.c - the export target's files and addresses, gathered by
 * the monitor for the uplink (see exportcreds.h).  Runs in the monitor.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpconfig.h"
#include "exportcreds.h"
#include "exporter.h"
#include "memblob.h"

static int read_pem(const char *opt, const char *path, bool secret, int *ret_fd, char *why,
		    size_t why_len)
{
	int fd, rc = cpconfig_open_file(opt, path, secret, &fd, why, why_len);

	if (rc)
		return rc;
	rc = memblob_from_file(opt + 2, fd, EXPORTCREDS_PEM_MAX, ret_fd);
	close(fd);
	if (rc)
		snprintf(why, why_len, "%s: %s: %s", opt, path, rc == -EFBIG ? "larger than 4 MiB" :
			 strerror(-rc));
	return rc;
}

/* A one-line secret: the line without its newline, checked, into a memfd. */
static int read_secret(const char *opt, const char *path, bool basic, int *ret_fd, char *why,
		       size_t why_len)
{
	char buf[EXPORTER_SECRET_MAX + 3];
	size_t len = 0;
	ssize_t n;
	int fd, rc = cpconfig_open_file(opt, path, true, &fd, why, why_len);

	if (rc)
		return rc;
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) > 0)
		len += (size_t)n;
	rc = n < 0 ? -errno : 0;
	close(fd);
	if (rc) {
		snprintf(why, why_len, "%s: %s: %s", opt, path, strerror(-rc));
		goto out;
	}
	if (len && buf[len - 1] == '\n')
		len--;
	if (len && buf[len - 1] == '\r')
		len--;
	if (len == 0 || len > EXPORTER_SECRET_MAX || memchr(buf, '\n', len) || memchr(buf, '\r', len) ||
	    memchr(buf, '\0', len) || (basic && !memchr(buf, ':', len))) {
		snprintf(why, why_len, "%s: %s must hold one line of at most %u bytes%s", opt, path,
			 EXPORTER_SECRET_MAX, basic ? ", user:password" : ", the token");
		rc = -EINVAL;
		goto out;
	}
	rc = memblob_new(opt + 2, buf, len, NULL, 0, ret_fd);
	if (rc)
		snprintf(why, why_len, "%s: %s", opt, strerror(-rc));
out:
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

int exportcreds_read(const struct vigild_opts *o, int fds[EXPORTCREDS_NFDS], uint32_t *ret_flags,
		     char *why, size_t why_len)
{
	uint32_t flags = UPLINK_EXPORT_F_ON;
	int rc = 0;

	for (int i = 0; i < EXPORTCREDS_NFDS; i++)
		fds[i] = -1;
	if (o->export_basic_auth_file) {
		rc = read_secret("--export-basic-auth-file", o->export_basic_auth_file, true, &fds[0], why,
				 why_len);
		flags |= UPLINK_EXPORT_F_BASIC;
	}
	if (!rc && o->export_bearer_token_file) {
		rc = read_secret("--export-bearer-token-file", o->export_bearer_token_file, false, &fds[1],
				 why, why_len);
		flags |= UPLINK_EXPORT_F_BEARER;
	}
	if (!rc && o->export_https) {
		rc = read_pem(o->export_ca ? "--export-ca" : "--export-ca (default)",
			      o->export_ca ? o->export_ca : VIGILD_SYSTEM_CA, false, &fds[2], why, why_len);
		if (rc && !o->export_ca) {
			char r[300];

			snprintf(r, sizeof(r), "%s", why);
			snprintf(why, why_len, "an https --export-url needs CA certificates: the system's "
				 "bundle cannot be used (%.200s); give --export-ca FILE", r);
		}
		flags |= UPLINK_EXPORT_F_CA;
	}
	if (!rc && o->export_cert) {
		rc = read_pem("--export-cert", o->export_cert, false, &fds[3], why, why_len);
		if (!rc)
			rc = read_pem("--export-key", o->export_key, true, &fds[4], why, why_len);
		flags |= UPLINK_EXPORT_F_CERT;
	}
	/* the table wants five: empty ones where there is nothing */
	for (int i = 0; i < EXPORTCREDS_NFDS && !rc; i++)
		if (fds[i] < 0 && (rc = memblob_new("none", "", 0, NULL, 0, &fds[i])))
			snprintf(why, why_len, "memfd: %s", strerror(-rc));
	if (rc) {
		for (int i = 0; i < EXPORTCREDS_NFDS; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		for (int i = 0; i < EXPORTCREDS_NFDS; i++)
			fds[i] = -1;
		return rc;
	}
	*ret_flags = flags;
	return 0;
}

int exportcreds_resolve(const struct vigild_opts *o, struct msg_uplink_export *m, char *why,
			size_t why_len)
{
	return cpconfig_resolve_host(o->export_host, m->addrs, &m->naddrs, why, why_len);
}

void exportcreds_message(const struct vigild_opts *o, struct msg_uplink_export *m)
{
	m->hdr.type = MSG_UPLINK_EXPORT;
	m->hdr.len = sizeof(*m);
	m->version = PRIVSEP_VERSION;
	m->port = o->export_port;
	m->max_rate = o->export_max_rate;
	/* options_parse bounded them: URL to EXPORTURL_MAX, tenant to EXPORTURL_TENANT_MAX */
	snprintf(m->url, sizeof(m->url), "%s", o->export_url);
	snprintf(m->host, sizeof(m->host), "%s", o->export_host);
	snprintf(m->tenant, sizeof(m->tenant), "%s", o->export_tenant ? o->export_tenant : "");
}

void exportcreds_uplink_setup(const struct vigild_opts *o, struct msg_uplink_setup *m)
{
	m->flags |= UPLINK_F_EXPORT;
	if (!(m->flags & UPLINK_F_CONTROL_PLANE)) /* else cpconfig_uplink_setup filled them */
		cpconfig_uplink_identity(o, m);
}
