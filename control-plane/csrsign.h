/*
 * csrsign.h - vigil-cp's certificate issuer for OpAMP's CSR flow
 * (opamp-spec specification.md, "Using instance_uid" and "Certificate
 * Generation" / ConnectionSettingsRequest, field #11 of AgentToServer).
 *
 * An agent that holds a valid certificate under --agent-ca sends a PEM
 * PKCS#10 request for a key it made; with --issuer-cert/--issuer-key the
 * server signs it.  What is signed is decided here, not by the request:
 *   - the request's self-signature must verify (the agent holds the key);
 *   - its subject must equal the subject of the certificate the request
 *     came over: an agent renews its own identity and nobody else's;
 *   - its key is EC P-256 or P-384, or RSA of 2048 to 8192 bits;
 *   - the certificate gets that subject, the SANs of the current
 *     certificate (whatever the request asks is ignored), CA:FALSE,
 *     digitalSignature, the clientAuth EKU, a random 128-bit serial and a
 *     lifetime of --issued-days, never past the issuer's own expiry.
 * The issuer must be a CA certificate of --agent-ca or chain to it, so that
 * what it issues is accepted on the next connection (checked at load).
 *
 * Runs in vigil-cp (unprivileged, single-threaded).  Library-like: returns
 * 0 or -errno with a one-line reason; never logs.
 */
#ifndef VIGIL_CSRSIGN_H
#define VIGIL_CSRSIGN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#define CSRSIGN_MAX_CSR (16u << 10)	/* bytes of PEM accepted in one request */
#define CSRSIGN_DEFAULT_DAYS 30u
#define CSRSIGN_MAX_DAYS 3650u

struct csrsign;

/*
 * Load the issuer (PEM certificate, then any intermediates up to
 * --agent-ca) and its key, and check that the issuer is a CA that chains
 * to a certificate of agent_ca.  0 and *ret, or -errno with the reason
 * (naming the option) in err: -ENOENT/-EACCES/-EFBIG unreadable,
 * -EBADMSG unusable or not a CA or key mismatch, -EPERM not under
 * --agent-ca, -ENOMEM.
 */
int csrsign_new(const char *issuer_cert, const char *issuer_key, const char *agent_ca, unsigned days,
		struct csrsign **ret, char *err, size_t errlen);

/* Accepts NULL. */
void csrsign_free(struct csrsign *cs);

/* Lifetime in seconds of what this issuer signs (for tests and logs). */
long csrsign_lifetime(const struct csrsign *cs);

struct csrsign_issued {
	char *pem;		/* the certificate, then the issuer chain short of --agent-ca; malloc'ed */
	size_t len;
	char serial[80];	/* upper-case hex, as openssl x509 -serial prints it */
	char fingerprint[65];	/* SHA-256 of the DER certificate, lower-case hex */
	char subject[256];	/* RFC 2253 */
	time_t not_after;
};

/*
 * Sign csr (PEM, len bytes, not NUL-terminated) for the agent whose
 * verified certificate is peer (borrowed), at time now.  0 and *ret (free
 * ret->pem), or -EBADMSG (not a request, bad self-signature, wrong
 * subject, weak or unknown key), -E2BIG (over CSRSIGN_MAX_CSR), -EINVAL
 * (no peer), -ENOMEM/-EIO, each with a one-line reason in why.
 */
int csrsign_issue(const struct csrsign *cs, X509 *peer, const uint8_t *csr, size_t len, time_t now,
		  struct csrsign_issued *ret, char *why, size_t whylen);

#endif
