/*
 * spoofer - maps a file R+X, as any user may map any file they can read,
 * and burns CPU in spoofer_spin() so that a profiler looks at it.  With
 * the file tests/tools/fakebid makes, it is the build-id spoofing attack
 * of tests/integration/hostile_buildid.sh.
 *
 * Usage: spoofer --file PATH [--seconds S]   (PATH as the first argument)
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vwl.h"

#define CHECK_EVERY 32768

void spoofer_spin(long long end_ns);

void spoofer_spin(long long end_ns)
{
	do {
		for (volatile long i = 0; i < CHECK_EVERY; i++)
			;
	} while (vwl_mono_ns() < end_ns);
}

int main(int argc, char **argv)
{
	static const char *const known[] = {"--seconds", NULL};
	double seconds;
	struct stat st;
	int fd;

	if (argc < 3 || strcmp(argv[1], "--file") != 0) {
		fprintf(stderr, "usage: spoofer --file PATH [--seconds S]\n");
		return 64;
	}
	seconds = vwl_arg(argc - 2, argv + 2, known, "--seconds", 10, 0.01, 86400);
	fd = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 ||
	    mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) == MAP_FAILED) {
		perror(argv[2]);
		return 1;
	}
	close(fd);
	spoofer_spin(vwl_mono_ns() + (long long)(seconds * 1e9));
	return 0;
}
