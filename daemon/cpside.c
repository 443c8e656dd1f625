/*
 * cpside.c - the collector's side of the control plane (see cpside.h).
 *
 * Runs in the collector: uid vigil, no capabilities, no network.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "budgets.h"
#include "certrot.h"
#include "cfghash.h"
#include "cpside.h"
#include "fds.h"
#include "log.h"
#include "memblob.h"
#include "policy.h"
#include "remotepolicy.h"
#include "signing.h"
#include "statedir.h"

/* Health goes to the uplink when it changes, and at least this often. */
#define HEALTH_PERIOD_NS (30ull * 1000000000ull)

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int cpside_init(struct cpside *cs, const int fds[3], unsigned max_hz, char *why, size_t why_len)
{
	char err[512];
	void *ca;
	size_t len;
	int rc;

	memset(cs, 0, sizeof(*cs));
	cs->state_fd = fds[0];
	cs->chan_fd = fds[2];
	cs->max_hz = max_hz;
	/* An uplink stuck in a request must never block sampling: drop, not wait. */
	if (fcntl(cs->chan_fd, F_SETFL, O_NONBLOCK) < 0) {
		snprintf(why, why_len, "fcntl: %s", strerror(errno));
		close(fds[1]);
		return -errno;
	}
	rc = memblob_read(fds[1], SIGNING_MAX_TRUST_BYTES, &ca, &len);
	close(fds[1]);
	if (rc) {
		snprintf(why, why_len, "--policy-trust: %s", strerror(-rc));
		return rc;
	}
	rc = signing_trust_load_mem(ca, len, "--policy-trust", NULL, 0, NULL, &cs->trust, err,
				    sizeof(err));
	free(ca);
	if (rc) {
		snprintf(why, why_len, "%s", err);
		return rc;
	}
	return 0;
}

static void keep_yaml(struct cpside *cs, const char *yaml, size_t len)
{
	free(cs->yaml);
	cs->yaml = NULL;
	cs->yaml_len = 0;
	if (!yaml)
		return;
	cs->yaml = malloc(len + 1);
	if (!cs->yaml)
		return; /* the effective config is then reported empty */
	memcpy(cs->yaml, yaml, len);
	cs->yaml[len] = '\0';
	cs->yaml_len = len;
}

struct policy *cpside_last_known_good(struct cpside *cs)
{
	const char *yaml, *sig;
	size_t yl, sl;
	void *buf;
	struct policy *p = NULL;
	char reason[POLICY_REASON_LEN];
	int rc;

	rc = statedir_load_policy(cs->state_fd, &buf, &yaml, &yl, &sig, &sl);
	if (rc == -ENOENT)
		return NULL;
	if (rc) {
		log_warn_errno(rc, "state directory: %s is unreadable; not using it", STATEDIR_POLICY);
		return NULL;
	}
	/* Verified again: the directory is the vigil user's, not a trust anchor. */
	rc = remotepolicy_check(cs->trust, yaml, yl, sig, sl, 0, cs->max_hz, &p, reason,
				sizeof(reason));
	if (rc) {
		log_warnx("state directory: the last-known-good policy is refused (%s); not using it",
			  reason);
		free(buf);
		return NULL;
	}
	cs->source = POLICY_SRC_REMOTE;
	cs->serial = p->serial;
	cs->status = REMOTE_APPLIED;
	cfghash_policy(yaml, yl, sig, sl, cs->hash);
	keep_yaml(cs, yaml, yl);
	free(buf);
	log_info("state directory: last-known-good policy serial %" PRIu64 " verified; it is in "
		 "force until the control plane sends a newer one", cs->serial);
	return p;
}

void cpside_set_local(struct cpside *cs, enum policy_source src, const char *yaml, size_t len)
{
	cs->source = src;
	keep_yaml(cs, yaml, len);
}

