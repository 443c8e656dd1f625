/*
 * vigil-cp.c - the Vigil control plane's process: steers vigild agents with
 * OpAMP over mutual TLS and serves the admin API, both on one listener
 * (httpd.c), with the store behind store.h.
 *
 * One unprivileged process, single-threaded, event-driven (libevent).
 * SIGHUP reloads the TLS files and the policy trust; a reload that fails
 * keeps the running configuration.  SIGTERM and SIGINT stop it (exit 0).
 * Exit codes (sysexits): 64 usage, 66 a file cannot be read, 78 a file's
 * contents are unusable (or --audit-key cannot be used), 69 the listener
 * or the store is unavailable, 65 the stored audit log was altered (a
 * gap in its indexes), 70 internal error.
 */
#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <sysexits.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "api.h"
#include "auditapi.h"
#include "checkpoint.h"
#include "cpaudit.h"
#include "cpevent.h"
#include "cpopts.h"
#include "csrsign.h"
#include "httpd.h"
#include "log.h"
#include "opampsrv.h"
#include "pemfile.h"
#include "rollout.h"
#include "signing.h"
#include "store.h"
#include "cpmetrics.h"
#include "tlsconf.h"

/* Descriptors beyond connections: listener, store, files read on reload, logs. */
#define SPARE_FDS 64

/*
 * How often the tick runs: it notices changes other vigil-cp processes on
 * the same database made (store_generation) and drives the store's
 * periodic work.  An agent sees another server's change within this.
 */
#define TICK_MS 1000

struct cp {
	struct cpopts o;
	struct event_base *base;
	struct httpd *httpd;
	struct api *api;
	struct signing_trust *trust;
	SSL_CTX *ctx;
	unsigned generation;
	struct opampsrv *op;
	struct csrsign *signer;	/* NULL without --issuer-cert */
	struct store *st;
	struct event *ev_tick;
	int64_t store_gen;	/* store_generation() at the last tick, 0 unknown */
	bool store_failing;	/* the tick's last store read failed (logged once) */
	struct cpaudit *audit;	/* the audit log (cpaudit.h) */
	EVP_PKEY *audit_key;	/* NULL without --audit-key */
	struct rollout *ro;	/* staged rollouts: advanced by the tick, fed the agent events */
	int rollout_err;	/* the last rollout store error logged (logged once until it changes) */
	struct cpmetrics *metrics;	/* NULL with --metrics-listen none, or the default taken */
};

/* ---------------------------------------------------------------------------
 * Staged rollouts: the engine hears every agent event; its own events go
 * to the audit log (and so to the log) with the agents'. */

static int64_t cp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A store error of the rollouts, logged once until another one (or success) comes. */
static void rollout_log_error(struct cp *cp, const char *what, int r)
{
	if (r >= 0) {
		cp->rollout_err = 0;
		return;
	}
	if (r != cp->rollout_err)
		log_warnx("rollouts: %s: %s (retrying)", what, strerror(-r));
	cp->rollout_err = r;
}

/* Agent events become rollout outcomes; the engine's own events are the audit log's. */
static void rollout_on_event(struct cp *cp, const struct cpevent *ev)
{
	int r;

	switch (ev->kind) {
	case CPEVENT_ROLLOUT_STAGE_STARTED:
	case CPEVENT_ROLLOUT_STAGE_COMPLETED:
	case CPEVENT_ROLLOUT_HALTED:
	case CPEVENT_ROLLOUT_COMPLETED:
		return;
	default:
		r = rollout_event(cp->ro, ev);
		if (r)
			rollout_log_error(cp, "recording an agent's report", r);
	}
}

/* The tick's share: advance every running rollout this server can lock. */
static void rollout_tick(struct cp *cp, bool gen_moved)
{
	int r;

	if (gen_moved)
		rollout_invalidate(cp->ro);
	r = rollout_advance(cp->ro, cp_now_ms());
	if (r > 0)
		opampsrv_invalidate(cp->op);
	rollout_log_error(cp, "advancing", r < 0 ? r : rollout_take_error(cp->ro));
}

/*
 * Each fleet event (cpevent.h), from opampsrv or the rollout engine, goes
 * to every consumer: one line per consumer.
 */
static void on_event(const struct cpevent *ev, void *arg)
{
	struct cp *cp = arg;

	cpaudit_on_event(ev, cp->audit);
	if (cp->ro)
		rollout_on_event(cp, ev);
}

