/*
 * rollplan.h - the arithmetic of a staged rollout, apart from any state:
 * the stages an administrator writes ("1,10%,50%,100%"), how many agents
 * each stage covers for a given member count, the deterministic order in
 * which members enter the stages, and the durations vigilctl takes
 * ("30s", "5m", "1h").  Used by the rollout engine (vigil-cp) and vigilctl.
 *
 * Stages: 1 to ROLLPLAN_MAX_STAGES comma-separated terms, each a count N
 * (1 <= N <= ROLLPLAN_MAX_COUNT) or a percentage P% (1 <= P <= 100, an
 * integer) of the members.  A stage covers the first size members in
 * order: a count as written, a percentage rounded up (at least 1 when
 * there is any member); sizes clamp to the member count and must not
 * decrease from one stage to the next.  The last stage need not cover
 * every member: the rest are never offered the policy.
 *
 * Order: members are sorted by SHA-256(rollout id as 8 bytes big-endian ||
 * instance_uid), then by uid, so the canaries of a rollout stay the same
 * across restarts and servers, and differ between rollouts.
 *
 * Library-like: 0 or -errno with a one-line reason in err, never logs.
 */
#ifndef VIGIL_ROLLPLAN_H
#define VIGIL_ROLLPLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROLLPLAN_MAX_STAGES 16
#define ROLLPLAN_MAX_COUNT 1000000u		/* a stage's count: past any fleet we serve */
#define ROLLPLAN_MAX_TEXT 256			/* the stages text */
#define ROLLPLAN_MAX_DURATION_MS (30LL * 24 * 3600 * 1000)	/* 30 days */
#define ROLLPLAN_UID_LEN 16

struct rollplan {
	size_t n;
	struct rollplan_stage {
		uint32_t value;			/* the count, or the percentage */
		bool percent;
	} s[ROLLPLAN_MAX_STAGES];
};

/*
 * Parse stages text.  0 and *ret, or -EINVAL with the reason in err
 * ("stage 2: 150% is over 100%").  Counts that decrease, or percentages
 * that decrease, are refused here; a count followed by a percentage can
 * only be checked against a member count (rollplan_sizes).
 */
int rollplan_parse(const char *text, struct rollplan *ret, char *err, size_t errlen);

/*
 * The number of members each stage covers (ret_sizes[0..p->n-1]) when the
 * rollout has members of them.  0, or -EINVAL with the reason in err when
 * a stage would cover fewer members than the one before it.
 */
int rollplan_sizes(const struct rollplan *p, size_t members, size_t ret_sizes[ROLLPLAN_MAX_STAGES],
		   char *err, size_t errlen);

/*
 * The stage (0-based) in which the member of rank (0-based) is first
 * offered the policy, or n when no stage covers it.
 */
size_t rollplan_stage_of(const size_t sizes[], size_t n, size_t rank);

/* Whether the last of the n sizes covers all members. */
bool rollplan_covers_all(const size_t sizes[], size_t n, size_t members);

/* The ordering key of uid in rollout id: SHA-256(id big-endian || uid). */
void rollplan_key(int64_t id, const uint8_t uid[ROLLPLAN_UID_LEN], uint8_t ret_key[32]);

/* Sort n uids in place into rollout id's order.  0 or -ENOMEM. */
int rollplan_order(int64_t id, uint8_t (*uids)[ROLLPLAN_UID_LEN], size_t n);

/*
 * A duration: a non-negative integer followed by a unit, ms, s, m, h or d
 * ("500ms", "30s", "5m", "1h"), at most ROLLPLAN_MAX_DURATION_MS.  0 and
 * *ret_ms, or -EINVAL with the reason in err.
 */
int rollplan_duration(const char *text, int64_t *ret_ms, char *err, size_t errlen);

/* ms written back in the largest unit that divides it ("30s", "5m", "1500ms"). */
void rollplan_format_duration(int64_t ms, char *buf, size_t len);

#endif
