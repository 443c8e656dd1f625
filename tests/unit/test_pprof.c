/*
 * test_pprof.c - unit tests for daemon/pprof.c: a profile built with
 * mappings, symbolized and unsymbolized locations, string and numeric
 * labels, aggregated samples and comments survives encode -> decode intact;
 * interning holds up at scale; pprof_validate() rejects each kind of broken
 * profile; decoding truncated or garbage input (ending at an unmapped page)
 * fails cleanly; and `go tool pprof -raw`, the reference reader, accepts
 * what we write.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "guard.h"

#include "gzip.h"
#include "pprof.h"

#define PERIOD 10000000LL /* 10 ms: 100 Hz */
#define T0 1700000000123456789LL
#define DURATION 10000000000LL

typedef Perftools__Profiles__Profile Profile;

static const char *S(const Profile *p, int64_t idx)
{
	assert_true(idx >= 0 && (uint64_t)idx < p->n_string_table);
	return p->string_table[idx];
}

static const Perftools__Profiles__Location *find_loc(const Profile *p, uint64_t id)
{
	for (size_t i = 0; i < p->n_location; i++)
		if (p->location[i]->id == id)
			return p->location[i];
	fail_msg("no location %lu", (unsigned long)id);
	return NULL;
}

static const Perftools__Profiles__Mapping *find_map(const Profile *p, uint64_t id)
{
	for (size_t i = 0; i < p->n_mapping; i++)
		if (p->mapping[i]->id == id)
			return p->mapping[i];
	fail_msg("no mapping %lu", (unsigned long)id);
	return NULL;
}

/* Function name of a location, or NULL if it has no line. */
static const char *loc_func(const Profile *p, uint64_t loc_id)
{
	const Perftools__Profiles__Location *l = find_loc(p, loc_id);

	if (!l->n_line)
		return NULL;
	assert_int_equal(l->n_line, 1);
	for (size_t i = 0; i < p->n_function; i++)
		if (p->function[i]->id == l->line[0]->function_id)
			return S(p, p->function[i]->name);
	fail_msg("no function %lu", (unsigned long)l->line[0]->function_id);
	return NULL;
}

static const Perftools__Profiles__Label *find_label(const Profile *p,
						     const Perftools__Profiles__Sample *s,
						     const char *key)
{
	for (size_t i = 0; i < s->n_label; i++)
		if (!strcmp(S(p, s->label[i]->key), key))
			return s->label[i];
	return NULL;
}

static int64_t num_label(const Profile *p, const Perftools__Profiles__Sample *s, const char *key)
{
	const Perftools__Profiles__Label *l = find_label(p, s, key);

	assert_non_null(l);
	assert_int_equal(l->str, 0);
	return l->num;
}

static const char *str_label(const Profile *p, const Perftools__Profiles__Sample *s,
			     const char *key)
{
	const Perftools__Profiles__Label *l = find_label(p, s, key);

	assert_non_null(l);
	assert_int_not_equal(l->str, 0);
	return S(p, l->str);
}

/* The sample whose tid label is tid and whose leaf is at address leaf_addr. */
static const Perftools__Profiles__Sample *find_sample(const Profile *p, int64_t tid,
						       uint64_t leaf_addr)
{
	const Perftools__Profiles__Sample *found = NULL;

	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];
		const Perftools__Profiles__Label *l = find_label(p, s, "tid");

		if (!l || l->num != tid || !s->n_location_id)
			continue;
		if (find_loc(p, s->location_id[0])->address != leaf_addr)
			continue;
		assert_null(found); /* aggregation: exactly one */
		found = s;
	}
	assert_non_null(found);
	return found;
}

static Profile *encode_decode(const struct pprof_builder *b)
{
	uint8_t *buf;
	size_t len;
	Profile *p = NULL;

	assert_int_equal(pprof_encode(b, DURATION, &buf, &len), 0);
	assert_true(gzip_is_gzip(buf, len));
	assert_int_equal(pprof_decode(buf, len, &p), 0);
	assert_non_null(p);
	assert_int_equal(pprof_validate(p), 0);
	free(buf);
	return p;
}

/* Labels as the collector sends them; strings are heap copies freed by the
 * caller right after pprof_sample(), so ASan catches a builder that keeps
 * pointers to them. */
struct test_labels {
	struct pprof_label l[6];
	char *comm, *thread, *cgroup;
};

static void make_labels(struct test_labels *t, int64_t pid, int64_t tid, const char *thread)
{
	t->comm = strdup("app");
	t->thread = strdup(thread);
	t->cgroup = strdup("/sys/fs/cgroup/unified/tenant-a");
	assert_true(t->comm && t->thread && t->cgroup);
	t->l[0] = (struct pprof_label){.key = "pid", .num = pid};
	t->l[1] = (struct pprof_label){.key = "tid", .num = tid};
	t->l[2] = (struct pprof_label){.key = "comm", .str = t->comm};
	t->l[3] = (struct pprof_label){.key = "thread_name", .str = t->thread};
	t->l[4] = (struct pprof_label){.key = "cgroup", .str = t->cgroup};
	t->l[5] = (struct pprof_label){.key = "rss", .num = 4096, .num_unit = "bytes"};
}

