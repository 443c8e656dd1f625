/*
 * cfghash.c - the config_hash of a policy and its signature, as the map
 * vigil-cp sends them (see cfghash.h); the hash itself is configmap.c's.
 */
#include <stdint.h>

#include "cfghash.h"

int cfghash_policy(const void *yaml, size_t yaml_len, const void *sig, size_t sig_len,
		   uint8_t ret[CONFIGMAP_HASH_LEN])
{
	Opamp__Proto__V1__AgentConfigFile files[2];
	Opamp__Proto__V1__AgentConfigMap__ConfigMapEntry entries[2], *ptrs[2] = { &entries[0],
										 &entries[1] };
	Opamp__Proto__V1__AgentConfigMap map;
	static char k0[] = CONFIGMAP_POLICY, k1[] = CONFIGMAP_POLICY_SIG;
	static char t0[] = CONFIGMAP_POLICY_TYPE, t1[] = CONFIGMAP_SIG_TYPE;

	opamp__proto__v1__agent_config_map__init(&map);
	for (int i = 0; i < 2; i++) {
		opamp__proto__v1__agent_config_file__init(&files[i]);
		opamp__proto__v1__agent_config_map__config_map_entry__init(&entries[i]);
		entries[i].value = &files[i];
	}
	entries[0].key = k0;
	files[0].content_type = t0;
	files[0].body.data = (uint8_t *)(uintptr_t)yaml;
	files[0].body.len = yaml_len;
	entries[1].key = k1;
	files[1].content_type = t1;
	files[1].body.data = (uint8_t *)(uintptr_t)sig;
	files[1].body.len = sig_len;
	map.config_map = ptrs;
	map.n_config_map = 2;
	return configmap_hash(&map, ret);
}
