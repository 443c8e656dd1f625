/*
 * cpmetrics.c - vigil-cp's metrics page (see cpmetrics.h, docs/metrics.md).
 *
 * Runs in vigil-cp (unprivileged, single-threaded, on the event loop).
 * Every scrape is answered from memory: the store figures are refreshed
 * when older than CPMETRICS_CACHE_MS, one listing query per family
 * (agents, rollouts) and one for the highest policy serial, on either
 * backend through store.h.  A store that fails keeps the last figures and
 * says so in vigil_cp_store_up.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "cpaudit.h"
#include "cpmetrics.h"
#include "procmetrics.h"
#include "promtext.h"
#include "store.h"

#ifndef VIGIL_VERSION
#define VIGIL_VERSION "unknown"
#endif

#define NROUTES 3
#define MAX_CODES 16            /* distinct statuses counted per route; more go to code="other" */
#define PAGE_MAX (1u << 20)

static const char *const routes[NROUTES] = { "opamp", "api", "other" };
/* Seconds: from a cached OpAMP poll (~1 ms) to a slow store write. */
static const double bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5 };
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

struct route_stats {
	int codes[MAX_CODES];
	uint64_t count[MAX_CODES];
	uint64_t other;             /* statuses past MAX_CODES distinct ones */
	uint64_t buckets[NBOUNDS + 1];
	double sum;
};

/* Agents by (connected, health): health 0 unhealthy, 1 healthy, 2 never reported. */
struct fleet {
	bool valid, store_up;
	int64_t read_ms;            /* CLOCK_MONOTONIC of the last read */
	uint64_t agents[2][3];
	uint64_t rollouts[STORE_ROLLOUT_COMPLETED + 1];
	int64_t max_serial;
};

