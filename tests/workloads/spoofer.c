/*
 * spoofer - maps files R+X, as any user may map any file they can read,
 * and burns CPU in spoofer_spin() so that a profiler looks at it; with
 * --fork-every, forks a child every so often (another process mapping the
 * same files, for the profiler to look at) that burns 0.3 s and exits.
 * The two halves of the build-id spoofing attack of
 * tests/integration/hostile_buildid.sh, with the files tests/tools/fakebid
 * makes:
 *
 *   spoofer file PATH ...   maps PATH (the forged file) whole
 *   spoofer flood DIR ...   maps the first page of every file in DIR (files
 *                           slow to parse: they spend the collector's
 *                           parse-time credit, so that the next new file
 *                           it meets is deferred)
 *
 * Usage: spoofer file|flood PATH [--seconds S] [--fork-every S]
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

static int map_file(int dirfd, const char *path, int whole)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    mmap(NULL, whole ? (size_t)st.st_size : 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) ==
		    MAP_FAILED) {
		perror(path);
		return -1;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	static const char *const known[] = {"--seconds", "--fork-every", NULL};
	double seconds, every;
	long long end, next, now;

	if (argc < 3 || (strcmp(argv[1], "file") != 0 && strcmp(argv[1], "flood") != 0)) {
		fprintf(stderr, "usage: spoofer file|flood PATH [--seconds S] [--fork-every S]\n");
		return 64;
	}
	seconds = vwl_arg(argc - 2, argv + 2, known, "--seconds", 10, 0.01, 86400);
	every = vwl_arg(argc - 2, argv + 2, known, "--fork-every", 0, 0, 86400);
	if (strcmp(argv[1], "file") == 0) {
		if (map_file(AT_FDCWD, argv[2], 1) < 0)
			return 1;
	} else {
		DIR *d = opendir(argv[2]);
		struct dirent *de;

		if (!d) {
			perror(argv[2]);
			return 1;
		}
		while ((de = readdir(d)))
			if (de->d_name[0] != '.' && map_file(dirfd(d), de->d_name, 0) < 0)
				return 1;
		closedir(d);
	}
	end = vwl_mono_ns() + (long long)(seconds * 1e9);
	next = every > 0 ? vwl_mono_ns() + (long long)(every * 1e9) : end;
	while ((now = vwl_mono_ns()) < end) {
		if (now >= next) {
			if (fork() == 0) {
				spoofer_spin(vwl_mono_ns() + 300000000LL);
				_exit(0);
			}
			next += (long long)(every * 1e9);
		}
		spoofer_spin(now + 10000000LL < next ? now + 10000000LL : next);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
	while (wait(NULL) > 0)
		;
	return 0;
}
