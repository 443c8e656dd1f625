/*
 * test_monclient.c - the collector's side of OPEN_MAPS with its files
 * (monclient_ask_maps) and of OPEN_FILES (monclient_ask_files): an answer
 * whose entries and fds agree is taken as it is, each file's fd or error
 * at its entry; one that disagrees is the monitor breaking the protocol,
 * and the collector exits 70 rather than take a wrong fd for a file.
 *
 * Each case runs the collector's side in a child whose fd 3
 * (PRIVSEP_FD) is one end of a real socketpair; this process answers as
 * the monitor would, or would not.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "monclient.h"
#include "privsep.h"

/* What the child saw: how the ask returned, when it did. */
struct seen {
	int rc;
	uint32_t n;
	int fds[PRIVSEP_MAX_FDS]; /* >= 0: an fd came; else the error */
};

/* The request the child sends: OPEN_MAPS with its files, or OPEN_FILES for FILES_ASKED. */
enum ask { ASK_MAPS, ASK_FILES };
#define FILES_ASKED 3

/* In the child: ask as the collector does, and say what came back. */
static struct seen child_ask(enum ask kind)
{
	struct seen s = { 0 };

	if (kind == ASK_MAPS) {
		struct msg_open_maps m = { .hdr = { MSG_OPEN_MAPS, sizeof(m) }, .pid = 42,
					   .flags = OPEN_MAPS_F_FILES };
		struct msg_maps_reply got_r;

		s.rc = monclient_ask_maps(&m, &got_r, s.fds);
		s.n = s.rc >= 0 ? got_r.n : 0;
	} else {
		struct msg_open_files m = { .hdr = { MSG_OPEN_FILES, sizeof(m) }, .pid = 42,
					    .n = FILES_ASKED };

		for (uint32_t i = 0; i < FILES_ASKED; i++)
			m.maps[i] = (struct msg_file_ref){ .start = 0x1000 * (i + 1),
							   .end = 0x1000 * (i + 2), .inode = i + 1 };
		s.rc = monclient_ask_files(&m, s.fds);
		s.n = s.rc >= 0 ? FILES_ASKED : 0;
	}
	return s;
}

/*
 * Run the ask of kind in a child against the answer r (rlen bytes) with
 * nfds fds (copies of this file), or an ERR_REPLY with err if r is NULL.
 * Returns the child's exit status; *got is what it returned when it
 * exited 0.
 */
static int run(enum ask kind, const void *r, size_t rlen, size_t nfds, int err, struct seen *got)
{
	int sv[2], out[2], fds[PRIVSEP_MAX_FDS], status;
	bool seen[MSG_TYPE_MAX] = { 0 };
	uint8_t buf[PRIVSEP_MAX_MSG];
	size_t len;
	pid_t pid;

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct seen s;

		if (dup2(sv[1], PRIVSEP_FD) != PRIVSEP_FD)
			_exit(2);
		s = child_ask(kind);
		if (write(out[1], &s, sizeof(s)) != (ssize_t)sizeof(s))
			_exit(3);
		_exit(0);
	}
	close(sv[1]);
	close(out[1]);
	/* the request, as the collector sends it */
	if (kind == ASK_MAPS) {
		struct msg_open_maps req;

		assert_int_equal(privsep_recv(sv[0], PEER_COLLECTOR, seen, buf, &len, fds), MSG_OPEN_MAPS);
		memcpy(&req, buf, sizeof(req));
		assert_int_equal(req.pid, 42);
		assert_int_equal(req.flags, OPEN_MAPS_F_FILES);
	} else {
		struct msg_open_files req;

		assert_int_equal(privsep_recv(sv[0], PEER_COLLECTOR, seen, buf, &len, fds), MSG_OPEN_FILES);
		memcpy(&req, buf, sizeof(req));
		assert_int_equal(req.pid, 42);
		assert_int_equal(req.n, FILES_ASKED);
	}
	if (r) {
		for (size_t i = 0; i < nfds; i++) {
			fds[i] = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
			assert_true(fds[i] >= 0);
		}
		assert_int_equal(privsep_send(sv[0], r, rlen, fds, nfds), 0);
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
	} else {
		struct msg_reply e = { .hdr = { MSG_ERR_REPLY, sizeof(e) }, .err = err };

		assert_int_equal(privsep_send(sv[0], &e, sizeof(e), NULL, 0), 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		assert_int_equal(read(out[0], got, sizeof(*got)), (ssize_t)sizeof(*got));
	close(out[0]);
	close(sv[0]);
	return status;
}

static struct msg_maps_reply reply(uint32_t nfds, uint32_t n)
{
	struct msg_maps_reply r = { .hdr = { MSG_MAPS_REPLY, sizeof(r) }, .nfds = nfds, .n = n };

	for (uint32_t i = 0; i < n; i++)
		r.files[i].map = (struct msg_file_ref){ .start = 0x1000 * (i + 1),
							.end = 0x1000 * (i + 2), .inode = i + 1 };
	return r;
}

static void assert_broke(int status)
{
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 70);
}