static void free_labels(struct test_labels *t)
{
	free(t->comm);
	free(t->thread);
	free(t->cgroup);
}

static void test_roundtrip(void **state)
{
	struct pprof_builder *b = pprof_new(PERIOD, T0);
	char *app = strdup("/usr/bin/app"), *libfoo = strdup("/usr/lib/libfoo.so");
	char *fn_main = strdup("main"), *fn_work = strdup("work");
	uint64_t m_app, m_lib, l_main, l_work, l_work2, l_unsym, l_kernel;
	const Perftools__Profiles__Sample *s;
	const Perftools__Profiles__Mapping *m;
	struct test_labels tl;
	Profile *p;

	assert_non_null(b);
	assert_true(app && libfoo && fn_main && fn_work);

	m_app = pprof_mapping(b, 0x400000, 0x500000, 0, app, "aabbccdd", true);
	m_lib = pprof_mapping(b, 0x7f0000000000, 0x7f0000100000, 0x1000, libfoo, "00112233", false);
	assert_true(m_app > 0 && m_lib > 0 && m_app != m_lib);
	/* Same mapping again: same id; has_functions stays true once set. */
	assert_int_equal(pprof_mapping(b, 0x400000, 0x500000, 0, app, "aabbccdd", false), m_app);
	assert_int_equal(pprof_mapping(b, 0x7f0000000000, 0x7f0000100000, 0x1000, libfoo, "00112233", false), m_lib);
	/* Any field different: a different mapping. */
	assert_int_not_equal(pprof_mapping(b, 0x400000, 0x500000, 0x1000, app, "aabbccdd", true), m_app);

	l_main = pprof_location(b, m_app, 0x401000, fn_main);
	l_work = pprof_location(b, m_app, 0x401100, fn_work);
	l_work2 = pprof_location(b, m_app, 0x401104, fn_work);
	l_unsym = pprof_location(b, m_lib, 0x7f0000001234, NULL);
	l_kernel = pprof_location(b, 0, 0xffffffff81000000ULL, "do_syscall_64");
	assert_true(l_main && l_work && l_work2 && l_unsym && l_kernel);
	assert_int_not_equal(l_work, l_work2);
	assert_int_equal(pprof_location(b, m_app, 0x401000, "main"), l_main);
	assert_int_equal(pprof_location(b, m_lib, 0x7f0000001234, NULL), l_unsym);
	assert_int_equal(pprof_location(b, m_lib, 0x7f0000001234, ""), l_unsym);
	/* Same address, now symbolized: another location. */
	assert_int_not_equal(pprof_location(b, m_lib, 0x7f0000001234, "foo_fn"), l_unsym);
	free(app);
	free(libfoo);
	free(fn_main);
	free(fn_work);

	/* Stack 1 twice with labels in a different order: one sample. */
	{
		uint64_t stack[] = {l_unsym, l_work, l_main};
		struct pprof_label rev[6];

		make_labels(&tl, 42, 43, "worker");
		assert_int_equal(pprof_sample(b, stack, 3, tl.l, 6, 1, PERIOD), 0);
		for (int i = 0; i < 6; i++)
			rev[i] = tl.l[5 - i];
		assert_int_equal(pprof_sample(b, stack, 3, rev, 6, 2, 2 * PERIOD), 0);
		free_labels(&tl);
		assert_int_equal(pprof_sample_count(b), 1);

		/* Same stack, other thread: another sample. */
		make_labels(&tl, 42, 44, "other");
		assert_int_equal(pprof_sample(b, stack, 3, tl.l, 6, 1, PERIOD), 0);
		free_labels(&tl);
		assert_int_equal(pprof_sample_count(b), 2);
	}
	/* Stack 2: kernel leaf over a symbolized user frame. */
	{
		uint64_t stack[] = {l_kernel, l_work2, l_main};

		make_labels(&tl, 42, 43, "worker");
		assert_int_equal(pprof_sample(b, stack, 3, tl.l, 6, 5, 5 * PERIOD), 0);
		/* A stack prefix is a different stack. */
		assert_int_equal(pprof_sample(b, stack, 2, tl.l, 6, 1, PERIOD), 0);
		/* Fewer labels is a different label set. */
		assert_int_equal(pprof_sample(b, stack, 2, tl.l, 5, 1, PERIOD), 0);
		free_labels(&tl);
		assert_int_equal(pprof_sample_count(b), 5);
	}
	assert_int_equal(pprof_comment(b, "vigil test"), 0);
	assert_int_equal(pprof_comment(b, "hz=100"), 0);

	p = encode_decode(b);

	assert_string_equal(p->string_table[0], "");
	assert_int_equal(p->time_nanos, T0);
	assert_int_equal(p->duration_nanos, DURATION);
	assert_int_equal(p->period, PERIOD);
	assert_non_null(p->period_type);
	assert_string_equal(S(p, p->period_type->type), "cpu");
	assert_string_equal(S(p, p->period_type->unit), "nanoseconds");
	assert_int_equal(p->n_sample_type, 2);
	assert_string_equal(S(p, p->sample_type[0]->type), "samples");
	assert_string_equal(S(p, p->sample_type[0]->unit), "count");
	assert_string_equal(S(p, p->sample_type[1]->type), "cpu");
	assert_string_equal(S(p, p->sample_type[1]->unit), "nanoseconds");
	assert_int_equal(p->n_comment, 2);
	assert_string_equal(S(p, p->comment[0]), "vigil test");
	assert_string_equal(S(p, p->comment[1]), "hz=100");

	/* Every string stored once. */
	for (size_t i = 0; i < p->n_string_table; i++)
		for (size_t j = i + 1; j < p->n_string_table; j++)
			assert_string_not_equal(p->string_table[i], p->string_table[j]);

	assert_int_equal(p->n_mapping, 3);
	m = find_map(p, m_app);
	assert_int_equal(m->memory_start, 0x400000);
	assert_int_equal(m->memory_limit, 0x500000);
	assert_int_equal(m->file_offset, 0);
	assert_string_equal(S(p, m->filename), "/usr/bin/app");
	assert_string_equal(S(p, m->build_id), "aabbccdd");
	assert_true(m->has_functions);
	m = find_map(p, m_lib);
	assert_int_equal(m->file_offset, 0x1000);
	assert_string_equal(S(p, m->filename), "/usr/lib/libfoo.so");
	assert_false(m->has_functions);

	/* main, work, do_syscall_64, foo_fn: functions are shared by name. */
	assert_int_equal(p->n_function, 4);
	assert_int_equal(p->n_location, 6);
	for (size_t i = 0; i < p->n_location; i++)
		assert_int_not_equal(p->location[i]->id, 0);
	assert_string_equal(loc_func(p, l_main), "main");
	assert_string_equal(loc_func(p, l_work), "work");
	assert_string_equal(loc_func(p, l_work2), "work");
	assert_null(loc_func(p, l_unsym));
	assert_int_equal(find_loc(p, l_unsym)->mapping_id, m_lib);
	assert_int_equal(find_loc(p, l_unsym)->address, 0x7f0000001234);
	assert_int_equal(find_loc(p, l_kernel)->mapping_id, 0);
	assert_string_equal(loc_func(p, l_kernel), "do_syscall_64");

	assert_int_equal(p->n_sample, 5);
	for (size_t i = 0; i < p->n_sample; i++) {
		assert_int_equal(p->sample[i]->n_value, 2);
		assert_int_equal(p->sample[i]->value[1], p->sample[i]->value[0] * PERIOD);
	}
	s = find_sample(p, 43, 0x7f0000001234);
	assert_int_equal(s->value[0], 3);
	assert_int_equal(s->value[1], 3 * PERIOD);
	assert_int_equal(s->n_location_id, 3);
	assert_int_equal(s->location_id[0], l_unsym);
	assert_int_equal(s->location_id[1], l_work);
	assert_int_equal(s->location_id[2], l_main);
	assert_int_equal(s->n_label, 6);
	assert_int_equal(num_label(p, s, "pid"), 42);
	assert_int_equal(num_label(p, s, "tid"), 43);
	assert_int_equal(num_label(p, s, "rss"), 4096);
	assert_string_equal(S(p, find_label(p, s, "rss")->num_unit), "bytes");
	assert_int_equal(find_label(p, s, "pid")->num_unit, 0);
	assert_string_equal(str_label(p, s, "comm"), "app");
	assert_string_equal(str_label(p, s, "thread_name"), "worker");
	assert_string_equal(str_label(p, s, "cgroup"), "/sys/fs/cgroup/unified/tenant-a");

	s = find_sample(p, 44, 0x7f0000001234);
	assert_int_equal(s->value[0], 1);
	assert_string_equal(str_label(p, s, "thread_name"), "other");

	s = NULL;
	for (size_t i = 0; i < p->n_sample; i++)
		if (p->sample[i]->n_location_id == 3 && p->sample[i]->location_id[0] == l_kernel)
			s = p->sample[i];
	assert_non_null(s);
	assert_int_equal(s->value[0], 5);

	perftools__profiles__profile__free_unpacked(p, NULL);

	/* The builder is still usable after encoding, and encodes the same. */
	{
		uint64_t stack[] = {l_main};
		uint8_t *b1, *b2;
		size_t n1, n2;

		assert_int_equal(pprof_encode(b, DURATION, &b1, &n1), 0);
		assert_int_equal(pprof_encode(b, DURATION, &b2, &n2), 0);
		assert_int_equal(n1, n2);
		assert_memory_equal(b1, b2, n1);
		free(b1);
		free(b2);
		assert_int_equal(pprof_sample(b, stack, 1, NULL, 0, 1, PERIOD), 0);
		p = encode_decode(b);
		assert_int_equal(p->n_sample, 6);
		perftools__profiles__profile__free_unpacked(p, NULL);
	}
	pprof_free(b);
}

