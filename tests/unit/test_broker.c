/*
 * test_broker.c - the monitor's request handling over a real socketpair:
 * every message the table forbids is refused as hostile before any field
 * is used, impossible field values are hostile too, and legitimate requests
 * get exactly the fd they ask for - or a refusal when the mapping is not
 * what the collector claims.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fdcount.h"

#include "broker.h"
#include "procmaps.h"
#include "vigil_abi.h"

static int sv[2];
static pid_t child; /* a forked copy of this process: same mappings, another pid */

static int start_child(void **state)
{
	child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	return child > 0 ? 0 : -1;
}

static int stop_child(void **state)
{
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return 0;
}

static int setup(void **state)
{
	return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
}

static int teardown(void **state)
{
	close(sv[0]);
	close(sv[1]);
	return 0;
}

/* The collector's side: send raw bytes, then let the broker serve them. */
static int serve(struct broker *b, const void *msg, size_t len, enum privsep_peer from)
{
	assert_int_equal(privsep_send(sv[1], msg, len, NULL, 0), 0);
	return broker_serve_one(b, sv[0], from);
}

/* Read the broker's answer: returns the fd of an FD_REPLY, or -err. */
static int answer(void)
{
	uint8_t buf[PRIVSEP_MAX_MSG];
	bool seen[MSG_TYPE_MAX] = { 0 };
	int fds[PRIVSEP_MAX_FDS];
	size_t len;
	int type = privsep_recv(sv[1], PEER_MONITOR, seen, buf, &len, fds);
	struct msg_reply r;

	assert_true(type == MSG_FD_REPLY || type == MSG_ERR_REPLY);
	memcpy(&r, buf, sizeof(r));
	return type == MSG_FD_REPLY ? fds[0] : -r.err;
}

/* The FILES_REPLY now due: its err[] in *r, its fds in fds. */
static void files_answer(struct msg_files_reply *r, int *fds)
{
	uint8_t buf[PRIVSEP_MAX_MSG];
	bool seen[MSG_TYPE_MAX] = { 0 };
	size_t len;

	assert_int_equal(privsep_recv(sv[1], PEER_MONITOR, seen, buf, &len, fds), MSG_FILES_REPLY);
	memcpy(r, buf, sizeof(*r));
}

static void test_table_violations(void **state)
{
	struct broker b = { .max_hz = 100, .cgroup_root_fd = -1 };
	struct msg_open_maps om = { .hdr = { MSG_OPEN_MAPS, sizeof(om) }, .pid = 1 };
	struct msg_ready rd = { .hdr = { MSG_COLLECTOR_READY, sizeof(rd) }, .version = PRIVSEP_VERSION };
	uint8_t longer[sizeof(om) + 8] = { 0 };
	struct msg_hdr h;

	/* wrong lengths */
	assert_int_equal(serve(&b, &om, sizeof(om) - 1, PEER_COLLECTOR), -EPROTO);
	memcpy(longer, &om, sizeof(om));
	((struct msg_hdr *)longer)->len = sizeof(longer);
	assert_int_equal(serve(&b, longer, sizeof(longer), PEER_COLLECTOR), -EPROTO);
	assert_non_null(b.violation);
	/* unknown types */
	h = (struct msg_hdr){ 99, sizeof(h) };
	assert_int_equal(serve(&b, &h, sizeof(h), PEER_COLLECTOR), -EPROTO);
	h = (struct msg_hdr){ 0, sizeof(h) };
	assert_int_equal(serve(&b, &h, sizeof(h), PEER_COLLECTOR), -EPROTO);
	/* a type the collector may not send (the monitor's own) */
	struct msg_reply rep = { .hdr = { MSG_ERR_REPLY, sizeof(rep) } };
	assert_int_equal(serve(&b, &rep, sizeof(rep), PEER_COLLECTOR), -EPROTO);
	/* the collector's request, coming from the uplink */
	assert_int_equal(serve(&b, &om, sizeof(om), PEER_UPLINK), -EPROTO);
	/* once-only, twice */
	assert_int_equal(serve(&b, &rd, sizeof(rd), PEER_COLLECTOR), 0);
	assert_int_equal(b.last_type, MSG_COLLECTOR_READY);
	assert_int_equal(serve(&b, &rd, sizeof(rd), PEER_COLLECTOR), -EPROTO);
	/* the start of sampling: once, from the collector, of this version */
	{
		struct msg_ready st = { .hdr = { MSG_SAMPLING_START, sizeof(st) }, .version = PRIVSEP_VERSION };
		struct broker b2 = { .max_hz = 100, .cgroup_root_fd = -1 };

		assert_int_equal(serve(&b2, &st, sizeof(st), PEER_UPLINK), -EPROTO);
		assert_int_equal(serve(&b2, &st, sizeof(st), PEER_COLLECTOR), 0);
		assert_int_equal(b2.last_type, MSG_SAMPLING_START);
		assert_int_equal(serve(&b2, &st, sizeof(st), PEER_COLLECTOR), -EPROTO);
		st.version = PRIVSEP_VERSION + 1;
		b2 = (struct broker){ .max_hz = 100, .cgroup_root_fd = -1 };
		assert_int_equal(serve(&b2, &st, sizeof(st), PEER_COLLECTOR), -EPROTO);
	}
	/*
	 * The collector's report that the uplink broke their protocol: once,
	 * from the collector only, its reason kept for the log.
	 */
	{
		struct msg_uplink_broke br = { .hdr = { MSG_UPLINK_BROKE, sizeof(br) },
					       .version = PRIVSEP_VERSION };
		struct msg_agent_health ah = { .hdr = { MSG_AGENT_HEALTH, sizeof(ah) },
					       .version = PRIVSEP_VERSION };
		struct msg_remote_policy rp = { .hdr = { MSG_REMOTE_POLICY, sizeof(rp) },
						.version = PRIVSEP_VERSION };
		struct broker b3 = { .max_hz = 100, .cgroup_root_fd = -1 };
		int fd = 0, before = open_fd_count();

		memset(br.why, 'x', sizeof(br.why)); /* not NUL-terminated: cut */
		assert_int_equal(serve(&b3, &br, sizeof(br), PEER_UPLINK), -EPROTO);
		assert_int_equal(serve(&b3, &br, sizeof(br), PEER_COLLECTOR), 0);
		assert_int_equal(b3.last_type, MSG_UPLINK_BROKE);
		assert_int_equal(strlen(b3.detail), sizeof(br.why) - 1);
		assert_int_equal(serve(&b3, &br, sizeof(br), PEER_COLLECTOR), -EPROTO);
		/* what the workers say to each other is not for the monitor */
		assert_int_equal(serve(&b3, &ah, sizeof(ah), PEER_COLLECTOR), -EPROTO);
		assert_int_equal(privsep_send(sv[1], &rp, sizeof(rp), &fd, 1), 0);
		assert_int_equal(broker_serve_one(&b3, sv[0], PEER_UPLINK), -EPROTO);
		assert_int_equal(open_fd_count(), before); /* its fd was closed */
	}
	/* a file descriptor where none belongs */
	{
		int fd = 0;

		assert_int_equal(privsep_send(sv[1], &om, sizeof(om), &fd, 1), 0);
		assert_int_equal(broker_serve_one(&b, sv[0], PEER_COLLECTOR), -EPROTO);
	}
	/* the peer went away */
	shutdown(sv[1], SHUT_WR);
	assert_int_equal(broker_serve_one(&b, sv[0], PEER_COLLECTOR), -EPIPE);
}

