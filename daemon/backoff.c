/*
 * backoff.c - the uplink's retry schedule (see backoff.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backoff.h"

void backoff_reset(struct backoff *b)
{
	b->failures = 0;
}

uint64_t backoff_next(struct backoff *b, uint64_t rnd, uint64_t server_ns)
{
	uint64_t d = BACKOFF_MIN_NS, lo, wait;

	if (b->failures < 64)
		b->failures++;
	for (unsigned i = 1; i < b->failures && d < BACKOFF_MAX_NS; i++)
		d *= 2;
	if (d > BACKOFF_MAX_NS)
		d = BACKOFF_MAX_NS;
	lo = d / 2 > BACKOFF_MIN_NS ? d / 2 : BACKOFF_MIN_NS;
	wait = lo + (d > lo ? rnd % (d - lo + 1) : 0);
	if (server_ns > BACKOFF_SERVER_MAX_NS)
		server_ns = BACKOFF_SERVER_MAX_NS;
	return server_ns > wait ? server_ns : wait;
}

int backoff_parse_retry_after(const char *v, int64_t now_s, uint64_t *ret_ns)
{
	struct tm tm = { 0 };
	const char *end;
	time_t at;

	while (*v == ' ' || *v == '\t')
		v++;
	if (isdigit((unsigned char)*v)) {
		char *e;
		unsigned long long s;

		errno = 0;
		s = strtoull(v, &e, 10);
		while (*e == ' ' || *e == '\t' || *e == '\r' || *e == '\n')
			e++;
		if (errno || *e)
			return -EINVAL;
		if (s > BACKOFF_SERVER_MAX_NS / 1000000000ull)
			s = BACKOFF_SERVER_MAX_NS / 1000000000ull;
		*ret_ns = s * 1000000000ull;
		return 0;
	}
	/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
	end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!end)
		return -EINVAL;
	while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
		end++;
	if (*end)
		return -EINVAL;
	at = timegm(&tm);
	*ret_ns = at > now_s ? (uint64_t)(at - now_s) * 1000000000ull : 0;
	if (*ret_ns > BACKOFF_SERVER_MAX_NS)
		*ret_ns = BACKOFF_SERVER_MAX_NS;
	return 0;
}

int backoff_retry_after_header(const char *line, size_t len, int64_t now_s, uint64_t *ret_ns)
{
	static const char name[] = "Retry-After:";
	const size_t nl = sizeof(name) - 1;
	char v[128];

	if (len <= nl || len >= nl + sizeof(v) || strncasecmp(line, name, nl) != 0)
		return -EINVAL;
	memcpy(v, line + nl, len - nl);
	v[len - nl] = '\0';
	return backoff_parse_retry_after(v, now_s, ret_ns);
}
