/*
 * fdcount.h - open_fd_count(): the entries of /proc/self/fd, for tests
 * that show a path closes every fd it was given or opened.  (The count
 * includes the directory's own fd and "." and "..": compare two counts.)
 *
 * Header-only, for the unit tests.
 */
#ifndef VIGIL_TEST_FDCOUNT_H
#define VIGIL_TEST_FDCOUNT_H

#include <dirent.h>

static inline int open_fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

#endif
