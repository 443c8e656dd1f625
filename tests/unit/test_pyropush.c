/*
 * test_pyropush.c - the labels of a Pyroscope series and the PushRequest
 * body: what the distributor would refuse (ValidateLabels) is refused here
 * at start with a reason, the set is sorted by name, a long or broken
 * service name is cut on a character boundary and made UTF-8, and the
 * body decodes (with protobuf-c, from our .proto) into exactly the series
 * and sample given.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "gzip.h"
#include "push.pb-c.h"
#include "pyropush.h"

static char err[512];

static int check(const char **kv, size_t n)
{
	err[0] = '\0';
	return pyropush_check_agent_labels(kv, n, err, sizeof(err));
}

static void test_agent_labels_ok(void **state)
{
	const char *kv[] = { "env=prod", "region.zone=eu-1", "_x=", "team=é日本" };

	(void)state;
	assert_int_equal(check(kv, 4), 0);
	assert_int_equal(check(NULL, 0), 0);
}

static void test_agent_labels_refused(void **state)
{
	const char *digit[] = { "9lives=x" };
	const char *dash[] = { "my-key=x" };
	const char *slash[] = { "a/b=x" };
	const char *reserved[] = { "host=x" };
	const char *reserved2[] = { "service.name=x", "service_name=y" };
	const char *name[] = { "__name__=x" };
	const char *dup[] = { "a.b=1", "a_b=2" };
	const char *bad_utf8[] = { "k=\xff\xfe" };
	const char *noeq[] = { "novalue" };
	static char many_buf[27][16];
	const char *many[27];
	char big[2100];

	(void)state;
	assert_int_equal(check(digit, 1), -EINVAL);
	assert_non_null(strstr(err, "9lives"));
	assert_int_equal(check(dash, 1), -EINVAL);
	assert_int_equal(check(slash, 1), -EINVAL);
	assert_int_equal(check(reserved, 1), -EINVAL);
	assert_non_null(strstr(err, "set by vigild"));
	assert_int_equal(check(reserved2, 1), -EINVAL); /* service.name is service_name */
	assert_int_equal(check(name, 1), -EINVAL);
	assert_int_equal(check(dup, 2), -EINVAL);
	assert_non_null(strstr(err, "twice"));
	assert_int_equal(check(bad_utf8, 1), -EINVAL);
	assert_int_equal(check(noeq, 1), -EINVAL);
	for (size_t i = 0; i < 27; i++) {
		snprintf(many_buf[i], 16, "k%zu=v", i);
		many[i] = many_buf[i];
	}
	assert_int_equal(check(many, 26), 0);	/* 26 + 4 = 30 */
	assert_int_equal(check(many, 27), -EINVAL);
	assert_non_null(strstr(err, "at most 26"));
	/* a value of 2048 bytes passes, 2049 does not */
	memset(big, 'v', sizeof(big));
	memcpy(big, "k=", 2);
	big[2 + 2048] = '\0';
	{
		const char *one[] = { big };

		assert_int_equal(check(one, 1), 0);
		big[2 + 2048] = 'v';
		big[2 + 2049] = '\0';
		assert_int_equal(check(one, 1), -EINVAL);
	}
}

static void test_utf8_cut(void **state)
{
	const char *s = "ab\xc3\xa9\xe6\x97\xa5"; /* a b é 日 */

	(void)state;
	assert_int_equal(pyropush_utf8_cut(s, 7, 100), 7);
	assert_int_equal(pyropush_utf8_cut(s, 7, 6), 4);
	assert_int_equal(pyropush_utf8_cut(s, 7, 3), 2);
	assert_int_equal(pyropush_utf8_cut(s, 7, 4), 4);
	assert_int_equal(pyropush_utf8_cut(s, 7, 0), 0);
}

