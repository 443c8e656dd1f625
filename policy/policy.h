/*
 * policy.h - the profiling policy: tenants (named sets of cgroups), the
 * sampling frequency bounds and the overhead budget of each, parsed from YAML
 * and validated; and which tenant a cgroup belongs to.
 *
 * docs/policy.md documents the file format for operators.  In short:
 *
 *   version: 1
 *   serial: 42                              # signed policies only: moves forward
 *   defaults:
 *     hz: {min: 1, max: 99, start: 49}
 *     budget: {max_overhead_percent: 1.0}
 *   tenants:
 *     - name: web
 *       cgroups: ["/sys/fs/cgroup/web*"]
 *       hz: {max: 99}                       # each field overrides defaults
 *       budget: {max_overhead_percent: 2.0}
 *
 * Parsing untrusted bytes is the point of this module, so every size has a
 * limit (POLICY_MAX_*), YAML aliases, anchors and tags are refused, and all
 * problems found are reported, not only the first, each as
 * "FILE:LINE:COLUMN: what is wrong" (1-based, from libyaml's marks).
 *
 * Library-like: returns 0 or -errno, never logs, never exits.
 */
#ifndef VIGIL_POLICY_H
#define VIGIL_POLICY_H

#include <stddef.h>
#include <stdint.h>

#define POLICY_VERSION 1

/* Limits on what a policy may contain (docs/policy.md lists them too). */
#define POLICY_MAX_SIZE (1u << 20)	/* bytes of YAML */
#define POLICY_MAX_DEPTH 8		/* collections nested in one another */
#define POLICY_MAX_NODES 65536		/* YAML nodes (scalars and collections) */
#define POLICY_MAX_TENANTS 256		/* tenants listed, "default" not counted */
#define POLICY_MAX_CGROUPS 64		/* cgroup selectors per tenant */
#define POLICY_MAX_SELECTORS 1024	/* cgroup selectors in all */
#define POLICY_MAX_PATH 4095		/* bytes in one cgroup selector */
#define POLICY_MAX_NAME 63		/* bytes in a tenant name */

/* Budgets, in percent of the tenant's own CPU time. */
#define POLICY_MIN_OVERHEAD_PERCENT 0.001
#define POLICY_MAX_OVERHEAD_PERCENT 10.0

/* What "defaults" holds when the policy leaves a field out. */
#define POLICY_BUILTIN_HZ_MIN 1
#define POLICY_BUILTIN_HZ_MAX 99	/* lowered to max_hz if that is smaller */
#define POLICY_BUILTIN_HZ_START 49	/* lowered to hz.max if that is smaller */
#define POLICY_BUILTIN_OVERHEAD_PERCENT 1.0

/* Index of the built-in tenant that owns every cgroup no tenant selects. */
#define POLICY_DEFAULT_TENANT 0

struct policy_hz {
	unsigned min, max, start;	/* min <= start <= max <= max_hz */
};

struct policy_selector;			/* compiled cgroup selector, private */

/*
 * How a tenant's user stacks are taken (unwind:): dwarf copies the top of
 * each stack for the agent to unwind with CFI; frame-pointer never copies
 * stack memory (docs/unwinding.md).
 */
enum policy_unwind {
	POLICY_UNWIND_DWARF = 0,	/* the default */
	POLICY_UNWIND_FRAME_POINTER = 1,
};

struct policy_tenant {
	char *name;			/* "default" for tenants[0] */
	char **cgroups;			/* selectors as written; none for "default" */
	size_t n_cgroups;
	struct policy_hz hz;		/* with defaults applied field by field */
	double max_overhead;		/* budget as a fraction: 1% is 0.01 */
	enum policy_unwind unwind;	/* from the tenant, else defaults, else dwarf */
	struct policy_selector *sel;	/* private */
};

/* Highest serial a policy may have: fits a signed 64-bit integer. */
#define POLICY_MAX_SERIAL 9223372036854775807ull

/*
 * The optional export: section (issue 11): where profiles are pushed, set
 * by the control plane; each key set wins over the command line's.  The
 * files must lie under POLICY_EXPORT_DIR (the monitor reads them as root:
 * a policy may not name just any root-only file), and the URL must keep
 * the command line's port (docs/policy.md says why).
 */
