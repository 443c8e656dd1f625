/*
 * test_snapshot.c - the export's series split (snapshot_build_series): one
 * profile per (service, tenant), every sample in exactly one, with the
 * usual labels and comments, and the series beyond SNAPSHOT_MAX_SERIES in
 * their tenant's "other".  The profiles are decoded back (gunzip, protobuf)
 * and read, not compared as bytes.  And the top table's leaf, when it is a
 * kernel function, and frames that stacks of one profile share (framememo):
 * one location each, named as each stack's own lookup would name it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "gzip.h"
#include "pprof.h"
#include "snapshot.h"
#include "stackagg.h"
#include "symbolizer.h"

typedef Perftools__Profiles__Profile Profile;

static int no_maps(void *ctx, uint32_t pid)
{
	return -ENOENT;
}

static int no_file(void *ctx, uint32_t pid, const struct procmap *mp, struct stat *ret_st)
{
	return -ENOENT;
}

static const char *tenant_name(const void *ctx, uint32_t t, uint32_t gen)
{
	return t == 0 ? "default" : t == 1 ? "batch" : NULL;
}

/*
 * n samples of one process (no stack: the walks failed), comm, tenant and
 * period as given.
 */
static void add_period(struct stackagg *a, uint32_t pid, const char *comm, uint32_t tenant, int n,
		       uint64_t period_ns)
{
	struct vigil_sample_hdr h = { .type = VIGIL_EV_SAMPLE, .pid = pid, .tid = pid, .tenant = tenant,
				      .user_fmt = VIGIL_USER_IPS, .period_ns = period_ns };

	strncpy(h.comm, comm, sizeof(h.comm));
	strncpy(h.thread_name, comm, sizeof(h.thread_name));
	for (int i = 0; i < n; i++)
		assert_int_equal(stackagg_add(a, &h, sizeof(h)), 0);
}

/* At the default events' period of test_split's 100 Hz. */
static void add(struct stackagg *a, uint32_t pid, const char *comm, uint32_t tenant, int n)
{
	add_period(a, pid, comm, tenant, n, 10000000);
}

static Profile *decode_bytes(const uint8_t *buf, size_t blen)
{
	uint8_t *raw;
	size_t len;
	Profile *p;

	assert_int_equal(gzip_decompress(buf, blen, 64u << 20, &raw, &len), 0);
	p = perftools__profiles__profile__unpack(NULL, len, raw);
	free(raw);
	assert_non_null(p);
	return p;
}

static Profile *decode(const struct snapshot_series *s)
{
	return decode_bytes(s->buf, s->len);
}

static const char *label(const Profile *p, const Perftools__Profiles__Sample *s, const char *key)
{
	for (size_t i = 0; i < s->n_label; i++)
		if (strcmp(p->string_table[s->label[i]->key], key) == 0)
			return p->string_table[s->label[i]->str];
	return NULL;
}

static bool has_comment(const Profile *p, const char *text)
{
	for (size_t i = 0; i < p->n_comment; i++)
		if (strcmp(p->string_table[p->comment[i]], text) == 0)
			return true;
	return false;
}

static const struct snapshot_series *find(const struct snapshot_set *set, const char *svc,
					  const char *tenant)
{
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->v[i].service, svc) == 0 && strcmp(set->v[i].tenant, tenant) == 0)
			return &set->v[i];
	return NULL;
}

static struct symbolizer *sym(void)
{
	static const struct symbolizer_ops ops = { .open_maps = no_maps, .open_file = no_file };
	struct symbolizer *s;

	assert_int_equal(symbolizer_new_ops(&ops, -1, &s), 0);
	return s;
}