static void test_hostile_values(void **state)
{
	struct broker b = { .max_hz = 100, .cgroup_root_fd = -1 };
	struct msg_open_maps om = { .hdr = { MSG_OPEN_MAPS, sizeof(om) } };
	struct msg_open_file of = { .hdr = { MSG_OPEN_FILE, sizeof(of) }, .pid = (uint32_t)getpid() };
	struct msg_set_hz hz = { .hdr = { MSG_SET_HZ, sizeof(hz) } };

	om.pid = 0;
	assert_int_equal(serve(&b, &om, sizeof(om), PEER_COLLECTOR), -EPROTO);
	om.pid = BROKER_PID_MAX + 1;
	assert_int_equal(serve(&b, &om, sizeof(om), PEER_COLLECTOR), -EPROTO);
	of.start = 0x2000;
	of.end = 0x1000; /* backwards */
	assert_int_equal(serve(&b, &of, sizeof(of), PEER_COLLECTOR), -EPROTO);
	of.start = 0x1001; /* not page-aligned */
	of.end = 0x3000;
	assert_int_equal(serve(&b, &of, sizeof(of), PEER_COLLECTOR), -EPROTO);
	assert_int_equal(serve(&b, &hz, sizeof(hz), PEER_COLLECTOR), -EPROTO);
	/* a tenant's cgroup: index in range, hz and id set, padding clear */
	{
		struct msg_tenant_cgroup tc = { .hdr = { MSG_TENANT_CGROUP, sizeof(tc) }, .tenant = 1,
						.hz = 10, .cgroup_id = 1234, .gen = 7, .pad = 1 };

		assert_int_equal(serve(&b, &tc, sizeof(tc), PEER_COLLECTOR), -EPROTO);
		tc.pad = 0;
		tc.tenant = VIGIL_MAX_TENANTS;
		assert_int_equal(serve(&b, &tc, sizeof(tc), PEER_COLLECTOR), -EPROTO);
		tc.tenant = 0;
		assert_int_equal(serve(&b, &tc, sizeof(tc), PEER_COLLECTOR), -EPROTO);
		tc.tenant = 1;
		tc.hz = 0;
		assert_int_equal(serve(&b, &tc, sizeof(tc), PEER_COLLECTOR), -EPROTO);
		tc.hz = 10;
		tc.cgroup_id = 0;
		assert_int_equal(serve(&b, &tc, sizeof(tc), PEER_COLLECTOR), -EPROTO);
	}
	/* nothing was answered: a hostile request gets no reply at all */
	{
		char c;

		assert_int_equal(recv(sv[1], &c, 1, MSG_DONTWAIT), -1);
		assert_int_equal(errno, EAGAIN);
	}
}

static void test_open_maps(void **state)
{
	struct broker b = { .max_hz = 100, .cgroup_root_fd = -1 };
	struct msg_open_maps om = { .hdr = { MSG_OPEN_MAPS, sizeof(om) }, .pid = (uint32_t)child };
	struct procmaps *m;
	int fd;

	assert_int_equal(serve(&b, &om, sizeof(om), PEER_COLLECTOR), 0);
	fd = answer();
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	assert_int_equal(procmaps_read_fd(fd, &m), 0);
	assert_non_null(procmaps_find(m, (uint64_t)(uintptr_t)&test_open_maps));
	procmaps_free(m);
	close(fd);
	/* a pid that does not exist: refused with ESRCH, not hostile */
	om.pid = BROKER_PID_MAX;
	assert_int_equal(serve(&b, &om, sizeof(om), PEER_COLLECTOR), 0);
	assert_int_equal(answer(), -ESRCH);
	/* the monitor's own layout is not for the collector */
	om.pid = (uint32_t)getpid();
	assert_int_equal(serve(&b, &om, sizeof(om), PEER_COLLECTOR), 0);
	assert_int_equal(answer(), -EPERM);
}

/*
 * OPEN_MAPS with OPEN_MAPS_F_FILES: a MAPS_REPLY with the maps, read from
 * their start, then the files of the first MAPS_REPLY_FILES distinct
 * executable file mappings in maps order, each the mapped file; a deleted
 * one's entry says ENOENT and has no fd.  The monitor keeps no fd.  Its
 * own pid is refused as without the flag; an unknown flag is hostile.
 */
