/*
 * test_privsep.c - the message table is enforced over a real socketpair:
 * wrong lengths, unknown types, wrong senders, wrong fd counts and repeated
 * once-only messages are refused, and refused fds are not leaked.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "fdcount.h"

#include "privsep.h"

static int sv[2];

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

static struct msg_collector_setup good_setup(void)
{
	struct msg_collector_setup m = {
		.hdr = { MSG_COLLECTOR_SETUP, sizeof(m) },
		.version = PRIVSEP_VERSION,
		.hz = 19,
		.interval_s = 10,
		.ncpus = 2,
	};
	return m;
}

static int recv_from(enum privsep_peer from, bool *seen, int *fds)
{
	uint8_t buf[PRIVSEP_MAX_MSG];
	size_t len;

	return privsep_recv(sv[1], from, seen, buf, &len, fds);
}

static void test_good(void **state)
{
	struct msg_collector_setup m = good_setup();
	bool seen[MSG_TYPE_MAX] = { 0 };
	int fds[5] = { 0, 1, 2, 0, 1 }, got[PRIVSEP_MAX_FDS];

	assert_int_equal(privsep_send(sv[0], &m, sizeof(m), fds, 5), 0);
	assert_int_equal(recv_from(PEER_MONITOR, seen, got), MSG_COLLECTOR_SETUP);
	for (int i = 0; i < 5; i++) {
		assert_true(got[i] > 2);
		assert_true(fcntl(got[i], F_GETFD) & FD_CLOEXEC);
		close(got[i]);
	}
}

static void test_refused(void **state)
{
	struct msg_collector_setup m = good_setup();
	bool seen[MSG_TYPE_MAX] = { 0 };
	int fds[5] = { 0, 1, 2, 0, 1 }, got[PRIVSEP_MAX_FDS];
	int before = open_fd_count();
	uint8_t big[sizeof(m) + 8] = { 0 };
	struct msg_hdr h;

	/* too short for its type, with fds attached: refused, fds closed */
	assert_int_equal(privsep_send(sv[0], &m, sizeof(m) - 4, fds, 5), 0);
	assert_int_equal(recv_from(PEER_MONITOR, seen, got), -EPROTO);
	/* too long */
	memcpy(big, &m, sizeof(m));
	((struct msg_hdr *)big)->len = sizeof(big);
	assert_int_equal(privsep_send(sv[0], big, sizeof(big), fds, 5), 0);
	assert_int_equal(recv_from(PEER_MONITOR, seen, got), -EPROTO);
	/* header length disagrees with the datagram */
	m.hdr.len = sizeof(m) + 1;
	assert_int_equal(privsep_send(sv[0], &m, sizeof(m), fds, 5), 0);
	assert_int_equal(recv_from(PEER_MONITOR, seen, got), -EPROTO);
	m = good_setup();
	/* unknown types */
	h = (struct msg_hdr){ 0, sizeof(h) };
	assert_int_equal(privsep_send(sv[0], &h, sizeof(h), NULL, 0), 0);
	assert_int_equal(recv_from(PEER_MONITOR, seen, got), -EPROTO);
	h = (struct msg_hdr){ MSG_TYPE_MAX, sizeof(h) };
	assert_int_equal(privsep_send(sv[0], &h, sizeof(h), NULL, 0), 0);
	assert_int_equal(recv_from(PEER_MONITOR, seen, got), -EPROTO);
	h = (struct msg_hdr){ 0xffffffffu, sizeof(h) };
	assert_int_equal(privsep_send(sv[0], &h, sizeof(h), NULL, 0), 0);
	assert_int_equal(recv_from(PEER_MONITOR, seen, got), -EPROTO);
	/* shorter than a header */
	assert_int_equal(privsep_send(sv[0], "ab", 2, NULL, 0), 0);
	assert_int_equal(recv_from(PEER_MONITOR, seen, got), -EPROTO);
	/* right message, wrong sender */
	assert_int_equal(privsep_send(sv[0], &m, sizeof(m), fds, 5), 0);
	assert_int_equal(recv_from(PEER_COLLECTOR, seen, got), -EPROTO);
	/* wrong number of fds */
	assert_int_equal(privsep_send(sv[0], &m, sizeof(m), fds, 3), 0);
	assert_int_equal(recv_from(PEER_MONITOR, seen, got), -EPROTO);
	assert_int_equal(privsep_send(sv[0], &m, sizeof(m), NULL, 0), 0);
	assert_int_equal(recv_from(PEER_MONITOR, seen, got), -EPROTO);
	/* an empty datagram carrying fds (found by fuzz_broker): refused, fds closed */
	assert_int_equal(privsep_send(sv[0], "", 0, fds, 2), 0);
	assert_int_equal(recv_from(PEER_MONITOR, seen, got), -EPROTO);
	/* none of the refused messages marked the type as seen */
	assert_false(seen[MSG_COLLECTOR_SETUP]);
	assert_int_equal(open_fd_count(), before);
}