bool cpside_local_allowed(const struct cpside *cs)
{
	return cs->source != POLICY_SRC_REMOTE;
}

static int send_status(struct cpside *cs)
{
	struct msg_policy_status m = {
		.hdr = { MSG_POLICY_STATUS, sizeof(m) },
		.version = PRIVSEP_VERSION,
		.source = cs->source,
		.serial = cs->serial,
		.status = cs->status,
	};
	int fd, rc;

	if (cs->chan_fd < 0)
		return -EPIPE;
	memcpy(m.hash, cs->hash, sizeof(m.hash));
	snprintf(m.reason, sizeof(m.reason), "%s", cs->reason);
	rc = memblob_new("policy.yaml", cs->yaml ? cs->yaml : "", cs->yaml_len, NULL, 0, &fd);
	if (rc)
		return rc;
	rc = privsep_send(cs->chan_fd, &m, sizeof(m), &fd, 1);
	close(fd);
	return rc;
}

int cpside_start(struct cpside *cs)
{
	struct msg_agent_start m = { .hdr = { MSG_AGENT_START, sizeof(m) },
				     .version = PRIVSEP_VERSION };
	char text[37];
	int made = 0, rc;

	rc = statedir_instance_uid(cs->state_fd, m.instance_uid, &made);
	if (rc) {
		/* Still an agent: a new id each start, said once. */
		struct timespec ts;

		log_warn_errno(rc, "state directory: cannot keep %s; this run's id is temporary",
			       STATEDIR_UID);
		clock_gettime(CLOCK_REALTIME, &ts);
		rc = statedir_uuid_v7((uint64_t)ts.tv_sec * 1000, m.instance_uid);
		if (rc)
			return rc;
	}
	statedir_uuid_format(m.instance_uid, text);
	log_info("instance_uid %s%s", text, made ? " (new)" : "");
	rc = privsep_send(cs->chan_fd, &m, sizeof(m), NULL, 0);
	if (!rc)
		rc = send_status(cs);
	return rc;
}

void cpside_health_start(struct cpside *cs, const struct budgets *b)
{
	/* Sampling has just been started; the first control period measures it. */
	cpside_health(cs, b, true, 0);
}

/* The uplink broke the protocol: say so to the monitor, which kills it. */
static int uplink_broke(struct cpside *cs, const char *why)
{
	struct msg_uplink_broke m = { .hdr = { MSG_UPLINK_BROKE, sizeof(m) },
				      .version = PRIVSEP_VERSION };

	log_warnx("the uplink broke the protocol (%s): asking the monitor to stop it", why);
	snprintf(m.why, sizeof(m.why), "%s", why);
	privsep_send(PRIVSEP_FD, &m, sizeof(m), NULL, 0);
	close(cs->chan_fd);
	cs->chan_fd = -1;
	return -EPIPE;
}

int cpside_accept(struct cpside *cs, const char *yaml, size_t yaml_len, const char *sig,
		  size_t sig_len, const uint8_t hash[CONFIG_HASH_LEN], struct policy **ret)
{
	struct policy *p = NULL;
	char reason[POLICY_REASON_LEN];
	int rc;

	memcpy(cs->hash, hash, sizeof(cs->hash));
	rc = remotepolicy_check(cs->trust, yaml, yaml_len, sig, sig_len, cs->serial, cs->max_hz, &p,
				reason, sizeof(reason));
	if (rc) {
		cs->status = REMOTE_FAILED;
		snprintf(cs->reason, sizeof(cs->reason), "%s", reason);
		return rc;
	}
	/* Kept first: a policy applied but lost at a crash would roll back. */
	rc = statedir_save_policy(cs->state_fd, yaml, yaml_len, sig, sig_len);
	if (rc)
		log_warn_errno(rc, "state directory: cannot keep the policy as last-known-good (it is "
			       "applied; a restart would come back on the previous one)");
	cs->serial = p->serial;
	cs->source = POLICY_SRC_REMOTE;
	cs->status = REMOTE_APPLIED;
	cs->reason[0] = '\0';
	keep_yaml(cs, yaml, yaml_len);
	*ret = p;
	return 0;
}

