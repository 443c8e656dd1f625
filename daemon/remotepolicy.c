/*
 * remotepolicy.c - accept or refuse a policy from the control plane (see
 * remotepolicy.h).  Runs in the collector.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"
#include "remotepolicy.h"
#include "signing.h"

int remotepolicy_check(const struct signing_trust *trust, const void *yaml, size_t yaml_len,
		       const void *sig, size_t sig_len, uint64_t last_serial, unsigned max_hz,
		       struct policy **ret, char *reason, size_t reason_len)
{
	struct policy_errors errs;
	struct policy *p = NULL;
	enum signing_status st;
	char msg[400];
	int rc;

	if (yaml_len > POLICY_MAX_SIZE || sig_len > SIGNING_MAX_SIG_BYTES) {
		snprintf(reason, reason_len, "oversize: %s is %zu bytes (at most %u) and its signature "
			 "%zu (at most %u)", REMOTEPOLICY_NAME, yaml_len, POLICY_MAX_SIZE, sig_len,
			 SIGNING_MAX_SIG_BYTES);
		return -EFBIG;
	}
	if (sig_len == 0) {
		snprintf(reason, reason_len, "unsigned: %s came without %s.sig; vigild applies only "
			 "policies an administrator signed", REMOTEPOLICY_NAME, REMOTEPOLICY_NAME);
		return -ENOKEY;
	}
	st = signing_verify_policy(trust, yaml, yaml_len, sig, sig_len, msg, sizeof(msg));
	if (st != SIGNING_OK) {
		snprintf(reason, reason_len, "%s: %s", signing_status_name(st), msg);
		return st == SIGNING_ERR_INTERNAL ? -ENOMEM : -EKEYREJECTED;
	}
	rc = policy_parse(yaml, yaml_len, REMOTEPOLICY_NAME, max_hz, &p, &errs);
	if (rc == -EBADMSG) {
		snprintf(reason, reason_len, "invalid: %s%s", errs.n ? errs.e[0].text : "invalid policy",
			 errs.n + errs.n_dropped > 1 ? " (and more)" : "");
		return rc;
	}
	if (rc) {
		snprintf(reason, reason_len, "%s: %s", REMOTEPOLICY_NAME, strerror(-rc));
		return rc;
	}
	if (p->serial == 0) {
		snprintf(reason, reason_len, "invalid: %s has no serial: a signed policy needs a "
			 "top-level 'serial:' that grows with each version", REMOTEPOLICY_NAME);
		policy_free(p);
		return -EBADMSG;
	}
	if (p->serial <= last_serial) {
		snprintf(reason, reason_len, "stale: serial %" PRIu64 " is not newer than the policy in "
			 "force (serial %" PRIu64 "): an older policy replayed, or a serial reused",
			 p->serial, last_serial);
		policy_free(p);
		return -ESTALE;
	}
	*ret = p;
	return 0;
}
