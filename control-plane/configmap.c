/*
 * configmap.c - the remote configuration's map (policy.yaml and its
 * signature) and its config_hash, as configmap.h defines them: SHA-256
 * over the entries in sorted key order, each field length-prefixed.
 * Used by vigil-cp and by vigild's uplink; library-like: never logs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "configmap.h"

typedef Opamp__Proto__V1__AgentConfigMap__ConfigMapEntry configmap_entry;

static int configmap_cmp(const void *a, const void *b)
{
	const configmap_entry *x = *(const configmap_entry *const *)a;
	const configmap_entry *y = *(const configmap_entry *const *)b;

	return strcmp(x->key ? x->key : "", y->key ? y->key : "");
}

static int configmap_update(EVP_MD_CTX *ctx, const void *p, size_t len)
{
	uint8_t be[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len };

	if (len > UINT32_MAX)
		return -E2BIG;
	if (EVP_DigestUpdate(ctx, be, sizeof(be)) != 1 || (len && EVP_DigestUpdate(ctx, p, len) != 1))
		return -EIO;
	return 0;
}

int configmap_hash(const Opamp__Proto__V1__AgentConfigMap *m, uint8_t ret_hash[CONFIGMAP_HASH_LEN])
{
	const configmap_entry **sorted = NULL;
	EVP_MD_CTX *ctx;
	size_t n = m ? m->n_config_map : 0;
	unsigned int len = 0;
	uint8_t hash[CONFIGMAP_HASH_LEN];
	int r = 0;

	if (n) {
		sorted = calloc(n, sizeof(*sorted));
		if (!sorted)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++)
			sorted[i] = m->config_map[i];
		qsort(sorted, n, sizeof(*sorted), configmap_cmp);
	}
	ctx = EVP_MD_CTX_new();
	if (!ctx) {
		free(sorted);
		return -ENOMEM;
	}
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		r = -EIO;
	for (size_t i = 0; i < n && r == 0; i++) {
		const configmap_entry *e = sorted[i];
		const char *key = e->key ? e->key : "";
		const char *type = e->value && e->value->content_type ? e->value->content_type : "";

		/* A map has each key once; two entries with one key are not a map. */
		if (i > 0 && configmap_cmp(&sorted[i - 1], &sorted[i]) == 0) {
			r = -EINVAL;
			break;
		}
		r = configmap_update(ctx, key, strlen(key));
		if (r == 0)
			r = configmap_update(ctx, type, strlen(type));
		if (r == 0)
			r = configmap_update(ctx, e->value ? e->value->body.data : NULL,
					     e->value ? e->value->body.len : 0);
	}
	if (r == 0 && (EVP_DigestFinal_ex(ctx, hash, &len) != 1 || len != CONFIGMAP_HASH_LEN))
		r = -EIO;
	EVP_MD_CTX_free(ctx);
	free(sorted);
	if (r == 0)
		memcpy(ret_hash, hash, CONFIGMAP_HASH_LEN);
	return r;
}

int configmap_policy(const Opamp__Proto__V1__AgentConfigMap *m, const uint8_t **ret_yaml,
		     size_t *ret_yaml_len, const uint8_t **ret_sig, size_t *ret_sig_len)
{
	const Opamp__Proto__V1__AgentConfigFile *yaml = NULL, *sig = NULL;

	for (size_t i = 0; m && i < m->n_config_map; i++) {
		const configmap_entry *e = m->config_map[i];
		const Opamp__Proto__V1__AgentConfigFile **slot;
		const char *want;

		if (e->key && strcmp(e->key, CONFIGMAP_POLICY) == 0) {
			slot = &yaml;
			want = CONFIGMAP_POLICY_TYPE;
		} else if (e->key && strcmp(e->key, CONFIGMAP_POLICY_SIG) == 0) {
			slot = &sig;
			want = CONFIGMAP_SIG_TYPE;
		} else {
			return -EBADMSG;
		}
		if (*slot || !e->value || !e->value->content_type || strcmp(e->value->content_type, want) != 0)
			return -EBADMSG;
		*slot = e->value;
	}
	if (!yaml || !sig)
		return -ENOENT;
	*ret_yaml = yaml->body.data;
	*ret_yaml_len = yaml->body.len;
	*ret_sig = sig->body.data;
	*ret_sig_len = sig->body.len;
	return 0;
}
