/*
 * checkpoint.h - signed checkpoints of the audit log: the C2SP
 * tlog-checkpoint body (c2sp.org/tlog-checkpoint) in a C2SP signed note
 * (c2sp.org/signed-note) with one Ed25519 signature:
 *
 *   ORIGIN\n
 *   SIZE\n                      decimal, no leading zero
 *   BASE64(root hash)\n         standard base64, 44 characters
 *   \n
 *   \u2014 NAME BASE64(key id || signature)\n
 *
 * vigil-cp signs with the origin as the key name (as tlog-checkpoint
 * recommends), so its origin obeys the key name's rules: non-empty, no
 * spaces, no '+' (printable ASCII here).  A note read may have another
 * origin (one printable line) and another key name.  key id =
 * SHA-256(NAME || 0x0A || 0x01 || 32-byte public key)[:4]; the signature
 * is Ed25519 over the body (the three lines, newlines included).
 *
 * Used by vigil-cp (cpaudit.c signs) and vigilctl (audit verify).
 * Library-like: 0 or -errno, with a one-line reason in err where taken;
 * never logs.  Keys are OpenSSL EVP_PKEYs the caller owns.
 */
#ifndef VIGIL_CHECKPOINT_H
#define VIGIL_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "merkle.h"

#define CHECKPOINT_MAX_ORIGIN 255
#define CHECKPOINT_MAX_TEXT 4096	/* a note longer than this is refused unread */
#define CHECKPOINT_MAX_SIGS 16		/* signature lines (ours and any cosigners') */
#define CHECKPOINT_DEFAULT_ORIGIN "vigil-cp/audit-log"

struct checkpoint {
	char origin[CHECKPOINT_MAX_ORIGIN + 1];
	uint64_t size;
	uint8_t root[MERKLE_HASH_LEN];
};

/* 0 when name can be a signing key's name (and so vigil-cp's origin); -EINVAL with the reason in err. */
int checkpoint_check_name(const char *name, char *err, size_t errlen);

/* The 4-byte key id of name and an Ed25519 key (public or private); -EINVAL for another kind of key. */
int checkpoint_key_id(const char *name, EVP_PKEY *key, uint8_t ret[4]);

/*
 * The signed note of c, signed with the Ed25519 private key under the key
 * name c->origin; *ret (malloc'ed, NUL-terminated).
 */
int checkpoint_sign(const struct checkpoint *c, EVP_PKEY *key, char **ret, size_t *ret_len);

/*
 * Parse text[0..len) strictly and check its signature by pub (Ed25519,
 * public or private) under key_name (NULL: the note's own origin).
 * 0 and *ret; -EBADMSG malformed, -EKEYREJECTED no signature line of that
 * name and key id, or one that does not verify; err says which.
 */
int checkpoint_verify(const char *text, size_t len, EVP_PKEY *pub, const char *key_name,
		      struct checkpoint *ret, char *err, size_t errlen);

/*
 * An Ed25519 key from a PEM file: a public key ("PUBLIC KEY"), or a
 * private key whose public half is then used.  opt names the option in
 * messages.  -EBADMSG not PEM, -EINVAL not Ed25519, or pemfile_read()'s errors.
 */
int checkpoint_load_key(const char *opt, const char *path, EVP_PKEY **ret, char *err, size_t errlen);

#endif
