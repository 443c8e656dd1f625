/*
 * uplink.c - vigild's uplink process: the only one that talks to the
 * network.  With --control-plane it speaks OpAMP over mutual TLS to
 * vigil-cp (opampcli.c builds and parses the messages, cphttp.c carries
 * them); with --export-url it pushes profiles (uplinkexp.c).  With
 * neither, the monitor runs vigild-uplink-local instead (uplinklocal.c),
 * which serves the metrics without libcurl.
 *
 * Started by the monitor as the program vigild-uplink (vigild-uplink.c), as the
 * unprivileged user with every capability set empty and no_new_privs.  It
 * never opens a file: its key material arrives from the monitor as sealed
 * memfds (MSG_UPLINK_CREDS, at start and on SIGHUP), and the control
 * plane's addresses with it, resolved by the monitor, so that libcurl
 * never runs a resolver (which would read /etc).  libcurl and OpenSSL are
 * initialised before it confines itself; then Landlock denies it every
 * file and every TCP port but the control plane's (Landlock ABI 4), and
 * its seccomp allowlist adds to the common set only the socket calls one
 * HTTPS connection needs (sandbox.c).
 *
 * Certificate rotation (OpAMP's CSR flow, certrot.h): once half of the
 * certificate's lifetime has passed (jittered) and the server says it
 * signs requests, the uplink makes a new key in memory, sends a request
 * under the current subject, checks the certificate offered, and makes
 * its next request with it.  Only when that request succeeds is the new
 * pair kept (and handed to the collector to persist, MSG_IDENTITY_SAVE);
 * if it fails, the uplink goes back to the pair it had and reports
 * ConnectionSettingsStatus FAILED.  The key never leaves the host.
 *
 * It does not decide trust: a policy it receives goes, with its signature,
 * to the collector (MSG_REMOTE_POLICY over their socket), which verifies,
 * applies and answers (MSG_POLICY_STATUS); the uplink reports the answer
 * in RemoteConfigStatus.  Whatever the server sends, the uplink's memory
 * stays bounded (CPHTTP_MAX_BODY) and sampling, which runs in other
 * processes, never waits on it.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "certrot.h"
#include "heartbeat.h"
#include "cphttp.h"
#include "log.h"
#include "memblob.h"
#include "opampcli.h"
#include "policy.h"
#include "privsep.h"
#include "sandbox.h"
#include "signing.h"
#include "uplink.h"
#include "uplinkexp.h"
#include "uplinkbase.h"
#include "uplinkmet.h"

#ifdef VIGIL_TEST_HOOKS
#include "testhooks.h"
#endif

#define REQUEST_TIMEOUT_S 30
#define DISCONNECT_TIMEOUT_S 5
/* After a rotation failed or was refused: try again after this, at most. */
#define ROTATE_RETRY_MAX_S 3600
#define ROTATE_RETRY_MIN_S 10
/* A failure is logged when it starts, then at most this often. */
#define FAIL_LOG_NS (60ull * 1000000000ull)

/* A malloc'ed PEM the uplink keeps; keys are wiped when dropped. */
struct rot_pem {
	char *p;
	size_t len;
};

static void rot_drop(struct rot_pem *b)
{
	if (b->p) {
		explicit_bzero(b->p, b->len);
		free(b->p);
	}
	b->p = NULL;
	b->len = 0;
}

static int rot_copy(struct rot_pem *b, const void *p, size_t len)
{
	char *d = malloc(len + 1);

	if (!d)
		return -ENOMEM;
	memcpy(d, p, len);
	d[len] = '\0';
	rot_drop(b);
	b->p = d;
	b->len = len;
	return 0;
}

struct uplink {
	struct msg_uplink_setup cfg;
	int sfd, chan;              /* chan: to the collector, -1 once gone */
	bool seen_mon[MSG_TYPE_MAX], seen_col[MSG_TYPE_MAX];
	bool stopping;
	/* from the monitor */
	struct cphttp *http;
	bool have_creds;
	uint32_t naddrs;
	struct uplink_addr addrs[UPLINK_MAX_ADDRS];
	/* the identity in use (cphttp holds a copy), kept to renew it and to revert to it */
	struct rot_pem cur_cert, cur_key, ca;
	time_t not_before, not_after;
	time_t rotate_at;           /* realtime; 0: not scheduled */
	bool server_signs;          /* the server's AcceptsConnectionSettingsRequest */
	/* a rotation under way */
	struct rot_pem new_key, csr, new_cert;
	bool csr_inflight;          /* the request was in the message being sent */
	bool trying;                /* the next request uses new_cert/new_key */
	uint8_t offer_hash[32];
	/* ConnectionSettingsStatus to report (OPAMPCLI_CS_UNSET: nothing) */
	enum opampcli_cs_status cs_status;
	bool cs_inflight;
	char cs_error[320];
	/* from the collector */
	bool have_start, have_policy;
	uint8_t uid[16];
	struct msg_policy_status policy;
	char *yaml;
	size_t yaml_len;
	struct msg_agent_health health;
	bool have_health;
	/* the remote config handed to the collector, not answered yet */
	bool forwarded;
	uint8_t forwarded_hash[CONFIG_HASH_LEN];
	/* OpAMP */
	struct opampcli cli;
	struct backoff bo;
	uint64_t next_poll_ns;
	bool connected;
	uint64_t fail_logged_ns;
	unsigned fails;
	/* export to Pyroscope (uplinkexp.h); NULL without */
	struct uplinkexp *exp;
	/* Prometheus metrics (UPLINK_F_METRICS; off: um.srv NULL) */
	struct uplinkmet um;
	/* Heartbeats to the monitor (systemd's watchdog and STATUS=, issue 11). */
	struct heartbeat hb;
	bool cp;                    /* a control plane is configured */
};

