/*
 * bpfobj.h - read a BPF object and its detached signature once, verify
 * them, and check the identity the object carries, before anything is
 * loaded into the kernel.
 *
 * Runs in the monitor (privileged).  The bytes returned are the bytes that
 * were verified: load them with bpf_object__open_mem() and never re-open
 * the file.  What is checked, in order:
 *   1. DIR/NAME.bpf.o is a regular file (not a symlink), 1 byte to 16 MiB;
 *   2. DIR/NAME.bpf.o.sig likewise (up to SIGNING_MAX_SIG_BYTES);
 *   3. the signature, against the trust store (signing_verify: digest,
 *      chain, validity, CRL, codeSigning EKU);
 *   4. only then, libelf parses the (now trusted) bytes: exactly one
 *      Vigil ELF note (section .note.vigil, see vigil_abi.h) holding a
 *      struct vigil_obj_meta whose magic is right, whose name is NAME,
 *      whose obj_version is at least min_version (no rollback) and whose
 *      abi_version is this build's VIGIL_ABI_VERSION.
 *
 * Library-like: never logs.  On failure err holds one line that names the
 * file and the reason, "DIR/NAME.bpf.o: refused (TOKEN): detail", where
 * TOKEN is a signing_status_name() ("digest-mismatch", "expired", ...) or
 * one of "not-regular-file", "too-large", "not-bpf-object", "no-metadata",
 * "wrong-name", "abi-mismatch", "old-version".
 */
#ifndef VIGIL_BPFOBJ_H
#define VIGIL_BPFOBJ_H

#include <stddef.h>
#include <stdint.h>

#include "vigil_abi.h"

struct signing_trust;

#define BPFOBJ_MAX_BYTES (16u << 20)
#define BPFOBJ_PATH_MAX 4096

struct bpfobj {
	void *buf;                   /* the verified object: for bpf_object__open_mem() */
	size_t len;
	char path[BPFOBJ_PATH_MAX];  /* "DIR/NAME.bpf.o", for messages */
	struct vigil_obj_meta meta;  /* its identity note (name NUL-terminated) */
	char signer[1024];           /* "signed by CN=..., serial ..., issuer ..., valid until ..." */
};

/*
 * Read, verify and identify DIR/NAME.bpf.o with DIR/NAME.bpf.o.sig.
 * name: [A-Za-z0-9_-], 1 to 31 characters (it is also the file name).
 * min_version: the lowest obj_version accepted (VIGIL_PROFILE_OBJ_VERSION
 * for "profile"): an older object, even properly signed, is refused.
 * Returns 0 and *ret_obj (owned by the caller: bpfobj_free), or:
 *   -EKEYREJECTED  refused: any check above failed (signature missing or
 *                  bad, certificate, identity, version, empty, symlink...)
 *   -ENOENT        DIR or DIR/NAME.bpf.o does not exist
 *   -EINVAL        name is not acceptable
 *   -ENOMEM
 *   other -errno   the object or signature could not be read (-EACCES, -EIO)
 * with the reason in err.
 */
int bpfobj_read_verified(const char *dir, const char *name, uint32_t min_version,
			 const struct signing_trust *trust, struct bpfobj **ret_obj, char *err,
			 size_t errlen);

/*
 * Step 4 alone, on bytes in memory: find and check the Vigil note.  Returns 0
 * and *ret_meta, or -EKEYREJECTED / -ENOMEM with "refused (TOKEN): detail"
 * (no file name) in err.
 */
int bpfobj_check_meta(const void *buf, size_t len, const char *name, uint32_t min_version,
		      struct vigil_obj_meta *ret_meta, char *err, size_t errlen);

/* Frees the buffer too; accepts NULL. */
void bpfobj_free(struct bpfobj *obj);

#endif
