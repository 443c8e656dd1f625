/*
 * spoolq.c - the export spool in the output directory (see spoolq.h).
 *
 * Runs in the collector.  The queue is an array sorted oldest first; it
 * is small (one entry per interval, or a few parts, bounded by max_bytes
 * and SPOOLQ_MAX_FILES), so removing from its front by memmove is cheap
 * next to the unlink that goes with it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "spool.h"
#include "spoolq.h"

/* A bound on entries too, for a directory full of tiny files. */
#define SPOOLQ_MAX_FILES 65536
#define PREFIX "cpu-"
#define SUFFIX ".pb.gz"
#define PUSH_SUFFIX ".push"
#define STAMP_LEN 20 /* YYYYmmddTHHMMSS.mmmZ */

struct spoolq {
	int dirfd;
	uint64_t max_bytes;
	struct spoolq_entry *v;
	size_t n, cap;
	uint64_t next_seq;
	struct spool_stats st;
	uint64_t unreported, unreported_bytes; /* dropped since the last spoolq_take_dropped */
	/* Dropping since the last acknowledged push: an outage is one episode. */
	bool episode, episode_new;
};

int spoolq_new(int dirfd, uint64_t max_bytes, struct spoolq **ret)
{
	struct spoolq *q = calloc(1, sizeof(*q));

	if (!q)
		return -ENOMEM;
	q->dirfd = dirfd;
	q->max_bytes = max_bytes ? max_bytes : SPOOLQ_DEFAULT_MAX_BYTES;
	q->next_seq = 1;
	*ret = q;
	return 0;
}

void spoolq_free(struct spoolq *q)
{
	if (!q)
		return;
	free(q->v);
	free(q);
}

static bool plain(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
	       c == '_' || c == ':' || c == '-';
}

/* %XX-escape s into out (room for 3 * strlen + 1); returns the length. */
static size_t escape(const char *s, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t k = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (plain(*p)) {
			out[k++] = (char)*p;
		} else {
			out[k++] = '%';
			out[k++] = hex[*p >> 4];
			out[k++] = hex[*p & 15];
		}
	}
	out[k] = '\0';
	return k;
}

static int unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Unescape s[0..n) into out (size len); '~' is the mark of a shortened service. */
static int unescape(const char *s, size_t n, char *out, size_t len, bool tilde_ok)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi = i + 2 < n ? unhex(s[i + 1]) : -1, lo = hi >= 0 ? unhex(s[i + 2]) : -1;

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -EINVAL;
			c = hi * 16 + lo;
			i += 2;
		} else if (!plain((unsigned char)c) && !(tilde_ok && c == '~')) {
			return -EINVAL;
		}
		if (out) {
			if (k + 1 >= len)
				return -ENAMETOOLONG;
			out[k] = (char)c;
		}
		k++;
	}
	if (out)
		out[k] = '\0';
	return 0;
}

/* FNV-1a: enough to tell two shortened services apart in a name. */
static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

