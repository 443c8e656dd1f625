/*
 * exportside.c - the collector's side of profile export (see exportside.h).
 *
 * Runs in the collector.  With export on, an interval is one spool file
 * (one write, one fsync, one memfd, one message, one push), not one per
 * series: the cost of export per interval no longer grows with the
 * services on the host.  At most one file is in flight: the oldest
 * unacknowledged one, so after an outage the backlog goes out oldest
 * first, at the pace the uplink acknowledges (which it spaces by
 * --export-max-rate, in profiles).  A file that cannot be read, or is
 * empty or larger than EXPORT_PROFILE_MAX, can never be pushed: it is
 * dropped with a log line rather than retried forever.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exportside.h"
#include "fds.h"
#include "log.h"
#include "memblob.h"
#include "privsep.h"
#include "pyropush.h"
#include "snapshot.h"
#include "spoolq.h"

_Static_assert(SPOOLQ_SERIES_MAX == EXPORT_SERIES_MAX, "a spool file is one message");
_Static_assert(SNAPSHOT_MAX_SERIES + VIGIL_MAX_TENANTS <= EXPORT_SERIES_MAX,
	       "an interval's series fit one message");
/* What a scanned file's samples are counted up to, per profile (gzip_decompress's bound). */
#define COUNT_MAX (64u << 20)

/* The setup's host name and labels: terminated, nlabels of them, each one Pyroscope takes. */
static void take_setup(struct exportside *es, const struct msg_collector_setup *cfg)
{
	char why[512];
	size_t off = 0;

	if (!memchr(cfg->hostname, '\0', sizeof(cfg->hostname)) || cfg->nlabels > VIGILD_MAX_LABELS)
		fatalx(70, "the monitor sent an export setup it cannot mean");
	snprintf(es->host, sizeof(es->host), "%s", cfg->hostname);
	memcpy(es->labels_buf, cfg->labels, sizeof(es->labels_buf));
	for (uint32_t i = 0; i < cfg->nlabels; i++) {
		size_t n = strnlen(es->labels_buf + off, sizeof(es->labels_buf) - off);

		if (off + n >= sizeof(es->labels_buf))
			fatalx(70, "the monitor sent labels that do not fit");
		es->labels[es->nlabels++] = es->labels_buf + off;
		off += n + 1;
	}
	if (pyropush_check_agent_labels(es->labels, es->nlabels, why, sizeof(why)))
		fatalx(70, "the monitor sent labels Pyroscope would refuse: %s", why);
}

void exportside_init(struct exportside *es, int out_fd, uint64_t max_bytes, int *chan,
		     const struct msg_collector_setup *cfg)
{
	uint64_t legacy = 0;
	int n;

	memset(es, 0, sizeof(*es));
	es->out_fd = out_fd;
	es->chan = chan;
	take_setup(es, cfg);
	es->max_bytes = max_bytes ? max_bytes : SPOOLQ_DEFAULT_MAX_BYTES;
	if (spoolq_new(out_fd, max_bytes, &es->q) < 0)
		fatalx(70, "out of memory");
	n = spoolq_scan(es->q, &legacy);
	if (n < 0)
		fatalx(73, "the output directory, as the export spool: cannot list it: %s", strerror(-n));
	if (legacy)
		log_warnx("export: %" PRIu64 " per-series profile file(s) (cpu-<stamp>@<service>@<tenant>"
			  ".pb.gz) of an older vigild are in the output directory: this vigild spools "
			  "one .push file per interval and does not send them; they are left as they are "
			  "(read them with go tool pprof, or remove them)", legacy);
	if (spoolq_episode_started(es->q)) {
		const struct log_event ev = { .priority = LOG_WARNING, .id = LOG_ID_SPOOL_DROPPING };

		log_event(&ev, "export: the %d file(s) a previous run left in the spool are over "
			  "--spool-max-bytes %" PRIu64 ": dropped the %" PRIu64 " oldest profiles (%" PRIu64
			  " bytes)", n, max_bytes, spoolq_stats(es->q)->dropped_total,
			  spoolq_stats(es->q)->dropped_bytes_total);
	}
	if (n > 0)
		log_info("export: %" PRIu64 " file(s) left by a previous run wait in the spool (%"
			 PRIu64 " bytes); they are sent first, oldest first", spoolq_stats(es->q)->files,
			 spoolq_stats(es->q)->bytes);
}