static void test_split(void **state)
{
	struct stackagg *a = stackagg_new(0);
	struct symbolizer *s = sym();
	struct snapshot_meta m = { .time_ns = 1700000000000000000ll, .duration_ns = 2000000000ll,
				   .hz = 100, .ncpus = 2, .tenant_name = tenant_name,
				   .extra_comment = "vigil: spool full: dropped 3 profiles (99 bytes) since "
						    "the last profile" };
	struct snapshot_set *set = NULL;
	/*
	 * "batch" runs at 50 Hz, then at 200 Hz (its budget moved it): its
	 * samples are worth 20 and 5 ms, not the default events' 10.
	 */
	static const struct { const char *svc, *tenant; int64_t n, cpu_ns, period; } want[] = {
		{ "nginx", "default", 3, 30000000, 10000000 },
		{ "redis", "default", 2, 20000000, 10000000 },
		/* its period: the mean of its first stack's samples */
		{ "nginx", "batch", 5, 3 * 20000000 + 2 * 5000000, (3 * 20000000 + 2 * 5000000) / 5 },
		{ "cron", "tenant-7", 1, 10000000, 10000000 },
	};

	add(a, 10, "nginx", 0, 2);
	add(a, 11, "redis", 0, 2);
	add_period(a, 12, "nginx", 1, 3, 20000000);
	add_period(a, 12, "nginx", 1, 2, 5000000); /* the same stack: one entry, two periods */
	add(a, 13, "nginx", 0, 1); /* another nginx process: the same series */
	add(a, 14, "cron", 7, 1);  /* a tenant without a name */
	assert_int_equal(snapshot_build_series(a, s, NULL, &m, &set, NULL), 0);
	assert_int_equal(set->n, 4);
	for (size_t i = 0; i < 4; i++) {
		const struct snapshot_series *se = find(set, want[i].svc, want[i].tenant);
		Profile *p;
		int64_t total = 0, cpu_ns = 0;

		assert_non_null(se);
		assert_int_equal(se->samples, want[i].n);
		p = decode(se);
		assert_int_equal(p->time_nanos, m.time_ns);
		assert_int_equal(p->period, want[i].period);
		for (size_t k = 0; k < p->n_sample; k++) {
			assert_int_equal(p->sample[k]->n_value, 2);
			total += p->sample[k]->value[0];
			cpu_ns += p->sample[k]->value[1];
			/* only its series; no high-cardinality string labels (each
			 * distinct set is a series of its own in Pyroscope) */
			assert_string_equal(label(p, p->sample[k], "comm"), want[i].svc);
			assert_string_equal(label(p, p->sample[k], "tenant"), want[i].tenant);
			assert_null(label(p, p->sample[k], "thread_name"));
			assert_null(label(p, p->sample[k], "cgroup"));
		}
		assert_int_equal(total, want[i].n);
		assert_int_equal(cpu_ns, want[i].cpu_ns);
		assert_true(has_comment(p, m.extra_comment));
		perftools__profiles__profile__free_unpacked(p, NULL);
	}
	snapshot_set_free(set);

	/* nothing sampled: no series */
	stackagg_reset(a);
	assert_int_equal(snapshot_build_series(a, s, NULL, &m, &set, NULL), 0);
	assert_int_equal(set->n, 0);
	snapshot_set_free(set);
	stackagg_free(a);
	symbolizer_free(s);
}

static void test_other(void **state)
{
	struct stackagg *a = stackagg_new(0);
	struct symbolizer *s = sym();
	struct snapshot_meta m = { .time_ns = 1700000000000000000ll, .duration_ns = 1, .hz = 100,
				   .ncpus = 1, .tenant_name = tenant_name };
	struct snapshot_set *set = NULL;
	const struct snapshot_series *o;
	char comm[16];
	uint64_t sum = 0;

	/* 300 services in the default tenant, 1 in batch */
	for (int i = 0; i < 300; i++) {
		snprintf(comm, sizeof(comm), "svc%03d", i);
		add(a, 100 + i, comm, 0, 1);
	}
	add(a, 9999, "late", 1, 4);
	assert_int_equal(snapshot_build_series(a, s, NULL, &m, &set, NULL), 0);
	/*
	 * SNAPSHOT_MAX_SERIES named series (which ones depends on the
	 * aggregation's order), the rest of each tenant in its own "other"
	 */
	{
		size_t named_default = 0, others = 0;

		for (size_t i = 0; i < set->n; i++) {
			if (strcmp(set->v[i].service, SNAPSHOT_OTHER_SERVICE) == 0)
				others++;
			else if (strcmp(set->v[i].tenant, "default") == 0)
				named_default++;
		}
		assert_int_equal(set->n - others, SNAPSHOT_MAX_SERIES);
		o = find(set, SNAPSHOT_OTHER_SERVICE, "default");
		assert_non_null(o);
		assert_int_equal(o->samples, 300 - named_default);
		if (!find(set, "late", "batch")) {
			assert_non_null(find(set, SNAPSHOT_OTHER_SERVICE, "batch"));
			assert_int_equal(find(set, SNAPSHOT_OTHER_SERVICE, "batch")->samples, 4);
			assert_int_equal(others, 2);
		} else {
			assert_int_equal(others, 1);
		}
	}
	for (size_t i = 0; i < set->n; i++)
		sum += set->v[i].samples;
	assert_int_equal(sum, 304);
	snapshot_set_free(set);
	stackagg_free(a);
	symbolizer_free(s);
}

