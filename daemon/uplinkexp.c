/*
 * uplinkexp.c - the uplink's side of export (see uplinkexp.h).  Runs in the
 * uplink, unprivileged and confined; logs; exits on a protocol break.
 *
 * A spool file is one interval's PushRequest, built by the collector: it
 * is pushed as it is, neither decoded nor re-encoded here, so a push costs
 * the uplink one memfd read and one HTTP request whatever the number of
 * series in it.
 *
 * What a hostile collector can make the uplink do here: push bytes of its
 * choosing (it could anyway: the profiles are its own), to the one target
 * the monitor configured, at most one at a time and no faster than
 * --export-max-rate profiles per second (a file of n series counts n).
 * Every field is checked before use: the length within EXPORT_PROFILE_MAX
 * and equal to the sealed memfd's, the series within EXPORT_SERIES_MAX,
 * and no second file before the first is acknowledged.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "exporter.h"
#include "log.h"
#include "memblob.h"
#include "options.h"
#include "pyropush.h"
#include "uplinkexp.h"

/* A failing target is logged when it starts failing, then at most this often. */
#define FAIL_LOG_NS (60ull * 1000000000ull)

struct uplinkexp {
	struct exporter *ex;
	const char *hostname;
	const char *labels[VIGILD_MAX_LABELS];
	size_t nlabels;
	unsigned port;
	bool configured_once;
	/* the profile in flight */
	bool inflight;
	uint64_t seq;
	uint32_t nseries;
	/* failure log */
	char last_why[256];
	bool failing;
	uint64_t fail_logged_ns;
	unsigned fails;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct uplinkexp *uplinkexp_new(const struct msg_uplink_setup *cfg)
{
	struct uplinkexp *x = calloc(1, sizeof(*x));
	size_t off = 0;
	int rc;

	if (!x)
		fatalx(71, "export: out of memory");
	rc = exporter_new(&x->ex);
	if (rc)
		fatalx(71, "export: cannot set up libcurl: %s", strerror(-rc));
	/*
	 * jansson seeds its hash function at its first object, from
	 * /dev/urandom: an open() the confined uplink is killed for (SIGSYS),
	 * which the first Connect error body from the server (a 503, say)
	 * triggered.  Seed it now, before confinement, from getrandom().
	 */
	{
		size_t seed = 0;

		if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed) || seed == 0)
			seed = (size_t)time(NULL) ^ (size_t)getpid() ^ 0x9e3779b97f4a7c15ull;
		json_object_seed(seed);
	}
	x->hostname = cfg->hostname;
	for (uint32_t i = 0; i < cfg->nlabels && i < VIGILD_MAX_LABELS; i++) {
		x->labels[x->nlabels++] = cfg->labels + off;
		off += strlen(cfg->labels + off) + 1;
	}
	/* The monitor refused any label Pyroscope would refuse: one that slips through is a break. */
	{
		char why[512];

		if (pyropush_check_agent_labels(x->labels, x->nlabels, why, sizeof(why)))
			fatalx(70, "the monitor sent labels Pyroscope would refuse: %s", why);
	}
	return x;
}

void uplinkexp_free(struct uplinkexp *x)
{
	if (!x)
		return;
	exporter_free(x->ex);
	free(x);
}

unsigned uplinkexp_port(const struct uplinkexp *x)
{
	return x->port;
}

const struct export_stats *uplinkexp_stats(const struct uplinkexp *x)
{
	return exporter_stats(x->ex);
}

static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

void uplinkexp_config(struct uplinkexp *x, const struct msg_uplink_export *m, const int *fds)
{
	static const uint32_t want[5] = { UPLINK_EXPORT_F_BASIC, UPLINK_EXPORT_F_BEARER, UPLINK_EXPORT_F_CA,
					  UPLINK_EXPORT_F_CERT, UPLINK_EXPORT_F_CERT };
	static const size_t max[5] = { EXPORTER_SECRET_MAX, EXPORTER_SECRET_MAX, 4u << 20, 4u << 20,
				       4u << 20 };
	struct exporter_target t = { 0 };
	void *b[5] = { 0 };
	size_t len[5] = { 0 };
	int rc = 0;

	if (m->version != PRIVSEP_VERSION || m->naddrs > UPLINK_MAX_ADDRS || !m->port || m->port > 65535 ||
	    !m->max_rate || !terminated(m->url, sizeof(m->url)) || !terminated(m->host, sizeof(m->host)) ||
	    !terminated(m->tenant, sizeof(m->tenant)) ||
	    (x->configured_once && m->port != x->port))
		fatalx(70, "the monitor sent an export configuration it cannot mean");
	for (int i = 0; i < 5 && !rc; i++)
		rc = memblob_read(fds[i], max[i], &b[i], &len[i]);
	for (int i = 0; i < 5; i++)
		close(fds[i]);
	if (rc == -EPROTO)
		fatalx(70, "the monitor sent export files that are not sealed memfds");
	if (!rc) {
		t.url = m->url;
		t.host = m->host;
		t.port = m->port;
		t.addrs = m->addrs;
		t.naddrs = m->naddrs;
		t.tenant = m->tenant;
		t.max_rate = m->max_rate;
#define TAKE(i, p, l) if (m->flags & want[i]) { t.p = b[i]; t.l = len[i]; }
		TAKE(0, basic, basic_len);
		TAKE(1, bearer, bearer_len);
		TAKE(2, ca, ca_len);
		TAKE(3, cert, cert_len);
		TAKE(4, key, key_len);
#undef TAKE
		rc = exporter_configure(x->ex, (m->flags & UPLINK_EXPORT_F_ON) ? &t : NULL);
	}
	for (int i = 0; i < 5; i++) {
		if (b[i]) {
			explicit_bzero(b[i], len[i]);
			free(b[i]);
		}
	}
	if (rc) {
		log_warn_errno(rc, "export: cannot use the configuration from the monitor%s",
			       x->configured_once ? "; keeping the one in use" : "");
		return;
	}
	if (!x->configured_once)
		log_info("export: pushing profiles to %s%s%s (at most %u per second)", m->url,
			 m->tenant[0] ? " as tenant " : "", m->tenant, m->max_rate);
	else
		log_info("export: configuration reloaded");
	if (!m->naddrs)
		log_warnx("export: %s did not resolve at start; profiles wait in the spool", m->host);
	x->port = m->port;
	x->configured_once = true;
}

