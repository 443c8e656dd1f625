/*
 * fuzz_policy.c - libFuzzer target for the policy parser (make fuzz).
 *
 * Feeds arbitrary bytes to policy_parse() and checks what must hold for
 * any input, beyond not crashing (ASan/UBSan watch for that): a rejected
 * policy comes with messages of the form "fuzz.yaml:LINE:COL: text" and no
 * control characters in them; an accepted one has sane frequency bounds and
 * budgets, and each plain (glob-free) selector, and a child of it, belongs to
 * the tenant that lists it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define MAX_HZ 1000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                 \
	do {                                                                     \
		if (!(x)) {                                                      \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, \
				__LINE__, #x);                                   \
			abort();                                                 \
		}                                                                \
	} while (0)

static void check_message(const struct policy_error *pe)
{
	char prefix[64];
	size_t n;

	CHECK(pe->line >= 1 && pe->col >= 1);
	n = (size_t)snprintf(prefix, sizeof(prefix), "fuzz.yaml:%u:%u: ", pe->line, pe->col);
	CHECK(strncmp(pe->text, prefix, n) == 0);
	CHECK(strlen(pe->text) > n);
	for (const char *c = pe->text; *c; c++)
		CHECK((unsigned char)*c >= 0x20 && *c != 0x7f);
}

static void check_policy(const struct policy *p)
{
	char path[POLICY_MAX_PATH + 16];

	CHECK(p->version == POLICY_VERSION);
	CHECK(p->n_tenants >= 1 && p->n_tenants <= POLICY_MAX_TENANTS + 1);
	CHECK(strcmp(p->tenants[0].name, "default") == 0);
	CHECK(p->tenants[0].n_cgroups == 0);
	for (size_t t = 0; t < p->n_tenants; t++) {
		const struct policy_tenant *pt = &p->tenants[t];

		CHECK(pt->hz.min >= 1 && pt->hz.min <= pt->hz.start && pt->hz.start <= pt->hz.max &&
		      pt->hz.max <= MAX_HZ);
		CHECK(pt->max_overhead >= POLICY_MIN_OVERHEAD_PERCENT / 100 * 0.999999 &&
		      pt->max_overhead <= POLICY_MAX_OVERHEAD_PERCENT / 100 * 1.000001);
		CHECK(policy_find(p, pt->name) == (int)t);
		CHECK(t == 0 || (pt->n_cgroups >= 1 && pt->n_cgroups <= POLICY_MAX_CGROUPS));
		for (size_t s = 0; s < pt->n_cgroups; s++) {
			const char *sel = pt->cgroups[s];

			CHECK(sel[0] == '/');
			if (strpbrk(sel, "*?["))
				continue;
			CHECK(policy_match(p, sel) == (int)t);
			snprintf(path, sizeof(path), "%s/child", strcmp(sel, "/") ? sel : "");
			CHECK(policy_match(p, path) == (int)t);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy *p = NULL;
	struct policy_errors e;
	int r = policy_parse((const char *)data, size, "fuzz.yaml", MAX_HZ, &p, &e);

	if (r == 0) {
		CHECK(e.n == 0 && e.n_dropped == 0);
		check_policy(p);
		policy_free(p);
	} else {
		CHECK(r == -EBADMSG || r == -ENOMEM);
		CHECK(r == -ENOMEM || e.n >= 1);
		CHECK(e.n <= POLICY_MAX_ERRORS);
		for (size_t i = 0; i < e.n; i++) {
			check_message(&e.e[i]);
			if (i > 0)
				CHECK(e.e[i - 1].line < e.e[i].line ||
				      (e.e[i - 1].line == e.e[i].line && e.e[i - 1].col <= e.e[i].col));
		}
	}
	return 0;
}
