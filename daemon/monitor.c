/*
 * monitor.c - vigild's monitor: the privileged process systemd starts.
 *
 * Start-up, as root, or as user vigil with the capabilities it keeps as
 * ambient ones (check_privileges):
 *  1. check it may load BPF and open perf events, and that the kernel has BTF;
 *  2. read profile.bpf.o and its signature once into memory, verify them
 *     against the trust store, and load exactly those bytes (bpfobj.c);
 *  3. open the output directory and /proc/kallsyms (whose addresses are
 *     shown or hidden by the opener's credentials) for the collector;
 *  4. start the collector and the uplink by fork + exec of their programs,
 *     opened once beside this one (workerexe.h; a fresh address-space
 *     layout each), as the unprivileged user with
 *     every capability set empty, handing each only its fds;
 *  5. become that user too, keeping only the capabilities in
 *     sandbox_monitor_caps, with no_new_privs and a seccomp allowlist.
 * Then it serves the workers' requests (broker.c) and waits.  A worker that
 * breaks the protocol is treated as compromised: killed, logged, and the
 * monitor shuts the other down and exits non-zero so that systemd restarts
 * the service.  A worker that dies of a signal (SIGSYS: a forbidden system
 * call) is treated the same way.  SIGINT/SIGTERM are passed on to the
 * workers; the monitor exits with the collector's status once it flushed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "auditlog.h"
#include "beats.h"
#include "bpfobj.h"
#include "broker.h"
#include "calibrate.h"
#include "cpconfig.h"
#include "exportcreds.h"
#include "exporturl.h"
#include "cgroups.h"
#include "listenaddr.h"
#include "log.h"
#include "monitor.h"
#include "notify.h"
#include "outdir.h"
#include "policyfile.h"
#include "privsep.h"
#include "procmetrics.h"
#include "pyropush.h"
#include "sampler.h"
#include "sandbox.h"
#include "signing.h"
#include "statedir.h"
#include "sysctl.h"
#include "workerexe.h"

#define EX_DATAERR 65
#define EX_SOFTWARE 70
#define EX_OSERR 71
#define EX_OSFILE 72
#define EX_UNAVAILABLE 69
#define EX_CANTCREAT 73
#define EX_NOPERM 77
/*
 * How this vigild was built (the Makefile's BUILD_KIND): "tree" (make, run
 * from the build tree), "development" (a package signed with a CA made at
 * build time: make deb without SIGNING_CERT/SIGNING_KEY), "release".
 */
#ifndef VIGIL_BUILD_KIND
#define VIGIL_BUILD_KIND "tree"
#endif
#define EX_CONFIG 78

#define INSTALLED_BPF_DIR "/usr/lib/vigil/bpf"
#define READY_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS 30000
/* How long the kernel's audit thread may take to log a seccomp kill. */
#define AUDIT_WAIT_MS 2000
/* How long a failed start waits for the workers to end by themselves. */
#define ABORT_GRACE_MS 1000
/*
 * The processes' /proc figures are read when the uplink asks, for a
 * scrape (MSG_METRICS_WANTED), at most this often: asks sooner wait.
 */
#define PROC_METRICS_MIN_MS 100

extern char **environ;

#ifdef VIGIL_TEST_HOOKS
#include "testhooks.h"
#endif

/* The kernel log, for what got a process killed by seccomp (NULL: unreadable). */
static struct auditlog *kernel_log;

struct worker {
	const char *name; /* "collector", "uplink" */
	uint64_t started_us; /* CLOCK_MONOTONIC at its fork, for the kernel log */
	enum privsep_peer peer;
	pid_t pid;        /* 0 once reaped */
	int sock;         /* -1 once closed */
	int status;
	bool ready;
};

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	if (level != LIBBPF_WARN)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	log_warnx("%s%s", strncmp(buf, "libbpf: ", 8) ? "libbpf: " : "", buf);
	return 0;
}

/*
 * vigild starts either as root, which sets up its processes' identities
 * itself, or as the user it would drop to (vigil) holding as ambient
 * capabilities what the monitor keeps (sandbox_monitor_caps) and
 * CAP_SYSLOG, as systemd's User=vigil and AmbientCapabilities= start it:
 * then no identity changes, and every process ends as after a root start
 * (sandbox.h, sandbox_is; docs/security.md).  Anything else: exit 77 and
 * one line naming what is missing.  Root needs CAP_BPF and CAP_PERFMON,
 * or CAP_SYS_ADMIN, which the kernel accepts for both.
 */
static void check_privileges(void)
{
	static const char *const names[CAP_LAST_CAP + 1] = { [CAP_BPF] = "CAP_BPF", [CAP_PERFMON] = "CAP_PERFMON",
					     [CAP_SYS_PTRACE] = "CAP_SYS_PTRACE",
					     [CAP_DAC_READ_SEARCH] = "CAP_DAC_READ_SEARCH" };
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { 0 };
	bool bpf, perfmon, admin, fell_back;
	char missing[128] = "";
	uint64_t eff;
	uid_t uid;
	gid_t gid;

	if (syscall(SYS_capget, &hdr, data) < 0)
		fatalx(EX_OSERR, "capget: %s", strerror(errno));
	eff = (uint64_t)data[1].effective << 32 | data[0].effective;
	admin = eff & (1ull << CAP_SYS_ADMIN);
	bpf = admin || (eff & (1ull << CAP_BPF));
	perfmon = admin || (eff & (1ull << CAP_PERFMON));
	if (bpf && perfmon && geteuid() == 0)
		return;
	if (!bpf || !perfmon)
		fatalx(EX_NOPERM, "missing %s%s%s: run as root, or as user %s with CAP_BPF, CAP_PERFMON, "
		       "CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH and CAP_SYSLOG as ambient capabilities "
		       "(vigild.service)", bpf ? "" : "CAP_BPF", !bpf && !perfmon ? " and " : "",
		       perfmon ? "" : "CAP_PERFMON", SANDBOX_USER);
	/* Not root: only as the user it would drop to, which it cannot switch from. */
	if (sandbox_user(&uid, &gid, &fell_back) < 0 || !sandbox_is(uid, gid)) {
		int n = getgroups(0, NULL);

		fatalx(EX_NOPERM, "must be started as root or as user %s (with no supplementary group "
		       "but its own), not as uid %u gid %u with %d supplementary group%s", SANDBOX_USER,
		       (unsigned)getuid(), (unsigned)getgid(), n, n == 1 ? "" : "s");
	}
	/* The capabilities the monitor keeps, exactly (not CAP_SYS_ADMIN instead). */
	for (size_t i = 0; i < sandbox_monitor_ncaps; i++)
		if (!(eff & (1ull << sandbox_monitor_caps[i])))
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), "%s%s",
				 *missing ? " " : "",
				 names[sandbox_monitor_caps[i]] ? names[sandbox_monitor_caps[i]] : "a capability");
	if (*missing)
		fatalx(EX_NOPERM, "missing %s: as user %s, vigild needs CAP_BPF, CAP_PERFMON, "
		       "CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH and CAP_SYSLOG as ambient capabilities "
		       "(vigild.service)", missing, SANDBOX_USER);
	/*
	 * It holds capabilities already, and its workers, once started, are
	 * its uid: no core dump or same-uid ptrace of it from now on (a root
	 * start is not the workers' uid until sandbox_monitor_drop, which
	 * sets this too).
	 */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fatalx(EX_OSERR, "prctl: %s", strerror(errno));
}

/*
 * Debian's kernels carry a patch (debian/patches/features/all/
 * security-perf-allow-further-restriction-of-perf_event_open.patch in
 * Debian's linux source package) that adds kernel.perf_event_paranoid=3,
 * their default: perf_event_open then fails with EACCES for a caller
 * without CAP_SYS_ADMIN, checked before anything else the call does, so
 * CAP_PERFMON is not enough.  Upstream kernels treat 3 as 2.  vigild's
 * perf events are opened by the loader and by the monitor after it has
 * dropped to CAP_PERFMON and a few others, never with CAP_SYS_ADMIN, even
 * when it was started with it.  So where the setting is above 2, a child
 * holding only CAP_PERFMON opens one software event to see which kernel
 * this is (and, where vigild holds CAP_SYS_ADMIN, a second child with it,
 * so that a refusal of everyone is not blamed on the setting), and a
 * refusal is said plainly, with the setting and the remedy, instead of as
 * a failed perf_event_open on CPU 0 later.  The
 * setting is the administrator's: vigild never changes it.
 */
