/*
 * fds.c - helpers for arrays of file descriptors (see fds.h).
 */
#include <unistd.h>

#include "fds.h"

void fds_close(const int *fds, size_t n)
{
	for (size_t i = 0; fds && i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}
