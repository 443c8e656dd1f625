/*
 * rollout.c - vigil-cp's staged rollouts engine (rollout.h): the decisions
 * (start, advance, halt, resume, abort) are functions of one rollout's row
 * and members, run inside store_rollout_update()'s locked transaction;
 * agent reports become store_rollout_mark() calls; the offer map is a
 * sorted array reloaded from store_rollout_offers() when invalidated.
 * Runs in vigil-cp (unprivileged, single-threaded).  Never logs.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hexdigit.h"
#include "rollout.h"
#include "rollplan.h"
#include "selector.h"

/* The events one decision can emit: each stage completed and started, and the end. */
#define RO_MAX_EVENTS (2 * ROLLPLAN_MAX_STAGES + 2)
/* Failures a halt's reason names before "and N more". */
#define RO_REASON_FAILURES 3

struct ro_offer {
	uint8_t uid[STORE_UID_LEN];	/* first: the array is sorted and searched by it */
	int64_t serial, rollout_id;
	bool sent;			/* sent_at is in the store */
};

struct rollout {
	struct store *st;
	cpevent_fn ev_fn;
	void *ev_arg;
	struct ro_offer *offers;
	size_t n_offers;
	bool stale;
	int error;			/* the hooks' last store error */
};

int rollout_new(struct store *st, struct rollout **ret)
{
	struct rollout *ro;

	if (!st || !ret)
		return -EINVAL;
	ro = calloc(1, sizeof(*ro));
	if (!ro)
		return -ENOMEM;
	ro->st = st;
	ro->stale = true;
	*ret = ro;
	return 0;
}

void rollout_free(struct rollout *ro)
{
	if (!ro)
		return;
	free(ro->offers);
	free(ro);
}

void rollout_set_events(struct rollout *ro, cpevent_fn fn, void *arg)
{
	ro->ev_fn = fn;
	ro->ev_arg = arg;
}

void rollout_invalidate(struct rollout *ro)
{
	ro->stale = true;
}

int rollout_take_error(struct rollout *ro)
{
	int r = ro->error;

	ro->error = 0;
	return r;
}

/* ---------------------------------------------------------------------------
 * Decisions, made under the rollout's lock; their events wait for the commit. */

struct ro_decision {
	int64_t now;
	const char *by;
	int action;			/* RO_ADVANCE, RO_HALT, ... */
	struct cpevent ev[RO_MAX_EVENTS];
	char detail[RO_MAX_EVENTS][512];
	size_t n_ev;
	char *err;
	size_t errlen;
};

enum { RO_ADVANCE, RO_HALT, RO_RESUME, RO_ABORT };

static void ro_event(struct ro_decision *d, const struct store_rollout *r, enum cpevent_kind kind, int stage,
		     const char *detail)
{
	struct cpevent *ev;

	if (d->n_ev == RO_MAX_EVENTS)
		return;
	ev = &d->ev[d->n_ev];
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->at = d->now;
	ev->serial = r->serial;
	ev->rollout_id = r->id;
	ev->stage = stage;
	if (detail) {
		snprintf(d->detail[d->n_ev], sizeof(d->detail[0]), "%s", detail);
		ev->detail = d->detail[d->n_ev];
	}
	d->n_ev++;
}

static void ro_emit(struct rollout *ro, const struct ro_decision *d)
{
	for (size_t i = 0; ro->ev_fn && i < d->n_ev; i++)
		ro->ev_fn(&d->ev[i], ro->ev_arg);
}

static int ro_set_reason(char **slot, const char *text)
{
	char *s = text ? strdup(text) : NULL;

	if (text && !s)
		return -ENOMEM;
	free(*slot);
	*slot = s;
	return 0;
}

static size_t ro_failures(const struct store_rollout_member *m, size_t n)
{
	size_t f = 0;

	for (size_t i = 0; i < n; i++)
		f += m[i].failed_at != 0;
	return f;
}

