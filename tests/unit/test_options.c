/*
 * test_options.c - vigild's command line: defaults, ranges, one-line errors.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "options.h"

static int parse(struct vigild_opts *o, char *err, size_t n, ...)
{
	char *argv[32] = { "vigild" };
	int argc = 1;
	va_list ap;
	char *a;

	va_start(ap, n);
	while ((a = va_arg(ap, char *)) != NULL)
		argv[argc++] = a;
	va_end(ap);
	err[0] = '\0';
	return options_parse(argc, argv, 100000, o, err, n);
}

static void test_defaults(void **state)
{
	struct vigild_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
	assert_int_equal(o.hz, 19);
	assert_int_equal(o.interval_s, 10);
	assert_int_equal(o.duration_s, 0);
	assert_string_equal(o.output, VIGILD_DEFAULT_OUTPUT);
	assert_false(o.build_id);
	assert_int_equal(o.role, ROLE_MONITOR);
}

static void test_values(void **state)
{
	struct vigild_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, sizeof(err), "--hz", "99", "--interval", "5", "--duration",
			       "0", "--output", "/tmp/x", "--build-id", NULL), 0);
	assert_int_equal(o.hz, 99);
	assert_int_equal(o.interval_s, 5);
	assert_string_equal(o.output, "/tmp/x");
	assert_true(o.build_id);
	assert_int_equal(parse(&o, err, sizeof(err), "--hz=100000", "--max-hz", "100000", NULL), 0);
	assert_int_equal(o.hz, 100000);
	assert_int_equal(o.max_hz, 100000);
	/* above the default ceiling without raising it */
	assert_int_equal(parse(&o, err, sizeof(err), "--hz", "5000", NULL), -EINVAL);
	assert_non_null(strstr(err, "--max-hz"));
	assert_int_equal(parse(&o, err, sizeof(err), "--max-hz", "10", NULL), -EINVAL);
	assert_non_null(strstr(err, "--hz 19"));
	assert_int_equal(parse(&o, err, sizeof(err), "--trust", "/x/ca.pem", "--crl", "/x/crl.pem",
			       NULL), 0);
	assert_string_equal(o.trust, "/x/ca.pem");
	assert_string_equal(o.crl, "/x/crl.pem");
}

static void test_out_of_range(void **state)
{
	static const char *bad_hz[] = { "0", "100001", "-5", "abc", "12x", "", " 5", "99999999999999999999" };
	struct vigild_opts o;
	char err[256];

	for (size_t i = 0; i < sizeof(bad_hz) / sizeof(bad_hz[0]); i++) {
		assert_int_equal(parse(&o, err, sizeof(err), "--hz", bad_hz[i], NULL), -EINVAL);
		assert_non_null(strstr(err, "--hz"));
		assert_null(strchr(err, '\n'));
	}
	assert_int_equal(parse(&o, err, sizeof(err), "--interval", "0", NULL), -EINVAL);
	assert_non_null(strstr(err, "--interval"));
	assert_int_equal(parse(&o, err, sizeof(err), "--duration", "-1", NULL), -EINVAL);
	assert_non_null(strstr(err, "--duration"));
	assert_int_equal(parse(&o, err, sizeof(err), "--output", "", NULL), -EINVAL);
}

static void test_unknown(void **state)
{
	struct vigild_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, sizeof(err), "--frobnicate", NULL), -EINVAL);
	assert_non_null(strstr(err, "--frobnicate"));
	assert_int_equal(parse(&o, err, sizeof(err), "-x", NULL), -EINVAL);
	assert_non_null(strstr(err, "-x"));
	assert_int_equal(parse(&o, err, sizeof(err), "stray", NULL), -EINVAL);
	assert_non_null(strstr(err, "stray"));
	assert_int_equal(parse(&o, err, sizeof(err), "--hz", NULL), -EINVAL);
	assert_non_null(strstr(err, "--hz"));
	assert_int_equal(parse(&o, err, sizeof(err), "--internal-role", "root", NULL), -EINVAL);
}

#define CP "--cert", "/c", "--key", "/k", "--ca", "/ca", "--policy-trust", "/pt"

static void test_control_plane(void **state)
{
	struct vigild_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, sizeof(err), "--control-plane", "https://cp.example:4443", CP,
			       "--label", "env=prod", "--label", "vigil.tenant-set=web", "--poll-interval",
			       "5", NULL), 0);
	assert_string_equal(o.cp_host, "cp.example");
	assert_int_equal(o.cp_port, 4443);
	assert_string_equal(o.cert, "/c");
	assert_string_equal(o.key, "/k");
	assert_string_equal(o.ca, "/ca");
	assert_string_equal(o.policy_trust, "/pt");
	assert_string_equal(o.state_dir, VIGILD_DEFAULT_STATE_DIR);
	assert_int_equal(o.poll_interval_s, 5);
	assert_int_equal(o.nlabels, 2);
	assert_string_equal(o.labels[1], "vigil.tenant-set=web");
	/* default port, trailing slash, IPv6 in brackets */
	assert_int_equal(parse(&o, err, sizeof(err), "--control-plane", "https://cp/", CP, NULL), 0);
	assert_int_equal(o.cp_port, VIGILD_DEFAULT_CP_PORT);
	assert_int_equal(parse(&o, err, sizeof(err), "--control-plane", "https://[::1]:99", CP, NULL), 0);
	assert_string_equal(o.cp_host, "::1");
	assert_int_equal(o.cp_port, 99);
	assert_int_equal(o.poll_interval_s, VIGILD_DEFAULT_POLL);
	/* each missing file is named */
	assert_int_equal(parse(&o, err, sizeof(err), "--control-plane", "https://cp", "--cert", "/c",
			       "--key", "/k", "--ca", "/ca", NULL), -EINVAL);
	assert_non_null(strstr(err, "--policy-trust"));
	assert_int_equal(parse(&o, err, sizeof(err), "--control-plane", "https://cp", NULL), -EINVAL);
	assert_non_null(strstr(err, "--cert"));
	/* --cert without a control plane: not --trust's business */
	assert_int_equal(parse(&o, err, sizeof(err), "--cert", "/c", NULL), -EINVAL);
	assert_non_null(strstr(err, "--control-plane"));
	assert_int_equal(parse(&o, err, sizeof(err), "--label", "a=b", NULL), -EINVAL);
	/* bad URLs */
	const char *bad[] = { "http://cp", "https://", "https://cp:0", "https://cp:70000",
			      "https://cp/v1/opamp", "https://user@cp", "https://c p", "https://[::1",
			      "https://cp:", "cp:4320" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&o, err, sizeof(err), "--control-plane", bad[i], CP, NULL), -EINVAL);
		assert_non_null(strstr(err, "--control-plane"));
	}
	/* bad labels, too many, bad poll interval */
	const char *badl[] = { "novalue", "=v", "a b=c", "k=a,b", "k=\x01" };
	for (size_t i = 0; i < sizeof(badl) / sizeof(badl[0]); i++)
		assert_int_equal(parse(&o, err, sizeof(err), "--control-plane", "https://cp", CP, "--label",
				       badl[i], NULL), -EINVAL);
	assert_int_equal(parse(&o, err, sizeof(err), "--control-plane", "https://cp", CP,
			       "--poll-interval", "0", NULL), -EINVAL);
	assert_int_equal(options_check_label("k=", err, sizeof(err)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_control_plane),
	};
	return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