static void test_open_maps_files(void **state)
{
	struct broker b = { .max_hz = 100, .cgroup_root_fd = -1 };
	struct msg_open_maps om = { .hdr = { MSG_OPEN_MAPS, sizeof(om) }, .flags = OPEN_MAPS_F_FILES };
	char path[] = "/tmp/vigil-test-broker-XXXXXX";
	bool seen[MSG_TYPE_MAX] = { 0 };
	uint8_t buf[PRIVSEP_MAX_MSG];
	int fds[PRIVSEP_MAX_FDS], tmp, before;
	struct procmaps *m, *got;
	struct msg_maps_reply r;
	uint32_t want = 0, k = 1;
	void *low;
	size_t len;
	pid_t kid;

	/* a deleted file mapped executable below everything else: the first entry */
	tmp = mkstemp(path);
	assert_true(tmp >= 0);
	assert_int_equal(ftruncate(tmp, 4096), 0);
	low = mmap((void *)0x10000000, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED_NOREPLACE, tmp, 0);
	assert_ptr_equal(low, (void *)0x10000000);
	close(tmp);
	assert_int_equal(unlink(path), 0);
	kid = fork();
	if (kid == 0) {
		/* gone with the test, should an assertion end it first */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) == 0)
			pause();
		_exit(0);
	}
	assert_true(kid > 0);
	munmap(low, 4096);
	assert_int_equal(procmaps_read(kid, &m), 0);

	om.pid = (uint32_t)kid;
	before = open_fd_count();
	assert_int_equal(serve(&b, &om, sizeof(om), PEER_COLLECTOR), 0);
	assert_int_equal(open_fd_count(), before); /* the monitor kept none */
	assert_int_equal(privsep_recv(sv[1], PEER_MONITOR, seen, buf, &len, fds), MSG_MAPS_REPLY);
	memcpy(&r, buf, sizeof(r));
	assert_int_equal(fcntl(fds[0], F_GETFL) & O_ACCMODE, O_RDONLY);
	assert_int_equal(procmaps_read_fd(fds[0], &got), 0);
	assert_int_equal(got->n, m->n); /* from the start */
	procmaps_free(got);
	close(fds[0]);
	for (size_t i = 0; i < m->n && want < MAPS_REPLY_FILES; i++) {
		const struct procmap *mp = &m->maps[i];
		const struct msg_maps_file *e;
		bool dup = false;
		struct stat st;

		if (!(mp->prot & PROT_EXEC) || !mp->inode || mp->path[0] != '/')
			continue;
		for (size_t j = 0; j < i; j++)
			dup |= (m->maps[j].prot & PROT_EXEC) && m->maps[j].path[0] == '/' &&
			       m->maps[j].inode == mp->inode && m->maps[j].dev_major == mp->dev_major &&
			       m->maps[j].dev_minor == mp->dev_minor;
		if (dup)
			continue;
		assert_true(want < r.n);
		e = &r.files[want++];
		assert_int_equal(e->map.start, mp->start);
		assert_int_equal(e->map.end, mp->end);
		assert_int_equal(e->map.inode, mp->inode);
		assert_int_equal(e->map.dev_major, mp->dev_major);
		assert_int_equal(e->map.dev_minor, mp->dev_minor);
		if (mp->deleted) {
			assert_int_equal(e->err, ENOENT);
			continue;
		}
		assert_int_equal(e->err, 0);
		assert_true(k < r.nfds);
		assert_int_equal(fstat(fds[k], &st), 0);
		assert_true(S_ISREG(st.st_mode));
		assert_int_equal(st.st_ino, mp->inode);
		assert_int_equal(fcntl(fds[k], F_GETFL) & O_ACCMODE, O_RDONLY);
		close(fds[k++]);
	}
	assert_int_equal(r.n, want);
	assert_int_equal(r.nfds, k);
	assert_true(want >= 3); /* the deleted file, this binary, the C library */
	assert_int_equal(r.files[0].map.start, 0x10000000);
	assert_int_equal(r.files[0].err, ENOENT);
	for (uint32_t i = r.n; i < MAPS_REPLY_FILES; i++)
		assert_int_equal(r.files[i].map.inode, 0);
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	procmaps_free(m);

	/* gone: refused with ESRCH, as without the flag */
	assert_int_equal(serve(&b, &om, sizeof(om), PEER_COLLECTOR), 0);
	assert_int_equal(answer(), -ESRCH);
	/* the monitor's own layout and files are not for the collector */
	om.pid = (uint32_t)getpid();
	assert_int_equal(serve(&b, &om, sizeof(om), PEER_COLLECTOR), 0);
	assert_int_equal(answer(), -EPERM);
	/* a flag nobody defined: hostile, and no answer at all */
	om.pid = (uint32_t)child;
	for (uint32_t bit = 1; bit; bit <<= 1) {
		if (bit == OPEN_MAPS_F_FILES)
			continue;
		om.flags = OPEN_MAPS_F_FILES | bit;
		b.violation = NULL;
		assert_int_equal(serve(&b, &om, sizeof(om), PEER_COLLECTOR), -EPROTO);
		assert_string_equal(b.violation, "OPEN_MAPS with unknown flags");
	}
	{
		char c;

		assert_int_equal(recv(sv[1], &c, 1, MSG_DONTWAIT), -1);
		assert_int_equal(errno, EAGAIN);
	}
	broker_release(&b);
}

/* The executable mapping that holds this test's code. */
static const struct procmap *own_text(struct procmaps **ret)
{
	assert_int_equal(procmaps_read(getpid(), ret), 0);
	return procmaps_find(*ret, (uint64_t)(uintptr_t)&own_text);
}

static void test_open_file(void **state)
{
	struct broker b = { .max_hz = 100, .cgroup_root_fd = -1 };
	struct procmaps *m;
	const struct procmap *mp = own_text(&m); /* the child's is at the same place */
	struct msg_open_file of = {
		.hdr = { MSG_OPEN_FILE, sizeof(of) },
		.pid = (uint32_t)child,
		.dev_major = mp->dev_major,
		.dev_minor = mp->dev_minor,
		.start = mp->start,
		.end = mp->end,
		.inode = mp->inode,
	};
	struct stat st;
	int fd;

	assert_int_equal(serve(&b, &of, sizeof(of), PEER_COLLECTOR), 0);
	fd = answer();
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_ino, mp->inode);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	close(fd);

	/* The collector's word about the inode is checked, not trusted. */
	of.inode++;
	assert_int_equal(serve(&b, &of, sizeof(of), PEER_COLLECTOR), 0);
	assert_int_equal(answer(), -ENOENT);
	of.inode--;
	of.dev_minor++;
	assert_int_equal(serve(&b, &of, sizeof(of), PEER_COLLECTOR), 0);
	assert_int_equal(answer(), -ENOENT);
	of.dev_minor--;
	/* a range that is not exactly one mapping */
	of.end += 4096;
	assert_int_equal(serve(&b, &of, sizeof(of), PEER_COLLECTOR), 0);
	assert_int_equal(answer(), -ENOENT);
	procmaps_free(m);

	/* A file mapping that is not executable (data) is refused. */
	{
		char path[] = "/tmp/vigil-broker-XXXXXX";
		int tfd = mkstemp(path);
		void *p;
		struct stat tst;
		struct procmaps *m2;
		const struct procmap *dm;

		assert_true(tfd >= 0);
		assert_int_equal(ftruncate(tfd, 4096), 0);
		p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, tfd, 0);
		assert_ptr_not_equal(p, MAP_FAILED);
		assert_int_equal(fstat(tfd, &tst), 0);
		assert_int_equal(procmaps_read(getpid(), &m2), 0);
		dm = procmaps_find(m2, (uint64_t)(uintptr_t)p);
		assert_non_null(dm);
		/* asked of the monitor's own pid: refused before anything else */
		of.start = dm->start;
		of.end = dm->end;
		of.inode = dm->inode;
		of.dev_major = dm->dev_major;
		of.dev_minor = dm->dev_minor;
		of.pid = (uint32_t)getpid();
		assert_int_equal(serve(&b, &of, sizeof(of), PEER_COLLECTOR), 0);
		assert_int_equal(answer(), -EPERM);
		/* in the child, which does not map it: not there */
		of.pid = (uint32_t)child;
		assert_int_equal(serve(&b, &of, sizeof(of), PEER_COLLECTOR), 0);
		assert_int_equal(answer(), -ENOENT);
		procmaps_free(m2);
		munmap(p, 4096);
		close(tfd);
		unlink(path);
	}
	broker_release(&b);
}

