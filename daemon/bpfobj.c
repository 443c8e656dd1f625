/*
 * bpfobj.c - read, verify and identify a signed BPF object (see bpfobj.h).
 *
 * Runs in the monitor, with privileges, on files an attacker may have
 * replaced.  Both files are opened relative to one directory fd with
 * O_NOFOLLOW and read to their end into memory exactly once; from then on
 * only the in-memory bytes are used.  The signature is checked before the
 * object is parsed at all: OpenSSL only hashes the object bytes, and libelf
 * only ever sees bytes a trusted signer vouched for.  libelf works on a
 * private copy, so that nothing it might rewrite in place can reach the
 * buffer that is loaded.
 */
#include "bpfobj.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "signing.h"

static void __attribute__((format(printf, 3, 4))) fmt(char *buf, size_t len, const char *f, ...)
{
	va_list ap;

	if (!buf || !len)
		return;
	va_start(ap, f);
	vsnprintf(buf, len, f, ap);
	va_end(ap);
}

static bool name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n >= VIGIL_OBJ_NAME_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* The name an object claims, if it is printable; for messages. */
static const char *meta_name(const struct vigil_obj_meta *m, char *buf, size_t len)
{
	size_t n = strnlen(m->name, sizeof(m->name));

	for (size_t i = 0; i < n; i++) {
		if (m->name[i] < 0x20 || m->name[i] > 0x7e) {
			snprintf(buf, len, "(unprintable)");
			return buf;
		}
	}
	snprintf(buf, len, "%.*s", (int)n, m->name);
	return buf;
}

/*
 * The one Vigil metadata note of an ELF image, copied to *ret.  Every
 * SHT_NOTE section is searched (the name of the section does not matter,
 * as for a build-id); gelf_getnote checks each note against its section.
 */
static int read_meta(void *image, size_t len, struct vigil_obj_meta *ret, char *err, size_t errlen)
{
	Elf *e;
	Elf_Scn *scn = NULL;
	GElf_Ehdr eh;
	GElf_Shdr sh;
	size_t nfound = 0;
	int rc = -EKEYREJECTED;

	if (elf_version(EV_CURRENT) == EV_NONE) {
		fmt(err, errlen, "refused (not-bpf-object): libelf is unusable");
		return -EKEYREJECTED;
	}
	e = elf_memory(image, len);
	if (!e || elf_kind(e) != ELF_K_ELF || !gelf_getehdr(e, &eh)) {
		fmt(err, errlen, "refused (not-bpf-object): not an ELF file");
		goto out;
	}
	if (eh.e_machine != EM_BPF || eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_type != ET_REL) {
		fmt(err, errlen, "refused (not-bpf-object): not a 64-bit relocatable BPF ELF object "
				 "(e_machine %u, e_type %u)", eh.e_machine, eh.e_type);
		goto out;
	}
	while ((scn = elf_nextscn(e, scn)) != NULL) {
		Elf_Data *d;
		GElf_Nhdr nh;
		size_t off = 0, next, name_off, desc_off;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf)
			continue;
		while ((next = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
			const char *owner = (const char *)d->d_buf + name_off;

			off = next;
			if (nh.n_type != VIGIL_NOTE_OBJ_META || nh.n_namesz != sizeof(VIGIL_NOTE_NAME) ||
			    memcmp(owner, VIGIL_NOTE_NAME, sizeof(VIGIL_NOTE_NAME)) != 0)
				continue;
			if (nh.n_descsz != sizeof(struct vigil_obj_meta)) {
				fmt(err, errlen, "refused (no-metadata): the Vigil note is %u bytes, not %zu",
				    (unsigned)nh.n_descsz, sizeof(struct vigil_obj_meta));
				goto out;
			}
			if (nfound++ == 0)
				memcpy(ret, (const char *)d->d_buf + desc_off, sizeof(*ret));
		}
	}
	if (nfound == 0) {
		fmt(err, errlen, "refused (no-metadata): no Vigil note (" VIGIL_NOTE_SECTION "): the "
				 "object does not say what it is");
		goto out;
	}
	if (nfound > 1) {
		fmt(err, errlen, "refused (no-metadata): %zu Vigil notes; an object has one identity",
		    nfound);
		goto out;
	}
	rc = 0;
out:
	elf_end(e);
	return rc;
}

int bpfobj_check_meta(const void *buf, size_t len, const char *name, uint32_t min_version,
		      struct vigil_obj_meta *ret_meta, char *err, size_t errlen)
{
	struct vigil_obj_meta m;
	char claimed[VIGIL_OBJ_NAME_LEN + 16];
	void *copy;
	int rc;

