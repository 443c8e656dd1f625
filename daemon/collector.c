/*
 * collector.c - vigild's collector process.
 *
 * Started by the monitor as the program vigild-collector (vigild-collector.c,
 * workerexe.h); it receives,
 * over the socket at PRIVSEP_FD, its configuration and the fds it works
 * with: the samples ring buffer, the stats map and the output directory.
 * It drains samples, aggregates them, and at the end of each interval
 * symbolizes and writes one gzip pprof file into the directory.
 *
 * Privileges: none.  It is started as the unprivileged user (vigil) with
 * every capability set empty and no_new_privs; once set up it confines
 * itself with Landlock (read /proc and /sys, write only the output
 * directory) and a seccomp allowlist that kills it on anything else: no
 * network sockets, no exec, no ptrace, no BPF but reading the maps it was
 * given.  Other processes' memory maps and binaries, which symbolization
 * needs and it may not open, it asks the monitor for (MSG_OPEN_MAPS,
 * MSG_OPEN_FILE): the monitor decides what to open and hands back a
 * read-only fd.  It never opens a network socket.
 *
 * A profile that cannot be written (disk full, directory unwritable) is kept
 * in memory, up to a limit, and written when the directory accepts it
 * again; sampling never stops because of the output.
 *
 * With export on (SETUP_F_EXPORT) the directory is also the export spool:
 * each interval is split into one profile per series (service, tenant),
 * and the series are written as one file holding the interval's
 * PushRequest (or a few, when it would be too large for one push:
 * exportside_build); exportside.c hands the files to the uplink one at a
 * time and unlinks each when the uplink acknowledges its push.
 *
 * Two programs run this code.  vigild-collector has the control plane's
 * side (cpside.h) and the export's (exportside.h); vigild-collector-local,
 * which the monitor runs when there is neither (as it runs
 * vigild-uplink-local), is the same object linked without them, and so
 * without libcrypto, which they need for signatures, certificates and
 * digests: 1.5 MiB less resident (docs/benchmarks.md, "Memory at 19 Hz").
 * This file refers to them weakly (below), so that linking it does not
 * pull them from libvigil.a; vigild-collector's link asks for them
 * (Makefile, COLLECTOR_SIDES).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "budgets.h"
#include "cgroups.h"
#include "collector.h"
#include "demangle.h"
#include "exportpolicy.h"
#include "cpside.h"
#include "heartbeat.h"
#include "exportside.h"
#include "log.h"
#include "mapguard.h"
#include "monclient.h"
#include "policy.h"
#include "privsep.h"
#include "procmaps.h"
#include "sandbox.h"
#include "snapshot.h"
#include "spool.h"
#include "spoolq.h"
#include "stackagg.h"
#include "sysctl.h"
#include "symbolizer.h"
#include "tscclock.h"
#include "unwind.h"

/* Linked into vigild-collector only (above); NULL in vigild-collector-local. */
#pragma weak cpside_init
#pragma weak cpside_last_known_good
#pragma weak cpside_set_local
#pragma weak cpside_start
#pragma weak cpside_health_start
#pragma weak cpside_on_readable
#pragma weak cpside_local_allowed
#pragma weak cpside_health
#pragma weak cpside_release
#pragma weak exportside_init
#pragma weak exportside_stats
#pragma weak exportside_make_room
#pragma weak exportside_written
#pragma weak exportside_build
#pragma weak exportside_parts_free
#pragma weak exportside_set_bound
#pragma weak exportside_drop_comment
#pragma weak exportside_drop_reported
#pragma weak exportside_on_ack
#pragma weak exportside_waiting
#pragma weak exportside_on_readable
#pragma weak exportside_pump
#pragma weak exportside_release

/*
 * The longest the ring buffer waits to be drained.  The BPF program wakes
 * the collector for a process's first sample and when the ring is
 * half full (wake_flag in bpf/profile.bpf.c); the rest waits for this,
 * or for whatever else turns the loop first (the control period, 5 s by
 * default; an interval's end, which drains before it writes).  Nothing
 * else needs the records sooner: what a process's later samples need of
 * it (its maps, its files) was taken at its first, and a longer wait is
 * fewer wakeups at a continuous profiler's pace (issue 13).
 */
#define DRAIN_MAX_NS 5000000000ull
/* How soon profiles the output directory or the uplink could not take are offered again. */
#define PENDING_RETRY_NS 100000000ull
/* Profiles waiting for the output directory to accept them again. */
#define PENDING_MAX_BYTES (8u << 20)
#define PENDING_MAX 64
#define TOP_ROWS 10

struct pending {
	char name[256];
	uint8_t *buf;
	size_t len;
	/* export on: a spool file of nseries profiles (0: a plain profile file) */
	uint32_t nseries;
	uint64_t samples;
	int64_t time_ns;
};

struct collector {
	struct msg_collector_setup cfg;
	struct exportpolicy expol;  /* the policy's export: section, told to the monitor */
	int events_fd, stats_fd, out_fd, kallsyms_fd, tstats_fd;
	struct budgets *budgets;
	uint64_t next_control_mono;
	struct ring_buffer *rb;
	struct stackagg *agg;
	struct symbolizer *sym;
	struct unwind *unw;
	struct tscclock tsc; /* times each record's unwinding */
	/* Ring buffer traffic and unwinding, cumulative, and at the last flush. */
	uint64_t rec_bytes, unwind_ns, flushed_bytes, flushed_ns, flushed_records;
	uint64_t records;
	struct unwind_stats flushed_unw;
	/* A DWARF-mode record turned into frames: header, kernel and user frames. */
	uint8_t unwound[sizeof(struct vigil_sample_hdr) + VIGIL_KSTACK_BYTES + 8 * UNWIND_MAX_FRAMES];
	struct cgroups *cg;
	bool top;

	int64_t interval_start_rt;   /* realtime ns */
	uint64_t interval_start_mono;
	uint64_t end_mono;           /* 0: no duration */

	struct vigil_stats last_stats;
	uint64_t malformed;          /* records that failed validation */

	/* last process noted, to skip the symbolizer's lookup on repeats */
	uint32_t last_pid;
	uint64_t last_start;

	/* The control plane's side (SETUP_F_CONTROL_PLANE). */
	bool cp_on;
	struct cpside cp;
	uint64_t health_samples;     /* samples + idle at the last health check */

	struct pending pending[PENDING_MAX];
	size_t npending, pending_bytes;
	bool out_failing;
	uint64_t profiles_written, profiles_dropped;
	uint64_t early_flushes; /* intervals ended early: the aggregation was full */

