/*
 * test_exportside.c - the collector's side of export over a real
 * socketpair and a real spool directory: an interval's series become one
 * spool file "cpu-<stamp>_0_<n>.push" holding their PushRequest (labels
 * from the setup's host and --label's, the IDs of their virtual names), or
 * a few parts past the 1 MiB rule; one file in flight, the oldest, as a
 * sealed memfd of its exact bytes with its series and samples; an ack for
 * anything but the file in flight changes nothing; the right one unlinks
 * the file and sends the next; a refusal counts the file's series; a
 * setup whose labels Pyroscope would refuse is fatal.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "exportside.h"
#include "gzip.h"
#include "memblob.h"
#include "privsep.h"
#include "push.pb-c.h"
#include "pyropush.h"
#include "snapshot.h"
#include "spool.h"
#include "spoolq.h"

static char dir[64];
static int dfd = -1, sv[2] = { -1, -1 };

static int setup(void **state)
{
	strcpy(dir, "/tmp/vigil-exportside-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return -1;
	return dfd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[128];

	close(dfd);
	if (sv[1] >= 0)
		close(sv[1]);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

#define T0 1763717520123000000ll

/* The monitor's setup: host h1, --label env=prod --label dc=fra1. */
static struct msg_collector_setup cfg(void)
{
	struct msg_collector_setup c = { .version = PRIVSEP_VERSION, .flags = SETUP_F_EXPORT,
					 .nlabels = 2 };

	snprintf(c.hostname, sizeof(c.hostname), "h1");
	memcpy(c.labels, "env=prod\0dc=fra1", 17);
	return c;
}

static void init(struct exportside *es, int *chan)
{
	struct msg_collector_setup c = cfg();

	exportside_init(es, dfd, 0, chan, &c);
}

