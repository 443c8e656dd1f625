/*
 * test_spoolq.c - the export spool against a real directory: file names
 * "cpu-<stamp>_<k>_<n>.push" that say their interval, part and series and
 * nothing close to them taken for one; the series' virtual names (for
 * their IDs); a scan that finds exactly what a previous run left, oldest
 * first (and counts an older vigild's per-series files without taking
 * them); the bound that unlinks the oldest files and counts their series;
 * and the one-in-flight rule of the acks.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "spoolq.h"

static char dir[64];
static int dfd = -1;

static int setup(void **state)
{
	strcpy(dir, "/tmp/vigil-spoolq-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return dfd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[128];

	close(dfd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void put(const char *name, size_t size)
{
	char *buf = calloc(1, size + 1);
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, size), (ssize_t)size);
	close(fd);
	free(buf);
}

static bool exists(const char *name)
{
	struct stat st;

	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* 2025-11-21T09:32:00.123Z plus s seconds */
#define T0 1763717520123000000ll
#define SEC 1000000000ll

/* The name of part k of n series at t, written with size bytes and queued; *ret_d: dropped. */
static void add(struct spoolq *q, char *name, int64_t t, uint32_t k, uint32_t n, size_t size,
		uint64_t *ret_d)
{
	assert_int_equal(spoolq_file_name(name, 256, t, k, n), 0);
	put(name, size);
	assert_int_equal(spoolq_add(q, name, t, n, 7 * n, size, ret_d), 0);
}

static void test_file_name(void **state)
{
	char a[256];
	int64_t t;
	uint32_t k, n;

	(void)state;
	assert_int_equal(spoolq_file_name(a, sizeof(a), T0, 0, 21), 0);
	assert_string_equal(a, "cpu-20251121T093200.123Z_0_21.push");
	assert_int_equal(spoolq_parse_file_name(a, &t, &k, &n), 0);
	assert_true(t == T0);
	assert_int_equal(k, 0);
	assert_int_equal(n, 21);
	assert_int_equal(spoolq_file_name(a, sizeof(a), T0 + SEC, 12, SPOOLQ_SERIES_MAX), 0);
	assert_string_equal(a, "cpu-20251121T093201.123Z_12_4096.push");
	assert_int_equal(spoolq_parse_file_name(a, &t, &k, &n), 0);
	assert_int_equal(k, 12);
	assert_int_equal(n, SPOOLQ_SERIES_MAX);
	/* the stamp is spool_name()'s: the export-off name's */
	assert_int_equal(spoolq_file_name(a, sizeof(a), T0, 0, 0), -EINVAL);
	assert_int_equal(spoolq_file_name(a, sizeof(a), T0, 0, SPOOLQ_SERIES_MAX + 1), -EINVAL);
	assert_int_equal(spoolq_file_name(a, sizeof(a), T0, SPOOLQ_PART_MAX + 1, 1), -EINVAL);
	assert_int_equal(spoolq_file_name(a, 20, T0, 0, 1), -ENAMETOOLONG);
}

/* Names close to a spool file's that are not one: never queued, never unlinked. */
static const char *const near_misses[] = {
	"cpu-20251121T093200.123Z_0_0.push",        /* no series */
	"cpu-20251121T093200.123Z_0_4097.push",     /* more than a file may hold */
	"cpu-20251121T093200.123Z_00_3.push",       /* leading zero */
	"cpu-20251121T093200.123Z_0_03.push",
	"cpu-20251121T093200.123Z_-1_3.push",       /* sign */
	"cpu-20251121T093200.123Z_+1_3.push",
	"cpu-20251121T093200.123Z_0_3.push.tmp",    /* suffix */
	"cpu-20251121T093200.123Z_0_3.pushx",
	"cpu-20251121T093200.123Z_0_3.pb.gz",
	"cpu-20251121T093200.123Z_0_3",
	"cpu-20251121T093200.123Z_0.push",          /* one number */
	"cpu-20251121T093200.123Z_0_3_4.push",      /* three */
	"cpu-20251121T093200.123Z__3.push",
	"cpu-20251121T093200.123Z_0_.push",
	"cpu-20251121T093200.123Z_0_3 .push",
	"cpu-2025112xT093200.123Z_0_3.push",        /* stamp */
	"cpu-20251121T093200.123_0_3.push",
	"cpu-20251121T093200.123Z-1_0_3.push",
	"cpu-20251121T093200.123Z_100000_3.push",   /* part past SPOOLQ_PART_MAX */
	"cpu-20251121T093200.123Z_0_99999999999999999999.push", /* overflow */
	"CPU-20251121T093200.123Z_0_3.push",
	".cpu-20251121T093200.123Z_0_3.push.tmp-5", /* spool_write's temporary */
	"cpu-20251121T093200.123Z.pb.gz",           /* export off */
	"cpu-20251121T093200.123Z@a@t.pb.gz",       /* an older vigild's per-series file */
	"_0_3.push",
	"",
};