static void test_empty_profile(void **state)
{
	struct pprof_builder *b = pprof_new(1000000, 0);
	Profile *p;

	assert_non_null(b);
	assert_int_equal(pprof_sample_count(b), 0);
	p = encode_decode(b);
	assert_int_equal(p->n_sample, 0);
	assert_int_equal(p->n_sample_type, 2);
	assert_string_equal(p->string_table[0], "");
	perftools__profiles__profile__free_unpacked(p, NULL);
	pprof_free(b);
	pprof_free(NULL);
}

/* Enough of everything that every hash table grows several times. */
static void test_many(void **state)
{
	enum { NLOC = 30000, NSTACK = 20000, REPEAT = 3, NTHREAD = 7 };
	struct pprof_builder *b = pprof_new(PERIOD, T0);
	uint64_t *locs = malloc(NLOC * sizeof(*locs)), m[16];
	int64_t total = 0;
	char name[64];
	Profile *p;

	assert_non_null(b);
	assert_non_null(locs);
	for (int i = 0; i < 16; i++) {
		snprintf(name, sizeof(name), "/usr/lib/lib%d.so", i);
		m[i] = pprof_mapping(b, 0x10000000ULL * (i + 1), 0x10000000ULL * (i + 1) + 0x100000, 0, name, NULL, true);
		assert_int_equal(m[i], i + 1);
	}
	for (int i = 0; i < NLOC; i++) {
		/* 3 locations per function on average; every 10th unsymbolized. */
		snprintf(name, sizeof(name), "func_%d", i / 3);
		locs[i] = pprof_location(b, m[i % 16], 0x10000000ULL * (i % 16 + 1) + (uint64_t)i * 16,
					 i % 10 ? name : NULL);
		assert_int_equal(locs[i], i + 1);
	}
	for (int r = 0; r < REPEAT; r++) {
		for (int s = 0; s < NSTACK; s++) {
			uint64_t stack[24];
			int depth = 1 + s % 24;
			char thread[32];
			struct pprof_label l[2] = {
				{.key = "tid", .num = 1000 + s % NTHREAD},
				{.key = "thread_name", .str = thread},
			};

			snprintf(thread, sizeof(thread), "thread-%d", s % NTHREAD);
			stack[0] = locs[s]; /* unique leaf: every stack distinct */
			for (int d = 1; d < depth; d++)
				stack[d] = locs[(s * 31 + d * 7919) % NLOC];
			assert_int_equal(pprof_sample(b, stack, (size_t)depth, l, 2, 1 + s % 3, (1 + s % 3) * PERIOD), 0);
			if (!r)
				total += 1 + s % 3;
		}
		assert_int_equal(pprof_sample_count(b), NSTACK);
	}
	/* Dedup still finds everything after all the growing. */
	for (int i = 0; i < NLOC; i += 97) {
		snprintf(name, sizeof(name), "func_%d", i / 3);
		assert_int_equal(pprof_location(b, m[i % 16], 0x10000000ULL * (i % 16 + 1) + (uint64_t)i * 16,
						i % 10 ? name : NULL),
				 locs[i]);
	}

	p = encode_decode(b);
	assert_int_equal(p->n_sample, NSTACK);
	assert_int_equal(p->n_location, NLOC);
	assert_int_equal(p->n_mapping, 16);
	assert_int_equal(p->n_function, NLOC / 3);
	{
		int64_t sum = 0;

		for (size_t i = 0; i < p->n_sample; i++) {
			const Perftools__Profiles__Sample *s = p->sample[i];
			uint64_t leaf = s->location_id[0];
			int idx = (int)leaf - 1;

			assert_int_equal(s->n_location_id, 1 + idx % 24);
			assert_int_equal(s->value[0], REPEAT * (1 + idx % 3));
			assert_int_equal(s->value[1], s->value[0] * PERIOD);
			assert_int_equal(num_label(p, s, "tid"), 1000 + idx % NTHREAD);
			sum += s->value[0];
		}
		assert_int_equal(sum, REPEAT * total);
	}
	perftools__profiles__profile__free_unpacked(p, NULL);
	free(locs);
	pprof_free(b);
}