/*
 * One turn of a loop (or of a transfer's progress callback): tell the
 * monitor this process is alive, and the state it shows in STATUS=
 * (MSG_UPLINK_BEAT), when a beat is due.
 */
static void beat(struct uplink *u, bool force)
{
	struct msg_uplink_beat m = { 0 };

	if (!u->cp)
		m.cp_state = BEAT_CP_OFF;
	else if (u->connected)
		m.cp_state = BEAT_CP_CONNECTED;
	else
		m.cp_state = u->fails ? BEAT_CP_FAILING : BEAT_CP_CONNECTING;
	m.serial = u->have_policy ? u->policy.serial : 0;
	if (u->exp)
		m.export = *uplinkexp_stats(u->exp); /* else EXPORT_OFF, zero */
	uplinkbase_beat(&u->hb, &m, force);
}

static uint64_t random64(void)
{
	uint64_t r = 0;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = uplinkbase_now_ns();
	return r;
}

/* --- certificate rotation ------------------------------------------------------ */

static time_t now_real(void)
{
	return time(NULL);
}

static void rotation_abandon(struct uplink *u)
{
	rot_drop(&u->new_key);
	rot_drop(&u->csr);
	rot_drop(&u->new_cert);
	u->csr_inflight = false;
	u->trying = false;
}

