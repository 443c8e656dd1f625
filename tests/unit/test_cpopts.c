/*
 * test_cpopts.c - vigil-cp's command line: defaults, --listen forms,
 * required files, ranges, one-line errors.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <sys/socket.h>

#include "cpopts.h"

/* parse(o, err, n, ARGS..., NULL): the required files, then ARGS. */
static int parse(struct cpopts *o, char *err, size_t n, ...)
{
	char *argv[40] = { "vigil-cp", "--cert", "s.pem", "--key", "s.key", "--agent-ca", "agents.pem",
			   "--admin-ca", "admins.pem", "--policy-trust", "policy.pem" };
	int argc = 11;
	va_list ap;
	char *a;

	va_start(ap, n);
	while ((a = va_arg(ap, char *)) != NULL)
		argv[argc++] = a;
	va_end(ap);
	err[0] = '\0';
	return cpopts_parse(argc, argv, o, err, n);
}

static int parse_raw(struct cpopts *o, char *err, size_t n, int argc, char **argv)
{
	err[0] = '\0';
	return cpopts_parse(argc, argv, o, err, n);
}

static void test_defaults(void **state)
{
	struct cpopts o;
	char err[256];

	assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
	assert_string_equal(o.host, "127.0.0.1");
	assert_int_equal(o.port, 4320);
	assert_string_equal(o.db, CPOPTS_DEFAULT_DB);
	assert_string_equal(o.cert, "s.pem");
	assert_string_equal(o.policy_trust, "policy.pem");
	assert_null(o.crl);
	assert_int_equal(o.max_connections, CPOPTS_DEFAULT_MAX_CONNECTIONS);
	assert_int_equal(o.idle_timeout_s, CPOPTS_DEFAULT_IDLE_TIMEOUT);
	assert_int_equal(o.retry_after_s, CPOPTS_DEFAULT_RETRY_AFTER);
	assert_int_equal(o.log_level, CP_LOG_INFO);
	assert_null(o.issuer_cert);
	assert_null(o.issuer_key);
	assert_int_equal(o.issued_days, CPOPTS_DEFAULT_ISSUED_DAYS);
}

/* The CSR flow's issuer: both files or neither, and a lifetime in days. */
static void test_issuer(void **state)
{
	struct cpopts o;
	char err[256];

	assert_int_equal(parse(&o, err, sizeof(err), "--issuer-cert", "i.pem", "--issuer-key", "i.key",
			       "--issued-days", "7", NULL), 0);
	assert_string_equal(o.issuer_cert, "i.pem");
	assert_string_equal(o.issuer_key, "i.key");
	assert_int_equal(o.issued_days, 7);
	assert_int_equal(parse(&o, err, sizeof(err), "--issuer-cert", "i.pem", NULL), -EINVAL);
	assert_non_null(strstr(err, "give both or neither"));
	assert_int_equal(parse(&o, err, sizeof(err), "--issuer-key", "i.key", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, sizeof(err), "--issued-days", "0", NULL), -EINVAL);
	assert_non_null(strstr(err, "--issued-days"));
	assert_int_equal(parse(&o, err, sizeof(err), "--issued-days", "3651", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, sizeof(err), "--issuer-cert", "", "--issuer-key", "k", NULL), -EINVAL);
	(void)state;
}

/* The audit log: a key file (optional) and an origin that can be a signing key's name. */
static void test_audit(void **state)
{
	struct cpopts o;
	char err[256];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
	assert_null(o.audit_key);
	assert_string_equal(o.audit_origin, "vigil-cp/audit-log");
	assert_int_equal(parse(&o, err, sizeof(err), "--audit-key", "a.pem", "--audit-origin", "cp.example/audit",
			       NULL),
			 0);
	assert_string_equal(o.audit_key, "a.pem");
	assert_string_equal(o.audit_origin, "cp.example/audit");
	assert_int_equal(parse(&o, err, sizeof(err), "--audit-origin", "two words", NULL), -EINVAL);
	assert_non_null(strstr(err, "--audit-origin"));
	assert_non_null(strstr(err, "space"));
	assert_int_equal(parse(&o, err, sizeof(err), "--audit-origin", "", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, sizeof(err), "--audit-key", "", NULL), -EINVAL);
	assert_non_null(strstr(err, "--audit-key"));
}

static void test_listen(void **state)
{
	struct cpopts o;
	char err[256];

	assert_int_equal(parse(&o, err, sizeof(err), "--listen", "0.0.0.0:9000", NULL), 0);
	assert_string_equal(o.host, "0.0.0.0");
	assert_int_equal(o.port, 9000);
	assert_int_equal(parse(&o, err, sizeof(err), "--listen", "[::1]:4321", NULL), 0);
	assert_string_equal(o.host, "::1");
	assert_int_equal(o.port, 4321);
	assert_int_equal(parse(&o, err, sizeof(err), "--listen", "[::]", NULL), 0);
	assert_string_equal(o.host, "::");
	assert_int_equal(o.port, 4320);
	assert_int_equal(parse(&o, err, sizeof(err), "--listen", "cp.example", NULL), 0);
	assert_string_equal(o.host, "cp.example");
	assert_int_equal(o.port, 4320);

	static const char *const bad[] = { "::1:4320", "[::1", "[]:1", "[::1]x", ":4320", "h:0", "h:65536",
					   "h:", "h:12ab", "h:-1", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&o, err, sizeof(err), "--listen", bad[i], NULL), -EINVAL);
		assert_non_null(strstr(err, "--listen"));
		assert_null(strchr(err, '\n'));
	}
}