/* The function of location loc_id. */
static const Perftools__Profiles__Function *loc_function(const Profile *p, uint64_t loc_id)
{
	const Perftools__Profiles__Location *l = find_loc(p, loc_id);

	assert_int_equal(l->n_line, 1);
	for (size_t i = 0; i < p->n_function; i++)
		if (p->function[i]->id == l->line[0]->function_id)
			return p->function[i];
	fail_msg("no function %lu", (unsigned long)l->line[0]->function_id);
	return NULL;
}

/* C++: name is the demangled name, system_name the symbol; C: both the symbol. */
static void test_cxx_names(void **state)
{
	struct pprof_builder *b = pprof_new(PERIOD, T0);
	uint64_t stack[3];
	const Perftools__Profiles__Function *f;
	Profile *p;

	assert_non_null(b);
	stack[0] = pprof_location(b, 0, 0x1000, "_ZN8vigil_wl7SpinnerImE4spinEm");
	stack[1] = pprof_location(b, 0, 0x2000, "main");
	stack[2] = pprof_location(b, 0, 0x3000, "_Znot_a_name");
	assert_int_equal(pprof_sample(b, stack, 3, NULL, 0, 1, PERIOD), 0);
	p = encode_decode(b);
	f = loc_function(p, stack[0]);
	assert_string_equal(S(p, f->name), "vigil_wl::Spinner<unsigned long>::spin(unsigned long)");
	assert_string_equal(S(p, f->system_name), "_ZN8vigil_wl7SpinnerImE4spinEm");
	f = loc_function(p, stack[1]);
	assert_string_equal(S(p, f->name), "main");
	assert_string_equal(S(p, f->system_name), "main");
	f = loc_function(p, stack[2]);
	assert_string_equal(S(p, f->name), "_Znot_a_name");
	assert_string_equal(S(p, f->system_name), "_Znot_a_name");
	perftools__profiles__profile__free_unpacked(p, NULL);
	pprof_free(b);
}

