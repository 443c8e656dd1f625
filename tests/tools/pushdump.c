/*
 * pushdump.c - test tool: what an export spool file holds, one line per
 * series, so that shell tests can reason about series (profiles) while
 * vigild spools whole intervals.
 *
 *   pushdump FILE...
 *   pushdump --extract DIR FILE...
 *
 * A spool file (docs/security.md, "Profiles leaving the host") is named
 * cpu-<stamp>_<k>_<n>.push, where <stamp> is spool_name()'s, <k> the part
 * of the interval and <n> its number of series, and holds one serialized
 * push.v1.PushRequest (proto/push.proto): per series, its labels and ONE
 * RawSample whose raw_profile is the series' gzip pprof.  For each series
 * of each file, in file order, pushdump prints one tab-separated line
 *
 *   VNAME  ID  SAMPLES  LABELS
 *
 * VNAME is the series' virtual name, cpu-<stamp>@<service>@<tenant>.pb.gz,
 * rebuilt from the file name's stamp and the labels service_name and
 * tenant (absent: empty) by the shipping spoolq_name(), so that it is the
 * name vigild derives RawSample.ID from; ID is RawSample.ID; SAMPLES the
 * number of samples in the pprof; LABELS the series' labels as name=value
 * sorted by name and joined by ',' (a byte below 0x20, 0x7f, ',', '=' or
 * '\' is written \xHH so that a line always splits back the same way).
 * --extract also writes each raw_profile, as it is, to DIR/VNAME
 * (replacing a file of that name).
 *
 * Every file is checked whole before any of its lines is printed; a file
 * that is not what the name and the contract say (not a PushRequest, no
 * series or another count than <n>, a series with no service_name, a
 * label twice, not exactly one RawSample, a raw_profile that is not a
 * gzip pprof, two series of one file with the same VNAME) gets one line
 * "pushdump: FILE: reason" on stderr and no output; the other files are
 * still dumped.  Runs as the test's user, no privileges.
 *
 * Exit: 0 all files good, 65 at least one was not, 64 usage, 66 a file
 * cannot be read, 73 an extracted profile cannot be written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gzip.h"
#include "profile.pb-c.h"
#include "push.pb-c.h"
#include "spool.h"
#include "spoolq.h"

/* Bounds of the tool, well above what vigild writes (EXPORT_PROFILE_MAX). */
#define MAX_FILE (256u << 20)
#define MAX_PPROF (256u << 20)
#define MAX_SERIES 100000
#define STAMP_LEN 20 /* YYYYmmddTHHMMSS.mmmZ, as spool_name() writes it */

enum { EX_OK = 0, EX_USAGE = 64, EX_DATAERR = 65, EX_NOINPUT = 66, EX_CANTCREAT = 73 };

struct series_line {
	char vname[SPOOLQ_NAME_MAX + 1];
	const char *id;
	size_t samples;
	char *labels; /* owned */
	const ProtobufCBinaryData *raw;
};

static int read_all(const char *path, uint8_t **ret, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t *p = NULL;
	size_t n = 0, cap = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t k;

		if (n == cap) {
			uint8_t *np;

			if (cap > MAX_FILE) {
				free(p);
				close(fd);
				return -EFBIG;
			}
			cap = cap ? cap * 2 : 65536;
			np = realloc(p, cap + 1);
			if (!np) {
				free(p);
				close(fd);
				return -ENOMEM;
			}
			p = np;
		}
		k = read(fd, p + n, cap - n);
		if (k < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			free(p);
			close(fd);
			return -e;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	if (n > MAX_FILE) {
		free(p);
		return -EFBIG;
	}
	*ret = p;
	*ret_len = n;
	return 0;
}

/* A decimal without sign or leading zeros, up to hi: 0 or -EINVAL. */
static int parse_count(const char *s, size_t len, unsigned long hi, unsigned long *ret)
{
	unsigned long v = 0;

	if (len == 0 || (len > 1 && s[0] == '0'))
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
		if (v > hi)
			return -EINVAL;
	}
	*ret = v;
	return 0;
}

/*
 * The file name's stamp as a time, checked to be exactly what
 * spool_name() writes for that time, and its <n>.
 */