/* A child with only want (and CAP_PERFMON's check) effective opens one event: 0 opened, 1 refused, 2 else. */
static int perf_probe(int want)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { 0 };
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.disabled = 1,
	};
	int status = 0, fd;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		if (syscall(SYS_capget, &hdr, data) < 0)
			_exit(2);
		data[0].effective = want < 32 ? data[0].permitted & (1u << want) : 0;
		data[1].effective = want >= 32 ? data[1].permitted & (1u << (want - 32)) : 0;
		if (syscall(SYS_capset, &hdr, data) < 0)
			_exit(2);
		fd = (int)syscall(SYS_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
		_exit(fd >= 0 ? 0 : errno == EACCES || errno == EPERM ? 1 : 2);
	}
	while (waitpid(pid, &status, 0) != pid)
		if (errno != EINTR)
			return 2;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}

static bool cap_permitted(int cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { 0 };

	return syscall(SYS_capget, &hdr, data) == 0 && (data[cap / 32].permitted & (1u << (cap % 32)));
}

static void check_perf_paranoid(void)
{
	int level;

	if (sysctl_perf_paranoid(&level) < 0 || level <= 2)
		return;
	/* Without CAP_PERFMON, check_privileges took CAP_SYS_ADMIN for it: nothing to tell apart. */
	if (!cap_permitted(CAP_PERFMON) || perf_probe(CAP_PERFMON) != 1)
		return; /* opened (an upstream kernel), or another failure the sampler will name */
	/*
	 * Refused with CAP_PERFMON.  Debian's patch, if CAP_SYS_ADMIN would
	 * pass; where vigild holds it, ask: refused even then, it is not the
	 * setting (an LSM, say), and the sampler's own failure says so.
	 */
	if (cap_permitted(CAP_SYS_ADMIN) && perf_probe(CAP_SYS_ADMIN) != 0)
		return;
	fatalx(EX_NOPERM, "kernel.perf_event_paranoid is %d, and this kernel then opens perf events "
	       "only for CAP_SYS_ADMIN, which vigild does not keep (CAP_PERFMON is not enough): set "
	       "kernel.perf_event_paranoid=2 (sysctl -w, and a file in /etc/sysctl.d/ to keep it), "
	       "see vigild(8)", level);
}

static void check_btf(void)
{
	if (access("/sys/kernel/btf/vmlinux", R_OK) == 0)
		return;
	fatalx(EX_UNAVAILABLE, "this kernel has no BTF (/sys/kernel/btf/vmlinux: %s); vigild's BPF "
	       "programs need a kernel built with CONFIG_DEBUG_INFO_BTF=y", strerror(errno));
}

/* The directory this binary is in, if it is a build tree (has bpf/ beside it). */
static bool build_tree(char *out, size_t len)
{
	char exe[PATH_MAX], cand[PATH_MAX + 16];
	struct stat st;
	ssize_t n;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	snprintf(cand, sizeof(cand), "%s/bpf", dirname(exe));
	if (strlen(exe) >= len || stat(cand, &st) < 0 || !S_ISDIR(st.st_mode))
		return false;
	memcpy(out, exe, strlen(exe) + 1);
	return true;
}

/*
 * --bpf-dir and --trust, else the build tree's bpf/ and dev-ca/ca.pem when
 * this binary runs from one (make run), else the installed places.
 */
static void locations(const struct vigild_opts *o, char *dir, char *trust, size_t len)
{
	char tree[PATH_MAX];
	bool in_tree = build_tree(tree, sizeof(tree));

	if (o->bpf_dir)
		snprintf(dir, len, "%s", o->bpf_dir);
	else if (in_tree)
		snprintf(dir, len, "%.*s/bpf", (int)(len - 5), tree);
	else
		snprintf(dir, len, "%s", INSTALLED_BPF_DIR);

	if (o->trust)
		snprintf(trust, len, "%s", o->trust);
	else if (!o->bpf_dir && in_tree)
		snprintf(trust, len, "%.*s/dev-ca/ca.pem", (int)(len - 16), tree);
	else
		snprintf(trust, len, "%s", VIGILD_DEFAULT_TRUST);
}

/*
 * A process of ours died of a signal: say which and, for SIGSYS, which
 * forbidden system call the kernel says it made (auditlog.h).
 */
static void say_killed(const char *name, pid_t pid, uint64_t started_us, int sig)
{
	/*
	 * The kernel log's clock and CLOCK_MONOTONIC agree to well within a
	 * second (both count from boot); a second of slack still rules out
	 * any earlier process that had this pid.
	 */
	uint64_t not_before = started_us > 1000000 ? started_us - 1000000 : 0;
	struct auditlog_seccomp r;
	const char *call;

	const struct log_event ev = { .priority = LOG_ERR, .id = LOG_ID_WORKER_KILLED, .worker = name };

	if (sig != SIGSYS) {
		log_event(&ev, "the %s (pid %d) was killed by signal %d", name, (int)pid, sig);
		return;
	}
	if (auditlog_seccomp_of(kernel_log, pid, not_before, AUDIT_WAIT_MS, &r) != 0) {
		log_event(&ev, "the %s (pid %d) was killed by SIGSYS: it made a system call its sandbox "
			  "forbids (compromised, or a bug); which one, the kernel log does not say%s",
			  name, (int)pid, kernel_log ? "" : " (it could not be opened)");
		return;
	}
	call = auditlog_syscall_name(&r);
	log_event(&ev, "the %s (pid %d) was killed by SIGSYS: it made a system call its sandbox forbids, "
		  "%s (number %d): compromised, or a bug", name, (int)pid, call ? call : "unknown",
		  r.syscall);
}

static struct bpfobj *load_verified(const char *dir, const char *trust_path, const char *crl)
{
	struct signing_trust *trust = NULL;
	struct bpfobj *obj = NULL;
	char err[2048];
	int rc;

	rc = signing_trust_load(trust_path, crl, &trust, err, sizeof(err));
	if (rc)
		fatalx(EX_CONFIG, "trust store: %s", err);
	rc = bpfobj_read_verified(dir, "profile", VIGIL_PROFILE_OBJ_VERSION, trust, &obj, err,
				  sizeof(err));
	signing_trust_free(trust);
	if (rc) {
		const struct log_event ev = { .priority = LOG_ERR, .id = LOG_ID_BPF_REFUSED };

		fatalx_event(rc == -EKEYREJECTED || rc == -EACCES || rc == -EPERM ? EX_NOPERM
										   : EX_UNAVAILABLE,
			     &ev, "%s", err);
	}
	log_info("%s: signature verified (%s)", obj->path, obj->signer);
	return obj;
}

/*
 * Verify and load the sampler in a short-lived child (the loader), which
 * hands the monitor its fds and exits: OpenSSL's and libbpf's start-up
 * memory (the kernel's BTF, ~12 MB at its peak) leaves with it.  A refusal
 * is logged by the loader; the monitor exits with the loader's code.
 */
static struct sampler *load_sampler(const struct vigild_opts *o, const struct sampler_config *scfg)
{
	uint64_t started_us;
	char dir[PATH_MAX], trust[PATH_MAX], err[2048];
	struct sampler *s = NULL;
	int sv[2], status, rc;
	pid_t pid;

