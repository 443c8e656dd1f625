/*
 * polrevert.c - the old policy's YAML with the next serial (polrevert.h):
 * a byte-level edit of one line, so that what an administrator reviews
 * and signs differs from the old policy in that value alone.  Used by
 * vigilctl.  Never logs.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "polrevert.h"

int polrevert_reserial(const char *yaml, size_t len, int64_t serial, char **ret, size_t *ret_len, char *err,
		       size_t errlen)
{
	static const char key[] = "serial:";
	size_t vstart = 0, vend = 0, line = 0, found_line = 0, found = 0;
	char num[24], *out;
	int nlen;

	if (err && errlen)
		err[0] = '\0';
	if (!yaml || serial <= 0)
		return -EINVAL;
	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(yaml + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - yaml) : len;

		line++;
		if (end - pos >= sizeof(key) - 1 && !memcmp(yaml + pos, key, sizeof(key) - 1)) {
			size_t v = pos + sizeof(key) - 1, e;

			if (++found > 1) {
				snprintf(err, errlen, "line %zu: a second top-level serial (the first is on line %zu)",
					 line, found_line);
				return -EINVAL;
			}
			found_line = line;
			while (v < end && (yaml[v] == ' ' || yaml[v] == '\t'))
				v++;
			/* The value ends at a comment (" #"), the line's end or its CR. */
			for (e = v; e < end && yaml[e] != '\r'; e++)
				if (yaml[e] == '#' && (e == v || yaml[e - 1] == ' ' || yaml[e - 1] == '\t'))
					break;
			while (e > v && (yaml[e - 1] == ' ' || yaml[e - 1] == '\t'))
				e--;
			if (e == v) {
				snprintf(err, errlen, "line %zu: the top-level serial has no value", line);
				return -EINVAL;
			}
			vstart = v;
			vend = e;
		}
		pos = nl ? end + 1 : len;
	}
	if (!found) {
		snprintf(err, errlen, "no top-level \"serial:\" line (a policy for the control plane has one)");
		return -EINVAL;
	}
	nlen = snprintf(num, sizeof(num), "%" PRId64, serial);
	*ret_len = len - (vend - vstart) + (size_t)nlen;
	out = malloc(*ret_len + 1);
	if (!out)
		return -ENOMEM;
	memcpy(out, yaml, vstart);
	memcpy(out + vstart, num, (size_t)nlen);
	memcpy(out + vstart + (size_t)nlen, yaml + vend, len - vend);
	out[*ret_len] = '\0';
	*ret = out;
	return 0;
}