	/* Prometheus metrics (SETUP_F_METRICS): sent when the uplink asks, for a scrape. */
	bool metrics_on;
	int metrics_chan;            /* with the uplink: METRICS_WANTED in, COLLECTOR_METRICS out
				      * (non-blocking) */
	bool seen_mc[MSG_TYPE_MAX];
	/*
	 * Export without a control plane: the socket to the uplink (owned
	 * here, borrowed by exportside, which closes it and sets it to -1 on
	 * a protocol break); with one, cp.chan_fd carries the profiles.
	 */
	int export_chan;
	uint64_t drained_mono; /* when the ring buffer was last drained */
	int wake_fd;           /* ring_wake_fd() */
	/* Heartbeats to the monitor (systemd's watchdog and STATUS=, issue 11). */
	struct heartbeat hb;
	uint32_t reloads;            /* policies taken from the monitor since the start */
	uint64_t beat_seen;          /* samples + idle at the last beat */
	/* Export (SETUP_F_EXPORT): the spool and the profiles to the uplink. */
	bool export_on;
	struct exportside ex;
	uint64_t policy_gen;         /* budgets_policy_generation() follow_policy() saw */
};

static const struct spool_stats no_spool_stats;
static const struct collector *the_collector;

const struct spool_stats *collector_spool_stats(void)
{
	if (!the_collector || !the_collector->export_on)
		return &no_spool_stats;
	return exportside_stats(&the_collector->ex);
}

/* The profiles a waiting file holds: a spool file's series, else one. */
static uint64_t pending_profiles(const struct pending *p)
{
	return p->nseries ? p->nseries : 1;
}

