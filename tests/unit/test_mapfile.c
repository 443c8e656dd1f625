/*
 * test_mapfile.c - the monitor's opener of mapped files (mapfile.c), run
 * the way the monitor runs it after start-up: in a child that became the
 * unprivileged user with exactly the monitor's capabilities
 * (sandbox_monitor_drop) under the monitor's seccomp filter.  Every case
 * reads that child's /proc/self/status and checks its uid, capability
 * sets, no_new_privs and seccomp mode before trusting its answer.
 *
 * The targets are real processes mapping real files: a root process; a
 * binary visible only in a private mount namespace; a chrooted process
 * whose root holds a symbolic link leading out of it to the mapped file; a
 * file whose name holds a backslash or a newline; a file overmounted or
 * replaced after it was mapped; and the monitor's own pid, asked through
 * the broker.  It also shows that /proc/PID/map_files, which full root
 * can open, is refused to the monitor's capabilities on this kernel.
 *
 * Needs root (to drop to the unprivileged user and to build the targets):
 * skipped otherwise, failed with VIGIL_REQUIRE_BPF=1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "rootonly.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "mapfile.h"
#include "privsep.h"
#include "procmaps.h"
#include "sandbox.h"

#define SLEEP_BIN "/bin/sleep"

static uid_t vigil_uid;
static gid_t vigil_gid;
static char tmp[] = "/tmp/vigil-mapfile-XXXXXX";

/* A process and one executable file mapping of it, as the monitor reads it. */
struct target {
	pid_t pid;
	struct procmap mp;
	char path[PATH_MAX];
};

/* Every target started, killed after each test whatever happened. */
static pid_t targets[8];
static size_t ntargets;

static void track(pid_t pid)
{
	assert_true(ntargets < sizeof(targets) / sizeof(targets[0]));
	targets[ntargets++] = pid;
}

/* In a target child: no stdio shared with the test runner's pipes. */
static void detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		_exit(89);
	close(fd);
}

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	ssize_t n;

	if (in < 0 || out < 0)
		_exit(90);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			_exit(91);
	close(in);
	close(out);
}

/* mkdir -p of the directory that will hold path. */
static void mkdirs(const char *path)
{
	char buf[3 * PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = strchr(buf + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		assert_true(mkdir(buf, 0755) == 0 || errno == EEXIST);
		*p = '/';
	}
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		_exit(92);
	close(fd);
}

/* Mount changes made from here on stay in the calling process's namespace. */
static void private_mounts(void)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		_exit(93);
}

/*
 * Wait until pid maps `path` executable (as the kernel prints it, deleted
 * or not) and fill t from this process's own reading of its maps.
 */
static void find_mapping(struct target *t, const char *path)
{
	for (int i = 0; i < 500; i++) {
		struct procmaps *m = NULL;

		if (procmaps_read(t->pid, &m) == 0) {
			for (size_t k = 0; k < m->n; k++) {
				if (!(m->maps[k].prot & PROT_EXEC) || strcmp(m->maps[k].path, path))
					continue;
				t->mp = m->maps[k];
				snprintf(t->path, sizeof(t->path), "%s", m->maps[k].path);
				t->mp.path = t->path;
				procmaps_free(m);
				return;
			}
			procmaps_free(m);
		}
		usleep(10000);
	}
	fail_msg("process %d never mapped %s", (int)t->pid, path);
}

/* A child that runs setup() (as root), then execs argv. */
static pid_t spawn_exec(void (*setup)(const void *), const void *arg, char *const argv[])
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		detach_stdio();
		if (setup)
			setup(arg);
		execv(argv[0], argv);
		_exit(127);
	}
	track(pid);
	return pid;
}

/*
 * A child that runs before() (as root), maps `file` readable and
 * executable, runs after(), says so, and waits to be killed.
 */