static void test_required(void **state)
{
	static const char *const names[] = { "--cert", "--key", "--agent-ca", "--admin-ca", "--policy-trust" };
	char *full[] = { "vigil-cp", "--cert", "a", "--key", "b", "--agent-ca", "c", "--admin-ca", "d",
			 "--policy-trust", "e" };
	struct cpopts o;
	char err[256];

	/* Leave each one out in turn: the message names it. */
	for (size_t k = 0; k < 5; k++) {
		char *argv[11];
		int argc = 0;

		for (int i = 0; i < 11; i++) {
			if (i == (int)(1 + 2 * k) || i == (int)(2 + 2 * k))
				continue;
			argv[argc++] = full[i];
		}
		assert_int_equal(parse_raw(&o, err, sizeof(err), argc, argv), -EINVAL);
		assert_non_null(strstr(err, names[k]));
		assert_non_null(strstr(err, "required"));
	}
	/* --help and --version need nothing else. */
	char *help[] = { "vigil-cp", "--help" };
	assert_int_equal(parse_raw(&o, err, sizeof(err), 2, help), 0);
	assert_true(o.help);
	char *ver[] = { "vigil-cp", "--version" };
	assert_int_equal(parse_raw(&o, err, sizeof(err), 2, ver), 0);
	assert_true(o.version);
	/* An empty file name is refused where it is given. */
	assert_int_equal(parse(&o, err, sizeof(err), "--crl", "", NULL), -EINVAL);
	assert_non_null(strstr(err, "--crl"));
}

static void test_values(void **state)
{
	struct cpopts o;
	char err[256];

	assert_int_equal(parse(&o, err, sizeof(err), "--crl", "c.crl", "--db", "sqlite:/tmp/cp.db",
			       "--max-connections", "4", "--idle-timeout", "5", "--retry-after", "7",
			       "--log-level", "debug", NULL), 0);
	assert_string_equal(o.crl, "c.crl");
	assert_string_equal(o.db, "sqlite:/tmp/cp.db");
	assert_int_equal(o.max_connections, 4);
	assert_int_equal(o.idle_timeout_s, 5);
	assert_int_equal(o.retry_after_s, 7);
	assert_int_equal(o.log_level, CP_LOG_DEBUG);

	static const char *const bad[][2] = {
		{ "--db", "postgres:x" }, { "--db", "sqlite:" }, { "--db", "postgresql://" }, { "--max-connections", "0" },
		{ "--max-connections", "-1" }, { "--max-connections", "10000000" }, { "--idle-timeout", "0" },
		{ "--idle-timeout", "3601" }, { "--retry-after", "x" }, { "--log-level", "loud" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&o, err, sizeof(err), bad[i][0], bad[i][1], NULL), -EINVAL);
		assert_non_null(strstr(err, bad[i][0]));
	}
	assert_int_equal(parse(&o, err, sizeof(err), "--bogus", NULL), -EINVAL);
	assert_non_null(strstr(err, "--bogus"));
	assert_int_equal(parse(&o, err, sizeof(err), "--listen", NULL), -EINVAL);
	assert_non_null(strstr(err, "needs a value"));
	assert_int_equal(parse(&o, err, sizeof(err), "extra", NULL), -EINVAL);
	assert_non_null(strstr(err, "unexpected argument"));
}

/* --metrics-listen: loopback 9465 by default (vigild has 9464), none, an address, refusals. */
static void test_metrics_listen(void **state)
{
	struct cpopts o;
	char err[256];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
	assert_false(o.metrics.none);
	assert_false(o.metrics_given);
	assert_string_equal(o.metrics.text, "127.0.0.1:9465");
	assert_int_equal(parse(&o, err, sizeof(err), "--metrics-listen", "none", NULL), 0);
	assert_true(o.metrics.none);
	assert_true(o.metrics_given);
	assert_int_equal(parse(&o, err, sizeof(err), "--metrics-listen", "[::1]:9100", NULL), 0);
	assert_int_equal(o.metrics.ss.ss_family, AF_INET6);
	assert_int_equal(parse(&o, err, sizeof(err), "--metrics-listen", "localhost:9100", NULL), -EINVAL);
	assert_non_null(strstr(err, "--metrics-listen 'localhost:9100'"));
	assert_int_equal(parse(&o, err, sizeof(err), "--metrics-listen", "127.0.0.1", NULL), -EINVAL);
	assert_non_null(strstr(err, "ADDR:PORT"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_issuer),
		cmocka_unit_test(test_audit),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_required),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_metrics_listen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