void exportside_release(struct exportside *es)
{
	const struct spool_stats *st = spoolq_stats(es->q);

	/* The run's account, for whoever compares it with what arrived. */
	if (st->dropped_total || es->rejected || es->unreadable)
		log_warnx("export: this run dropped %" PRIu64 " profile(s) (%" PRIu64 " bytes) past "
			  "the spool's bound, %" PRIu64 " refused by the server, %" PRIu64
			  " unsendable", st->dropped_total, st->dropped_bytes_total, es->rejected,
			  es->unreadable);
	if (st->files)
		log_info("export: %" PRIu64 " file(s) (%" PRIu64 " bytes) wait in the spool for "
			 "the next run", st->files, st->bytes);
	spoolq_free(es->q);
	es->q = NULL;
}

const struct spool_stats *exportside_stats(const struct exportside *es)
{
	return spoolq_stats(es->q);
}

void exportside_parts_free(struct exportside_part *p, size_t n)
{
	for (size_t i = 0; p && i < n; i++)
		free(p[i].buf);
	free(p);
}

int exportside_build(const struct exportside *es, const struct snapshot_set *set, int64_t time_ns,
		     struct exportside_part **ret_parts, size_t *ret_n)
{
	struct pyropush_labels *labels = NULL;
	struct pyropush_series *v = NULL;
	struct exportside_part *parts = NULL;
	char (*ids)[EXPORT_ID_LEN] = NULL;
	uint64_t *records = NULL;
	size_t n = 0, np = 0;
	int rc = 0;

	*ret_parts = NULL;
	*ret_n = 0;
	if (!set->n)
		return 0;
	labels = calloc(set->n, sizeof(*labels));
	v = calloc(set->n, sizeof(*v));
	ids = calloc(set->n, sizeof(*ids));
	records = calloc(set->n, sizeof(*records));
	parts = calloc(set->n, sizeof(*parts)); /* at most one part per series */
	if (!labels || !v || !ids || !records || !parts) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < set->n; i++) {
		const struct snapshot_series *s = &set->v[i];
		char vname[SPOOLQ_NAME_MAX + 1], why[512];

		rc = spoolq_name(vname, sizeof(vname), time_ns, s->service, s->tenant);
		if (rc) {
			log_warn_errno(rc, "export: no name for service %.80s of tenant %s; its profile "
				       "of this interval is not exported", s->service, s->tenant);
			continue;
		}
		rc = pyropush_labels_build(s->service, es->host, s->tenant, es->labels, es->nlabels,
					   &labels[n], why, sizeof(why));
		if (rc == -ENOMEM)
			goto out;
		if (rc) {
			log_warnx("export: service %.80s of tenant %s: %s; its profile of this interval "
				  "is not exported", s->service, s->tenant, why);
			continue;
		}
		spoolq_uuid(es->host, vname, ids[n], sizeof(ids[n]));
		v[n] = (struct pyropush_series){ .labels = &labels[n], .profile = s->buf, .len = s->len,
						 .raw_len = s->raw_len, .id = ids[n] };
		records[n] = s->records;
		n++;
	}
	rc = 0;
	for (size_t i = 0; i < n;) {
		size_t k = pyropush_part(v + i, n - i, PYROPUSH_PART_RAW_MAX, EXPORT_PROFILE_MAX);
		struct exportside_part *p = &parts[np];

		rc = spoolq_file_name(p->name, sizeof(p->name), time_ns, (uint32_t)np, (uint32_t)k);
		if (!rc)
			rc = pyropush_encode_series(v + i, k, &p->buf, &p->len);
		if (rc)
			goto out;
		p->nseries = (uint32_t)k;
		for (size_t j = i; j < i + k; j++)
			p->samples += records[j];
		np++;
		i += k;
	}
	*ret_parts = parts;
	*ret_n = np;
	parts = NULL;
out:
	exportside_parts_free(parts, np);
	for (size_t i = 0; labels && i < n; i++)
		pyropush_labels_release(&labels[i]);
	free(labels);
	free(v);
	free(ids);
	free(records);
	return rc;
}

/* The line that starts an episode of drops (the bound's, before or after a write). */
static void log_episode(struct exportside *es)
{
	if (spoolq_episode_started(es->q)) {
		const struct log_event ev = { .priority = LOG_WARNING, .id = LOG_ID_SPOOL_DROPPING };

		log_event(&ev, "export: the spool is over its bound (%" PRIu64 " bytes in %" PRIu64
			  " files waiting for the export target): dropping the oldest profiles; the "
			  "count goes into the next profiles' comments (said once until a push succeeds)",
			  spoolq_stats(es->q)->bytes, spoolq_stats(es->q)->files);
	}
}