static void test_long_strings(void **state)
{
	struct pprof_builder *b = pprof_new(PERIOD, T0);
	size_t len = PPROF_MAX_STRING + 100;
	char *a = malloc(len + 1), *c = malloc(len + 1);
	uint64_t la, lc, stack[1];
	Profile *p;
	const char *name;

	assert_non_null(b);
	assert_true(a && c);
	memset(a, 'x', len);
	a[len] = '\0';
	/* A 2-byte UTF-8 character straddling the limit. */
	a[PPROF_MAX_STRING - 1] = (char)0xc3;
	a[PPROF_MAX_STRING] = (char)0xa9;
	memcpy(c, a, len + 1);
	c[len - 1] = 'y'; /* differs only past the limit */

	la = pprof_location(b, 0, 0x1000, a);
	lc = pprof_location(b, 0, 0x1000, c);
	assert_true(la > 0);
	assert_int_equal(la, lc);
	stack[0] = la;
	assert_int_equal(pprof_sample(b, stack, 1, NULL, 0, 1, PERIOD), 0);
	p = encode_decode(b);
	name = loc_func(p, la);
	assert_int_equal(strlen(name), PPROF_MAX_STRING - 1);
	assert_memory_equal(name, a, PPROF_MAX_STRING - 1);
	perftools__profiles__profile__free_unpacked(p, NULL);
	free(a);
	free(c);
	pprof_free(b);
}

static void test_bad_args(void **state)
{
	struct pprof_builder *b;
	struct pprof_label bad_key[1] = {{.key = NULL, .str = "x"}};
	struct pprof_label empty_key[1] = {{.key = "", .str = "x"}};
	struct pprof_label many[PPROF_MAX_LABELS + 1];
	uint64_t frames[PPROF_MAX_FRAMES + 1], loc;

	errno = 0;
	assert_null(pprof_new(0, T0));
	assert_int_equal(errno, EINVAL);
	b = pprof_new(PERIOD, T0);
	assert_non_null(b);

	errno = 0;
	assert_int_equal(pprof_mapping(b, 0x2000, 0x1000, 0, "x", NULL, false), 0);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(pprof_location(b, 1, 0x1000, "f"), 0); /* no mapping 1 yet */
	assert_int_equal(errno, EINVAL);
	loc = pprof_location(b, 0, 0x1000, "f");
	assert_int_equal(loc, 1);

	frames[0] = loc;
	frames[1] = loc + 1; /* does not exist */
	assert_int_equal(pprof_sample(b, frames, 2, NULL, 0, 1, PERIOD), -EINVAL);
	frames[1] = 0;
	assert_int_equal(pprof_sample(b, frames, 2, NULL, 0, 1, PERIOD), -EINVAL);
	assert_int_equal(pprof_sample(b, frames, 1, bad_key, 1, 1, PERIOD), -EINVAL);
	assert_int_equal(pprof_sample(b, frames, 1, empty_key, 1, 1, PERIOD), -EINVAL);
	assert_int_equal(pprof_sample(b, frames, 1, NULL, 0, -1, PERIOD), -EINVAL);
	for (size_t i = 0; i <= PPROF_MAX_FRAMES; i++)
		frames[i] = loc;
	assert_int_equal(pprof_sample(b, frames, PPROF_MAX_FRAMES + 1, NULL, 0, 1, PERIOD), -E2BIG);
	assert_int_equal(pprof_sample(b, frames, PPROF_MAX_FRAMES, NULL, 0, 1, PERIOD), 0);
	for (size_t i = 0; i <= PPROF_MAX_LABELS; i++)
		many[i] = (struct pprof_label){.key = "k", .num = (int64_t)i};
	assert_int_equal(pprof_sample(b, frames, 1, many, PPROF_MAX_LABELS + 1, 1, PERIOD), -E2BIG);
	assert_int_equal(pprof_sample(b, frames, 1, many, PPROF_MAX_LABELS, 1, PERIOD), 0);
	/* Overflow is refused and leaves the sample as it was. */
	assert_int_equal(pprof_sample(b, frames, 1, NULL, 0, INT64_MAX, 1), 0);
	assert_int_equal(pprof_sample(b, frames, 1, NULL, 0, 1, 1), -EOVERFLOW);
	assert_int_equal(pprof_sample_count(b), 3);
	assert_int_equal(pprof_comment(b, NULL), -EINVAL);
	pprof_free(b);
}

/* ------------------------------------------------------------------------ */
/* pprof_validate() on hand-made profiles. */

struct hand {
	Profile p;
	Perftools__Profiles__ValueType vt[2], *vt_ptrs[2];
	Perftools__Profiles__Mapping map, *map_ptrs[1];
	Perftools__Profiles__Function fn, *fn_ptrs[1];
	Perftools__Profiles__Line line, *line_ptrs[1];
	Perftools__Profiles__Location loc[2], *loc_ptrs[2];
	Perftools__Profiles__Label label, *label_ptrs[1];
	Perftools__Profiles__Sample sample, *sample_ptrs[1];
	uint64_t stack[2];
	int64_t values[2];
	int64_t comment[1];
	char *strings[8];
};