static void on_policy(struct cpside *cs, struct budgets *b, const struct msg_remote_policy *m,
		      const char *buf)
{
	struct policy *p = NULL;

	if (cpside_accept(cs, buf, m->yaml_len, buf + m->yaml_len, m->sig_len, m->hash, &p)) {
		const struct log_event ev = { .priority = LOG_WARNING, .id = LOG_ID_POLICY_REFUSED };

		log_event(&ev, "control plane: policy refused: %s; keeping the policy in force%s",
			  cs->reason, cs->serial ? "" : " (no signed policy yet)");
		return;
	}
	{
		const struct log_event ev = { .priority = LOG_INFO, .id = LOG_ID_POLICY_APPLIED,
					      .serial = p->serial };

		log_event(&ev, "control plane: policy serial %" PRIu64 " verified (%zu tenant(s)); "
			  "applying it", p->serial, p->n_tenants);
	}
	budgets_reload(b, p, true);
}

/*
 * A renewed certificate and key the uplink proved: kept in the state
 * directory for the next start.  Sizes and the memfd are the protocol (a
 * breach kills the uplink); a pair that does not match is refused here.
 */
static int on_identity(struct cpside *cs, const struct msg_identity_save *m, int fd)
{
	void *buf = NULL;
	size_t len;
	int rc;

	if (m->version != PRIVSEP_VERSION || m->pad || !m->cert_len || !m->key_len ||
	    (uint64_t)m->cert_len + m->key_len > IDENTITY_MAX) {
		close(fd);
		return uplink_broke(cs, "IDENTITY_SAVE with a bad version or lengths");
	}
	rc = memblob_read(fd, IDENTITY_MAX, &buf, &len);
	close(fd);
	if (rc == -ENOMEM) {
		log_warnx("state directory: out of memory reading the renewed certificate; not kept");
		return 0;
	}
	if (rc || len != (size_t)m->cert_len + m->key_len) {
		free(buf);
		return uplink_broke(cs, "IDENTITY_SAVE whose memfd is not sealed or not of its lengths");
	}
	if (certrot_pair(buf, m->cert_len, (const char *)buf + m->cert_len, m->key_len)) {
		log_warnx("state directory: the uplink's renewed certificate does not match its key; not kept");
	} else if ((rc = statedir_save_identity(cs->state_fd, buf, m->cert_len, (const char *)buf + m->cert_len,
						m->key_len))) {
		log_warn_errno(rc, "state directory: cannot keep the renewed certificate (it is in use; a "
			       "restart would come back on --cert/--key)");
	} else {
		log_info("state directory: the renewed certificate is kept in %s", STATEDIR_IDENTITY);
	}
	explicit_bzero(buf, len);
	free(buf);
	return 0;
}

