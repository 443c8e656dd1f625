/*
 * exporturl.c - syntax of the export URL and tenant id (see exporturl.h).
 * Library-like, never logs.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "decimal.h"
#include "exporturl.h"

static bool host_char(char c, bool v6)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '.' || (v6 && c == ':');
}

int exporturl_parse(const char *what, const char *url, struct exporturl *ret, char *err,
		    size_t errlen)
{
	struct exporturl u = { 0 };
	const char *h, *end, *port = NULL;
	size_t hl;
	bool v6 = false;

	if (strlen(url) > EXPORTURL_MAX) {
		snprintf(err, errlen, "%s: longer than %d bytes", what, EXPORTURL_MAX);
		return -EINVAL;
	}
	if (!strncasecmp(url, "https://", 8)) {
		u.https = true;
		h = url + 8;
	} else if (!strncasecmp(url, "http://", 7)) {
		h = url + 7;
	} else {
		snprintf(err, errlen, "%s '%.200s': must be http://HOST[:PORT][/PREFIX] or https://...", what,
			 url);
		return -EINVAL;
	}
	if (*h == '[') {
		end = strchr(h, ']');
		if (!end) {
			snprintf(err, errlen, "%s '%.200s': unclosed '[' around an IPv6 address", what, url);
			return -EINVAL;
		}
		h++;
		hl = (size_t)(end - h);
		end++;
		v6 = true;
	} else {
		end = h + strcspn(h, ":/?#@");
		hl = (size_t)(end - h);
	}
	if (hl == 0 || hl >= sizeof(u.host) || hl > 253) {
		snprintf(err, errlen, "%s '%.200s': %s host name", what, url, hl ? "too long a" : "no");
		return -EINVAL;
	}
	for (size_t i = 0; i < hl; i++) {
		if (!host_char(h[i], v6)) {
			snprintf(err, errlen, "%s '%.200s': '%c' cannot be in a host name (no user@ either)",
				 what, url, h[i]);
			return -EINVAL;
		}
	}
	memcpy(u.host, h, hl);
	u.port = u.https ? 443 : 80;
	if (*end == ':') {
		char buf[8];
		size_t pl;

		port = end + 1;
		pl = strcspn(port, "/?#");
		if (pl == 0 || pl >= sizeof(buf)) {
			snprintf(err, errlen, "%s '%.200s': bad port", what, url);
			return -EINVAL;
		}
		memcpy(buf, port, pl);
		buf[pl] = '\0';
		if (decimal_uint(buf, 1, 65535, &u.port)) {
			snprintf(err, errlen, "%s '%.200s': the port must be from 1 to 65535", what, url);
			return -EINVAL;
		}
		end = port + pl;
	}
	for (const char *p = end; *p; p++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '/' || c == '.' || c == '_' || c == '~' || c == '-')) {
			snprintf(err, errlen, "%s '%.200s': the path may only be a prefix of letters, digits "
				 "and / . _ ~ - (no query, fragment or escapes): /push.v1.PusherService/Push is "
				 "appended to it", what, url);
			return -EINVAL;
		}
	}
	if (*end && *end != '/') {
		snprintf(err, errlen, "%s '%.200s': the path must start with '/'", what, url);
		return -EINVAL;
	}
	*ret = u;
	return 0;
}

int exporturl_check_tenant(const char *what, const char *t, char *err, size_t errlen)
{
	size_t n = strlen(t);

	if (n == 0 || n > EXPORTURL_TENANT_MAX || !strcmp(t, ".") || !strcmp(t, "..")) {
		snprintf(err, errlen, "%s '%.80s': a tenant id is 1 to %d characters, not '.' or '..'", what,
			 t, EXPORTURL_TENANT_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		char c = t[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("!-_.*'()", c))) {
			snprintf(err, errlen, "%s '%.80s': a tenant id is letters, digits and ! - _ . * ' ( ) "
				 "only", what, t);
			return -EINVAL;
		}
	}
	return 0;
}

int exporturl_check_file(const char *what, const char *path, char *err, size_t errlen)
{
	static const char dir[] = "/etc/vigil/";
	size_t n = strlen(path);

	if (n > 255 || strncmp(path, dir, sizeof(dir) - 1) || n == sizeof(dir) - 1 || strstr(path, "//") ||
	    strstr(path, "/./") || strstr(path, "/../") || (n >= 2 && !strcmp(path + n - 2, "/.")) ||
	    (n >= 3 && !strcmp(path + n - 3, "/..")) || path[n - 1] == '/') {
		snprintf(err, errlen, "%s '%.100s': must be a file under %s (at most 255 bytes, no . or .. "
			 "components): the monitor reads it as root, so a policy may name no other file",
			 what, path, dir);
		return -EINVAL;
	}
	return 0;
}