static void test_file_name_rejects(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(near_misses) / sizeof(near_misses[0]); i++)
		if (spoolq_parse_file_name(near_misses[i], NULL, NULL, NULL) != -EINVAL)
			fail_msg("taken for a spool file: \"%s\"", near_misses[i]);
}

static void test_name(void **state)
{
	char a[256], b[256], svc[1100], ten[64];
	int64_t t;

	assert_int_equal(spoolq_name(a, sizeof(a), T0, "nginx.service", "web"), 0);
	assert_string_equal(a, "cpu-20251121T093200.123Z@nginx.service@web.pb.gz");
	assert_int_equal(spoolq_parse_name(a, &t, svc, sizeof(svc), ten), 0);
	assert_true(t == T0);
	assert_string_equal(svc, "nginx.service");
	assert_string_equal(ten, "web");

	/* '@', '/', ' ' and non-ASCII are escaped and come back */
	assert_int_equal(spoolq_name(a, sizeof(a), T0, "kworker/0:1 @x\xc3\xa9", ""), 0);
	assert_string_equal(a, "cpu-20251121T093200.123Z@kworker%2F0:1%20%40x%C3%A9@.pb.gz");
	assert_int_equal(spoolq_parse_name(a, &t, svc, sizeof(svc), ten), 0);
	assert_string_equal(svc, "kworker/0:1 @x\xc3\xa9");
	assert_string_equal(ten, "");

	/* names sort by time */
	assert_int_equal(spoolq_name(b, sizeof(b), T0 + 10 * SEC, "a", "t"), 0);
	assert_int_equal(spoolq_name(a, sizeof(a), T0, "zzz", "t"), 0);
	assert_true(strcmp(a, b) < 0);

	assert_int_equal(spoolq_name(a, sizeof(a), T0, "", "t"), -EINVAL);
	assert_int_equal(spoolq_name(a, 20, T0, "x", "t"), -ENAMETOOLONG);
}

static void test_long_service(void **state)
{
	char s1[1025], s2[1025], a[256], b[256], svc[1100], ten[64];

	memset(s1, '/', 1024); /* every byte escapes to 3 */
	s1[1024] = '\0';
	memcpy(s2, s1, sizeof(s2));
	s2[1023] = 'x';
	assert_int_equal(spoolq_name(a, sizeof(a), T0, s1, "tenant-a"), 0);
	assert_int_equal(spoolq_name(b, sizeof(b), T0, s2, "tenant-a"), 0);
	assert_true(strlen(a) <= SPOOLQ_NAME_MAX);
	assert_true(strlen(b) <= SPOOLQ_NAME_MAX);
	assert_string_not_equal(a, b); /* same cut, different hash */
	assert_non_null(strchr(a, '~'));
	/* still a spool name, with its tenant whole */
	assert_int_equal(spoolq_parse_name(a, NULL, svc, sizeof(svc), ten), 0);
	assert_string_equal(ten, "tenant-a");
	assert_int_equal(strncmp(svc, "//////", 6), 0);
	/* a cut never leaves half a %XX */
	assert_null(strstr(a, "%2~"));
	assert_null(strstr(a, "%~"));
}