static int parse_file_name(const char *path, int64_t *ret_ns, unsigned long *ret_n, const char **why)
{
	const char *base = strrchr(path, '/'), *s, *u1, *u2, *dot;
	char want[64];
	struct tm tm = { 0 };
	unsigned ms;
	unsigned long k, n;
	int64_t t;

	base = base ? base + 1 : path;
	*why = "the name is not cpu-<stamp>_<k>_<n>.push";
	if (strncmp(base, "cpu-", 4) != 0)
		return -EINVAL;
	s = base + 4;
	if (strlen(s) < STAMP_LEN || s[STAMP_LEN] != '_')
		return -EINVAL;
	u1 = s + STAMP_LEN;
	u2 = strchr(u1 + 1, '_');
	dot = u2 ? strchr(u2 + 1, '.') : NULL;
	if (!u2 || !dot || strcmp(dot, ".push") != 0 || parse_count(u1 + 1, (size_t)(u2 - u1 - 1), 1000000, &k) ||
	    parse_count(u2 + 1, (size_t)(dot - u2 - 1), MAX_SERIES, &n))
		return -EINVAL;
	*why = "the name's stamp is not one spool_name() writes";
	if (sscanf(s, "%4d%2d%2dT%2d%2d%2d.%3u", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
		   &tm.tm_sec, &ms) != 7)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = (int64_t)timegm(&tm) * 1000000000ll + (int64_t)ms * 1000000ll;
	/* the round trip rejects 20261399T..., a missing Z, signs and spaces */
	if (spool_name(want, sizeof(want), t) < 0 || strncmp(want + 4, s, STAMP_LEN) != 0)
		return -EINVAL;
	*ret_ns = t;
	*ret_n = n;
	return 0;
}

/* Append s to the string being built, with the separators escaped. */
static void put_escaped(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == ',' || *p == '=' || *p == '\\')
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
}

static int cmp_label(const void *a, const void *b)
{
	const Push__V1__LabelPair *x = *(Push__V1__LabelPair *const *)a, *y = *(Push__V1__LabelPair *const *)b;

	return strcmp(x->name, y->name);
}

