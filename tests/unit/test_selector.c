/*
 * test_selector.c - agent selectors: what parses (up to the limits) and
 * what is refused with which reason, and which agent descriptions (in
 * store.h's JSON) a selector matches: identifying and non-identifying
 * attributes alike, every term required, values compared exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "selector.h"

static void test_parse_ok(void **state)
{
	struct selector s;
	char err[128];

	(void)state;
	assert_int_equal(selector_parse("host.name=h1,env=prod", &s, err, sizeof(err)), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.t[0].key, "host.name");
	assert_string_equal(s.t[0].value, "h1");
	assert_string_equal(s.t[1].key, "env");
	assert_string_equal(s.t[1].value, "prod");
	assert_int_equal(selector_parse("vigil.tenant-set=web db", &s, err, sizeof(err)), 0);
	assert_string_equal(s.t[0].value, "web db");
}

static void expect_error(const char *text, const char *reason)
{
	struct selector s;
	char err[128] = "";

	assert_int_equal(selector_parse(text, &s, err, sizeof(err)), -EINVAL);
	if (!strstr(err, reason))
		fail_msg("%s: \"%s\" does not say \"%s\"", text, err, reason);
}

static void test_parse_errors(void **state)
{
	(void)state;
	expect_error("", "empty selector");
	expect_error("env", "term 1: no '='");
	expect_error("=prod", "term 1: empty key");
	expect_error("env=", "term 1: empty value");
	expect_error("env=prod,", "term 2: no '='");
	expect_error("env=prod,,a=b", "term 2: no '='");
	expect_error("env=a=b", "term 1: value has a second '='");
	expect_error("env=prod,env=dev", "term 2: key env appears twice");
	expect_error("env=pr\tod", "not printable");
	expect_error("env=pr\xc3\xa9od", "not printable");
	assert_int_equal(selector_parse(NULL, &(struct selector){ 0 }, NULL, 0), -EINVAL);
}

static void test_limits(void **state)
{
	struct selector s;
	char text[16 * 8 + 64], key[SELECTOR_MAX_TEXT + 2], err[128];
	size_t n = 0;

	(void)state;
	for (int i = 0; i < SELECTOR_MAX_TERMS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%sk%d=v", i ? "," : "", i);
	assert_int_equal(selector_parse(text, &s, err, sizeof(err)), 0);
	assert_int_equal(s.n, SELECTOR_MAX_TERMS);
	snprintf(text + n, sizeof(text) - n, ",k99=v");
	expect_error(text, "more than 16 terms");

	memset(key, 'k', SELECTOR_MAX_TEXT);
	key[SELECTOR_MAX_TEXT] = '\0';
	{
		char t[2 * SELECTOR_MAX_TEXT + 8];

		snprintf(t, sizeof(t), "%s=%s", key, key);
		assert_int_equal(selector_parse(t, &s, err, sizeof(err)), 0);
		assert_int_equal(strlen(s.t[0].key), SELECTOR_MAX_TEXT);
		assert_int_equal(strlen(s.t[0].value), SELECTOR_MAX_TEXT);
		snprintf(t, sizeof(t), "%sk=v", key);
		expect_error(t, "key longer than 256 bytes");
		snprintf(t, sizeof(t), "k=v%s", key);
		expect_error(t, "value longer than 256 bytes");
	}
}

static const char desc[] = "{\"identifying\":{\"host.name\":\"h1\",\"service.name\":\"vigild\"},"
			   "\"non_identifying\":{\"env\":\"prod\",\"vigil.tenant-set\":\"web\",\"n\":\"3\"}}";

static bool match(const char *sel, const char *json)
{
	struct selector s;
	char err[128];

	assert_int_equal(selector_parse(sel, &s, err, sizeof(err)), 0);
	return selector_match(&s, json);
}

static void test_match(void **state)
{
	(void)state;
	assert_true(match("host.name=h1", desc));
	assert_true(match("env=prod", desc));
	assert_true(match("env=prod,host.name=h1,vigil.tenant-set=web", desc));
	assert_true(match("n=3", desc));
	assert_false(match("env=dev", desc));
	assert_false(match("env=prod,host.name=h2", desc));
	assert_false(match("env=Prod", desc));
	assert_false(match("env=pro", desc));
	assert_false(match("region=eu", desc));
	assert_false(match("env=prod", NULL));
	assert_false(match("env=prod", "{not json"));
	assert_false(match("env=prod", "[]"));
	assert_false(match("env=prod", "{\"identifying\":[],\"non_identifying\":\"env=prod\"}"));
	/* Only string values match: a number is not the text "3". */
	assert_false(match("n=3", "{\"identifying\":{},\"non_identifying\":{\"n\":3}}"));
	/* Duplicate keys make the JSON ambiguous: no match. */
	assert_false(match("env=prod", "{\"non_identifying\":{\"env\":\"dev\",\"env\":\"prod\"}}"));
	assert_false(selector_match(NULL, desc));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
