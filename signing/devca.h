/*
 * devca.h - make a development CA and a code-signing certificate.
 *
 * For builds and tests only: `make` uses it (through vigil-sign dev-ca) to
 * sign the BPF objects it builds, under build/dev-ca, never committed.  A
 * real deployment signs with its own PKI (see docs/vigil-sign.1).
 *
 * Writes into dir (created 0700 if missing):
 *   ca.pem       the CA certificate: what vigild --trust points at
 *   ca.key       the CA's private key (0600), to issue another signer
 *   signer.pem   a certificate issued by the CA: codeSigning EKU,
 *                digitalSignature key usage, CA:FALSE
 *   signer.key   its private key (0600)
 * Keys are ECDSA P-256, certificates valid from one hour ago (clock skew)
 * for `days` days.  Each file is written to a temporary and renamed.
 *
 * Library-like: returns 0 or -errno with a one-line message, never logs.
 */
#ifndef VIGIL_DEVCA_H
#define VIGIL_DEVCA_H

#include <stdbool.h>
#include <stddef.h>

#define DEVCA_MAX_DAYS 36500

/*
 * Create the four files in dir.  Unless force is set, refuses with -EEXIST
 * when any of them exists (a CA in use is not replaced by accident).
 * cn_prefix names the certificates ("<prefix> CA", "<prefix> signer"; NULL:
 * "Vigil development").  Returns 0, -EINVAL (days not in 1..DEVCA_MAX_DAYS),
 * -EEXIST, -ENOMEM, -EIO (OpenSSL) or an -errno of mkdir/open/write/rename.
 */
int devca_create(const char *dir, const char *cn_prefix, unsigned days, bool force, char *err,
		 size_t errlen);

#endif
