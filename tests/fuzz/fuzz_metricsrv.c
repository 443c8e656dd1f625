/*
 * fuzz_metricsrv.c - libFuzzer target for the request line parser of
 * vigild's metrics endpoint (daemon/metricsrv.c; make fuzz).
 *
 * Input: what a scraper, or anyone who reaches the port, sends.  It is
 * read from memory ending at an inaccessible page.  The answer must be one
 * of the statuses metricsrv.h lists; a page (200) only for a first line
 * that is exactly GET or HEAD, /metrics (or /metrics?...), HTTP/1.x; HEAD
 * reported only with it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guardbuf.h"
#include "metricsrv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                 \
	do {                                                                     \
		if (!(x)) {                                                      \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, \
				__LINE__, #x);                                   \
			abort();                                                 \
		}                                                                \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf, *eol;
	bool head = true;
	int st;

	if (size > METRICSRV_MAX_REQUEST)
		return 0;
	buf = (const char *)guardbuf(data, size);
	st = metricsrv_parse(buf, size, &head);
	CHECK(st == 200 || st == 400 || st == 404 || st == 405 || st == 505);
	CHECK(!head || st == 200);
	eol = memchr(buf, '\n', size);
	if (st == 200) {
		size_t ll = (size_t)(eol - buf);
		const char *t;

		CHECK(eol);
		if (ll && buf[ll - 1] == '\r')
			ll--;
		CHECK((head && ll > 5 && !memcmp(buf, "HEAD ", 5)) || (!head && ll > 4 && !memcmp(buf, "GET ", 4)));
		t = buf + (head ? 5 : 4);
		CHECK(!memcmp(t, "/metrics", 8) && (t[8] == ' ' || t[8] == '?'));
		CHECK(ll >= 9 && !memcmp(buf + ll - 9, " HTTP/1.", 8));
	}
	if (!eol)
		CHECK(st == 400);
	return 0;
}