/* Halt r because of its failures; the reason names the count and the first ones. */
static int ro_halt_on_failures(struct ro_decision *d, struct store_rollout *r, struct store_rollout_member *m,
			       size_t n, int64_t counted, struct store_rollout_change *ch)
{
	char reason[1024];
	size_t len, shown = 0;
	int e;

	len = (size_t)snprintf(reason, sizeof(reason), "%lld failure%s (more than --max-failures %lld): ",
			       (long long)counted, counted == 1 ? "" : "s", (long long)r->max_failures);
	/*
	 * Name the newest failures: they are the ones counted since the last
	 * resume, and the ones that tipped it over (ties: lower rank first).
	 */
	for (int64_t below = INT64_MAX; shown < RO_REASON_FAILURES && len < sizeof(reason);) {
		const struct store_rollout_member *pick = NULL;
		char uid[33];

		for (size_t i = 0; i < n; i++)
			if (m[i].failed_at && m[i].failed_at < below && (!pick || m[i].failed_at > pick->failed_at))
				pick = &m[i];
		if (!pick)
			break;
		/* Every member failed at that instant, in rank order. */
		for (size_t i = 0; i < n && shown < RO_REASON_FAILURES && len < sizeof(reason); i++) {
			if (m[i].failed_at != pick->failed_at)
				continue;
			hexdigit_encode(m[i].uid, STORE_UID_LEN, uid);
			len += (size_t)snprintf(reason + len, sizeof(reason) - len, "%s%s: %.160s", shown ? "; " : "",
						uid, m[i].reason ? m[i].reason : "failed");
			shown++;
		}
		below = pick->failed_at;
	}
	if ((size_t)counted > shown && len < sizeof(reason))
		snprintf(reason + len, sizeof(reason) - len, "; and %zu more", (size_t)counted - shown);
	if ((e = ro_set_reason(&r->reason, reason)))
		return e;
	r->state = STORE_ROLLOUT_HALTED;
	r->updated_at = d->now;
	ch->rollout = ch->offers = true;
	ro_event(d, r, CPEVENT_ROLLOUT_HALTED, r->stage, reason);
	return 0;
}

static int ro_advance_one(struct ro_decision *d, struct store_rollout *r, struct store_rollout_member *m, size_t n,
			  struct store_rollout_change *ch)
{
	size_t sizes[ROLLPLAN_MAX_STAGES];
	struct rollplan plan;
	char why[160], timeout[32];
	int e;

	if (r->state != STORE_ROLLOUT_RUNNING)
		return 0;
	/* Checked at start; a row that no longer parses is halted, not guessed at. */
	if (rollplan_parse(r->stages, &plan, why, sizeof(why)) || rollplan_sizes(&plan, n, sizes, why, sizeof(why)) ||
	    r->stage < 0 || (size_t)r->stage >= plan.n) {
		char reason[400];

		snprintf(reason, sizeof(reason), "stored stages \"%.64s\" no longer valid: %s", r->stages, why);
		if ((e = ro_set_reason(&r->reason, reason)))
			return e;
		r->state = STORE_ROLLOUT_HALTED;
		r->updated_at = d->now;
		ch->rollout = ch->offers = true;
		ro_event(d, r, CPEVENT_ROLLOUT_HALTED, r->stage, reason);
		return 0;
	}
	rollplan_format_duration(r->report_timeout_ms, timeout, sizeof(timeout));
	for (;;) {
		bool pending = false;
		int64_t counted;

		for (size_t i = 0; i < n; i++) {
			struct store_rollout_member *x = &m[i];
			int64_t start;

			if (x->stage > r->stage || x->failed_at || x->succeeded_at)
				continue;
			if (x->applied_at) {
				if (d->now - x->applied_at >= r->bake_ms) {
					x->succeeded_at = d->now;
					x->dirty = true;
				} else {
					pending = true;
				}
				continue;
			}
			start = x->sent_at > r->stage_started_at ? x->sent_at : r->stage_started_at;
			if (d->now - start >= r->report_timeout_ms) {
				char reason[64];

				snprintf(reason, sizeof(reason), "no report within %s", timeout);
				if ((e = ro_set_reason(&x->reason, reason)))
					return e;
				x->failed_at = d->now;
				x->dirty = true;
			} else {
				pending = true;
			}
		}
		counted = (int64_t)ro_failures(m, n) - r->failures_base;
		if (counted > r->max_failures)
			return ro_halt_on_failures(d, r, m, n, counted, ch);
		if (pending)
			return 0;
		ro_event(d, r, CPEVENT_ROLLOUT_STAGE_COMPLETED, r->stage, NULL);
		r->updated_at = d->now;
		ch->rollout = true;
		if ((size_t)r->stage + 1 >= plan.n) {
			r->state = STORE_ROLLOUT_COMPLETED;
			ch->offers = true;
			/* A rollout that stopped short of everyone stays short: no assignment. */
			ch->assign = rollplan_covers_all(sizes, plan.n, n);
			ro_event(d, r, CPEVENT_ROLLOUT_COMPLETED, r->stage,
				 ch->assign ? NULL : "last stage did not cover every member: no assignment recorded");
			return 0;
		}
		r->stage++;
		r->stage_started_at = d->now;
		ch->offers = true;
		ro_event(d, r, CPEVENT_ROLLOUT_STAGE_STARTED, r->stage, NULL);
	}
}