#define POLICY_EXPORT_DIR "/etc/vigil/"
#define POLICY_EXPORT_PATH_MAX 255
struct policy_export {
	int set;                        /* the policy has an export: section */
	char url[1024];                 /* "" where a key is not set */
	char tenant[64];
	char basic_auth_file[POLICY_EXPORT_PATH_MAX + 1];
	char bearer_token_file[POLICY_EXPORT_PATH_MAX + 1];
	char ca[POLICY_EXPORT_PATH_MAX + 1];
	char cert[POLICY_EXPORT_PATH_MAX + 1];
	char key[POLICY_EXPORT_PATH_MAX + 1];
	uint64_t spool_max_bytes;       /* 0: not set */
};

#define POLICY_MIN_SPOOL_BYTES 4096ull
#define POLICY_MAX_SPOOL_BYTES (1ull << 40)

/* A valid policy.  Read-only for callers; owned by whoever parsed it. */
struct policy {
	unsigned version;
	uint64_t serial;		/* top-level "serial:", 0 when absent (local files) */
	size_t n_tenants;		/* >= 1: "default" plus those listed */
	struct policy_tenant *tenants;	/* tenants[0] is "default" */
	struct policy_export export;	/* .set 0: no export: section */
};

#define POLICY_MAX_ERRORS 32
#define POLICY_ERROR_LEN 512

struct policy_error {
	unsigned line, col;		/* 1-based */
	char text[POLICY_ERROR_LEN];	/* "FILE:LINE:COL: what is wrong" */
};

/*
 * The problems found in a policy, in file order.  At most POLICY_MAX_ERRORS
 * are kept; n_dropped counts the others (say "and N more" when non-zero).
 */
struct policy_errors {
	size_t n, n_dropped;
	struct policy_error e[POLICY_MAX_ERRORS];
};

/*
 * Parse and validate the policy in buf[0..len) (need not be NUL-terminated;
 * not a byte past len is read).  filename is used in messages only.  max_hz
 * is the highest frequency any hz field may have: the kernel's
 * perf_event_max_sample_rate, or less.
 *
 * 0: *ret is a new policy (free with policy_free()).
 * -EBADMSG: the policy is invalid; errs (if not NULL) says why.  Too large
 *   an input is reported this way too.
 * -EINVAL: bad arguments (max_hz 0, NULL buf or ret).  -ENOMEM.
 * errs is cleared first in every case.
 */
int policy_parse(const char *buf, size_t len, const char *filename, unsigned max_hz,
		 struct policy **ret, struct policy_errors *errs);

/*
 * policy_parse() on the contents of a file, which must be a regular file of
 * at most POLICY_MAX_SIZE bytes (opened O_CLOEXEC; path is also the name in
 * messages).  Same returns, plus -errno from open and read (-ENOENT,
 * -EACCES, -EISDIR...).
 */
int policy_load_file(const char *path, unsigned max_hz, struct policy **ret,
		     struct policy_errors *errs);

/*
 * A policy with the "default" tenant only, at hz (min = start = max = hz)
 * and a budget of POLICY_MAX_OVERHEAD_PERCENT: what vigild runs without
 * --policy.  0, -EINVAL (hz 0), -ENOMEM.
 */
int policy_new_default(unsigned hz, struct policy **ret);

void policy_free(struct policy *p);

/*
 * The tenant that cgroup_path belongs to: an index into p->tenants.
 *
 * cgroup_path is the absolute path of a cgroup directory, written as the
 * selectors are (e.g. "/sys/fs/cgroup/web1/app").  A selector of k
 * components selects a cgroup whose first k components match it, component
 * by component, with fnmatch(3) (FNM_NOESCAPE): the cgroup it names and all
 * its descendants.  Validation guarantees at most one tenant selects any
 * cgroup; a cgroup that none selects (or a path that is not absolute or has
 * a component longer than 255 bytes) belongs to POLICY_DEFAULT_TENANT.
 */
int policy_match(const struct policy *p, const char *cgroup_path);

/* Index of the tenant called name, or -ENOENT. */
int policy_find(const struct policy *p, const char *name);

#endif
