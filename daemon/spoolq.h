/*
 * spoolq.h - the export spool: profiles waiting in the output directory
 * until the uplink has pushed them (docs/security.md, "Profiles leaving
 * the host").
 *
 * Runs in the collector (uid vigil, no capabilities, Landlock: the output
 * directory only), which holds the directory as an fd: every name here is
 * relative to it, and only names of the spool's own form are ever opened or
 * unlinked, so nothing the uplink says can point the collector elsewhere.
 *
 * With export on, each interval is one file (or a few: parts), holding
 * that interval's push.v1.PushRequest exactly as it is POSTed:
 * "cpu-<stamp>_<k>_<n>.push", where <stamp> is spool_name()'s, <k> the
 * part (0, 1, ...) and <n> the series (profiles) in it, both decimal
 * without leading zeros.  Nothing else in the directory is ever taken for
 * a spool file.  A file stays until its push is acknowledged; at start the
 * files a previous run left are queued again, oldest first (at least once
 * delivery).  The queue holds at most one file "in flight" to the uplink,
 * always the oldest, so a backlog drains in order.
 *
 * Each series in a file keeps a name of its own, its *virtual name*
 * "cpu-<stamp>@<service>@<tenant>.pb.gz" (spoolq_name: service and tenant
 * %XX-escaped to [A-Za-z0-9._:-]), from which its RawSample.ID is derived
 * (spoolq_uuid): so the ID is the same on every resend.  An older vigild
 * wrote one file per series under that name; such files are recognised
 * (spoolq_parse_name) and counted at start, but not sent.
 *
 * The bound: before a file is written, the oldest files (never the one in
 * flight) are unlinked until it fits under max_bytes beside the others
 * (spoolq_make_room); after, past max_bytes (a bound lowered, a scan, a
 * file larger than the bound) the oldest but the newest go.  Each is
 * counted in struct spool_stats, in
 * profiles (each file counts as its <n> series) and bytes; the counts since
 * the last profile are handed out once for that profile's comment.
 *
 * Library-like: returns 0 or -errno, never logs.
 */
#ifndef VIGIL_SPOOLQ_H
#define VIGIL_SPOOLQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exportstats.h"

#define SPOOLQ_DEFAULT_MAX_BYTES (256ull << 20)
/*
 * The longest file name: spool_write() adds ".<name>.tmp-<pid>" around it
 * for the temporary, which must stay under NAME_MAX (255).
 */
#define SPOOLQ_NAME_MAX 200
#define SPOOLQ_SERVICE_MAX 1024  /* EXPORT_SERVICE_LEN - 1 */
#define SPOOLQ_TENANT_MAX 63     /* EXPORT_TENANT_LEN - 1 */

/* Series in one spool file: EXPORT_SERIES_MAX (privsep.h). */
#define SPOOLQ_SERIES_MAX 4096
/* Parts of one interval: far more than SNAPSHOT_MAX_SERIES series could need. */
#define SPOOLQ_PART_MAX 99999

struct spoolq_entry {
	char name[SPOOLQ_NAME_MAX + 1];
	int64_t time_ns;             /* the interval's start, from the name's stamp */
	uint64_t size;
	uint32_t part;               /* <k> */
	uint32_t nseries;            /* <n>: profiles in the file */
	uint64_t samples;            /* pprof samples in them; SPOOLQ_SAMPLES_UNKNOWN: found by a scan */
	uint64_t seq;                /* while in flight */
	/* drops its profiles' comment reports: back to unreported if it is dropped too */
	uint64_t carried, carried_bytes;
	bool inflight;
};

#define SPOOLQ_SAMPLES_UNKNOWN UINT64_MAX

struct spoolq;

/*
 * A spool over the directory dirfd (borrowed: it must outlive the spool).
 * max_bytes 0: SPOOLQ_DEFAULT_MAX_BYTES.  0 and *ret, or -ENOMEM.
 */
int spoolq_new(int dirfd, uint64_t max_bytes, struct spoolq **ret);
void spoolq_free(struct spoolq *q);

/*
 * The virtual name of series (service, tenant) for the interval starting
 * at realtime_ns (the name RawSample.ID is derived from; also the name an
 * older vigild gave its per-series files).  A name that would be longer
 * than SPOOLQ_NAME_MAX has its service part cut and "~" and 8 hex digits
 * of a hash of the whole service appended, so two long services still
 * differ.  service must be non-empty.  0, or -EINVAL, -ENAMETOOLONG (len
 * too small).
 */
int spoolq_name(char *buf, size_t len, int64_t realtime_ns, const char *service,
		const char *tenant);

/*
 * Whether name is a virtual name (an older vigild's per-series file), and
 * its series and time.  ret_service (svc_len bytes) and ret_tenant
 * (EXPORT_TENANT_LEN) receive the unescaped parts; any may be NULL.  0 or
 * -EINVAL.
 */
int spoolq_parse_name(const char *name, int64_t *ret_time_ns, char *ret_service, size_t svc_len,
		      char *ret_tenant);