void uplinkexp_profile(struct uplinkexp *x, const struct msg_export_profile *m, int fd)
{
	void *body = NULL;
	size_t blen = 0;
	int rc;

	if (m->version != PRIVSEP_VERSION || m->len == 0 || m->len > EXPORT_PROFILE_MAX ||
	    m->nseries == 0 || m->nseries > EXPORT_SERIES_MAX || m->pad)
		fatalx(70, "the collector sent a push it cannot mean");
	if (x->inflight || exporter_busy(x->ex))
		fatalx(70, "the collector sent a push while push %" PRIu64 " is not acknowledged (one "
		       "at a time)", x->seq);
	rc = memblob_read(fd, EXPORT_PROFILE_MAX, &body, &blen);
	close(fd);
	if (rc == -EPROTO || rc == -EFBIG || (!rc && blen != m->len))
		fatalx(70, "the collector sent a push that is not a sealed memfd of the %u bytes it said",
		       m->len);
	if (rc)
		fatalx(71, "export: cannot read a push: %s", strerror(-rc));
	rc = exporter_submit(x->ex, m->seq, body, blen, m->nseries, m->samples);
	if (rc)
		fatalx(71, "export: cannot queue the push: %s", strerror(-rc));
	x->inflight = true;
	x->seq = m->seq;
	x->nseries = m->nseries;
}

size_t uplinkexp_pollfds(struct uplinkexp *x, struct pollfd *p, size_t max, int *ret_timeout_ms)
{
	return exporter_pollfds(x->ex, p, max, ret_timeout_ms);
}

void uplinkexp_step(struct uplinkexp *x, int chan)
{
	struct msg_export_ack ack = { .hdr = { MSG_EXPORT_ACK, sizeof(ack) }, .version = PRIVSEP_VERSION };
	struct exporter_done d;
	char why[256];
	uint64_t wait = 0, now;
	int rc;

	if (!x->inflight)
		return;
	rc = exporter_step(x->ex, &d, why, sizeof(why), &wait);
	if (why[0]) {
		now = mono_ns();
		x->fails++;
		/* A new failure, another reason, or a minute since the last line. */
		if (!x->failing || strcmp(why, x->last_why) || now - x->fail_logged_ns >= FAIL_LOG_NS) {
			const struct log_event ev = { .priority = LOG_WARNING,
						      .id = LOG_ID_EXPORT_FAILING };

			log_event(&ev, "export: push failed: %s; trying again in %.1f s (%u failure(s) in "
				  "a row; profiles wait in the spool)", why, (double)wait / 1e9, x->fails);
			x->fail_logged_ns = now;
			snprintf(x->last_why, sizeof(x->last_why), "%s", why);
		}
		x->failing = true;
	}
	if (rc != 1)
		return;
	if (x->failing)
		log_info("export: pushing again after %u failure(s)", x->fails);
	x->failing = false;
	x->fails = 0;
	x->inflight = false;
	ack.seq = d.seq;
	ack.http_status = d.http_status;
	if (d.verdict == EXPORTER_OK) {
		ack.result = EXPORT_PUSHED;
	} else {
		const struct log_event ev = { .priority = LOG_WARNING, .id = LOG_ID_EXPORT_FAILING };
		const char *reason = d.why;

		/* The status travels in http_status: why is the server's reason. */
		if (!strncmp(reason, "HTTP ", 5) && strstr(reason, ": "))
			reason = strstr(reason, ": ") + 2;
		ack.result = EXPORT_REJECTED;
		snprintf(ack.why, sizeof(ack.why), "%s", reason);
		log_event(&ev, "export: the server refused a push of %u profile(s) for good (%s): "
			  "dropped, not retried", x->nseries, d.why);
	}
	if (chan < 0)
		return;
	rc = privsep_send(chan, &ack, sizeof(ack), NULL, 0);
	/* EPIPE: the collector has stopped (vigild is stopping); its spool keeps the file. */
	if (rc && rc != -EPIPE)
		log_warn_errno(rc, "export: cannot acknowledge profile %" PRIu64 " to the collector", d.seq);
}
