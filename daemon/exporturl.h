/*
 * exporturl.h - the syntax of an export target: the Pyroscope URL
 * (http[s]://HOST[:PORT][/PREFIX]) and the tenant id (X-Scope-OrgID).
 * Shared by the command line (options.c) and the policy's export: section.
 *
 * Runs in the monitor (options) and the collector (policy).  Library-like:
 * 0 or -EINVAL with a one-line reason in err, never logs.
 */
#ifndef VIGIL_EXPORTURL_H
#define VIGIL_EXPORTURL_H

#include <stdbool.h>
#include <stddef.h>

#define EXPORTURL_MAX 1023       /* bytes of the URL (EXPORT_URL_LEN - 1) */
#define EXPORTURL_TENANT_MAX 63  /* bytes of a tenant id (EXPORT_TENANT_LEN - 1) */

struct exporturl {
	char host[256];  /* a DNS name or an address (IPv6 without brackets) */
	unsigned port;   /* given, else 80 or 443 */
	bool https;
};

/*
 * Check url: http:// or https://, a host, an optional port, an optional
 * path prefix of [A-Za-z0-9._~/-] (the push path is appended to it); no
 * user, query or fragment.  what names the setting in err ("--export-url").
 */
int exporturl_parse(const char *what, const char *url, struct exporturl *ret, char *err,
		    size_t errlen);

/*
 * A tenant id as Grafana's multi-tenant services take it (dskit's
 * tenant.ValidTenantID): 1..63 bytes of [A-Za-z0-9!._*'()-], not "." or "..".
 */
int exporturl_check_tenant(const char *what, const char *tenant, char *err, size_t errlen);

/*
 * A file the policy's export: section may name: an absolute path under
 * /etc/vigil/ (POLICY_EXPORT_DIR), no "." or ".." component, no "//", at
 * most 255 bytes.  Checked by the policy and again by the monitor, which
 * reads the file as root for a less trusted process.
 */
int exporturl_check_file(const char *what, const char *path, char *err, size_t errlen);

#endif