static void test_parse_rejects(void **state)
{
	static const char *const bad[] = {
		"cpu-20251121T093200.123Z.pb.gz",           /* export off: no series */
		"cpu-20251121T093200.123Z@a.pb.gz",         /* one part */
		"cpu-20251121T093200.123Z@@t.pb.gz",        /* empty service */
		"cpu-20251121T093200.123Z@a@b@c.pb.gz",     /* three parts */
		"cpu-2025112xT093200.123Z@a@t.pb.gz",       /* stamp */
		"cpu-20251121T093200.123Z@a b@t.pb.gz",     /* unescaped space */
		"cpu-20251121T093200.123Z@a%2@t.pb.gz",     /* cut escape */
		"cpu-20251121T093200.123Z@a%00@t.pb.gz",    /* NUL */
		"cpu-20251121T093200.123Z@a@t~.pb.gz",      /* '~' only marks services */
		".cpu-20251121T093200.123Z@a@t.pb.gz.tmp-5", /* a temporary */
		"cpu-20251121T093200.123Z@a@t.pb",
		"notes.txt",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(spoolq_parse_name(bad[i], NULL, NULL, 0, NULL), -EINVAL);
}

static void test_scan(void **state)
{
	struct spoolq *q;
	const struct spoolq_entry *e;
	char n[5][256];
	uint64_t legacy = 99;
	/* interval i, part k, series: part 10 sorts after part 9 of its interval */
	static const struct { int64_t t; uint32_t k, n; } f[5] = {
		{ T0, 0, 3 }, { T0 + SEC, 0, 1 }, { T0 + SEC, 9, 2 }, { T0 + SEC, 10, 4 }, { T0 + 2 * SEC, 0, 5 },
	};

	for (int i = 0; i < 5; i++)
		assert_int_equal(spoolq_file_name(n[i], sizeof(n[i]), f[i].t, f[i].k, f[i].n), 0);
	/* written out of order, among things that are not the spool's */
	put(n[3], 40);
	put(n[0], 10);
	put(n[4], 50);
	put(n[2], 30);
	put(n[1], 20);
	for (size_t i = 0; i < sizeof(near_misses) / sizeof(near_misses[0]); i++)
		if (near_misses[i][0])
			put(near_misses[i], 5);
	put("README", 5);
	put("cpu-20251121T093201.123Z@b@t.pb.gz", 5); /* a second per-series file */
	assert_int_equal(mkdirat(dfd, "cpu-20251121T093209.123Z_0_1.push", 0700), 0);
	assert_int_equal(symlinkat("/etc/passwd", dfd, "cpu-20251121T093208.123Z_0_1.push"), 0);

	assert_int_equal(spoolq_new(dfd, 0, &q), 0);
	assert_int_equal(spoolq_scan(q, &legacy), 5);
	assert_int_equal(legacy, 2);
	assert_int_equal(spoolq_stats(q)->files, 5);
	assert_int_equal(spoolq_stats(q)->bytes, 150);
	for (int i = 0; i < 5; i++) {
		e = spoolq_next(q);
		assert_non_null(e);
		assert_string_equal(e->name, n[i]);
		assert_true(e->time_ns == f[i].t);
		assert_int_equal(e->part, f[i].k);
		assert_int_equal(e->nseries, f[i].n);
		assert_true(e->samples == SPOOLQ_SAMPLES_UNKNOWN); /* only the file says */
		assert_int_equal(e->size, (i + 1) * 10);
		/* once counted, kept: a resend (the uplink went away) need not count again */
		spoolq_set_samples(q, e->seq + 1, 7); /* not in flight: nothing */
		assert_true(e->samples == SPOOLQ_SAMPLES_UNKNOWN);
		spoolq_set_samples(q, e->seq, 40 + (uint64_t)i);
		spoolq_reset_inflight(q);
		e = spoolq_next(q);
		assert_string_equal(e->name, n[i]);
		assert_int_equal(e->samples, 40 + i);
		assert_int_equal(spoolq_done(q, e->seq), 0);
		assert_false(exists(n[i]));
	}
	assert_null(spoolq_next(q));
	/* what is not the spool's is untouched */
	assert_true(exists("README"));
	for (size_t i = 0; i < sizeof(near_misses) / sizeof(near_misses[0]); i++)
		if (near_misses[i][0])
			assert_true(exists(near_misses[i]));
	assert_true(exists("cpu-20251121T093208.123Z_0_1.push"));
	spoolq_free(q);
}

static void test_inflight(void **state)
{
	struct spoolq *q;
	const struct spoolq_entry *e;
	char a[256], b[256];
	uint64_t seq;

	assert_int_equal(spoolq_new(dfd, 0, &q), 0);
	assert_null(spoolq_next(q));
	assert_null(spoolq_inflight(q));
	add(q, a, T0, 0, 3, 1, NULL);
	add(q, b, T0 + SEC, 0, 2, 1, NULL);
	/* a name that is not a spool file's, or that lies about its series: not queued */
	put("x.push", 1);
	assert_int_equal(spoolq_add(q, "x.push", T0, 1, 0, 1, NULL), -EINVAL);
	assert_int_equal(spoolq_add(q, a, T0, 4, 0, 1, NULL), -EINVAL);
	e = spoolq_next(q);
	assert_string_equal(e->name, a);
	assert_int_equal(e->nseries, 3);
	assert_int_equal(e->samples, 21);
	assert_ptr_equal(spoolq_inflight(q), e);
	seq = e->seq;
	/* one at a time */
	assert_null(spoolq_next(q));
	/* an ack for anything but the one in flight breaks the protocol and changes nothing */
	assert_int_equal(spoolq_done(q, seq + 1), -EPROTO);
	assert_int_equal(spoolq_done(q, 0), -EPROTO);
	assert_true(exists(a));
	assert_int_equal(spoolq_stats(q)->files, 2);
	/* the uplink went away: the same file goes again, under a new seq */
	spoolq_reset_inflight(q);
	assert_null(spoolq_inflight(q));
	e = spoolq_next(q);
	assert_string_equal(e->name, a);
	assert_true(e->seq != seq);
	assert_int_equal(spoolq_done(q, seq), -EPROTO);
	seq = e->seq;
	assert_int_equal(spoolq_done(q, seq), 0);
	/* an ack is good once */
	assert_int_equal(spoolq_done(q, seq), -EPROTO);
	e = spoolq_next(q);
	assert_string_equal(e->name, b);
	assert_int_equal(spoolq_done(q, e->seq), 0);
	assert_int_equal(spoolq_stats(q)->files, 0);
	assert_int_equal(spoolq_stats(q)->bytes, 0);
	assert_int_equal(spoolq_stats(q)->written_total, 5); /* profiles */
	spoolq_free(q);
}

/* Files of 2 series each, unless said: drops are counted in series. */
static void test_bound(void **state)
{
	struct spoolq *q;
	const struct spoolq_entry *e;
	char n[8][256];
	uint64_t d, p, bytes;

	assert_int_equal(spoolq_new(dfd, 1000, &q), 0);
	for (int i = 0; i < 3; i++) {
		add(q, n[i], T0 + i * SEC, 0, 2, 300, &d);
		assert_int_equal(d, 0);
	}
	assert_false(spoolq_episode_started(q));
	/* the oldest is in flight: it is not dropped, the next oldest is */
	e = spoolq_next(q);
	assert_string_equal(e->name, n[0]);
	add(q, n[3], T0 + 3 * SEC, 0, 2, 300, &d);
	assert_int_equal(d, 2);
	assert_true(exists(n[0]));
	assert_false(exists(n[1]));
	assert_true(spoolq_episode_started(q));
	assert_false(spoolq_episode_started(q)); /* once per episode */
	assert_int_equal(spoolq_stats(q)->dropped_total, 2);
	assert_int_equal(spoolq_stats(q)->dropped_bytes_total, 300);
	assert_int_equal(spoolq_stats(q)->bytes, 900);
	assert_int_equal(spoolq_stats(q)->files, 3);

	/* still dropping: the same episode */
	add(q, n[4], T0 + 4 * SEC, 0, 2, 300, &d);
	assert_int_equal(d, 2);
	assert_false(exists(n[2]));
	assert_false(spoolq_episode_started(q));
	spoolq_dropped(q, &p, &bytes);
	assert_int_equal(p, 4);
	assert_int_equal(bytes, 600);
	/* reported: what was reported is gone, what came after stays */
	spoolq_dropped_reported(q, 2, 300, 0);
	spoolq_dropped(q, &p, &bytes);
	assert_int_equal(p, 2);
	assert_int_equal(bytes, 300);
	spoolq_dropped_reported(q, 2, 300, 0);
	spoolq_dropped(q, &p, &bytes);
	assert_int_equal(p, 0);

	/* an add that drops nothing does not end the episode: only a push does */
	{
		char x[256];

		add(q, x, T0 + 4 * SEC + 1000000, 1, 5, 101, &d);
		assert_int_equal(d, 2); /* n[3] had to go for it */
		assert_false(spoolq_episode_started(q));
		spoolq_dropped(q, &p, &bytes);
		assert_int_equal(p, 2);
		spoolq_dropped_reported(q, p, bytes, 0);
	}
	/* the push of n[0] ends: room again, the episode is over */
	assert_int_equal(spoolq_done(q, e->seq), 0);
	add(q, n[5], T0 + 5 * SEC, 0, 2, 300, &d);
	assert_int_equal(d, 0);
	assert_false(spoolq_episode_started(q));
	/* one bigger than the bound: the older ones go (2 + 5 + 2 series), the newest stays */
	add(q, n[6], T0 + 6 * SEC, 0, 1, 2000, &d);
	assert_int_equal(d, 9);
	assert_true(spoolq_episode_started(q));
	assert_true(exists(n[6]));
	assert_int_equal(spoolq_stats(q)->files, 1);
	assert_int_equal(spoolq_stats(q)->dropped_total, 15);
	assert_int_equal(spoolq_stats(q)->dropped_bytes_total, 1601);
	spoolq_free(q);

	/* a new bound applies at once; a larger one drops nothing */
	{
		struct spoolq *q2;
		char a[256], b[256];

		assert_int_equal(spoolq_new(dfd, 0, &q2), 0);
		add(q2, a, T0 + 20 * SEC, 0, 3, 500, &d);
		add(q2, b, T0 + 21 * SEC, 0, 3, 500, &d);
		assert_int_equal(d, 0);
		assert_int_equal(spoolq_set_max_bytes(q2, 2000), 0);
		assert_int_equal(spoolq_set_max_bytes(q2, 600), 3);
		assert_false(exists(a));
		assert_true(exists(b));
		assert_true(spoolq_episode_started(q2));
		assert_int_equal(spoolq_stats(q2)->dropped_total, 3);
		/* 0: the default, which holds it */
		assert_int_equal(spoolq_set_max_bytes(q2, 0), 0);
		unlinkat(dfd, b, 0);
		spoolq_free(q2);
	}
	/* the bound applies to what a scan finds too, counted by the names' series */
	assert_int_equal(spoolq_new(dfd, 100, &q), 0);
	assert_int_equal(spoolq_file_name(n[7], sizeof(n[7]), T0 + 7 * SEC, 0, 4), 0);
	put(n[7], 50);
	assert_int_equal(spoolq_scan(q, NULL), 2);
	assert_false(exists(n[6]));
	e = spoolq_next(q);
	assert_string_equal(e->name, n[7]);
	assert_int_equal(spoolq_stats(q)->dropped_total, 1);
	spoolq_free(q);
}

/*
 * Room is made before a file is written (spoolq_make_room): the oldest go
 * until the coming file fits beside the rest, the one in flight never, and
 * the newest may (it is older than what comes).  So the directory never
 * holds more than the bound plus the file in flight, even for a moment.
 */
static void test_make_room(void **state)
{
	struct spoolq *q;
	const struct spoolq_entry *e;
	char n[5][256];
	uint64_t d;

	assert_int_equal(spoolq_new(dfd, 1000, &q), 0);
	for (int i = 0; i < 3; i++)
		add(q, n[i], T0 + i * SEC, 0, 2, 300, &d);
	e = spoolq_next(q); /* n[0] in flight */
	assert_string_equal(e->name, n[0]);
	/* 900 + 100 fits: nothing goes */
	assert_int_equal(spoolq_make_room(q, 100), 0);
	assert_false(spoolq_episode_started(q));
	/* 900 + 400 does not: n[1] goes (not n[0], in flight), 600 + 400 fits */
	assert_int_equal(spoolq_make_room(q, 400), 2);
	assert_true(exists(n[0]));
	assert_false(exists(n[1]));
	assert_true(exists(n[2]));
	assert_true(spoolq_episode_started(q));
	add(q, n[3], T0 + 3 * SEC, 0, 2, 400, &d);
	assert_int_equal(d, 0); /* room was made: nothing goes after the write */
	assert_int_equal(spoolq_stats(q)->bytes, 1000);
	/* a file larger than the bound: everything but the one in flight goes, newest included */
	assert_int_equal(spoolq_make_room(q, 5000), 4);
	assert_false(exists(n[2]));
	assert_false(exists(n[3]));
	assert_true(exists(n[0]));
	assert_int_equal(spoolq_stats(q)->files, 1);
	assert_int_equal(spoolq_stats(q)->dropped_total, 6);
	add(q, n[4], T0 + 4 * SEC, 0, 1, 5000, &d);
	assert_int_equal(d, 0); /* the one just written stays, over the bound */
	assert_true(exists(n[4]));
	spoolq_free(q);
}

/*
 * The count a comment reports is not lost with the file carrying it: when
 * the bound drops that file, another file of its interval takes the count,
 * else it is unreported again, beside the dropped file's own series.  So
 * the comments of the files that are sent add up to every drop.
 */
static void test_carried(void **state)
{
	struct spoolq *q;
	char n[7][256];
	uint64_t d, p, bytes;

	assert_int_equal(spoolq_new(dfd, 700, &q), 0);
	add(q, n[0], T0, 0, 2, 300, &d);
	add(q, n[1], T0 + SEC, 0, 3, 300, &d);
	add(q, n[2], T0 + 2 * SEC, 0, 1, 300, &d);
	assert_int_equal(d, 2); /* n[0] */
	/* n[2]'s comment would have said nothing; the next interval's says 2 */
	spoolq_dropped(q, &p, &bytes);
	assert_int_equal(p, 2);
	/* interval 3 in two parts; its comment (2, 300) is carried by them */
	add(q, n[3], T0 + 3 * SEC, 0, 1, 200, &d);
	assert_int_equal(d, 3); /* n[1] */
	spoolq_dropped_reported(q, 2, 300, T0 + 9 * SEC); /* no file of that interval: nothing carries it */
	spoolq_dropped(q, &p, &bytes);
	assert_int_equal(p, 3);
	assert_int_equal(bytes, 300);
	add(q, n[4], T0 + 3 * SEC, 1, 1, 100, &d);
	assert_int_equal(d, 0);
	spoolq_dropped_reported(q, 3, 300, T0 + 3 * SEC);
	spoolq_dropped(q, &p, &bytes);
	assert_int_equal(p, 0);
	assert_int_equal(bytes, 0);
	/* interval 3's parts go one by one: the count moves to the other, then back */
	add(q, n[5], T0 + 4 * SEC, 0, 4, 500, &d);
	assert_int_equal(d, 2);
	assert_false(exists(n[2]));
	assert_false(exists(n[3]));
	assert_true(exists(n[4]));
	spoolq_dropped(q, &p, &bytes);
	assert_int_equal(p, 2); /* n[2], n[3]; n[4] still says the 3 */
	assert_int_equal(bytes, 500);
	spoolq_dropped_reported(q, 0, 0, T0 + 4 * SEC);
	add(q, n[6], T0 + 5 * SEC, 0, 1, 300, &d);
	assert_int_equal(d, 1 + 4); /* n[4], n[5] */
	spoolq_dropped(q, &p, &bytes);
	/* and now the 3 profiles (300 bytes) n[4]'s comment said */
	assert_int_equal(p, 2 + 1 + 4 + 3);
	assert_int_equal(bytes, 500 + 100 + 500 + 300);
	assert_int_equal(spoolq_stats(q)->dropped_total, 2 + 3 + 2 + 1 + 4);
	spoolq_free(q);
}

static void test_uuid(void **state)
{
	char a[40], b[40], c[40];

	spoolq_uuid("host1", "cpu-20251121T093200.123Z@a@t.pb.gz", a, sizeof(a));
	spoolq_uuid("host1", "cpu-20251121T093200.123Z@a@t.pb.gz", b, sizeof(b));
	spoolq_uuid("host2", "cpu-20251121T093200.123Z@a@t.pb.gz", c, sizeof(c));
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_int_equal(strlen(a), 36);
	assert_int_equal(a[8], '-');
	assert_int_equal(a[14], '8'); /* version 8 */
	assert_non_null(strchr("89ab", a[19])); /* variant 10 */
	spoolq_uuid("ab", "c", a, sizeof(a));
	spoolq_uuid("a", "bc", b, sizeof(b));
	assert_string_not_equal(a, b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name),
		cmocka_unit_test(test_long_service),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_file_name),
		cmocka_unit_test(test_file_name_rejects),
		cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inflight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_make_room, setup, teardown),
		cmocka_unit_test_setup_teardown(test_carried, setup, teardown),
		cmocka_unit_test(test_uuid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