int cpside_on_readable(struct cpside *cs, struct budgets *b)
{
	union {
		struct msg_remote_policy rp;
		struct msg_identity_save id;
		struct msg_export_ack ack;
		uint8_t raw[PRIVSEP_MAX_MSG];
	} u;
	int fds[PRIVSEP_MAX_FDS];
	size_t len;
	void *buf = NULL;
	size_t blen;
	int type, rc;

	if (cs->chan_fd < 0)
		return -EPIPE;
	type = privsep_recv(cs->chan_fd, PEER_UPLINK, cs->seen, &u, &len, fds);
	if (type == -EAGAIN)
		return 0;
	if (type == -EPIPE || type == -ECONNRESET) {
		close(cs->chan_fd);
		cs->chan_fd = -1;
		return -EPIPE;
	}
	if (type == -EPROTO)
		return uplink_broke(cs, "a message the table does not allow");
	if (type < 0)
		return uplink_broke(cs, strerror(-type));
	if (type == MSG_IDENTITY_SAVE)
		return on_identity(cs, &u.id, fds[0]);
	/* Export shares this socket (exportside.h). */
	if (type == MSG_EXPORT_ACK) {
		if (!cs->export_ack || cs->export_ack(cs->export_ctx, &u.ack) < 0)
			return uplink_broke(cs, "an EXPORT_ACK for no profile in flight, or malformed");
		return 0;
	}
	/* MSG_REMOTE_POLICY and MSG_IDENTITY_SAVE are the only messages the uplink may send here. */
	if (type != MSG_REMOTE_POLICY) {
		fds_close(fds, privsep_rules[type].nfds);
		return uplink_broke(cs, "a message the uplink may send only to the monitor");
	}
	if (u.rp.version != PRIVSEP_VERSION || u.rp.pad ||
	    (uint64_t)u.rp.yaml_len + u.rp.sig_len > REMOTE_POLICY_MAX) {
		close(fds[0]);
		return uplink_broke(cs, "REMOTE_POLICY with a bad version or lengths");
	}
	rc = memblob_read(fds[0], REMOTE_POLICY_MAX, &buf, &blen);
	close(fds[0]);
	if (rc == -ENOMEM) {
		cs->status = REMOTE_FAILED;
		memcpy(cs->hash, u.rp.hash, sizeof(cs->hash));
		snprintf(cs->reason, sizeof(cs->reason), "out of memory reading the policy");
		return send_status(cs) == -EPIPE ? -EPIPE : 0;
	}
	if (rc || blen != (size_t)u.rp.yaml_len + u.rp.sig_len) {
		free(buf);
		return uplink_broke(cs, "REMOTE_POLICY whose memfd is not sealed or not of its lengths");
	}
	on_policy(cs, b, &u.rp, buf);
	free(buf);
	rc = send_status(cs);
	if (rc == -EPIPE || rc == -ECONNRESET) {
		close(cs->chan_fd);
		cs->chan_fd = -1;
		return -EPIPE;
	}
	return 0;
}

void cpside_health(struct cpside *cs, const struct budgets *b, bool sampling, uint64_t samples)
{
	struct msg_agent_health m = { .hdr = { MSG_AGENT_HEALTH, sizeof(m) },
				      .version = PRIVSEP_VERSION };
	uint64_t now = mono_ns();
	bool changed;

	if (cs->chan_fd < 0)
		return;
	m.sampling = sampling;
	m.ntenants = (uint32_t)budgets_ntenants(b);
	m.nlisted = (uint32_t)budgets_health(b, m.tenants, HEALTH_MAX_TENANTS);
	/* The counters always move: a change is one of state, frequency or tenants. */
	changed = m.sampling != cs->last_health.sampling || m.ntenants != cs->last_health.ntenants ||
		  m.nlisted != cs->last_health.nlisted;
	for (uint32_t i = 0; !changed && i < m.nlisted; i++)
		changed = m.tenants[i].state != cs->last_health.tenants[i].state ||
			  m.tenants[i].hz != cs->last_health.tenants[i].hz ||
			  strcmp(m.tenants[i].name, cs->last_health.tenants[i].name);
	if (!changed && cs->last_health_ns && now - cs->last_health_ns < HEALTH_PERIOD_NS)
		return;
	m.samples = samples;
	if (privsep_send(cs->chan_fd, &m, sizeof(m), NULL, 0) == 0) {
		cs->last_health = m;
		cs->last_health_ns = now;
	}
}

void cpside_release(struct cpside *cs)
{
	if (cs->chan_fd >= 0)
		close(cs->chan_fd);
	if (cs->state_fd >= 0)
		close(cs->state_fd);
	signing_trust_free(cs->trust);
	free(cs->yaml);
	memset(cs, 0, sizeof(*cs));
	cs->chan_fd = cs->state_fd = -1;
}
