/*
 * heartbeat.c - the workers' beat schedule (see heartbeat.h).
 *
 * Runs in the collector and the uplink.
 */
#include "heartbeat.h"
#include "privsep.h"

bool heartbeat_turn(struct heartbeat *h, uint64_t now_ns, uint64_t slack_ns, bool force)
{
	h->progress++;
	if (!force && now_ns + slack_ns < h->next_ns)
		return false;
	h->next_ns = now_ns + BEAT_INTERVAL_MS * 1000000ull;
	return true;
}

int heartbeat_timeout_ms(const struct heartbeat *h, uint64_t now_ns)
{
	if (now_ns >= h->next_ns)
		return 0;
	return (int)((h->next_ns - now_ns + 999999) / 1000000);
}