static void pending_free(struct pending *p)
{
	free(p->buf);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* Sum the per-CPU counters. */
static int read_stats(struct collector *c, struct vigil_stats *ret)
{
	int ncpu = libbpf_num_possible_cpus();
	struct vigil_stats *v, sum = { 0 };
	uint32_t zero = 0;

	if (ncpu <= 0)
		return -EINVAL;
	v = calloc(ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(c->stats_fd, &zero, v)) {
		int rc = -errno;

		free(v);
		return rc;
	}
	for (int i = 0; i < ncpu; i++) {
		sum.samples += v[i].samples;
		sum.lost += v[i].lost;
		sum.idle += v[i].idle;
		sum.user_err += v[i].user_err;
		sum.kernel_err += v[i].kernel_err;
		sum.exec_lost += v[i].exec_lost;
		sum.stack_lookups += v[i].stack_lookups;
	}
	free(v);
	*ret = sum;
	return 0;
}

static void print_top(const struct snapshot_top *t, const struct snapshot_meta *m)
{
	char when[32];
	time_t secs = (time_t)(m->time_ns / 1000000000);
	struct tm tm;

	localtime_r(&secs, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	printf("\n%s  %" PRIu64 " samples, %.3f CPU s on %u CPUs (lost %" PRIu64 ")\n", when,
	       t->samples, (double)t->cpu_ns / 1e9, m->ncpus, m->stats.lost);
	printf("  %6s  %-16s  %s\n", "self%", "process", "function");
	for (size_t i = 0; i < t->n && i < TOP_ROWS; i++)
		printf("  %5.1f%%  %-16s  %.90s\n",
		       t->cpu_ns ? 100.0 * (double)t->v[i].cpu_ns / (double)t->cpu_ns : 0.0,
		       t->v[i].comm, t->v[i].function);
	fflush(stdout);
}

/* Try to write every waiting profile, oldest first. */
static void drain_pending(struct collector *c)
{
	while (c->npending) {
		struct pending *p = &c->pending[0];
		char used[256];
		int rc;

		/* A spool file: the bound holds before it is written, not only after. */
		if (c->export_on && p->nseries)
			exportside_make_room(&c->ex, p->len);
		rc = spool_write(c->out_fd, p->name, p->buf, p->len, used, sizeof(used));

		if (rc) {
			if (!c->out_failing)
				log_warn_errno(rc, "cannot write profile %s (keeping %zu profile(s) in "
						   "memory and sampling on)", p->name, c->npending);
			c->out_failing = true;
			return;
		}
		if (c->out_failing)
			log_info("output directory writable again: wrote %s", used);
		c->out_failing = false;
		c->profiles_written += pending_profiles(p);
		c->pending_bytes -= p->len;
		if (c->export_on && p->nseries)
			exportside_written(&c->ex, used, p->time_ns, p->nseries, p->samples, p->len);
		pending_free(p);
		memmove(&c->pending[0], &c->pending[1], (c->npending - 1) * sizeof(c->pending[0]));
		c->npending--;
	}
}

static void queue_profile(struct collector *c, const char *name, uint8_t *buf, size_t len)
{
	/* Make room by dropping the oldest: recent data is worth more. */
	while (c->npending && (c->npending == PENDING_MAX || c->pending_bytes + len > PENDING_MAX_BYTES)) {
		const struct log_event ev = { .priority = LOG_WARNING, .id = LOG_ID_SPOOL_DROPPING };

		log_event(&ev, "dropping unwritten profile %s: %zu file(s) waiting for the output "
			  "directory", c->pending[0].name, c->npending);
		c->profiles_dropped += pending_profiles(&c->pending[0]);
		c->pending_bytes -= c->pending[0].len;
		pending_free(&c->pending[0]);
		memmove(&c->pending[0], &c->pending[1], (c->npending - 1) * sizeof(c->pending[0]));
		c->npending--;
	}
	memset(&c->pending[c->npending], 0, sizeof(c->pending[0]));
	snprintf(c->pending[c->npending].name, sizeof(c->pending[0].name), "%s", name);
	c->pending[c->npending].buf = buf;
	c->pending[c->npending].len = len;
	c->npending++;
	c->pending_bytes += len;
}

/* Export on: the interval's series, as its spool file(s), to the spool. */
static void queue_series(struct collector *c, const struct snapshot_set *set, int64_t time_ns)
{
	struct exportside_part *parts;
	size_t n;
	int rc = exportside_build(&c->ex, set, time_ns, &parts, &n);

	if (rc) {
		log_warn_errno(rc, "cannot build the push of %zu profile(s); this interval is not "
			       "exported", set->n);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct pending *p;

		queue_profile(c, parts[i].name, parts[i].buf, parts[i].len);
		parts[i].buf = NULL;
		p = &c->pending[c->npending - 1];
		p->nseries = parts[i].nseries;
		p->samples = parts[i].samples;
		p->time_ns = time_ns;
	}
	exportside_parts_free(parts, n);
	drain_pending(c);
}

static const char *tenant_name(const void *budgets, uint32_t tenant, uint32_t gen)
{
	return budgets_tenant_name(budgets, tenant, gen);
}

/*
 * The policy in force may have brought another export: section (issue 11)
 * and another bound for the spool (the policy's when it sets one, else
 * --spool-max-bytes).  0, or -errno when the monitor could not be told
 * (tried again at the next loop turn).
 */
static int follow_policy(struct collector *c)
{
	const struct policy *pol = budgets_policy(c->budgets);
	int rc = exportpolicy_sync(&c->expol, pol, PRIVSEP_FD);

	if (c->export_on)
		exportside_set_bound(&c->ex, pol && pol->export.set && pol->export.spool_max_bytes
						     ? pol->export.spool_max_bytes
						     : c->cfg.spool_max_bytes);
	return rc;
}

/* End the current interval: symbolize, encode, write; start the next. */
static void flush(struct collector *c)
{
	uint64_t now = mono_ns();
	struct snapshot_meta m = {
		.time_ns = c->interval_start_rt,
		.duration_ns = (int64_t)(now - c->interval_start_mono),
		.hz = c->cfg.hz,
		.ncpus = c->cfg.ncpus,
		.tenant_name = tenant_name,
		.tenant_ctx = c->budgets,
	};
	struct vigil_stats st;
	struct snapshot_top *top = NULL;
	char unwind_comment[512], cache_comment[1024];
	struct snapshot_set *set = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	char name[128];
	int rc;

	if (read_stats(c, &st) == 0) {
		m.stats.samples = st.samples - c->last_stats.samples;
		m.stats.lost = st.lost - c->last_stats.lost;
		m.stats.idle = st.idle - c->last_stats.idle;
		m.stats.user_err = st.user_err - c->last_stats.user_err;
		m.stats.kernel_err = st.kernel_err - c->last_stats.kernel_err;
		m.stats.exec_lost = st.exec_lost - c->last_stats.exec_lost;
		c->last_stats = st;
	}
	if (m.stats.lost || m.stats.exec_lost)
		log_warnx("ring buffer full: %" PRIu64 " samples and %" PRIu64
			  " exec events lost this interval", m.stats.lost, m.stats.exec_lost);

	m.ncomments = budgets_report(c->budgets, &m.comments);
	{
		struct unwind_stats us;
		struct symbolizer_stats ss;
		uint64_t recs = c->records - c->flushed_records;

		unwind_get_stats(c->unw, &us);
		symbolizer_get_stats(c->sym, &ss);
		snprintf(unwind_comment, sizeof(unwind_comment),
			 "vigil: records=%" PRIu64 " record_bytes=%" PRIu64 " unwound=%" PRIu64
			 " truncated=%" PRIu64 " unwind_ns=%" PRIu64 " frames=%" PRIu64
			 " rule_misses=%" PRIu64 " cfi_bytes=%" PRIu64 " unwind_spaces=%zu"
			 " fast=%" PRIu64 " rules_learnt=%" PRIu64 " rules_refused=%" PRIu64
			 " rules_replaced=%" PRIu64 " memo_hits=%" PRIu64,
			 recs, c->rec_bytes - c->flushed_bytes, us.stacks - c->flushed_unw.stacks,
			 us.truncated - c->flushed_unw.truncated, c->unwind_ns - c->flushed_ns,
			 us.frames - c->flushed_unw.frames, us.rule_misses - c->flushed_unw.rule_misses,
			 ss.cfi_bytes, us.spaces, us.fast_stacks - c->flushed_unw.fast_stacks,
			 us.rules_learnt - c->flushed_unw.rules_learnt,
			 us.rules_refused - c->flushed_unw.rules_refused,
			 us.rules_replaced - c->flushed_unw.rules_replaced,
			 us.memo_hits - c->flushed_unw.memo_hits);
		m.unwind_comment = unwind_comment;
		/* What each cache holds now, and what its bound did since the start. */
		const struct demangle_stats *ds = demangle_stats();

		snprintf(cache_comment, sizeof(cache_comment),
			 "vigil: caches processes=%zu files=%zu anon=%zu symbol_bytes=%" PRIu64
			 " cfi_bytes=%" PRIu64 " cfi_mapped=%" PRIu64 " cfi_truncated_pages=%" PRIu64
			 " kernel_symbols=%zu demangled=%zu"
			 " processes_aged=%" PRIu64 " files_aged=%" PRIu64 " anon_aged=%" PRIu64
			 " processes_refused=%" PRIu64 " files_refused=%" PRIu64 " anon_refused=%" PRIu64
			 " cfi_evicted=%" PRIu64 " unwind_spaces_evicted=%" PRIu64
			 " rules_replaced=%" PRIu64 " demangle_evicted=%" PRIu64 " early_flushes=%" PRIu64
			 " maps_reads=%" PRIu64 " maps_reads_saved=%" PRIu64
			 " files_parsed=%" PRIu64 " parse_ms=%" PRIu64 " files_deferred=%zu"
			 " deferrals=%" PRIu64,
			 ss.processes, ss.files, ss.anon_mappings, ss.elf_bytes, ss.cfi_bytes,
			 ss.cfi_mapped, mapguard_faults(), ss.kernel_symbols, ds->entries, ss.procs_aged, ss.files_aged,
			 ss.anon_aged, ss.procs_refused, ss.files_refused, ss.anon_refused,
			 ss.cfi_evicted, us.spaces_evicted, us.rules_replaced,
			 ds->evicted, c->early_flushes, ss.maps_reads, ss.maps_reads_saved,
			 ss.files_parsed, ss.parse_ns / 1000000, ss.files_deferred, ss.deferrals);
		m.cache_comment = cache_comment;
		c->flushed_records = c->records;
		c->flushed_bytes = c->rec_bytes;
		c->flushed_ns = c->unwind_ns;
		c->flushed_unw = us;
	}
	if (c->export_on) {
		char comment[200];

		if (exportside_drop_comment(&c->ex, comment, sizeof(comment)))
			m.extra_comment = comment;
		rc = snapshot_build_series(c->agg, c->sym, c->cg, &m, &set, c->top ? &top : NULL);
		if (rc)
			log_warn_errno(rc, "cannot build the profiles of %" PRIu64 " samples",
				       stackagg_total(c->agg));
		else
			queue_series(c, set, m.time_ns);
		if (!rc && set->n)
			exportside_drop_reported(&c->ex, m.time_ns);
		if (!rc && top)
			print_top(top, &m);
		snapshot_set_free(set);
	} else if ((rc = snapshot_build(c->agg, c->sym, c->cg, &m, &buf, &len, c->top ? &top : NULL))) {
		log_warn_errno(rc, "cannot build the profile of %" PRIu64 " samples",
			       stackagg_total(c->agg));
	} else {
		spool_name(name, sizeof(name), c->interval_start_rt);
		queue_profile(c, name, buf, len);
		drain_pending(c);
		if (top)
			print_top(top, &m);
	}
	snapshot_top_free(top);
	stackagg_reset(c->agg);
	symbolizer_tick(c->sym);
	c->interval_start_mono = now;
	c->interval_start_rt = real_ns();
}

/*
 * A VIGIL_USER_STACK record: unwind its copied stack now, while the
 * process's maps are known, into a VIGIL_USER_IPS record in c->unwound.
 * The stack bytes go no further than this function (unwind.h).  Returns
 * the new record's size, 0 if the record is malformed.
 */
static size_t unwind_record(struct collector *c, const void *data, size_t size)
{
	struct vigil_sample_hdr h;
	struct vigil_ustack us;
	const uint8_t *block;
	uint64_t ips[UNWIND_MAX_FRAMES], t0;
	size_t n;

	memcpy(&h, data, sizeof(h));
	if (h.kernel_len > VIGIL_KSTACK_BYTES || h.kernel_len % 8 || h.user_len != 0 ||
	    h.ustack_len < sizeof(us) || h.ustack_len > VIGIL_UCOPY_BYTES ||
	    sizeof(h) + (size_t)h.kernel_len + h.ustack_len != size)
		return 0;
	block = (const uint8_t *)data + sizeof(h) + h.kernel_len;
	memcpy(&us, block, sizeof(us));
	if (us.len != h.ustack_len - sizeof(us))
		return 0;
	t0 = tscclock_read(&c->tsc);
	n = unwind_stack(c->unw, h.pid, h.start_ns, &us, block + sizeof(us), ips, UNWIND_MAX_FRAMES);
	/* Wall time: the collector is one thread, on the CPU while it unwinds. */
	t0 = tscclock_ns(&c->tsc, t0, tscclock_read(&c->tsc));
	c->unwind_ns += t0;
	budgets_charge_unwind(c->budgets, h.tenant, t0);
	h.user_fmt = VIGIL_USER_IPS;
	h.user_len = (uint32_t)(n * 8);
	h.ustack_len = 0;
	if (n == 0 && !h.user_err)
		h.user_err = -EFAULT;
	memcpy(c->unwound, &h, sizeof(h));
	memcpy(c->unwound + sizeof(h), (const uint8_t *)data + sizeof(h), h.kernel_len);
	memcpy(c->unwound + sizeof(h) + h.kernel_len, ips, n * 8);
	return sizeof(h) + h.kernel_len + n * 8;
}

static void on_sample(struct collector *c, const void *data, size_t size)
{
	const struct vigil_sample_hdr *h = data;
	int rc;

	/*
	 * First sample of a process (or a switch): capture its maps while it
	 * lives.  Not for a sample without a user stack (a kernel thread's):
	 * nothing of it is symbolized from maps, and a kernel thread's maps
	 * are empty (a request to the monitor for nothing).
	 */
	if ((h->user_len || h->ustack_len) &&
	    (h->pid != c->last_pid || h->start_ns != c->last_start)) {
		symbolizer_note_process(c->sym, h->pid, h->start_ns);
		c->last_pid = h->pid;
		c->last_start = h->start_ns;
	}
	if (h->user_fmt == VIGIL_USER_STACK) {
		symbolizer_sample_time(c->sym, h->time_ns);
		size = unwind_record(c, data, size);
		symbolizer_sample_time(c->sym, 0);
		if (!size) {
			c->malformed++;
			return;
		}
		data = c->unwound;
	}
	rc = stackagg_add(c->agg, data, size);
	if (rc == -ENOSPC) {
		/* Too many distinct stacks for one interval: end it early. */
		c->early_flushes++;
		flush(c);
		rc = stackagg_add(c->agg, data, size);
	}
	if (rc == -EINVAL)
		c->malformed++;
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct collector *c = ctx;
	uint32_t type;

	if (size < sizeof(type)) {
		c->malformed++;
		return 0;
	}
	memcpy(&type, data, sizeof(type));
	c->records++;
	c->rec_bytes += size;
	if (type == VIGIL_EV_SAMPLE && size >= sizeof(struct vigil_sample_hdr)) {
		on_sample(c, data, size);
	} else if (type == VIGIL_EV_EXEC && size == sizeof(struct vigil_exec)) {
		struct vigil_exec e;

		memcpy(&e, data, sizeof(e));
		symbolizer_forget_process(c->sym, e.pid, e.time_ns);
		unwind_forget(c->unw, e.pid);
		if (c->last_pid == e.pid)
			c->last_pid = 0;
	} else {
		c->malformed++;
	}
	return 0;
}

static int monitor_open_maps(void *ctx, uint32_t pid)
{
	struct msg_open_maps m = { .hdr = { MSG_OPEN_MAPS, sizeof(m) }, .pid = pid };

	return monclient_ask(&m, sizeof(m));
}

/*
 * A file the monitor opened and checked, with our own fstat in *st (what
 * the symbolizer's cache keys on): fd, or -EBADF (closed) if that fails
 * or it is no regular file; -errno passes through.
 */
static int own_fstat(int fd, struct stat *st)
{
	if (fd >= 0 && (fstat(fd, st) < 0 || !S_ISREG(st->st_mode))) {
		close(fd);
		return -EBADF;
	}
	return fd;
}

_Static_assert(SYMBOLIZER_FILES_WITH_MAPS == MAPS_REPLY_FILES, "one MAPS_REPLY holds them");

static int monitor_open_maps_files(void *ctx, uint32_t pid, struct sym_preopen *ret, size_t *ret_n)
{
	struct msg_open_maps m = { .hdr = { MSG_OPEN_MAPS, sizeof(m) }, .pid = pid,
				   .flags = OPEN_MAPS_F_FILES };
	struct msg_maps_reply r;
	int fds[MAPS_REPLY_FILES];
	int fd = monclient_ask_maps(&m, &r, fds);

	*ret_n = 0;
	if (fd < 0)
		return fd;
	for (uint32_t i = 0; i < r.n; i++) {
		ret[i] = (struct sym_preopen){ .inode = r.files[i].map.inode,
					       .dev_major = r.files[i].map.dev_major,
					       .dev_minor = r.files[i].map.dev_minor };
		ret[i].fd = own_fstat(fds[i], &ret[i].st);
	}
	*ret_n = r.n;
	return fd;
}

/* The mapping part of OPEN_FILE and OPEN_DEBUGLINK: one maps entry of pid. */
static struct msg_open_file mapping_request(uint32_t type, uint32_t len, uint32_t pid,
					    const struct procmap *mp)
{
	return (struct msg_open_file){
		.hdr = { type, len },
		.pid = pid,
		.dev_major = mp->dev_major,
		.dev_minor = mp->dev_minor,
		.start = mp->start,
		.end = mp->end,
		.inode = mp->inode,
	};
}

static int monitor_open_file(void *ctx, uint32_t pid, const struct procmap *mp, struct stat *ret_st)
{
	struct msg_open_file m = mapping_request(MSG_OPEN_FILE, sizeof(m), pid, mp);

	return own_fstat(monclient_ask(&m, sizeof(m)), ret_st);
}

_Static_assert(SYMBOLIZER_FILES_AT_ONCE <= PRIVSEP_MAX_FDS, "one OPEN_FILES answer holds them");

static int monitor_open_files(void *ctx, uint32_t pid, const struct procmap *const *mps, size_t n,
			      int *ret_fds, struct stat *ret_st)
{
	struct msg_open_files m = { .hdr = { MSG_OPEN_FILES, sizeof(m) }, .pid = pid,
				    .n = (uint32_t)n };
	int rc;

	if (n == 0 || n > SYMBOLIZER_FILES_AT_ONCE)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		m.maps[i] = (struct msg_file_ref){ .dev_major = mps[i]->dev_major,
						   .dev_minor = mps[i]->dev_minor,
						   .start = mps[i]->start,
						   .end = mps[i]->end,
						   .inode = mps[i]->inode };
	rc = monclient_ask_files(&m, ret_fds);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		ret_fds[i] = own_fstat(ret_fds[i], &ret_st[i]);
	return 0;
}

static int monitor_open_debug(void *ctx, const uint8_t *build_id, size_t len)
{
	struct msg_open_debug m = { .hdr = { MSG_OPEN_DEBUG, sizeof(m) }, .len = (uint32_t)len };

	if (len < MSG_BUILD_ID_MIN || len > MSG_BUILD_ID_MAX)
		return -EINVAL;
	memcpy(m.build_id, build_id, len);
	return monclient_ask(&m, sizeof(m));
}

static int monitor_open_debuglink(void *ctx, uint32_t pid, const struct procmap *mp, const char *name)
{
	struct msg_open_debuglink m = { .map = mapping_request(MSG_OPEN_DEBUGLINK, sizeof(m), pid, mp) };

	if (strlen(name) >= sizeof(m.name))
		return -ENAMETOOLONG;
	memcpy(m.name, name, strlen(name));
	return monclient_ask(&m, sizeof(m));
}

#ifdef VIGIL_TEST_HOOKS
#include "testhooks.h"
#endif

static void receive_setup(struct collector *c)
{
	union {
		struct msg_collector_setup setup;
		uint8_t raw[PRIVSEP_MAX_MSG];
	} u;
	bool seen[MSG_TYPE_MAX] = { 0 };
	int fds[PRIVSEP_MAX_FDS];
	size_t len;
	int type;

	type = privsep_recv(PRIVSEP_FD, PEER_MONITOR, seen, &u, &len, fds);
	if (type < 0)
		fatalx(70, "no valid setup from the monitor: %s", strerror(-type));
	if (type != MSG_COLLECTOR_SETUP || u.setup.version != PRIVSEP_VERSION)
		fatalx(70, "unexpected first message %d (version %u, want %u)", type,
		       u.setup.version, PRIVSEP_VERSION);
	c->cfg = u.setup;
	c->events_fd = fds[0];
	c->stats_fd = fds[1];
	c->out_fd = fds[2];
	c->kallsyms_fd = fds[3];
	c->tstats_fd = fds[4];
	if (!c->cfg.hz || !c->cfg.interval_s || !c->cfg.ncpus || !c->cfg.control_period_s ||
	    !c->cfg.max_hz)
		fatalx(70, "setup with zero hz, interval, CPUs, control period or ceiling");
	if (c->cfg.beat_ms < BEAT_MIN_MS || c->cfg.beat_ms > BEAT_MAX_MS)
		fatalx(70, "setup with a beat every %u ms (%u to %u)", c->cfg.beat_ms, BEAT_MIN_MS,
		       BEAT_MAX_MS);
	heartbeat_init(&c->hb, c->cfg.beat_ms);
}

/* MSG_COLLECTOR_CP, right after the setup (and the policy, if any). */
static void receive_cp(struct collector *c)
{
	union {
		struct msg_collector_cp cp;
		uint8_t raw[PRIVSEP_MAX_MSG];
	} u;
	bool seen[MSG_TYPE_MAX] = { 0 };
	int fds[PRIVSEP_MAX_FDS];
	char why[600];
	size_t len;
	int type, rc;

	do
		type = privsep_recv(PRIVSEP_FD, PEER_MONITOR, seen, &u, &len, fds);
	while (type == -EAGAIN || type == -EINTR);
	if (type != MSG_COLLECTOR_CP || u.cp.version != PRIVSEP_VERSION)
		fatalx(70, "no valid control-plane setup from the monitor (%s)",
		       type < 0 ? strerror(-type) : "wrong type or version");
	rc = cpside_init(&c->cp, fds, sysctl_max_sample_rate(), why, sizeof(why));
	if (rc)
		fatalx(78, "%s; not starting", why);
}

/* --- Prometheus metrics ---------------------------------------------------- */

/*
 * One socket from the monitor, sent once as `type` (struct msg_metrics_fd),
 * made non-blocking: an uplink that does not read must never block
 * sampling.  MSG_COLLECTOR_PEER (export without a control plane: the socket
 * exportside uses) and MSG_COLLECTOR_METRICS_SOCK (the figures' own, so
 * that a full one never stops a policy's answer or a profile).
 */
static int receive_socket(enum privsep_type type, const char *what)
{
	union {
		struct msg_metrics_fd m;
		uint8_t raw[PRIVSEP_MAX_MSG];
	} u;
	bool seen[MSG_TYPE_MAX] = { 0 };
	int fds[PRIVSEP_MAX_FDS];
	size_t len;
	int got;

	do
		got = privsep_recv(PRIVSEP_FD, PEER_MONITOR, seen, &u, &len, fds);
	while (got == -EAGAIN || got == -EINTR);
	if (got != (int)type || u.m.version != PRIVSEP_VERSION)
		fatalx(70, "no %s from the monitor (%s)", what,
		       got < 0 ? strerror(-got) : "wrong type or version");
	if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0)
		fatalx(71, "fcntl: %s", strerror(errno));
	return fds[0];
}

/* The counters and each tenant's figures, to the uplink; a full socket drops them. */
static void send_metrics(struct collector *c)
{
	struct msg_collector_metrics m = { .hdr = { MSG_COLLECTOR_METRICS, sizeof(m) },
					   .version = PRIVSEP_VERSION };
	struct vigil_stats st;
	if (c->metrics_chan < 0)
		return;
	if (read_stats(c, &st) == 0) {
		m.samples_total = st.samples;
		m.lost_total = st.lost;
		m.idle_total = st.idle;
		m.user_stack_errors_total = st.user_err;
		m.kernel_stack_errors_total = st.kernel_err;
		m.exec_lost_total = st.exec_lost;
		m.stack_copy_lookups_total = st.stack_lookups;
	}
	m.malformed_total = c->malformed;
	m.profiles_written_total = c->profiles_written;
	m.profiles_lost_total = c->profiles_dropped;
	m.spool = *collector_spool_stats();
	m.ntenants = (uint32_t)budgets_metrics(c->budgets, m.tenants, METRICS_MAX_TENANTS);
	if (privsep_send(c->metrics_chan, &m, sizeof(m), NULL, 0) == -EPIPE) {
		close(c->metrics_chan);
		c->metrics_chan = -1;
	}
}

/*
 * What the uplink sent on the metrics socket, at most
 * METRICS_ASKS_PER_TURN messages (a flood must not hold the loop): asks
 * for the figures (MSG_METRICS_WANTED), answered once however many came.
 * A closed socket ends the figures.  Anything else is a protocol break,
 * reported to the monitor (MSG_UPLINK_BROKE), which stops the uplink, as
 * a break on the export's socket is (exportside.c).
 */
static void metrics_asked(struct collector *c)
{
	int asks = privsep_take_asks(c->metrics_chan, PEER_UPLINK, c->seen_mc, MSG_METRICS_WANTED,
				     METRICS_ASKS_PER_TURN);

	if (asks > 0)
		send_metrics(c);
	if (asks >= 0)
		return;
	if (asks == -EPROTO) {
		struct msg_uplink_broke m = { .hdr = { MSG_UPLINK_BROKE, sizeof(m) },
					      .version = PRIVSEP_VERSION };

		snprintf(m.why, sizeof(m.why), "on the metrics socket: a message it does not carry");
		log_warnx("the uplink broke the protocol (%s): asking the monitor to stop it", m.why);
		privsep_send(PRIVSEP_FD, &m, sizeof(m), NULL, 0);
	}
	close(c->metrics_chan);
	c->metrics_chan = -1;
}

static int export_ack(void *ctx, const struct msg_export_ack *ack)
{
	return exportside_on_ack(ctx, ack);
}

/*
 * Parse the policy file the monitor handed over (fd, closed here).  On
 * error every message is logged and NULL returned.
 */
static struct policy *read_policy(const struct collector *c, int fd, const char *name,
				  char **ret_buf, size_t *ret_len)
{
	struct policy_errors errs;
	struct policy *p = NULL;
	size_t len = 0;
	char *buf = malloc(POLICY_MAX_SIZE + 1);
	int rc;

	if (!buf) {
		close(fd);
		log_warnx("%s: out of memory", name);
		return NULL;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, POLICY_MAX_SIZE + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_warn_errno(errno, "%s: cannot read", name);
			close(fd);
			free(buf);
			return NULL;
		}
		if (n == 0 || (len += (size_t)n) > POLICY_MAX_SIZE)
			break;
	}
	close(fd);
	rc = policy_parse(buf, len, name, sysctl_max_sample_rate(), &p, &errs);
	if (rc == 0 && ret_buf) {
		*ret_buf = buf;
		*ret_len = len;
	} else {
		free(buf);
	}
	if (rc == 0) {
		for (size_t i = 0; i < p->n_tenants; i++)
			if (p->tenants[i].hz.max > c->cfg.max_hz)
				log_warnx("%s: tenant %s: hz.max %u is above vigild's ceiling (--max-hz %u); "
					  "it will not sample faster than %u Hz", name, p->tenants[i].name,
					  p->tenants[i].hz.max, c->cfg.max_hz, c->cfg.max_hz);
		return p;
	}
	if (rc != -EBADMSG) {
		log_warn_errno(rc, "%s", name);
		return NULL;
	}
	for (size_t i = 0; i < errs.n; i++)
		log_warnx("%s", errs.e[i].text);
	if (errs.n_dropped)
		log_warnx("%s: and %zu more problems", name, errs.n_dropped);
	return NULL;
}

