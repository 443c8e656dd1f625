/*
 * cfghash.c - config_hash of an AgentConfigMap (see cfghash.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cfghash.h"

static int put(EVP_MD_CTX *ctx, const void *p, size_t len)
{
	uint8_t be[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
			  (uint8_t)len };

	if (len > UINT32_MAX)
		return -EINVAL;
	if (!EVP_DigestUpdate(ctx, be, 4) || (len && !EVP_DigestUpdate(ctx, p, len)))
		return -ENOMEM;
	return 0;
}

struct entry {
	const char *key, *type;
	const void *body;
	size_t len;
};

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->key, ((const struct entry *)b)->key);
}

static int hash_entries(struct entry *e, size_t n, uint8_t ret[CFGHASH_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned outl = 0;
	int rc = 0;

	if (!ctx)
		return -ENOMEM;
	qsort(e, n, sizeof(*e), cmp_entry);
	if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		rc = -ENOMEM;
	for (size_t i = 0; !rc && i < n; i++) {
		rc = put(ctx, e[i].key, strlen(e[i].key));
		if (!rc)
			rc = put(ctx, e[i].type, strlen(e[i].type));
		if (!rc)
			rc = put(ctx, e[i].body, e[i].len);
	}
	if (!rc && (!EVP_DigestFinal_ex(ctx, ret, &outl) || outl != CFGHASH_LEN))
		rc = -ENOMEM;
	EVP_MD_CTX_free(ctx);
	return rc;
}

int cfghash_map(const Opamp__Proto__V1__AgentConfigMap *m, uint8_t ret[CFGHASH_LEN])
{
	size_t n = m ? m->n_config_map : 0;
	struct entry *e = calloc(n ? n : 1, sizeof(*e));
	int rc;

	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const Opamp__Proto__V1__AgentConfigMap__ConfigMapEntry *en = m->config_map[i];

		if (!en || !en->key) {
			free(e);
			return -EINVAL;
		}
		e[i].key = en->key;
		e[i].type = en->value && en->value->content_type ? en->value->content_type : "";
		e[i].body = en->value ? en->value->body.data : NULL;
		e[i].len = en->value ? en->value->body.len : 0;
	}
	rc = hash_entries(e, n, ret);
	free(e);
	return rc;
}

int cfghash_policy(const void *yaml, size_t yaml_len, const void *sig, size_t sig_len,
		   uint8_t ret[CFGHASH_LEN])
{
	struct entry e[2] = {
		{ CFGHASH_POLICY, CFGHASH_POLICY_TYPE, yaml, yaml_len },
		{ CFGHASH_POLICY_SIG, CFGHASH_SIG_TYPE, sig, sig_len },
	};

	return hash_entries(e, 2, ret);
}

int cfghash_files(const Opamp__Proto__V1__AgentConfigMap *m, const uint8_t **ret_yaml,
		  size_t *ret_yaml_len, const uint8_t **ret_sig, size_t *ret_sig_len)
{
	const Opamp__Proto__V1__AgentConfigFile *y = NULL, *s = NULL;

	for (size_t i = 0; m && i < m->n_config_map; i++) {
		const Opamp__Proto__V1__AgentConfigMap__ConfigMapEntry *en = m->config_map[i];
		const char *type;

		if (!en || !en->key || !en->value)
			return -EBADMSG;
		type = en->value->content_type ? en->value->content_type : "";
		if (!strcmp(en->key, CFGHASH_POLICY) && !y && !strcmp(type, CFGHASH_POLICY_TYPE))
			y = en->value;
		else if (!strcmp(en->key, CFGHASH_POLICY_SIG) && !s && !strcmp(type, CFGHASH_SIG_TYPE))
			s = en->value;
		else
			return -EBADMSG;
	}
	if (!y || !s)
		return -ENOENT;
	*ret_yaml = y->body.data;
	*ret_yaml_len = y->body.len;
	*ret_sig = s->body.data;
	*ret_sig_len = s->body.len;
	return 0;
}