	locations(o, dir, trust, sizeof(dir));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		fatalx(EX_OSERR, "socketpair: %s", strerror(errno));
	started_us = mono_us();
	pid = fork();
	if (pid < 0)
		fatalx(EX_OSERR, "fork: %s", strerror(errno));
	if (pid == 0) {
		struct bpfobj *obj;

		close(sv[0]);
		auditlog_free(kernel_log); /* the monitor's, not the loader's */
		kernel_log = NULL;
		log_init("vigild[loader]");
		/*
		 * Confined before it reads a byte: the trust store, the object and
		 * its signature are parsed (OpenSSL, libbpf) under this filter,
		 * with only the capabilities loading needs.
		 */
		rc = sandbox_loader_drop();
		if (rc)
			fatalx(EX_OSERR, "loader: cannot drop capabilities: %s", strerror(-rc));
#ifdef VIGIL_TEST_HOOKS
		testhooks_note_caps("loader");
#endif
		rc = sandbox_seccomp(SANDBOX_LOADER);
		if (rc)
			fatalx(EX_OSERR, "loader: cannot install the seccomp filter: %s", strerror(-rc));
#ifdef VIGIL_TEST_HOOKS
		testhooks_attempt("loader");
#endif
		obj = load_verified(dir, trust, o->crl);
		rc = sampler_open(obj->buf, obj->len, obj->path, scfg, &s, err, sizeof(err));
		bpfobj_free(obj);
		if (rc) {
			/* The kernel's verifier refusing a signed object is a refusal too. */
			const struct log_event ev = { .priority = LOG_ERR,
						      .id = rc == -ENOEXEC ? LOG_ID_BPF_REFUSED : NULL };

			fatalx_event(rc == -ENOEXEC ? EX_DATAERR : rc == -EPERM || rc == -EACCES ? EX_NOPERM
										    : EX_UNAVAILABLE,
				     &ev, "%s", err);
		}
		rc = sampler_send(s, sv[1]);
		sampler_free(s);
		_exit(rc ? EX_SOFTWARE : 0);
	}
	close(sv[1]);
	rc = sampler_receive(sv[0], &s);
	close(sv[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return s;
	sampler_free(s);
	if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		exit(WEXITSTATUS(status)); /* the loader said why */
	if (WIFSIGNALED(status)) {
		say_killed("loader", pid, started_us, WTERMSIG(status));
		exit(EX_SOFTWARE);
	}
	fatalx(EX_SOFTWARE, "loading the sampler failed: %s", strerror(-rc));
}

static int send_policy(int sock, const char *path, int fd)
{
	struct msg_policy m = { .hdr = { MSG_POLICY, sizeof(m) }, .version = PRIVSEP_VERSION };
	int rc;

	snprintf(m.name, sizeof(m.name), "%s", path);
	rc = privsep_send(sock, &m, sizeof(m), &fd, 1);
	close(fd);
	return rc;
}

/* The host's per-sample interrupt cost, measured now (docs/overhead.md). */
static uint64_t calibrate(void)
{
	struct calibrate_result r;
	int rc = -EAGAIN;

	/* A busy host makes the measurement noisy: try a few times. */
	for (int tries = 0; tries < 3 && rc == -EAGAIN; tries++)
		rc = calibrate_sample_cost(CALIBRATE_HZ_DEFAULT, CALIBRATE_ROUNDS_DEFAULT, &r);

	if (rc) {
		log_warn_errno(rc, "calibrating the per-sample cost failed; assuming %llu ns, on the safe side",
			       (unsigned long long)CALIBRATE_FALLBACK_NS);
		return CALIBRATE_FALLBACK_NS;
	}
	log_info("calibrated: one sample costs %llu ns (+-%llu ns; %llu samples at %u Hz%s)",
		 (unsigned long long)r.ns_per_sample, (unsigned long long)r.uncertainty_ns,
		 (unsigned long long)r.samples, r.hz, r.clamped ? ", below the floor: clamped" : "");
	return r.ns_per_sample;
}

/*
 * Start the worker of role as the program exe_fd (workerexe.h) with
 * argv "vigild-ROLE --internal-role ROLE".
 */
static void start_worker(struct worker *w, const char *role, int exe_fd, const sigset_t *oldmask,
			 uid_t uid, gid_t gid)
{
	char name[32];
	char *argv[] = { name, "--internal-role", (char *)(uintptr_t)role, NULL };
	/* A minimal environment: workers need none of the monitor's. */
	static char test_attempt[128], journal_stream[96];
	char *worker_env[] = { NULL, NULL, NULL };
	const char *attempt = getenv("VIGIL_TEST_ATTEMPT");
	size_t nenv = 0;

	snprintf(name, sizeof(name), "vigild-%s", role);
	if (attempt && strlen(attempt) < sizeof(test_attempt) - 20) {
		/* only the test-only build acts on it (testhooks.h) */
		snprintf(test_attempt, sizeof(test_attempt), "VIGIL_TEST_ATTEMPT=%s", attempt);
		worker_env[nenv++] = test_attempt;
	}
	/* The workers share the monitor's stderr: they log to the journal when it is one (log.h). */
	if (log_to_journal() && getenv("JOURNAL_STREAM") &&
	    strlen(getenv("JOURNAL_STREAM")) < sizeof(journal_stream) - 20) {
		snprintf(journal_stream, sizeof(journal_stream), "JOURNAL_STREAM=%s", getenv("JOURNAL_STREAM"));
		worker_env[nenv++] = journal_stream;
	}
	pid_t pid, monitor_pid = getpid();
	int sv[2], became[2];
	ssize_t n;
	char b = 0;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ||
	    pipe2(became, O_CLOEXEC) < 0)
		fatalx(EX_OSERR, "socketpair: %s", strerror(errno));
	w->started_us = mono_us();
	pid = fork();
	if (pid < 0)
		fatalx(EX_OSERR, "fork: %s", strerror(errno));
	if (pid == 0) {
		int rc;

		/*
		 * Only the socket crosses the exec, as PRIVSEP_FD.  First move the
		 * socket and the program's fd out of the way (high numbers), so
		 * that placing one cannot clobber the other.
		 */
		int sock = fcntl(sv[1], F_DUPFD_CLOEXEC, 100), exe = fcntl(exe_fd, F_DUPFD_CLOEXEC, 100);

		if (sock < 0 || exe < 0 || dup2(sock, PRIVSEP_FD) < 0 ||
		    dup3(exe, PRIVSEP_FD + 1, O_CLOEXEC) < 0)
			_exit(EX_OSERR);
		exe_fd = PRIVSEP_FD + 1; /* closed by the exec itself */
		rc = sandbox_become_worker(uid, gid);
		if (rc) {
			fprintf(stderr, "vigild: cannot drop privileges for the %s: %s\n", role,
				strerror(-rc));
			_exit(EX_OSERR);
		}
		/*
		 * A worker does not outlive the monitor, however the monitor ends
		 * (set after the uid change, which would clear it; kept by exec).
		 */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != monitor_pid)
			_exit(EX_OSERR);
		/* Tell the monitor this process is the unprivileged user now. */
		if (write(became[1], &b, 1) != 1)
			_exit(EX_OSERR);
		if (chdir("/") < 0)
			_exit(EX_OSERR);
		/* Nothing the monitor inherited crosses into a worker. */
		if (syscall(SYS_close_range, PRIVSEP_FD + 2, ~0u, 0) < 0 && errno != ENOSYS)
			_exit(EX_OSERR);
		sigprocmask(SIG_SETMASK, oldmask, NULL);
		fexecve(exe_fd, argv, worker_env);
		fprintf(stderr, "vigild: cannot execute the %s (%s): %s\n", role, name, strerror(errno));
		_exit(EX_OSERR);
	}
	close(sv[1]);
	/*
	 * Wait until the child is the unprivileged user: once the monitor
	 * drops to that user too, it could not signal a child still root
	 * (and a failed start would wait on it for ever).
	 */
	close(became[1]);
	do
		n = read(became[0], &b, 1);
	while (n < 0 && errno == EINTR);
	close(became[0]);
	if (n != 1)
		fatalx(EX_OSERR, "the %s could not become user %s", role, SANDBOX_USER);
	/* Never block on a worker: one that stops reading is dropped (broker.c). */
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0)
		fatalx(EX_OSERR, "fcntl: %s", strerror(errno));
	w->pid = pid;
	w->sock = sv[0];
}


/* Reap whichever workers exited; true if any did. */
static bool reap(struct worker *ws, size_t n)
{
	bool any = false;

	for (size_t i = 0; i < n; i++) {
		int status, rc;

		if (!ws[i].pid)
			continue;
		while ((rc = waitpid(ws[i].pid, &status, WNOHANG)) < 0 && errno == EINTR)
			;
		if (rc != ws[i].pid)
			continue;
		any = true;
		ws[i].pid = 0;
		ws[i].status = status;
		if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM)
			say_killed(ws[i].name, rc, ws[i].started_us, WTERMSIG(status));
		else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			log_warnx("the %s exited with status %d", ws[i].name, WEXITSTATUS(status));
	}
	return any;
}

