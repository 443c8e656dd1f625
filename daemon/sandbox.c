/*
 * sandbox.c - identities, capability sets, seccomp allowlists and Landlock
 * rules of vigild's processes (see sandbox.h and docs/security.md).
 *
 * The allowlists are data: one table per process.  Anything not listed
 * kills the process (SCMP_ACT_KILL_PROCESS), so a compromised process that
 * tries execve, ptrace, a network socket, or open() in the uplink dies with
 * SIGSYS; the kernel logs which call it was (auditlog.c), and the monitor
 * says so.
 */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/bpf.h>
#include <linux/landlock.h>
#include <linux/perf_event.h>
#include <pwd.h>
#include <seccomp.h>
#include <spawn.h>
#include <stdint.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "sandbox.h"

extern char **environ;

/*
 * The monitor after start-up, each for a reason (docs/security.md):
 *  CAP_BPF             bpf() commands on the programs, maps and links the
 *                      loader handed it: tenant maps, new links to events
 *  CAP_PERFMON         perf_event_open on every CPU and on tenant cgroups
 *                      (tenants appear at run time), and attaching BPF to it
 *  CAP_SYS_PTRACE      /proc/PID/maps and /proc/PID/root of processes of
 *                      other users (the kernel's ptrace read-access check)
 *  CAP_DAC_READ_SEARCH open binaries and libraries whatever their mode and
 *                      the mode of the directories above them
 */
const int sandbox_monitor_caps[] = { CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH };
const size_t sandbox_monitor_ncaps = sizeof(sandbox_monitor_caps) / sizeof(sandbox_monitor_caps[0]);

/*
 * The loader, which stays uid 0 for its short life:
 *  CAP_BPF, CAP_PERFMON  load the program, create maps and BTF, open and
 *                        attach the cpu-clock events and the tracepoint
 *  CAP_DAC_READ_SEARCH   read the object, its signature and the trust
 *                        store whatever their mode
 * (No CAP_SYS_RESOURCE: libbpf raises RLIMIT_MEMLOCK only on kernels that
 * charge BPF memory to it, before 5.11, and the sampler needs 5.15's BPF
 * cookies anyway.)  Those of them the process was started without stay
 * off: the loader then fails where it needs one, with the kernel's error.
 */
const int sandbox_loader_caps[] = { CAP_BPF, CAP_PERFMON, CAP_DAC_READ_SEARCH };
const size_t sandbox_loader_ncaps = sizeof(sandbox_loader_caps) / sizeof(sandbox_loader_caps[0]);

static int lookup(const char *name, uid_t *ret_uid, gid_t *ret_gid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return -ENOENT;
	*ret_uid = res->pw_uid;
	*ret_gid = res->pw_gid;
	return 0;
}

/* Whether any of the real, effective or saved uids is 0. */
static bool started_as_root(void)
{
	uid_t r, e, su;

	return getresuid(&r, &e, &su) < 0 || r == 0 || e == 0 || su == 0;
}