/* The build-id of the ELF file at path (its NT_GNU_BUILD_ID note, via readelf); its length. */
static size_t build_id_of(const char *path, uint8_t *out)
{
	char cmd[512], hex[256] = "";
	FILE *p;
	size_t n = 0;

	snprintf(cmd, sizeof(cmd), "readelf -n '%s' | awk '/Build ID/ { print $3 }'", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(hex, sizeof(hex), p));
	pclose(p);
	for (; hex[2 * n] && hex[2 * n] != '\n' && n < MSG_BUILD_ID_MAX; n++)
		assert_int_equal(sscanf(hex + 2 * n, "%2hhx", &out[n]), 1);
	return n;
}

/*
 * OPEN_DEBUG: the file under BROKER_DEBUG_DIR named by the build-id's
 * bytes (hex), whatever else the message holds; a length out of bounds,
 * or bytes past it, are hostile; a build-id with no debug file is ENOENT.
 */
static void test_open_debug(void **state)
{
	struct broker b = { .max_hz = 100, .cgroup_root_fd = -1 };
	struct msg_open_debug od = { .hdr = { MSG_OPEN_DEBUG, sizeof(od) } };
	char dir[256], path[512], hex[2 * MSG_BUILD_ID_MAX + 1];
	struct stat st, want;
	int fd;

	/* a debug file of a build-id nobody has, made for the test */
	for (size_t i = 0; i < 20; i++)
		od.build_id[i] = (uint8_t)(0xa0 + i);
	od.len = 20;
	for (size_t i = 0; i < 20; i++)
		snprintf(hex + 2 * i, 3, "%02x", od.build_id[i]);
	snprintf(dir, sizeof(dir), "%s/%.2s", BROKER_DEBUG_DIR, hex);
	snprintf(path, sizeof(path), "%s/%s.debug", dir, hex + 2);
	if (mkdir(BROKER_DEBUG_DIR, 0755) < 0 && errno != EEXIST)
		skip();
	assert_true(mkdir(dir, 0755) == 0 || errno == EEXIST);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "\177ELF", 4), 4);
	assert_int_equal(fstat(fd, &want), 0);
	close(fd);

	assert_int_equal(serve(&b, &od, sizeof(od), PEER_COLLECTOR), 0);
	fd = answer();
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_ino, want.st_ino);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	close(fd);
	/* a directory at that path is not a debug file */
	unlink(path);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(serve(&b, &od, sizeof(od), PEER_COLLECTOR), 0);
	assert_int_equal(answer(), -EINVAL);
	rmdir(path);
	rmdir(dir);
	/* none installed */
	assert_int_equal(serve(&b, &od, sizeof(od), PEER_COLLECTOR), 0);
	assert_int_equal(answer(), -ENOENT);

	/* libc's, when Debian's libc6-dbg is installed: the right file, by its note */
	{
		struct procmaps *m;
		const struct procmap *lc = NULL;
		uint8_t bid[MSG_BUILD_ID_MAX];
		struct msg_open_debug ol = { .hdr = { MSG_OPEN_DEBUG, sizeof(ol) } };

		assert_int_equal(procmaps_read(getpid(), &m), 0);
		for (size_t i = 0; i < m->n && !lc; i++)
			if (strstr(m->maps[i].path, "/libc.so."))
				lc = &m->maps[i];
		assert_non_null(lc);
		ol.len = (uint32_t)build_id_of(lc->path, bid);
		memcpy(ol.build_id, bid, ol.len);
		assert_int_equal(serve(&b, &ol, sizeof(ol), PEER_COLLECTOR), 0);
		fd = answer();
		if (fd >= 0) {
			uint8_t dbid[MSG_BUILD_ID_MAX];

			snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)getpid(), fd);
			assert_int_equal(build_id_of(path, dbid), ol.len);
			assert_memory_equal(dbid, bid, ol.len);
			close(fd);
		} else {
			assert_int_equal(fd, -ENOENT); /* libc6-dbg not installed */
		}
		procmaps_free(m);
	}

	/* hostile: lengths out of bounds, bytes past the length, padding */
	od.len = MSG_BUILD_ID_MIN - 1;
	assert_int_equal(serve(&b, &od, sizeof(od), PEER_COLLECTOR), -EPROTO);
	od.len = MSG_BUILD_ID_MAX + 1;
	assert_int_equal(serve(&b, &od, sizeof(od), PEER_COLLECTOR), -EPROTO);
	od.len = 8; /* bytes 8..19 are still set */
	assert_int_equal(serve(&b, &od, sizeof(od), PEER_COLLECTOR), -EPROTO);
	od.len = 20;
	od.pad = 1;
	assert_int_equal(serve(&b, &od, sizeof(od), PEER_COLLECTOR), -EPROTO);
	/* nothing was answered to those */
	{
		char c;

		assert_int_equal(recv(sv[1], &c, 1, MSG_DONTWAIT), -1);
		assert_int_equal(errno, EAGAIN);
	}
	broker_release(&b);
}

/*
 * OPEN_DEBUGLINK: the mapping is checked as OPEN_FILE's; the name must be a
 * plain file name, NUL-terminated with zeros after (else hostile); the file
 * is found beside the mapped one and only if it has the same owner.
 */