/*
 * Start-up failed: stop whatever workers run, say how each ended, and exit
 * (nothing stays loaded: the kernel drops the programs with our fds).
 */
static void abort_start(struct worker *ws, size_t n, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_warnx("%s", buf);
	/*
	 * A worker failing on its own (the same missing kernel feature, say)
	 * gets a moment to say why; then, nothing being collected yet, the
	 * rest are killed without a chance to flush.
	 */
	for (uint64_t until = mono_ms() + ABORT_GRACE_MS;;) {
		bool running = false;

		for (size_t i = 0; i < n; i++)
			if (ws[i].pid > 0 && waitpid(ws[i].pid, &ws[i].status, WNOHANG) == 0)
				running = true;
		if (!running || mono_ms() >= until)
			break;
		poll(NULL, 0, 20);
	}
	for (size_t i = 0; i < n; i++)
		if (ws[i].pid > 0)
			kill(ws[i].pid, SIGKILL);
	for (size_t i = 0; i < n; i++) {
		if (!ws[i].pid)
			continue;
		/* Reaped above (ECHILD now), or reaped here: the status says how it ended. */
		(void)waitpid(ws[i].pid, &ws[i].status, 0);
		if (WIFSIGNALED(ws[i].status) && WTERMSIG(ws[i].status) != SIGTERM &&
		    WTERMSIG(ws[i].status) != SIGKILL)
			say_killed(ws[i].name, ws[i].pid, ws[i].started_us, WTERMSIG(ws[i].status));
		ws[i].pid = 0;
	}
	/* A worker that said why it stopped (78: invalid policy) decides the code. */
	for (size_t i = 0; i < n; i++)
		if (WIFEXITED(ws[i].status) && WEXITSTATUS(ws[i].status) != 0)
			exit(WEXITSTATUS(ws[i].status));
	exit(EX_SOFTWARE);
}

static void wait_ready(struct broker *b, struct worker *ws, size_t n, struct worker *w)
{
	struct pollfd p = { .fd = w->sock, .events = POLLIN };
	int rc;

	rc = poll(&p, 1, READY_TIMEOUT_MS);
	if (rc == 0)
		abort_start(ws, n, "the %s did not start within %d s", w->name, READY_TIMEOUT_MS / 1000);
	rc = broker_serve_one(b, w->sock, w->peer);
	if (rc || (b->last_type != MSG_COLLECTOR_READY && b->last_type != MSG_UPLINK_READY))
		abort_start(ws, n, "the %s failed to start (%s)", w->name,
			    rc == -EPIPE ? "it exited" : rc == -EPROTO ? b->violation :
			    rc ? strerror(-rc) : "unexpected message");
	w->ready = true;
}

/*
 * What a request did, when it is worth saying: a frequency refused, failed
 * or capped, a tenant cgroup not sampled.  Capping is said at most once a
 * minute: a worker must not flood the log.
 */
static void log_request(const struct broker *b, const struct worker *w, uint64_t *capped_quiet)
{
	bool hz = b->last_type == MSG_SET_HZ || b->last_type == MSG_TENANT_CGROUP;

	if (b->last_err && b->last_type == MSG_SAMPLING_START)
		log_warn_errno(b->last_err, "cannot start the default tenant's events: only tenants' "
			       "cgroups are sampled");
	else if (b->last_err && b->last_type == MSG_TENANT_CGROUP)
		log_warn_errno(b->last_err, "tenant %u: cgroup %llu not sampled%s%s", b->last_tenant,
			       (unsigned long long)b->last_cgroup_id,
			       b->detail[0] ? ": " : "", b->detail);
	else if (b->last_err && b->last_type == MSG_SET_HZ)
		log_warn_errno(b->last_err, "cannot sample tenant %u at %u Hz; it stays at %u Hz",
			       b->last_tenant, b->last_hz_asked, b->last_hz_applied);
	else if (hz && b->last_hz_applied != b->last_hz_asked && mono_ms() >= *capped_quiet) {
		log_warnx("the %s asked for %u Hz for tenant %u; capped at the ceiling of %u Hz",
			  w->name, b->last_hz_asked, b->last_tenant, b->last_hz_applied);
		*capped_quiet = mono_ms() + 60000;
	}
}

/*
 * The uplink's identity and the control plane's addresses (resolved at
 * start): at start, with the key material read then (creds, taken over
 * and closed here), and again on SIGHUP (creds NULL: read now) so that the
 * next connection uses whatever certificate and key are on disk then.
 * 0 or -errno (logged).
 */
static int send_creds(const struct vigild_opts *o, int sock, const struct msg_uplink_creds *addrs,
		      const int *creds, int state_fd, uid_t vigil_uid)
{
	struct msg_uplink_creds m = *addrs;
	char why[512];
	int fds[3], rc;

	m.hdr.type = MSG_UPLINK_CREDS;
	m.hdr.len = sizeof(m);
	m.version = PRIVSEP_VERSION;
	if (creds) {
		memcpy(fds, creds, sizeof(fds));
	} else if ((rc = cpconfig_read_creds(o, fds, why, sizeof(why)))) {
		log_warnx("%s", why);
		return rc;
	}
	/* At start only: a certificate renewed through the control plane, if newer (cpconfig.h). */
	if (state_fd >= 0) {
		rc = cpconfig_prefer_renewed(state_fd, vigil_uid, fds, why, sizeof(why));
		if (rc < 0)
			log_warn_errno(rc, "state directory: cannot read %s; using --cert and --key",
				       STATEDIR_IDENTITY);
		else if (why[0])
			log_info("control plane: %s", why);
	}
	rc = privsep_send(sock, &m, sizeof(m), fds, 3);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	if (rc)
		log_warn_errno(rc, "cannot pass the key material to the uplink");
	return rc;
}

/* --- export to Pyroscope (issue 11) ------------------------------------------ */

/*
 * At start, as root: the labels against Pyroscope's rules, the export's
 * files (a refusal is fatal: exit 78 with the reason), the URL's host
 * resolved while a socket may still be opened.
 */
static void export_prepare(const struct vigild_opts *o, struct msg_uplink_setup *usetup,
			   struct msg_uplink_export *m, int fds[EXPORTCREDS_NFDS])
{
	char why[512];

	if (pyropush_check_agent_labels(o->labels, o->nlabels, why, sizeof(why)))
		fatalx(EX_CONFIG, "%s", why);
	if (exportcreds_read(o, fds, &m->flags, why, sizeof(why)))
		fatalx(EX_CONFIG, "%s", why);
	exportcreds_message(o, m);
	if (exportcreds_resolve(o, m, why, sizeof(why)) < 0)
		log_warnx("export: %s; profiles wait in %s until vigild is restarted with a name that "
			  "resolves", why, o->output);
	if (!o->export_https && (o->export_basic_auth_file || o->export_bearer_token_file))
		log_warnx("export: --export-url %s is plain http: the credentials cross the network in "
			  "clear (use https://)", o->export_url);
	exportcreds_uplink_setup(o, usetup);
}