static pid_t spawn_map(void (*before)(const void *), void (*after)(const void *), const void *arg,
		       const char *file)
{
	int p[2];
	char c;
	pid_t pid;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd;

		close(p[0]);
		detach_stdio();
		if (before)
			before(arg);
		fd = open(file, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) == MAP_FAILED)
			_exit(94);
		close(fd);
		if (after)
			after(arg);
		if (write(p[1], "r", 1) != 1)
			_exit(95);
		for (;;)
			pause();
	}
	track(pid);
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	return pid;
}

static int stop_all(void **state)
{
	for (size_t i = 0; i < ntargets; i++) {
		kill(targets[i], SIGKILL);
		waitpid(targets[i], NULL, 0);
	}
	ntargets = 0;
	return 0;
}

static void stop(pid_t pid)
{
	for (size_t i = 0; i < ntargets; i++) {
		if (targets[i] != pid)
			continue;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		targets[i] = targets[--ntargets];
		return;
	}
}

/* --- the monitor's side ------------------------------------------------- */

/* What a case run as the monitor reports, with that process's identity. */
struct as_monitor {
	unsigned long long cap_eff, cap_prm, cap_inh, cap_bnd, cap_amb;
	unsigned uid[4], gid[4];
	int no_new_privs, seccomp, status_fields;
	/* the case's own results */
	int rc;           /* 0 or -errno */
	int accmode;
	uint64_t ino, dev;
	char head[4];     /* the first bytes read through the fd */
	int rc2, rc3;     /* more results, for cases that ask more than once */
};

static void read_status(struct as_monitor *r)
{
	char buf[4096], *line;
	ssize_t n;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (line = buf; line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		r->status_fields += sscanf(line, "CapEff: %llx", &r->cap_eff) == 1;
		r->status_fields += sscanf(line, "CapPrm: %llx", &r->cap_prm) == 1;
		r->status_fields += sscanf(line, "CapInh: %llx", &r->cap_inh) == 1;
		r->status_fields += sscanf(line, "CapBnd: %llx", &r->cap_bnd) == 1;
		r->status_fields += sscanf(line, "CapAmb: %llx", &r->cap_amb) == 1;
		r->status_fields += sscanf(line, "Uid: %u %u %u %u", &r->uid[0], &r->uid[1], &r->uid[2],
					   &r->uid[3]) == 4;
		r->status_fields += sscanf(line, "Gid: %u %u %u %u", &r->gid[0], &r->gid[1], &r->gid[2],
					   &r->gid[3]) == 4;
		r->status_fields += sscanf(line, "NoNewPrivs: %d", &r->no_new_privs) == 1;
		r->status_fields += sscanf(line, "Seccomp: %d", &r->seccomp) == 1;
	}
}

/*
 * Run fn(arg, r) in a child that is the monitor after start-up: the
 * unprivileged user, the monitor's capabilities, its seccomp filter.  The
 * child dying (SIGSYS: a system call the filter forbids) fails the test,
 * and so does any difference from the monitor's identity.
 */
static void as_monitor(void (*fn)(const void *, struct as_monitor *), const void *arg,
		       struct as_monitor *ret)
{
	unsigned long long want = 0;
	int p[2], status;
	ssize_t n;
	pid_t pid;

	memset(ret, 0, sizeof(*ret));
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct as_monitor r = { 0 };

		close(p[0]);
		if (sandbox_monitor_drop(vigil_uid, vigil_gid) < 0)
			_exit(80);
		if (sandbox_seccomp(SANDBOX_MONITOR) < 0)
			_exit(81);
		read_status(&r);
		fn(arg, &r);
		/* exit_group itself: the sanitizers' _exit does more than the filter allows */
		syscall(SYS_exit_group, write(p[1], &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 82);
	}
	close(p[1]);
	n = read(p[0], ret, sizeof(*ret));
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		fail_msg("the monitor-like child was killed by signal %d", WTERMSIG(status));
	if (WEXITSTATUS(status) != 0)
		fail_msg("the monitor-like child exited %d (80: drop failed, 81: seccomp failed)",
			 WEXITSTATUS(status));
	assert_int_equal(n, sizeof(*ret));

