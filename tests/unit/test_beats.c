/*
 * test_beats.c - the monitor's view of the workers' heartbeats: a stall is
 * a worker whose progress counter stopped (not one that merely beats), the
 * uplink is not judged once it has exited, hostile beats are refused, and
 * the STATUS= line says the frequency, tenants, export and control-plane
 * state within its buffer whatever the collector sent.  Also the workers'
 * side (heartbeat.c) and the privsep table's rows for the beats.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "beats.h"
#include "heartbeat.h"
#include "privsep.h"

#define S 1000000ull /* µs */

static struct msg_collector_beat cbeat(uint64_t progress, uint32_t ntenants)
{
	struct msg_collector_beat m = { .hdr = { MSG_COLLECTOR_BEAT, sizeof(m) },
					.version = PRIVSEP_VERSION, .sampling = 1,
					.progress = progress, .ntenants = ntenants,
					.nlisted = ntenants < BEAT_MAX_TENANTS ? ntenants : BEAT_MAX_TENANTS };

	for (uint32_t i = 0; i < m.nlisted; i++) {
		snprintf(m.tenants[i].name, sizeof(m.tenants[i].name), i ? "t%u" : "default", i);
		m.tenants[i].hz = 10 + i;
	}
	return m;
}

static struct msg_uplink_beat ubeat(uint64_t progress)
{
	struct msg_uplink_beat m = { .hdr = { MSG_UPLINK_BEAT, sizeof(m) },
				     .version = PRIVSEP_VERSION, .progress = progress };
	return m;
}

static void test_stall_is_progress_not_beats(void **state)
{
	struct beats b;
	struct msg_collector_beat c = cbeat(1, 1);
	struct msg_uplink_beat u = ubeat(1);
	const char *why = NULL, *who = NULL;
	uint64_t for_us = 0;

	beats_init(&b, 100 * S, BEAT_MIN_MS);
	assert_int_equal(beats_take_collector(&b, &c, 100 * S, &why), 0);
	assert_int_equal(beats_take_uplink(&b, &u, 100 * S, &why), 0);
	assert_false(beats_stalled(&b, 102 * S, 0, true, &who, &for_us));
	/* The uplink keeps turning; the collector beats, but its counter is stuck. */
	for (uint64_t t = 101; t <= 104; t++) {
		u.progress++;
		assert_int_equal(beats_take_uplink(&b, &u, t * S, &why), 0);
		assert_int_equal(beats_take_collector(&b, &c, t * S, &why), 0);
	}
	assert_true(beats_stalled(&b, 104 * S, 0, true, &who, &for_us));
	assert_string_equal(who, "collector");
	assert_int_equal(for_us, 4 * S);
	/* It turns again: no longer stalled. */
	c.progress++;
	assert_int_equal(beats_take_collector(&b, &c, 105 * S, &why), 0);
	assert_false(beats_stalled(&b, 105 * S, 0, true, &who, &for_us));
	/* The threshold asked for applies when above the floor. */
	assert_false(beats_stalled(&b, 110 * S, 20 * S, true, &who, &for_us));
	assert_true(beats_stalled(&b, 125 * S, 20 * S, true, &who, &for_us));
}

static void test_silent_worker_and_exited_uplink(void **state)
{
	struct beats b;
	struct msg_collector_beat c = cbeat(1, 1);
	const char *why = NULL, *who = NULL;
	uint64_t for_us = 0;

	beats_init(&b, 0, BEAT_MIN_MS);
	/* Never beat at all: stalled once the floor has passed since the start. */
	assert_false(beats_stalled(&b, 3ull * BEAT_MIN_MS * 1000 - 1, 0, true, &who, &for_us));
	for (uint64_t t = 1; t <= 5; t++) {
		c.progress = t;
		assert_int_equal(beats_take_collector(&b, &c, t * S, &why), 0);
	}
	assert_true(beats_stalled(&b, 5 * S, 0, true, &who, &for_us));
	assert_string_equal(who, "uplink");
	/* An uplink that exited (vigild keeps sampling) is not held against it. */
	assert_false(beats_stalled(&b, 5 * S, 0, false, &who, &for_us));
}