/*
 * FILES_REPLY carries 0 to PRIVSEP_MAX_FDS fds, as many as its nfds field
 * says: a count that disagrees with what came is refused, fds closed.
 */
static void test_counted_fds(void **state)
{
	struct msg_files_reply r = { .hdr = { MSG_FILES_REPLY, sizeof(r) }, .n = 3 };
	bool seen[MSG_TYPE_MAX] = { 0 };
	int fds[PRIVSEP_MAX_FDS] = { 0, 1, 2, 0, 1, 2, 0, 1 }, got[PRIVSEP_MAX_FDS];
	int before = open_fd_count();

	r.nfds = 2;
	assert_int_equal(privsep_send(sv[0], &r, sizeof(r), fds, 2), 0);
	memset(got, 0x55, sizeof(got));
	assert_int_equal(recv_from(PEER_MONITOR, seen, got), MSG_FILES_REPLY);
	close(got[0]);
	close(got[1]);
	for (int i = 2; i < PRIVSEP_MAX_FDS; i++)
		assert_int_equal(got[i], -1); /* closing all eight is safe */
	r.nfds = 0;
	assert_int_equal(privsep_send(sv[0], &r, sizeof(r), NULL, 0), 0);
	assert_int_equal(recv_from(PEER_MONITOR, seen, got), MSG_FILES_REPLY);
	r.nfds = PRIVSEP_MAX_FDS;
	assert_int_equal(privsep_send(sv[0], &r, sizeof(r), fds, PRIVSEP_MAX_FDS), 0);
	assert_int_equal(recv_from(PEER_MONITOR, seen, got), MSG_FILES_REPLY);
	for (int i = 0; i < PRIVSEP_MAX_FDS; i++)
		close(got[i]);
	assert_int_equal(open_fd_count(), before);
	/* fewer or more fds than it says */
	r.nfds = 3;
	assert_int_equal(privsep_send(sv[0], &r, sizeof(r), fds, 2), 0);
	assert_int_equal(recv_from(PEER_MONITOR, seen, got), -EPROTO);
	r.nfds = 1;
	assert_int_equal(privsep_send(sv[0], &r, sizeof(r), fds, 2), 0);
	assert_int_equal(recv_from(PEER_MONITOR, seen, got), -EPROTO);
	r.nfds = 0;
	assert_int_equal(privsep_send(sv[0], &r, sizeof(r), fds, 1), 0);
	assert_int_equal(recv_from(PEER_MONITOR, seen, got), -EPROTO);
	/* more than any message may carry, said (8 sent: privsep_send takes no more) */
	r.nfds = PRIVSEP_MAX_FDS + 1;
	assert_int_equal(privsep_send(sv[0], &r, sizeof(r), fds, PRIVSEP_MAX_FDS), 0);
	assert_int_equal(recv_from(PEER_MONITOR, seen, got), -EPROTO);
	/* from the collector, it is not an answer */
	r.nfds = 0;
	assert_int_equal(privsep_send(sv[0], &r, sizeof(r), NULL, 0), 0);
	assert_int_equal(recv_from(PEER_COLLECTOR, seen, got), -EPROTO);
	assert_int_equal(open_fd_count(), before);
}

static void test_once(void **state)
{
	struct msg_ready r = { .hdr = { MSG_COLLECTOR_READY, sizeof(r) },
					 .version = PRIVSEP_VERSION };
	bool seen[MSG_TYPE_MAX] = { 0 };
	int got[PRIVSEP_MAX_FDS];

	assert_int_equal(privsep_send(sv[0], &r, sizeof(r), NULL, 0), 0);
	assert_int_equal(recv_from(PEER_COLLECTOR, seen, got), MSG_COLLECTOR_READY);
	assert_int_equal(privsep_send(sv[0], &r, sizeof(r), NULL, 0), 0);
	assert_int_equal(recv_from(PEER_COLLECTOR, seen, got), -EPROTO);
}

static void test_eof(void **state)
{
	bool seen[MSG_TYPE_MAX] = { 0 };
	int got[PRIVSEP_MAX_FDS];

	shutdown(sv[0], SHUT_WR);
	assert_int_equal(recv_from(PEER_MONITOR, seen, got), -EPIPE);
}

