/*
 * heartbeat.c - the workers' beat schedule (see heartbeat.h).
 *
 * Runs in the collector and the uplink.
 */
#include "heartbeat.h"
#include "privsep.h"

void heartbeat_init(struct heartbeat *h, uint32_t interval_ms)
{
	*h = (struct heartbeat){ .interval_ns = (uint64_t)interval_ms * 1000000ull };
}

bool heartbeat_turn(struct heartbeat *h, uint64_t now_ns, uint64_t slack_ns, bool force)
{
	h->progress++;
	if (!force && now_ns + slack_ns < h->next_ns)
		return false;
	h->next_ns = now_ns + (h->interval_ns ? h->interval_ns : BEAT_MIN_MS * 1000000ull);
	return true;
}

int heartbeat_timeout_ms(const struct heartbeat *h, uint64_t now_ns)
{
	if (now_ns >= h->next_ns)
		return 0;
	return (int)((h->next_ns - now_ns + 999999) / 1000000);
}

bool heartbeat_changed(struct heartbeat *h, uint64_t digest)
{
	/* 0 is "nothing shown yet": a digest of 0 counts as 1. */
	digest = digest ? digest : 1;
	if (digest == h->shown)
		return false;
	h->shown = digest;
	return true;
}

uint64_t heartbeat_digest(uint64_t d, const void *p, size_t n)
{
	const unsigned char *b = p;

	d = d ? d : 14695981039346656037ull;
	for (size_t i = 0; i < n; i++)
		d = (d ^ b[i]) * 1099511628211ull;
	return d;
}