/*
 * A kernel stack of two frames: the top table's leaf is the first, though
 * the second's lookup came after it (kallsyms.h: a name lasts until the
 * next lookup), and the profile names both.
 */
/* A symbolizer whose kernel has three functions (and no process has maps). */
static struct symbolizer *ksym_symbolizer(void)
{
	static const char ksyms[] = "ffffffff81000000 T _text\n"
				    "ffffffff81000100 T leaf_function_here\n"
				    "ffffffff81000200 t the_caller_of_it\n";
	static const struct symbolizer_ops ops = { .open_maps = no_maps, .open_file = no_file };
	char path[] = "/tmp/vigil-snapshot-ksyms-XXXXXX";
	struct symbolizer *s;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, ksyms, sizeof(ksyms) - 1), (ssize_t)(sizeof(ksyms) - 1));
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(symbolizer_new_ops(&ops, fd, &s), 0);
	close(fd);
	return s;
}

static void test_kernel_leaf(void **state)
{
	struct {
		struct vigil_sample_hdr h;
		uint64_t ips[2];
	} rec = { .h = { .type = VIGIL_EV_SAMPLE, .pid = 20, .tid = 20, .kernel_len = 16,
			 .user_fmt = VIGIL_USER_IPS, .comm = "kworker", .period_ns = 52631578 },
		  .ips = { 0xffffffff81000110, 0xffffffff81000210 } };
	struct snapshot_meta m = { .time_ns = 1700000000000000000ll, .duration_ns = 1000000000ll,
				   .hz = 19, .ncpus = 1, .tenant_name = tenant_name };
	struct stackagg *a = stackagg_new(0);
	struct snapshot_top *top = NULL;
	struct symbolizer *s = ksym_symbolizer();
	uint8_t *buf = NULL;
	size_t len;
	Profile *p;

	for (int i = 0; i < 3; i++)
		assert_int_equal(stackagg_add(a, &rec.h, sizeof(rec)), 0);
	assert_int_equal(snapshot_build(a, s, NULL, &m, &buf, &len, &top), 0);
	assert_int_equal(top->n, 1);
	assert_string_equal(top->v[0].function, "leaf_function_here");
	assert_int_equal(top->v[0].cpu_ns, 3 * 52631578); /* rec.h.period_ns */
	assert_int_equal(top->samples, 3);
	assert_int_equal(top->cpu_ns, 3 * 52631578);
	p = decode_bytes(buf, len);
	assert_int_equal(p->n_sample, 1);
	assert_int_equal(p->sample[0]->n_location_id, 2);
	for (size_t i = 0; i < 2; i++) {
		const char *want = i == 0 ? "leaf_function_here" : "the_caller_of_it";
		const Perftools__Profiles__Location *loc = NULL;
		const Perftools__Profiles__Function *fn = NULL;

		for (size_t j = 0; j < p->n_location; j++)
			if (p->location[j]->id == p->sample[0]->location_id[i])
				loc = p->location[j];
		assert_non_null(loc);
		assert_int_equal(loc->n_line, 1);
		for (size_t j = 0; j < p->n_function; j++)
			if (p->function[j]->id == loc->line[0]->function_id)
				fn = p->function[j];
		assert_non_null(fn);
		assert_string_equal(p->string_table[fn->name], want);
	}
	perftools__profiles__profile__free_unpacked(p, NULL);
	free(buf);
	snapshot_top_free(top);
	stackagg_free(a);
	symbolizer_free(s);
}