static void test_hostile_beats_refused(void **state)
{
	struct beats b;
	struct msg_collector_beat c = cbeat(10, 2);
	struct msg_uplink_beat u = ubeat(10);
	const char *why = NULL;

	beats_init(&b, 0, BEAT_MIN_MS);
	c.version = PRIVSEP_VERSION + 1;
	assert_int_equal(beats_take_collector(&b, &c, S, &why), -EPROTO);
	assert_non_null(why);
	c = cbeat(10, 2);
	c.nlisted = BEAT_MAX_TENANTS + 1;
	c.ntenants = 100;
	assert_int_equal(beats_take_collector(&b, &c, S, &why), -EPROTO);
	c = cbeat(10, 2);
	c.nlisted = 3; /* more listed than it has */
	assert_int_equal(beats_take_collector(&b, &c, S, &why), -EPROTO);
	c = cbeat(10, 2);
	assert_int_equal(beats_take_collector(&b, &c, S, &why), 0);
	c.progress = 9; /* backwards */
	assert_int_equal(beats_take_collector(&b, &c, 2 * S, &why), -EPROTO);
	assert_int_equal(b.c.progress, 10); /* the refused one was not kept */

	u.cp_state = BEAT_CP_FAILING + 1;
	assert_int_equal(beats_take_uplink(&b, &u, S, &why), -EPROTO);
	u = ubeat(10);
	u.export.state = EXPORT_FAILING + 1;
	assert_int_equal(beats_take_uplink(&b, &u, S, &why), -EPROTO);
	u = ubeat(10);
	assert_int_equal(beats_take_uplink(&b, &u, S, &why), 0);
	u.progress = 3;
	assert_int_equal(beats_take_uplink(&b, &u, S, &why), -EPROTO);
}

static void test_status_line(void **state)
{
	struct beats b;
	struct msg_collector_beat c = cbeat(1, 2);
	struct msg_uplink_beat u = ubeat(1);
	const char *why = NULL;
	char buf[1024];

	beats_init(&b, 0, BEAT_MIN_MS);
	beats_status(&b, 99, buf, sizeof(buf));
	assert_string_equal(buf, "starting: 99 Hz");
	assert_int_equal(beats_take_collector(&b, &c, S, &why), 0);
	beats_status(&b, 99, buf, sizeof(buf));
	assert_string_equal(buf, "sampling at 99 Hz; 2 tenants: default 10 Hz, t1 11 Hz; "
				 "export: unknown; control plane: unknown");
	u.cp_state = BEAT_CP_CONNECTED;
	u.serial = 7;
	u.export.state = EXPORT_FAILING;
	u.export.last_http_status = 503;
	assert_int_equal(beats_take_uplink(&b, &u, S, &why), 0);
	beats_status(&b, 99, buf, sizeof(buf));
	assert_string_equal(buf, "sampling at 99 Hz; 2 tenants: default 10 Hz, t1 11 Hz; "
				 "export: failing (HTTP 503); control plane: connected, policy serial 7");
}

static void test_status_hostile_names_and_small_buffers(void **state)
{
	struct beats b;
	struct msg_collector_beat c = cbeat(1, 1000);
	const char *why = NULL;
	char buf[1024], tiny[12];

	/* Names without their NUL, with newlines (a STATUS= line break) and separators. */
	for (int i = 0; i < BEAT_MAX_TENANTS; i++)
		memset(c.tenants[i].name, i % 2 ? '\n' : 'x', sizeof(c.tenants[i].name));
	c.tenants[0].name[3] = ';';
	beats_init(&b, 0, BEAT_MIN_MS);
	assert_int_equal(beats_take_collector(&b, &c, S, &why), 0);
	beats_status(&b, 19, buf, sizeof(buf));
	assert_null(strchr(buf, '\n'));
	assert_non_null(strstr(buf, "1000 tenants: xxx?xxx"));
	assert_true(strlen(buf) < sizeof(buf));
	beats_status(&b, 19, tiny, sizeof(tiny));
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
	assert_string_equal(tiny, "sampling at");
	beats_status(&b, 19, tiny, 1);
	assert_string_equal(tiny, "");
}