/*
 * Tell the monitor this process is alive and turning, and what it samples
 * (MSG_COLLECTOR_BEAT).  A monitor that cannot be reached is noticed by
 * the loop (monclient).
 */
static void send_beat(struct collector *c)
{
	struct msg_collector_beat m = { .hdr = { MSG_COLLECTOR_BEAT, sizeof(m) },
					.version = PRIVSEP_VERSION };
	struct health_tenant t[HEALTH_MAX_TENANTS];
	struct vigil_stats st;
	uint64_t seen = c->beat_seen;
	size_t n;

	if (read_stats(c, &st) == 0)
		seen = st.samples + st.idle;
	m.sampling = seen > c->beat_seen;
	m.samples = seen;
	c->beat_seen = seen;
	m.progress = c->hb.progress;
	m.reloads = c->reloads;
	m.ntenants = (uint32_t)budgets_ntenants(c->budgets);
	n = budgets_health(c->budgets, t, HEALTH_MAX_TENANTS);
	m.nlisted = (uint32_t)(n < BEAT_MAX_TENANTS ? n : BEAT_MAX_TENANTS);
	if (m.nlisted > m.ntenants)
		m.nlisted = m.ntenants;
	memcpy(m.tenants, t, m.nlisted * sizeof(t[0]));
	privsep_send(PRIVSEP_FD, &m, sizeof(m), NULL, 0);
}