bool sandbox_is(uid_t uid, gid_t gid)
{
	uid_t r, e, su;
	gid_t rg, eg, sg, groups[2];
	int n;

	if (getresuid(&r, &e, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return false;
	if (r != uid || e != uid || su != uid || rg != gid || eg != gid || sg != gid)
		return false;
	/*
	 * Supplementary groups: none (setpriv --clear-groups), or only gid
	 * itself, which systemd's User= gives (initgroups() lists the primary
	 * group): that grants nothing gid does not.  Any other group would
	 * reach the workers, which a root start gives none.
	 */
	n = getgroups((int)(sizeof(groups) / sizeof(groups[0])), groups);
	return n == 0 || (n == 1 && groups[0] == gid);
}

/*
 * Whether this process may and must trim its bounding set.  Root must:
 * uid 0 gains, on execve, every capability of its bounding set, and trims
 * it with CAP_SETPCAP (a root start without it fails, as it always has).
 * A process started as vigild's user (sandbox_is, e.g. systemd's User=vigil
 * with AmbientCapabilities=) has no CAP_SETPCAP and leaves the bounding set
 * as it was given (the unit's CapabilityBoundingSet=).  That loses nothing
 * a root start has: the bounding set only caps what execve() may add to
 * the permitted set, and each process here ends with a non-zero uid (no
 * root exec rule), no_new_privs (file capabilities and set-uid bits are
 * then ignored) and nothing inheritable or ambient, so no exec can give it
 * a capability; raising one with capset() needs it in the permitted set,
 * which only shrinks.  (And the seccomp allowlists refuse execve anyway.)
 * Given CAP_SETPCAP all the same, it trims as root does.
 */
static bool trim_bounding(void)
{
	cap_t now;
	cap_flag_value_t v = CAP_CLEAR;

	if (started_as_root())
		return true;
	now = cap_get_proc();
	if (!now)
		return true; /* and fail there, with the error */
	if (cap_get_flag(now, CAP_SETPCAP, CAP_EFFECTIVE, &v) < 0)
		v = CAP_SET;
	cap_free(now);
	return v == CAP_SET;
}

static int create_user(void)
{
	char *argv[] = { "useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
			 "--shell", "/usr/sbin/nologin", "--user-group", SANDBOX_USER, NULL };
	pid_t pid;
	int status;

	if (access("/usr/sbin/useradd", X_OK) < 0)
		return -ENOENT;
	if (posix_spawn(&pid, "/usr/sbin/useradd", NULL, NULL, argv, environ) != 0)
		return -errno;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

int sandbox_user(uid_t *ret_uid, gid_t *ret_gid, bool *ret_fell_back)
{
	uid_t uid;
	gid_t gid;
	int found = lookup(SANDBOX_USER, &uid, &gid);

	/*
	 * Started as another user (sandbox_is): that user is the identity,
	 * there is no useradd to run and no falling back to nobody.
	 */
	if (!started_as_root()) {
		if (found != 0)
			return found;
		*ret_fell_back = false;
		if (uid == 0 || gid == 0)
			return -EPERM;
		*ret_uid = uid;
		*ret_gid = gid;
		return 0;
	}
	if (found != 0) {
		/*
		 * Look again whatever useradd says: when two vigilds start at
		 * once on a host without the user, the second useradd fails
		 * because the first made it, and the user is there to use.
		 */
		(void)create_user();
		found = lookup(SANDBOX_USER, &uid, &gid);
	}
	if (found == 0) {
		*ret_fell_back = false;
	} else if (lookup("nobody", &uid, &gid) == 0) {
		*ret_fell_back = true;
	} else {
		return -ENOENT;
	}
	if (uid == 0 || gid == 0)
		return -EPERM; /* a "vigil" that is root would defeat the point */
	*ret_uid = uid;
	*ret_gid = gid;
	return 0;
}

static int drop_bounding_except(const int *keep, size_t nkeep)
{
	for (int c = 0; c <= CAP_LAST_CAP; c++) {
		bool kept = false;

		for (size_t i = 0; i < nkeep; i++)
			kept |= keep[i] == c;
		if (!kept && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return -errno;
	}
	return 0;
}

static int become(uid_t uid, gid_t gid)
{
	/* Already that identity (started as it): nothing to change, no CAP_SET[UG]ID. */
	if (sandbox_is(uid, gid))
		return 0;
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		return -errno;
	return 0;
}

int sandbox_become_worker(uid_t uid, gid_t gid)
{
	int rc = trim_bounding() ? drop_bounding_except(NULL, 0) : 0;

	if (rc)
		return rc;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return -errno;
	rc = become(uid, gid);
	if (rc)
		return rc;
	/*
	 * The uid change emptied permitted and effective (started as uid,
	 * there was none, and they are still full): empty every set.
	 */
	{
		cap_t none = cap_init();

		if (!none)
			return -errno;
		rc = cap_set_proc(none) < 0 ? -errno : 0;
		cap_free(none);
		if (rc)
			return rc;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

/*
 * Permitted = effective = keep[] (only_held: those of keep[] that are
 * permitted now); inheritable empty.
 */
static int set_caps(const int *keep, size_t n, bool only_held)
{
	cap_value_t v[16];
	size_t nv = 0;
	cap_t caps, now;
	int rc = 0;

	if (n > sizeof(v) / sizeof(v[0]))
		return -EINVAL;
	now = cap_get_proc();
	if (!now)
		return -errno;
	for (size_t i = 0; i < n; i++) {
		cap_flag_value_t held = CAP_CLEAR;

		if (!only_held || (cap_get_flag(now, keep[i], CAP_PERMITTED, &held) == 0 && held == CAP_SET))
			v[nv++] = keep[i];
	}
	cap_free(now);
	n = nv;
	caps = cap_init();
	if (!caps)
		return -errno;
	if (cap_set_flag(caps, CAP_PERMITTED, (int)n, v, CAP_SET) < 0 ||
	    cap_set_flag(caps, CAP_EFFECTIVE, (int)n, v, CAP_SET) < 0 || cap_set_proc(caps) < 0)
		rc = -errno;
	cap_free(caps);
	return rc;
}

int sandbox_loader_drop(void)
{
	int rc = trim_bounding() ? drop_bounding_except(sandbox_loader_caps, sandbox_loader_ncaps) : 0;

	if (rc)
		return rc;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return -errno;
	rc = set_caps(sandbox_loader_caps, sandbox_loader_ncaps, true);
	if (rc)
		return rc;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

int sandbox_monitor_drop(uid_t uid, gid_t gid)
{
	int rc;

	rc = trim_bounding() ? drop_bounding_except(sandbox_monitor_caps, sandbox_monitor_ncaps) : 0;
	if (rc)
		return rc;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return -errno;
	/* Keep the permitted set across the uid change (if any), then trim it. */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return -errno;
	rc = become(uid, gid);
	if (rc)
		return rc;
	rc = set_caps(sandbox_monitor_caps, sandbox_monitor_ncaps, false);
	if (rc)
		return rc;
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	/* No core dumps or ptrace by the (same-uid) workers. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

/* --- seccomp ------------------------------------------------------------ */

/* What every vigild process needs to live: memory, time, signals, exit. */
static const int common_syscalls[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(writev), SCMP_SYS(close),
	SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(lseek), SCMP_SYS(pread64),
	SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(mprotect), SCMP_SYS(brk),
	SCMP_SYS(madvise), SCMP_SYS(futex), SCMP_SYS(poll), SCMP_SYS(ppoll),
	SCMP_SYS(recvmsg), SCMP_SYS(sendmsg),
	SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(restart_syscall),
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
	SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getrandom), SCMP_SYS(sched_yield),
	/* glibc qsort() asks once how much memory the machine has */
	SCMP_SYS(sysinfo),
	SCMP_SYS(exit), SCMP_SYS(exit_group),
};

/* Drains the ring buffer, symbolizes from fds it is given, writes profiles. */
static const int collector_syscalls[] = {
	/* /proc/PID/stat, cgroupfs, and the output directory (Landlock narrows these) */
	SCMP_SYS(openat), SCMP_SYS(getdents64), SCMP_SYS(renameat2), SCMP_SYS(unlinkat),
	SCMP_SYS(fsync), SCMP_SYS(getppid),
	/* the policy in force, handed to the uplink (memblob.h) */
	SCMP_SYS(memfd_create),
	/* taking the ring buffer's edge-triggered wakeup (collector.c, ring_wake_fd) */
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait),
	/* whether a file's CFI may be mapped: on a local file system (cfi.c, root_only) */
	SCMP_SYS(fstatfs),
};

/*
 * The uplink with a control plane (SANDBOX_UPLINK_NET): what libcurl 7.88
 * and OpenSSL 3.0 were seen to call (strace) for HTTPS to an address the
 * monitor resolved (CURLOPT_RESOLVE: no resolver, no file), and
 * memfd_create to hand a policy to the collector.  socket() only for AF_INET and AF_INET6, and
 * socketpair() only for AF_UNIX (libcurl's multi handle makes one to wake
 * itself): see sandbox_seccomp.  Still no open: Landlock denies every file
 * and every TCP port but the control plane's.
 */
static const int uplink_net_syscalls[] = {
	SCMP_SYS(connect), SCMP_SYS(getsockopt), SCMP_SYS(setsockopt), SCMP_SYS(getsockname),
	SCMP_SYS(getpeername), SCMP_SYS(sendto), SCMP_SYS(recvfrom), SCMP_SYS(memfd_create),
};

/*
 * Both uplinks: the metrics page (metricsrv.c) accepts connections on the
 * socket the monitor bound and handed over; it has no socket() or bind()
 * of its own for that, and reads and writes with read()/write().
 */
static const int uplink_metrics_syscalls[] = {
	SCMP_SYS(accept4),
};

/*
 * The loader: reads the object, its signature and the trust store (openat
 * only read-only: see sandbox_seccomp), loads and attaches with libbpf,
 * hands its fds to the monitor, exits.
 */
static const int loader_syscalls[] = {
	SCMP_SYS(faccessat), SCMP_SYS(faccessat2), SCMP_SYS(uname), SCMP_SYS(perf_event_open),
	SCMP_SYS(getdents64), SCMP_SYS(prlimit64), SCMP_SYS(setrlimit), SCMP_SYS(getrlimit),
	SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid),
};

/* Opens processes' maps and files for the collector, signals and reaps workers. */
static const int monitor_syscalls[] = {
	SCMP_SYS(openat), SCMP_SYS(openat2), SCMP_SYS(wait4), SCMP_SYS(kill),
	SCMP_SYS(perf_event_open), SCMP_SYS(open_by_handle_at), SCMP_SYS(fstatfs),
	/* the uplink's key material, re-read on SIGHUP (memblob.h) */
	SCMP_SYS(memfd_create),
};

/*
 * systemd (issue 11): the journal's native protocol (journal.c, every
 * process, when stderr is the journal) and the notification protocol
 * (notify.c, the monitor) each use one AF_UNIX datagram socket and
 * sendmsg() to a named path; nothing else of the network.  Neither asks
 * for a larger socket buffer (an entry of vigild's fits the default one);
 * getsockopt/setsockopt stay refused with EPERM where they are not
 * allowed anyway, as when libsystemd made these calls and tried.
 * docs/security.md.
 */
static int allow_systemd_sockets(scmp_filter_ctx ctx, bool sockopts_allowed)
{
	int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 3,
				  SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)AF_UNIX),
				  SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)(SOCK_DGRAM | SOCK_CLOEXEC)),
				  SCMP_A2(SCMP_CMP_EQ, 0));

	if (!rc && !sockopts_allowed)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(getsockopt), 0);
	if (!rc && !sockopts_allowed)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setsockopt), 0);
	return rc;
}

