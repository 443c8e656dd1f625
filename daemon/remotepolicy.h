/*
 * remotepolicy.h - whether vigild accepts a policy from the control plane:
 * the trust decision, taken outside the network-facing process.
 *
 * A policy from the network is accepted only if, in this order: it and
 * its signature are within their size limits; the signature is a
 * detached CMS signature over exactly these bytes by a certificate that
 * chains to --policy-trust with the codeSigning or the Vigil policy EKU
 * (signing_verify_policy); the YAML is a valid policy (policy_parse, the
 * same checks as a local file); it has a serial; and the serial is greater
 * than that of the signed policy in force.  The signature is checked
 * before the YAML is parsed, so that bytes nobody signed never reach the
 * parser.
 *
 * Runs in the collector (no privileges, no network).  Library-like:
 * returns 0 or -errno and never logs; a refusal leaves one line in reason.
 */
#ifndef VIGIL_REMOTEPOLICY_H
#define VIGIL_REMOTEPOLICY_H

#include <stddef.h>
#include <stdint.h>

struct policy;
struct signing_trust;

/* The name of the policy in messages: the config map's key. */
#define REMOTEPOLICY_NAME "policy.yaml"

/*
 * Check yaml and sig.  last_serial: the serial of the signed policy in
 * force (0: none).  Returns 0 and *ret (the parsed policy, owned by the
 * caller), or, with reason set ("untrusted: ...", "policy.yaml:3:7: ...",
 * "serial 4 is not newer than ..."):
 *   -EFBIG        over POLICY_MAX_SIZE or SIGNING_MAX_SIG_BYTES
 *   -ENOKEY       no signature (unsigned)
 *   -EKEYREJECTED the signature does not verify or its signer is not trusted
 *   -EBADMSG      not a valid policy, or no serial
 *   -ESTALE       the serial does not move forward (an older policy replayed)
 *   -ENOMEM
 */
int remotepolicy_check(const struct signing_trust *trust, const void *yaml, size_t yaml_len,
		       const void *sig, size_t sig_len, uint64_t last_serial, unsigned max_hz,
		       struct policy **ret, char *reason, size_t reason_len);

#endif