static void test_open_debuglink(void **state)
{
	struct broker b = { .max_hz = 100, .cgroup_root_fd = -1 };
	struct procmaps *m;
	const struct procmap *mp = own_text(&m);
	struct msg_open_debuglink od = {
		.map = {
			.hdr = { MSG_OPEN_DEBUGLINK, sizeof(od) },
			.pid = (uint32_t)child,
			.dev_major = mp->dev_major,
			.dev_minor = mp->dev_minor,
			.start = mp->start,
			.end = mp->end,
			.inode = mp->inode,
		},
	};
	static const char *const bad[] = { "", ".", "..", "a/b", "../etc", "x\\y", "sp ace", "nl\n" };
	char dir[PROCMAPS_MAX_PATH], path[PROCMAPS_MAX_PATH + 64];
	struct stat st, want;
	int fd;

	/* the test binary's directory: a debug file made beside it */
	snprintf(dir, sizeof(dir), "%.*s", (int)(strrchr(mp->path, '/') - mp->path), mp->path);
	snprintf(path, sizeof(path), "%s/vigil-test-debuglink.debug", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &want), 0);
	close(fd);
	strcpy(od.name, "vigil-test-debuglink.debug");
	assert_int_equal(serve(&b, &od, sizeof(od), PEER_COLLECTOR), 0);
	fd = answer();
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_ino, want.st_ino);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	close(fd);
	/*
	 * What not every user could read is not handed out, whatever the
	 * name: the file not readable by others (as /etc/shadow), or below a
	 * directory others cannot search (as a file under /root).
	 */
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(serve(&b, &od, sizeof(od), PEER_COLLECTOR), 0);
	assert_int_equal(answer(), -ENOENT);
	assert_int_equal(chmod(path, 0644), 0);
	unlink(path);
	{
		char sub[PROCMAPS_MAX_PATH + 16];

		snprintf(sub, sizeof(sub), "%s/.debug", dir);
		(void)mkdir(sub, 0755);
		assert_int_equal(chmod(sub, 0700), 0);
		snprintf(path, sizeof(path), "%s/.debug/vigil-test-debuglink.debug", dir);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(serve(&b, &od, sizeof(od), PEER_COLLECTOR), 0);
		assert_int_equal(answer(), -ENOENT);
		assert_int_equal(chmod(sub, 0755), 0);
		assert_int_equal(serve(&b, &od, sizeof(od), PEER_COLLECTOR), 0);
		fd = answer();
		assert_true(fd >= 0); /* <dir>/.debug/<name>, GDB's second place */
		close(fd);
		unlink(path);
		rmdir(sub);
		snprintf(path, sizeof(path), "%s/vigil-test-debuglink.debug", dir);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		assert_true(fd >= 0);
		close(fd);
	}
	/* a process in a mount namespace of its own: not the host's view, refused */
	{
		int pp[2];
		char c;
		pid_t other;

		assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
		other = fork();
		assert_true(other >= 0);
		if (other == 0) {
			c = unshare(CLONE_NEWNS) == 0 ? 'y' : 'n';
			(void)!write(pp[1], &c, 1);
			pause();
			_exit(0);
		}
		assert_int_equal(read(pp[0], &c, 1), 1);
		assert_int_equal(c, 'y');
		od.map.pid = (uint32_t)other;
		assert_int_equal(serve(&b, &od, sizeof(od), PEER_COLLECTOR), 0);
		assert_int_equal(answer(), -EACCES);
		od.map.pid = (uint32_t)child;
		kill(other, SIGKILL);
		waitpid(other, NULL, 0);
		close(pp[0]);
		close(pp[1]);
	}
	/* another owner than the mapped file's: not taken */
	assert_int_equal(chown(path, 65534, 65534), 0);
	assert_int_equal(serve(&b, &od, sizeof(od), PEER_COLLECTOR), 0);
	assert_int_equal(answer(), -ENOENT);
	unlink(path);
	/* none there */
	assert_int_equal(serve(&b, &od, sizeof(od), PEER_COLLECTOR), 0);
	assert_int_equal(answer(), -ENOENT);
	/* the mapped file itself is not its own debug file */
	memset(od.name, 0, sizeof(od.name));
	snprintf(od.name, sizeof(od.name), "%s", strrchr(mp->path, '/') + 1);
	assert_int_equal(serve(&b, &od, sizeof(od), PEER_COLLECTOR), 0);
	assert_int_equal(answer(), -ENOENT);
	/* a mapping the process does not have: as OPEN_FILE, ENOENT */
	od.map.inode++;
	assert_int_equal(serve(&b, &od, sizeof(od), PEER_COLLECTOR), 0);
	assert_int_equal(answer(), -ENOENT);
	od.map.inode--;

	/* hostile: names that are not plain file names, bytes past the name, a bad range */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(od.name, 0, sizeof(od.name));
		memcpy(od.name, bad[i], strlen(bad[i]));
		assert_int_equal(serve(&b, &od, sizeof(od), PEER_COLLECTOR), -EPROTO);
	}
	memset(od.name, 0, sizeof(od.name));
	strcpy(od.name, "ok.debug");
	od.name[200] = 'x';
	assert_int_equal(serve(&b, &od, sizeof(od), PEER_COLLECTOR), -EPROTO);
	memset(od.name, 'a', sizeof(od.name)); /* no NUL at all */
	assert_int_equal(serve(&b, &od, sizeof(od), PEER_COLLECTOR), -EPROTO);
	memset(od.name, 0, sizeof(od.name));
	strcpy(od.name, "ok.debug");
	od.map.end = od.map.start; /* an empty range */
	assert_int_equal(serve(&b, &od, sizeof(od), PEER_COLLECTOR), -EPROTO);
	{
		char c;

		assert_int_equal(recv(sv[1], &c, 1, MSG_DONTWAIT), -1);
		assert_int_equal(errno, EAGAIN);
	}
	procmaps_free(m);
	broker_release(&b);
}

/* A collector that asks and never reads: the monitor must not block on it. */
static void test_not_reading(void **state)
{
	struct broker b = { .max_hz = 100, .cgroup_root_fd = -1 };
	struct msg_open_maps om = { .hdr = { MSG_OPEN_MAPS, sizeof(om) }, .pid = BROKER_PID_MAX };
	int rc = 0;

	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	for (int i = 0; i < 100000 && rc == 0; i++)
		rc = serve(&b, &om, sizeof(om), PEER_COLLECTOR);
	assert_int_equal(rc, -EPROTO);
	assert_non_null(strstr(b.violation, "does not read"));
}

/* The frequency answer: the monitor's error and the frequency in effect. */
static struct msg_hz_reply hz_answer(void)
{
	uint8_t buf[PRIVSEP_MAX_MSG];
	bool seen[MSG_TYPE_MAX] = { 0 };
	int fds[PRIVSEP_MAX_FDS];
	struct msg_hz_reply r;
	size_t len;

	assert_int_equal(privsep_recv(sv[1], PEER_MONITOR, seen, buf, &len, fds), MSG_HZ_REPLY);
	memcpy(&r, buf, sizeof(r));
	return r;
}

