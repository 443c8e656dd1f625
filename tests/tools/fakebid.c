/*
 * fakebid - make the file of the build-id spoofing attack that
 * tests/integration/hostile_buildid.sh runs: a small ELF file that claims
 * another file's build-id.
 *
 *   fakebid LIB OUT NAME
 *   fakebid --slow DIR N
 *
 * OUT gets LIB's NT_GNU_BUILD_ID, one R+X PT_LOAD over all of it, and one
 * function NAME covering it all, from offset 0x40 on; its headers take a
 * few hundred bytes and it is extended, sparse, to LIB's size, so that
 * every file offset of LIB falls in NAME.  Any user can write such a file
 * and map it R+X.
 *
 * --slow writes N files DIR/slow-I, each with its own build-id and a
 * .symtab of zeros, sparse, a quarter of ELFSYM_MAX_READ long: valid, and
 * slow to parse (every byte is read), for spending the collector's
 * parse-time credit.  Built with tests/unit/elfgen.h.
 *
 * Exit status: 0; 64 usage; 65 LIB has no build-id; 70 I/O.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../unit/elfgen.h"
#include "elfsym.h"

static int slow(const char *dir, int n)
{
	struct elfgen g = { .nsym = 10 };
	uint64_t hole, len = ELFSYM_MAX_READ / 4 / 24 * 24;
	struct elfimg m;
	char path[4096];

	if (!elfgen_build(&g, &m))
		return 70;
	hole = (m.len + 4095) & ~(uint64_t)4095;
	ELFGEN_SET(&m, elfgen_sh(&m, ELFGEN_SYMTAB), Shdr, sh_offset, hole);
	ELFGEN_SET(&m, elfgen_sh(&m, ELFGEN_SYMTAB), Shdr, sh_size, len);
	for (int i = 0; i < n; i++) {
		int fd;

		elfgen_put(&m, m.note_off + 16, 4, (uint64_t)i);
		snprintf(path, sizeof(path), "%s/slow-%d", dir, i);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || pwrite(fd, m.buf, m.len, 0) != (ssize_t)m.len ||
		    ftruncate(fd, (off_t)(hole + len)) < 0 || close(fd) < 0) {
			fprintf(stderr, "fakebid: %s: %s\n", path, strerror(errno));
			return 70;
		}
	}
	free(m.buf);
	return 0;
}

int main(int argc, char **argv)
{
	struct elfgen g = { .nsym = 1 };
	struct elfsym *e = NULL;
	const uint8_t *bid;
	struct elfimg m;
	struct stat st;
	size_t len = 0;
	int fd, rc;

	if (argc == 4 && strcmp(argv[1], "--slow") == 0 && atoi(argv[3]) > 0)
		return slow(argv[2], atoi(argv[3]));
	if (argc != 4 || strlen(argv[3]) < 8) {
		fprintf(stderr, "usage: fakebid LIB OUT NAME (NAME of 8 characters or more)\n"
				"       fakebid --slow DIR N\n");
		return 64;
	}
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "fakebid: %s: %s\n", argv[1], strerror(errno));
		return 70;
	}
	rc = elfsym_open_fd(fd, &e);
	close(fd);
	bid = rc == 0 ? elfsym_build_id(e, &len) : NULL;
	if (!bid || len != 20) {
		fprintf(stderr, "fakebid: %s: no 20-byte build-id (%d)\n", argv[1], rc);
		return 65;
	}
	g.name_len = strlen(argv[3]);
	if (!elfgen_build(&g, &m))
		return 70;
	memcpy(m.buf + m.strtab_off + 1, argv[3], g.name_len);
	memcpy(m.buf + m.note_off + 16, bid, 20);
	ELFGEN_SET(&m, m.symtab_off + m.symentsize, Sym, st_value, 0x40);
	ELFGEN_SET(&m, m.symtab_off + m.symentsize, Sym, st_size, (uint64_t)st.st_size - 0x40);
	ELFGEN_SET(&m, m.phoff, Phdr, p_filesz, (uint64_t)st.st_size);
	ELFGEN_SET(&m, m.phoff, Phdr, p_memsz, (uint64_t)st.st_size);
	elfsym_free(e);
	fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || pwrite(fd, m.buf, m.len, 0) != (ssize_t)m.len ||
	    ftruncate(fd, st.st_size) < 0 || close(fd) < 0) {
		fprintf(stderr, "fakebid: %s: %s\n", argv[2], strerror(errno));
		return 70;
	}
	free(m.buf);
	return 0;
}