static void test_build_sorted(void **state)
{
	const char *kv[] = { "zone.a=z", "app=web" };
	struct pyropush_labels l;

	(void)state;
	assert_int_equal(pyropush_labels_build("nginx.service", "h1", "payments", kv, 2, &l, err,
					       sizeof(err)), 0);
	assert_int_equal(l.n, 6);
	/* byte order: '_' (0x5f) sorts before lower case letters */
	assert_string_equal(l.l[0].name, "__name__");
	assert_string_equal(l.l[0].value, "process_cpu");
	assert_string_equal(l.l[1].name, "app");
	assert_string_equal(l.l[2].name, "host");
	assert_string_equal(l.l[3].name, "service_name");
	assert_string_equal(l.l[3].value, "nginx.service");
	assert_string_equal(l.l[4].name, "tenant");
	assert_string_equal(l.l[5].name, "zone_a");
	assert_string_equal(l.l[5].value, "z");
	pyropush_labels_release(&l);
	pyropush_labels_release(NULL);

	/* no tenant: no tenant label */
	assert_int_equal(pyropush_labels_build("svc", "h1", "", NULL, 0, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 3);
	pyropush_labels_release(&l);
	assert_int_equal(pyropush_labels_build("", "h1", "t", NULL, 0, &l, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "service_name"));
}

static void test_build_service_made_valid(void **state)
{
	char svc[3000];
	struct pyropush_labels l;
	size_t len;

	(void)state;
	/* 'a' then 日 (3 bytes) repeated: 2048 falls inside a character */
	svc[0] = 'a';
	for (size_t i = 1; i + 3 < sizeof(svc); i += 3)
		memcpy(svc + i, "\xe6\x97\xa5", 3);
	svc[2998] = '\0';
	assert_int_equal(pyropush_labels_build(svc, "h", "t", NULL, 0, &l, err, sizeof(err)), 0);
	for (size_t i = 0; i < l.n; i++) {
		if (strcmp(l.l[i].name, "service_name"))
			continue;
		len = strlen(l.l[i].value);
		assert_true(len <= PYROPUSH_VALUE_MAX);
		assert_int_equal(len, 1 + 682 * 3); /* 2047: the next character would pass 2048 */
	}
	pyropush_labels_release(&l);

	/* a comm with a stray byte: '?' in its place */
	assert_int_equal(pyropush_labels_build("a\xffz", "h", "t", NULL, 0, &l, err, sizeof(err)), 0);
	for (size_t i = 0; i < l.n; i++)
		if (!strcmp(l.l[i].name, "service_name"))
			assert_string_equal(l.l[i].value, "a?z");
	pyropush_labels_release(&l);
}

static void test_encode_roundtrip(void **state)
{
	const char *kv[] = { "env=prod" };
	const uint8_t prof[] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3 };
	struct pyropush_labels l;
	Push__V1__PushRequest *req;
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_int_equal(pyropush_labels_build("svc", "host1", "t1", kv, 1, &l, err, sizeof(err)), 0);
	assert_int_equal(pyropush_encode(&l, prof, sizeof(prof), "0b5e0d6e-1c2f-5a1b-9c3d-4e5f60718293",
					 &buf, &len), 0);
	req = push__v1__push_request__unpack(NULL, len, buf);
	assert_non_null(req);
	assert_int_equal(req->n_series, 1);
	assert_int_equal(req->series[0]->n_labels, l.n);
	for (size_t i = 0; i < l.n; i++) {
		assert_string_equal(req->series[0]->labels[i]->name, l.l[i].name);
		assert_string_equal(req->series[0]->labels[i]->value, l.l[i].value);
	}
	assert_int_equal(req->series[0]->n_samples, 1);
	assert_int_equal(req->series[0]->samples[0]->raw_profile.len, sizeof(prof));
	assert_memory_equal(req->series[0]->samples[0]->raw_profile.data, prof, sizeof(prof));
	assert_string_equal(req->series[0]->samples[0]->id, "0b5e0d6e-1c2f-5a1b-9c3d-4e5f60718293");
	/* field 1 of PushRequest, wire type 2: the first byte is 0x0a */
	assert_int_equal(buf[0], 0x0a);
	push__v1__push_request__free_unpacked(req, NULL);
	free(buf);
	assert_int_equal(pyropush_encode(&l, prof, 0, "x", &buf, &len), -EINVAL);
	pyropush_labels_release(&l);
}

/*
 * One PushRequest of many series (the spool file of an interval): decoded
 * back by protobuf-c, each series has its own labels, ID and profile, in
 * order, and the request's samples are the sum of its profiles'.
 */