/* A small valid profile: 1 mapping, 1 function, 2 locations, 1 sample. */
static void hand_init(struct hand *h)
{
	static const char *const strings[] = {"", "samples", "count", "cpu", "nanoseconds", "main", "/bin/app", "tid"};

	memset(h, 0, sizeof(*h));
	perftools__profiles__profile__init(&h->p);
	for (int i = 0; i < 8; i++)
		h->strings[i] = (char *)(uintptr_t)strings[i];
	h->p.n_string_table = 8;
	h->p.string_table = h->strings;
	for (int i = 0; i < 2; i++) {
		perftools__profiles__value_type__init(&h->vt[i]);
		h->vt[i].type = 1 + 2 * i;
		h->vt[i].unit = 2 + 2 * i;
		h->vt_ptrs[i] = &h->vt[i];
	}
	h->p.n_sample_type = 2;
	h->p.sample_type = h->vt_ptrs;
	h->p.period_type = &h->vt[1];

	perftools__profiles__mapping__init(&h->map);
	h->map.id = 7;
	h->map.filename = 6;
	h->map_ptrs[0] = &h->map;
	h->p.n_mapping = 1;
	h->p.mapping = h->map_ptrs;

	perftools__profiles__function__init(&h->fn);
	h->fn.id = 3;
	h->fn.name = 5;
	h->fn_ptrs[0] = &h->fn;
	h->p.n_function = 1;
	h->p.function = h->fn_ptrs;

	perftools__profiles__line__init(&h->line);
	h->line.function_id = 3;
	h->line_ptrs[0] = &h->line;
	for (int i = 0; i < 2; i++) {
		perftools__profiles__location__init(&h->loc[i]);
		h->loc[i].id = 10 + i;
		h->loc[i].mapping_id = 7;
		h->loc_ptrs[i] = &h->loc[i];
	}
	h->loc[0].n_line = 1;
	h->loc[0].line = h->line_ptrs;
	h->p.n_location = 2;
	h->p.location = h->loc_ptrs;

	perftools__profiles__label__init(&h->label);
	h->label.key = 7;
	h->label.num = 99;
	h->label_ptrs[0] = &h->label;
	perftools__profiles__sample__init(&h->sample);
	h->stack[0] = 10;
	h->stack[1] = 11;
	h->sample.n_location_id = 2;
	h->sample.location_id = h->stack;
	h->values[0] = 1;
	h->values[1] = 10;
	h->sample.n_value = 2;
	h->sample.value = h->values;
	h->sample.n_label = 1;
	h->sample.label = h->label_ptrs;
	h->sample_ptrs[0] = &h->sample;
	h->p.n_sample = 1;
	h->p.sample = h->sample_ptrs;

	h->comment[0] = 5;
	h->p.n_comment = 1;
	h->p.comment = h->comment;
}

static void test_validate(void **state)
{
	struct hand h;

#define REJECT(mutation)                                      \
	do {                                                  \
		hand_init(&h);                                \
		assert_int_equal(pprof_validate(&h.p), 0);    \
		mutation;                                     \
		assert_int_equal(pprof_validate(&h.p), -EINVAL); \
	} while (0)

	hand_init(&h);
	assert_int_equal(pprof_validate(&h.p), 0);
	assert_int_equal(pprof_validate(NULL), -EINVAL);

	REJECT(h.strings[0] = (char *)(uintptr_t)"x");          /* string_table[0] != "" */
	REJECT(h.p.n_string_table = 0);                          /* no string table */
	REJECT(h.strings[3] = NULL);                             /* NULL string */
	REJECT(h.stack[1] = 12);                                 /* dangling location id */
	REJECT(h.stack[0] = 0);                                  /* location id 0 */
	REJECT(h.sample.n_value = 1);                            /* missing value */
	REJECT(h.sample.n_value = 0);                            /* no values */
	REJECT((h.loc[1].id = 10, h.stack[1] = 10));             /* duplicate location id */
	REJECT(h.p.n_mapping = 0);                               /* locations' mapping gone */
	REJECT(h.p.n_function = 0);                              /* line's function gone */
	REJECT(h.loc[1].id = 0);                                 /* zero location id */
	REJECT(h.loc[1].mapping_id = 8);                         /* dangling mapping id */
	REJECT(h.map.id = 0);                                    /* zero mapping id */
	REJECT(h.line.function_id = 4);                          /* dangling function id */
	REJECT(h.line.function_id = 0);                          /* no function */
	REJECT(h.fn.id = 0);                                     /* zero function id */
	REJECT(h.fn.name = 8);                                   /* string index out of range */
	REJECT(h.fn.system_name = -1);                           /* negative string index */
	REJECT(h.map.filename = 100);
	REJECT(h.map.build_id = 8);
	REJECT(h.label.key = 8);
	REJECT((h.label.str = 9, h.label.num = 0));
	REJECT(h.label.num_unit = 8);
	REJECT(h.vt[0].unit = 8);
	REJECT(h.vt[1].type = -3);
	REJECT(h.comment[0] = 8);
	REJECT(h.p.drop_frames = 8);
	REJECT(h.p.default_sample_type = 8);
	REJECT(h.loc_ptrs[1] = NULL);
	REJECT(h.sample.location_id = NULL);
	/* Duplicate mapping and function ids, nothing dangling. */
	{
		Perftools__Profiles__Mapping *maps[2];
		Perftools__Profiles__Function *fns[2];

		REJECT((maps[0] = maps[1] = &h.map, h.p.mapping = maps, h.p.n_mapping = 2));
		REJECT((fns[0] = fns[1] = &h.fn, h.p.function = fns, h.p.n_function = 2));
	}
	/* A mapping with the id of a location is fine: separate id spaces. */
	hand_init(&h);
	h.map.id = 10;
	h.loc[0].mapping_id = h.loc[1].mapping_id = 10;
	assert_int_equal(pprof_validate(&h.p), 0);
#undef REJECT
}