/* When to renew the certificate in use; logged once per certificate. */
static void schedule_rotation(struct uplink *u)
{
	char when[32];
	struct tm tm;

	if (certrot_validity(u->cur_cert.p, u->cur_cert.len, &u->not_before, &u->not_after)) {
		u->rotate_at = 0;
		return;
	}
	u->rotate_at = certrot_due(u->not_before, u->not_after, random64());
	gmtime_r(&u->rotate_at, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	log_info("certificate valid for %lld s more; renewal (CSR flow) due from %s, if the control plane "
		 "signs requests", (long long)(u->not_after - now_real()), when);
}

/* A rotation failed or was refused: not again before a tenth of the lifetime. */
static void rotation_later(struct uplink *u)
{
	time_t wait = (u->not_after - u->not_before) / 10;

	if (wait > ROTATE_RETRY_MAX_S)
		wait = ROTATE_RETRY_MAX_S;
	if (wait < ROTATE_RETRY_MIN_S)
		wait = ROTATE_RETRY_MIN_S;
	u->rotate_at = now_real() + wait;
}

static void rotation_status(struct uplink *u, enum opampcli_cs_status st, const char *why)
{
	u->cs_status = st;
	snprintf(u->cs_error, sizeof(u->cs_error), "%s", why ? why : "");
}

/* Time to renew: a new key and a request under the current subject. */
static void rotation_start(struct uplink *u)
{
	int rc;

	if (u->new_key.p || u->trying || !u->server_signs || !u->rotate_at || now_real() < u->rotate_at)
		return;
	rc = certrot_keygen(&u->new_key.p, &u->new_key.len);
	if (!rc)
		rc = certrot_csr(u->new_key.p, u->new_key.len, u->cur_cert.p, u->cur_cert.len, &u->csr.p,
				 &u->csr.len);
	if (rc) {
		log_warn_errno(rc, "certificate renewal: cannot make a key and its request; trying later");
		rotation_abandon(u);
		rotation_later(u);
		return;
	}
	log_info("certificate renewal: asking the control plane to sign a new key (the certificate in use "
		 "expires in %lld s)", (long long)(u->not_after - now_real()));
}

/* Persist the pair now proven: the collector writes it into the state directory. */
static void rotation_persist(struct uplink *u)
{
	struct msg_identity_save m = { .hdr = { MSG_IDENTITY_SAVE, sizeof(m) }, .version = PRIVSEP_VERSION };
	int fd, rc;

	if (u->chan < 0) {
		log_warnx("certificate renewal: the collector is gone: the new certificate is not kept on disk");
		return;
	}
	m.cert_len = (uint32_t)u->cur_cert.len;
	m.key_len = (uint32_t)u->cur_key.len;
	rc = memblob_new("identity", u->cur_cert.p, u->cur_cert.len, u->cur_key.p, u->cur_key.len, &fd);
	if (!rc) {
		rc = privsep_send(u->chan, &m, sizeof(m), &fd, 1);
		close(fd);
	}
	if (rc)
		log_warn_errno(rc, "certificate renewal: cannot hand the new certificate to the collector");
}

/* The request made with the new pair succeeded: it is the identity now. */
static void rotation_commit(struct uplink *u)
{
	struct rot_pem t;

	t = u->cur_cert;
	u->cur_cert = u->new_cert;
	u->new_cert = t;
	t = u->cur_key;
	u->cur_key = u->new_key;
	u->new_key = t;
	rotation_abandon(u);	/* drops the old pair */
	rotation_status(u, OPAMPCLI_CS_APPLIED, NULL);
	log_info("certificate renewal: the new certificate works; it is the agent's identity now");
	rotation_persist(u);
	schedule_rotation(u);
}

/* cphttp back on the identity in use (it may hold all or half of a new one). */
static void use_current_identity(struct uplink *u)
{
	int rc = cphttp_set_identity(u->http, u->cur_cert.p, u->cur_cert.len, u->cur_key.p, u->cur_key.len,
				     u->ca.p, u->ca.len, u->addrs, u->naddrs);

	if (rc)
		fatalx(71, "certificate renewal: cannot go back to the previous certificate: %s", strerror(-rc));
}

/* The request made with the new pair failed: back to the old one. */
static void rotation_revert(struct uplink *u, const char *what)
{
	char why[300];

	snprintf(why, sizeof(why), "the connection with the new certificate failed (%.200s); back to the "
		 "previous one", what);
	log_warnx("certificate renewal: %s", why);
	use_current_identity(u);
	rotation_abandon(u);
	rotation_status(u, OPAMPCLI_CS_FAILED, why);
	rotation_later(u);
	u->next_poll_ns = 0;	/* report it with the certificate that works */
}

/* The server answered the request: an offer to check and try, or a refusal. */
static void rotation_answer(struct uplink *u, const struct opampcli_reply *r)
{
	char why[256];
	int rc;

	if (!r->cert_offer) {
		log_warnx("certificate renewal: the control plane did not sign the request%s%s", r->error ? ": " : "",
			  r->error ? r->error_message : "");
		rotation_abandon(u);
		rotation_later(u);
		return;
	}
	memcpy(u->offer_hash, r->cert_hash, sizeof(u->offer_hash));
	rc = certrot_check(r->cert, r->cert_len, u->new_key.p, u->new_key.len, u->cur_cert.p, u->cur_cert.len,
			   now_real(), why, sizeof(why));
	if (!rc)
		rc = rot_copy(&u->new_cert, r->cert, r->cert_len);
	if (!rc)
		rc = cphttp_set_identity(u->http, u->new_cert.p, u->new_cert.len, u->new_key.p, u->new_key.len,
					 u->ca.p, u->ca.len, u->addrs, u->naddrs);
	if (rc) {
		if (rc != -EBADMSG && rc != -E2BIG)
			snprintf(why, sizeof(why), "cannot use it: %s", strerror(-rc));
		log_warnx("certificate renewal: the offered certificate is refused: %s", why);
		rotation_abandon(u);
		rotation_status(u, OPAMPCLI_CS_FAILED, why);
		rotation_later(u);
		use_current_identity(u);
		return;
	}
	u->trying = true;
	/* opamp-spec, "OpAMP Connection Setting Offer Flow", step 4: say it is being applied. */
	rotation_status(u, OPAMPCLI_CS_APPLYING, NULL);
	log_info("certificate renewal: a certificate was offered for the new key; the next connection uses it");
}

/* --- from the monitor -------------------------------------------------------- */

static void take_creds(struct uplink *u, const struct msg_uplink_creds *m, const int *fds)
{
	void *b[3] = { NULL, NULL, NULL };
	size_t len[3];
	bool keep;
	int rc = 0;

	if (m->version != PRIVSEP_VERSION || m->naddrs > UPLINK_MAX_ADDRS)
		fatalx(70, "the monitor sent key material of another version or with %u addresses",
		       m->naddrs);
	for (int i = 0; i < 3 && !rc; i++)
		rc = memblob_read(fds[i], i == 2 ? SIGNING_MAX_TRUST_BYTES : SIGNING_MAX_KEY_BYTES, &b[i],
				  &len[i]);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	/*
	 * On SIGHUP, files that expire before the certificate renewed here
	 * (same subject, still valid) do not replace it: only the CA is taken.
	 */
	keep = !rc && u->have_creds && u->cur_cert.p &&
	       certrot_newer(u->cur_cert.p, u->cur_cert.len, b[0], len[0], now_real());
	/* A certificate being tried is dropped either way: say so, as OpAMP wants an outcome. */
	if (!rc && u->trying)
		rotation_status(u, OPAMPCLI_CS_FAILED, "the key material was reloaded (SIGHUP) while the new "
				"certificate was being tried; not used");
	if (keep) {
		log_info("--cert expires before the certificate renewed through the control plane: keeping "
			 "the renewed one (the CA is reloaded)");
		rotation_abandon(u);
		rc = rot_copy(&u->ca, b[2], len[2]);
		if (!rc)
			rc = cphttp_set_identity(u->http, u->cur_cert.p, u->cur_cert.len, u->cur_key.p,
						 u->cur_key.len, u->ca.p, u->ca.len, m->addrs, m->naddrs);
	} else if (!rc) {
		rc = cphttp_set_identity(u->http, b[0], len[0], b[1], len[1], b[2], len[2], m->addrs,
					 m->naddrs);
		if (!rc && !(rc = rot_copy(&u->cur_cert, b[0], len[0])) &&
		    !(rc = rot_copy(&u->cur_key, b[1], len[1])))
			rc = rot_copy(&u->ca, b[2], len[2]);
	}
	for (int i = 0; i < 3; i++) {
		if (b[i]) {
			explicit_bzero(b[i], len[i]);
			free(b[i]);
		}
	}
	if (rc == -EPROTO)
		fatalx(70, "the monitor sent key material that is not a sealed memfd");
	if (rc) {
		log_warn_errno(rc, "cannot take the new key material; keeping the one in use");
		return;
	}
	u->naddrs = m->naddrs;
	memcpy(u->addrs, m->addrs, sizeof(u->addrs));
	if (keep)
		return;
	if (u->have_creds)
		log_info("new certificate and key: the next connection uses them");
	u->have_creds = true;
	/* The files replaced on disk win over a rotation under way. */
	rotation_abandon(u);
	schedule_rotation(u);
}

/* 0, or -EPIPE when the monitor is gone. */
static int from_monitor(struct uplink *u)
{
	union {
		struct msg_uplink_creds creds;
		struct msg_uplink_export exp;
		struct msg_uplink_peer peer;
		uint8_t raw[PRIVSEP_MAX_MSG];
	} m;
	int fds[PRIVSEP_MAX_FDS];
	size_t len;
	int type = privsep_recv(PRIVSEP_FD, PEER_MONITOR, u->seen_mon, &m, &len, fds);

	if (type == -EAGAIN || type == -EINTR)
		return 0;
	if (type == -EPIPE || type == -ECONNRESET)
		return -EPIPE;
	if (type < 0)
		fatalx(70, "the monitor broke the protocol: %s", strerror(-type));
	if (type == MSG_UPLINK_EXPORT && u->exp) {
		uplinkexp_config(u->exp, &m.exp, fds);
		return 0;
	}
	if (type == MSG_UPLINK_PEER && u->chan < 0 && m.peer.version == PRIVSEP_VERSION) {
		u->chan = fds[0];
		return 0;
	}
	if (type != MSG_UPLINK_CREDS || !u->http)
		fatalx(70, "the monitor sent message %d, which the uplink does not take now", type);
	take_creds(u, &m.creds, fds);
	return 0;
}

/* --- from the collector ------------------------------------------------------ */

static void take_status(struct uplink *u, const struct msg_policy_status *m, int fd)
{
	void *buf;
	size_t len;
	int rc = memblob_read(fd, POLICY_MAX_SIZE, &buf, &len);

	close(fd);
	if (rc == -ENOMEM) {
		buf = NULL;
		len = 0;
	} else if (rc) {
		fatalx(70, "the collector sent a policy that is not a sealed memfd within %u bytes",
		       POLICY_MAX_SIZE);
	}
	if (m->version != PRIVSEP_VERSION || m->source > POLICY_SRC_REMOTE ||
	    (m->status != REMOTE_NONE && m->status != REMOTE_APPLIED && m->status != REMOTE_FAILED))
		fatalx(70, "the collector sent a policy status it cannot mean");
	free(u->yaml);
	u->yaml = buf;
	u->yaml_len = len;
	u->policy = *m;
	u->policy.reason[sizeof(u->policy.reason) - 1] = '\0';
	u->have_policy = true;
	u->um.met.have_policy = true;
	u->um.met.policy_source = m->source;
	u->um.met.policy_serial = m->serial;
	if (u->forwarded && !memcmp(u->forwarded_hash, m->hash, CONFIG_HASH_LEN)) {
		u->forwarded = false;
		if (m->status == REMOTE_APPLIED)
			log_info("control plane: policy serial %" PRIu64 " applied", m->serial);
		else
			log_warnx("control plane: policy refused by the collector: %s", u->policy.reason);
		u->next_poll_ns = 0; /* tell the server now, as opamp-go does */
	}
	opampcli_mark(&u->cli, OPAMPCLI_EFFECTIVE | OPAMPCLI_REMOTE_STATUS | OPAMPCLI_HEALTH);
}

/* 0, or -EPIPE once the collector is gone. */
static int from_collector(struct uplink *u)
{
	union {
		struct msg_agent_start start;
		struct msg_policy_status status;
		struct msg_agent_health health;
		struct msg_export_profile profile;
		uint8_t raw[PRIVSEP_MAX_MSG];
	} m;
	int fds[PRIVSEP_MAX_FDS];
	size_t len;
	int type = privsep_recv(u->chan, PEER_COLLECTOR, u->seen_col, &m, &len, fds);

	if (type == -EAGAIN || type == -EINTR)
		return 0;
	if (type == -EPIPE || type == -ECONNRESET) {
		close(u->chan);
		u->chan = -1;
		return -EPIPE;
	}
	if (type < 0)
		fatalx(70, "the collector broke the protocol: %s", strerror(-type));
	/* Without a control plane the collector sends profiles to export, nothing else (metrics have their own socket). */
	if (!u->http && type != MSG_EXPORT_PROFILE)
		fatalx(70, "the collector sent message %d, which the uplink does not take without a "
		       "control plane", type);
	switch (type) {
	case MSG_AGENT_START:
		if (m.start.version != PRIVSEP_VERSION)
			fatalx(70, "AGENT_START of another protocol version");
		memcpy(u->uid, m.start.instance_uid, sizeof(u->uid));
		u->have_start = true;
		break;
	case MSG_POLICY_STATUS:
		take_status(u, &m.status, fds[0]);
		break;
	case MSG_AGENT_HEALTH:
		if (m.health.version != PRIVSEP_VERSION || m.health.nlisted > HEALTH_MAX_TENANTS)
			fatalx(70, "the collector sent health it cannot mean");
		for (uint32_t i = 0; i < HEALTH_MAX_TENANTS; i++)
			m.health.tenants[i].name[sizeof(m.health.tenants[i].name) - 1] = '\0';
		if (u->have_health && u->health.sampling != m.health.sampling)
			u->next_poll_ns = 0; /* sampling stopped or resumed: say so now */
		u->health = m.health;
		u->have_health = true;
		opampcli_mark(&u->cli, OPAMPCLI_HEALTH);
		break;
	case MSG_EXPORT_PROFILE:
		if (!u->exp)
			fatalx(70, "the collector sent a profile to export, and export is off");
		uplinkexp_profile(u->exp, &m.profile, fds[0]);
		uplinkexp_step(u->exp, u->chan);
		break;
	default:
		fatalx(70, "the collector sent message %d, which the uplink does not take", type);
	}
	return 0;
}

/* --- OpAMP --------------------------------------------------------------------- */

/*
 * During a blocking OpAMP request: move the push on, and take the
 * collector's next profile to export when that is what waits on the
 * socket (peeked).  Only that: the collector's other messages change what
 * the request in flight reports, and wait for the loop.
 */
static void export_pump(struct uplink *u)
{
	struct msg_hdr h;

	if (!u->exp)
		return;
	uplinkexp_step(u->exp, u->chan);
	if (u->chan >= 0 && recv(u->chan, &h, sizeof(h), MSG_PEEK | MSG_DONTWAIT) == (ssize_t)sizeof(h) &&
	    h.type == MSG_EXPORT_PROFILE)
		from_collector(u);
}

/* cphttp's waiter: the exporter's descriptors and the collector's socket. */
static size_t export_fds(void *ctx, struct pollfd *p, size_t max, int *timeout_ms)
{
	struct uplink *u = ctx;
	size_t n = 0;
	int t = -1;

	if (!u->exp || max < 2)
		return 0;
	/*
	 * The collector's socket, unless another message than a profile waits
	 * there (it waits for the loop: polling for it would spin).
	 */
	if (u->chan >= 0) {
		struct msg_hdr h;
		ssize_t k = recv(u->chan, &h, sizeof(h), MSG_PEEK | MSG_DONTWAIT);

		if (k < 0 || (k == (ssize_t)sizeof(h) && h.type == MSG_EXPORT_PROFILE))
			p[n++] = (struct pollfd){ .fd = u->chan, .events = POLLIN };
	}
	n += uplinkexp_pollfds(u->exp, p + n, max - n, &t);
	if (t >= 0 && t < *timeout_ms)
		*timeout_ms = t;
	return n;
}

static bool should_abort(void *ctx)
{
	struct uplink *u = ctx;
	struct signalfd_siginfo si;

	while (read(u->sfd, &si, sizeof(si)) == sizeof(si))
		if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM)
			u->stopping = true;
	/*
	 * Called while an OpAMP request runs (cphttp: at least every
	 * CPHTTP_TICK_MS): the export goes on meanwhile.
	 */
	export_pump(u);
	/* Called while a transfer runs, too: a slow server is not a stuck uplink. */
	beat(u, false);
	/* Scrapes too: a control plane that hangs a request must not hang the metrics. */
	uplinkmet_now(&u->um);
	return u->stopping;
}

