/*
 * cfghash.h - the config_hash vigil-cp would send for a policy and its
 * signature: control-plane/configmap.h's hash of the AgentConfigMap
 * {"policy.yaml": text/yaml, "policy.yaml.sig": application/pkcs7-signature}.
 * The collector keeps policies as these two files, and reports the hash
 * of the one in force (RemoteConfigStatus.last_remote_config_hash) after a
 * restart, when the map it came in is gone.
 *
 * Used by the collector.  Library-like: 0 or -errno, never logs.
 */
#ifndef VIGIL_CFGHASH_H
#define VIGIL_CFGHASH_H

#include <stddef.h>
#include <stdint.h>

#include "configmap.h"

int cfghash_policy(const void *yaml, size_t yaml_len, const void *sig, size_t sig_len,
		   uint8_t ret[CONFIGMAP_HASH_LEN]);

#endif
