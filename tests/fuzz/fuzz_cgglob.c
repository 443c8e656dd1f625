/*
 * fuzz_cgglob.c - libFuzzer target for cgroup component globs (make fuzz).
 *
 * Input: [len a][a][len b][b][name].  Holds cgglob against fnmatch(3), which
 * policy_match() uses: for every accepted pattern cgglob_match() must agree
 * with fnmatch(FNM_NOESCAPE); if the name matches both patterns then
 * cgglob_intersect() must say they intersect, with a witness no longer than
 * the name; and any witness must match both patterns and be a valid name.
 * A wrong "no" here would let two tenants claim the same cgroup.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgglob.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                 \
	do {                                                                     \
		if (!(x)) {                                                      \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, \
				__LINE__, #x);                                   \
			abort();                                                 \
		}                                                                \
	} while (0)

static bool take(const uint8_t **d, size_t *n, char *out)
{
	size_t len;

	if (*n < 1)
		return false;
	len = **d;
	(*d)++;
	(*n)--;
	if (len > *n)
		len = *n;
	memcpy(out, *d, len);
	out[len] = '\0';
	*d += len;
	*n -= len;
	return true;
}

static bool fnm(const char *p, const char *s)
{
	return fnmatch(p, s, FNM_NOESCAPE) == 0;
}

static bool valid_name(const char *s, size_t n)
{
	return n >= 1 && n <= CGGLOB_NAME_MAX && strlen(s) == n && !strchr(s, '/') &&
	       strcmp(s, ".") && strcmp(s, "..");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char a[256], b[256], name[CGGLOB_NAME_MAX + 1], w[CGGLOB_NAME_MAX + 1];
	size_t la, lb, ln;
	bool va, vb, vn;
	uint64_t work = 1u << 22;
	int r;

	if (!take(&data, &size, a) || !take(&data, &size, b))
		return 0;
	ln = size > CGGLOB_NAME_MAX ? CGGLOB_NAME_MAX : size;
	memcpy(name, data, ln);
	name[ln] = '\0';
	la = strlen(a);
	lb = strlen(b);
	va = cgglob_check(a, la, NULL) == 0;
	vb = cgglob_check(b, lb, NULL) == 0;
	vn = valid_name(name, ln);

	if (va && vn)
		CHECK(cgglob_match(a, la, name, ln) == fnm(a, name));
	if (vb && vn)
		CHECK(cgglob_match(b, lb, name, ln) == fnm(b, name));
	if (!va || !vb)
		return 0;
	r = cgglob_intersect(a, la, b, lb, w, sizeof(w), &work);
	CHECK(r == 0 || r == 1 || r == -E2BIG);
	if (r == 1) {
		CHECK(valid_name(w, strlen(w)));
		CHECK(fnm(a, w) && fnm(b, w));
	}
	if (vn && fnm(a, name) && fnm(b, name))
		CHECK(r == -E2BIG || (r == 1 && strlen(w) <= ln));
	return 0;
}