struct cpmetrics {
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	struct store *st;
	struct cpaudit *audit;
	struct route_stats r[NROUTES];
	struct fleet fleet;
	uint64_t btime;
	uint64_t scrapes;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cpmetrics_observe(void *arg, const char *route, int status, double seconds)
{
	struct cpmetrics *m = arg;
	struct route_stats *r;
	size_t i, b;

	if (!m || status <= 0)
		return;
	for (i = 0; i < NROUTES - 1 && strcmp(routes[i], route); i++)
		;
	r = &m->r[i];
	for (i = 0; i < MAX_CODES && r->codes[i] && r->codes[i] != status; i++)
		;
	if (i == MAX_CODES) {
		r->other++;
	} else {
		r->codes[i] = status;
		r->count[i]++;
	}
	for (b = 0; b < NBOUNDS && seconds > bounds[b]; b++)
		;
	r->buckets[b]++;
	r->sum += seconds;
}

/* --- the store's figures, cached ---------------------------------------------- */

static int count_agent(const struct store_agent *a, void *arg)
{
	struct fleet *f = arg;

	f->agents[!a->disconnected][a->healthy < 0 ? 2 : a->healthy ? 1 : 0]++;
	return 0;
}

static int count_rollout(const struct store_rollout *r, void *arg)
{
	struct fleet *f = arg;

	if (r->state >= STORE_ROLLOUT_RUNNING && r->state <= STORE_ROLLOUT_COMPLETED)
		f->rollouts[r->state]++;
	return 0;
}

static void refresh(struct cpmetrics *m)
{
	struct fleet f = { 0 };
	int64_t now = mono_ms();

	if (m->fleet.valid && now - m->fleet.read_ms < CPMETRICS_CACHE_MS)
		return;
	if (store_agent_list(m->st, count_agent, &f) || store_rollout_list(m->st, 0, count_rollout, &f) ||
	    store_policy_max_serial(m->st, &f.max_serial)) {
		/* Keep what was read last; try again at the next scrape after the cache time. */
		m->fleet.store_up = false;
		m->fleet.read_ms = now;
		return;
	}
	f.valid = f.store_up = true;
	f.read_ms = now;
	m->fleet = f;
}

/* --- the page ------------------------------------------------------------------- */

static void render_http(const struct cpmetrics *m, struct promtext *p)
{
	char code[16];

	promtext_family(p, "vigil_cp_http_requests_total", PROMTEXT_COUNTER,
			"Requests answered on the OpAMP/admin listener, by route class and status code.");
	for (size_t i = 0; i < NROUTES; i++) {
		const struct route_stats *r = &m->r[i];

		for (size_t k = 0; k < MAX_CODES && r->codes[k]; k++) {
			snprintf(code, sizeof(code), "%d", r->codes[k]);
			promtext_sample_u64(p, "vigil_cp_http_requests_total",
					    (struct promtext_label[]){ { "route", routes[i] }, { "code", code } }, 2,
					    r->count[k]);
		}
		if (r->other)
			promtext_sample_u64(p, "vigil_cp_http_requests_total",
					    (struct promtext_label[]){ { "route", routes[i] }, { "code", "other" } },
					    2, r->other);
	}
	promtext_family(p, "vigil_cp_http_request_duration_seconds", PROMTEXT_HISTOGRAM,
			"Time the server spent on a request, from its arrival to its answer, by route class.");
	for (size_t i = 0; i < NROUTES; i++)
		promtext_histogram(p, "vigil_cp_http_request_duration_seconds",
				   (struct promtext_label[]){ { "route", routes[i] } }, 1, bounds, m->r[i].buckets,
				   NBOUNDS, m->r[i].sum);
}

static void render_fleet(const struct cpmetrics *m, struct promtext *p)
{
	static const char *const conn[2] = { "disconnected", "connected" };
	static const char *const health[3] = { "unhealthy", "healthy", "unknown" };
	const struct fleet *f = &m->fleet;

	promtext_family(p, "vigil_cp_store_up", PROMTEXT_GAUGE, "1 when the last read of the store succeeded.");
	promtext_sample_u64(p, "vigil_cp_store_up", NULL, 0, f->store_up);
	if (!f->valid)
		return;
	promtext_family(p, "vigil_cp_agents", PROMTEXT_GAUGE,
			"Agents the store knows, by connection (disconnected: said goodbye since it last "
			"spoke) and by the health they last reported.");
	for (int c = 0; c < 2; c++)
		for (int h = 0; h < 3; h++)
			promtext_sample_u64(p, "vigil_cp_agents",
					    (struct promtext_label[]){ { "connection", conn[c] },
								       { "health", health[h] } }, 2,
					    f->agents[c][h]);
	promtext_family(p, "vigil_cp_rollouts", PROMTEXT_GAUGE, "Staged rollouts by state.");
	for (int s = STORE_ROLLOUT_RUNNING; s <= STORE_ROLLOUT_COMPLETED; s++)
		promtext_sample_u64(p, "vigil_cp_rollouts",
				    (struct promtext_label[]){ { "state", store_rollout_state_name(s) } }, 1,
				    f->rollouts[s]);
	promtext_family(p, "vigil_cp_policy_serial_max", PROMTEXT_GAUGE,
			"The highest policy serial uploaded (0: none).");
	promtext_sample_u64(p, "vigil_cp_policy_serial_max", NULL, 0, (uint64_t)f->max_serial);
}

static void render_process(const struct cpmetrics *m, struct promtext *p)
{
	struct proc_row r;

	if (procmetrics_read(getpid(), m->btime, &r))
		return;
	promtext_family(p, "process_cpu_seconds_total", PROMTEXT_COUNTER,
			"Total user and system CPU time spent in seconds.");
	promtext_sample(p, "process_cpu_seconds_total", NULL, 0, r.cpu_seconds);
	promtext_family(p, "process_resident_memory_bytes", PROMTEXT_GAUGE, "Resident memory size in bytes.");
	promtext_sample_u64(p, "process_resident_memory_bytes", NULL, 0, r.resident_bytes);
	promtext_family(p, "process_virtual_memory_bytes", PROMTEXT_GAUGE, "Virtual memory size in bytes.");
	promtext_sample_u64(p, "process_virtual_memory_bytes", NULL, 0, r.virtual_bytes);
	if (r.flags & PROC_ROW_OPEN_FDS) {
		promtext_family(p, "process_open_fds", PROMTEXT_GAUGE, "Number of open file descriptors.");
		promtext_sample_u64(p, "process_open_fds", NULL, 0, r.open_fds);
	}
	if (r.max_fds) {
		promtext_family(p, "process_max_fds", PROMTEXT_GAUGE, "Maximum number of open file descriptors.");
		promtext_sample_u64(p, "process_max_fds", NULL, 0, r.max_fds);
	}
	promtext_family(p, "process_start_time_seconds", PROMTEXT_GAUGE,
			"Start time of the process since unix epoch in seconds.");
	promtext_sample(p, "process_start_time_seconds", NULL, 0, r.start_time_seconds);
}

static void render(struct cpmetrics *m, struct promtext *p)
{
	promtext_family(p, "vigil_cp_build_info", PROMTEXT_GAUGE, "1, labelled with the version of vigil-cp.");
	promtext_sample_u64(p, "vigil_cp_build_info", (struct promtext_label[]){ { "version", VIGIL_VERSION } }, 1,
			    1);
	refresh(m);
	render_fleet(m, p);
	promtext_family(p, "vigil_cp_audit_records", PROMTEXT_GAUGE, "Records in the audit log.");
	promtext_sample_u64(p, "vigil_cp_audit_records", NULL, 0, m->audit ? cpaudit_size(m->audit) : 0);
	render_http(m, p);
	promtext_family(p, "vigil_cp_metrics_scrapes_total", PROMTEXT_COUNTER, "Metrics pages served.");
	promtext_sample_u64(p, "vigil_cp_metrics_scrapes_total", NULL, 0, m->scrapes);
	render_process(m, p);
}

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *body)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; charset=utf-8");
	evbuffer_add(out, body, strlen(body));
	evhttp_send_reply(req, code, reason, NULL);
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
	struct cpmetrics *m = arg;
	struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
	size_t cap = 64u << 10;
	struct promtext p;
	char *page = NULL;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evhttp_add_header(hd, "Allow", "GET, HEAD");
		reply_text(req, 405, "Method Not Allowed", "GET /metrics only\n");
		return;
	}
	m->scrapes++;
	for (;;) {
		free(page);
		page = malloc(cap);
		if (!page)
			break;
		promtext_init(&p, page, cap);
		render(m, &p);
		if (promtext_error(&p) != -ENOBUFS || cap >= PAGE_MAX)
			break;
		cap *= 2;
	}
	if (!page || promtext_error(&p)) {
		free(page);
		reply_text(req, 500, "Internal Server Error", "the metrics page could not be written\n");
		return;
	}
	evhttp_add_header(hd, "Content-Type", PROMTEXT_CONTENT_TYPE);
	evbuffer_add(evhttp_request_get_output_buffer(req), page, promtext_len(&p));
	free(page);
	evhttp_send_reply(req, 200, "OK", NULL);
}