	if (!len) {
		fmt(err, errlen, "refused (empty-object): the object is empty");
		return -EKEYREJECTED;
	}
	copy = malloc(len);
	if (!copy) {
		fmt(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(copy, buf, len);
	rc = read_meta(copy, len, &m, err, errlen);
	free(copy);
	if (rc)
		return rc;

	if (memcmp(m.magic, VIGIL_OBJ_MAGIC, sizeof(m.magic)) != 0) {
		fmt(err, errlen, "refused (no-metadata): the Vigil note has a bad magic");
		return -EKEYREJECTED;
	}
	if (strnlen(m.name, sizeof(m.name)) == sizeof(m.name)) {
		fmt(err, errlen, "refused (wrong-name): the object's name is not NUL-terminated");
		return -EKEYREJECTED;
	}
	if (strcmp(m.name, name) != 0) {
		fmt(err, errlen, "refused (wrong-name): the object says it is \"%s\", not \"%s\": a "
				 "signed object may only be loaded as what it was built for",
		    meta_name(&m, claimed, sizeof(claimed)), name);
		return -EKEYREJECTED;
	}
	if (m.obj_version < min_version) {
		fmt(err, errlen, "refused (old-version): object version %u is older than %u, the oldest "
				 "this vigild accepts (rollback refused)", m.obj_version, min_version);
		return -EKEYREJECTED;
	}
	if (m.abi_version != VIGIL_ABI_VERSION) {
		fmt(err, errlen, "refused (abi-mismatch): built for ABI version %u, this vigild speaks "
				 "version %u", m.abi_version, VIGIL_ABI_VERSION);
		return -EKEYREJECTED;
	}
	*ret_meta = m;
	return 0;
}

/* A read error as a message; refusals (symlink, not regular, too large) as -EKEYREJECTED. */
static int read_error(int rc, const char *what, size_t max, char *err, size_t errlen)
{
	switch (rc) {
	case -ELOOP:
		fmt(err, errlen, "refused (not-regular-file): %s is a symbolic link; only regular files "
				 "are loaded", what);
		return -EKEYREJECTED;
	case -EINVAL:
		fmt(err, errlen, "refused (not-regular-file): %s is not a regular file", what);
		return -EKEYREJECTED;
	case -EFBIG:
		fmt(err, errlen, "refused (too-large): %s is larger than %zu bytes", what, max);
		return -EKEYREJECTED;
	case -ENOMEM:
		fmt(err, errlen, "out of memory reading %s", what);
		return rc;
	default:
		fmt(err, errlen, "cannot read %s: %s", what, strerror(-rc));
		return rc;
	}
}

int bpfobj_read_verified(const char *dir, const char *name, uint32_t min_version,
			 const struct signing_trust *trust, struct bpfobj **ret_obj, char *err,
			 size_t errlen)
{
	struct bpfobj *o = NULL;
	char file[VIGIL_OBJ_NAME_LEN + 16], sigfile[VIGIL_OBJ_NAME_LEN + 16], msg[1024];
	void *sig = NULL;
	size_t sig_len = 0;
	enum signing_status st;
	int dirfd, rc;

	if (!name_ok(name)) {
		fmt(err, errlen, "BPF object name \"%s\" is not 1 to %d of [A-Za-z0-9_-]",
		    name ? name : "(null)", VIGIL_OBJ_NAME_LEN - 1);
		return -EINVAL;
	}
	snprintf(file, sizeof(file), "%s.bpf.o", name);
	snprintf(sigfile, sizeof(sigfile), "%s.bpf.o.sig", name);
	o = calloc(1, sizeof(*o));
	if (!o) {
		fmt(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if ((size_t)snprintf(o->path, sizeof(o->path), "%s/%s", dir, file) >= sizeof(o->path)) {
		fmt(err, errlen, "%s: directory name too long", dir);
		rc = -ENAMETOOLONG;
		goto fail;
	}

	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		rc = -errno;
		fmt(err, errlen, "%s: %s", dir, strerror(-rc));
		goto fail;
	}
	rc = signing_read_file(dirfd, file, BPFOBJ_MAX_BYTES, true, &o->buf, &o->len);
	if (rc == -ENOENT) {
		fmt(err, errlen, "%s: no such file (run make, or point --bpf-dir at the objects)", o->path);
		close(dirfd);
		goto fail;
	}
	if (rc) {
		rc = read_error(rc, "the object", BPFOBJ_MAX_BYTES, msg, sizeof(msg));
		fmt(err, errlen, "%s: %s", o->path, msg);
		close(dirfd);
		goto fail;
	}
	if (o->len == 0) {
		fmt(err, errlen, "%s: refused (empty-object): the file is empty", o->path);
		rc = -EKEYREJECTED;
		close(dirfd);
		goto fail;
	}
	rc = signing_read_file(dirfd, sigfile, SIGNING_MAX_SIG_BYTES, true, &sig, &sig_len);
	close(dirfd);
	if (rc == -ENOENT) {
		fmt(err, errlen, "%s: refused (%s): %s.sig does not exist; sign the object (vigil-sign "
				 "sign)", o->path, signing_status_name(SIGNING_ERR_NO_SIG), o->path);
		rc = -EKEYREJECTED;
		goto fail;
	}
	if (rc == -EFBIG) {
		fmt(err, errlen, "%s: refused (%s): %s.sig is larger than %u bytes", o->path,
		    signing_status_name(SIGNING_ERR_MALFORMED_SIG), o->path, SIGNING_MAX_SIG_BYTES);
		rc = -EKEYREJECTED;
		goto fail;
	}
	if (rc) {
		char what[BPFOBJ_PATH_MAX + 16];

		snprintf(what, sizeof(what), "%s.sig", o->path);
		rc = read_error(rc, what, SIGNING_MAX_SIG_BYTES, msg, sizeof(msg));
		fmt(err, errlen, "%s: %s", o->path, msg);
		goto fail;
	}

	st = signing_verify(trust, o->buf, o->len, sig, sig_len, msg, sizeof(msg));
	free(sig);
	sig = NULL;
	if (st != SIGNING_OK) {
		fmt(err, errlen, "%s: refused (%s): %s", o->path, signing_status_name(st), msg);
		rc = st == SIGNING_ERR_INTERNAL ? -ENOMEM : -EKEYREJECTED;
		goto fail;
	}
	snprintf(o->signer, sizeof(o->signer), "%s", msg);

	rc = bpfobj_check_meta(o->buf, o->len, name, min_version, &o->meta, msg, sizeof(msg));
	if (rc) {
		fmt(err, errlen, "%s: %s", o->path, msg);
		goto fail;
	}
	*ret_obj = o;
	return 0;

fail:
	free(sig);
	bpfobj_free(o);
	return rc;
}

void bpfobj_free(struct bpfobj *obj)
{
	if (!obj)
		return;
	free(obj->buf);
	free(obj);
}