/* ------------------------------------------------------------------------ */
/* Decoding hostile input. */

static void encode_small(uint8_t **ret, size_t *ret_len)
{
	struct pprof_builder *b = pprof_new(PERIOD, T0);
	uint64_t m, stack[3];
	struct test_labels tl;

	assert_non_null(b);
	m = pprof_mapping(b, 0x400000, 0x500000, 0, "/usr/bin/app", "aabbccdd", false);
	stack[0] = pprof_location(b, m, 0x401234, NULL);
	stack[1] = pprof_location(b, m, 0x401000, "work");
	stack[2] = pprof_location(b, m, 0x400800, "main");
	make_labels(&tl, 1, 2, "t");
	assert_int_equal(pprof_sample(b, stack, 3, tl.l, 6, 4, 4 * PERIOD), 0);
	assert_int_equal(pprof_sample(b, stack + 1, 2, tl.l, 6, 1, PERIOD), 0);
	free_labels(&tl);
	assert_int_equal(pprof_comment(b, "small"), 0);
	assert_int_equal(pprof_encode(b, DURATION, ret, ret_len), 0);
	pprof_free(b);
}

static void test_decode_truncated(void **state)
{
	uint8_t *gz, *raw;
	size_t gz_len, raw_len, cut, accepted = 0;
	Profile *p = NULL;
	struct guarded g;

	encode_small(&gz, &gz_len);

	/* The whole thing, gzip'ed and raw, from a guarded buffer. */
	guard_copy(&g, gz, gz_len);
	assert_int_equal(pprof_decode(g.data, gz_len, &p), 0);
	assert_int_equal(pprof_validate(p), 0);
	perftools__profiles__profile__free_unpacked(p, NULL);
	guard_free(&g);
	assert_int_equal(gzip_decompress(gz, gz_len, PPROF_MAX_DECODED, &raw, &raw_len), 0);
	guard_copy(&g, raw, raw_len);
	p = NULL;
	assert_int_equal(pprof_decode(g.data, raw_len, &p), 0);
	assert_int_equal(pprof_validate(p), 0);
	assert_int_equal(p->n_sample, 2);
	perftools__profiles__profile__free_unpacked(p, NULL);
	guard_free(&g);

	/* Every truncation of the gzip stream fails. */
	for (cut = 0; cut < gz_len; cut++) {
		guard_copy(&g, gz, cut);
		p = NULL;
		assert_int_equal(pprof_decode(g.data, cut, &p), -EINVAL);
		assert_null(p);
		guard_free(&g);
	}
	/* A truncated protobuf may still parse when the cut falls between
	 * fields; it must never crash, and what parses must still be freeable
	 * and either valid or rejected by pprof_validate().  Most cuts land
	 * inside a field and must fail to parse. */
	for (cut = 0; cut < raw_len; cut++) {
		int err;

		guard_copy(&g, raw, cut);
		p = NULL;
		err = pprof_decode(g.data, cut, &p);
		if (err == 0) {
			(void)pprof_validate(p);
			perftools__profiles__profile__free_unpacked(p, NULL);
			accepted++;
		} else {
			assert_int_equal(err, -EINVAL);
			assert_null(p);
		}
		guard_free(&g);
	}
	assert_true(accepted < raw_len / 4);
	free(raw);
	free(gz);
}