static void test_encode_many(void **state)
{
	const char *kv[] = { "env=prod", "dc=fra1" };
	static const char *const svc[3] = { "nginx.service", "cron.service", "other" };
	static const char *const ten[3] = { "web", "web", "" };
	static const char *const id[3] = { "00000000-0000-8000-8000-000000000001",
					   "00000000-0000-8000-8000-000000000002", "" };
	/* pprof Profiles of 3, 1 and 2 samples (field 2, empty), gzip'ed */
	static const uint8_t raw[3][6] = { { 0x12, 0, 0x12, 0, 0x12, 0 }, { 0x12, 0, 0x08, 1, 0x08, 1 },
					   { 0x12, 0, 0x12, 0, 0x08, 1 } };
	struct pyropush_labels l[3];
	struct pyropush_series v[3];
	uint8_t *gz[3], *buf;
	size_t gzlen[3], len;
	uint64_t series, samples;
	Push__V1__PushRequest *req;

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pyropush_labels_build(svc[i], "host1", ten[i], kv, 2, &l[i], err,
						       sizeof(err)), 0);
		assert_int_equal(gzip_compress(raw[i], sizeof(raw[i]), &gz[i], &gzlen[i]), 0);
		v[i] = (struct pyropush_series){ .labels = &l[i], .profile = gz[i], .len = gzlen[i],
						 .raw_len = sizeof(raw[i]), .id = id[i][0] ? id[i] : NULL };
	}
	assert_int_equal(pyropush_encode_series(v, 3, &buf, &len), 0);
	req = push__v1__push_request__unpack(NULL, len, buf);
	assert_non_null(req);
	assert_int_equal(req->n_series, 3);
	for (int i = 0; i < 3; i++) {
		Push__V1__RawProfileSeries *rs = req->series[i];

		assert_int_equal(rs->n_labels, l[i].n);
		for (size_t j = 0; j < l[i].n; j++) {
			assert_string_equal(rs->labels[j]->name, l[i].l[j].name);
			assert_string_equal(rs->labels[j]->value, l[i].l[j].value);
		}
		for (size_t j = 0; j < rs->n_labels; j++)
			if (!strcmp(rs->labels[j]->name, "service_name"))
				assert_string_equal(rs->labels[j]->value, svc[i]);
		assert_int_equal(rs->n_samples, 1);
		assert_int_equal(rs->n_annotations, 0);
		assert_string_equal(rs->samples[0]->id, id[i]);
		assert_int_equal(rs->samples[0]->raw_profile.len, gzlen[i]);
		assert_memory_equal(rs->samples[0]->raw_profile.data, gz[i], gzlen[i]);
	}
	/* no tenant label for the series without one */
	for (size_t j = 0; j < req->series[2]->n_labels; j++)
		assert_string_not_equal(req->series[2]->labels[j]->name, "tenant");
	push__v1__push_request__free_unpacked(req, NULL);
	assert_int_equal(pyropush_request_count(buf, len, 1 << 20, &series, &samples), 0);
	assert_int_equal(series, 3);
	assert_int_equal(samples, 6);
	/* not a PushRequest */
	assert_int_equal(pyropush_request_count((const uint8_t *)"\x0a\x05" "ab", 4, 1 << 20, &series,
						&samples), -EINVAL);
	free(buf);
	/* one series is the one-series request, byte for byte */
	{
		uint8_t *one, *many;
		size_t n1, n2;

		assert_int_equal(pyropush_encode(&l[0], gz[0], gzlen[0], id[0], &one, &n1), 0);
		assert_int_equal(pyropush_encode_series(v, 1, &many, &n2), 0);
		assert_int_equal(n1, n2);
		assert_memory_equal(one, many, n1);
		free(one);
		free(many);
	}
	assert_int_equal(pyropush_encode_series(v, 0, &buf, &len), -EINVAL);
	v[1].len = 0;
	assert_int_equal(pyropush_encode_series(v, 3, &buf, &len), -EINVAL);
	for (int i = 0; i < 3; i++) {
		pyropush_labels_release(&l[i]);
		free(gz[i]);
	}
}

/*
 * The packing rule: series in order while their uncompressed sizes sum to
 * at most PYROPUSH_PART_RAW_MAX (what Pyroscope charges a push against a
 * 2 MB burst) and the request stays within its byte limit; a series
 * larger than either goes alone.
 */