static void report(const struct uplink *u, struct opampcli_report *r)
{
	memset(r, 0, sizeof(*r));
	memcpy(r->uid, u->uid, sizeof(r->uid));
	r->hostname = u->cfg.hostname;
	r->labels = u->cfg.labels;
	r->nlabels = u->cfg.nlabels;
	r->start_ns = u->cfg.start_realtime_ns;
	r->policy = u->have_policy ? &u->policy : NULL;
	r->yaml = u->yaml;
	r->yaml_len = u->yaml_len;
	r->health = u->have_health ? &u->health : NULL;
	if (u->csr.p && !u->trying) {
		r->csr = u->csr.p;
		r->csr_len = u->csr.len;
	}
	r->cs_status = u->cs_status;
	r->cs_hash = u->cs_status != OPAMPCLI_CS_UNSET ? u->offer_hash : NULL;
	r->cs_error = u->cs_status == OPAMPCLI_CS_FAILED ? u->cs_error : NULL;
}

static void failed(struct uplink *u, const char *what, uint64_t server_ns)
{
	uint64_t now = uplinkbase_now_ns(), wait = backoff_next(&u->bo, random64(), server_ns);

	u->next_poll_ns = now + wait;
	u->fails++;
	if (u->connected || !u->fail_logged_ns || now - u->fail_logged_ns >= FAIL_LOG_NS) {
		log_warnx("control plane %s:%u: %s; trying again in %.1f s (%u failure(s) in a row; "
			  "sampling goes on)", u->cfg.host, u->cfg.port, what, (double)wait / 1e9,
			  u->fails);
		u->fail_logged_ns = now;
	}
	u->connected = false;
}