static int add_all(scmp_filter_ctx ctx, const int *calls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i], 0);

		if (rc < 0)
			return rc;
	}
	return 0;
}

#define ADD_ALL(ctx, a) add_all(ctx, a, sizeof(a) / sizeof(a[0]))

/*
 * fcntl(): only the commands vigild and its libraries use (descriptor
 * flags, status flags, duplication, locks, memfd seals).  Not F_SETOWN,
 * F_SETOWN_EX or F_SETSIG: with O_ASYNC they make the kernel send a
 * signal of the caller's choice to a process of the caller's choice of
 * the same uid, a kill() that the filters otherwise refuse the workers.
 * Nor F_SETLEASE or F_NOTIFY, which signal too.  The command is compared
 * whole (64 bits): high bits set do not pass as an allowed command.
 */
static int allow_fcntl_cmds(scmp_filter_ctx ctx)
{
	static const int cmds[] = { F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, F_GETFL, F_SETFL,
				    F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK,
				    F_OFD_SETLKW, F_ADD_SEALS, F_GET_SEALS };

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
					  SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)cmds[i]));

		if (rc < 0)
			return rc;
	}
	return 0;
}

/* bpf(): only commands on objects the process was handed. */
static int allow_bpf_cmds(scmp_filter_ctx ctx, const int *cmds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(bpf), 1,
					  SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)cmds[i]));

		if (rc < 0)
			return rc;
	}
	return 0;
}