static void test_agreeing_answer(void **state)
{
	struct msg_maps_reply r = reply(3, 3);
	struct seen got;

	r.files[1].err = ENOENT;
	assert_int_equal(run(ASK_MAPS, &r, sizeof(r), 3, 0, &got), 0);
	assert_true(got.rc >= 0); /* the maps */
	assert_int_equal(got.n, 3);
	assert_true(got.fds[0] >= 0);
	assert_int_equal(got.fds[1], -ENOENT);
	assert_true(got.fds[2] >= 0);
	assert_true(got.fds[0] != got.fds[2] && got.rc != got.fds[0] && got.rc != got.fds[2]);

	/* the maps alone: no file came with them */
	r = reply(1, 0);
	assert_int_equal(run(ASK_MAPS, &r, sizeof(r), 1, 0, &got), 0);
	assert_true(got.rc >= 0);
	assert_int_equal(got.n, 0);

	/* refused: the error, no maps */
	assert_int_equal(run(ASK_MAPS, NULL, 0, 0, EPERM, &got), 0);
	assert_int_equal(got.rc, -EPERM);
	/* an ERR_REPLY that says no error is still no maps */
	assert_int_equal(run(ASK_MAPS, NULL, 0, 0, 0, &got), 0);
	assert_int_equal(got.rc, -EIO);
}

static void test_disagreeing_answers(void **state)
{
	struct msg_maps_reply r;
	struct seen got;

	/* more fds than files opened */
	r = reply(3, 2);
	r.files[1].err = EACCES;
	assert_broke(run(ASK_MAPS, &r, sizeof(r), 3, 0, &got));
	/* fewer */
	r = reply(2, 2);
	assert_broke(run(ASK_MAPS, &r, sizeof(r), 2, 0, &got));
	/* no maps fd at all */
	r = reply(0, 0);
	assert_broke(run(ASK_MAPS, &r, sizeof(r), 0, 0, &got));
	/* more files than a reply holds */
	r = reply(1, 0);
	r.n = MAPS_REPLY_FILES + 1;
	assert_broke(run(ASK_MAPS, &r, sizeof(r), 1, 0, &got));
	/* an entry past n */
	r = reply(2, 1);
	r.files[4].map.inode = 9;
	assert_broke(run(ASK_MAPS, &r, sizeof(r), 2, 0, &got));
	/* a negative error */
	r = reply(1, 1);
	r.files[0].err = -1;
	assert_broke(run(ASK_MAPS, &r, sizeof(r), 1, 0, &got));
	/* padding */
	r = reply(2, 1);
	r.files[0].pad = 1;
	assert_broke(run(ASK_MAPS, &r, sizeof(r), 2, 0, &got));
}

static struct msg_files_reply files_reply(uint32_t nfds, uint32_t n)
{
	return (struct msg_files_reply){ .hdr = { MSG_FILES_REPLY, sizeof(struct msg_files_reply) },
					 .nfds = nfds, .n = n };
}

static void test_files_agreeing_answer(void **state)
{
	struct msg_files_reply r = files_reply(2, FILES_ASKED);
	struct seen got;

	r.err[1] = ENOENT;
	assert_int_equal(run(ASK_FILES, &r, sizeof(r), 2, 0, &got), 0);
	assert_int_equal(got.rc, 0);
	assert_true(got.fds[0] >= 0);
	assert_int_equal(got.fds[1], -ENOENT);
	assert_true(got.fds[2] >= 0);
	assert_true(got.fds[0] != got.fds[2]);

	/* every file refused: errors only, no fd */
	r = files_reply(0, FILES_ASKED);
	r.err[0] = EACCES;
	r.err[1] = ESRCH;
	r.err[2] = ENOENT;
	assert_int_equal(run(ASK_FILES, &r, sizeof(r), 0, 0, &got), 0);
	assert_int_equal(got.fds[0], -EACCES);
	assert_int_equal(got.fds[1], -ESRCH);
	assert_int_equal(got.fds[2], -ENOENT);
}

static void test_files_disagreeing_answers(void **state)
{
	struct msg_maps_reply maps = reply(1, 0);
	struct msg_files_reply r;
	struct seen got;

	/* another count of files than was asked */
	r = files_reply(2, FILES_ASKED - 1);
	assert_broke(run(ASK_FILES, &r, sizeof(r), 2, 0, &got));
	/* more fds than files opened */
	r = files_reply(3, FILES_ASKED);
	r.err[1] = EACCES;
	assert_broke(run(ASK_FILES, &r, sizeof(r), 3, 0, &got));
	/* fewer */
	r = files_reply(2, FILES_ASKED);
	assert_broke(run(ASK_FILES, &r, sizeof(r), 2, 0, &got));
	/* an error past the files asked */
	r = files_reply(3, FILES_ASKED);
	r.err[FILES_ASKED + 1] = EIO;
	assert_broke(run(ASK_FILES, &r, sizeof(r), 3, 0, &got));
	/* a negative error */
	r = files_reply(2, FILES_ASKED);
	r.err[1] = -1;
	assert_broke(run(ASK_FILES, &r, sizeof(r), 2, 0, &got));
	/* another message: the monitor always answers OPEN_FILES with FILES_REPLY */
	assert_broke(run(ASK_FILES, &maps, sizeof(maps), 1, 0, &got));
	assert_broke(run(ASK_FILES, NULL, 0, 0, ENOENT, &got));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agreeing_answer),
		cmocka_unit_test(test_disagreeing_answers),
		cmocka_unit_test(test_files_agreeing_answer),
		cmocka_unit_test(test_files_disagreeing_answers),
	};

	return cmocka_run_group_tests_name("monclient", tests, NULL, NULL);
}