	for (size_t i = 0; i < sandbox_monitor_ncaps; i++)
		want |= 1ull << sandbox_monitor_caps[i];
	assert_int_equal(ret->status_fields, 9);
	assert_int_equal(ret->cap_eff, want);
	assert_int_equal(ret->cap_prm, want);
	assert_int_equal(ret->cap_bnd, want);
	assert_int_equal(ret->cap_inh, 0);
	assert_int_equal(ret->cap_amb, 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(ret->uid[i], vigil_uid);
		assert_int_equal(ret->gid[i], vigil_gid);
	}
	assert_int_equal(ret->no_new_privs, 1);
	assert_int_equal(ret->seccomp, 2);
}

static void open_case(const void *arg, struct as_monitor *r)
{
	const struct target *t = arg;
	struct stat st;
	int fd = mapfile_open((uint32_t)t->pid, &t->mp, &st);

	r->rc = fd < 0 ? fd : 0;
	if (fd < 0)
		return;
	r->accmode = fcntl(fd, F_GETFL) & O_ACCMODE;
	r->ino = st.st_ino;
	r->dev = st.st_dev;
	if (pread(fd, r->head, sizeof(r->head), 0) != (ssize_t)sizeof(r->head))
		r->rc = -EIO;
	close(fd);
}

/* mapfile_open as the monitor: the mapped file, read-only, readable. */
static void assert_opens(const struct target *t)
{
	struct as_monitor r;

	as_monitor(open_case, t, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.accmode, O_RDONLY);
	assert_int_equal(r.ino, t->mp.inode);
	assert_int_equal(r.dev, makedev(t->mp.dev_major, t->mp.dev_minor));
	assert_memory_equal(r.head, "\177ELF", 4);
}

static void assert_refused(const struct target *t, int err)
{
	struct as_monitor r;

	as_monitor(open_case, t, &r);
	assert_int_equal(r.rc, err);
}

/* --- fixtures ----------------------------------------------------------- */

static int setup_group(void **state)
{
	bool fell_back;

	if (geteuid() != 0)
		return 0; /* each test skips (or fails, when it may not) */
	if (sandbox_user(&vigil_uid, &vigil_gid, &fell_back) < 0 || !mkdtemp(tmp))
		return -1;
	return 0;
}

static int teardown_group(void **state)
{
	rm_tree(tmp);
	return 0;
}

/* A root process running /bin/sleep, and its executable mapping. */
static void sleeper(struct target *t)
{
	char *argv[] = { SLEEP_BIN, "1000", NULL };
	char real[PATH_MAX];

	assert_non_null(realpath(SLEEP_BIN, real));
	t->pid = spawn_exec(NULL, NULL, argv);
	find_mapping(t, real);
}

/* --- cases -------------------------------------------------------------- */

static void nothing(const void *arg, struct as_monitor *r)
{
}

/* The drop leaves exactly the monitor's identity (checked in as_monitor). */
static void test_identity(void **state)
{
	struct as_monitor r;

	need_root();
	as_monitor(nothing, NULL, &r);
	assert_true(vigil_uid != 0);
	assert_false(r.cap_eff & (1ull << CAP_SYS_ADMIN));
	assert_false(r.cap_eff & (1ull << CAP_CHECKPOINT_RESTORE));
}

static void map_files_case(const void *arg, struct as_monitor *r)
{
	const struct target *t = arg;
	char path[96];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)t->pid,
		 t->mp.start, t->mp.end);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	r->rc = fd < 0 ? -errno : 0;
	if (fd >= 0)
		close(fd);
}

/*
 * Why mapfile.c has no map_files branch: full root opens the link, the
 * monitor's capabilities (no CAP_SYS_ADMIN, no CAP_CHECKPOINT_RESTORE)
 * get EPERM from this kernel.
 */
static void test_map_files_refused(void **state)
{
	struct target t;
	struct as_monitor r;
	char path[96];
	int fd;

	need_root();
	sleeper(&t);
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)t.pid,
		 t.mp.start, t.mp.end);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0); /* as root */
	close(fd);
	as_monitor(map_files_case, &t, &r);
	assert_int_equal(r.rc, -EPERM);
	stop(t.pid);
}