#define NELEM(a) (sizeof(a) / sizeof(a[0]))

/* openat() that cannot create, write or truncate anything. */
static int allow_openat_readonly(scmp_filter_ctx ctx)
{
	/* O_TMPFILE includes O_DIRECTORY's bit, which a read-only open may use. */
	const scmp_datum_t writes = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND |
				    (O_TMPFILE & ~O_DIRECTORY);

	return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
				SCMP_A2(SCMP_CMP_MASKED_EQ, writes, 0));
}

int sandbox_seccomp(enum sandbox_role role)
{
	static const int collector_bpf[] = { BPF_MAP_LOOKUP_ELEM, BPF_OBJ_GET_INFO_BY_FD };
	static const int monitor_bpf[] = { BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM,
					   BPF_MAP_DELETE_ELEM, BPF_OBJ_GET_INFO_BY_FD,
					   BPF_LINK_CREATE };
	/* What libbpf does to load and attach one object, and nothing else. */
	static const int loader_bpf[] = { BPF_PROG_LOAD, BPF_MAP_CREATE, BPF_BTF_LOAD,
					  BPF_MAP_FREEZE, BPF_MAP_UPDATE_ELEM, BPF_MAP_LOOKUP_ELEM,
					  BPF_PROG_BIND_MAP, BPF_LINK_CREATE, BPF_RAW_TRACEPOINT_OPEN,
					  BPF_OBJ_GET_INFO_BY_FD, BPF_BTF_GET_NEXT_ID,
					  BPF_BTF_GET_FD_BY_ID };
	scmp_filter_ctx ctx;
	int rc;

	ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return -ENOMEM;
	rc = ADD_ALL(ctx, common_syscalls);
	if (!rc)
		rc = allow_fcntl_cmds(ctx);
	/* isatty() on stdout: TCGETS only. */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				      SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)TCGETS));
	/* The loader stays silent once confined but for fatal errors: journal too. */
	if (!rc)
		rc = allow_systemd_sockets(ctx, role == SANDBOX_UPLINK_NET);
	switch (role) {
	case SANDBOX_COLLECTOR:
		if (!rc)
			rc = ADD_ALL(ctx, collector_syscalls);
		if (!rc)
			rc = allow_bpf_cmds(ctx, collector_bpf, NELEM(collector_bpf));
		/*
		 * mapguard.c: a SIGBUS that is not the guard's restores the default
		 * action for SIGBUS, so that the process dies of it and not of SIGSYS.
		 */
		if (!rc)
			rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(rt_sigaction), 1,
					      SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)SIGBUS));
		break;
	case SANDBOX_UPLINK:
		if (!rc)
			rc = ADD_ALL(ctx, uplink_metrics_syscalls);
		break;
	case SANDBOX_UPLINK_NET:
		if (!rc)
			rc = ADD_ALL(ctx, uplink_metrics_syscalls);
		if (!rc)
			rc = ADD_ALL(ctx, uplink_net_syscalls);
		for (int i = 0; !rc && i < 2; i++)
			rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
					      SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)(i ? AF_INET6 : AF_INET)));
		if (!rc)
			rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1,
					      SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)AF_UNIX));
		break;
	case SANDBOX_LOADER:
		if (!rc)
			rc = ADD_ALL(ctx, loader_syscalls);
		if (!rc)
			rc = allow_openat_readonly(ctx);
		if (!rc)
			rc = allow_bpf_cmds(ctx, loader_bpf, NELEM(loader_bpf));
		/* perf event ioctls (libbpf enables the events it attaches to) */
		for (unsigned long req = 0; !rc && req < 2; req++) {
			static const unsigned long reqs[] = { PERF_EVENT_IOC_ENABLE, PERF_EVENT_IOC_SET_BPF };

			rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
					      SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)reqs[req]));
		}
		break;
	case SANDBOX_MONITOR:
		if (!rc)
			rc = ADD_ALL(ctx, monitor_syscalls);
		/*
		 * Identity reads: they tell a process nothing it does not know
		 * (libsystemd's sd_notify made them when vigild used it).
		 */
		for (int i = 0; !rc && i < 4; i++) {
			static const int ids[] = { SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid),
						   SCMP_SYS(getegid) };

			rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, ids[i], 0);
		}
		if (!rc)
			rc = allow_bpf_cmds(ctx, monitor_bpf, NELEM(monitor_bpf));
		/* perf event ioctls (frequency changes, enable/disable) */
		for (unsigned long req = 0; !rc && req < 3; req++) {
			static const unsigned long reqs[] = { PERF_EVENT_IOC_PERIOD, PERF_EVENT_IOC_ENABLE,
							      PERF_EVENT_IOC_DISABLE };

			rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
					      SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)reqs[req]));
		}
		break;
	}
	if (!rc)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc;
}

