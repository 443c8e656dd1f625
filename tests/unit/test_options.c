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

#include <arpa/inet.h>
#include <netinet/in.h>

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
	/* the workers are programs of their own (workerexe.h): vigild takes no role */
	assert_int_equal(parse(&o, err, sizeof(err), "--internal-role", "collector", NULL), -EINVAL);
	assert_non_null(strstr(err, "--internal-role"));
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

/* --spool-max-bytes: the export spool's bound, in bytes or binary units */
static void test_spool_max_bytes(void **state)
{
	struct vigild_opts o;
	char err[256];
	unsigned long long v;

	assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
	assert_true(o.spool_max_bytes == 256ull << 20);
	assert_null(o.export_url);
	assert_int_equal(parse(&o, err, sizeof(err), "--spool-max-bytes", "64KiB", NULL), 0);
	assert_true(o.spool_max_bytes == 64ull << 10);
	assert_int_equal(parse(&o, err, sizeof(err), "--spool-max-bytes", "2GiB", NULL), 0);
	assert_true(o.spool_max_bytes == 2ull << 30);
	assert_int_equal(parse(&o, err, sizeof(err), "--spool-max-bytes", "1000000", NULL), 0);
	assert_true(o.spool_max_bytes == 1000000);
	assert_int_equal(parse(&o, err, sizeof(err), "--spool-max-bytes=3MiB", NULL), 0);
	assert_true(o.spool_max_bytes == 3ull << 20);
	static const char *const bad[] = { "", "1k", "1KB", "1 MiB", "-5", "0x10", "MiB", "10mib",
					   "1023", "2048GiB", "99999999999999999999", "18014398509481984GiB" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&o, err, sizeof(err), "--spool-max-bytes", bad[i], NULL), -EINVAL);
		assert_non_null(strstr(err, "--spool-max-bytes"));
		assert_non_null(strstr(err, "KiB"));
	}
	assert_int_equal(options_parse_size("4KiB", 4096, 4096, &v), 0);
	assert_true(v == 4096);
	assert_int_equal(options_parse_size("4095", 4096, 8192, &v), -ERANGE);
	assert_int_equal(options_parse_size("4k", 0, ~0ull, &v), -EINVAL);
}

/* Export to Pyroscope (issue 11). */
static void test_export(void **state)
{
	struct vigild_opts o;
	char err[512];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
	assert_null(o.export_url);
	assert_int_equal(o.export_max_rate, VIGILD_DEFAULT_EXPORT_MAX_RATE);

	assert_int_equal(parse(&o, err, sizeof(err), "--export-url", "https://pyro.example/base/",
			       "--export-tenant", "team-a", "--export-bearer-token-file", "/etc/vigil/tok",
			       "--export-ca", "/ca", "--export-cert", "/c", "--export-key", "/k",
			       "--export-max-rate", "3", "--label", "env=prod", NULL), 0);
	assert_string_equal(o.export_url, "https://pyro.example/base/");
	assert_string_equal(o.export_host, "pyro.example");
	assert_int_equal(o.export_port, 443);
	assert_true(o.export_https);
	assert_string_equal(o.export_tenant, "team-a");
	assert_string_equal(o.export_bearer_token_file, "/etc/vigil/tok");
	assert_string_equal(o.export_ca, "/ca");
	assert_int_equal(o.export_max_rate, 3);
	assert_int_equal(o.nlabels, 1);	/* --label goes with export too */

	assert_int_equal(parse(&o, err, sizeof(err), "--export-url", "http://[::1]:4040", NULL), 0);
	assert_string_equal(o.export_host, "::1");
	assert_int_equal(o.export_port, 4040);
	assert_false(o.export_https);
	assert_int_equal(parse(&o, err, sizeof(err), "--export-url", "HTTP://127.0.0.1", NULL), 0);
	assert_int_equal(o.export_port, 80);

	/* bad URLs */
	{
		const char *bad[] = { "ftp://x", "pyro:4040", "http://", "http://u@h/", "http://h:0",
				      "http://h:65536", "http://h/a?b=c", "http://h/a#f", "http://h/%2e",
				      "http://[::1", "http://h x" };

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			assert_int_equal(parse(&o, err, sizeof(err), "--export-url", bad[i], NULL), -EINVAL);
			assert_non_null(strstr(err, "--export-url"));
		}
	}
	/* the others need --export-url */
	assert_int_equal(parse(&o, err, sizeof(err), "--export-tenant", "t", NULL), -EINVAL);
	assert_non_null(strstr(err, "needs --export-url"));
	assert_int_equal(parse(&o, err, sizeof(err), "--export-max-rate", "5", NULL), -EINVAL);
	assert_non_null(strstr(err, "--export-max-rate needs --export-url"));
	assert_int_equal(parse(&o, err, sizeof(err), "--label", "a=b", NULL), -EINVAL);
	assert_non_null(strstr(err, "--export-url"));
	/* one kind of auth; cert with key; TLS options with https only */
	assert_int_equal(parse(&o, err, sizeof(err), "--export-url", "http://h", "--export-basic-auth-file",
			       "/a", "--export-bearer-token-file", "/b", NULL), -EINVAL);
	assert_non_null(strstr(err, "choose one"));
	assert_int_equal(parse(&o, err, sizeof(err), "--export-url", "https://h", "--export-cert", "/c",
			       NULL), -EINVAL);
	assert_non_null(strstr(err, "--export-key"));
	assert_int_equal(parse(&o, err, sizeof(err), "--export-url", "http://h", "--export-ca", "/c",
			       NULL), -EINVAL);
	assert_non_null(strstr(err, "https://"));
	assert_int_equal(parse(&o, err, sizeof(err), "--export-url", "http://h", "--export-ca", "",
			       NULL), -EINVAL);
	/* tenant ids, rates */
	assert_int_equal(parse(&o, err, sizeof(err), "--export-url", "http://h", "--export-tenant",
			       "a/b", NULL), -EINVAL);
	assert_non_null(strstr(err, "tenant id"));
	assert_int_equal(parse(&o, err, sizeof(err), "--export-url", "http://h", "--export-tenant",
			       "..", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, sizeof(err), "--export-url", "http://h", "--export-tenant",
			       "0123456789012345678901234567890123456789012345678901234567890123", NULL),
			 -EINVAL);
	assert_int_equal(parse(&o, err, sizeof(err), "--export-url", "http://h", "--export-max-rate", "0",
			       NULL), -EINVAL);
	assert_int_equal(parse(&o, err, sizeof(err), "--export-url", "http://h", "--export-max-rate",
			       "1001", NULL), -EINVAL);
}