/* Capped at the ceiling, and the collector is told what is in effect. */
static void test_set_hz(void **state)
{
	struct broker b = { .max_hz = 100, .cgroup_root_fd = -1 };
	struct msg_set_hz hz = { .hdr = { MSG_SET_HZ, sizeof(hz) }, .hz = 1000000 };
	struct msg_hz_reply r;

	assert_int_equal(serve(&b, &hz, sizeof(hz), PEER_COLLECTOR), 0);
	assert_int_equal(b.last_hz_asked, 1000000);
	assert_int_equal(b.last_hz_applied, 100);
	r = hz_answer();
	assert_int_equal(r.err, 0);
	assert_int_equal(r.hz, 100);
	hz.hz = 42;
	assert_int_equal(serve(&b, &hz, sizeof(hz), PEER_COLLECTOR), 0);
	assert_int_equal(b.last_hz_applied, 42);
	r = hz_answer();
	assert_int_equal(r.err, 0);
	assert_int_equal(r.hz, 42);
	/* the uplink may not steer sampling */
	assert_int_equal(serve(&b, &hz, sizeof(hz), PEER_UPLINK), -EPROTO);
}

/*
 * SET_UNWIND (issue 12): the collector says how a tenant's stacks are
 * taken; --unwind frame-pointer (b.unwind) forbids copies whatever it
 * says, and a hostile request (a tenant or mode out of range, or from the
 * uplink) gets no answer at all.
 */
static void test_set_unwind(void **state)
{
	struct broker b = { .max_hz = 100, .cgroup_root_fd = -1, .unwind = VIGIL_UNWIND_FP };
	struct msg_set_unwind m = { .hdr = { MSG_SET_UNWIND, sizeof(m) }, .tenant = 3,
				    .mode = VIGIL_UNWIND_DWARF };

	assert_int_equal(serve(&b, &m, sizeof(m), PEER_COLLECTOR), 0);
	assert_int_equal(answer(), -EPERM);
	assert_int_equal(b.last_tenant, 3);
	m.mode = VIGIL_UNWIND_FP;
	assert_int_equal(serve(&b, &m, sizeof(m), PEER_COLLECTOR), 0);
	assert_int_equal(answer(), 0);
	b.unwind = VIGIL_UNWIND_DWARF;
	m.mode = VIGIL_UNWIND_DWARF;
	m.tenant = VIGIL_MAX_TENANTS - 1;
	assert_int_equal(serve(&b, &m, sizeof(m), PEER_COLLECTOR), 0);
	assert_int_equal(answer(), 0);

	m.tenant = VIGIL_MAX_TENANTS;
	assert_int_equal(serve(&b, &m, sizeof(m), PEER_COLLECTOR), -EPROTO);
	m.tenant = 0;
	m.mode = 2;
	assert_int_equal(serve(&b, &m, sizeof(m), PEER_COLLECTOR), -EPROTO);
	m.mode = VIGIL_UNWIND_DWARF;
	assert_int_equal(serve(&b, &m, sizeof(m), PEER_UPLINK), -EPROTO);
	assert_int_equal(serve(&b, &m, sizeof(m) - 4, PEER_COLLECTOR), -EPROTO);
	{
		char c;

		assert_int_equal(recv(sv[1], &c, 1, MSG_DONTWAIT), -1);
		assert_int_equal(errno, EAGAIN);
	}
}

static double clock_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The broker runs in this process: its CPU time, which a busy host does not inflate. */
static double cpu_ms(void)
{
	return clock_ms(CLOCK_PROCESS_CPUTIME_ID);
}

/*
 * A puppet child: maps and unmaps files R+X at fixed addresses on
 * command, so that the test can change its maps between requests.
 */
struct puppet {
	pid_t pid;
	int cmd, ack;
};

struct puppet_cmd {
	char op;          /* 'm' map, 'u' unmap, 'n' map the file n times anywhere */
	uintptr_t at;
	size_t n;
	char path[256];
};