/* --- Landlock ----------------------------------------------------------- */

/*
 * What this project needs of landlock.h, beyond Debian bookworm's headers
 * (Linux 6.1: ABI 2): ABI 3 truncate, ABI 4 TCP bind/connect (the ruleset
 * grows handled_access_net), ABI 5 device ioctls.  Values from the
 * kernel's include/uapi/linux/landlock.h.
 */
#define LL_ACCESS_FS_TRUNCATE (1ULL << 14)
#define LL_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#define LL_ACCESS_NET_BIND_TCP (1ULL << 0)
#define LL_ACCESS_NET_CONNECT_TCP (1ULL << 1)

struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4 */
};

static int ll_abi(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

	return v < 0 ? -errno : (int)v;
}

/*
 * A ruleset that handles every file access this kernel knows and, from
 * ABI 4, TCP bind and connect: what no rule grants is denied.
 */
static int ll_create(int abi)
{
	struct ll_ruleset_attr attr = { .handled_access_fs = (1ULL << 13) - 1 }; /* ABI 1: bits 0..12 */
	size_t size = sizeof(attr.handled_access_fs);
	int fd;

	if (abi >= 2)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		attr.handled_access_fs |= LL_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		attr.handled_access_fs |= LL_ACCESS_FS_IOCTL_DEV;
	if (abi >= 4) {
		attr.handled_access_net = LL_ACCESS_NET_BIND_TCP | LL_ACCESS_NET_CONNECT_TCP;
		size = sizeof(attr);
	}
	fd = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	return fd < 0 ? -errno : fd;
}