/*
 * The spool file name of part `part` of the interval starting at
 * realtime_ns, holding nseries series (1..SPOOLQ_SERIES_MAX; part at most
 * SPOOLQ_PART_MAX).  0, or -EINVAL, -ENAMETOOLONG.
 */
int spoolq_file_name(char *buf, size_t len, int64_t realtime_ns, uint32_t part, uint32_t nseries);

/*
 * Whether name is a spool file (exactly the form above: a valid stamp,
 * numbers without leading zeros and within their bounds), and what it
 * says; any ret_ may be NULL.  0 or -EINVAL.
 */
int spoolq_parse_file_name(const char *name, int64_t *ret_time_ns, uint32_t *ret_part,
			   uint32_t *ret_nseries);

/*
 * Queue the files a previous run left in the directory (spool files;
 * anything else is left alone), oldest first.  Then applies the bound like
 * spoolq_add.  *ret_legacy (may be NULL) receives how many per-series
 * files of an older vigild were seen (left alone, not sent).  Returns how
 * many were queued, or -errno.
 */
int spoolq_scan(struct spoolq *q, uint64_t *ret_legacy);

/*
 * A spool file just written into the directory under name (as
 * spoolq_file_name made it), of size bytes, for the interval at time_ns,
 * holding nseries profiles of `samples` pprof samples: queue it, then
 * unlink the oldest files while the spool is over its bound.
 * *ret_dropped (may be NULL) receives how many profiles were dropped now.
 * 0 or -errno (-EINVAL: not a spool file name or nseries out of bounds;
 * -ENOMEM: not queued; the file stays and is found again by the next run's
 * scan).
 */
int spoolq_add(struct spoolq *q, const char *name, int64_t time_ns, uint32_t nseries,
	       uint64_t samples, uint64_t size, uint64_t *ret_dropped);

/*
 * Before a spool file of size bytes is written: unlink the oldest files
 * (not the one in flight) until it fits under the bound beside the others,
 * so that the spool never holds more than the bound plus the file in
 * flight.  Returns how many profiles were dropped.
 */
uint64_t spoolq_make_room(struct spoolq *q, uint64_t size);

/*
 * Another bound (the policy's export.spool_max_bytes, or back to the
 * command line's; 0: SPOOLQ_DEFAULT_MAX_BYTES), applied now: the oldest
 * files go at once if the spool is over it.  Returns how many profiles
 * were dropped.
 */
uint64_t spoolq_set_max_bytes(struct spoolq *q, uint64_t max_bytes);

/*
 * Whether a drop episode has begun since the last call: true once, at the
 * first drop since the start or since the last spoolq_done (an outage that
 * fills the spool is one episode however long it lasts; for one log line
 * per episode).
 */
bool spoolq_episode_started(struct spoolq *q);

/*
 * Profiles and bytes dropped and not yet reported (for the next profile's
 * comment).  Once the profiles carrying them are written, subtract what
 * was reported with spoolq_dropped_reported (drops in between stay for the
 * next time), naming their interval (time_ns): the count is carried by
 * that interval's newest file in the spool.  Should the bound drop that
 * file too before it is sent, and no other file of its interval is left to
 * carry it, the count is unreported again and goes into the next profile's
 * comment with the file's own, so that the comments of the profiles that
 * are sent add up to everything dropped.
 */
void spoolq_dropped(const struct spoolq *q, uint64_t *ret_profiles, uint64_t *ret_bytes);
void spoolq_dropped_reported(struct spoolq *q, uint64_t profiles, uint64_t bytes, int64_t time_ns);

/*
 * The next file to send: NULL when one is already in flight or none
 * waits.  Otherwise the oldest, now marked in flight with a fresh seq.
 * The entry is owned by the queue, valid until the next call that changes it.
 */
const struct spoolq_entry *spoolq_next(struct spoolq *q);

/*
 * The samples of the file in flight as seq, once counted from its bytes (a
 * file a scan found: SPOOLQ_SAMPLES_UNKNOWN until then), so that sending it
 * again does not count them again.  Nothing when seq is not in flight.
 */
void spoolq_set_samples(struct spoolq *q, uint64_t seq, uint64_t samples);

/* The file in flight, or NULL; valid until the next call that changes the queue. */
const struct spoolq_entry *spoolq_inflight(const struct spoolq *q);

/*
 * The push of seq is over (pushed or refused for good): unlink its file.
 * -EPROTO when seq is not the one in flight (the uplink broke the
 * protocol; nothing changes).  -errno from unlinkat is returned after the
 * entry is forgotten anyway (the file is found again by the next scan).
 */
int spoolq_done(struct spoolq *q, uint64_t seq);

/*
 * Nothing is in flight any more (the uplink is gone): the profile in
 * flight will be the next one sent again.
 */
void spoolq_reset_inflight(struct spoolq *q);

/* The counters (struct spool_stats), kept current. */
const struct spool_stats *spoolq_stats(const struct spoolq *q);

/*
 * RawSample.ID for a series: a UUID (RFC 9562 version 8, from SHA-256 of
 * the host name and the series' virtual name, spoolq_name), so every
 * resend of one profile carries the same ID.  buf: at least 37 bytes.
 */
void spoolq_uuid(const char *host, const char *name, char *buf, size_t len);

#endif