static void test_part(void **state)
{
	const uint8_t prof[64] = { 0x1f, 0x8b };
	struct pyropush_labels l;
	struct pyropush_series v[9];
	const size_t K = 1024, M = PYROPUSH_PART_RAW_MAX;
	size_t sizes[9] = { 400 * K, 400 * K, 400 * K, 624 * K, 3 * M, 10, 10, M / 2, M / 2 + 1 };
	size_t parts[9], np = 0, one;
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_int_equal(M, 1u << 20);
	assert_int_equal(pyropush_labels_build("svc", "h", "t", NULL, 0, &l, err, sizeof(err)), 0);
	for (int i = 0; i < 9; i++)
		v[i] = (struct pyropush_series){ .labels = &l, .profile = prof, .len = sizeof(prof),
						 .raw_len = sizes[i], .id = "id" };
	assert_int_equal(pyropush_part(v, 0, M, 16u << 20), 0);
	for (size_t i = 0; i < 9;) {
		size_t k = pyropush_part(v + i, 9 - i, M, 16u << 20);

		assert_true(k >= 1);
		parts[np++] = k;
		i += k;
	}
	/*
	 * 400+400 (+400 would pass 1 MiB) | 400+624 = 1 MiB exactly | 3 MiB
	 * alone | 10+10+512 (+513 would pass) | 513
	 */
	assert_int_equal(np, 5);
	assert_int_equal(parts[0], 2);
	assert_int_equal(parts[1], 2);
	assert_int_equal(parts[2], 1);
	assert_int_equal(parts[3], 3);
	assert_int_equal(parts[4], 1);
	/* the encoded size binds too: a limit of two series' bytes takes two of the small ones */
	assert_int_equal(pyropush_encode_series(v + 6, 1, &buf, &one), 0);
	free(buf);
	assert_int_equal(pyropush_encode_series(v + 6, 2, &buf, &len), 0);
	free(buf);
	assert_int_equal(len, 2 * one);
	for (int i = 0; i < 8; i++)
		v[i].raw_len = 10;
	assert_int_equal(pyropush_part(v, 8, M, len), 2);
	assert_int_equal(pyropush_part(v, 8, M, len - 1), 1);
	assert_int_equal(pyropush_part(v, 8, M, 1), 1); /* a series past the limit goes alone */
	assert_int_equal(pyropush_part(v, 8, M, 16u << 20), 8);
	pyropush_labels_release(&l);
}

static void test_count_samples(void **state)
{
	/* sample_type (1) x1, sample (2) x3, a varint field (9), a fixed64 field (21 is not; use 1:1) */
	const uint8_t pb[] = { 0x0a, 0x02, 0x08, 0x01,       /* 1: ValueType{type: 1} */
			       0x12, 0x00,                   /* 2: Sample{} */
			       0x12, 0x02, 0x08, 0x05,       /* 2: Sample{location_id: 5} */
			       0x48, 0x96, 0x01,             /* 9: time_nanos 150 */
			       0x12, 0x01, 0x00,             /* 2 */
			       0x59, 1, 2, 3, 4, 5, 6, 7, 8 }; /* 11, fixed64 */
	uint64_t n = 99;

	(void)state;
	assert_int_equal(pyropush_count_samples(pb, sizeof(pb), &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(pyropush_count_samples(pb, 0, &n), 0);
	assert_int_equal(n, 0);
	/* cut anywhere inside a field: refused, never read past the end */
	assert_int_equal(pyropush_count_samples(pb, 3, &n), -EINVAL);
	assert_int_equal(pyropush_count_samples(pb, sizeof(pb) - 1, &n), -EINVAL);
	{
		const uint8_t bad[] = { 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f };

		assert_int_equal(pyropush_count_samples(bad, sizeof(bad), &n), -EINVAL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agent_labels_ok),
		cmocka_unit_test(test_agent_labels_refused),
		cmocka_unit_test(test_utf8_cut),
		cmocka_unit_test(test_build_sorted),
		cmocka_unit_test(test_build_service_made_valid),
		cmocka_unit_test(test_encode_roundtrip),
		cmocka_unit_test(test_encode_many),
		cmocka_unit_test(test_part),
		cmocka_unit_test(test_count_samples),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