/* A spool file of n bytes of c for nseries series at t, written as the collector does, and queued. */
static void written(struct exportside *es, int64_t t, uint32_t nseries, size_t n, char c,
		    char *ret_name)
{
	char *buf = malloc(n);
	int fd;

	memset(buf, c, n);
	assert_int_equal(spoolq_file_name(ret_name, 256, t, 0, nseries), 0);
	fd = openat(dfd, ret_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	close(fd);
	free(buf);
	exportside_written(es, ret_name, t, nseries, 10 * nseries, n);
}

/* The uplink's side: the next EXPORT_PROFILE and its bytes (*ret_buf, may be NULL); -1 if none waits. */
static int64_t take_bytes(struct msg_export_profile *ret, void **ret_buf, size_t *ret_len)
{
	union {
		struct msg_export_profile p;
		uint8_t raw[PRIVSEP_MAX_MSG];
	} u;
	bool seen[MSG_TYPE_MAX] = { 0 };
	int fds[PRIVSEP_MAX_FDS];
	size_t len, blen;
	void *buf;
	int type = privsep_recv(sv[1], PEER_COLLECTOR, seen, &u, &len, fds);

	if (type == -EAGAIN)
		return -1;
	assert_int_equal(type, MSG_EXPORT_PROFILE);
	/* sealed, exactly its bytes */
	assert_int_equal(memblob_read(fds[0], EXPORT_PROFILE_MAX, &buf, &blen), 0);
	close(fds[0]);
	assert_int_equal(u.p.len, blen);
	assert_int_equal(u.p.version, PRIVSEP_VERSION);
	if (ret_buf) {
		*ret_buf = buf;
		*ret_len = blen;
	} else {
		free(buf);
	}
	*ret = u.p;
	return (int64_t)u.p.seq;
}

/* ... whose bytes are n of c. */
static int64_t take(struct msg_export_profile *ret, char c, size_t n)
{
	void *buf;
	size_t len;
	int64_t seq = take_bytes(ret, &buf, &len);

	if (seq < 0)
		return seq;
	assert_int_equal(len, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(((char *)buf)[i], c);
	free(buf);
	return seq;
}

static struct msg_export_ack ack(uint64_t seq, uint32_t result)
{
	struct msg_export_ack a = { .hdr = { MSG_EXPORT_ACK, sizeof(a) }, .version = PRIVSEP_VERSION,
				    .result = result, .seq = seq, .http_status = 200 };

	return a;
}

static bool exists(const char *name)
{
	struct stat st;

	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static void test_one_in_flight(void **state)
{
	struct exportside es;
	struct msg_export_profile p;
	struct msg_export_ack a;
	char n1[256], n2[256], n3[256];
	int chan = sv[0];

	init(&es, &chan);
	written(&es, T0, 3, 100, 'a', n1);
	written(&es, T0 + 1000000000ll, 2, 200, 'b', n2);
	written(&es, T0 + 2000000000ll, 1, 300, 'c', n3);
	assert_int_equal(exportside_stats(&es)->written_total, 6); /* profiles */

	/* the oldest, alone, with its series and samples */
	assert_true(take(&p, 'a', 100) > 0);
	assert_true(p.time_ns == T0);
	assert_int_equal(p.nseries, 3);
	assert_int_equal(p.samples, 30);
	exportside_pump(&es); /* still one in flight */
	{
		struct msg_export_profile q;

		assert_true(take(&q, 'x', 0) == -1);
	}

	/* an ack for another seq, or malformed: a protocol break, nothing unlinked */
	a = ack(p.seq + 1, EXPORT_PUSHED);
	assert_int_equal(exportside_on_ack(&es, &a), -EPROTO);
	a = ack(p.seq, 7);
	assert_int_equal(exportside_on_ack(&es, &a), -EPROTO);
	a = ack(p.seq, EXPORT_PUSHED);
	memset(a.why, 'x', sizeof(a.why)); /* not terminated */
	assert_int_equal(exportside_on_ack(&es, &a), -EPROTO);
	assert_true(exists(n1));
	assert_int_equal(exportside_stats(&es)->files, 3);

	/* the right one: unlinked, the next goes */
	a = ack(p.seq, EXPORT_PUSHED);
	assert_int_equal(exportside_on_ack(&es, &a), 0);
	assert_false(exists(n1));
	assert_true(take(&p, 'b', 200) > 0);
	assert_int_equal(p.nseries, 2);
	/* an ack is good once */
	a = ack(p.seq - 1, EXPORT_PUSHED);
	assert_int_equal(exportside_on_ack(&es, &a), -EPROTO);
	/* refused for good: dropped all the same, and its series counted */
	a = ack(p.seq, EXPORT_REJECTED);
	snprintf(a.why, sizeof(a.why), "invalid_argument: \x1b[31mred\n");
	assert_int_equal(exportside_on_ack(&es, &a), 0);
	assert_false(exists(n2));
	assert_int_equal(es.rejected, 2);
	assert_true(take(&p, 'c', 300) > 0);
	assert_int_equal(p.nseries, 1);
	assert_int_equal(exportside_stats(&es)->files, 1);
	exportside_release(&es);
}

/* A file that can never be pushed is dropped, its series counted; the next goes. */
static void test_unsendable(void **state)
{
	struct exportside es;
	struct msg_export_profile p;
	struct msg_export_ack a;
	char big[256], ok[256];
	int chan = sv[0], fd;

	init(&es, &chan);
	/* a file over 16 MiB never goes: dropped, and the next is sent */
	assert_int_equal(spoolq_file_name(big, sizeof(big), T0, 0, 4), 0);
	fd = openat(dfd, big, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_int_equal(ftruncate(fd, EXPORT_PROFILE_MAX + 1), 0);
	close(fd);
	exportside_written(&es, big, T0, 4, 1, EXPORT_PROFILE_MAX + 1);
	assert_false(exists(big));
	assert_int_equal(es.unreadable, 4);
	written(&es, T0 + 1000000, 1, 10, 'o', ok);
	assert_true(take(&p, 'o', 10) > 0);
	a = ack(p.seq, EXPORT_PUSHED);
	assert_int_equal(exportside_on_ack(&es, &a), 0);
	exportside_release(&es);
}

/* The policy's bound, applied at once: never the file in flight, never the newest. */
static void test_set_bound(void **state)
{
	struct exportside es;
	struct msg_export_profile p;
	char a[256], b[256], c[256], comment[200];
	int chan = sv[0];

	init(&es, &chan);
	written(&es, T0, 2, 500, 'a', a);
	written(&es, T0 + 1000000, 5, 500, 'b', b);
	written(&es, T0 + 2000000, 2, 500, 'c', c);
	assert_true(take(&p, 'a', 500) > 0);
	exportside_set_bound(&es, 600);
	assert_true(exists(a));
	assert_false(exists(b));
	assert_true(exists(c));
	/* in profiles: the dropped file's series */
	assert_int_equal(exportside_stats(&es)->dropped_total, 5);
	assert_true(exportside_drop_comment(&es, comment, sizeof(comment)));
	assert_string_equal(comment, "vigil: spool full: dropped 5 profiles (500 bytes) not reported by an earlier profile");
	exportside_drop_reported(&es, T0 + 3000000);
	assert_false(exportside_drop_comment(&es, comment, sizeof(comment)));
	exportside_release(&es);
}

/* A pprof of n samples (field 2), gzip'ed: *ret_raw_len its size uncompressed. */
static uint8_t *profile(unsigned n, size_t pad, size_t *ret_len, size_t *ret_raw_len)
{
	size_t raw_len = 2 * n + pad + 3;
	uint8_t *raw = calloc(1, raw_len + 8), *gz;
	size_t k = 0;

	for (unsigned i = 0; i < n; i++) {
		raw[k++] = 0x12;
		raw[k++] = 0;
	}
	/* field 6 (string_table), padded: bytes only, incompressible enough not to matter */
	raw[k++] = 0x32;
	raw[k++] = (uint8_t)(0x80 | (pad & 0x7f));
	raw[k++] = (uint8_t)(pad >> 7);
	for (size_t i = 0; i < pad; i++)
		raw[k++] = (uint8_t)(i * 7);
	assert_true(pad < (1u << 14));
	assert_int_equal(gzip_compress(raw, k, &gz, ret_len), 0);
	*ret_raw_len = k;
	free(raw);
	return gz;
}

static struct snapshot_set *series_set(size_t n, const char *const *svc, const char *const *ten,
				       const unsigned *samples, size_t pad)
{
	struct snapshot_set *set = calloc(1, sizeof(*set));

	set->v = calloc(n, sizeof(*set->v));
	set->n = n;
	for (size_t i = 0; i < n; i++) {
		set->v[i].service = strdup(svc[i]);
		snprintf(set->v[i].tenant, sizeof(set->v[i].tenant), "%s", ten[i]);
		set->v[i].buf = profile(samples[i], pad, &set->v[i].len, &set->v[i].raw_len);
		set->v[i].samples = samples[i];
		set->v[i].records = samples[i];
	}
	return set;
}

/*
 * An interval's series: one file, its PushRequest decoded back to the
 * series in order, each with the setup's labels and the ID of its virtual
 * name; and sent as it is.
 */
static void test_build(void **state)
{
	static const char *const svc[3] = { "nginx.service", "cron.service", "other" };
	static const char *const ten[3] = { "web", "web", "batch" };
	static const unsigned samples[3] = { 3, 1, 2 };
	struct snapshot_set *set = series_set(3, svc, ten, samples, 0);
	struct exportside_part *parts;
	struct exportside es;
	struct msg_export_profile p;
	Push__V1__PushRequest *req;
	char stamp[64], want[256];
	void *sent;
	size_t n, sent_len;
	int chan = sv[0];

	init(&es, &chan);
	assert_int_equal(exportside_build(&es, set, T0, &parts, &n), 0);
	assert_int_equal(n, 1);
	/* cpu-<stamp>_0_3.push, the stamp of the export-off name */
	assert_int_equal(spool_name(stamp, sizeof(stamp), T0), 0);
	stamp[strlen(stamp) - strlen(".pb.gz")] = '\0';
	snprintf(want, sizeof(want), "%s_0_3.push", stamp);
	assert_string_equal(parts[0].name, want);
	assert_int_equal(parts[0].nseries, 3);
	assert_int_equal(parts[0].samples, 6);
	req = push__v1__push_request__unpack(NULL, parts[0].len, parts[0].buf);
	assert_non_null(req);
	assert_int_equal(req->n_series, 3);
	for (size_t i = 0; i < 3; i++) {
		Push__V1__RawProfileSeries *rs = req->series[i];
		char vname[256], id[40], seen[6] = { 0 };

		assert_int_equal(spoolq_name(vname, sizeof(vname), T0, svc[i], ten[i]), 0);
		spoolq_uuid("h1", vname, id, sizeof(id));
		assert_int_equal(rs->n_samples, 1);
		assert_string_equal(rs->samples[0]->id, id);
		assert_int_equal(rs->samples[0]->raw_profile.len, set->v[i].len);
		assert_memory_equal(rs->samples[0]->raw_profile.data, set->v[i].buf, set->v[i].len);
		assert_int_equal(rs->n_labels, 6);
		for (size_t j = 0; j < rs->n_labels; j++) {
			const char *k = rs->labels[j]->name, *v = rs->labels[j]->value;

			if (j)
				assert_true(strcmp(rs->labels[j - 1]->name, k) < 0); /* sorted */
			if (!strcmp(k, "service_name") && !strcmp(v, svc[i]))
				seen[0] = 1;
			if (!strcmp(k, "tenant") && !strcmp(v, ten[i]))
				seen[1] = 1;
			if (!strcmp(k, "host") && !strcmp(v, "h1"))
				seen[2] = 1;
			if (!strcmp(k, "env") && !strcmp(v, "prod"))
				seen[3] = 1;
			if (!strcmp(k, "dc") && !strcmp(v, "fra1"))
				seen[4] = 1;
			if (!strcmp(k, "__name__") && !strcmp(v, "process_cpu"))
				seen[5] = 1;
		}
		assert_memory_equal(seen, "\1\1\1\1\1\1", 6);
	}
	push__v1__push_request__free_unpacked(req, NULL);

	/* written and queued as the collector does: the uplink gets these very bytes */
	assert_int_equal(spool_write(dfd, parts[0].name, parts[0].buf, parts[0].len, NULL, 0), 0);
	exportside_written(&es, parts[0].name, T0, parts[0].nseries, parts[0].samples, parts[0].len);
	assert_true(take_bytes(&p, &sent, &sent_len) > 0);
	assert_int_equal(p.nseries, 3);
	assert_int_equal(p.samples, 6);
	assert_int_equal(sent_len, parts[0].len);
	assert_memory_equal(sent, parts[0].buf, sent_len);
	free(sent);
	exportside_parts_free(parts, n);
	snapshot_set_free(set);

	/* past 1 MiB uncompressed: parts, numbered, each naming its series */
	{
		static const char *const s5[5] = { "a", "b", "c", "d", "e" };
		static const char *const t5[5] = { "t", "t", "t", "t", "t" };
		static const unsigned c5[5] = { 1, 1, 1, 1, 1 };
		size_t total = 0;

		/* 5 series of ~400 KiB uncompressed: 2 + 2 + 1 */
		set = series_set(5, s5, t5, c5, 16000);
		for (size_t i = 0; i < 5; i++)
			set->v[i].raw_len = 400 << 10; /* what the packing rule reads */
		assert_int_equal(exportside_build(&es, set, T0, &parts, &n), 0);
		assert_int_equal(n, 3);
		for (size_t k = 0; k < n; k++) {
			uint64_t ns, smp;

			snprintf(want, sizeof(want), "%s_%zu_%u.push", stamp, k, k < 2 ? 2u : 1u);
			assert_string_equal(parts[k].name, want);
			assert_int_equal(pyropush_request_count(parts[k].buf, parts[k].len, 1 << 20, &ns,
								&smp), 0);
			assert_int_equal(ns, parts[k].nseries);
			assert_int_equal(smp, parts[k].samples);
			total += ns;
		}
		assert_int_equal(total, 5);
		exportside_parts_free(parts, n);
		snapshot_set_free(set);
	}
	/* no series: no file */
	set = calloc(1, sizeof(*set));
	assert_int_equal(exportside_build(&es, set, T0, &parts, &n), 0);
	assert_int_equal(n, 0);
	snapshot_set_free(set);
	exportside_release(&es);
}

/* A file a previous run left: queued by the scan, its samples counted from its bytes when sent. */
static void test_scanned(void **state)
{
	static const char *const svc[2] = { "a", "b" };
	static const char *const ten[2] = { "t", "t" };
	static const unsigned samples[2] = { 4, 5 };
	struct snapshot_set *set = series_set(2, svc, ten, samples, 0);
	struct exportside_part *parts;
	struct exportside es, es0;
	struct msg_export_profile p;
	size_t n;
	int chan = sv[0];

	init(&es0, &chan);
	assert_int_equal(exportside_build(&es0, set, T0, &parts, &n), 0);
	assert_int_equal(spool_write(dfd, parts[0].name, parts[0].buf, parts[0].len, NULL, 0), 0);
	exportside_release(&es0);
	/* and an older vigild's per-series file, which stays where it is */
	assert_int_equal(spool_write(dfd, "cpu-20251121T093200.123Z@a@t.pb.gz", "x", 1, NULL, 0), 0);
	init(&es, &chan);
	assert_int_equal(exportside_stats(&es)->files, 1);
	exportside_pump(&es);
	assert_true(take_bytes(&p, NULL, NULL) > 0);
	assert_int_equal(p.nseries, 2);
	assert_int_equal(p.samples, 9);
	assert_true(exists("cpu-20251121T093200.123Z@a@t.pb.gz"));
	exportside_release(&es);
	exportside_parts_free(parts, n);
	snapshot_set_free(set);
}

/* Labels Pyroscope would refuse, or strings that do not fit: the monitor broke the protocol. */
static void test_bad_setup(void **state)
{
	for (int k = 0; k < 3; k++) {
		pid_t pid = fork();
		int st;

		assert_true(pid >= 0);
		if (pid == 0) {
			struct msg_collector_setup c = cfg();
			struct exportside es;
			int chan = -1;

			if (k == 0)
				memcpy(c.labels, "host=x\0dc=fra1", 15); /* vigild's own label */
			else if (k == 1)
				memset(c.hostname, 'h', sizeof(c.hostname)); /* no NUL */
			else
				c.nlabels = 3; /* more strings than there are */
			exportside_init(&es, dfd, 0, &chan, &c);
			_exit(0);
		}
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 70);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsendable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_build, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scanned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_setup, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