/* MSG_UPLINK_EXPORT with its five memfds, which are closed here.  0 or -errno (logged). */
static int send_export(int sock, const struct msg_uplink_export *m, int fds[EXPORTCREDS_NFDS])
{
	int rc = privsep_send(sock, m, sizeof(*m), fds, EXPORTCREDS_NFDS);

	for (int i = 0; i < EXPORTCREDS_NFDS; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
	if (rc)
		log_warn_errno(rc, "cannot pass the export configuration to the uplink");
	return rc;
}

/* SIGHUP: the files again (the addresses resolved at start stay). */
static void export_reload(const struct vigild_opts *o, int sock, struct msg_uplink_export *m)
{
	int fds[EXPORTCREDS_NFDS];
	char why[512];

	if (exportcreds_read(o, fds, &m->flags, why, sizeof(why))) {
		log_warnx("SIGHUP: export files not reloaded: %s; the uplink keeps the ones it has", why);
		return;
	}
	if (send_export(sock, m, fds) == 0)
		log_info("SIGHUP: the export files passed to the uplink");
}

/*
 * The policy's export: section (MSG_EXPORT_CONFIG from the collector, which
 * is less trusted than the monitor: everything is checked again here).
 * Each key it sets wins over the command line's; a section with no key set
 * or no section goes back to the command line.  What cannot change without
 * a restart is refused, with the reason: the port (the uplink's Landlock
 * rule), and a host name other than the command line's (the dropped
 * monitor cannot resolve one; an address literal is fine).
 */
static void export_from_policy(const struct vigild_opts *o, const struct msg_export_config *pc, int sock,
			       struct msg_uplink_export *m)
{
	static bool warned_off;
	struct vigild_opts eff = *o;
	struct msg_uplink_export nm = *m;
	int fds[EXPORTCREDS_NFDS];
	const char *const files[5] = { pc->basic_auth_file, pc->bearer_token_file, pc->ca, pc->cert, pc->key };
	static const char *const names[5] = { "export.basic_auth_file", "export.bearer_token_file",
					      "export.ca", "export.cert", "export.key" };
	char why[512];

	if (!o->export_url) {
		if (!warned_off)
			log_warnx("policy: it has an export: section, but vigild was started without "
				  "--export-url: restart it with one (with the port the policy's URL uses) to "
				  "export");
		warned_off = true;
		return;
	}
	if (!(pc->flags & EXPORT_CONFIG_F_SET)) {
		export_reload(o, sock, m);
		return;
	}
	if (pc->url[0]) {
		struct exporturl u;
		uint8_t bin[16];

		if (exporturl_parse("export.url", pc->url, &u, why, sizeof(why))) {
			log_warnx("policy: %s; export keeps its configuration", why);
			return;
		}
		if (u.port != o->export_port) {
			log_warnx("policy: export.url %s uses port %u, but the uplink may only connect to "
				  "port %u (--export-url; its sandbox is set at start): restart vigild with "
				  "--export-url on that port; export keeps its configuration", pc->url, u.port,
				  o->export_port);
			return;
		}
		if (strcmp(u.host, o->export_host) && inet_pton(AF_INET, u.host, bin) != 1 &&
		    inet_pton(AF_INET6, u.host, bin) != 1) {
			log_warnx("policy: export.url names host %s, which vigild did not resolve at start "
				  "(only --export-url's host %s, or an address, can be used without a restart); "
				  "export keeps its configuration", u.host, o->export_host);
			return;
		}
		eff.export_url = pc->url;
		memcpy(eff.export_host, u.host, sizeof(eff.export_host));
		eff.export_https = u.https;
		if (strcmp(u.host, o->export_host))
			nm.naddrs = 0; /* an address literal: libcurl needs no resolver for it */
	}
	if (pc->tenant[0]) {
		if (exporturl_check_tenant("export.tenant", pc->tenant, why, sizeof(why))) {
			log_warnx("policy: %s; export keeps its configuration", why);
			return;
		}
		eff.export_tenant = pc->tenant;
	}
	for (int i = 0; i < 5; i++) {
		if (files[i][0] && exporturl_check_file(names[i], files[i], why, sizeof(why))) {
			log_warnx("policy: %s; export keeps its configuration", why);
			return;
		}
	}
	/* Either kind of auth, and the client pair, replace the command line's as a whole. */
	if (pc->basic_auth_file[0] || pc->bearer_token_file[0]) {
		eff.export_basic_auth_file = pc->basic_auth_file[0] ? pc->basic_auth_file : NULL;
		eff.export_bearer_token_file = pc->bearer_token_file[0] ? pc->bearer_token_file : NULL;
	}
	if (pc->ca[0])
		eff.export_ca = pc->ca;
	if (pc->cert[0]) {
		eff.export_cert = pc->cert;
		eff.export_key = pc->key;
	}
	if (exportcreds_read(&eff, fds, &nm.flags, why, sizeof(why))) {
		log_warnx("policy: export: %s; export keeps its configuration", why);
		return;
	}
	exportcreds_message(&eff, &nm);
	if (send_export(sock, &nm, fds) == 0)
		log_info("policy: export configuration applied (%s%s%s)", eff.export_url,
			 eff.export_tenant ? ", tenant " : "", eff.export_tenant ? eff.export_tenant : "");
}

/* --- systemd readiness, status and watchdog (issue 11; notify.h, beats.h) --- */

struct sdstate {
	struct notify n;
	struct beats beats;
	unsigned hz;           /* --hz, for STATUS= */
	bool started;          /* the collector started sampling (SAMPLING_START) */
	bool ready;            /* READY=1 sent: started, and the collector's first beat is in */
	bool reloading;        /* RELOADING=1 sent, READY=1 not yet */
	uint32_t reloads_sent; /* policies handed to the collector on SIGHUP */
	uint64_t reload_deadline_us;
	bool withheld;         /* the watchdog is not petted: a worker stalled (logged) */
};

/* A reload that the collector does not confirm is over after this anyway. */
#define RELOAD_TIMEOUT_US (30ull * 1000000ull)

static void sd_update_status(struct sdstate *sd)
{
	char status[NOTIFY_STATUS_MAX];

	beats_status(&sd->beats, sd->hz, status, sizeof(status));
	notify_status(&sd->n, status, mono_us());
}

/* After each message served and each wake-up of the loop. */
static void sd_after(struct sdstate *sd, const struct worker *uplink, bool stopping)
{
	uint64_t now = mono_us();
	const char *who;
	uint64_t for_us;

	/* Ready with a STATUS= that says what is sampled: after the first beat. */
	if (sd->started && !sd->ready && !stopping && sd->beats.collector.seen) {
		sd->ready = true;
		sd_update_status(sd);
		notify_ready(&sd->n, now);
	}
	if (sd->reloading && !stopping &&
	    (sd->beats.c.reloads >= sd->reloads_sent || now >= sd->reload_deadline_us)) {
		sd->reloading = false;
		if (sd->beats.c.reloads < sd->reloads_sent)
			log_warnx("SIGHUP: the collector has not confirmed the reload within %llu s; "
				  "telling systemd it is done", RELOAD_TIMEOUT_US / 1000000);
		sd_update_status(sd);
		notify_ready(&sd->n, now);
	}
	notify_tick(&sd->n, now);
	/*
	 * systemd arms the watchdog once start-up is complete (READY=1;
	 * systemd.service(5), WatchdogSec=) and not while stopping.
	 */
	if (!notify_watchdog_due(&sd->n, now) || !sd->ready || stopping)
		return;
	/* Stalled: for half the watchdog interval, and at least three beats. */
	if (beats_stalled(&sd->beats, now, sd->n.watchdog_usec / 2, uplink->pid > 0, &who, &for_us)) {
		if (!sd->withheld) {
			const struct log_event ev = { .priority = LOG_ERR, .id = LOG_ID_WORKER_STALLED,
						      .worker = who };

			log_event(&ev, "the %s has made no progress for %.1f s (stopped, or stuck): not "
				  "telling systemd's watchdog that vigild is alive, so that it restarts "
				  "the service", who, (double)for_us / 1e6);
			sd->withheld = true;
		}
		return;
	}
	if (sd->withheld)
		log_info("the workers make progress again: the watchdog is told so again");
	sd->withheld = false;
	notify_watchdog(&sd->n);
}

static int exit_code(const struct worker *collector, bool compromised)
{
	if (compromised)
		return EX_SOFTWARE;
	if (WIFEXITED(collector->status))
		return WEXITSTATUS(collector->status);
	return EX_SOFTWARE;
}

/* --- Prometheus metrics --------------------------------------------------------- */

/*
 * The metrics socket, bound here while the monitor is root, so that the
 * uplink needs neither socket() nor bind() (docs/security.md).  -1: none.
 * An address given with --metrics-listen that cannot be used stops vigild;
 * the default one, taken by something else, only costs the metrics.
 */
static int metrics_listen(const struct vigild_opts *o)
{
	int fd, rc;

	if (o->metrics.none)
		return -1;
	rc = listenaddr_listen(&o->metrics, 16, &fd);
	if (!rc)
		return fd;
	if (o->metrics_given)
		fatalx(rc == -EADDRINUSE || rc == -EADDRNOTAVAIL ? EX_UNAVAILABLE : EX_OSERR,
		       "--metrics-listen %s: cannot listen: %s; give a free ADDR:PORT, or none to serve "
		       "no metrics", o->metrics.text, strerror(-rc));
	log_warnx("metrics: cannot listen on the default %s: %s; running without metrics (give "
		  "--metrics-listen ADDR:PORT for another address, or none to silence this)",
		  o->metrics.text, strerror(-rc));
	return -1;
}

/*
 * On a socket of their own whose end here is non-blocking: an uplink that
 * does not read (busy in a request, or hostile) loses figures, and the
 * monitor never waits on it, nor finds the control socket full when it
 * must hand over credentials.
 */
static void send_proc_metrics(const struct worker *ws, int *sock, uint64_t btime)
{
	pid_t pids[METRICS_NPROC] = { getpid(), ws[0].pid, ws[1].pid };

	if (*sock >= 0 && procmetrics_send(*sock, pids, btime) == -EPIPE) {
		close(*sock);
		*sock = -1;
	}
}

int monitor_main(const struct vigild_opts *o)
{
	struct sampler_config scfg = { .hz = o->hz, .build_id = o->build_id };
	struct msg_collector_setup setup = {
		.hdr = { MSG_COLLECTOR_SETUP, sizeof(setup) },
		.version = PRIVSEP_VERSION,
		.hz = o->hz,
		.interval_s = o->interval_s,
		.duration_s = o->duration_s,
		.flags = (o->build_id ? SETUP_F_BUILD_ID : 0) | (o->top ? SETUP_F_TOP : 0) |
			 (o->policy ? SETUP_F_POLICY : 0),
		.max_hz = o->max_hz,
		.control_period_s = o->control_period_s,
	};
	struct msg_uplink_setup usetup = {
		.hdr = { MSG_UPLINK_SETUP, sizeof(usetup) },
		.version = PRIVSEP_VERSION,
	};
	struct msg_uplink_creds cp_addrs = { 0 };
	struct msg_uplink_export export_msg = { 0 };
	int export_fds[EXPORTCREDS_NFDS] = { -1, -1, -1, -1, -1 };
	int state_fd = -1, trust_fd = -1, chan[2] = { -1, -1 }, creds[3] = { -1, -1, -1 };
	struct worker ws[2] = {
		{ .name = "collector", .peer = PEER_COLLECTOR, .sock = -1 },
		{ .name = "uplink", .peer = PEER_UPLINK, .sock = -1 },
	};
	struct worker *collector = &ws[0], *uplink = &ws[1];
	struct broker broker = { .max_hz = o->max_hz, .cgroup_root_fd = -1 };
	struct sampler *s;
	char why[512];
	sigset_t mask, oldmask;
	struct timespec now;
	int out_fd, ksyms_fd, collector_exe, uplink_exe, sfd, policy_fd = -1, rc;
	bool stopping = false, compromised = false, fell_back;
	uint64_t stop_deadline = 0, capped_quiet = 0;
	int metrics_fd = -1, pm[2] = { -1, -1 }, cm[2] = { -1, -1 };
	bool metrics_on = false;
	uint64_t btime = 0, next_proc_ms = 0;
	bool proc_wanted = false, seen_pm[MSG_TYPE_MAX] = { 0 };
	struct sdstate sd = { .hz = o->hz };
	uid_t uid;
	gid_t gid;

	log_init("vigild");
	/* Before any confinement: reads NOTIFY_SOCKET and WATCHDOG_USEC (notify.h). */
	notify_init(&sd.n, mono_us());
	setup.beat_ms = usetup.beat_ms = beats_interval_ms(sd.n.watchdog_usec);
	beats_init(&sd.beats, mono_us(), setup.beat_ms);
	broker.beats = &sd.beats;
	check_privileges();
	rc = auditlog_open("/dev/kmsg", &kernel_log);
	if (rc)
		log_warn_errno(rc, "/dev/kmsg: a process killed by its sandbox will be reported without "
			       "the system call it made");
	{
		/* Each tenant cgroup costs two fds per CPU: use what is allowed. */
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	check_btf();
	check_perf_paranoid();
	/* Before anything is written: the workers' programs are beside this one. */
	{
		char ewhy[PATH_MAX + 200];

		/*
		 * Without a control plane or an export target (fixed at start) the
		 * uplink serves metrics only: vigild-uplink-local, which does not
		 * map libcurl and what it pulls in (uplinklocal.c); and the
		 * collector is vigild-collector-local, which does not map
		 * libcrypto (collector.c).
		 */
		bool remote = o->control_plane || o->export_url;
		const char *uplink_role = remote ? "uplink" : "uplink-local";
		const char *collector_role = remote ? "collector" : "collector-local";

		if (workerexe_open_self(collector_role, &collector_exe, ewhy, sizeof(ewhy)) < 0 ||
		    workerexe_open_self(uplink_role, &uplink_exe, ewhy, sizeof(ewhy)) < 0)
			fatalx(EX_OSFILE, "%s", ewhy);
	}
	libbpf_set_print(libbpf_log);
	metrics_fd = metrics_listen(o);
	metrics_on = metrics_fd >= 0;
	/*
	 * The figures reach the uplink on sockets of their own, from the
	 * monitor (pm) and from the collector (cm), non-blocking at the
	 * sending end: an uplink that does not read loses figures, and the
	 * control sockets, which carry what must not be lost (credentials,
	 * policies and their answers), never fill with them.
	 */
	if (metrics_on && (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pm) < 0 ||
			   socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, cm) < 0 ||
			   fcntl(pm[0], F_SETFL, O_NONBLOCK) < 0))
		fatalx(EX_OSERR, "socketpair: %s", strerror(errno));
	if (metrics_on) {
		if (procmetrics_boot_time(&btime))
			log_warnx("/proc/stat: no boot time; process_start_time_seconds counts from boot");
		setup.flags |= SETUP_F_METRICS;
		usetup.flags |= UPLINK_F_METRICS;
	}

	rc = sandbox_user(&uid, &gid, &fell_back);
	if (rc)
		fatalx(EX_CONFIG, "no unprivileged user to run as (%s, or nobody): %s", SANDBOX_USER,
		       strerror(-rc));
	if (fell_back)
		log_warnx("user %s could not be created; running the workers as nobody", SANDBOX_USER);

	if (o->policy && policyfile_open(o->policy, &policy_fd, why, sizeof(why)) < 0)
		fatalx(EX_CONFIG, "policy: %s", why);
	/* Handed to the vigil user only if created here (outdir.h). */
	if (outdir_open(o->output, uid, gid, fell_back ? "nobody" : SANDBOX_USER, &out_fd, NULL, why,
			sizeof(why)) < 0)
		fatalx(EX_CANTCREAT, "output directory: %s", why);
	if (o->control_plane) {
		bool created = false;

		/* Refuse a bad identity now, not at the first connection; handed over below. */
		if (cpconfig_read_creds(o, creds, why, sizeof(why)) < 0)
			fatalx(EX_CONFIG, "%s", why);
		if (cpconfig_read_trust(o, &trust_fd, why, sizeof(why)) < 0)
			fatalx(EX_CONFIG, "%s", why);
		/* Created and owned as --output is (outdir.h), then 0700. */
		if (outdir_open(o->state_dir, uid, gid, fell_back ? "nobody" : SANDBOX_USER, &state_fd,
				&created, why, sizeof(why)) < 0)
			fatalx(EX_CANTCREAT, "state directory: %s", why);
		if (created && fchmod(state_fd, 0700) < 0)
			fatalx(EX_CANTCREAT, "state directory %s: %s", o->state_dir, strerror(errno));
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) < 0)
			fatalx(EX_OSERR, "socketpair: %s", strerror(errno));
		/*
		 * Only now, as root: the dropped monitor has no socket() for a
		 * resolver.  A name that does not resolve leaves the host
		 * sampling under its local or last-known-good policy.
		 */
		if (cpconfig_resolve(o, &cp_addrs, why, sizeof(why)) < 0)
			log_warnx("control plane: %s; the uplink cannot connect until vigild is restarted "
				  "with a name that resolves (sampling goes on)", why);
		cpconfig_uplink_setup(o, &usetup);
		setup.flags |= SETUP_F_CONTROL_PLANE;
	} else if (o->export_url) {
		/* Profiles to export reach the uplink over that socket, control plane or not. */
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) < 0)
			fatalx(EX_OSERR, "socketpair: %s", strerror(errno));
	}
	if (o->export_url) {
		export_prepare(o, &usetup, &export_msg, export_fds);
		/* The collector spools, the uplink pushes, over the socket made above. */
		setup.flags |= SETUP_F_EXPORT;
		setup.spool_max_bytes = o->spool_max_bytes;
		usetup.flags |= UPLINK_F_EXPORT;
		/* The collector writes the PushRequests: the same host and labels as the uplink's. */
		_Static_assert(sizeof(setup.hostname) == sizeof(usetup.hostname) &&
			       sizeof(setup.labels) == sizeof(usetup.labels), "one setup's strings fit the other");
		memcpy(setup.hostname, usetup.hostname, sizeof(setup.hostname));
		memcpy(setup.labels, usetup.labels, sizeof(setup.labels));
		setup.nlabels = usetup.nlabels;
	}
	setup.sample_cost_ns = calibrate();
	{
		struct cgroups *cg;

		/* For opening tenants' cgroups by id (open_by_handle_at). */
		if (cgroups_new(NULL, &cg) == 0) {
			broker.cgroup_root_fd = open(cgroups_root(cg), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			cgroups_free(cg);
		}
		if (broker.cgroup_root_fd < 0)
			log_warnx("no cgroup v2 mount: tenants cannot be sampled separately");
	}
	ksyms_fd = open("/proc/kallsyms", O_RDONLY | O_CLOEXEC);
	if (ksyms_fd < 0)
		log_warn_errno(errno, "/proc/kallsyms: kernel frames will not be symbolized");

	s = load_sampler(o, &scfg);
	broker.sampler = s;
	broker.unwind = o->unwind;
	/* Every tenant as the command line says, until the collector's policy says otherwise. */
	for (unsigned t = 0; t < VIGIL_MAX_TENANTS; t++)
		if ((rc = sampler_set_unwind(s, t, o->unwind)) < 0)
			fatalx(EX_SOFTWARE, "cannot set how stacks are taken: %s", strerror(-rc));
	clock_gettime(CLOCK_REALTIME, &now);
	setup.start_realtime_ns = (uint64_t)now.tv_sec * 1000000000ull + now.tv_nsec;
	setup.ncpus = sampler_ncpus(s);
	usetup.start_realtime_ns = setup.start_realtime_ns;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, &oldmask);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		fatalx(EX_OSERR, "signalfd: %s", strerror(errno));

	start_worker(collector, "collector", collector_exe, &oldmask, uid, gid);
	start_worker(uplink, "uplink", uplink_exe, &oldmask, uid, gid);
	close(collector_exe);
	close(uplink_exe);
	setup.uplink_pid = (uint32_t)uplink->pid;
	{
		int fds[5] = { sampler_events_fd(s), sampler_stats_fd(s), out_fd, ksyms_fd,
			       sampler_tstats_fd(s) };

		if (fds[3] < 0) /* the table wants exactly 5: /dev/null stands in */
			fds[3] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		rc = privsep_send(collector->sock, &setup, sizeof(setup), fds, 5);
		if (!rc && policy_fd >= 0)
			rc = send_policy(collector->sock, o->policy, policy_fd);
		if (!rc && o->control_plane) {
			struct msg_collector_cp cp = { .hdr = { MSG_COLLECTOR_CP, sizeof(cp) },
						       .version = PRIVSEP_VERSION };
			int cfds[3] = { state_fd, trust_fd, chan[0] };

			rc = privsep_send(collector->sock, &cp, sizeof(cp), cfds, 3);
		} else if (!rc && chan[0] >= 0) {
			struct msg_metrics_fd mp = { .hdr = { MSG_COLLECTOR_PEER, sizeof(mp) },
						     .version = PRIVSEP_VERSION };

			rc = privsep_send(collector->sock, &mp, sizeof(mp), &chan[0], 1);
		}
		if (!rc && metrics_fd >= 0) {
			struct msg_metrics_fd mc = { .hdr = { MSG_COLLECTOR_METRICS_SOCK, sizeof(mc) },
						     .version = PRIVSEP_VERSION };

			rc = privsep_send(collector->sock, &mc, sizeof(mc), &cm[0], 1);
		}
		if (!rc)
			rc = privsep_send(uplink->sock, &usetup, sizeof(usetup), NULL, 0);
		if (!rc && metrics_fd >= 0) {
			struct msg_metrics_fd mm = { .hdr = { MSG_UPLINK_METRICS, sizeof(mm) },
						     .version = PRIVSEP_VERSION };
			int mfds[3] = { metrics_fd, pm[1], cm[1] };

			snprintf(mm.what, sizeof(mm.what), "%s", o->metrics.text);
			rc = privsep_send(uplink->sock, &mm, sizeof(mm), mfds, 3);
		}
		if (!rc && !o->control_plane && chan[1] >= 0) {
			/* With a control plane it comes with the credentials, below. */
			struct msg_uplink_peer peer = { .hdr = { MSG_UPLINK_PEER, sizeof(peer) },
							.version = PRIVSEP_VERSION };

			rc = privsep_send(uplink->sock, &peer, sizeof(peer), &chan[1], 1);
		}
		if (!rc && o->control_plane) {
			struct msg_uplink_peer peer = { .hdr = { MSG_UPLINK_PEER, sizeof(peer) },
							.version = PRIVSEP_VERSION };

			rc = privsep_send(uplink->sock, &peer, sizeof(peer), &chan[1], 1);
			if (!rc && o->control_plane)
				rc = send_creds(o, uplink->sock, &cp_addrs, creds, state_fd, uid);
		}
		/* After the uplink's other set-up messages: it confines itself once this is in. */
		if (!rc && o->export_url)
			rc = send_export(uplink->sock, &export_msg, export_fds);
		if (rc)
			fatalx(EX_SOFTWARE, "cannot hand the workers their work: %s", strerror(-rc));
		close(fds[3]);
		/* The workers hold these now; the monitor keeps none of them. */
		for (int i = 0; i < 2; i++)
			if (chan[i] >= 0)
				close(chan[i]);
		if (state_fd >= 0)
			close(state_fd);
		if (trust_fd >= 0)
			close(trust_fd);
		if (metrics_fd >= 0)
			close(metrics_fd);
		if (pm[1] >= 0)
			close(pm[1]);
		for (int i = 0; i < 2; i++)
			if (cm[i] >= 0)
				close(cm[i]);
	}
	close(out_fd);

	/* Everything that needed root is done. */
	rc = sandbox_monitor_drop(uid, gid);
	if (rc)
		fatalx(EX_OSERR, "cannot drop privileges: %s", strerror(-rc));
	rc = sandbox_seccomp(SANDBOX_MONITOR);
	if (rc)
		fatalx(EX_OSERR, "cannot install the seccomp filter: %s", strerror(-rc));
