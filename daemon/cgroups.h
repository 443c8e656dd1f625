/*
 * cgroups.h - name cgroup v2 ids as paths.
 *
 * The BPF program records bpf_get_current_cgroup_id(), which is the inode
 * number of the cgroup's directory in the cgroup2 filesystem.  This module
 * walks that filesystem to map ids back to paths ("/system.slice/x.service"),
 * rescanning (at most once per second) when it meets an id it does not know.
 *
 * Library-like: returns 0 or -errno, never logs.
 */
#ifndef VIGIL_CGROUPS_H
#define VIGIL_CGROUPS_H

#include <stdint.h>

struct cgroups;

/* root: the cgroup2 mount point; NULL finds it in /proc/self/mountinfo. */
int cgroups_new(const char *root, struct cgroups **ret);

/* The cgroup2 mount point in use (owned by c). */
const char *cgroups_root(const struct cgroups *c);

/*
 * Path of cgroup id relative to the mount, "/" for the root; NULL if
 * unknown even after a rescan.  Owned by c, valid until the next call.
 */
const char *cgroups_path(struct cgroups *c, uint64_t id);

/* Scan now (normally done on demand). 0 or -errno. */
int cgroups_rescan(struct cgroups *c);

/*
 * Call fn for every cgroup the last scan found (not those only remembered
 * after removal), with its path relative to the mount.  Stops at, and
 * returns, fn's first non-zero return.
 */
int cgroups_foreach_live(const struct cgroups *c,
			 int (*fn)(void *ctx, uint64_t id, const char *path), void *ctx);

/*
 * usage_usec from cpu.stat of the cgroup at path (relative to the mount,
 * "/" for the root): its own and its descendants' CPU time.  0 or -errno.
 */
int cgroups_usage_usec(const struct cgroups *c, const char *path, uint64_t *ret_usec);

void cgroups_free(struct cgroups *c);

/* The cgroup2 mount point from mountinfo text; 0 or -ENOENT. */
int cgroups_find_mount(const char *mountinfo, char *ret_path, size_t len);

#endif
