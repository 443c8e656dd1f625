/*
 * statedir.h - what vigild keeps in its state directory (--state-dir):
 *   policy.signed   the last-known-good signed policy: a one-line header
 *                   "vigil-policy 1 YAMLLEN SIGLEN\n", then policy.yaml,
 *                   then its DER signature, in one file so that one
 *                   rename replaces both at once
 *   instance-uid    this agent's OpAMP instance_uid, a UUID v7 made once
 *   identity.pem    the agent's certificate (and chain) then its private key,
 *                   renewed through OpAMP's CSR flow (0600, in one file so
 *                   that one rename replaces both); the monitor prefers it
 *                   at start to --cert/--key when it is newer (cpconfig.h)
 *
 * Runs in the collector, which holds only an fd of the directory (every
 * name is relative to it) and may write nowhere else (Landlock).  Files
 * are written as a temporary of our own (O_EXCL, O_NOFOLLOW), synced, and
 * renamed into place; they are read without following symlinks and only
 * if regular.  Whatever is read back is verified again by the caller.
 *
 * Library-like: 0 or -errno, never logs.
 */
#ifndef VIGIL_STATEDIR_H
#define VIGIL_STATEDIR_H

#include <stddef.h>
#include <stdint.h>

#define STATEDIR_POLICY "policy.signed"
#define STATEDIR_UID "instance-uid"
#define STATEDIR_IDENTITY "identity.pem"

/* Replace identity.pem with cert then key (PEM).  0 or -errno (nothing changed then). */
int statedir_save_identity(int dirfd, const void *cert, size_t cert_len, const void *key, size_t key_len);

/* Replace policy.signed with yaml + sig.  0 or -errno (nothing changed then). */
int statedir_save_policy(int dirfd, const void *yaml, size_t yaml_len, const void *sig,
			 size_t sig_len);

/*
 * Read policy.signed: *ret_buf (malloc'd, the caller frees) holds the
 * policy at *ret_yaml (yaml_len bytes) and the signature at *ret_sig.
 * -ENOENT when there is none, -EBADMSG when it is not one we wrote,
 * -EFBIG, or another -errno.
 */
int statedir_load_policy(int dirfd, void **ret_buf, const char **ret_yaml, size_t *ret_yaml_len,
			 const char **ret_sig, size_t *ret_sig_len);

/*
 * This agent's instance_uid: read from instance-uid, or made now (UUID v7:
 * 48 bits of Unix milliseconds, 74 random bits) and saved.  *ret_made says
 * which.  0 or -errno.
 */
int statedir_instance_uid(int dirfd, uint8_t ret_uid[16], int *ret_made);

/* A UUID v7 for the time ms (Unix milliseconds).  0 or -errno (getrandom). */
int statedir_uuid_v7(uint64_t ms, uint8_t ret_uid[16]);

/* Format as 8-4-4-4-12 lower-case hex (37 bytes with the NUL). */
void statedir_uuid_format(const uint8_t uid[16], char out[37]);

#endif