static int ro_decide(void *arg, struct store_rollout *r, struct store_rollout_member *m, size_t n,
		     struct store_rollout_change *ch)
{
	struct ro_decision *d = arg;
	char reason[320];
	int e;

	switch (d->action) {
	case RO_ADVANCE:
		return ro_advance_one(d, r, m, n, ch);
	case RO_HALT:
		if (r->state != STORE_ROLLOUT_RUNNING)
			break;
		snprintf(reason, sizeof(reason), "halted by %.256s", d->by ? d->by : "an administrator");
		if ((e = ro_set_reason(&r->reason, reason)))
			return e;
		r->state = STORE_ROLLOUT_HALTED;
		ro_event(d, r, CPEVENT_ROLLOUT_HALTED, r->stage, reason);
		goto changed;
	case RO_RESUME:
		if (r->state != STORE_ROLLOUT_HALTED)
			break;
		/* Earlier failures stay listed; only new ones count against the limit. */
		r->failures_base = (int64_t)ro_failures(m, n);
		r->stage_started_at = d->now;
		r->state = STORE_ROLLOUT_RUNNING;
		if ((e = ro_set_reason(&r->reason, NULL)))
			return e;
		goto changed;
	case RO_ABORT:
		if (r->state != STORE_ROLLOUT_RUNNING && r->state != STORE_ROLLOUT_HALTED)
			break;
		snprintf(reason, sizeof(reason), "aborted by %.256s", d->by ? d->by : "an administrator");
		if ((e = ro_set_reason(&r->reason, reason)))
			return e;
		r->state = STORE_ROLLOUT_ABORTED;
		goto changed;
	default:
		return -EINVAL;
	}
	snprintf(d->err, d->errlen, "rollout %lld is %s", (long long)r->id, store_rollout_state_name(r->state));
	return -EBUSY;
changed:
	r->updated_at = d->now;
	ch->rollout = ch->offers = true;
	return 0;
}

static int ro_act(struct rollout *ro, int action, int64_t id, const char *by, int64_t now, char *err,
		  size_t errlen)
{
	struct ro_decision *d = calloc(1, sizeof(*d));
	char dummy[8];
	int r;

	if (!d)
		return -ENOMEM;
	if (!err || !errlen)
		err = dummy, errlen = sizeof(dummy);
	err[0] = '\0';
	d->now = now;
	d->by = by;
	d->action = action;
	d->err = err;
	d->errlen = errlen;
	r = store_rollout_update(ro->st, id, false, action == RO_RESUME, ro_decide, d);
	if (r == 0) {
		ro->stale = true;
		ro_emit(ro, d);
	} else if (r == -ENOENT && !err[0]) {
		snprintf(err, errlen, "no rollout %lld", (long long)id);
	}
	free(d);
	return r;
}

int rollout_halt(struct rollout *ro, int64_t id, const char *by, int64_t now, char *err, size_t errlen)
{
	return ro_act(ro, RO_HALT, id, by, now, err, errlen);
}

int rollout_resume(struct rollout *ro, int64_t id, const char *by, int64_t now, char *err, size_t errlen)
{
	return ro_act(ro, RO_RESUME, id, by, now, err, errlen);
}

int rollout_abort(struct rollout *ro, int64_t id, const char *by, int64_t now, char *err, size_t errlen)
{
	return ro_act(ro, RO_ABORT, id, by, now, err, errlen);
}

struct ro_ids {
	int64_t *v;
	size_t n, cap;
};

