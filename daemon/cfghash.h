/*
 * cfghash.h - the agent's side of control-plane/configmap.h: the
 * config_hash of an AgentConfigMap (SHA-256 over the entries in sorted key
 * order, each as u32be(len(key)) key u32be(len(content_type)) content_type
 * u32be(len(body)) body), and the two files vigil-cp sends.
 *
 * The same definition as configmap.h, written for vigild while
 * control-plane/configmap.c was still being written elsewhere; the unit
 * test checks the two agree once both are built.  Used by the uplink (the
 * map it received) and the collector (the policy it keeps).
 * Library-like: 0 or -errno, never logs.
 */
#ifndef VIGIL_CFGHASH_H
#define VIGIL_CFGHASH_H

#include <stddef.h>
#include <stdint.h>

#include "opamp.pb-c.h"

#define CFGHASH_LEN 32
#define CFGHASH_POLICY "policy.yaml"
#define CFGHASH_POLICY_SIG "policy.yaml.sig"
#define CFGHASH_POLICY_TYPE "text/yaml"
#define CFGHASH_SIG_TYPE "application/pkcs7-signature"

/* The hash of any map.  0, -EINVAL (a NULL entry), -ENOMEM. */
int cfghash_map(const Opamp__Proto__V1__AgentConfigMap *m, uint8_t ret[CFGHASH_LEN]);

/* The hash of the map vigil-cp would send for this policy and signature. */
int cfghash_policy(const void *yaml, size_t yaml_len, const void *sig, size_t sig_len,
		   uint8_t ret[CFGHASH_LEN]);

/*
 * The policy and signature of a received map, pointing into m.  -ENOENT
 * when either is missing, -EBADMSG for a wrong content type or another key.
 */
int cfghash_files(const Opamp__Proto__V1__AgentConfigMap *m, const uint8_t **ret_yaml,
		  size_t *ret_yaml_len, const uint8_t **ret_sig, size_t *ret_sig_len);

#endif
