/*
 * certrot.h - the agent's side of OpAMP's CSR flow (certificate rotation,
 * opamp-spec "Certificate Generation"): a new key made in memory, the
 * request for it under the current identity, the check of what the server
 * offers back, and when to rotate on one's own.
 *
 * The offered certificate must carry the new key's public key, the subject
 * of the certificate in use, the clientAuth extended key usage, and be
 * valid now; the agent cannot check that it chains to the agent CA (it
 * holds only the server's CA), so the first request made with it is the
 * proof, and uplink.c reverts when it fails.
 *
 * When: the rule SPIRE's agent uses, renewal once half of the lifetime has
 * passed, moved earlier by a random part of a tenth of the lifetime so
 * that agents that got their certificates together do not renew together:
 * due = not_before + lifetime / 2 - jitter, jitter uniform in
 * [0, lifetime / 10).
 *
 * Runs in the uplink (unprivileged, seccomp: OpenSSL's key generation
 * needs only getrandom, already in the common allowlist).  Library-like:
 * 0 or -errno, never logs; every PEM is malloc'ed and the caller frees
 * (keys with explicit_bzero first).
 */
#ifndef VIGIL_CERTROT_H
#define VIGIL_CERTROT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CERTROT_MAX_CERT (64u << 10)	/* bytes of PEM (certificate and chain) taken from a server */

/* A new EC P-256 key, PEM (PKCS#8).  0, -ENOMEM/-EIO. */
int certrot_keygen(char **ret_pem, size_t *ret_len);

/*
 * A PEM PKCS#10 request for key_pem with the subject of cert_pem (the
 * certificate in use, its first certificate).  0, -EBADMSG (a PEM does
 * not parse), -ENOMEM/-EIO.
 */
int certrot_csr(const void *key_pem, size_t key_len, const void *cert_pem, size_t cert_len, char **ret_pem,
		size_t *ret_len);

/*
 * Is offer (the server's PEM, its first certificate the leaf) usable with
 * key_pem in place of cur_pem at time now?  0, or -EBADMSG with the reason
 * in why (not PEM, another key, another subject, no clientAuth, not valid
 * now), -E2BIG (over CERTROT_MAX_CERT).
 */
int certrot_check(const void *offer, size_t offer_len, const void *key_pem, size_t key_len, const void *cur_pem,
		  size_t cur_len, time_t now, char *why, size_t whylen);

/* The validity of a PEM certificate (its first).  0, -EBADMSG. */
int certrot_validity(const void *pem, size_t len, time_t *ret_not_before, time_t *ret_not_after);

/* 0 when key_pem is the private key of cert_pem's (first) certificate, else -EBADMSG. */
int certrot_pair(const void *cert_pem, size_t cert_len, const void *key_pem, size_t key_len);

/*
 * Is cand (a renewed certificate) to be used rather than cur: the same
 * subject, valid at now, and it expires later?  (Not "issued later":
 * issuers backdate notBefore for clocks that lag, vigil-cp by a minute.)
 */
bool certrot_newer(const void *cand, size_t cand_len, const void *cur, size_t cur_len, time_t now);

/*
 * A state directory's identity.pem (certificates, then the key): the
 * offset where the private key begins.  0 and *ret_off, or -EBADMSG when
 * there is no certificate before a key.
 */
int certrot_split(const char *pem, size_t len, size_t *ret_off);

/* When to rotate (see above); rnd is a random number. */
time_t certrot_due(time_t not_before, time_t not_after, uint64_t rnd);

#endif