/* The function name of sample smp's frame i, and its location id in *ret_loc. */
static const char *frame_fn(const Profile *p, const Perftools__Profiles__Sample *smp, size_t i,
			    uint64_t *ret_loc)
{
	const Perftools__Profiles__Location *loc = NULL;

	assert_true(i < smp->n_location_id);
	for (size_t j = 0; j < p->n_location; j++)
		if (p->location[j]->id == smp->location_id[i])
			loc = p->location[j];
	assert_non_null(loc);
	*ret_loc = loc->id;
	assert_int_equal(loc->n_line, 1);
	for (size_t j = 0; j < p->n_function; j++)
		if (p->function[j]->id == loc->line[0]->function_id)
			return p->string_table[p->function[j]->name];
	fail();
	return NULL;
}

/* The sample of process pid (its numeric label). */
static const Perftools__Profiles__Sample *sample_of(const Profile *p, int64_t pid)
{
	for (size_t i = 0; i < p->n_sample; i++)
		for (size_t j = 0; j < p->sample[i]->n_label; j++)
			if (!strcmp(p->string_table[p->sample[i]->label[j]->key], "pid") &&
			    p->sample[i]->label[j]->num == pid)
				return p->sample[i];
	return NULL;
}

static void test_shared_frames(void **state)
{
	/*
	 * A and C share their caller; B has A's leaf address as its caller,
	 * where it is a return address (looked up at address - 1: _text).
	 */
	static const uint64_t stacks[3][2] = {
		{ 0xffffffff81000100, 0xffffffff81000210 }, /* A */
		{ 0xffffffff81000150, 0xffffffff81000100 }, /* B */
		{ 0xffffffff81000110, 0xffffffff81000210 }, /* C */
	};
	struct snapshot_meta m = { .time_ns = 1700000000000000000ll, .duration_ns = 1000000000ll,
				   .hz = 19, .ncpus = 1, .tenant_name = tenant_name };
	struct stackagg *a = stackagg_new(0);
	struct snapshot_top *top = NULL;
	const Perftools__Profiles__Sample *sa, *sb, *sc;
	struct symbolizer *s = ksym_symbolizer();
	uint64_t la, lb, lc, ra, rc_;
	uint8_t *buf = NULL;
	size_t len;
	Profile *p;

	for (int i = 0; i < 3; i++) {
		struct {
			struct vigil_sample_hdr h;
			uint64_t ips[2];
		} rec = { .h = { .type = VIGIL_EV_SAMPLE, .pid = 20 + i, .tid = 20 + i, .kernel_len = 16,
				 .user_fmt = VIGIL_USER_IPS, .comm = "kworker", .period_ns = 52631578 },
			  .ips = { stacks[i][0], stacks[i][1] } };

		assert_int_equal(stackagg_add(a, &rec.h, sizeof(rec)), 0);
	}
	assert_int_equal(snapshot_build(a, s, NULL, &m, &buf, &len, &top), 0);
	p = decode_bytes(buf, len);
	assert_int_equal(p->n_sample, 3);
	sa = sample_of(p, 20);
	sb = sample_of(p, 21);
	sc = sample_of(p, 22);
	assert_non_null(sa);
	assert_non_null(sb);
	assert_non_null(sc);
	assert_string_equal(frame_fn(p, sa, 0, &la), "leaf_function_here");
	assert_string_equal(frame_fn(p, sb, 0, &lb), "leaf_function_here");
	/* one address, two frames: A's leaf, and B's caller (a return address) */
	assert_string_equal(frame_fn(p, sb, 1, &lb), "_text");
	assert_int_not_equal(la, lb);
	assert_string_equal(frame_fn(p, sc, 0, &lc), "leaf_function_here");
	assert_int_not_equal(lc, la);
	frame_fn(p, sa, 1, &ra);
	assert_string_equal(frame_fn(p, sc, 1, &rc_), "the_caller_of_it");
	assert_int_equal(ra, rc_); /* the shared caller: one location */
	assert_int_equal(p->n_location, 5);
	/* every leaf named in the top table, memo or not */
	assert_int_equal(top->n, 1);
	assert_string_equal(top->v[0].function, "leaf_function_here");
	assert_int_equal(top->samples, 3);
	perftools__profiles__profile__free_unpacked(p, NULL);
	free(buf);
	snapshot_top_free(top);
	stackagg_free(a);
	symbolizer_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_other),
		cmocka_unit_test(test_kernel_leaf),
		cmocka_unit_test(test_shared_frames),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
