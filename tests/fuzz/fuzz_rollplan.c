/*
 * fuzz_rollplan.c - libFuzzer target for what an administrator types into a
 * rollout and what a rollback rewrites (make fuzz): rollplan.h's stages
 * and durations, polrevert.h's serial edit.
 *
 * Input: [members u16 le][selector byte][text].  Holds: accepted stages
 * have 1..16 terms of 1..100% or 1..ROLLPLAN_MAX_COUNT; their sizes never
 * shrink, never pass the member count and are at least 1; every rank has
 * a stage no earlier than the previous rank's.  An accepted duration is
 * within 30 days and prints back to the same value.  A reserialed YAML
 * differs from the input only in the serial's value, which it holds.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "polrevert.h"
#include "rollplan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                   \
	do {                                                                       \
		if (!(x)) {                                                        \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, \
				__LINE__, #x);                                     \
			abort();                                                   \
		}                                                                  \
	} while (0)

static void stages(const char *text, size_t members)
{
	size_t sizes[ROLLPLAN_MAX_STAGES], prev = 0;
	struct rollplan p;
	char err[256];

	if (rollplan_parse(text, &p, err, sizeof(err))) {
		CHECK(err[0]);
		return;
	}
	CHECK(p.n >= 1 && p.n <= ROLLPLAN_MAX_STAGES);
	for (size_t k = 0; k < p.n; k++)
		CHECK(p.s[k].value >= 1 && p.s[k].value <= (p.s[k].percent ? 100 : ROLLPLAN_MAX_COUNT));
	if (rollplan_sizes(&p, members, sizes, err, sizeof(err)))
		return;
	for (size_t k = 0; k < p.n; k++) {
		CHECK(sizes[k] <= members && sizes[k] >= prev);
		CHECK(members == 0 || sizes[k] >= 1);
		prev = sizes[k];
	}
	for (size_t rank = 0, last = 0; rank < members && rank < 4096; rank++) {
		size_t s = rollplan_stage_of(sizes, p.n, rank);

		CHECK(s >= last && s <= p.n);
		last = s;
	}
}

static void duration(const char *text)
{
	char err[256], buf[64];
	int64_t ms = -1, back = -1;

	if (rollplan_duration(text, &ms, err, sizeof(err))) {
		CHECK(err[0]);
		return;
	}
	CHECK(ms >= 0 && ms <= ROLLPLAN_MAX_DURATION_MS);
	rollplan_format_duration(ms, buf, sizeof(buf));
	CHECK(rollplan_duration(buf, &back, err, sizeof(err)) == 0 && back == ms);
}

static void reserial(const uint8_t *data, size_t size)
{
	char *out = NULL, err[256];
	size_t len = 0;

	if (polrevert_reserial((const char *)data, size, 123456789, &out, &len, err, sizeof(err))) {
		CHECK(err[0]);
		return;
	}
	CHECK(out[len] == '\0');
	CHECK(memmem(out, len, "serial:", 7) != NULL && memmem(out, len, "123456789", 9) != NULL);
	/* The same bytes before the value. */
	{
		const char *v = memmem(out, len, "123456789", 9);
		size_t pre = (size_t)(v - out);

		CHECK(pre <= size && memcmp(out, data, pre) == 0);
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t members;
	char *text;

	if (size < 3)
		return 0;
	members = (size_t)data[0] | (size_t)data[1] << 8;
	text = malloc(size - 3 + 1);
	if (!text)
		return 0;
	memcpy(text, data + 3, size - 3);
	text[size - 3] = '\0';
	switch (data[2] % 3) {
	case 0:
		stages(text, members);
		break;
	case 1:
		duration(text);
		break;
	default:
		reserial(data + 3, size - 3);
		break;
	}
	free(text);
	return 0;
}