static void puppet_start(struct puppet *p)
{
	int c[2], a[2];

	assert_int_equal(pipe2(c, O_CLOEXEC), 0);
	assert_int_equal(pipe2(a, O_CLOEXEC), 0);
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		struct puppet_cmd pc;

		/* Gone with the test, even when an assertion ends it early. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
			_exit(0);

		while (read(c[0], &pc, sizeof(pc)) == sizeof(pc)) {
			int fd = -1, ok = 1;

			if (pc.op == 'm' || pc.op == 'n')
				fd = open(pc.path, O_RDONLY | O_CLOEXEC);
			if (pc.op == 'm')
				ok = fd >= 0 && mmap((void *)pc.at, 4096, PROT_READ | PROT_EXEC,
						     MAP_PRIVATE | MAP_FIXED, fd, 0) != MAP_FAILED;
			for (size_t i = 0; pc.op == 'n' && i < pc.n && ok; i++)
				ok = fd >= 0 && mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) != MAP_FAILED;
			if (pc.op == 'u')
				ok = munmap((void *)pc.at, 4096) == 0;
			if (fd >= 0)
				close(fd);
			if (write(a[1], ok ? "k" : "e", 1) != 1)
				break;
		}
		_exit(0);
	}
	close(c[0]);
	close(a[1]);
	p->cmd = c[1];
	p->ack = a[0];
}

static void puppet_do(struct puppet *p, char op, uintptr_t at, size_t n, const char *path)
{
	struct puppet_cmd pc = { .op = op, .at = at, .n = n };
	char ok;

	if (path)
		snprintf(pc.path, sizeof(pc.path), "%s", path);
	assert_int_equal(write(p->cmd, &pc, sizeof(pc)), (ssize_t)sizeof(pc));
	assert_int_equal(read(p->ack, &ok, 1), 1);
	assert_int_equal(ok, 'k');
}

static void puppet_stop(struct puppet *p)
{
	close(p->cmd);
	close(p->ack);
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
}

/* The OPEN_FILE request for p's mapping at `at` (as its maps show it now). */
static struct msg_open_file file_req(pid_t pid, uintptr_t at)
{
	struct procmaps *m;
	const struct procmap *mp;
	struct msg_open_file of = { .hdr = { MSG_OPEN_FILE, sizeof(of) }, .pid = (uint32_t)pid };

	assert_int_equal(procmaps_read(pid, &m), 0);
	mp = procmaps_find(m, at);
	assert_non_null(mp);
	of.start = mp->start;
	of.end = mp->end;
	of.inode = mp->inode;
	of.dev_major = mp->dev_major;
	of.dev_minor = mp->dev_minor;
	procmaps_free(m);
	return of;
}

static int ask_file(struct broker *b, const struct msg_open_file *of)
{
	int fd;

	assert_int_equal(serve(b, of, sizeof(*of), PEER_COLLECTOR), 0);
	fd = answer();
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return fd;
}

static void ask_maps(struct broker *b, pid_t pid)
{
	struct msg_open_maps om = { .hdr = { MSG_OPEN_MAPS, sizeof(om) }, .pid = (uint32_t)pid };
	int fd;

	assert_int_equal(serve(b, &om, sizeof(om), PEER_COLLECTOR), 0);
	fd = answer();
	assert_true(fd >= 0);
	close(fd);
}

/*
 * OPEN_FILE for thousands of mappings of one process: the monitor reads
 * its maps once, not once per request.  Each request then costs what one
 * costs for a process with a handful of mappings; before, each cost a
 * read and parse of the whole maps (here, the figures printed).  Measured
 * on this host, in CPU time: one read of the big maps, and a request to a
 * process with a handful of mappings.
 */
static void test_open_file_many_mappings(void **state)
{
	const size_t nmaps = 16384, nreq = 2000;
	struct broker b = { .max_hz = 100, .cgroup_root_fd = -1 };
	struct msg_open_file *reqs;
	struct puppet big;
	struct procmaps *m;
	const struct procmap *own;
	double t_read = 1e9, t_small = 1e9, t_big, bound, t0, wall;
	size_t nsmall = 0, k = 0, done = 0;
	uint64_t reads;
	char exe[PATH_MAX];

	assert_true(realpath("/proc/self/exe", exe) != NULL);
	puppet_start(&big);
	puppet_do(&big, 'n', 0, nmaps, exe);

	for (int i = 0; i < 3; i++) {
		t0 = cpu_ms();
		assert_int_equal(procmaps_read(big.pid, &m), 0);
		if (cpu_ms() - t0 < t_read)
			t_read = cpu_ms() - t0;
		if (i == 0) {
			reqs = calloc(nreq, sizeof(*reqs));
			assert_non_null(reqs);
			for (size_t j = 0; j < m->n && k < nreq; j++) {
				const struct procmap *mp = &m->maps[j];

				if (!(mp->prot & PROT_EXEC) || strcmp(mp->path, exe) != 0 || mp->end - mp->start != 4096)
					continue;
				reqs[k++] = (struct msg_open_file){
					.hdr = { MSG_OPEN_FILE, sizeof(*reqs) }, .pid = (uint32_t)big.pid,
					.dev_major = mp->dev_major, .dev_minor = mp->dev_minor,
					.start = mp->start, .end = mp->end, .inode = mp->inode,
				};
			}
		}
		procmaps_free(m);
	}
	assert_int_equal(k, nreq);

	/* A request to a process with a handful of mappings (the forked child). */
	own = own_text(&m);
	for (int round = 0; round < 5; round++) {
		struct msg_open_file of = {
			.hdr = { MSG_OPEN_FILE, sizeof(of) }, .pid = (uint32_t)child,
			.dev_major = own->dev_major, .dev_minor = own->dev_minor,
			.start = own->start, .end = own->end, .inode = own->inode,
		};

		ask_maps(&b, child);
		t0 = cpu_ms();
		for (nsmall = 0; nsmall < 50; nsmall++)
			assert_int_equal(ask_file(&b, &of), 0);
		if ((cpu_ms() - t0) / (double)nsmall < t_small)
			t_small = (cpu_ms() - t0) / (double)nsmall;
	}
	procmaps_free(m);

	/* The big one: bounded by what the small one costs, plus reading its maps. */
	bound = (double)nreq * 3 * t_small + 3 * t_read;
	reads = b.maps_reads;
	ask_maps(&b, big.pid);
	wall = clock_ms(CLOCK_MONOTONIC);
	t0 = cpu_ms();
	for (done = 0; done < nreq && cpu_ms() - t0 <= bound; done++)
		assert_int_equal(ask_file(&b, &reqs[done]), 0);
	t_big = cpu_ms() - t0;
	wall = clock_ms(CLOCK_MONOTONIC) - wall;
	reads = b.maps_reads - reads;
	print_message("%zu of %zu requests for mappings of a process with %zu of them: %.1f ms CPU "
		      "(bound %.1f ms: 3 x %.3f ms a request with a handful of mappings, plus 3 reads "
		      "of its maps at %.2f ms); the monitor read its maps %" PRIu64 " times\n",
		      done, nreq, nmaps, t_big, bound, t_small, t_read, reads);
	assert_int_equal(done, nreq);
	assert_true(t_big <= bound);
	assert_true(reads <= 1 + (uint64_t)(wall / BROKER_MAPS_TTL_MS));
	free(reqs);
	broker_release(&b);
	puppet_stop(&big);
}

/*
 * The maps kept between requests are of the one process, no older than
 * the collector's OPEN_MAPS, and at most BROKER_MAPS_TTL_MS old: a mapping
 * the process no longer has is refused after either, and one it mapped
 * since is found after OPEN_MAPS.
 */
static void test_open_file_kept_maps(void **state)
{
	const uintptr_t at = 0x50000000, at2 = 0x50100000;
	struct broker b = { .max_hz = 100, .cgroup_root_fd = -1 };
	struct msg_open_file of, of2;
	struct puppet p;
	char exe[PATH_MAX];
	int ms;

	assert_true(realpath("/proc/self/exe", exe) != NULL);
	puppet_start(&p);
	puppet_do(&p, 'm', at, 0, exe);
	of = file_req(p.pid, at);

	ask_maps(&b, p.pid);
	assert_int_equal(ask_file(&b, &of), 0);
	ms = broker_maps_timeout_ms(&b);
	assert_true(ms > 0 && ms <= BROKER_MAPS_TTL_MS);
	/* Unmapped: still in the maps kept (the allowance broker.h states)... */
	puppet_do(&p, 'u', at, 0, NULL);
	assert_int_equal(ask_file(&b, &of), 0);
	/* ...but not once the collector reads the maps again. */
	ask_maps(&b, p.pid);
	assert_int_equal(ask_file(&b, &of), -ENOENT);

	/* Mapped after the monitor read: not there until the collector reads again. */
	puppet_do(&p, 'm', at, 0, exe);
	ask_maps(&b, p.pid);
	assert_int_equal(ask_file(&b, &of), 0);
	puppet_do(&p, 'm', at2, 0, exe);
	of2 = file_req(p.pid, at2);
	assert_int_equal(ask_file(&b, &of2), -ENOENT);
	ask_maps(&b, p.pid);
	assert_int_equal(ask_file(&b, &of2), 0);

	/* Another process in between: each is answered from its own maps. */
	{
		struct procmaps *m;
		const struct procmap *own = own_text(&m);
		struct msg_open_file oc = {
			.hdr = { MSG_OPEN_FILE, sizeof(oc) }, .pid = (uint32_t)child,
			.dev_major = own->dev_major, .dev_minor = own->dev_minor,
			.start = own->start, .end = own->end, .inode = own->inode,
		};

		assert_int_equal(ask_file(&b, &oc), 0);
		procmaps_free(m);
	}
	assert_int_equal(ask_file(&b, &of2), 0);

	/* Expired: unmapped, and refused without any OPEN_MAPS. */
	puppet_do(&p, 'u', at2, 0, NULL);
	usleep((BROKER_MAPS_TTL_MS + 100) * 1000);
	assert_int_equal(broker_maps_timeout_ms(&b), 0);
	assert_int_equal(ask_file(&b, &of2), -ENOENT);
	/* An idle monitor lets them go. */
	usleep((BROKER_MAPS_TTL_MS + 100) * 1000);
	broker_expire(&b);
	assert_null(b.maps.maps);
	assert_int_equal(broker_maps_timeout_ms(&b), -1);

	/* Gone: refused, and nothing kept. */
	puppet_stop(&p);
	assert_int_equal(ask_file(&b, &of), -ESRCH);
	assert_null(b.maps.maps);
	broker_release(&b);
}

static struct msg_file_ref ref_of(const struct procmap *mp)
{
	return (struct msg_file_ref){ .dev_major = mp->dev_major, .dev_minor = mp->dev_minor,
				      .start = mp->start, .end = mp->end, .inode = mp->inode };
}

/*
 * OPEN_FILES: each entry checked and opened as OPEN_FILE's, failing
 * alone, in one answer whose fds follow the entries that succeeded;
 * hostile shapes get no answer at all.
 */
static void test_open_files(void **state)
{
	struct broker b = { .max_hz = 100, .cgroup_root_fd = -1 };
	struct procmaps *m;
	const struct procmap *text = own_text(&m);
	const struct procmap *libc = NULL;
	struct msg_open_files of = { .hdr = { MSG_OPEN_FILES, sizeof(of) }, .pid = (uint32_t)child };
	struct msg_files_reply r;
	int fds[PRIVSEP_MAX_FDS], before;
	struct stat st;

	assert_non_null(text);
	for (size_t i = 0; i < m->n && !libc; i++)
		if ((m->maps[i].prot & PROT_EXEC) && strstr(m->maps[i].path, "/libc.so"))
			libc = &m->maps[i];
	assert_non_null(libc);
	assert_true(libc->inode != text->inode);
	/* this binary, the C library, a wrong inode, this binary again */
	of.n = 4;
	of.maps[0] = ref_of(text);
	of.maps[1] = ref_of(libc);
	of.maps[2] = ref_of(text);
	of.maps[2].inode++;
	of.maps[3] = ref_of(text);
	before = open_fd_count();
	assert_int_equal(serve(&b, &of, sizeof(of), PEER_COLLECTOR), 0);
	files_answer(&r, fds);
	assert_int_equal(r.n, 4);
	assert_int_equal(r.nfds, 3);
	assert_int_equal(r.err[0], 0);
	assert_int_equal(r.err[1], 0);
	assert_int_equal(r.err[2], ENOENT);
	assert_int_equal(r.err[3], 0);
	for (int i = 4; i < PRIVSEP_MAX_FDS; i++)
		assert_int_equal(r.err[i], 0);
	assert_int_equal(fstat(fds[0], &st), 0);
	assert_int_equal(st.st_ino, text->inode);
	assert_int_equal(fstat(fds[1], &st), 0);
	assert_int_equal(st.st_ino, libc->inode);
	assert_int_equal(fstat(fds[2], &st), 0);
	assert_int_equal(st.st_ino, text->inode);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(fcntl(fds[i], F_GETFL) & O_ACCMODE, O_RDONLY);
		close(fds[i]);
	}
	assert_int_equal(open_fd_count(), before); /* the monitor kept none */
	/* all eight at once */
	of.n = PRIVSEP_MAX_FDS;
	for (int i = 0; i < PRIVSEP_MAX_FDS; i++)
		of.maps[i] = ref_of(i % 2 ? libc : text);
	assert_int_equal(serve(&b, &of, sizeof(of), PEER_COLLECTOR), 0);
	files_answer(&r, fds);
	assert_int_equal(r.nfds, PRIVSEP_MAX_FDS);
	for (int i = 0; i < PRIVSEP_MAX_FDS; i++)
		close(fds[i]);
	/* the monitor's own: each refused, no fd */
	of.pid = (uint32_t)getpid();
	of.n = 2;
	memset(&of.maps[2], 0, sizeof(of.maps) - 2 * sizeof(of.maps[0]));
	assert_int_equal(serve(&b, &of, sizeof(of), PEER_COLLECTOR), 0);
	files_answer(&r, fds);
	assert_int_equal(r.nfds, 0);
	assert_int_equal(r.err[0], EPERM);
	assert_int_equal(r.err[1], EPERM);
	/* a process that is gone */
	of.pid = BROKER_PID_MAX;
	assert_int_equal(serve(&b, &of, sizeof(of), PEER_COLLECTOR), 0);
	files_answer(&r, fds);
	assert_int_equal(r.nfds, 0);
	assert_int_equal(r.err[0], ESRCH);

	/* Hostile shapes: no answer. */
	of.pid = 0;
	assert_int_equal(serve(&b, &of, sizeof(of), PEER_COLLECTOR), -EPROTO);
	of.pid = BROKER_PID_MAX + 1;
	assert_int_equal(serve(&b, &of, sizeof(of), PEER_COLLECTOR), -EPROTO);
	of.pid = (uint32_t)child;
	of.n = 0;
	assert_int_equal(serve(&b, &of, sizeof(of), PEER_COLLECTOR), -EPROTO);
	of.n = PRIVSEP_MAX_FDS + 1;
	assert_int_equal(serve(&b, &of, sizeof(of), PEER_COLLECTOR), -EPROTO);
	of.n = 1; /* entry 1 is set: past the count */
	assert_int_equal(serve(&b, &of, sizeof(of), PEER_COLLECTOR), -EPROTO);
	of.n = 2;
	of.maps[1].end = of.maps[1].start; /* empty */
	assert_int_equal(serve(&b, &of, sizeof(of), PEER_COLLECTOR), -EPROTO);
	of.maps[1] = ref_of(text);
	of.maps[1].start |= 1; /* not page-aligned */
	assert_int_equal(serve(&b, &of, sizeof(of), PEER_COLLECTOR), -EPROTO);
	assert_non_null(b.violation);
	{
		char c;

		assert_int_equal(recv(sv[1], &c, 1, MSG_DONTWAIT), -1);
		assert_int_equal(errno, EAGAIN);
	}
	assert_int_equal(open_fd_count(), before);
	procmaps_free(m);
	broker_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_table_violations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_maps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_maps_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_debug, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_debuglink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_reading, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_hz, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_unwind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_file_many_mappings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_file_kept_maps, setup, teardown),
	};
	return cmocka_run_group_tests_name("broker", tests, start_child, stop_child);
}