#ifdef VIGIL_TEST_HOOKS
	testhooks_attempt("monitor");
#endif

	wait_ready(&broker, ws, 2, collector);
	wait_ready(&broker, ws, 2, uplink);
	/* "sampling N CPUs ..." is said when sampling starts (LOG_ID_STARTED, below). */
	if (metrics_on)
		log_info("metrics: http://%s/metrics", o->metrics.text);
	/* Stalls count from now: start-up may take long, and is systemd's TimeoutStartSec's. */
	beats_init(&sd.beats, mono_us(), setup.beat_ms);

	while (collector->pid || uplink->pid) {
		struct pollfd p[4] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = collector->sock, .events = POLLIN },
			{ .fd = uplink->sock, .events = POLLIN },
			{ .fd = metrics_on && !stopping ? pm[0] : -1, .events = POLLIN },
		};
		struct signalfd_siginfo si;

		int timeout, nt;

		if (stopping && !stop_deadline) {
			stop_deadline = mono_ms() + STOP_TIMEOUT_MS;
			notify_stopping(&sd.n);
		}
		/* Woken when the maps kept for OPEN_FILE expire, to free them. */
		timeout = stopping ? (int)(stop_deadline > mono_ms() ? stop_deadline - mono_ms() : 0)
				   : broker_maps_timeout_ms(&broker);
		if (proc_wanted && !stopping) {
			uint64_t now_ms = mono_ms();

			if (now_ms >= next_proc_ms) {
				send_proc_metrics(ws, &pm[0], btime);
				proc_wanted = false;
				next_proc_ms = now_ms + PROC_METRICS_MIN_MS;
			} else if (timeout < 0 || (uint64_t)timeout > next_proc_ms - now_ms) {
				timeout = (int)(next_proc_ms - now_ms);
			}
		}
		/* ... and for systemd: the watchdog, a rate-limited STATUS=, a reload's end. */
		nt = notify_timeout_ms(&sd.n, mono_us());
		if (sd.reloading && (nt < 0 || nt > BEAT_MIN_MS))
			nt = BEAT_MIN_MS;
		if (!stopping && nt >= 0 && (timeout < 0 || nt < timeout))
			timeout = nt;
		rc = poll(p, 4, timeout);
		broker_expire(&broker);
		sd_after(&sd, uplink, stopping);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc == 0 && stop_deadline && mono_ms() >= stop_deadline) {
			stop_deadline = UINT64_MAX; /* kill once */
			log_warnx("the workers did not stop within %d s; killing them",
				  STOP_TIMEOUT_MS / 1000);
			for (size_t i = 0; i < 2; i++)
				if (ws[i].pid > 0)
					kill(ws[i].pid, SIGKILL);
			continue;
		}
		if (rc == 0)
			continue;
		for (size_t i = 0; i < 2; i++) {
			struct worker *w = &ws[i];

			if (w->sock < 0 || !(p[1 + i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			rc = broker_serve_one(&broker, w->sock, w->peer);
			if (rc == 0 && broker.last_type == MSG_UPLINK_BROKE) {
				const struct log_event ev = { .priority = LOG_ERR,
							      .id = LOG_ID_WORKER_KILLED,
							      .worker = "uplink" };

				log_event(&ev, "the collector says the uplink broke the protocol (%s): "
					  "treating it as compromised, killing it and shutting down",
					  broker.detail);
				if (uplink->pid > 0)
					kill(uplink->pid, SIGKILL);
				compromised = true;
				if (!stopping) {
					stopping = true;
					if (collector->pid > 0)
						kill(collector->pid, SIGTERM);
				}
				continue;
			}
			if (rc == 0 && broker.last_type == MSG_EXPORT_CONFIG) {
				if (!stopping && uplink->sock >= 0)
					export_from_policy(o, &broker.export_cfg, uplink->sock, &export_msg);
				continue;
			}
			if (rc == 0 && broker.last_type == MSG_SAMPLING_START && !sd.started) {
				const struct log_event ev = { .priority = LOG_INFO, .id = LOG_ID_STARTED,
							      .hz = o->hz };

				log_request(&broker, w, &capped_quiet);
				log_event(&ev, "sampling %u CPUs at %u Hz (ceiling %u), writing a profile "
					  "every %u s to %s", setup.ncpus, o->hz, o->max_hz, o->interval_s,
					  o->output);
				if (strcmp(VIGIL_BUILD_KIND, "development") == 0)
					log_warnx("this is a development build: its BPF objects are signed "
						  "by a CA made when it was built, not by a release key; "
						  "re-sign them and replace the trust store before production "
						  "use (docs/signing.md)");
				/* BPF loaded, workers confined and ready, sampling started: READY=1 (sd_after). */
				sd.started = true;
				sd_after(&sd, uplink, stopping);
				continue;
			}
			if (rc == 0) {
				log_request(&broker, w, &capped_quiet);
				if (sd.ready && (broker.last_type == MSG_COLLECTOR_BEAT ||
						 broker.last_type == MSG_UPLINK_BEAT))
					sd_update_status(&sd);
				sd_after(&sd, uplink, stopping);
				continue;
			}
			if (rc == -EPROTO) {
				const struct log_event ev = { .priority = LOG_ERR,
							      .id = LOG_ID_WORKER_KILLED,
							      .worker = w->name };

				log_event(&ev, "the %s broke the protocol (%s): treating it as compromised, "
					  "killing it and shutting down", w->name, broker.violation);
				if (w->pid > 0)
					kill(w->pid, SIGKILL);
				compromised = true;
			}
			/* Closed, broken or hostile: this worker is done. */
			close(w->sock);
			w->sock = -1;
			if (!stopping) {
				stopping = true;
				for (size_t j = 0; j < 2; j++)
					if (ws[j].pid > 0 && j != i)
						kill(ws[j].pid, SIGTERM);
			}
		}
		if (pm[0] >= 0 && (p[3].revents & (POLLIN | POLLHUP | POLLERR))) {
			/* The uplink asks for the figures for a scrape, and sends nothing else there. */
			int asks = privsep_take_asks(pm[0], PEER_UPLINK, seen_pm, MSG_METRICS_WANTED,
						     METRICS_ASKS_PER_TURN);

			proc_wanted |= asks > 0;
			if (asks == -EPROTO) {
				const struct log_event ev = { .priority = LOG_ERR,
							      .id = LOG_ID_WORKER_KILLED,
							      .worker = "uplink" };

				log_event(&ev, "the uplink broke the protocol on its metrics socket: "
					  "treating it as compromised, killing it and shutting down");
				if (uplink->pid > 0)
					kill(uplink->pid, SIGKILL);
				compromised = true;
				if (!stopping) {
					stopping = true;
					if (collector->pid > 0)
						kill(collector->pid, SIGTERM);
				}
			}
			if (asks < 0) {
				close(pm[0]);
				pm[0] = -1;
			}
		}
		if (!(p[0].revents & POLLIN))
			continue;
		if (read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		switch (si.ssi_signo) {
		case SIGINT:
		case SIGTERM:
			if (!stopping) {
				stopping = true;
				for (size_t i = 0; i < 2; i++)
					if (ws[i].pid > 0)
						kill(ws[i].pid, SIGTERM);
			}
			break;
		case SIGCHLD:
			if (!reap(ws, 2))
				break;
			for (size_t i = 0; i < 2; i++)
				if (!ws[i].pid && WIFSIGNALED(ws[i].status) && WTERMSIG(ws[i].status) != SIGTERM)
					compromised = true;
			if (!stopping) {
				/* One worker ended (the collector at --duration): stop the other. */
				stopping = true;
				for (size_t i = 0; i < 2; i++)
					if (ws[i].pid > 0)
						kill(ws[i].pid, SIGTERM);
			}
			break;
		case SIGHUP:
			if (!stopping && sd.ready) {
				/* READY=1 again once the collector took the policy (sd_after). */
				notify_reloading(&sd.n, mono_us());
				sd.reloading = true;
				sd.reload_deadline_us = mono_us() + RELOAD_TIMEOUT_US;
			}
			/* Certificate rotation: the next connection uses the files on disk now. */
			if (o->control_plane && !stopping && uplink->sock >= 0 &&
			    send_creds(o, uplink->sock, &cp_addrs, NULL, -1, 0) == 0)
				log_info("SIGHUP: --cert, --key and --ca passed to the uplink");
			/* The export files again, as the policy's section (if any) names them. */
			if (o->export_url && !stopping && uplink->sock >= 0) {
				if (broker.export_cfg.flags & EXPORT_CONFIG_F_SET)
					export_from_policy(o, &broker.export_cfg, uplink->sock, &export_msg);
				else
					export_reload(o, uplink->sock, &export_msg);
			}
			if (!o->policy) {
				if (!o->control_plane && !o->export_url)
					log_info("SIGHUP: no --policy to reload");
			} else if (!stopping && collector->sock >= 0 &&
				   policyfile_open(o->policy, &policy_fd, why, sizeof(why)) < 0) {
				log_warnx("SIGHUP: policy not reloaded: %s; keeping the policy in force", why);
			} else if (!stopping && collector->sock >= 0) {
				rc = send_policy(collector->sock, o->policy, policy_fd);
				if (rc)
					log_warn_errno(rc, "cannot pass the policy to the collector");
				else
					log_info("SIGHUP: %s passed to the collector to reload", o->policy);
				if (!rc)
					sd.reloads_sent++;
			}
			break;
		default:
			break;
		}
		/* A SIGHUP with nothing for the collector to take is done already. */
		sd_after(&sd, uplink, stopping);
	}
	sampler_free(s);
	broker_release(&broker);
	auditlog_free(kernel_log);
	rc = exit_code(collector, compromised);
	if (rc == 0)
		log_info("stopped");
	else if (compromised)
		log_warnx("stopped after a worker failed; exiting %d so that the service is restarted", rc);
	return rc;
}
