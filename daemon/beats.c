/*
 * beats.c - the workers' heartbeats, kept by the monitor (see beats.h).
 *
 * Runs in the monitor; reads only messages privsep_recv already checked
 * for sender and length.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "beats.h"

void beats_init(struct beats *b, uint64_t now_us, uint32_t beat_ms)
{
	memset(b, 0, sizeof(*b));
	b->started_us = now_us;
	b->stall_min_us = 3ull * beat_ms * 1000ull;
	b->collector.moved_us = now_us;
	b->uplink.moved_us = now_us;
}

uint32_t beats_interval_ms(uint64_t watchdog_usec)
{
	uint64_t ms = watchdog_usec ? watchdog_usec / 6000 : BEAT_MAX_MS;

	return (uint32_t)(ms < BEAT_MIN_MS ? BEAT_MIN_MS : ms > BEAT_MAX_MS ? BEAT_MAX_MS : ms);
}

static void advance(struct beats_worker *w, uint64_t progress, uint64_t now_us)
{
	if (!w->seen || progress != w->progress)
		w->moved_us = now_us;
	w->seen = true;
	w->progress = progress;
}

int beats_take_collector(struct beats *b, const struct msg_collector_beat *m, uint64_t now_us,
			 const char **ret_why)
{
	if (m->version != PRIVSEP_VERSION) {
		*ret_why = "COLLECTOR_BEAT of another protocol version";
		return -EPROTO;
	}
	if (m->nlisted > BEAT_MAX_TENANTS || m->nlisted > m->ntenants || m->sampling > 1) {
		*ret_why = "COLLECTOR_BEAT lists tenants it does not have";
		return -EPROTO;
	}
	if (b->collector.seen && (m->progress < b->collector.progress || m->reloads < b->c.reloads)) {
		*ret_why = "COLLECTOR_BEAT counters went backwards";
		return -EPROTO;
	}
	b->c = *m;
	for (uint32_t i = 0; i < BEAT_MAX_TENANTS; i++) {
		char *name = b->c.tenants[i].name;

		name[sizeof(b->c.tenants[i].name) - 1] = '\0';
		/* Policy names are [A-Za-z0-9_.-]; anything else is not shown as is. */
		for (char *p = name; *p; p++)
			if (*p < 0x21 || *p > 0x7e || *p == ',' || *p == ';')
				*p = '?';
	}
	advance(&b->collector, m->progress, now_us);
	return 0;
}

int beats_take_uplink(struct beats *b, const struct msg_uplink_beat *m, uint64_t now_us,
		      const char **ret_why)
{
	if (m->version != PRIVSEP_VERSION) {
		*ret_why = "UPLINK_BEAT of another protocol version";
		return -EPROTO;
	}
	if (m->cp_state > BEAT_CP_FAILING || m->export.state > EXPORT_FAILING) {
		*ret_why = "UPLINK_BEAT with a state out of range";
		return -EPROTO;
	}
	if (b->uplink.seen && m->progress < b->uplink.progress) {
		*ret_why = "UPLINK_BEAT progress went backwards";
		return -EPROTO;
	}
	b->u = *m;
	advance(&b->uplink, m->progress, now_us);
	return 0;
}

bool beats_stalled(const struct beats *b, uint64_t now_us, uint64_t stall_us, bool uplink_alive,
		   const char **ret_who, uint64_t *ret_for_us)
{
	const struct beats_worker *ws[2] = { &b->collector, &b->uplink };
	static const char *const names[2] = { "collector", "uplink" };

	if (stall_us < b->stall_min_us)
		stall_us = b->stall_min_us;
	for (int i = 0; i < 2; i++) {
		if (i == 1 && !uplink_alive)
			continue;
		if (now_us > ws[i]->moved_us && now_us - ws[i]->moved_us >= stall_us) {
			*ret_who = names[i];
			*ret_for_us = now_us - ws[i]->moved_us;
			return true;
		}
	}
	return false;
}

/* Append to buf[*off..len), cutting at the end; never overflows. */
__attribute__((format(printf, 4, 5)))
static void add(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off + 1 >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*off += (size_t)n < len - *off ? (size_t)n : len - *off - 1;
}

static const char *export_word(uint32_t state)
{
	switch (state) {
	case EXPORT_IDLE:
		return "idle";
	case EXPORT_SENDING:
		return "sending";
	case EXPORT_FAILING:
		return "failing";
	default:
		return "off";
	}
}

static const char *cp_word(uint32_t state)
{
	switch (state) {
	case BEAT_CP_CONNECTING:
		return "connecting";
	case BEAT_CP_CONNECTED:
		return "connected";
	case BEAT_CP_FAILING:
		return "failing";
	default:
		return "off";
	}
}

void beats_status(const struct beats *b, unsigned hz, char *buf, size_t len)
{
	size_t off = 0;

	if (!len)
		return;
	buf[0] = '\0';
	if (!b->collector.seen) {
		add(buf, len, &off, "starting: %u Hz", hz);
		return;
	}
	add(buf, len, &off, "%s at %u Hz; %u tenant%s", b->c.sampling ? "sampling" : "no samples yet",
	    hz, b->c.ntenants, b->c.ntenants == 1 ? "" : "s");
	for (uint32_t i = 0; i < b->c.nlisted; i++)
		add(buf, len, &off, "%s%s %u Hz", i ? ", " : ": ", b->c.tenants[i].name,
		    b->c.tenants[i].hz);
	if (b->c.nlisted < b->c.ntenants)
		add(buf, len, &off, ", and %u more", b->c.ntenants - b->c.nlisted);
	if (!b->uplink.seen) {
		add(buf, len, &off, "; export: unknown; control plane: unknown");
		return;
	}
	add(buf, len, &off, "; export: %s", export_word(b->u.export.state));
	if (b->u.export.state == EXPORT_FAILING && b->u.export.last_http_status)
		add(buf, len, &off, " (HTTP %d)", (int)b->u.export.last_http_status);
	add(buf, len, &off, "; control plane: %s", cp_word(b->u.cp_state));
	if (b->u.cp_state != BEAT_CP_OFF && b->u.serial)
		add(buf, len, &off, ", policy serial %" PRIu64, b->u.serial);
}
