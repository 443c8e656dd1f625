/*
 * configmap.h - the remote configuration vigil-cp sends: an OpAMP
 * AgentConfigMap with two files,
 *   "policy.yaml"      content_type "text/yaml"                  the policy
 *   "policy.yaml.sig"  content_type "application/pkcs7-signature" DER CMS
 * and its config_hash: SHA-256 over the map's entries in sorted key order,
 * each entry as
 *   u32be(len(key)) key u32be(len(content_type)) content_type u32be(len(body)) body
 * so that no two different maps hash alike.  The agent echoes the hash in
 * RemoteConfigStatus.last_remote_config_hash; a different one makes the
 * server send the config again.  Library-like: 0 or -errno.
 * Used by vigil-cp and by vigild's uplink (to check what it received).
 */
#ifndef VIGIL_CONFIGMAP_H
#define VIGIL_CONFIGMAP_H

#include <stddef.h>
#include <stdint.h>

#include "opamp.pb-c.h"

#define CONFIGMAP_POLICY "policy.yaml"
#define CONFIGMAP_POLICY_SIG "policy.yaml.sig"
#define CONFIGMAP_POLICY_TYPE "text/yaml"
#define CONFIGMAP_SIG_TYPE "application/pkcs7-signature"
#define CONFIGMAP_HASH_LEN 32

/* The hash of any AgentConfigMap (keys sorted here, whatever the order in m). */
int configmap_hash(const Opamp__Proto__V1__AgentConfigMap *m, uint8_t ret_hash[CONFIGMAP_HASH_LEN]);

/*
 * The two files of a received map, pointing into m (not copied).  -ENOENT
 * when either is missing, -EBADMSG for a wrong content type or an extra key.
 */
int configmap_policy(const Opamp__Proto__V1__AgentConfigMap *m, const uint8_t **ret_yaml,
		     size_t *ret_yaml_len, const uint8_t **ret_sig, size_t *ret_sig_len);

#endif