void exportside_make_room(struct exportside *es, uint64_t size)
{
	spoolq_make_room(es->q, size);
	log_episode(es);
}

void exportside_written(struct exportside *es, const char *name, int64_t time_ns, uint32_t nseries,
			uint64_t samples, uint64_t size)
{
	int rc = spoolq_add(es->q, name, time_ns, nseries, samples, size, NULL);

	/*
	 * -EINVAL: spool_write found the name taken (a file of the same
	 * interval left by a run whose clock said the same millisecond) and
	 * wrote a variant, which is no spool file name: it is not exported.
	 */
	if (rc == -EINVAL)
		log_warnx("export: %s is not a spool file name (the name of that interval was "
			  "taken); its %u profile(s) stay in the output directory, not exported",
			  name, nseries);
	else if (rc)
		log_warn_errno(rc, "export: cannot queue %s; it stays in the spool for the next run",
			       name);
	log_episode(es);
	exportside_pump(es);
}

void exportside_set_bound(struct exportside *es, uint64_t max_bytes)
{
	uint64_t dropped;

	if (!max_bytes)
		max_bytes = SPOOLQ_DEFAULT_MAX_BYTES;
	if (max_bytes == es->max_bytes)
		return;
	es->max_bytes = max_bytes;
	dropped = spoolq_set_max_bytes(es->q, max_bytes);
	log_info("export: the spool's bound is now %" PRIu64 " bytes%s", max_bytes,
		 dropped ? "; the oldest profiles past it were dropped" : "");
	if (spoolq_episode_started(es->q))
		log_warnx("export: the spool is over its new bound: dropped %" PRIu64 " profile(s); the "
			  "count goes into the next profiles' comments", dropped);
}

bool exportside_drop_comment(struct exportside *es, char *buf, size_t len)
{
	spoolq_dropped(es->q, &es->commented, &es->commented_bytes);
	if (!es->commented)
		return false;
	snprintf(buf, len, "vigil: spool full: dropped %" PRIu64 " profiles (%" PRIu64
		 " bytes) not reported by an earlier profile", es->commented, es->commented_bytes);
	return true;
}

void exportside_drop_reported(struct exportside *es, int64_t time_ns)
{
	spoolq_dropped_reported(es->q, es->commented, es->commented_bytes, time_ns);
	es->commented = es->commented_bytes = 0;
}

static void uplink_gone(struct exportside *es)
{
	spoolq_reset_inflight(es->q);
}