static int ll_allow(int ruleset, int dirfd, uint64_t access)
{
	struct landlock_path_beneath_attr pb = { .allowed_access = access, .parent_fd = dirfd };

	if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
		return -errno;
	return 0;
}

static int ll_allow_path(int ruleset, const char *path, uint64_t access)
{
	int fd = open(path, O_PATH | O_CLOEXEC | O_DIRECTORY);
	int rc;

	if (fd < 0)
		return -errno;
	rc = ll_allow(ruleset, fd, access);
	close(fd);
	return rc;
}

static int ll_restrict(int ruleset)
{
	int rc = 0;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_landlock_restrict_self, ruleset, 0) < 0)
		rc = -errno;
	close(ruleset);
	return rc;
}

int sandbox_landlock_collector(int out_dir_fd, int state_dir_fd)
{
	const uint64_t rd = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
	int abi = ll_abi(), ruleset, rc;
	uint64_t wr;

	if (abi < 1)
		return -EOPNOTSUPP;
	wr = rd | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_MAKE_REG |
	     LANDLOCK_ACCESS_FS_REMOVE_FILE | (abi >= 3 ? LL_ACCESS_FS_TRUNCATE : 0);
	ruleset = ll_create(abi);
	if (ruleset < 0)
		return ruleset;
	rc = ll_allow_path(ruleset, "/proc", rd);
	if (!rc)
		rc = ll_allow_path(ruleset, "/sys", rd);
	if (!rc)
		rc = ll_allow(ruleset, out_dir_fd, wr);
	if (!rc && state_dir_fd >= 0)
		rc = ll_allow(ruleset, state_dir_fd, wr);
	if (rc) {
		close(ruleset);
		return rc;
	}
	return ll_restrict(ruleset);
}

#define LL_RULE_NET_PORT 2

struct ll_net_port_attr {
	uint64_t allowed_access;
	uint64_t port;
} __attribute__((packed));

int sandbox_landlock_uplink(unsigned port, bool *ret_net_confined)
{
	return sandbox_landlock_uplink_ports(&port, 1, ret_net_confined);
}

int sandbox_landlock_uplink_ports(const unsigned *ports, size_t n, bool *ret_net_confined)
{
	int abi = ll_abi(), ruleset;

	if (abi < 1)
		return -EOPNOTSUPP;
	ruleset = ll_create(abi);
	if (ruleset < 0)
		return ruleset;
	for (size_t i = 0; i < n && abi >= 4; i++) {
		struct ll_net_port_attr np = { .allowed_access = LL_ACCESS_NET_CONNECT_TCP,
					       .port = ports[i] };

		if (!ports[i])
			continue;
		if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_NET_PORT, &np, 0) < 0) {
			int rc = -errno;

			close(ruleset);
			return rc;
		}
	}
	*ret_net_confined = abi >= 4;
	return ll_restrict(ruleset);
}

int sandbox_landlock_abi(void)
{
	return ll_abi();
}
