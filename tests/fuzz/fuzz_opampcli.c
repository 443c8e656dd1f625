/*
 * fuzz_opampcli.c - libFuzzer target for the uplink's reading of a
 * control plane's answer (make fuzz): arbitrary bytes to opampcli_parse(),
 * as a hostile server would send them once gunzipped.
 *
 * Beyond not crashing (ASan/UBSan watch for that): a parsed remote config
 * either names its failure or holds copies of both files; an error message
 * is NUL-terminated within its buffer; a refusal is -EBADMSG or -E2BIG.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opampcli.h"

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
	struct opampcli_reply r;
	int rc = opampcli_parse(data, size, &r);

	if (rc) {
		CHECK(rc == -EBADMSG || rc == -E2BIG || rc == -ENOMEM);
		return 0;
	}
	CHECK(memchr(r.error_message, '\0', sizeof(r.error_message)) != NULL);
	if (r.remote_config && !r.files_err) {
		CHECK(r.yaml && r.sig);
		if (r.yaml_len)
			CHECK(((volatile uint8_t *)r.yaml)[r.yaml_len - 1] || 1);
		if (r.sig_len)
			CHECK(((volatile uint8_t *)r.sig)[r.sig_len - 1] || 1);
	} else {
		CHECK(!r.yaml && !r.sig);
	}
	opampcli_reply_release(&r);
	return 0;
}