static int ro_collect_id(const struct store_rollout *r, void *arg)
{
	struct ro_ids *ids = arg;

	if (ids->n == ids->cap) {
		size_t ncap = ids->cap ? ids->cap * 2 : 16;
		int64_t *nv = realloc(ids->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		ids->v = nv;
		ids->cap = ncap;
	}
	ids->v[ids->n++] = r->id;
	return 0;
}

int rollout_advance(struct rollout *ro, int64_t now)
{
	struct ro_ids ids = { 0 };
	struct ro_decision *d;
	int r, first = 0;
	bool moved = false;

	r = store_rollout_list(ro->st, STORE_ROLLOUT_RUNNING, ro_collect_id, &ids);
	if (r) {
		free(ids.v);
		return r;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		free(ids.v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < ids.n; i++) {
		char err[8];

		memset(d, 0, sizeof(*d));
		d->now = now;
		d->action = RO_ADVANCE;
		d->err = err;
		d->errlen = sizeof(err);
		r = store_rollout_update(ro->st, ids.v[i], true, true, ro_decide, d);
		/* Another server holds it this tick; it will have advanced it. */
		if (r == -EAGAIN || r == -ENOENT)
			continue;
		if (r) {
			if (!first)
				first = r;
			continue;
		}
		for (size_t k = 0; k < d->n_ev; k++)
			if (d->ev[k].kind != CPEVENT_ROLLOUT_STAGE_COMPLETED)
				moved = true;
		ro_emit(ro, d);
	}
	free(d);
	free(ids.v);
	if (moved)
		ro->stale = true;
	return first ? first : moved ? 1 : 0;
}

/* ---------------------------------------------------------------------------
 * Starting a rollout. */

struct ro_match {
	struct selector sel;
	struct store_rollout_member *m;
	size_t n, cap;
};

static int ro_match_agent(const struct store_agent *a, void *arg)
{
	struct ro_match *mt = arg;

	if (!selector_match(&mt->sel, a->description_json))
		return 0;
	if (mt->n == ROLLOUT_MAX_MEMBERS)
		return -E2BIG;
	if (mt->n == mt->cap) {
		size_t ncap = mt->cap ? mt->cap * 2 : 64;
		void *nv = realloc(mt->m, ncap * sizeof(*mt->m));

		if (!nv)
			return -ENOMEM;
		mt->m = nv;
		mt->cap = ncap;
	}
	memset(&mt->m[mt->n], 0, sizeof(mt->m[0]));
	memcpy(mt->m[mt->n].uid, a->uid, STORE_UID_LEN);
	mt->n++;
	return 0;
}

struct ro_rank {
	size_t sizes[ROLLPLAN_MAX_STAGES];
	size_t n_stages;
};

/* store_rollout_rank_fn: the members in rollplan's order, each with its stage. */
static int ro_rank(void *arg, int64_t id, struct store_rollout_member *m, size_t n)
{
	const struct ro_rank *rk = arg;
	uint8_t(*uids)[STORE_UID_LEN] = malloc(n * sizeof(*uids));
	int r;

	if (!uids)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		memcpy(uids[i], m[i].uid, STORE_UID_LEN);
	r = rollplan_order(id, uids, n);
	for (size_t i = 0; r == 0 && i < n; i++) {
		memset(&m[i], 0, sizeof(m[i]));
		memcpy(m[i].uid, uids[i], STORE_UID_LEN);
		m[i].rank = (int64_t)i;
		m[i].stage = (int)rollplan_stage_of(rk->sizes, rk->n_stages, i);
	}
	free(uids);
	return r;
}

static int ro_check_spec(const struct rollout_spec *spec, struct rollplan *plan, struct selector *sel, char *err,
			 size_t errlen)
{
	char why[200];

	if (spec->serial <= 0) {
		snprintf(err, errlen, "serial must be a positive integer");
		return -EINVAL;
	}
	if (rollplan_parse(spec->stages, plan, why, sizeof(why))) {
		snprintf(err, errlen, "stages: %s", why);
		return -EINVAL;
	}
	if (selector_parse(spec->selector, sel, why, sizeof(why))) {
		snprintf(err, errlen, "selector: %s", why);
		return -EINVAL;
	}
	if (spec->bake_ms < 0 || spec->bake_ms > ROLLPLAN_MAX_DURATION_MS) {
		snprintf(err, errlen, "bake_ms must be between 0 and %lld (30 days)",
			 (long long)ROLLPLAN_MAX_DURATION_MS);
		return -EINVAL;
	}
	if (spec->report_timeout_ms <= 0 || spec->report_timeout_ms > ROLLPLAN_MAX_DURATION_MS) {
		snprintf(err, errlen, "report_timeout_ms must be between 1 and %lld (30 days)",
			 (long long)ROLLPLAN_MAX_DURATION_MS);
		return -EINVAL;
	}
	if (spec->max_failures < 0 || spec->max_failures > ROLLOUT_MAX_FAILURES) {
		snprintf(err, errlen, "max_failures must be between 0 and %d", ROLLOUT_MAX_FAILURES);
		return -EINVAL;
	}
	return 0;
}

static void ro_overlap_reason(const struct store_rollout_overlap *o, char *err, size_t errlen)
{
	size_t len, shown = o->n < STORE_ROLLOUT_OVERLAP_SHOWN ? o->n : STORE_ROLLOUT_OVERLAP_SHOWN;

	len = (size_t)snprintf(err, errlen, "%zu agent%s already in a running or halted rollout: ", o->n,
			       o->n == 1 ? " is" : "s are");
	for (size_t i = 0; i < shown && len < errlen; i++) {
		char uid[33];

		hexdigit_encode(o->uid[i], STORE_UID_LEN, uid);
		len += (size_t)snprintf(err + len, errlen - len, "%s%s (rollout %lld)", i ? ", " : "", uid,
					(long long)o->rollout_id[i]);
	}
	if (o->n > shown && len < errlen)
		snprintf(err + len, errlen - len, " and %zu more", o->n - shown);
}

int rollout_start(struct rollout *ro, const struct rollout_spec *spec, const char *by, int64_t now,
		  int64_t *ret_id, char *err, size_t errlen)
{
	struct store_rollout_overlap overlap;
	struct ro_match *mt = NULL;
	struct store_rollout row = { 0 };
	struct ro_decision *d = NULL;
	struct ro_rank rk = { 0 };
	struct rollplan plan;
	char dummy[8], why[200];
	int64_t id = 0;
	int r;

	if (!err || !errlen)
		err = dummy, errlen = sizeof(dummy);
	err[0] = '\0';
	mt = calloc(1, sizeof(*mt));
	d = calloc(1, sizeof(*d));
	if (!mt || !d) {
		r = -ENOMEM;
		goto out;
	}
	r = ro_check_spec(spec, &plan, &mt->sel, err, errlen);
	if (r)
		goto out;
	r = store_agent_list(ro->st, ro_match_agent, mt);
	if (r == -E2BIG)
		snprintf(err, errlen, "more than %d agents match %s: split the rollout by a narrower selector",
			 ROLLOUT_MAX_MEMBERS, spec->selector);
	if (r)
		goto out;
	if (mt->n == 0) {
		snprintf(err, errlen, "no agent matches selector %s", spec->selector);
		r = -ENODATA;
		goto out;
	}
	if (rollplan_sizes(&plan, mt->n, rk.sizes, why, sizeof(why))) {
		snprintf(err, errlen, "stages: %s", why);
		r = -EINVAL;
		goto out;
	}
	rk.n_stages = plan.n;
	row.serial = spec->serial;
	row.selector = strdup(spec->selector);
	row.stages = strdup(spec->stages);
	row.created_by = by ? strdup(by) : NULL;
	if (!row.selector || !row.stages || (by && !row.created_by)) {
		r = -ENOMEM;
		goto out;
	}
	row.bake_ms = spec->bake_ms;
	row.max_failures = spec->max_failures;
	row.report_timeout_ms = spec->report_timeout_ms;
	row.created_at = now;
	r = store_rollout_create(ro->st, &row, mt->m, mt->n, ro_rank, &rk, &id, &overlap);
	if (r == -ENOENT)
		snprintf(err, errlen, "no policy with serial %lld: upload it first", (long long)spec->serial);
	else if (r == -EBUSY)
		ro_overlap_reason(&overlap, err, errlen);
	if (r)
		goto out;
	ro->stale = true;
	row.id = id;
	d->now = now;
	ro_event(d, &row, CPEVENT_ROLLOUT_STAGE_STARTED, 0, NULL);
	ro_emit(ro, d);
	if (ret_id)
		*ret_id = id;
out:
	store_rollout_release(&row);
	if (mt)
		free(mt->m);
	free(mt);
	free(d);
	return r;
}

/* ---------------------------------------------------------------------------
 * Agent reports. */

int rollout_event(struct rollout *ro, const struct cpevent *ev)
{
	char reason[400];

	switch (ev->kind) {
	case CPEVENT_POLICY_APPLIED:
		if (ev->serial <= 0)
			return 0;
		return store_rollout_mark(ro->st, ev->uid, STORE_MARK_APPLIED, ev->serial, ev->at, NULL);
	case CPEVENT_POLICY_FAILED:
		if (ev->serial <= 0)
			return 0;
		snprintf(reason, sizeof(reason), "policy failed: %.300s",
			 ev->detail && *ev->detail ? ev->detail : "(the agent gave no reason)");
		return store_rollout_mark(ro->st, ev->uid, STORE_MARK_FAILED, ev->serial, ev->at, reason);
	case CPEVENT_HEALTH_CHANGED:
		if (ev->healthy != 0)
			return 0;
		snprintf(reason, sizeof(reason), "unhealthy after applying: %.300s",
			 ev->detail && *ev->detail ? ev->detail : "(no error given)");
		return store_rollout_mark(ro->st, ev->uid, STORE_MARK_UNHEALTHY, 0, ev->at, reason);
	case CPEVENT_TENANT_UNREACHABLE:
		snprintf(reason, sizeof(reason), "tenant %.256s unreachable (over budget at its lowest frequency)",
			 ev->detail && *ev->detail ? ev->detail : "?");
		return store_rollout_mark(ro->st, ev->uid, STORE_MARK_TENANT, 0, ev->at, reason);
	default:
		return 0;
	}
}

/* ---------------------------------------------------------------------------
 * The offer map. */

struct ro_offers_vec {
	struct ro_offer *v;
	size_t n, cap;
};

static int ro_collect_offer(void *arg, const uint8_t uid[STORE_UID_LEN], int64_t rollout_id, int64_t serial,
			    int64_t sent_at)
{
	struct ro_offers_vec *vec = arg;

	if (vec->n == vec->cap) {
		size_t ncap = vec->cap ? vec->cap * 2 : 256;
		void *nv = realloc(vec->v, ncap * sizeof(*vec->v));

		if (!nv)
			return -ENOMEM;
		vec->v = nv;
		vec->cap = ncap;
	}
	memcpy(vec->v[vec->n].uid, uid, STORE_UID_LEN);
	vec->v[vec->n].serial = serial;
	vec->v[vec->n].rollout_id = rollout_id;
	vec->v[vec->n].sent = sent_at != 0;
	vec->n++;
	return 0;
}

/* By uid, then the highest serial first, so that the first of a uid's entries wins. */
static int ro_offer_cmp(const void *a, const void *b)
{
	const struct ro_offer *x = a, *y = b;
	int c = memcmp(x->uid, y->uid, STORE_UID_LEN);

	if (c)
		return c;
	return x->serial > y->serial ? -1 : x->serial < y->serial;
}

static int ro_reload(struct rollout *ro)
{
	struct ro_offers_vec vec = { 0 };
	size_t w = 0;
	int r;

	r = store_rollout_offers(ro->st, ro_collect_offer, &vec);
	if (r) {
		free(vec.v);
		return r;
	}
	if (vec.n)
		qsort(vec.v, vec.n, sizeof(*vec.v), ro_offer_cmp);
	/* An agent in two rollouts (a completed partial one, then another): the higher serial. */
	for (size_t i = 0; i < vec.n; i++)
		if (w == 0 || memcmp(vec.v[w - 1].uid, vec.v[i].uid, STORE_UID_LEN) != 0)
			vec.v[w++] = vec.v[i];
	free(ro->offers);
	ro->offers = vec.v;
	ro->n_offers = w;
	ro->stale = false;
	return 0;
}

static int ro_uid_cmp(const void *key, const void *elem)
{
	return memcmp(key, ((const struct ro_offer *)elem)->uid, STORE_UID_LEN);
}

static struct ro_offer *ro_find(struct rollout *ro, const uint8_t uid[STORE_UID_LEN])
{
	if (ro->stale) {
		int r = ro_reload(ro);

		/* Keep serving the map we have; try again on the next message. */
		if (r)
			ro->error = r;
	}
	if (!ro->n_offers)
		return NULL;
	return bsearch(uid, ro->offers, ro->n_offers, sizeof(*ro->offers), ro_uid_cmp);
}

int64_t rollout_offer(void *arg, const uint8_t uid[STORE_UID_LEN])
{
	const struct ro_offer *o = ro_find(arg, uid);

	return o ? o->serial : 0;
}

void rollout_sent(void *arg, const uint8_t uid[STORE_UID_LEN], int64_t serial, int64_t now)
{
	struct rollout *ro = arg;
	struct ro_offer *o = ro_find(ro, uid);
	int r;

	if (!o || o->sent || o->serial != serial)
		return;
	r = store_rollout_sent(ro->st, o->rollout_id, uid, now);
	if (r)
		ro->error = r;
	else
		o->sent = true;
}