/* A remote config received: hand it to the collector, or say why not. */
static void take_remote(struct uplink *u, const struct opampcli_reply *r)
{
	struct msg_remote_policy m = { .hdr = { MSG_REMOTE_POLICY, sizeof(m) },
				       .version = PRIVSEP_VERSION };
	int fd, rc;

	if (u->policy.status != REMOTE_NONE && !memcmp(u->policy.hash, r->hash, CONFIG_HASH_LEN))
		return; /* what the collector already answered */
	if (u->forwarded && !memcmp(u->forwarded_hash, r->hash, CONFIG_HASH_LEN))
		return; /* being checked */
	if (r->files_err) {
		u->policy.status = REMOTE_FAILED;
		memcpy(u->policy.hash, r->hash, CONFIG_HASH_LEN);
		snprintf(u->policy.reason, sizeof(u->policy.reason), "%s",
			 r->files_err == -ENOENT ? "the remote config lacks policy.yaml or policy.yaml.sig"
			 : "the remote config has files other than policy.yaml (text/yaml) and "
			   "policy.yaml.sig (application/pkcs7-signature)");
		log_warnx("control plane: %s", u->policy.reason);
		opampcli_mark(&u->cli, OPAMPCLI_REMOTE_STATUS | OPAMPCLI_HEALTH);
		u->next_poll_ns = 0;
		return;
	}
	if (u->chan < 0)
		return;
	m.yaml_len = (uint32_t)r->yaml_len;
	m.sig_len = (uint32_t)r->sig_len;
	memcpy(m.hash, r->hash, CONFIG_HASH_LEN);
	/* The body was bounded to CPHTTP_MAX_BODY == REMOTE_POLICY_MAX. */
	rc = memblob_new("remote-policy", r->yaml, r->yaml_len, r->sig, r->sig_len, &fd);
	if (!rc) {
		rc = privsep_send(u->chan, &m, sizeof(m), &fd, 1);
		close(fd);
	}
	if (rc) {
		log_warn_errno(rc, "cannot hand the policy to the collector");
		return;
	}
	u->forwarded = true;
	memcpy(u->forwarded_hash, r->hash, CONFIG_HASH_LEN);
	log_info("control plane: a policy arrived (%zu bytes, signature %zu bytes); the collector "
		 "checks it", r->yaml_len, r->sig_len);
}