/* Open and seal the file of e; 0 and *ret_fd, *ret_len, or -errno (not sendable). */
static int load(struct exportside *es, const struct spoolq_entry *e, int *ret_fd, uint32_t *ret_len)
{
	struct stat st;
	int fd, mfd, rc;

	fd = openat(es->out_fd, e->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	rc = memblob_from_file("vigil-push", fd, EXPORT_PROFILE_MAX, &mfd);
	close(fd);
	if (rc)
		return rc;
	if (fstat(mfd, &st) < 0 || st.st_size == 0) {
		rc = st.st_size == 0 ? -ENODATA : -errno;
		close(mfd);
		return rc;
	}
	*ret_fd = mfd;
	*ret_len = (uint32_t)st.st_size;
	return 0;
}

/*
 * The samples of a file a previous run left (only its name was known):
 * counted from its bytes the first time it is sent, then kept in its entry.  One that does not decode
 * is still sent (the server says what it makes of it), counted as none.
 */
static uint64_t scanned_samples(int mfd)
{
	uint64_t series = 0, samples = 0;
	void *body;
	size_t len;

	if (memblob_read(mfd, EXPORT_PROFILE_MAX, &body, &len))
		return 0;
	if (pyropush_request_count(body, len, COUNT_MAX, &series, &samples))
		samples = 0;
	free(body);
	return samples;
}

void exportside_pump(struct exportside *es)
{
	const struct spoolq_entry *e;

	while (*es->chan >= 0 && (e = spoolq_next(es->q))) {
		struct msg_export_profile m = {
			.hdr = { MSG_EXPORT_PROFILE, sizeof(m) },
			.version = PRIVSEP_VERSION,
			.seq = e->seq,
			.time_ns = e->time_ns,
			.nseries = e->nseries,
			.samples = e->samples,
		};
		int mfd, rc = load(es, e, &mfd, &m.len);

		if (rc) {
			log_warn_errno(rc, "export: %s cannot be sent (%s); dropping it (%u profile(s))",
				       e->name, rc == -EFBIG ? "larger than the 16 MiB a push may carry" :
				       rc == -ENODATA ? "empty" : "unreadable", e->nseries);
			es->unreadable += e->nseries;
			spoolq_done(es->q, e->seq);
			continue;
		}
		if (m.samples == SPOOLQ_SAMPLES_UNKNOWN) {
			m.samples = scanned_samples(mfd);
			spoolq_set_samples(es->q, e->seq, m.samples);
		}
		rc = privsep_send(*es->chan, &m, sizeof(m), &mfd, 1);
		close(mfd);
		if (rc == -EAGAIN) {
			/* The uplink is behind on this socket: try again at the next pump. */
			spoolq_reset_inflight(es->q);
			return;
		}
		if (rc) {
			log_warn_errno(rc, "export: cannot reach the uplink; profiles wait in the spool");
			uplink_gone(es);
		}
		return;
	}
}

bool exportside_waiting(const struct exportside *es)
{
	return *es->chan >= 0 && spoolq_stats(es->q)->files && !spoolq_inflight(es->q);
}

int exportside_on_ack(struct exportside *es, const struct msg_export_ack *ack)
{
	const struct spoolq_entry *e;
	char why[sizeof(ack->why)];
	uint32_t nseries;
	int rc;

	if (ack->version != PRIVSEP_VERSION || ack->pad ||
	    (ack->result != EXPORT_PUSHED && ack->result != EXPORT_REJECTED) ||
	    !memchr(ack->why, '\0', sizeof(ack->why)))
		return -EPROTO;
	e = spoolq_inflight(es->q);
	nseries = e ? e->nseries : 0;
	/* Only the one in flight may be acknowledged, and only once. */
	rc = spoolq_done(es->q, ack->seq);
	if (rc == -EPROTO)
		return -EPROTO;
	if (ack->result == EXPORT_REJECTED) {
		es->rejected += nseries;
		/* printable only: the server's words pass through the uplink */
		snprintf(why, sizeof(why), "%s", ack->why);
		for (char *p = why; *p; p++)
			if (*p < 0x20 || *p > 0x7e)
				*p = '?';
		log_warnx("export: the server refused a push for good (HTTP %d: %s); dropped its %u "
			  "profile(s) (%" PRIu64 " refused so far)", ack->http_status, why, nseries,
			  es->rejected);
	}
	exportside_pump(es);
	return 0;
}

/* The uplink broke the protocol: say so to the monitor, which stops it. */
static int broke(struct exportside *es, const char *why)
{
	struct msg_uplink_broke m = { .hdr = { MSG_UPLINK_BROKE, sizeof(m) },
				      .version = PRIVSEP_VERSION };

	log_warnx("the uplink broke the protocol (%s): asking the monitor to stop it", why);
	snprintf(m.why, sizeof(m.why), "%s", why);
	privsep_send(PRIVSEP_FD, &m, sizeof(m), NULL, 0);
	close(*es->chan);
	*es->chan = -1;
	uplink_gone(es);
	return -EPIPE;
}

int exportside_on_readable(struct exportside *es)
{
	union {
		struct msg_export_ack ack;
		uint8_t raw[PRIVSEP_MAX_MSG];
	} u;
	int fds[PRIVSEP_MAX_FDS];
	size_t len;
	int type;

	if (*es->chan < 0)
		return -EPIPE;
	type = privsep_recv(*es->chan, PEER_UPLINK, es->seen, &u, &len, fds);
	if (type == -EAGAIN)
		return 0;
	if (type == -EPIPE || type == -ECONNRESET) {
		close(*es->chan);
		*es->chan = -1;
		uplink_gone(es);
		return -EPIPE;
	}
	if (type < 0)
		return broke(es, type == -EPROTO ? "a message the table does not allow" : strerror(-type));
	if (type != MSG_EXPORT_ACK) {
		fds_close(fds, privsep_rules[type].nfds);
		return broke(es, "a message the uplink may not send to the collector without a control plane");
	}
	if (exportside_on_ack(es, &u.ack) < 0)
		return broke(es, "an EXPORT_ACK for no profile in flight, or malformed");
	return 0;
}