static void test_send_limits(void **state)
{
	uint8_t big[PRIVSEP_MAX_MSG + 1] = { 0 };
	int fds[PRIVSEP_MAX_FDS + 1] = { 0 };

	assert_int_equal(privsep_send(sv[0], big, sizeof(big), NULL, 0), -EINVAL);
	assert_int_equal(privsep_send(sv[0], big, 16, fds, PRIVSEP_MAX_FDS + 1), -EINVAL);
}

/* The control plane's messages: each from its one sender, with its fds. */
static void test_control_plane_messages(void **state)
{
	struct msg_remote_policy rp = { .hdr = { MSG_REMOTE_POLICY, sizeof(rp) },
					.version = PRIVSEP_VERSION };
	struct msg_policy_status ps = { .hdr = { MSG_POLICY_STATUS, sizeof(ps) },
					.version = PRIVSEP_VERSION };
	struct msg_uplink_creds cr = { .hdr = { MSG_UPLINK_CREDS, sizeof(cr) },
				       .version = PRIVSEP_VERSION };
	struct msg_uplink_broke br = { .hdr = { MSG_UPLINK_BROKE, sizeof(br) },
				       .version = PRIVSEP_VERSION };
	bool seen[MSG_TYPE_MAX] = { 0 };
	int fds[3] = { 0, 1, 2 }, got[PRIVSEP_MAX_FDS];
	int before = open_fd_count();

	/* good */
	assert_int_equal(privsep_send(sv[0], &rp, sizeof(rp), fds, 1), 0);
	assert_int_equal(recv_from(PEER_UPLINK, seen, got), MSG_REMOTE_POLICY);
	close(got[0]);
	assert_int_equal(privsep_send(sv[0], &cr, sizeof(cr), fds, 3), 0);
	assert_int_equal(recv_from(PEER_MONITOR, seen, got), MSG_UPLINK_CREDS);
	for (int i = 0; i < 3; i++)
		close(got[i]);
	/* the uplink may not pose as the collector or the monitor */
	assert_int_equal(privsep_send(sv[0], &ps, sizeof(ps), fds, 1), 0);
	assert_int_equal(recv_from(PEER_UPLINK, seen, got), -EPROTO);
	assert_int_equal(privsep_send(sv[0], &cr, sizeof(cr), fds, 3), 0);
	assert_int_equal(recv_from(PEER_UPLINK, seen, got), -EPROTO);
	/* a policy without its memfd, or with two */
	assert_int_equal(privsep_send(sv[0], &rp, sizeof(rp), NULL, 0), 0);
	assert_int_equal(recv_from(PEER_UPLINK, seen, got), -EPROTO);
	assert_int_equal(privsep_send(sv[0], &rp, sizeof(rp), fds, 2), 0);
	assert_int_equal(recv_from(PEER_UPLINK, seen, got), -EPROTO);
	/* hostile lengths: one short, one long, a header that lies */
	assert_int_equal(privsep_send(sv[0], &rp, sizeof(rp) - 1, fds, 1), 0);
	assert_int_equal(recv_from(PEER_UPLINK, seen, got), -EPROTO);
	{
		uint8_t big[sizeof(rp) + 64] = { 0 };

		memcpy(big, &rp, sizeof(rp));
		((struct msg_hdr *)big)->len = sizeof(big);
		assert_int_equal(privsep_send(sv[0], big, sizeof(big), fds, 1), 0);
		assert_int_equal(recv_from(PEER_UPLINK, seen, got), -EPROTO);
	}
	rp.hdr.len = 16;
	assert_int_equal(privsep_send(sv[0], &rp, sizeof(rp), fds, 1), 0);
	assert_int_equal(recv_from(PEER_UPLINK, seen, got), -EPROTO);
	/* IDENTITY_SAVE: the uplink's, with exactly its memfd */
	{
		struct msg_identity_save is = { .hdr = { MSG_IDENTITY_SAVE, sizeof(is) },
						.version = PRIVSEP_VERSION };

		assert_int_equal(privsep_send(sv[0], &is, sizeof(is), fds, 1), 0);
		assert_int_equal(recv_from(PEER_UPLINK, seen, got), MSG_IDENTITY_SAVE);
		close(got[0]);
		assert_int_equal(privsep_send(sv[0], &is, sizeof(is), fds, 1), 0);
		assert_int_equal(recv_from(PEER_UPLINK, seen, got), MSG_IDENTITY_SAVE); /* may repeat */
		close(got[0]);
		assert_int_equal(privsep_send(sv[0], &is, sizeof(is), fds, 1), 0);
		assert_int_equal(recv_from(PEER_COLLECTOR, seen, got), -EPROTO);
		assert_int_equal(privsep_send(sv[0], &is, sizeof(is), NULL, 0), 0);
		assert_int_equal(recv_from(PEER_UPLINK, seen, got), -EPROTO);
		assert_int_equal(privsep_send(sv[0], &is, sizeof(is) - 4, fds, 1), 0);
		assert_int_equal(recv_from(PEER_UPLINK, seen, got), -EPROTO);
	}
	/* UPLINK_BROKE is once-only, and the collector's */
	assert_int_equal(privsep_send(sv[0], &br, sizeof(br), NULL, 0), 0);
	assert_int_equal(recv_from(PEER_UPLINK, seen, got), -EPROTO);
	assert_int_equal(privsep_send(sv[0], &br, sizeof(br), NULL, 0), 0);
	assert_int_equal(recv_from(PEER_COLLECTOR, seen, got), MSG_UPLINK_BROKE);
	assert_int_equal(privsep_send(sv[0], &br, sizeof(br), NULL, 0), 0);
	assert_int_equal(recv_from(PEER_COLLECTOR, seen, got), -EPROTO);
	assert_int_equal(open_fd_count(), before);
}