static void poll_server(struct uplink *u)
{
	struct opampcli_report rep;
	struct opampcli_reply reply;
	struct cphttp_result res;
	uint8_t *msg;
	size_t len;
	char what[400];
	bool was_full;
	int rc;

	rotation_start(u);
	report(u, &rep);
	u->csr_inflight = rep.csr != NULL;
	u->cs_inflight = rep.cs_status != OPAMPCLI_CS_UNSET;
	was_full = (u->cli.dirty & OPAMPCLI_ALL) == OPAMPCLI_ALL;
	rc = opampcli_build(&u->cli, &rep, false, &msg, &len);
	if (rc) {
		failed(u, "out of memory building the message", 0);
		return;
	}
	rc = cphttp_post(u->http, msg, len, true, REQUEST_TIMEOUT_S, should_abort, u, &res);
	free(msg);
	if (rc) {
		opampcli_sent(&u->cli, false);
		if (rc != -ECANCELED)
			failed(u, res.err, 0);
		if (u->trying && rc != -ECANCELED)
			rotation_revert(u, res.err);
		return;
	}
	if (res.status != 200) {
		opampcli_sent(&u->cli, false);
		snprintf(what, sizeof(what), "HTTP status %ld", res.status);
		failed(u, what, res.retry_after_ns);
		cphttp_result_release(&res);
		if (u->trying)
			rotation_revert(u, what);
		return;
	}
	rc = opampcli_parse(res.body ? res.body : (const uint8_t *)"", res.len, &reply);
	cphttp_result_release(&res);
	if (rc) {
		opampcli_sent(&u->cli, false);
		failed(u, rc == -E2BIG ? "the answer would take more than 16 MiB to decode"
			  : "the answer is not a ServerToAgent message", 0);
		return;
	}
	if (reply.error && reply.error_type == 2 /* Unavailable */) {
		opampcli_sent(&u->cli, false);
		snprintf(what, sizeof(what), "unavailable: %s", reply.error_message);
		failed(u, what, reply.retry_after_ns);
		opampcli_reply_release(&reply);
		return;
	}
	opampcli_sent(&u->cli, true);
	if (u->cs_inflight)
		u->cs_status = OPAMPCLI_CS_UNSET;	/* reported */
	if (u->trying)
		rotation_commit(u);
	u->server_signs = reply.capabilities & OPAMPCLI_SERVER_SIGNS;
	if (u->csr_inflight)
		rotation_answer(u, &reply);
	u->csr_inflight = false;
	backoff_reset(&u->bo);
	u->fails = 0;
	if (!u->connected)
		log_info("control plane %s:%u: connected", u->cfg.host, u->cfg.port);
	u->connected = true;
	if (reply.error)
		log_warnx("control plane: the server refused a message: %s", reply.error_message);
	if (reply.flags & 0x1 /* ReportFullState */)
		opampcli_mark(&u->cli, OPAMPCLI_ALL);
	if (reply.remote_config)
		take_remote(u, &reply);
	opampcli_reply_release(&reply);
	u->next_poll_ns = uplinkbase_now_ns() + (uint64_t)u->cfg.poll_interval_s * 1000000000ull;
	/* A new certificate to prove, or a rotation's outcome to report: now. */
	if (u->trying || u->cs_status != OPAMPCLI_CS_UNSET)
		u->next_poll_ns = 0;
	/*
	 * Full state asked for: say it now, unless that was just said (then a
	 * part is not known yet, and the regular poll carries it: never a
	 * loop of immediate requests).
	 */
	if ((reply.flags & 0x1) && !was_full)
		u->next_poll_ns = 0;
}

