/*
 * outdir.h - the directory vigild writes profiles to (--output), opened
 * for the collector, and created if missing, without following any
 * symbolic link.
 *
 * Runs in the monitor during start-up, as root.  The collector writes as
 * the unprivileged user, so the directory must let that user write.  The
 * only directory vigild hands to that user (chown) is one it has just
 * created itself: an existing directory is never chowned, whoever owns it
 * and whatever it holds, so that a path another user can influence (a
 * symlink planted in /tmp, say) cannot make vigild give away a directory.
 *
 * Library-like: returns 0 or -errno and never logs; on failure it leaves a
 * one-line reason, naming the path at fault and the fix, in why.
 */
#ifndef VIGIL_OUTDIR_H
#define VIGIL_OUTDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Open path (absolute, or relative to the working directory) as a
 * directory, component by component, refusing any symbolic link on the
 * way (openat2 with RESOLVE_NO_SYMLINKS, one component at a time).  Missing
 * components are created: the ones above as root-owned 0755 directories,
 * the last one as 0700 and then, once opened and checked to be the
 * directory just made, handed to uid:gid with mode 0750.
 *
 * The last directory is created only in a parent that no one but root
 * may rename entries in (owned by root; not writable by group or others,
 * or sticky), and handed over only if, once opened, it is root's, 0700
 * and empty.  An existing last directory is used as it is if root or uid
 * owns it, no one but uid (and its group gid) may write it, and uid:gid
 * may write and search it (its owner, group or other permission bits, as
 * the kernel picks them); otherwise it is refused: profiles hold every
 * process's stacks.  user names uid in messages.
 *
 * Returns 0, *ret_fd (O_RDONLY | O_DIRECTORY | O_CLOEXEC; the caller
 * closes it) and *ret_created (whether vigild created and handed over the
 * last directory), or:
 *   -ELOOP     a component is a symbolic link
 *   -ENOTDIR   a component is not a directory
 *   -EACCES    an existing directory the user cannot write, or that
 *              another user owns or may write; a parent others could
 *              rename entries in
 *   -EINVAL    an empty path
 *   -ENAMETOOLONG, or the -errno of a mkdir, open or chown that failed.
 */
int outdir_open(const char *path, uid_t uid, gid_t gid, const char *user, int *ret_fd,
		bool *ret_created, char *why, size_t why_len);

#endif
