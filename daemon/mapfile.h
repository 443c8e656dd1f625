/*
 * mapfile.h - open the file behind one executable mapping of a process.
 *
 * Runs in the monitor after start-up: uid vigil with CAP_SYS_PTRACE (to
 * resolve /proc/PID/root of other users' processes) and CAP_DAC_READ_SEARCH
 * (to open binaries whatever their mode), under the monitor's seccomp
 * filter.  The broker calls it for the collector's OPEN_FILE, with a maps
 * entry it read itself; no path from the collector reaches it.
 *
 * It deliberately does not use /proc/PID/map_files: opening those links
 * needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE, which the monitor gives up
 * (tests/unit/test_mapfile.c shows the refusal on the running kernel).
 *
 * Library-like: returns an fd or -errno and never logs.
 */
#ifndef VIGIL_MAPFILE_H
#define VIGIL_MAPFILE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

struct procmap;

/*
 * Open the file of maps entry mp of process pid, by the entry's path
 * resolved inside /proc/PID/root with RESOLVE_IN_ROOT and
 * RESOLVE_NO_SYMLINKS (maps names the file itself, so a symlink on the way
 * can only be a trap), first as O_PATH only, so that no device, FIFO or
 * automount is touched before the result is known to be the mapped file.
 *
 * Returns a new O_RDONLY|O_CLOEXEC fd (the caller closes it) and its fstat
 * in *ret_st, or:
 *   -EINVAL  a path the monitor will not resolve: not absolute, or holding
 *            a backslash (maps prints a newline as "\012" and leaves a
 *            backslash alone, so such a path may name another file)
 *   -ENOENT  the entry is "(deleted)", or nothing is at the path
 *   -ELOOP   a symbolic link on the path
 *   -ESTALE  the path leads to something other than the mapped regular
 *            file (another inode or device: replaced, or overmounted)
 *   -ESRCH   the process is gone
 *   another -errno from opening (-EACCES, -EPERM ...).
 */
int mapfile_open(uint32_t pid, const struct procmap *mp, struct stat *ret_st);

/*
 * The same in two steps, for several entries of one process: its root
 * (/proc/PID/root as O_PATH: an fd, -ESRCH or -errno), then each entry
 * resolved inside it as mapfile_open does (the same returns, but -ESRCH).
 */
int mapfile_root(uint32_t pid);
int mapfile_open_at(int root, const struct procmap *mp, struct stat *ret_st);

/* Longest .gnu_debuglink name taken (without its NUL). */
#define MAPFILE_DEBUGLINK_MAX 255

/*
 * Open the separate debug file that the file of maps entry mp names in its
 * .gnu_debuglink (`name`: a plain file name, [A-Za-z0-9._+-] only, not "."
 * or ".."), where GDB looks for it: <dir>/<name>, <dir>/.debug/<name>,
 * /usr/lib/debug<dir>/<name>, <dir> being the mapped file's directory.
 * The monitor can read any file, and the name is the collector's word,
 * not checked against the mapped file's real .gnu_debuglink (that would
 * mean parsing ELF in the monitor): so it hands out only what any user of
 * the host could read anyway, of the file's owner.  Only for a process in
 * the monitor's own mount namespace (-EACCES otherwise: in a container or
 * a PrivateTmp= service, what users of the host meet on the way is not
 * what the process sees), and every path is resolved from the monitor's
 * root, never the process's.  Each candidate is walked one
 * component at a time from "/", every directory checked searchable by
 * others before it is walked through, no symlink, "." or ".."; it is
 * taken only if it is a regular file readable by others, on no procfs,
 * sysfs or other kernel file system, other than the mapped file and owned
 * by the mapped file's owner.  /etc/shadow (0640) or a world-readable
 * file under /root (0700) are refused whatever is mapped.  Returns an
 * O_RDONLY fd, or -EINVAL (a name or mapped path refused), -ENOENT (none
 * found, or none that may be handed out), -EACCES, -ESRCH, -ESTALE (the
 * mapped file is not at its path any more), or -errno.
 */
int mapfile_open_debuglink(uint32_t pid, const struct procmap *mp, const char *name);

/* Whether name is one mapfile_open_debuglink takes (the rule above). */
bool mapfile_debuglink_name_ok(const char *name);

#endif
