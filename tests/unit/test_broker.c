/*
 * test_broker.c - the monitor's request handling over a real socketpair:
 * every message the table forbids is refused as hostile before any field
 * is used, impossible field values are hostile too, and legitimate requests
 * get exactly the fd they ask for - or a refusal when the mapping is not
 * what the collector claims.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <cmocka.h>

#include "broker.h"
#include "procmaps.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_table_violations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_maps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_reading, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_hz, setup, teardown),
	};
	return cmocka_run_group_tests_name("broker", tests, start_child, stop_child);
}