/* --audit-key: an Ed25519 private key, or exit 78 (EX_CONFIG) with the reason. */
static int load_audit_key(struct cp *cp, char *err, size_t errlen)
{
	char why[512];
	uint8_t id[4];
	int r;

	if (!cp->o.audit_key)
		return 0;
	r = pemfile_key("--audit-key", cp->o.audit_key, &cp->audit_key, why, sizeof(why));
	if (r) {
		snprintf(err, errlen, "%s", why);
		return r;
	}
	if (checkpoint_key_id(cp->o.audit_origin, cp->audit_key, id)) {
		snprintf(err, errlen,
			 "--audit-key %s: not an Ed25519 key (make one with: openssl genpkey -algorithm ed25519 "
			 "-out %s)",
			 cp->o.audit_key, cp->o.audit_key);
		return -EINVAL;
	}
	return 0;
}

/* The admin API changed policies, assignments or rollouts: drop what opampsrv and the rollouts cached. */
static void on_api_change(void *arg)
{
	struct cp *cp = arg;

	opampsrv_invalidate(cp->op);
	if (cp->ro)
		rollout_invalidate(cp->ro);
}

/*
 * Once a second: when the store's generation moved (a policy, an
 * assignment or a rollout changed, on this server or another), the OpAMP
 * side drops what it cached.
 */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct cp *cp = arg;
	int64_t gen = 0;
	int r = store_generation(cp->st, &gen);

	(void)fd;
	(void)what;
	if (r) {
		if (!cp->store_failing)
			log_warnx("store: cannot read the generation: %s (retrying each second)", strerror(-r));
		cp->store_failing = true;
		return;
	}
	if (cp->store_failing && cp->o.log_level >= CP_LOG_INFO)
		log_info("store: readable again");
	cp->store_failing = false;
	if (gen != cp->store_gen) {
		if (cp->store_gen)
			opampsrv_invalidate(cp->op);
		cp->store_gen = gen;
		if (cp->ro)
			rollout_tick(cp, true);
	} else if (cp->ro) {
		rollout_tick(cp, false);
	}
}

/* The exit code for a file that failed to load with -errno e. */
static int file_exit(int e)
{
	switch (-e) {
	case ENOMEM:
	case EIO:
		return EX_SOFTWARE;
	case EBADMSG:
	case EINVAL:
	case EFBIG:
		return EX_CONFIG;
	default:
		return EX_NOINPUT;
	}
}

static int load_tls(struct cp *cp, SSL_CTX **ret, char *err, size_t errlen)
{
	struct tlsconf_files f = { .cert = cp->o.cert, .key = cp->o.key, .agent_ca = cp->o.agent_ca,
				   .admin_ca = cp->o.admin_ca, .crl = cp->o.crl };
	char warn[1024];
	int r;

	r = tlsconf_new(&f, cp->generation + 1, ret, err, errlen, warn, sizeof(warn));
	if (r == 0) {
		cp->generation++;
		if (warn[0])
			log_warnx("warning: %s", warn);
	}
	return r;
}

static int load_trust(struct cp *cp, struct signing_trust **ret, char *err, size_t errlen)
{
	char msg[512];
	int r = signing_trust_load(cp->o.policy_trust, NULL, ret, msg, sizeof(msg));

	if (r)
		snprintf(err, errlen, "--policy-trust %s: %s", cp->o.policy_trust, msg);
	return r;
}

/* The CSR flow's issuer, or *ret = NULL when none is configured. */
static int load_signer(struct cp *cp, struct csrsign **ret, char *err, size_t errlen)
{
	*ret = NULL;
	if (!cp->o.issuer_cert)
		return 0;
	return csrsign_new(cp->o.issuer_cert, cp->o.issuer_key, cp->o.agent_ca, cp->o.issued_days, ret, err,
			   errlen);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct cp *cp = arg;
	struct signing_trust *trust = NULL;
	struct csrsign *signer = NULL;
	SSL_CTX *ctx = NULL;
	char err[768], desc[160];
	int r;

	if (cp->o.log_level >= CP_LOG_INFO)
		log_info("SIGHUP: reloading the certificate, key, CAs, CRL and policy trust");
	r = load_tls(cp, &ctx, err, sizeof(err));
	if (r == 0)
		r = load_trust(cp, &trust, err, sizeof(err));
	if (r == 0)
		r = load_signer(cp, &signer, err, sizeof(err));
	ERR_clear_error(); /* none of it may pass for a later handshake's reason */
	if (r) {
		log_warnx("reload failed, keeping the running configuration: %s", err);
		SSL_CTX_free(ctx);
		signing_trust_free(trust);
		return;
	}
	opampsrv_set_signer(cp->op, signer);
	csrsign_free(cp->signer);
	cp->signer = signer;
	httpd_set_ssl_ctx(cp->httpd, ctx);
	SSL_CTX_free(cp->ctx);
	cp->ctx = ctx;
	api_set_trust(cp->api, trust);
	signing_trust_free(cp->trust);
	cp->trust = trust;
	tlsconf_describe(ctx, desc, sizeof(desc));
	if (cp->o.log_level >= CP_LOG_INFO)
		log_info("reloaded (configuration %u: %s); open connections are verified again at their next request",
		 cp->generation, desc);
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct cp *cp = arg;

	if (cp->o.log_level >= CP_LOG_INFO)
		log_info("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
	event_base_loopexit(cp->base, NULL);
}

/* Room for every connection the server may hold, or a lower cap that fits. */
static void fit_fd_limit(struct cpopts *o)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)o->max_connections + HTTPD_OVERFLOW(o->max_connections) + SPARE_FDS;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < want) {
		unsigned fit = rl.rlim_cur > SPARE_FDS + 8 ? (unsigned)((rl.rlim_cur - SPARE_FDS) * 8 / 9) : 1;

		log_warnx("warning: the descriptor limit (%llu) cannot hold --max-connections %u: serving at "
			  "most %u (raise LimitNOFILE)", (unsigned long long)rl.rlim_cur, o->max_connections, fit);
		o->max_connections = fit;
	}
}