/* --metrics-listen: the default, addresses of both families, none, and what is refused. */
static void test_metrics_listen(void **state)
{
	struct vigild_opts o;
	char err[256];
	const struct sockaddr_in *in = (const struct sockaddr_in *)&o.metrics.ss;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&o.metrics.ss;
	static const char *const bad[] = { "9464", "localhost:9464", "127.0.0.1:", "127.0.0.1:0",
					   "127.0.0.1:65536", "127.0.0.1:94x", "::1:9464", "[::1]",
					   "[::1:9464", "[nope]:1", "1.2.3.4.5:80", "" };

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
	assert_false(o.metrics.none);
	assert_false(o.metrics_given);
	assert_int_equal(o.metrics.ss.ss_family, AF_INET);
	assert_int_equal(ntohs(in->sin_port), 9464);
	assert_int_equal(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
	assert_string_equal(o.metrics.text, "127.0.0.1:9464");

	assert_int_equal(parse(&o, err, sizeof(err), "--metrics-listen", "none", NULL), 0);
	assert_true(o.metrics.none);
	assert_true(o.metrics_given);

	assert_int_equal(parse(&o, err, sizeof(err), "--metrics-listen", "0.0.0.0:1", NULL), 0);
	assert_int_equal(ntohs(in->sin_port), 1);
	assert_int_equal(in->sin_addr.s_addr, 0);

	assert_int_equal(parse(&o, err, sizeof(err), "--metrics-listen=[::1]:65535", NULL), 0);
	assert_int_equal(o.metrics.ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(in6->sin6_port), 65535);
	assert_int_equal(o.metrics.len, sizeof(struct sockaddr_in6));

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&o, err, sizeof(err), "--metrics-listen", bad[i], NULL), -EINVAL);
		/* the message names the option and the value */
		assert_non_null(strstr(err, "--metrics-listen"));
		assert_null(strchr(err, '\n'));
	}
	assert_int_equal(parse(&o, err, sizeof(err), "--metrics-listen", "localhost:9464", NULL), -EINVAL);
	assert_non_null(strstr(err, "not resolved"));
	/* accepts port 0 only where asked (vigil-cp's tests let the kernel choose) */
	assert_int_equal(listenaddr_parse("--x", "127.0.0.1:0", true, &o.metrics, err, sizeof(err)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_control_plane),
		cmocka_unit_test(test_spool_max_bytes),
		cmocka_unit_test(test_export),
		cmocka_unit_test(test_metrics_listen),
	};
	return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
