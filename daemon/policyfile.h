/*
 * policyfile.h - open the policy file (--policy) for the collector, which
 * parses it without privileges.
 *
 * Runs in the monitor: at start-up as root, and on SIGHUP as the dropped
 * monitor (uid vigil, CAP_DAC_READ_SEARCH among its capabilities, under
 * its seccomp filter).  Whatever file the monitor opens here, the
 * collector can read; so, as sshd and sudo do with their configuration,
 * it follows no symbolic link and takes only a regular file that root
 * owns and that neither group nor others may write, in directories that
 * root owns and only root may change (sticky ones, like /tmp, excepted:
 * there others cannot rename root's entries).
 *
 * Library-like: returns 0 or -errno and never logs; on failure it leaves a
 * one-line reason, naming the path at fault and the fix, in why.
 */
#ifndef VIGIL_POLICYFILE_H
#define VIGIL_POLICYFILE_H

#include <stddef.h>

/*
 * Resolve path with no symbolic link on the way (openat2 with
 * RESOLVE_NO_SYMLINKS), as O_PATH first so that nothing but a regular file
 * is ever opened for real (a FIFO or a device is not touched), check the
 * file, and open it read-only.
 *
 * Returns 0 and *ret_fd (O_RDONLY | O_CLOEXEC; the caller closes it), or:
 *   -ELOOP   a symbolic link on the path (why names it)
 *   -EINVAL  not a regular file
 *   -EPERM   not owned by root, or writable by group or others, or in a
 *            directory (or below one) not owned by root, or writable by
 *            group or others and not sticky
 *   -EINVAL  an empty path
 *   another -errno from resolving or opening it (-ENOENT, -EACCES ...).
 */
int policyfile_open(const char *path, int *ret_fd, char *why, size_t why_len);

#endif