static void disconnect(struct uplink *u)
{
	struct opampcli_report rep;
	struct cphttp_result res;
	uint8_t *msg;
	size_t len;

	if (!u->connected || !u->have_start)
		return;
	report(u, &rep);
	if (opampcli_build(&u->cli, &rep, true, &msg, &len))
		return;
	if (cphttp_post(u->http, msg, len, true, DISCONNECT_TIMEOUT_S, NULL, NULL, &res) == 0)
		cphttp_result_release(&res);
	free(msg);
}

/* With a control plane (OpAMP), export (Pyroscope), or both. */
static int run_control_plane(struct uplink *u)
{
	bool warned_addrs = false, cp = u->cfg.flags & UPLINK_F_CONTROL_PLANE;

	opampcli_init(&u->cli);
	while (!u->stopping) {
		struct pollfd p[3 + 16 + UPLINKMET_NPOLLFDS] = { { .fd = u->sfd, .events = POLLIN },
								 { .fd = PRIVSEP_FD, .events = POLLIN },
								 { .fd = u->chan, .events = POLLIN } };
		size_t nm;
		/* The first message waits for the collector: the policy in force comes first. */
		bool ready = cp && u->have_start && u->have_policy && u->have_health && u->have_creds &&
			     u->naddrs;
		uint64_t now = uplinkbase_now_ns();
		int timeout = -1, ex_timeout = -1;
		size_t np = 3;

		if (cp && u->have_creds && !u->naddrs && !warned_addrs) {
			log_warnx("control plane %s: no address (it did not resolve at start): not "
				  "connecting", u->cfg.host);
			warned_addrs = true;
		}
		beat(u, false);
		if (ready && now >= u->next_poll_ns) {
			poll_server(u);
			continue;
		}
		if (ready)
			timeout = (int)((u->next_poll_ns - now + 999999) / 1000000);
		if (u->exp) {
			np += uplinkexp_pollfds(u->exp, p + 3, 16, &ex_timeout);
			if (ex_timeout >= 0 && (timeout < 0 || ex_timeout < timeout))
				timeout = ex_timeout;
		}
		if (timeout < 0 || timeout > heartbeat_timeout_ms(&u->hb, now))
			timeout = heartbeat_timeout_ms(&u->hb, now);
		u->um.met.cp_connected = u->connected;
		nm = uplinkmet_pollfds(&u->um, p + np, &timeout);
		if (poll(p, np + nm, timeout) < 0) {
			if (errno == EINTR)
				continue;
			fatalx(71, "poll: %s", strerror(errno));
		}
		if (u->exp)
			uplinkexp_step(u->exp, u->chan);
		uplinkmet_handle(&u->um, p + np, nm);
		if (p[0].revents & POLLIN)
			should_abort(u);
		if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) && from_monitor(u) == -EPIPE)
			return 0; /* the monitor is gone: so is vigild */
		if (u->chan >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    from_collector(u) == -EPIPE)
			log_info("the collector has stopped");
	}
	if (cp)
		disconnect(u);
	return 0;
}

/*
 * Export on: the exporter, and the target from the monitor, which comes
 * after the other set-up messages (the credentials of a control plane, the
 * socket to the collector): its port must be known before Landlock.
 */
static void setup_export(struct uplink *u)
{
	int rc = cphttp_global_init();

	if (rc)
		fatalx(71, "cannot set up libcurl: %s", strerror(-rc));
	tzset();
	u->exp = uplinkexp_new(&u->cfg);
	if (u->http)
		cphttp_set_waiter(u->http, export_fds, u);
	u->um.met.exp = uplinkexp_stats(u->exp);
	while (!uplinkexp_port(u->exp)) {
		struct pollfd p = { .fd = PRIVSEP_FD, .events = POLLIN };

		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			fatalx(71, "poll: %s", strerror(errno));
		if (from_monitor(u) == -EPIPE)
			exit(0); /* the monitor is gone: so is vigild */
	}
}

