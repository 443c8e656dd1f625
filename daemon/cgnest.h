/*
 * cgnest.h - which cgroups may carry a tenant's own perf events.
 *
 * Runs in the monitor (user vigil, CAP_PERFMON), which decides; the
 * collector only asks.  A cpu-clock event opened on a cgroup
 * (PERF_FLAG_PID_CGROUP) fires for the tasks of that cgroup and of all its
 * descendants, and the system-wide default events leave a task to its
 * tenant when the BPF program finds one of the task's ancestors, at levels
 * 1 to VIGIL_MAX_CGROUP_DEPTH, in map tenant_cg (bpf/profile.bpf.c).  So
 * that no task is ever sampled by two events at once:
 *
 *   - the root of the hierarchy (level 0) is never a tenant cgroup: its
 *     events would fire for every task, on top of the default events;
 *   - a tenant cgroup sits at a level from 1 to VIGIL_MAX_CGROUP_DEPTH,
 *     where the BPF program looks; deeper, the default events would not
 *     see it and would sample its tasks a second time;
 *   - no tenant cgroup is nested in, or around, another attached one.
 *
 * Levels are those of the whole hierarchy, as the BPF program sees them.
 * A cgroup2 mount that shows only part of the hierarchy (a cgroup
 * namespace, a bind mount of a subtree) cannot tell them: its cgroups are
 * refused (-EXDEV) rather than guessed at.
 *
 * Library-like: returns 0 or -errno and never logs.
 */
#ifndef VIGIL_CGNEST_H
#define VIGIL_CGNEST_H

#include <stddef.h>
#include <stdint.h>

#include "vigil_abi.h"

/* The kernfs id (inode number) of the root of every cgroup2 hierarchy. */
#define CGNEST_ROOT_ID 1

struct cgnest_node {
	uint64_t id;                          /* its cgroup id (inode number) */
	unsigned level;                       /* 1 .. VIGIL_MAX_CGROUP_DEPTH */
	uint64_t anc[VIGIL_MAX_CGROUP_DEPTH]; /* ancestors' ids, parent first, root excluded */
	unsigned nanc;                        /* level - 1 */
};

/*
 * Describe the cgroup directory cgroup_fd (borrowed) by walking up its
 * "..".  Returns 0 and *ret; -EINVAL for the root of the hierarchy;
 * -E2BIG when it is deeper than VIGIL_MAX_CGROUP_DEPTH; -EXDEV when the
 * mount's top is not the root of the hierarchy; other -errno from the
 * file system.
 */
int cgnest_describe(int cgroup_fd, struct cgnest_node *ret);

/*
 * May c be attached beside the n cgroups of attached[]?  0, or -EEXIST
 * when c is one of them, or nested in or around one of them.
 */
int cgnest_check(const struct cgnest_node *attached, size_t n, const struct cgnest_node *c);

#endif