static void on_other(struct evhttp_request *req, void *arg)
{
	(void)arg;
	reply_text(req, 404, "Not Found", "vigil-cp serves /metrics here\n");
}

int cpmetrics_new(struct event_base *base, int listen_fd, struct store *st, struct cpaudit *audit,
		  struct cpmetrics **ret)
{
	struct cpmetrics *m = calloc(1, sizeof(*m));

	if (!m) {
		close(listen_fd);
		return -ENOMEM;
	}
	m->st = st;
	m->audit = audit;
	if (procmetrics_boot_time(&m->btime))
		m->btime = 0;
	m->http = evhttp_new(base);
	if (!m->http) {
		close(listen_fd);
		free(m);
		return -ENOMEM;
	}
	/* Bounded like vigild's: a scraper sends a few hundred bytes and no body. */
	evhttp_set_max_headers_size(m->http, CPMETRICS_MAX_HEADERS);
	evhttp_set_max_body_size(m->http, 0);
	evhttp_set_timeout(m->http, CPMETRICS_TIMEOUT_S);
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
	evhttp_set_cb(m->http, "/metrics", on_metrics, m);
	evhttp_set_gencb(m->http, on_other, m);
	m->sock = evhttp_accept_socket_with_handle(m->http, listen_fd);
	if (!m->sock) {
		close(listen_fd);
		evhttp_free(m->http);
		free(m);
		return -EIO;
	}
	*ret = m;
	return 0;
}

void cpmetrics_free(struct cpmetrics *m)
{
	if (!m)
		return;
	evhttp_free(m->http);	/* closes the listener and the connections */
	free(m);
}