/* The setup's strings: terminated, nlabels of them within labels. */
static void check_labels(struct uplink *u)
{
	size_t off = 0;

	u->cfg.hostname[sizeof(u->cfg.hostname) - 1] = '\0';
	u->cfg.labels[sizeof(u->cfg.labels) - 1] = '\0';
	if (u->cfg.nlabels > 16)
		fatalx(70, "the monitor sent a setup it cannot mean");
	for (uint32_t i = 0; i < u->cfg.nlabels; i++) {
		off += strnlen(u->cfg.labels + off, sizeof(u->cfg.labels) - off) + 1;
		if (off > sizeof(u->cfg.labels))
			fatalx(70, "the monitor sent labels that do not fit");
	}
}

static void setup_control_plane(struct uplink *u)
{
	union {
		struct msg_uplink_peer peer;
		uint8_t raw[PRIVSEP_MAX_MSG];
	} m;
	int fds[PRIVSEP_MAX_FDS], type, rc;
	size_t len;

	u->cfg.host[sizeof(u->cfg.host) - 1] = '\0';
	u->cfg.hostname[sizeof(u->cfg.hostname) - 1] = '\0';
	u->cfg.labels[sizeof(u->cfg.labels) - 1] = '\0';
	if (!u->cfg.port || u->cfg.port > 65535 || !u->cfg.poll_interval_s ||
	    u->cfg.nlabels > 16)
		fatalx(70, "the monitor sent a control-plane setup it cannot mean");
	{
		/* nlabels strings must lie within labels */
		size_t off = 0;

		for (uint32_t i = 0; i < u->cfg.nlabels; i++) {
			off += strnlen(u->cfg.labels + off, sizeof(u->cfg.labels) - off) + 1;
			if (off > sizeof(u->cfg.labels))
				fatalx(70, "the monitor sent labels that do not fit");
		}
	}
	type = privsep_recv(PRIVSEP_FD, PEER_MONITOR, u->seen_mon, &m, &len, fds);
	if (type != MSG_UPLINK_PEER || m.peer.version != PRIVSEP_VERSION)
		fatalx(70, "no socket to the collector from the monitor (%s)",
		       type < 0 ? strerror(-type) : "wrong type");
	u->chan = fds[0];
	/*
	 * libcurl and OpenSSL read their configuration now, before Landlock;
	 * and the time zone (OpenSSL's certificate checks call localtime).
	 */
	tzset();
	rc = cphttp_global_init();
	if (!rc)
		rc = cphttp_new(u->cfg.host, u->cfg.port, &u->http);
	if (rc)
		fatalx(71, "cannot set up libcurl: %s", strerror(-rc));
}

int uplink_main(void)
{
	struct uplink u = { .chan = -1 };
	union {
		struct msg_uplink_setup setup;
		uint8_t raw[PRIVSEP_MAX_MSG];
	} m;
	int fds[PRIVSEP_MAX_FDS];
	size_t len;
	int type, rc;
	bool cp;

	log_init("vigild[uplink]");
	uplinkmet_init(&u.um);
	type = privsep_recv(PRIVSEP_FD, PEER_MONITOR, u.seen_mon, &m, &len, fds);
	if (type != MSG_UPLINK_SETUP || m.setup.version != PRIVSEP_VERSION)
		fatalx(70, "no valid setup from the monitor (%s)", type < 0 ? strerror(-type) : "wrong type");
	u.cfg = m.setup;
	uplinkbase_heartbeat(&u.hb, u.cfg.beat_ms);
	cp = u.cfg.flags & UPLINK_F_CONTROL_PLANE;
	u.cp = cp;
	if (!cp && !(u.cfg.flags & UPLINK_F_EXPORT))
		fatalx(70, "the monitor started vigild-uplink with neither a control plane nor export "
		       "(vigild-uplink-local is the uplink for that)");

	u.sfd = uplinkbase_signalfd();
	if (u.cfg.flags & UPLINK_F_METRICS)
		uplinkmet_setup(&u.um, u.seen_mon, cp);
	if (cp)
		setup_control_plane(&u);
	if (u.cfg.flags & UPLINK_F_EXPORT) {
		if (!cp)
			check_labels(&u);
		setup_export(&u);
	}
	{
		unsigned ports[2] = { cp ? u.cfg.port : 0, u.exp ? uplinkexp_port(u.exp) : 0 };

		uplinkbase_confine(ports, 2, true);
	}
#ifdef VIGIL_TEST_HOOKS
	testhooks_metrics_fd[0] = u.um.pmfd;
	testhooks_metrics_fd[1] = u.um.cmfd;
	testhooks_attempt("uplink");
#endif
	rc = run_control_plane(&u);
	uplinkexp_free(u.exp);
	cphttp_free(u.http);
	free(u.yaml);
	rotation_abandon(&u);
	rot_drop(&u.cur_cert);
	rot_drop(&u.cur_key);
	rot_drop(&u.ca);
	uplinkmet_free(&u.um);
	return rc;
}