static char *labels_line(Push__V1__LabelPair **sorted, size_t n)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (!f)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc(',', f);
		put_escaped(f, sorted[i]->name);
		fputc('=', f);
		put_escaped(f, sorted[i]->value);
	}
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* Fill *ret from series s of a file whose interval starts at t. */
static int check_series(const Push__V1__RawProfileSeries *s, int64_t t, struct series_line *ret, char *why,
			size_t whylen)
{
	Push__V1__LabelPair **sorted;
	const char *service = NULL, *tenant = "";
	uint8_t *pprof = NULL;
	size_t plen = 0;
	Perftools__Profiles__Profile *p;
	int rc;

	if (s->n_samples != 1) {
		snprintf(why, whylen, "a series has %zu RawSamples, not 1", s->n_samples);
		return -EINVAL;
	}
	sorted = calloc(s->n_labels + 1, sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	memcpy(sorted, s->labels, s->n_labels * sizeof(*sorted));
	qsort(sorted, s->n_labels, sizeof(*sorted), cmp_label);
	for (size_t i = 0; i < s->n_labels; i++) {
		if (i && strcmp(sorted[i]->name, sorted[i - 1]->name) == 0) {
			snprintf(why, whylen, "a series has the label %.100s twice", sorted[i]->name);
			free(sorted);
			return -EINVAL;
		}
		if (strcmp(sorted[i]->name, "service_name") == 0)
			service = sorted[i]->value;
		else if (strcmp(sorted[i]->name, "tenant") == 0)
			tenant = sorted[i]->value;
	}
	if (!service || !service[0]) {
		snprintf(why, whylen, "a series has no service_name");
		free(sorted);
		return -EINVAL;
	}
	rc = spoolq_name(ret->vname, sizeof(ret->vname), t, service, tenant);
	if (rc < 0) {
		snprintf(why, whylen, "no series name for service %.100s tenant %.100s: %s", service, tenant,
			 strerror(-rc));
		free(sorted);
		return -EINVAL;
	}
	ret->labels = labels_line(sorted, s->n_labels);
	free(sorted);
	if (!ret->labels)
		return -ENOMEM;

	ret->raw = &s->samples[0]->raw_profile;
	ret->id = s->samples[0]->id;
	rc = gzip_decompress(ret->raw->data, ret->raw->len, MAX_PPROF, &pprof, &plen);
	if (rc < 0) {
		snprintf(why, whylen, "%s: raw_profile is not gzip data (%s)", ret->vname, strerror(-rc));
		return -EINVAL;
	}
	p = perftools__profiles__profile__unpack(NULL, plen, pprof);
	free(pprof);
	if (!p) {
		snprintf(why, whylen, "%s: raw_profile is not a pprof Profile", ret->vname);
		return -EINVAL;
	}
	ret->samples = p->n_sample;
	perftools__profiles__profile__free_unpacked(p, NULL);
	return 0;
}

static int write_profile(const char *dir, const struct series_line *l)
{
	char path[4096];
	int fd;
	size_t off = 0;

	if (snprintf(path, sizeof(path), "%s/%s", dir, l->vname) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while (off < l->raw->len) {
		ssize_t k = write(fd, l->raw->data + off, l->raw->len - off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			int e = k < 0 ? errno : EIO;

			close(fd);
			return -e;
		}
		off += (size_t)k;
	}
	return close(fd) < 0 ? -errno : 0;
}

/* One file: EX_OK with its lines printed, or another exit code. */
static int dump(const char *path, const char *extract)
{
	uint8_t *data = NULL;
	size_t len = 0;
	Push__V1__PushRequest *pr = NULL;
	struct series_line *lines = NULL;
	const char *why_name;
	char why[512] = "";
	unsigned long n_name;
	int64_t t;
	int rc, ex = EX_DATAERR;

	if (parse_file_name(path, &t, &n_name, &why_name) < 0) {
		fprintf(stderr, "pushdump: %s: %s\n", path, why_name);
		return EX_DATAERR;
	}
	rc = read_all(path, &data, &len);
	if (rc == -EFBIG) {
		fprintf(stderr, "pushdump: %s: over %u bytes, more than any spool file\n", path, MAX_FILE);
		return EX_DATAERR;
	}
	if (rc < 0) {
		fprintf(stderr, "pushdump: cannot read %s: %s\n", path, strerror(-rc));
		return EX_NOINPUT;
	}
	if (len == 0) {
		fprintf(stderr, "pushdump: %s: empty file, not a PushRequest\n", path);
		goto out;
	}
	pr = push__v1__push_request__unpack(NULL, len, data);
	if (!pr) {
		fprintf(stderr, "pushdump: %s: not a push.v1.PushRequest (%zu bytes undecodable: "
				"truncated or not protobuf)\n", path, len);
		goto out;
	}
	if (pr->n_series != n_name) {
		fprintf(stderr, "pushdump: %s: the name says %lu series, the PushRequest holds %zu\n", path, n_name,
			pr->n_series);
		goto out;
	}
	lines = calloc(pr->n_series, sizeof(*lines));
	if (!lines) {
		fprintf(stderr, "pushdump: %s: out of memory\n", path);
		ex = 71;
		goto out;
	}
	for (size_t i = 0; i < pr->n_series; i++) {
		rc = check_series(pr->series[i], t, &lines[i], why, sizeof(why));
		if (rc == -ENOMEM) {
			fprintf(stderr, "pushdump: %s: out of memory\n", path);
			ex = 71;
			goto out;
		}
		if (rc < 0) {
			fprintf(stderr, "pushdump: %s: series %zu: %s\n", path, i, why);
			goto out;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(lines[j].vname, lines[i].vname) == 0) {
				fprintf(stderr, "pushdump: %s: series %zu and %zu are both %s\n", path, j, i,
					lines[i].vname);
				goto out;
			}
		}
	}
	for (size_t i = 0; i < pr->n_series; i++) {
		if (extract) {
			rc = write_profile(extract, &lines[i]);
			if (rc < 0) {
				fprintf(stderr, "pushdump: cannot write %s/%s: %s\n", extract, lines[i].vname,
					strerror(-rc));
				ex = EX_CANTCREAT;
				goto out;
			}
		}
		printf("%s\t%s\t%zu\t%s\n", lines[i].vname, lines[i].id, lines[i].samples, lines[i].labels);
	}
	ex = EX_OK;
out:
	if (lines)
		for (size_t i = 0; pr && i < pr->n_series; i++)
			free(lines[i].labels);
	free(lines);
	if (pr)
		push__v1__push_request__free_unpacked(pr, NULL);
	free(data);
	return ex;
}

int main(int argc, char **argv)
{
	const char *extract = NULL;
	int i = 1, ex = EX_OK;

	if (i < argc && strcmp(argv[i], "--extract") == 0) {
		if (i + 1 >= argc) {
			fprintf(stderr, "pushdump: --extract needs a directory\n");
			return EX_USAGE;
		}
		extract = argv[i + 1];
		i += 2;
	}
	if (i < argc && strcmp(argv[i], "--") == 0)
		i++;
	else if (i < argc && argv[i][0] == '-')
		i = argc; /* an unknown option */
	if (i >= argc) {
		fprintf(stderr, "usage: pushdump [--extract DIR] FILE...\n");
		return EX_USAGE;
	}
	for (; i < argc; i++) {
		int rc = dump(argv[i], extract);

		/* the worst wins: cannot read or write over bad data over good */
		if (rc != EX_OK && (ex == EX_OK || (ex == EX_DATAERR && rc != EX_DATAERR)))
			ex = rc;
		fflush(stdout);
	}
	return ex;
}