static void test_heartbeat_schedule(void **state)
{
	enum { I = 2500 }; /* the setup's beat_ms */
	struct heartbeat h;
	const uint64_t ms = 1000000;

	heartbeat_init(&h, I);
	assert_true(heartbeat_turn(&h, 5 * ms, 0, false)); /* the first is due at once */
	assert_int_equal(heartbeat_timeout_ms(&h, 5 * ms), I);
	assert_false(heartbeat_turn(&h, 6 * ms, 0, false));
	assert_true(heartbeat_turn(&h, 7 * ms, 0, true)); /* forced */
	assert_false(heartbeat_turn(&h, (7 + I - 1) * ms, 0, false));
	assert_true(heartbeat_turn(&h, (7 + I) * ms, 0, false));
	/* within the slack: due now, and the next one a whole interval from now */
	assert_false(heartbeat_turn(&h, (7 + 2 * I - 201) * ms, 200 * ms, false));
	assert_true(heartbeat_turn(&h, (7 + 2 * I - 200) * ms, 200 * ms, false));
	assert_int_equal(h.next_ns, (7 + 3 * I - 200) * ms);
	assert_int_equal(h.progress, 7); /* every turn counts, beat or not */
	assert_int_equal(heartbeat_timeout_ms(&h, (8 + 3 * I) * ms), 0);
	/* not set up: the shortest interval */
	h = (struct heartbeat){ 0 };
	assert_true(heartbeat_turn(&h, 0, 0, false));
	assert_int_equal(heartbeat_timeout_ms(&h, 0), BEAT_MIN_MS);
}

/* A beat a sixth of the watchdog, within bounds; the stall floor three beats. */
static void test_interval(void **state)
{
	struct beats b;
	struct msg_collector_beat c = cbeat(1, 1);
	struct msg_uplink_beat u = ubeat(1);
	const char *why = NULL, *who = NULL;
	uint64_t for_us = 0;

	assert_int_equal(beats_interval_ms(0), BEAT_MAX_MS);
	assert_int_equal(beats_interval_ms(2 * S), BEAT_MIN_MS);
	assert_int_equal(beats_interval_ms(30 * S), 5000);
	assert_int_equal(beats_interval_ms(3600 * S), BEAT_MAX_MS);
	beats_init(&b, 0, BEAT_MAX_MS);
	assert_int_equal(beats_take_collector(&b, &c, 0, &why), 0);
	assert_int_equal(beats_take_uplink(&b, &u, 0, &why), 0);
	assert_false(beats_stalled(&b, 3ull * BEAT_MAX_MS * 1000 - 1, 0, true, &who, &for_us));
	assert_true(beats_stalled(&b, 3ull * BEAT_MAX_MS * 1000, 0, true, &who, &for_us));
}

/* What a beat shows: a change is seen once, and only a change. */
static void test_changed(void **state)
{
	struct heartbeat h;
	const uint32_t a[2] = { 1, 19 }, b[2] = { 1, 49 };
	uint64_t da = heartbeat_digest(0, a, sizeof(a)), db = heartbeat_digest(0, b, sizeof(b));

	heartbeat_init(&h, BEAT_MIN_MS);
	assert_true(da != db);
	assert_int_equal(heartbeat_digest(0, a, sizeof(a)), da);
	assert_true(heartbeat_changed(&h, da)); /* nothing shown yet */
	assert_false(heartbeat_changed(&h, da));
	assert_true(heartbeat_changed(&h, db));
	assert_false(heartbeat_changed(&h, db));
	assert_true(heartbeat_changed(&h, 0));
	assert_false(heartbeat_changed(&h, 0));
}

static void test_table_rows(void **state)
{
	assert_int_equal(MSG_COLLECTOR_BEAT, 37);
	assert_int_equal(MSG_UPLINK_BEAT, 38);
	assert_true(MSG_TYPE_MAX >= 41);
	assert_int_equal(privsep_rules[MSG_COLLECTOR_BEAT].sender, PEER_COLLECTOR);
	assert_int_equal(privsep_rules[MSG_COLLECTOR_BEAT].len, sizeof(struct msg_collector_beat));
	assert_int_equal(privsep_rules[MSG_COLLECTOR_BEAT].nfds, 0);
	assert_false(privsep_rules[MSG_COLLECTOR_BEAT].once);
	assert_int_equal(privsep_rules[MSG_UPLINK_BEAT].sender, PEER_UPLINK);
	assert_int_equal(privsep_rules[MSG_UPLINK_BEAT].len, sizeof(struct msg_uplink_beat));
	assert_int_equal(privsep_rules[MSG_UPLINK_BEAT].nfds, 0);
	assert_false(privsep_rules[MSG_UPLINK_BEAT].once);
	assert_true(sizeof(struct msg_collector_beat) <= PRIVSEP_MAX_MSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stall_is_progress_not_beats),
		cmocka_unit_test(test_silent_worker_and_exited_uplink),
		cmocka_unit_test(test_hostile_beats_refused),
		cmocka_unit_test(test_status_line),
		cmocka_unit_test(test_status_hostile_names_and_small_buffers),
		cmocka_unit_test(test_heartbeat_schedule),
		cmocka_unit_test(test_interval),
		cmocka_unit_test(test_changed),
		cmocka_unit_test(test_table_rows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
