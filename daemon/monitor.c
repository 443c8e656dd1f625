/*
 * monitor.c - vigild's monitor: the privileged process systemd starts.
 *
 * It checks that it may load BPF and open perf events, loads the sampler
 * from bytes read once into memory, opens the output directory, and starts
 * the collector by fork + re-exec of this same binary (a fresh address-space
 * layout), handing it only the fds it needs over a socketpair.  Then it
 * waits: it forwards SIGINT/SIGTERM to the collector, and exits with the
 * collector's status once the collector has flushed.
 *
 * Privileges: root, or CAP_BPF + CAP_PERFMON (CAP_SYS_ADMIN also serves).
 * Dropping everything it does not need after start-up, and seccomp, come
 * with the privilege-separation work.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "log.h"
#include "monitor.h"
#include "privsep.h"
#include "sampler.h"

#define EX_SOFTWARE 70
#define EX_OSERR 71
#define EX_UNAVAILABLE 69
#define EX_CANTCREAT 73
#define EX_NOPERM 77
#define EX_CONFIG 78

#define INSTALLED_BPF_DIR "/usr/lib/vigil/bpf"
#define MAX_OBJECT_BYTES (16u << 20)
#define READY_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS 30000

extern char **environ;

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
	log_warnx("libbpf: %s", buf);
	return 0;
}

/* Either capability, or CAP_SYS_ADMIN which the kernel accepts for both. */
static void check_privileges(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { 0 };
	bool bpf, perfmon, admin;
	uint64_t eff;

	if (syscall(SYS_capget, &hdr, data) < 0)
		fatalx(EX_OSERR, "capget: %s", strerror(errno));
	eff = (uint64_t)data[1].effective << 32 | data[0].effective;
	admin = eff & (1ull << CAP_SYS_ADMIN);
	bpf = admin || (eff & (1ull << CAP_BPF));
	perfmon = admin || (eff & (1ull << CAP_PERFMON));
	if (bpf && perfmon)
		return;
	fatalx(EX_NOPERM, "missing %s%s%s: run as root, or grant them (systemd: AmbientCapabilities=CAP_BPF CAP_PERFMON)",
	       bpf ? "" : "CAP_BPF", !bpf && !perfmon ? " and " : "", perfmon ? "" : "CAP_PERFMON");
}

static void check_btf(void)
{
	if (access("/sys/kernel/btf/vmlinux", R_OK) == 0)
		return;
	fatalx(EX_UNAVAILABLE, "this kernel has no BTF (/sys/kernel/btf/vmlinux: %s); vigild's BPF "
	       "programs need a kernel built with CONFIG_DEBUG_INFO_BTF=y", strerror(errno));
}

/* --bpf-dir, else build/bpf next to a build/vigild, else the installed place. */
static void bpf_dir(const struct vigild_opts *o, char *out, size_t len)
{
	char exe[PATH_MAX], cand[PATH_MAX + 16];

	/* out is PATH_MAX; a longer candidate is simply not used. */
	ssize_t n;
	struct stat st;

	if (o->bpf_dir) {
		snprintf(out, len, "%s", o->bpf_dir);
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		snprintf(cand, sizeof(cand), "%s/bpf", dirname(exe));
		if (strlen(cand) < len && stat(cand, &st) == 0 && S_ISDIR(st.st_mode)) {
			memcpy(out, cand, strlen(cand) + 1);
			return;
		}
	}
	snprintf(out, len, "%s", INSTALLED_BPF_DIR);
}

/* The whole object, read once; what is loaded is exactly these bytes. */
static void *read_object(const char *path, size_t *ret_len)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		fatalx(EX_UNAVAILABLE, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		fatalx(EX_UNAVAILABLE, "%s: not a regular file", path);
	if (st.st_size <= 0 || (uint64_t)st.st_size > MAX_OBJECT_BYTES)
		fatalx(EX_UNAVAILABLE, "%s: size %lld is not between 1 byte and %u bytes", path,
		       (long long)st.st_size, MAX_OBJECT_BYTES);
	buf = malloc(st.st_size);
	if (!buf)
		fatalx(EX_OSERR, "out of memory");
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fatalx(EX_UNAVAILABLE, "%s: short read", path);
		got += n;
	}
	close(fd);
	*ret_len = got;
	return buf;
}

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0750) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0750) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int open_output(const char *path)
{
	int rc = mkdir_p(path), fd;

	if (rc)
		fatalx(EX_CANTCREAT, "output directory %s: %s", path, strerror(-rc));
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		fatalx(EX_CANTCREAT, "output directory %s: %s", path, strerror(errno));
	if (faccessat(fd, ".", W_OK, AT_EACCESS) < 0)
		fatalx(EX_CANTCREAT, "output directory %s is not writable: %s", path, strerror(errno));
	return fd;
}

static pid_t start_collector(int self_fd, int sock, const sigset_t *oldmask)
{
	char *argv[] = { "vigild", "--internal-role", "collector", NULL };
	pid_t pid = fork();

	if (pid < 0)
		fatalx(EX_OSERR, "fork: %s", strerror(errno));
	if (pid > 0)
		return pid;
	/* Child: only the socket crosses the exec (everything else is CLOEXEC). */
	if (sock == PRIVSEP_FD) {
		if (fcntl(sock, F_SETFD, 0) < 0)
			_exit(EX_OSERR);
	} else if (dup2(sock, PRIVSEP_FD) < 0) {
		_exit(EX_OSERR);
	}
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	fexecve(self_fd, argv, environ);
	fprintf(stderr, "vigild: cannot re-execute for the collector: %s\n", strerror(errno));
	_exit(EX_OSERR);
}

