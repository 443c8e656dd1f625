/*
 * cgnest.c - which cgroups may carry a tenant's own perf events (see
 * cgnest.h).  Runs in the monitor.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgnest.h"

int cgnest_describe(int cgroup_fd, struct cgnest_node *ret)
{
	/* Ancestors up to the top of the mount, root included, nearest first. */
	uint64_t up[VIGIL_MAX_CGROUP_DEPTH + 1];
	struct cgnest_node n = { 0 };
	unsigned depth = 0;
	struct stat st, pst;
	int fd, rc = 0;

	fd = fcntl(cgroup_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	n.id = st.st_ino;
	for (;;) {
		int parent = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (parent < 0) {
			rc = -errno;
			goto out;
		}
		if (fstat(parent, &pst) < 0) {
			rc = -errno;
			close(parent);
			goto out;
		}
		/* The top of the mount: ".." leaves the file system, or is itself. */
		if (pst.st_dev != st.st_dev || pst.st_ino == st.st_ino) {
			close(parent);
			break;
		}
		if (depth == VIGIL_MAX_CGROUP_DEPTH) {
			close(parent);
			rc = -E2BIG;
			goto out;
		}
		up[depth++] = pst.st_ino;
		close(fd);
		fd = parent;
		st = pst;
	}
	/* st is the top of the mount: it must be the hierarchy's root. */
	if (st.st_ino != CGNEST_ROOT_ID) {
		rc = -EXDEV;
		goto out;
	}
	if (depth == 0) {
		rc = -EINVAL; /* the root itself */
		goto out;
	}
	n.level = depth;
	n.nanc = depth - 1;
	for (unsigned i = 0; i < n.nanc; i++)
		n.anc[i] = up[i];
	*ret = n;
out:
	close(fd);
	return rc;
}

static bool is_ancestor(const struct cgnest_node *a, uint64_t id)
{
	for (unsigned i = 0; i < a->nanc; i++)
		if (a->anc[i] == id)
			return true;
	return false;
}

int cgnest_check(const struct cgnest_node *attached, size_t n, const struct cgnest_node *c)
{
	for (size_t i = 0; i < n; i++)
		if (attached[i].id == c->id || is_ancestor(c, attached[i].id) ||
		    is_ancestor(&attached[i], c->id))
			return -EEXIST;
	return 0;
}
