/*
 * rollout.h - vigil-cp's staged rollouts engine: starts a rollout (its
 * members fixed and ordered at start, rollplan.h), records what agents
 * report about it (from cpevents), advances it stage by stage from
 * vigil-cp's 1-second tick, halts it by itself when failures exceed its
 * limit, and tells the OpAMP server (opampsrv.h's rollouts hooks) which
 * serial each agent is offered.
 *
 * Every decision is in the store (store.h's store_rollout_*): kill
 * vigil-cp at any moment, start it again or another one on the same
 * store, and each rollout carries on from where it is.  What the engine
 * keeps in memory is a cache: the offer map (agent -> serial), reloaded
 * after rollout_invalidate() (vigil-cp calls it when the store's
 * generation moved, so that a change made by another server is seen
 * within a tick), and which members' sent_at it already wrote.
 *
 * How a stage runs (docs/control-plane.md, "Staged rollouts"): its
 * members are offered the policy; each one succeeds once it has reported
 * APPLIED and stayed healthy for bake_ms, or fails (FAILED for the
 * serial; unhealthy after applying; a tenant turned unreachable after it
 * was sent the policy; no report within report_timeout_ms of its stage's
 * start or of being sent the policy, whichever is later).  When the
 * failures since the start or the last resume exceed max_failures the
 * rollout halts: only members already sent the policy keep being offered
 * it.  When every member of the stage succeeded or failed (within the
 * limit), the next stage starts; after the last, the rollout completes
 * and records the assignment selector -> serial (when its last stage
 * covered every member), so that agents that appear later get it too.
 *
 * Runs in vigil-cp (unprivileged, single-threaded).  Library-like: 0 or
 * -errno with a one-line reason in err where it takes one; never logs.
 */
#ifndef VIGIL_ROLLOUT_H
#define VIGIL_ROLLOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpevent.h"
#include "store.h"

#define ROLLOUT_DEFAULT_BAKE_MS (5 * 60 * 1000LL)
#define ROLLOUT_DEFAULT_REPORT_TIMEOUT_MS (10 * 60 * 1000LL)
#define ROLLOUT_MAX_FAILURES 1000000
#define ROLLOUT_MAX_MEMBERS 1000000	/* agents one rollout may take */

struct rollout;

/* 0 and *ret; st is borrowed and must outlive the engine. */
int rollout_new(struct store *st, struct rollout **ret);

/* Accepts NULL. */
void rollout_free(struct rollout *ro);

/*
 * Where the engine's events go (ROLLOUT_STAGE_STARTED/COMPLETED,
 * ROLLOUT_HALTED, ROLLOUT_COMPLETED), each after its change is committed.
 * fn NULL: nowhere.  arg is borrowed.
 */
void rollout_set_events(struct rollout *ro, cpevent_fn fn, void *arg);

struct rollout_spec {
	int64_t serial;
	const char *selector;		/* selector.h's syntax */
	const char *stages;		/* rollplan.h's syntax */
	int64_t bake_ms;		/* 0 .. ROLLPLAN_MAX_DURATION_MS */
	int64_t max_failures;		/* 0 .. ROLLOUT_MAX_FAILURES */
	int64_t report_timeout_ms;	/* 1 .. ROLLPLAN_MAX_DURATION_MS */
};

/*
 * Start a rollout of spec->serial to the agents that match spec->selector
 * now, by the admin subject by.  0 and *ret_id; or, with the reason in err:
 * -EINVAL a bad spec (stages, selector, a duration or count out of range),
 * -ENOENT no policy has that serial, -ENODATA no agent matches, -E2BIG
 * more than ROLLOUT_MAX_MEMBERS match, -EBUSY some of them are members of
 * a running or halted rollout (err names the first few and the count),
 * or the store's -errno.
 */
int rollout_start(struct rollout *ro, const struct rollout_spec *spec, const char *by, int64_t now,
		  int64_t *ret_id, char *err, size_t errlen);

/*
 * The administrator's actions on rollout id: halt (running -> halted,
 * reason "halted by BY"), resume (halted -> running; failures are
 * counted from zero again, the stage's report timeout restarts) and
 * abort (running or halted -> aborted, final).  0, -ENOENT, -EBUSY when
 * the rollout's state does not allow it (err says which state it is in),
 * or -errno.
 */
int rollout_halt(struct rollout *ro, int64_t id, const char *by, int64_t now, char *err, size_t errlen);
int rollout_resume(struct rollout *ro, int64_t id, const char *by, int64_t now, char *err, size_t errlen);
int rollout_abort(struct rollout *ro, int64_t id, const char *by, int64_t now, char *err, size_t errlen);

/*
 * Advance every running rollout (the tick).  A rollout that another server
 * is advancing right now is left to it.  >0 when who is offered what
 * changed (vigil-cp then makes the OpAMP server forget its cache), 0, or
 * the first store error (the other rollouts are still advanced).
 */
int rollout_advance(struct rollout *ro, int64_t now);

/* Record what an agent event says about the rollouts it is in.  0 or the store's -errno. */
int rollout_event(struct rollout *ro, const struct cpevent *ev);

/* Reload the offer map from the store before its next use. */
void rollout_invalidate(struct rollout *ro);

/*
 * opampsrv's rollouts hooks (struct opampsrv_rollouts, arg = the engine):
 * the serial a rollout offers agent uid now (0: none), and the note that
 * a reply is carrying serial's remote config to uid (sent_at, once).
 */
int64_t rollout_offer(void *ro, const uint8_t uid[STORE_UID_LEN]);
void rollout_sent(void *ro, const uint8_t uid[STORE_UID_LEN], int64_t serial, int64_t now);

/* The last store error the hooks above met (they cannot return it), then 0. */
int rollout_take_error(struct rollout *ro);

#endif