/* A process of another user (root): opened. */
static void test_other_user(void **state)
{
	struct target t;

	need_root();
	sleeper(&t);
	assert_opens(&t);
	stop(t.pid);
}

static void hidden_setup(const void *arg)
{
	const char *dir = arg;
	char bin[PATH_MAX];

	private_mounts();
	if (mount("tmpfs", dir, "tmpfs", 0, "mode=0700") < 0)
		_exit(96);
	snprintf(bin, sizeof(bin), "%s/sleep", dir);
	copy_file(SLEEP_BIN, bin);
}

/* A binary that exists only in the process's private mount namespace. */
static void test_private_mount_ns(void **state)
{
	char dir[PATH_MAX], bin[PATH_MAX + 8];
	char *argv[] = { bin, "1000", NULL };
	struct target t;
	struct stat st;

	need_root();
	snprintf(dir, sizeof(dir), "%s/ns", tmp);
	snprintf(bin, sizeof(bin), "%s/sleep", dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	t.pid = spawn_exec(hidden_setup, dir, argv);
	find_mapping(&t, bin);
	/* From here (and from the monitor's namespace) there is nothing there. */
	assert_int_equal(stat(bin, &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_opens(&t);
	stop(t.pid);
}

static void chroot_setup(const void *arg)
{
	if (chroot(arg) < 0 || chdir("/") < 0)
		_exit(97);
}

/*
 * A chrooted process: the monitor reads the mapped file's path as seen
 * from its own root, and resolves it inside the process's root, where the
 * first component is a symbolic link leading out of that root - to the
 * very file that is mapped.  Followed, it would open it; it is refused.
 */
static void test_symlink_out_of_root(void **state)
{
	char root[PATH_MAX], file[PATH_MAX + 16], lnk[PATH_MAX + 8], naive[2 * PATH_MAX];
	char inside[3 * PATH_MAX];
	struct target t;
	struct stat st;

	need_root();
	snprintf(root, sizeof(root), "%s/root", tmp);
	snprintf(file, sizeof(file), "%s/lib", root);
	assert_int_equal(mkdir(root, 0755), 0);
	assert_int_equal(mkdir(file, 0755), 0);
	snprintf(file, sizeof(file), "%s/lib/target", root);
	copy_file(SLEEP_BIN, file);
	/* tmp is /tmp/...: the process's /tmp leads to the host's /tmp */
	snprintf(lnk, sizeof(lnk), "%s/tmp", root);
	assert_int_equal(symlink("/tmp", lnk), 0);

	t.pid = spawn_map(chroot_setup, NULL, root, "/lib/target");
	find_mapping(&t, file); /* the host's path: our root is / */

	/* Control: /proc/PID/root + path, symlinks followed, is the mapped file. */
	snprintf(naive, sizeof(naive), "/proc/%d/root%s", (int)t.pid, t.path);
	assert_int_equal(stat(naive, &st), 0);
	assert_int_equal(st.st_ino, t.mp.inode);
	assert_int_equal(lstat(lnk, &st), 0);
	assert_true(S_ISLNK(st.st_mode));

	assert_refused(&t, -ELOOP);

	/*
	 * The same link, now leading inside the root to a hard link of the
	 * mapped file: a resolution confined to the root (RESOLVE_IN_ROOT)
	 * would open it; a symlink on the way is refused all the same.
	 */
	snprintf(inside, sizeof(inside), "%s/real%s", root, t.path);
	mkdirs(inside);
	assert_int_equal(link(file, inside), 0);
	assert_int_equal(unlink(lnk), 0);
	assert_int_equal(symlink("/real/tmp", lnk), 0);
	assert_refused(&t, -ELOOP);
	stop(t.pid);
}

/*
 * A backslash in a mapped file's name: maps prints a newline as "\012"
 * and a backslash as itself, so the path cannot be trusted to name the
 * file.  Refused, for a name with a backslash, and for a name with a
 * newline next to a decoy literally named like its escaped form.
 */
static void test_backslash(void **state)
{
	char file[PATH_MAX], decoy[PATH_MAX], shown[PATH_MAX];
	struct target t;

	need_root();
	snprintf(file, sizeof(file), "%s/lib\\x.so", tmp);
	copy_file(SLEEP_BIN, file);
	t.pid = spawn_map(NULL, NULL, NULL, file);
	find_mapping(&t, file);
	assert_non_null(strchr(t.mp.path, '\\'));
	assert_refused(&t, -EINVAL);
	stop(t.pid);

	snprintf(file, sizeof(file), "%s/lib\ny.so", tmp);
	snprintf(decoy, sizeof(decoy), "%s/lib\\012y.so", tmp);
	copy_file(SLEEP_BIN, file);
	copy_file(SLEEP_BIN, decoy);
	t.pid = spawn_map(NULL, NULL, NULL, file);
	snprintf(shown, sizeof(shown), "%s/lib\\012y.so", tmp);
	find_mapping(&t, shown);
	assert_refused(&t, -EINVAL);
	stop(t.pid);
}

static void overmount_after(const void *arg)
{
	const char *dir = arg;
	char path[PATH_MAX], other[PATH_MAX];

	/* same file system, another inode: a bind mount of another file */
	snprintf(path, sizeof(path), "%s/bind/lib", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	if (mount(other, path, NULL, MS_BIND, NULL) < 0)
		_exit(98);
}

static void overmount_dev_after(const void *arg)
{
	const char *dir = arg;
	char path[PATH_MAX];

	/* another file system: a tmpfs over the directory, same name in it */
	snprintf(path, sizeof(path), "%s/dev", dir);
	if (mount("tmpfs", path, "tmpfs", 0, "mode=0755") < 0)
		_exit(99);
	snprintf(path, sizeof(path), "%s/dev/lib", dir);
	write_file(path, "\177ELF not the mapped file");
}

static void private_before(const void *arg)
{
	private_mounts();
}

/*
 * The path in maps now leads to another file than the one mapped: -ESTALE
 * (another inode on the same device; another device).  Replaced by a
 * rename, the mapping says "(deleted)": -ENOENT.
 */
static void test_replaced(void **state)
{
	char dir[PATH_MAX + 16], file[PATH_MAX + 32], other[PATH_MAX + 32];
	struct target t;
	struct stat st;

	need_root();
	snprintf(dir, sizeof(dir), "%s/bind", tmp);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(file, sizeof(file), "%s/bind/lib", tmp);
	snprintf(other, sizeof(other), "%s/other", tmp);
	copy_file(SLEEP_BIN, file);
	copy_file(SLEEP_BIN, other);
	t.pid = spawn_map(private_before, overmount_after, tmp, file);
	find_mapping(&t, file);
	assert_false(t.mp.deleted);
	assert_int_equal(stat(other, &st), 0);
	assert_int_equal(st.st_dev, makedev(t.mp.dev_major, t.mp.dev_minor));
	assert_true(st.st_ino != t.mp.inode);
	assert_refused(&t, -ESTALE);
	stop(t.pid);

	snprintf(dir, sizeof(dir), "%s/dev", tmp);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(file, sizeof(file), "%s/dev/lib", tmp);
	copy_file(SLEEP_BIN, file);
	t.pid = spawn_map(private_before, overmount_dev_after, tmp, file);
	find_mapping(&t, file);
	assert_false(t.mp.deleted);
	assert_refused(&t, -ESTALE);
	stop(t.pid);

	snprintf(file, sizeof(file), "%s/upgraded", tmp);
	copy_file(SLEEP_BIN, file);
	t.pid = spawn_map(NULL, NULL, NULL, file);
	snprintf(other, sizeof(other), "%s/upgraded.new", tmp);
	copy_file(SLEEP_BIN, other);
	assert_int_equal(rename(other, file), 0);
	find_mapping(&t, file);
	assert_true(t.mp.deleted);
	assert_refused(&t, -ENOENT);
	stop(t.pid);
}

struct broker_case {
	int sv[2];
	const struct target *other;
};

/* Send one request as the collector, let the broker answer, read it. */
static int ask(const struct broker_case *bc, struct broker *b, const void *msg, size_t len,
	       struct stat *ret_st)
{
	uint8_t buf[PRIVSEP_MAX_MSG];
	bool seen[MSG_TYPE_MAX] = { 0 };
	int fds[PRIVSEP_MAX_FDS], type, rc;
	struct msg_reply rep;
	size_t n;

	rc = privsep_send(bc->sv[1], msg, len, NULL, 0);
	if (rc == 0)
		rc = broker_serve_one(b, bc->sv[0], PEER_COLLECTOR);
	if (rc)
		return rc == -EPROTO ? -EBADMSG : rc;
	type = privsep_recv(bc->sv[1], PEER_MONITOR, seen, buf, &n, fds);
	if (type == MSG_FD_REPLY) {
		rc = fstat(fds[0], ret_st) < 0 ? -errno : 0;
		close(fds[0]);
		return rc;
	}
	if (type != MSG_ERR_REPLY)
		return -EBADMSG;
	memcpy(&rep, buf, sizeof(rep));
	return -(int)rep.err;
}

static void broker_run(const void *arg, struct as_monitor *r)
{
	const struct broker_case *bc = arg;
	struct broker b = { .max_hz = 100, .cgroup_root_fd = -1 };
	struct msg_open_maps om = { .hdr = { MSG_OPEN_MAPS, sizeof(om) }, .pid = (uint32_t)getpid() };
	struct msg_open_file of = { .hdr = { MSG_OPEN_FILE, sizeof(of) } };
	const struct procmap *own;
	struct procmaps *m = NULL;
	struct stat st;

	if (procmaps_read(getpid(), &m) < 0 ||
	    !(own = procmaps_find(m, (uint64_t)(uintptr_t)&broker_run))) {
		r->rc = r->rc2 = r->rc3 = -EIO;
		return;
	}
	/* its own code: refused */
	of.pid = (uint32_t)getpid();
	of.start = own->start;
	of.end = own->end;
	of.inode = own->inode;
	of.dev_major = own->dev_major;
	of.dev_minor = own->dev_minor;
	r->rc = ask(bc, &b, &of, sizeof(of), &st);
	procmaps_free(m);
	/* its own maps: refused */
	r->rc2 = ask(bc, &b, &om, sizeof(om), &st);
	/* another user's process, through the same path: answered */
	of.pid = (uint32_t)bc->other->pid;
	of.start = bc->other->mp.start;
	of.end = bc->other->mp.end;
	of.inode = bc->other->mp.inode;
	of.dev_major = bc->other->mp.dev_major;
	of.dev_minor = bc->other->mp.dev_minor;
	r->rc3 = ask(bc, &b, &of, sizeof(of), &st);
	if (r->rc3 == 0)
		r->ino = st.st_ino;
}

/* Through the broker, as the dropped monitor: its own pid is refused. */
static void test_own_pid(void **state)
{
	struct broker_case bc;
	struct target t;
	struct as_monitor r;

	need_root();
	sleeper(&t);
	bc.other = &t;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, bc.sv), 0);
	as_monitor(broker_run, &bc, &r);
	assert_int_equal(r.rc, -EPERM);
	assert_int_equal(r.rc2, -EPERM);
	assert_int_equal(r.rc3, 0);
	assert_int_equal(r.ino, t.mp.inode);
	close(bc.sv[0]);
	close(bc.sv[1]);
	stop(t.pid);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_identity, stop_all),
		cmocka_unit_test_teardown(test_map_files_refused, stop_all),
		cmocka_unit_test_teardown(test_other_user, stop_all),
		cmocka_unit_test_teardown(test_private_mount_ns, stop_all),
		cmocka_unit_test_teardown(test_symlink_out_of_root, stop_all),
		cmocka_unit_test_teardown(test_backslash, stop_all),
		cmocka_unit_test_teardown(test_replaced, stop_all),
		cmocka_unit_test_teardown(test_own_pid, stop_all),
	};
	return cmocka_run_group_tests_name("mapfile", tests, setup_group, teardown_group);
}