static void wait_ready(int sock, bool *seen)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };
	uint8_t buf[PRIVSEP_MAX_MSG];
	int fds[PRIVSEP_MAX_FDS];
	size_t len;
	int rc;

	rc = poll(&p, 1, READY_TIMEOUT_MS);
	if (rc == 0)
		fatalx(EX_SOFTWARE, "the collector did not start within %d s", READY_TIMEOUT_MS / 1000);
	rc = privsep_recv(sock, PEER_COLLECTOR, seen, buf, &len, fds);
	if (rc != MSG_COLLECTOR_READY)
		fatalx(EX_SOFTWARE, "the collector failed to start (%s)",
		       rc < 0 ? strerror(-rc) : "unexpected message");
}

static int exit_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	log_warnx("the collector was killed by signal %d", WTERMSIG(status));
	return EX_SOFTWARE;
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
		.flags = (o->build_id ? SETUP_F_BUILD_ID : 0) | (o->top ? SETUP_F_TOP : 0),
	};
	bool seen[MSG_TYPE_MAX] = { 0 };
	char dir[PATH_MAX], path[PATH_MAX + 32], err[2048];
	struct sampler *s;
	sigset_t mask, oldmask;
	struct timespec now;
	size_t objlen;
	void *obj;
	int out_fd, self_fd, sv[2], sfd, rc, status = 0, code = -1;
	bool stop_sent = false;
	pid_t child;

	log_init("vigild");
	check_privileges();
	check_btf();
	libbpf_set_print(libbpf_log);

	bpf_dir(o, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/profile.bpf.o", dir);
	obj = read_object(path, &objlen);
	out_fd = open_output(o->output);
	self_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (self_fd < 0)
		fatalx(EX_OSERR, "/proc/self/exe: %s", strerror(errno));

	rc = sampler_open(obj, objlen, path, &scfg, &s, err, sizeof(err));
	free(obj);
	if (rc)
		fatalx(rc == -EPERM || rc == -EACCES ? EX_NOPERM : EX_UNAVAILABLE, "%s", err);
	clock_gettime(CLOCK_REALTIME, &now);
	setup.start_realtime_ns = (uint64_t)now.tv_sec * 1000000000ull + now.tv_nsec;
	setup.ncpus = sampler_ncpus(s);

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		fatalx(EX_OSERR, "socketpair: %s", strerror(errno));
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, &oldmask);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		fatalx(EX_OSERR, "signalfd: %s", strerror(errno));

	child = start_collector(self_fd, sv[1], &oldmask);
	close(sv[1]);
	{
		int fds[3] = { sampler_events_fd(s), sampler_stats_fd(s), out_fd };

		rc = privsep_send(sv[0], &setup, sizeof(setup), fds, 3);
		if (rc)
			fatalx(EX_SOFTWARE, "cannot hand the collector its work: %s", strerror(-rc));
	}
	close(out_fd);
	wait_ready(sv[0], seen);
	log_info("sampling %u CPUs at %u Hz, writing a profile every %u s to %s", setup.ncpus, o->hz,
		 o->interval_s, o->output);

	while (code < 0) {
		struct pollfd p[2] = { { .fd = sfd, .events = POLLIN }, { .fd = sv[0], .events = POLLIN } };
		struct signalfd_siginfo si;

		rc = poll(p, 2, stop_sent ? STOP_TIMEOUT_MS : -1);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc == 0) {
			log_warnx("the collector did not stop within %d s; killing it", STOP_TIMEOUT_MS / 1000);
			kill(child, SIGKILL);
			stop_sent = false;
			continue;
		}
		if (p[1].revents & POLLIN) {
			uint8_t buf[PRIVSEP_MAX_MSG];
			int fds[PRIVSEP_MAX_FDS];
			size_t len;

			rc = privsep_recv(sv[0], PEER_COLLECTOR, seen, buf, &len, fds);
			if (rc != -EPIPE) {
				/* Nothing is allowed after READY: the collector is not to be trusted. */
				log_warnx("the collector sent a message the protocol forbids (%s); stopping it",
					  rc < 0 ? strerror(-rc) : "unexpected type");
				kill(child, SIGKILL);
			}
			/* On EOF just wait for SIGCHLD; stop polling the socket. */
			p[1].fd = -1;
			close(sv[0]);
			sv[0] = -1;
		}
		if (!(p[0].revents & POLLIN))
			continue;
		if (read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		switch (si.ssi_signo) {
		case SIGINT:
		case SIGTERM:
			if (!stop_sent) {
				kill(child, SIGTERM);
				stop_sent = true;
			}
			break;
		case SIGCHLD:
			while ((rc = waitpid(child, &status, WNOHANG)) < 0 && errno == EINTR)
				;
			if (rc == child)
				code = exit_status(status);
			break;
		default:
			break; /* SIGHUP: nothing to reload yet */
		}
		if (sv[0] < 0 && code < 0) {
			/* Socket gone: the collector is exiting; reap it. */
			if (waitpid(child, &status, 0) == child)
				code = exit_status(status);
		}
	}
	sampler_free(s);
	if (code == 0)
		log_info("stopped");
	return code;
}
