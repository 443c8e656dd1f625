/*
 * test_configmap.c - the remote config's hash and files: config_hash is
 * SHA-256 over the entries in sorted key order with every field
 * length-prefixed, exactly as configmap.h writes it (recomputed here by
 * hand), whatever the order of the entries; maps that would concatenate
 * alike hash differently; a key twice is refused; configmap_policy finds
 * the two files and refuses wrong content types and extra or missing keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <openssl/sha.h>

#include "configmap.h"

struct map {
	Opamp__Proto__V1__AgentConfigFile files[4];
	Opamp__Proto__V1__AgentConfigMap__ConfigMapEntry entries[4];
	Opamp__Proto__V1__AgentConfigMap__ConfigMapEntry *ptrs[4];
	Opamp__Proto__V1__AgentConfigMap m;
};

static void map_add(struct map *mp, const char *key, const char *type, const char *body)
{
	size_t i = mp->m.n_config_map;

	opamp__proto__v1__agent_config_file__init(&mp->files[i]);
	mp->files[i].content_type = (char *)(uintptr_t)type;
	mp->files[i].body.data = (uint8_t *)(uintptr_t)body;
	mp->files[i].body.len = strlen(body);
	opamp__proto__v1__agent_config_map__config_map_entry__init(&mp->entries[i]);
	mp->entries[i].key = (char *)(uintptr_t)key;
	mp->entries[i].value = &mp->files[i];
	mp->ptrs[i] = &mp->entries[i];
	mp->m.config_map = mp->ptrs;
	mp->m.n_config_map = i + 1;
}

static void map_init(struct map *mp)
{
	memset(mp, 0, sizeof(*mp));
	opamp__proto__v1__agent_config_map__init(&mp->m);
}

static size_t put_field(uint8_t *out, const char *s)
{
	size_t n = strlen(s);

	out[0] = (uint8_t)(n >> 24);
	out[1] = (uint8_t)(n >> 16);
	out[2] = (uint8_t)(n >> 8);
	out[3] = (uint8_t)n;
	memcpy(out + 4, s, n);
	return 4 + n;
}

static void test_hash_definition(void **state)
{
	struct map a, b;
	uint8_t buf[256], want[32], got[32];
	size_t n = 0;

	(void)state;
	map_init(&a);
	map_add(&a, CONFIGMAP_POLICY_SIG, CONFIGMAP_SIG_TYPE, "SIG");
	map_add(&a, CONFIGMAP_POLICY, CONFIGMAP_POLICY_TYPE, "serial: 1\n");
	/* Sorted: "policy.yaml" < "policy.yaml.sig". */
	n += put_field(buf + n, "policy.yaml");
	n += put_field(buf + n, "text/yaml");
	n += put_field(buf + n, "serial: 1\n");
	n += put_field(buf + n, "policy.yaml.sig");
	n += put_field(buf + n, "application/pkcs7-signature");
	n += put_field(buf + n, "SIG");
	SHA256(buf, n, want);
	assert_int_equal(configmap_hash(&a.m, got), 0);
	assert_memory_equal(got, want, 32);

	map_init(&b);
	map_add(&b, CONFIGMAP_POLICY, CONFIGMAP_POLICY_TYPE, "serial: 1\n");
	map_add(&b, CONFIGMAP_POLICY_SIG, CONFIGMAP_SIG_TYPE, "SIG");
	assert_int_equal(configmap_hash(&b.m, got), 0);
	assert_memory_equal(got, want, 32);

	/* The empty map (and no map) hash as SHA-256 of nothing. */
	map_init(&b);
	SHA256((const uint8_t *)"", 0, want);
	assert_int_equal(configmap_hash(&b.m, got), 0);
	assert_memory_equal(got, want, 32);
	assert_int_equal(configmap_hash(NULL, got), 0);
	assert_memory_equal(got, want, 32);
}

static void test_hash_no_ambiguity(void **state)
{
	struct map a, b;
	uint8_t ha[32], hb[32];

	(void)state;
	map_init(&a);
	map_add(&a, "ab", "c", "d");
	map_init(&b);
	map_add(&b, "a", "bc", "d");
	assert_int_equal(configmap_hash(&a.m, ha), 0);
	assert_int_equal(configmap_hash(&b.m, hb), 0);
	assert_memory_not_equal(ha, hb, 32);
	/* One byte of a body changes the hash. */
	map_init(&b);
	map_add(&b, "ab", "c", "e");
	assert_int_equal(configmap_hash(&b.m, hb), 0);
	assert_memory_not_equal(ha, hb, 32);
}

static void test_hash_duplicate_key(void **state)
{
	struct map a;
	uint8_t h[32];

	(void)state;
	map_init(&a);
	map_add(&a, "k", "t", "1");
	map_add(&a, "k", "t", "2");
	assert_int_equal(configmap_hash(&a.m, h), -EINVAL);
}

static void test_policy_files(void **state)
{
	struct map a;
	const uint8_t *yaml = NULL, *sig = NULL;
	size_t yl = 0, sl = 0;

	(void)state;
	map_init(&a);
	map_add(&a, CONFIGMAP_POLICY_SIG, CONFIGMAP_SIG_TYPE, "SIG");
	map_add(&a, CONFIGMAP_POLICY, CONFIGMAP_POLICY_TYPE, "serial: 1\n");
	assert_int_equal(configmap_policy(&a.m, &yaml, &yl, &sig, &sl), 0);
	assert_int_equal(yl, 10);
	assert_memory_equal(yaml, "serial: 1\n", 10);
	assert_int_equal(sl, 3);
	assert_memory_equal(sig, "SIG", 3);

	map_init(&a);
	map_add(&a, CONFIGMAP_POLICY, CONFIGMAP_POLICY_TYPE, "serial: 1\n");
	assert_int_equal(configmap_policy(&a.m, &yaml, &yl, &sig, &sl), -ENOENT);
	assert_int_equal(configmap_policy(NULL, &yaml, &yl, &sig, &sl), -ENOENT);

	map_init(&a);
	map_add(&a, CONFIGMAP_POLICY, "text/plain", "serial: 1\n");
	map_add(&a, CONFIGMAP_POLICY_SIG, CONFIGMAP_SIG_TYPE, "SIG");
	assert_int_equal(configmap_policy(&a.m, &yaml, &yl, &sig, &sl), -EBADMSG);

	map_init(&a);
	map_add(&a, CONFIGMAP_POLICY, CONFIGMAP_POLICY_TYPE, "serial: 1\n");
	map_add(&a, CONFIGMAP_POLICY_SIG, CONFIGMAP_SIG_TYPE, "SIG");
	map_add(&a, "extra.yaml", CONFIGMAP_POLICY_TYPE, "x");
	assert_int_equal(configmap_policy(&a.m, &yaml, &yl, &sig, &sl), -EBADMSG);

	map_init(&a);
	map_add(&a, CONFIGMAP_POLICY, CONFIGMAP_POLICY_TYPE, "serial: 1\n");
	map_add(&a, CONFIGMAP_POLICY, CONFIGMAP_POLICY_TYPE, "serial: 2\n");
	map_add(&a, CONFIGMAP_POLICY_SIG, CONFIGMAP_SIG_TYPE, "SIG");
	assert_int_equal(configmap_policy(&a.m, &yaml, &yl, &sig, &sl), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_definition),
		cmocka_unit_test(test_hash_no_ambiguity),
		cmocka_unit_test(test_hash_duplicate_key),
		cmocka_unit_test(test_policy_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