/*
 * The digest of what STATUS= shows of the collector (beats_status): that
 * samples came, the tenants and their frequencies.  A change is beaten at
 * once, not at the next beat (heartbeat_changed).
 */
static uint64_t shown_digest(const struct collector *c)
{
	struct health_tenant t[HEALTH_MAX_TENANTS];
	size_t n = budgets_health(c->budgets, t, HEALTH_MAX_TENANTS);
	size_t all = budgets_ntenants(c->budgets);
	bool sampled = c->records > 0;
	uint64_t d = heartbeat_digest(0, &all, sizeof(all));

	d = heartbeat_digest(d, &sampled, sizeof(sampled));
	for (size_t i = 0; i < n && i < BEAT_MAX_TENANTS; i++) {
		d = heartbeat_digest(d, t[i].name, strnlen(t[i].name, sizeof(t[i].name)) + 1);
		d = heartbeat_digest(d, &t[i].hz, sizeof(t[i].hz));
	}
	return d;
}

/*
 * An epoll fd that is readable after the BPF program asked for a wakeup,
 * until epoll_wait() takes it (edge-triggered).  libbpf's own epoll fd is
 * level-triggered: once woken, it would stay readable while samples keep
 * arriving, and at a high rate the loop would never sleep.
 */
static int ring_wake_fd(int ring_fd)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	int fd = epoll_create1(EPOLL_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (epoll_ctl(fd, EPOLL_CTL_ADD, ring_fd, &ev) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

static uint64_t earlier(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * How long the loop may sleep: not at all while a policy waits (it came
 * during a request), else until the first of the ring's drain bound, the
 * next beat, control period, the end of the interval or of the
 * run, and a retry of the output directory or the uplink.
 */
static int loop_timeout_ms(const struct collector *c, uint64_t now)
{
	uint64_t next = c->drained_mono + DRAIN_MAX_NS;
	int beat = heartbeat_timeout_ms(&c->hb, now), ms;

	if (monclient_policy_waiting())
		return 0;
	next = earlier(next, c->next_control_mono);
	next = earlier(next, c->interval_start_mono + (uint64_t)c->cfg.interval_s * 1000000000ull);
	if (c->end_mono)
		next = earlier(next, c->end_mono);
	if (c->npending || (c->export_on && exportside_waiting(&c->ex)))
		next = earlier(next, now + PENDING_RETRY_NS);
	if (next <= now)
		return 0;
	ms = (int)((next - now + 999999) / 1000000);
	return beat >= 0 && beat < ms ? beat : ms;
}

int collector_main(void)
{
	struct collector c = { 0 };
	struct msg_ready ready = {
		.hdr = { MSG_COLLECTOR_READY, sizeof(ready) },
		.version = PRIVSEP_VERSION,
	};
	const struct symbolizer_ops ops = {
		.open_maps = monitor_open_maps,
		.open_file = monitor_open_file,
		.open_files = monitor_open_files,
		.open_maps_files = monitor_open_maps_files,
		.open_debug = monitor_open_debug,
		.open_debuglink = monitor_open_debuglink,
	};
	struct policy *policy0 = NULL;
	char *local_yaml = NULL;
	size_t local_len = 0;
	bool controlled;
	sigset_t mask;
	int sfd, rc, exit_code = 0;
	bool stopping = false;

	log_init("vigild[collector]");
	receive_setup(&c);
	if (((c.cfg.flags & SETUP_F_CONTROL_PLANE) && !cpside_init) ||
	    ((c.cfg.flags & SETUP_F_EXPORT) && !exportside_init))
		fatalx(70, "this program (vigild-collector-local) has no %s side: the monitor runs "
		       "vigild-collector for it", cpside_init ? "export" : "control-plane");
	c.top = c.cfg.flags & SETUP_F_TOP;
	{
		char name[256];
		int pfd;

		if (c.cfg.flags & SETUP_F_POLICY) {
			while (!monclient_take_policy(&pfd, name, sizeof(name)))
				if (monclient_poll() < 0)
					fatalx(70, "the monitor went away before sending the policy");
			policy0 = read_policy(&c, pfd, name, &local_yaml, &local_len);
			if (!policy0)
				fatalx(78, "%s: invalid policy; not starting", name);
		} else if ((rc = policy_new_default(c.cfg.hz, &policy0)) < 0) {
			fatalx(70, "cannot make the default policy: %s", strerror(-rc));
		}
	}

	controlled = c.cfg.flags & SETUP_F_POLICY;
	if (c.cfg.flags & SETUP_F_CONTROL_PLANE) {
		struct policy *lkg;

		receive_cp(&c);
		c.cp_on = true;
		lkg = cpside_last_known_good(&c.cp);
		if (lkg) {
			if (c.cfg.flags & SETUP_F_POLICY)
				log_info("the state directory's signed policy wins over --policy");
			policy_free(policy0);
			policy0 = lkg;
			controlled = true;
		} else {
			cpside_set_local(&c.cp, c.cfg.flags & SETUP_F_POLICY ? POLICY_SRC_LOCAL
									     : POLICY_SRC_DEFAULT,
					 local_yaml, local_len);
		}
	}
	free(local_yaml);
	c.metrics_chan = -1;
	c.export_chan = -1;
	if (c.cfg.flags & SETUP_F_EXPORT) {
		if (!c.cp_on)
			c.export_chan = receive_socket(MSG_COLLECTOR_PEER, "socket to the uplink");
		/* Before the sandbox: the scan of what a previous run left. */
		exportside_init(&c.ex, c.out_fd, c.cfg.spool_max_bytes,
				c.cp_on ? &c.cp.chan_fd : &c.export_chan, &c.cfg);
		if (c.cp_on) {
			c.cp.export_ack = export_ack;
			c.cp.export_ctx = &c.ex;
		}
		c.export_on = true;
		the_collector = &c;
	}
	/* After the export socket: the monitor sends COLLECTOR_METRICS_SOCK last. */
	c.metrics_on = c.cfg.flags & SETUP_F_METRICS;
	if (c.metrics_on)
		c.metrics_chan = receive_socket(MSG_COLLECTOR_METRICS_SOCK, "metrics socket");

	c.rb = ring_buffer__new(c.events_fd, on_event, &c, NULL);
	if (!c.rb)
		fatalx(70, "cannot map the samples ring buffer: %s", strerror(errno));
	c.wake_fd = ring_wake_fd(c.events_fd);
	if (c.wake_fd < 0)
		fatalx(70, "cannot watch the samples ring buffer: %s", strerror(-c.wake_fd));
	c.agg = stackagg_new(0);
	if (!c.agg)
		fatalx(70, "out of memory");
	rc = symbolizer_new_ops(&ops, c.kallsyms_fd, &c.sym);
	if (rc)
		fatalx(70, "cannot start the symbolizer: %s", strerror(-rc));
	close(c.kallsyms_fd);
	rc = unwind_new(c.sym, &c.unw);
	if (rc)
		fatalx(70, "cannot start the unwinder: %s", strerror(-rc));
	rc = cgroups_new(NULL, &c.cg);
	if (rc)
		log_warn_errno(rc, "no cgroup v2 mount found; cgroup labels will be ids, and tenants have no cgroups");
	rc = budgets_new(&c.cfg, c.tstats_fd, c.cg, policy0, controlled, &c.budgets);
	if (rc)
		fatalx(70, "cannot set up tenants: %s", strerror(-rc));

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		fatalx(71, "cannot set up signals and timers: %s", strerror(errno));

	c.interval_start_mono = mono_ns();
	tscclock_init(&c.tsc);
	tscclock_calibrate(&c.tsc, c.interval_start_mono);
	c.interval_start_rt = c.cfg.start_realtime_ns ? (int64_t)c.cfg.start_realtime_ns : real_ns();
	if (c.cfg.duration_s)
		c.end_mono = c.interval_start_mono + (uint64_t)c.cfg.duration_s * 1000000000ull;
	read_stats(&c, &c.last_stats);

	/* Set up: from here on, only what draining and writing need. */
	/* Time zone for the terminal's table, read while /etc is still reachable. */
	tzset();
	/* No core dumps, no /proc/PID/mem: another worker of this uid cannot reach in. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fatalx(71, "prctl(PR_SET_DUMPABLE): %s", strerror(errno));
	rc = sandbox_landlock_collector(c.out_fd, c.cp_on ? c.cp.state_fd : -1);
	if (rc)
		fatalx(71, "cannot confine file access (Landlock%s): %s; the collector does not run "
		       "without it%s", rc == -EOPNOTSUPP ? " is not available" : "", strerror(-rc),
		       rc == -EOPNOTSUPP ? " (a kernel with CONFIG_SECURITY_LANDLOCK=y and landlock "
					   "in its lsm= list has it)" : "");
	/* Before seccomp (rt_sigaction): root's files' CFI is mapped, not copied (cfi.h). */
	rc = mapguard_install();
	if (rc)
		log_warn_errno(rc, "SIGBUS handler: CFI will be copied, not mapped");
	rc = sandbox_seccomp(SANDBOX_COLLECTOR);
	if (rc)
		fatalx(71, "cannot install the seccomp filter: %s", strerror(-rc));

	rc = privsep_send(PRIVSEP_FD, &ready, sizeof(ready), NULL, 0);
	if (rc)
		fatalx(70, "cannot reach the monitor: %s", strerror(-rc));
	budgets_start(c.budgets);
	/* The tenants' cgroups are attached: now the default events may sample. */
	{
		struct msg_ready start = { .hdr = { MSG_SAMPLING_START, sizeof(start) },
					   .version = PRIVSEP_VERSION };

		rc = privsep_send(PRIVSEP_FD, &start, sizeof(start), NULL, 0);
		if (rc)
			fatalx(70, "cannot reach the monitor: %s", strerror(-rc));
	}
	if (c.cp_on && (rc = cpside_start(&c.cp)) < 0)
		log_warn_errno(rc, "cannot reach the uplink; the control plane will not be heard");
	else if (c.cp_on)
		cpside_health_start(&c.cp, c.budgets);
#ifdef VIGIL_TEST_HOOKS
	testhooks_attempt("collector");
#endif
	c.next_control_mono = mono_ns() + (uint64_t)c.cfg.control_period_s * 1000000000ull;

	while (!stopping) {
		char pname[256];
		int policy_fd;

		struct pollfd pfd[6] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = c.wake_fd, .events = POLLIN },
			{ .fd = PRIVSEP_FD, .events = POLLIN },
			{ .fd = c.cp_on ? c.cp.chan_fd : -1, .events = POLLIN },
			{ .fd = !c.cp_on && c.export_on ? c.export_chan : -1, .events = POLLIN },
			{ .fd = c.metrics_chan, .events = POLLIN },
		};
		uint64_t now, due;

		bool beat_now = false;

		if (poll(pfd, 6, loop_timeout_ms(&c, mono_ns())) < 0) {
			if (errno == EINTR)
				continue;
			fatalx(71, "poll: %s", strerror(errno));
		}
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM)
					stopping = true;
			}
		}
		/* The ring buffer, drained below at every turn: take the wakeup. */
		if (pfd[1].revents & POLLIN) {
			struct epoll_event ev;

			while (epoll_wait(c.wake_fd, &ev, 1, 0) > 0)
				;
		}
		if ((pfd[2].revents & (POLLIN | POLLHUP | POLLERR)) && monclient_poll() < 0) {
			log_warnx("the monitor went away; writing what was collected and exiting");
			stopping = true;
			exit_code = 70;
		}
		if (c.cp_on && (pfd[3].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    cpside_on_readable(&c.cp, c.budgets) == -EPIPE)
			log_warnx("the uplink is gone; the control plane will not be heard (sampling goes on)");
		if (!c.cp_on && c.export_on && (pfd[4].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    exportside_on_readable(&c.ex) == -EPIPE)
			log_warnx("the uplink is gone; profiles stay in the spool for the next run "
				  "(sampling goes on)");
		/* A new policy (SIGHUP to the monitor), maybe kept during a request. */
		if (monclient_take_policy(&policy_fd, pname, sizeof(pname))) {
			char *yaml = NULL;
			size_t ylen = 0;
			struct policy *p;

			/* Taken, applied or not: the monitor's reload is over (READY=1). */
			c.reloads++;
			beat_now = true;
			if (c.cp_on && !cpside_local_allowed(&c.cp)) {
				close(policy_fd);
				log_info("%s: not reloaded: a signed policy from the control plane (serial "
					 "%" PRIu64 ") is in force and replaced it", pname, c.cp.serial);
			} else if ((p = read_policy(&c, policy_fd, pname, &yaml, &ylen))) {
				budgets_reload(c.budgets, p, false);
				if (c.cp_on)
					cpside_set_local(&c.cp, POLICY_SRC_LOCAL, yaml, ylen);
				const struct log_event ev = { .priority = LOG_INFO,
							      .id = LOG_ID_POLICY_APPLIED };

				log_event(&ev, "%s: policy reloaded: %zu tenant(s)", pname,
					  budgets_ntenants(c.budgets));
			} else {
				const struct log_event ev = { .priority = LOG_WARNING,
							      .id = LOG_ID_POLICY_REFUSED };

				log_event(&ev, "%s: invalid policy; keeping the one in force", pname);
			}
			free(yaml);
		}
		/* What derives from the policy in force, redone when another comes in. */
		if (budgets_policy_generation(c.budgets) != c.policy_gen && follow_policy(&c) == 0)
			c.policy_gen = budgets_policy_generation(c.budgets);
		rc = ring_buffer__consume(c.rb);
		if (rc < 0 && rc != -EINTR)
			log_warn_errno(rc, "draining the ring buffer");
		now = mono_ns();
		c.drained_mono = now;
		tscclock_calibrate(&c.tsc, now);
		/*
		 * Periodic work due soon is done now: the beat and the control
		 * period then share one wakeup.
		 */
		due = now + HEARTBEAT_SLACK_NS;
		if (heartbeat_changed(&c.hb, shown_digest(&c)))
			beat_now = true;
		if (heartbeat_turn(&c.hb, now, HEARTBEAT_SLACK_NS, beat_now) && !stopping)
			send_beat(&c);
		if (due >= c.next_control_mono) {
			budgets_tick(c.budgets);
			if (c.cp_on) {
				struct vigil_stats st;
				uint64_t seen = 0;

				if (read_stats(&c, &st) == 0)
					seen = st.samples + st.idle;
				cpside_health(&c.cp, c.budgets, seen > c.health_samples, seen);
				c.health_samples = seen;
			}
			c.next_control_mono = now + (uint64_t)c.cfg.control_period_s * 1000000000ull;
		}
		/* After the drain: the figures count what is in. */
		if (c.metrics_chan >= 0 && (pfd[5].revents & (POLLIN | POLLHUP | POLLERR)))
			metrics_asked(&c);
		if (c.end_mono && now >= c.end_mono)
			stopping = true;
		if (stopping || now - c.interval_start_mono >= (uint64_t)c.cfg.interval_s * 1000000000ull) {
			if (stackagg_total(c.agg) || !stopping || now - c.interval_start_mono > 500000000ull) {
				flush(&c);
				/*
				 * Past tenant names age with interval ends only: an
				 * early flush (too many stacks) may come in the middle
				 * of a drain that still holds samples named by them.
				 */
				budgets_written(c.budgets);
			}
		}
		if (c.npending && !stopping)
			drain_pending(&c);
		if (c.export_on)
			exportside_pump(&c.ex); /* after a send the uplink could not take yet */
	}
	if (c.malformed)
		log_warnx("%" PRIu64 " malformed ring buffer records ignored", c.malformed);
	if (c.npending) {
		log_warnx("%zu profile(s) could not be written to the output directory and are lost",
			  c.npending);
		exit_code = exit_code ? exit_code : 73;
	}
	for (size_t i = 0; i < c.npending; i++)
		pending_free(&c.pending[i]);
	if (c.export_on) {
		the_collector = NULL;
		exportside_release(&c.ex);
	}
	ring_buffer__free(c.rb);
	stackagg_free(c.agg);
	unwind_free(c.unw);
	symbolizer_free(c.sym);
	budgets_free(c.budgets);
	cgroups_free(c.cg);
	if (c.cp_on)
		cpside_release(&c.cp);
	if (c.metrics_chan >= 0)
		close(c.metrics_chan);
	if (c.export_chan >= 0)
		close(c.export_chan);
	return exit_code;
}
