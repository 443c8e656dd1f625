/*
 * sandbox.h - how each vigild process gives up privilege.
 *
 * Used by the monitor (for itself after start-up, and for each worker in
 * the child between fork and exec) and by the workers (seccomp, once their
 * set-up is done).  See docs/security.md for what each process keeps and
 * why.
 *
 * Library-like: returns 0 or -errno and never logs; the process decides.
 */
#ifndef VIGIL_SANDBOX_H
#define VIGIL_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum sandbox_role {
	SANDBOX_MONITOR,
	SANDBOX_COLLECTOR,
	SANDBOX_UPLINK,
	SANDBOX_LOADER,
	SANDBOX_UPLINK_NET, /* the uplink with a control plane to reach */
};

#define SANDBOX_USER "vigil"

/*
 * The unprivileged identity every vigild process ends up with: the user
 * "vigil", created (system user, no home, no shell) if missing.  If it
 * cannot be created, "nobody" is used and *ret_fell_back is set so that the
 * caller can warn.  -ENOENT if neither exists.  Started as another user
 * than root, only looked up: never created, no falling back.
 */
int sandbox_user(uid_t *ret_uid, gid_t *ret_gid, bool *ret_fell_back);

/*
 * Whether this process already is uid/gid: real, effective and saved ids,
 * and no supplementary group but gid (what systemd's User= gives).  vigild
 * may be started so, as user vigil with the capabilities it keeps as
 * ambient ones (docs/security.md): the functions below then change no
 * identity, so they need no CAP_SETUID or CAP_SETGID, and they leave the
 * bounding set as given unless they hold CAP_SETPCAP (sandbox.c,
 * trim_bounding, says why that loses nothing).
 */
bool sandbox_is(uid_t uid, gid_t gid);

/*
 * In a freshly forked worker, before exec: empty the capability bounding
 * set (where it can: as root or with CAP_SETPCAP), drop supplementary groups, become uid/gid (real, effective, saved),
 * clear every capability set (ambient included), set no_new_privs.  After
 * the exec the worker holds no capability in any set.  Started as root,
 * must run with CAP_SETPCAP, CAP_SETUID and CAP_SETGID; started as uid/gid
 * (sandbox_is), with none of them.
 */
int sandbox_become_worker(uid_t uid, gid_t gid);

/*
 * The monitor after start-up: become uid/gid keeping exactly the
 * capabilities in sandbox_monitor_caps (permitted and effective; nothing
 * inheritable or ambient), reduce the bounding set to them (as root; see
 * sandbox_is), and set no_new_privs and non-dumpable.
 */
int sandbox_monitor_drop(uid_t uid, gid_t gid);

/* The monitor's capabilities after start-up, and how many. */
extern const int sandbox_monitor_caps[];
extern const size_t sandbox_monitor_ncaps;

/*
 * The loader, first thing after the fork and before it reads or parses
 * anything: still the uid it started as (0, or vigil's), but only the
 * capabilities in sandbox_loader_caps (permitted, effective, and bounding
 * as root; nothing inheritable or ambient), no_new_privs and
 * non-dumpable.  Its seccomp allowlist follows (SANDBOX_LOADER).
 */
int sandbox_loader_drop(void);
extern const int sandbox_loader_caps[];
extern const size_t sandbox_loader_ncaps;

/*
 * Install the role's seccomp allowlist: any other system call kills the
 * whole process (SIGSYS).  Irreversible.  Requires no_new_privs.
 */
int sandbox_seccomp(enum sandbox_role role);

/*
 * Landlock for the collector: read-only access to /proc and /sys, and
 * writing only beneath out_dir_fd and state_dir_fd (-1: none); no TCP
 * bind or connect (Landlock ABI 4 and later).  -EOPNOTSUPP where the kernel has no Landlock (or it is not
 * among the active LSMs): the workers refuse to run then.
 */
int sandbox_landlock_collector(int out_dir_fd, int state_dir_fd);

/*
 * Landlock for the uplink: no file access at all, no TCP bind, and TCP
 * connect only to port, the control plane's (0: none at all).  TCP is
 * confined from Landlock ABI 4; before that it is not, and
 * *ret_net_confined is false.  As above.
 */
int sandbox_landlock_uplink(unsigned port, bool *ret_net_confined);
/* The same with several ports (0s are skipped): the control plane's and the export target's. */
int sandbox_landlock_uplink_ports(const unsigned *ports, size_t n, bool *ret_net_confined);

/* The kernel's Landlock ABI version, or -errno (-EOPNOTSUPP: none). */
int sandbox_landlock_abi(void);

#endif