static void test_decode_garbage(void **state)
{
	static const uint8_t ff[64] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	};
	uint8_t junk[4096], *gz, *z;
	size_t gz_len, zlen;
	uint64_t x = 88172645463325252ULL;
	Profile *p = NULL;
	struct guarded g;

	/* Invalid wire type / overlong varint. */
	guard_copy(&g, ff, sizeof(ff));
	assert_int_equal(pprof_decode(g.data, sizeof(ff), &p), -EINVAL);
	guard_free(&g);
	/* Field 2 (sample), length-delimited, claiming 100 bytes of 3. */
	guard_copy(&g, "\x12\x64\x08\x01\x10", 5);
	assert_int_equal(pprof_decode(g.data, 5, &p), -EINVAL);
	guard_free(&g);
	/* gzip magic then random bytes. */
	for (size_t i = 0; i < sizeof(junk); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		junk[i] = (uint8_t)x;
	}
	junk[0] = 0x1f;
	junk[1] = 0x8b;
	guard_copy(&g, junk, sizeof(junk));
	assert_int_equal(pprof_decode(g.data, sizeof(junk), &p), -EINVAL);
	guard_free(&g);
	/* Valid gzip of text that is not a profile. */
	assert_int_equal(gzip_compress((const uint8_t *)"\xff\xffnot a profile at all", 23, &z, &zlen), 0);
	guard_copy(&g, z, zlen);
	assert_int_equal(pprof_decode(g.data, zlen, &p), -EINVAL);
	guard_free(&g);
	free(z);
	/* A valid profile with its gzip body's bytes flipped. */
	encode_small(&gz, &gz_len);
	for (size_t i = 10; i < gz_len; i++) {
		gz[i] ^= 0x55;
		guard_copy(&g, gz, gz_len);
		assert_int_equal(pprof_decode(g.data, gz_len, &p), -EINVAL);
		guard_free(&g);
		gz[i] ^= 0x55;
	}
	free(gz);
	assert_null(p);
	assert_int_equal(pprof_decode(NULL, 0, &p), -EINVAL);
}

/* Inflating past PPROF_MAX_DECODED stops with -E2BIG. */
static void test_decode_too_big(void **state)
{
	size_t len = PPROF_MAX_DECODED + 1, zlen;
	uint8_t *zeros = calloc(1, len), *z;
	Profile *p = NULL;

	assert_non_null(zeros);
	assert_int_equal(gzip_compress(zeros, len, &z, &zlen), 0);
	free(zeros);
	assert_int_equal(pprof_decode(z, zlen, &p), -E2BIG);
	assert_null(p);
	free(z);
}

/* ------------------------------------------------------------------------ */
/* The reference reader. */

static void test_go_pprof(void **state)
{
	struct pprof_builder *b = pprof_new(PERIOD, T0);
	char path[] = "/tmp/vigil-test-pprof-XXXXXX", cmd[512], out[65536];
	uint64_t m_app, m_lib, l[4];
	struct test_labels tl;
	uint8_t *buf;
	size_t len, n;
	FILE *f;
	int fd, status;

	assert_int_equal(system("command -v go >/dev/null 2>&1"), 0); /* go is required */

	assert_non_null(b);
	m_app = pprof_mapping(b, 0x555555554000, 0x555555556000, 0x1000, "/opt/vigil-test/app", "0123456789abcdef", true);
	m_lib = pprof_mapping(b, 0x7ffff7dd0000, 0x7ffff7df0000, 0, "/opt/vigil-test/libfoo.so", "", false);
	l[0] = pprof_location(b, 0, 0xffffffff81001234ULL, "native_safe_halt");
	l[1] = pprof_location(b, m_lib, 0x7ffff7dd1234, NULL);
	l[2] = pprof_location(b, m_app, 0x555555554100, "vigil_test_work");
	l[3] = pprof_location(b, m_app, 0x555555554200, "vigil_test_main");
	make_labels(&tl, 4242, 4243, "worker");
	assert_int_equal(pprof_sample(b, l, 4, tl.l, 6, 7, 7 * PERIOD), 0);
	assert_int_equal(pprof_sample(b, l + 2, 2, tl.l, 6, 3, 3 * PERIOD), 0);
	free_labels(&tl);
	assert_int_equal(pprof_comment(b, "vigil unit test"), 0);
	assert_int_equal(pprof_encode(b, DURATION, &buf, &len), 0);
	pprof_free(b);

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
	free(buf);

	snprintf(cmd, sizeof(cmd), "go tool pprof -raw %s >/dev/null 2>&1", path);
	status = system(cmd);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/* And it reads what we meant, not just something. */
	snprintf(cmd, sizeof(cmd), "go tool pprof -raw %s 2>/dev/null", path);
	f = popen(cmd, "r");
	assert_non_null(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	assert_int_equal(pclose(f), 0);
	assert_non_null(strstr(out, "PeriodType: cpu nanoseconds"));
	assert_non_null(strstr(out, "Period: 10000000"));
	assert_non_null(strstr(out, "samples/count cpu/nanoseconds"));
	assert_non_null(strstr(out, "7   70000000: 1 2 3 4"));
	assert_non_null(strstr(out, "3   30000000: 3 4"));
	assert_non_null(strstr(out, "vigil_test_work"));
	assert_non_null(strstr(out, "native_safe_halt"));
	assert_non_null(strstr(out, "pid:[4242]"));
	assert_non_null(strstr(out, "thread_name:[worker]"));
	assert_non_null(strstr(out, "rss:[4096 bytes]"));
	assert_non_null(strstr(out, "0x7ffff7dd1234 M=2"));
	assert_non_null(strstr(out, "/opt/vigil-test/app 0123456789abcdef [FN]"));
	assert_non_null(strstr(out, "Comment: vigil unit test"));
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_cxx_names),
		cmocka_unit_test(test_empty_profile),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_long_strings),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_decode_truncated),
		cmocka_unit_test(test_decode_garbage),
		cmocka_unit_test(test_decode_too_big),
		cmocka_unit_test(test_go_pprof),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