int spoolq_name(char *buf, size_t len, int64_t realtime_ns, const char *service,
		const char *tenant)
{
	char stamp[64], esvc[3 * SPOOLQ_SERVICE_MAX + 1], eten[3 * SPOOLQ_TENANT_MAX + 1];
	size_t sl, tl, fixed, room;
	int n;

	if (!service || !service[0] || strlen(service) > SPOOLQ_SERVICE_MAX || !tenant ||
	    strlen(tenant) > SPOOLQ_TENANT_MAX)
		return -EINVAL;
	n = spool_name(stamp, sizeof(stamp), realtime_ns);
	if (n)
		return n;
	stamp[strlen(stamp) - strlen(SUFFIX)] = '\0'; /* cpu-<stamp> */
	sl = escape(service, esvc);
	tl = escape(tenant, eten);
	fixed = strlen(stamp) + 2 + tl + strlen(SUFFIX);
	if (fixed + sl > SPOOLQ_NAME_MAX) {
		/* "~" and 8 hex digits after the cut, which never splits a %XX */
		if (fixed + 1 + 9 > SPOOLQ_NAME_MAX)
			return -ENAMETOOLONG;
		room = SPOOLQ_NAME_MAX - fixed - 9;
		while (room > 0 && (esvc[room - 1] == '%' || (room > 1 && esvc[room - 2] == '%')))
			room--;
		snprintf(esvc + room, sizeof(esvc) - room, "~%08x", fnv1a(service));
	}
	n = snprintf(buf, len, "%s@%s@%s" SUFFIX, stamp, esvc, eten);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int parse_stamp(const char *s, int64_t *ret)
{
	struct tm tm = { 0 };
	unsigned ms;
	char tail;

	if (sscanf(s, "%4d%2d%2dT%2d%2d%2d.%3u%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec, &ms, &tail) != 8 || tail != 'Z')
		return -EINVAL;
	for (int i = 0; i < STAMP_LEN - 1; i++)
		if (i != 8 && i != 15 && (s[i] < '0' || s[i] > '9'))
			return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*ret = (int64_t)timegm(&tm) * 1000000000ll + (int64_t)ms * 1000000ll;
	return 0;
}

int spoolq_parse_name(const char *name, int64_t *ret_time_ns, char *ret_service, size_t svc_len,
		      char *ret_tenant)
{
	size_t nl = strlen(name), pl = strlen(PREFIX), xl = strlen(SUFFIX);
	const char *s, *at1, *at2, *end;
	int64_t t;
	int rc;

	if (nl > SPOOLQ_NAME_MAX || nl < pl + STAMP_LEN + 2 + xl || memcmp(name, PREFIX, pl) != 0 ||
	    strcmp(name + nl - xl, SUFFIX) != 0)
		return -EINVAL;
	s = name + pl;
	if (s[STAMP_LEN] != '@' || parse_stamp(s, &t) < 0)
		return -EINVAL;
	at1 = s + STAMP_LEN;
	end = name + nl - xl;
	at2 = memchr(at1 + 1, '@', (size_t)(end - at1 - 1));
	if (!at2 || at2 == at1 + 1 || memchr(at2 + 1, '@', (size_t)(end - at2 - 1)))
		return -EINVAL;
	rc = unescape(at1 + 1, (size_t)(at2 - at1 - 1), ret_service, svc_len, true);
	if (!rc)
		rc = unescape(at2 + 1, (size_t)(end - at2 - 1), ret_tenant, SPOOLQ_TENANT_MAX + 1, false);
	if (rc)
		return -EINVAL;
	if (ret_time_ns)
		*ret_time_ns = t;
	return 0;
}

int spoolq_file_name(char *buf, size_t len, int64_t realtime_ns, uint32_t part, uint32_t nseries)
{
	char stamp[64];
	int n;

	if (!nseries || nseries > SPOOLQ_SERIES_MAX || part > SPOOLQ_PART_MAX)
		return -EINVAL;
	n = spool_name(stamp, sizeof(stamp), realtime_ns);
	if (n)
		return n;
	stamp[strlen(stamp) - strlen(SUFFIX)] = '\0'; /* cpu-<stamp> */
	n = snprintf(buf, len, "%s_%u_%u" PUSH_SUFFIX, stamp, part, nseries);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* A decimal number without leading zeros at *p, at most max; *p moves past it. */
static bool number(const char **p, uint32_t max, uint32_t *ret)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return false;
	}
	*p = s;
	*ret = (uint32_t)v;
	return true;
}

int spoolq_parse_file_name(const char *name, int64_t *ret_time_ns, uint32_t *ret_part,
			   uint32_t *ret_nseries)
{
	size_t pl = strlen(PREFIX);
	const char *s;
	uint32_t k, n;
	int64_t t;

	if (strnlen(name, SPOOLQ_NAME_MAX + 1) > SPOOLQ_NAME_MAX ||
	    strnlen(name, pl + STAMP_LEN + 1) < pl + STAMP_LEN + 1 || memcmp(name, PREFIX, pl) != 0)
		return -EINVAL;
	s = name + pl;
	if (s[STAMP_LEN] != '_' || parse_stamp(s, &t) < 0)
		return -EINVAL;
	s += STAMP_LEN + 1;
	if (!number(&s, SPOOLQ_PART_MAX, &k) || *s++ != '_' || !number(&s, SPOOLQ_SERIES_MAX, &n) ||
	    !n || strcmp(s, PUSH_SUFFIX) != 0)
		return -EINVAL;
	if (ret_time_ns)
		*ret_time_ns = t;
	if (ret_part)
		*ret_part = k;
	if (ret_nseries)
		*ret_nseries = n;
	return 0;
}

static int push_entry(struct spoolq *q, const char *name, int64_t time_ns, uint32_t part,
		      uint32_t nseries, uint64_t samples, uint64_t size)
{
	struct spoolq_entry *e;

	if (strlen(name) > SPOOLQ_NAME_MAX || !nseries || nseries > SPOOLQ_SERIES_MAX)
		return -EINVAL;
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 64;
		struct spoolq_entry *v = realloc(q->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		q->v = v;
		q->cap = cap;
	}
	e = &q->v[q->n];
	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->time_ns = time_ns;
	e->part = part;
	e->nseries = nseries;
	e->samples = samples;
	e->size = size;
	q->n++;
	q->st.files++;
	q->st.bytes += size;
	return 0;
}

static void remove_at(struct spoolq *q, size_t i)
{
	q->st.files--;
	q->st.bytes -= q->v[i].size;
	memmove(&q->v[i], &q->v[i + 1], (q->n - i - 1) * sizeof(q->v[0]));
	q->n--;
}

/*
 * The count the comment of v[i] reports, as v[i] is dropped: to another
 * file of its interval (its comment says the same), else unreported again.
 */
static void pass_on_carried(struct spoolq *q, size_t i)
{
	struct spoolq_entry *e = &q->v[i];

	if (!e->carried && !e->carried_bytes)
		return;
	for (size_t j = q->n; j-- > 0;) {
		if (j != i && q->v[j].time_ns == e->time_ns) {
			q->v[j].carried += e->carried;
			q->v[j].carried_bytes += e->carried_bytes;
			return;
		}
	}
	q->unreported += e->carried;
	q->unreported_bytes += e->carried_bytes;
}

/*
 * Unlink the oldest files while over the bound with `incoming` bytes (a
 * file about to be written, 0 for none) more; not the one in flight, and
 * not the newest `keep` (1 once a file was just written: the bound does not
 * undo a write it did not prevent).
 */
static uint64_t enforce(struct spoolq *q, uint64_t incoming, size_t keep)
{
	size_t more = incoming ? 1 : 0;
	uint64_t dropped = 0;
	size_t i = 0;

	while ((q->st.bytes + incoming > q->max_bytes || q->n + more > SPOOLQ_MAX_FILES) &&
	       i + keep < q->n) {
		if (q->v[i].inflight) {
			i++;
			continue;
		}
		/* Gone already (someone cleaned up) counts the same: it will not be sent. */
		unlinkat(q->dirfd, q->v[i].name, 0);
		/* in profiles, as everything the spool counts: the file's series */
		q->st.dropped_total += q->v[i].nseries;
		q->st.dropped_bytes_total += q->v[i].size;
		q->unreported += q->v[i].nseries;
		q->unreported_bytes += q->v[i].size;
		dropped += q->v[i].nseries;
		pass_on_carried(q, i);
		remove_at(q, i);
	}
	if (dropped && !q->episode)
		q->episode = q->episode_new = true;
	return dropped;
}

/* Oldest first: by interval, then part (whose number may have more digits). */
static int cmp_entry(const void *a, const void *b)
{
	const struct spoolq_entry *x = a, *y = b;

	if (x->time_ns != y->time_ns)
		return x->time_ns < y->time_ns ? -1 : 1;
	if (x->part != y->part)
		return x->part < y->part ? -1 : 1;
	return strcmp(x->name, y->name);
}

int spoolq_scan(struct spoolq *q, uint64_t *ret_legacy)
{
	struct dirent *de;
	uint64_t legacy = 0;
	DIR *d;
	int fd, rc = 0, found = 0;

	fd = openat(q->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while ((errno = 0, de = readdir(d))) {
		struct stat st;
		uint32_t k, n;
		int64_t t;

		if (spoolq_parse_file_name(de->d_name, &t, &k, &n) < 0) {
			if (spoolq_parse_name(de->d_name, NULL, NULL, 0, NULL) == 0)
				legacy++;
			continue;
		}
		if (fstatat(q->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		rc = push_entry(q, de->d_name, t, k, n, SPOOLQ_SAMPLES_UNKNOWN, (uint64_t)st.st_size);
		if (rc)
			break;
		found++;
	}
	if (!rc && errno)
		rc = -errno;
	closedir(d);
	if (rc)
		return rc;
	if (q->n > 1) /* qsort(NULL, 0, ...) is undefined */
		qsort(q->v, q->n, sizeof(q->v[0]), cmp_entry);
	enforce(q, 0, 1);
	if (ret_legacy)
		*ret_legacy = legacy;
	return found;
}

uint64_t spoolq_set_max_bytes(struct spoolq *q, uint64_t max_bytes)
{
	q->max_bytes = max_bytes ? max_bytes : SPOOLQ_DEFAULT_MAX_BYTES;
	return enforce(q, 0, 1);
}

int spoolq_add(struct spoolq *q, const char *name, int64_t time_ns, uint32_t nseries,
	       uint64_t samples, uint64_t size, uint64_t *ret_dropped)
{
	uint32_t k, n;
	uint64_t d;
	int rc;

	if (spoolq_parse_file_name(name, NULL, &k, &n) < 0 || n != nseries)
		return -EINVAL;
	rc = push_entry(q, name, time_ns, k, nseries, samples, size);
	if (rc)
		return rc;
	q->st.written_total += nseries;
	d = enforce(q, 0, 1);
	if (ret_dropped)
		*ret_dropped = d;
	return 0;
}

uint64_t spoolq_make_room(struct spoolq *q, uint64_t size)
{
	return enforce(q, size, 0);
}

bool spoolq_episode_started(struct spoolq *q)
{
	bool b = q->episode_new;

	q->episode_new = false;
	return b;
}

void spoolq_dropped(const struct spoolq *q, uint64_t *ret_profiles, uint64_t *ret_bytes)
{
	*ret_profiles = q->unreported;
	*ret_bytes = q->unreported_bytes;
}

void spoolq_dropped_reported(struct spoolq *q, uint64_t profiles, uint64_t bytes, int64_t time_ns)
{
	if (profiles > q->unreported)
		profiles = q->unreported;
	if (bytes > q->unreported_bytes)
		bytes = q->unreported_bytes;
	q->unreported -= profiles;
	q->unreported_bytes -= bytes;
	/* Its interval's files still waiting (not those held in memory, unwritten) carry it. */
	for (size_t j = q->n; j-- > 0;) {
		if (q->v[j].time_ns == time_ns) {
			q->v[j].carried += profiles;
			q->v[j].carried_bytes += bytes;
			return;
		}
	}
}

/*
 * The entry in flight, or NULL.  Only ever the oldest: spoolq_next marks
 * v[0], nothing is queued before it once the scan is over, and the bound
 * never drops it.  So every question about it is O(1), though it is asked
 * at every turn of the collector's loop.
 */
static struct spoolq_entry *inflight(const struct spoolq *q)
{
	return q->n && q->v[0].inflight ? &q->v[0] : NULL;
}

const struct spoolq_entry *spoolq_next(struct spoolq *q)
{
	if (!q->n || inflight(q))
		return NULL;
	q->v[0].inflight = true;
	q->v[0].seq = q->next_seq++;
	return &q->v[0];
}

void spoolq_set_samples(struct spoolq *q, uint64_t seq, uint64_t samples)
{
	struct spoolq_entry *e = inflight(q);

	if (e && e->seq == seq)
		e->samples = samples;
}

const struct spoolq_entry *spoolq_inflight(const struct spoolq *q)
{
	return inflight(q);
}

int spoolq_done(struct spoolq *q, uint64_t seq)
{
	struct spoolq_entry *e = inflight(q);
	int rc;

	if (!e || e->seq != seq)
		return -EPROTO;
	rc = unlinkat(q->dirfd, e->name, 0) < 0 ? -errno : 0;
	remove_at(q, 0);
	q->episode = false; /* profiles leave again: the next drop is news */
	return rc;
}

void spoolq_reset_inflight(struct spoolq *q)
{
	if (q->n)
		q->v[0].inflight = false;
}

const struct spool_stats *spoolq_stats(const struct spoolq *q)
{
	return &q->st;
}

void spoolq_uuid(const char *host, const char *name, char *buf, size_t len)
{
	uint8_t h[SHA256_DIGEST_LENGTH];
	char in[256 + SPOOLQ_NAME_MAX + 2];
	/* the NUL between keeps "ab"+"c" apart from "a"+"bc" */
	int n = snprintf(in, sizeof(in), "%.255s%c%s", host, '\0', name);

	SHA256((const unsigned char *)in, n > 0 && (size_t)n < sizeof(in) ? (size_t)n : sizeof(in) - 1, h);
	h[6] = (h[6] & 0x0f) | 0x80; /* RFC 9562 5.8: version 8, custom */
	h[8] = (h[8] & 0x3f) | 0x80; /* RFC 9562 4.1: variant 10 */
	snprintf(buf, len,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12],
		 h[13], h[14], h[15]);
}