int main(int argc, char **argv)
{
	struct cp cp = { 0 };
	struct store *st = NULL;
	struct opampsrv *op = NULL;
	struct event *ev_hup = NULL, *ev_term = NULL, *ev_int = NULL;
	struct httpd_config hc;
	char err[768], desc[160], dbname[256];
	int r, code = EX_SOFTWARE;

	log_init("vigil-cp");
	if (cpopts_parse(argc, argv, &cp.o, err, sizeof(err))) {
		fprintf(stderr, "vigil-cp: %s\n", err);
		return EX_USAGE;
	}
	if (cp.o.help) {
		fputs(cpopts_usage, stdout);
		return 0;
	}
	if (cp.o.version) {
		printf("vigil-cp %s\n", VIGIL_VERSION);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	fit_fd_limit(&cp.o);

	r = load_tls(&cp, &cp.ctx, err, sizeof(err));
	if (r) {
		log_warnx("%s", err);
		return file_exit(r);
	}
	r = load_trust(&cp, &cp.trust, err, sizeof(err));
	if (r) {
		log_warnx("%s", err);
		code = file_exit(r);
		goto out;
	}
	store_url_display(cp.o.db, dbname, sizeof(dbname));
	r = store_open(cp.o.db, &st, err, sizeof(err));
	if (r) {
		log_warnx("--db %s: %s", dbname, err[0] ? err : strerror(-r));
		code = r == -EINVAL ? EX_USAGE : r == -EPROTO ? EX_CONFIG : EX_UNAVAILABLE;
		goto out;
	}
	r = load_audit_key(&cp, err, sizeof(err));
	if (r) {
		log_warnx("%s", err);
		code = EX_CONFIG;
		goto out;
	}
	{
		struct cpaudit_config ac = { .origin = cp.o.audit_origin, .key = cp.audit_key, .log_records = 1 };

		r = cpaudit_new(st, &ac, &cp.audit, err, sizeof(err));
		if (r) {
			log_warnx("%s", err);
			code = r == -EBADMSG ? EX_DATAERR : r == -EINVAL ? EX_CONFIG : EX_UNAVAILABLE;
			goto out;
		}
		if (cp.o.log_level >= CP_LOG_INFO)
			log_info("audit log: %llu records; %s%s", (unsigned long long)cpaudit_size(cp.audit),
				 cp.audit_key ? "checkpoints signed as " : "no --audit-key: no checkpoints are signed",
				 cp.audit_key ? cp.o.audit_origin : "");
	}
	if (opampsrv_new(st, &op) || api_new(st, cp.trust, &cp.api)) {
		log_warnx("cannot start the OpAMP server or the admin API: out of memory");
		goto out;
	}
	cp.op = op;
	cp.st = st;
	r = load_signer(&cp, &cp.signer, err, sizeof(err));
	if (r) {
		log_warnx("%s", err);
		code = r == -EPERM ? EX_CONFIG : file_exit(r);
		goto out;
	}
	opampsrv_set_signer(op, cp.signer);
	if (cp.signer && cp.o.log_level >= CP_LOG_INFO)
		log_info("signing agents' certificate requests with %s (%u days)", cp.o.issuer_cert,
			 cp.o.issued_days);
	/* A policy uploaded or assigned must reach the agents at their next poll. */
	api_set_on_change(cp.api, on_api_change, &cp);
	/* Staged rollouts: the engine offers through opampsrv and its events go where agents' go. */
	if (rollout_new(st, &cp.ro)) {
		log_warnx("cannot start the rollouts engine: out of memory");
		goto out;
	}
	rollout_set_events(cp.ro, on_event, &cp);
	opampsrv_set_rollouts(op, &(struct opampsrv_rollouts){ .offer = rollout_offer, .sent = rollout_sent,
								.arg = cp.ro });
	api_set_rollouts(cp.api, cp.ro);
	/* Every admin action and every fleet event goes to the audit log. */
	api_set_on_action(cp.api, cpaudit_on_action, cp.audit);
	api_set_audit(cp.api, auditapi_handle, cp.audit);
	opampsrv_set_events(op, on_event, &cp);
	cp.base = event_base_new();
	if (!cp.base || cpaudit_set_event_base(cp.audit, cp.base)) {
		log_warnx("libevent: cannot make an event base");
		goto out;
	}
	if (!cp.o.metrics.none) {
		int mfd;

		/* Its own listener: Prometheus has no client certificate for the mTLS port. */
		r = listenaddr_listen(&cp.o.metrics, 64, &mfd);
		if (!r)
			r = cpmetrics_new(cp.base, mfd, st, cp.audit, &cp.metrics);
		if (r && cp.o.metrics_given) {
			log_warnx("--metrics-listen %s: cannot listen: %s; give a free ADDR:PORT, or none",
				  cp.o.metrics.text, strerror(-r));
			code = EX_UNAVAILABLE;
			goto out;
		}
		if (r)
			log_warnx("metrics: cannot listen on the default %s: %s; running without metrics (give "
				  "--metrics-listen ADDR:PORT for another address, or none to silence this)",
				  cp.o.metrics.text, strerror(-r));
		else if (cp.o.log_level >= CP_LOG_INFO)
			log_info("metrics: http://%s/metrics", cp.o.metrics.text);
	}
	hc = (struct httpd_config){
		.host = cp.o.host,
		.port = cp.o.port,
		.max_connections = cp.o.max_connections,
		.idle_timeout_s = cp.o.idle_timeout_s,
		.retry_after_s = cp.o.retry_after_s,
		.log_requests = cp.o.log_level >= CP_LOG_DEBUG,
		.observe = cp.metrics ? cpmetrics_observe : NULL,
		.observe_arg = cp.metrics,
	};
	r = httpd_new(cp.base, &hc, cp.ctx, op, cp.api, &cp.httpd, err, sizeof(err));
	if (r) {
		log_warnx("%s", err);
		code = r == -ENOMEM ? EX_SOFTWARE : EX_UNAVAILABLE;
		goto out;
	}
	ev_hup = evsignal_new(cp.base, SIGHUP, on_hup, &cp);
	ev_term = evsignal_new(cp.base, SIGTERM, on_stop, &cp);
	ev_int = evsignal_new(cp.base, SIGINT, on_stop, &cp);
	if (!ev_hup || !ev_term || !ev_int || event_add(ev_hup, NULL) || event_add(ev_term, NULL) ||
	    event_add(ev_int, NULL)) {
		log_warnx("libevent: cannot watch signals");
		goto out;
	}
	cp.ev_tick = event_new(cp.base, -1, EV_PERSIST, on_tick, &cp);
	if (!cp.ev_tick ||
	    event_add(cp.ev_tick, &(struct timeval){ .tv_sec = TICK_MS / 1000, .tv_usec = TICK_MS % 1000 * 1000 })) {
		log_warnx("libevent: cannot start the tick");
		goto out;
	}
	on_tick(-1, 0, &cp);
	tlsconf_describe(cp.ctx, desc, sizeof(desc));
	if (cp.o.log_level >= CP_LOG_INFO)
		log_info("listening on %s%s%s:%u (%s; store %s; at most %u connections)",
			 strchr(cp.o.host, ':') ? "[" : "", cp.o.host, strchr(cp.o.host, ':') ? "]" : "",
			 cp.o.port, desc, dbname, cp.o.max_connections);
	if (event_base_dispatch(cp.base) < 0) {
		log_warnx("libevent: the event loop failed");
		goto out;
	}
	code = 0;
out:
	if (ev_hup)
		event_free(ev_hup);
	if (ev_term)
		event_free(ev_term);
	if (ev_int)
		event_free(ev_int);
	if (cp.ev_tick)
		event_free(cp.ev_tick);
	httpd_free(cp.httpd);
	cpmetrics_free(cp.metrics);
	/* What the last turn of the loop queued is written before the loop goes. */
	if (cp.audit) {
		cpaudit_flush(cp.audit);
		cpaudit_set_event_base(cp.audit, NULL);
	}
	if (cp.base)
		event_base_free(cp.base);
	api_free(cp.api);
	opampsrv_free(op);
	rollout_free(cp.ro);
	csrsign_free(cp.signer);
	cpaudit_free(cp.audit);
	EVP_PKEY_free(cp.audit_key);
	store_close(st);
	signing_trust_free(cp.trust);
	SSL_CTX_free(cp.ctx);
	return code;
}