/*
 * EXPORT_PROFILE (version 9: one spool file, a PushRequest of nseries
 * series): the collector's, with exactly its memfd, of exactly its
 * length; the fields (len 0 or too big, nseries 0 or past
 * EXPORT_SERIES_MAX, a memfd of another size) are the uplink's to check,
 * fatal there (test_uplinkexp).  ACK: the uplink's, without fds.
 */
/*
 * Send m with nfds of fds, receive it as from: what privsep_recv says (the
 * type, or -errno).  The fds a received message carried are closed.
 */
static int trip(const void *m, size_t len, const int *fds, size_t nfds, enum privsep_peer from,
		bool *seen)
{
	int got[PRIVSEP_MAX_FDS], type;

	assert_int_equal(privsep_send(sv[0], m, len, fds, nfds), 0);
	type = recv_from(from, seen, got);
	for (size_t i = 0; type >= 0 && i < nfds; i++)
		close(got[i]);
	return type;
}

static void test_export_messages(void **state)
{
	struct msg_export_profile p = { .hdr = { MSG_EXPORT_PROFILE, sizeof(p) },
					.version = PRIVSEP_VERSION, .len = 10, .seq = 1, .nseries = 2 };
	struct msg_export_ack a = { .hdr = { MSG_EXPORT_ACK, sizeof(a) }, .version = PRIVSEP_VERSION,
				    .seq = 1 };
	bool seen[MSG_TYPE_MAX] = { 0 };
	int fds[2] = { 0, 1 };
	int before = open_fd_count();
	/* the version 8 message carried id, service and tenant: 1152 bytes more */
	uint8_t old[sizeof(p) + 1152] = { 0 };

	(void)state;
	assert_int_equal(trip(&p, sizeof(p), fds, 1, PEER_COLLECTOR, seen), MSG_EXPORT_PROFILE);
	assert_int_equal(trip(&p, sizeof(p), fds, 1, PEER_COLLECTOR, seen), MSG_EXPORT_PROFILE); /* repeats */
	/* no memfd, or two */
	assert_int_equal(trip(&p, sizeof(p), NULL, 0, PEER_COLLECTOR, seen), -EPROTO);
	assert_int_equal(trip(&p, sizeof(p), fds, 2, PEER_COLLECTOR, seen), -EPROTO);
	/* not the uplink's, nor the monitor's */
	assert_int_equal(trip(&p, sizeof(p), fds, 1, PEER_UPLINK, seen), -EPROTO);
	assert_int_equal(trip(&p, sizeof(p), fds, 1, PEER_MONITOR, seen), -EPROTO);
	/* a short one, and an older vigild's (its header telling its own length) */
	assert_int_equal(trip(&p, sizeof(p) - 8, fds, 1, PEER_COLLECTOR, seen), -EPROTO);
	memcpy(old, &p, sizeof(p));
	((struct msg_hdr *)old)->len = sizeof(old);
	assert_int_equal(trip(old, sizeof(old), fds, 1, PEER_COLLECTOR, seen), -EPROTO);
	/* the ack: the uplink's, no fds */
	assert_int_equal(trip(&a, sizeof(a), NULL, 0, PEER_UPLINK, seen), MSG_EXPORT_ACK);
	assert_int_equal(trip(&a, sizeof(a), fds, 1, PEER_UPLINK, seen), -EPROTO);
	assert_int_equal(trip(&a, sizeof(a), NULL, 0, PEER_COLLECTOR, seen), -EPROTO);
	assert_int_equal(open_fd_count(), before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counted_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_plane_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_export_messages, setup, teardown),
	};
	return cmocka_run_group_tests_name("privsep", tests, NULL, NULL);
}
