/*
 * auditverify.h - checking an audit log (cpaudit.h) from outside the
 * server: the records in order against a signed checkpoint, naming the
 * first bad index, and a checkpoint saved earlier against the new one.
 *
 * Feed the records 0, 1, 2, ... of a checkpoint of size N; for each
 * position p the record must be canonical JSON (cpaudit.h's form, byte for
 * byte) with i = p and prev = the root over the records before it, as
 * recomputed here.  The first failure names an index:
 *   - p, when record p is unreadable, not canonical, or its i is not p
 *     (a record deleted, inserted or moved puts the wrong i at p);
 *   - p - 1, when only p's prev differs: the records before p no longer
 *     hash to what the server had when it wrote p, and every one before
 *     p - 1 was vouched for by p - 1's own prev, so p - 1 changed (0 when
 *     p is 0: record 0's prev is the empty tree's);
 *   - N - 1, when every record checks but the root is not the checkpoint's;
 *   - the first missing index, when fewer than N records came.
 * A rewriter who recomputes every prev defeats the naming, not the
 * verdict: the checkpoint's signature, and the consistency with a saved
 * checkpoint, still fail.
 *
 * Used by vigilctl (audit verify).  Library-like: 0 or -errno with a
 * one-line reason in err; never logs.
 */
#ifndef VIGIL_AUDITVERIFY_H
#define VIGIL_AUDITVERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "merkle.h"

struct auditverify;

/* A verifier of the records under cp (copied). */
int auditverify_new(const struct checkpoint *cp, struct auditverify **ret);
/* Accepts NULL. */
void auditverify_free(struct auditverify *v);

/*
 * The next record (its position is the count fed so far).  0, or -EBADMSG
 * with err saying why and auditverify_bad_index() naming the index; once
 * it failed, every later call fails the same way.  -ERANGE past the
 * checkpoint's size.
 */
int auditverify_record(struct auditverify *v, const uint8_t *rec, size_t len, char *err, size_t errlen);

/* After the last record: all N came and the root is the checkpoint's; else as above. */
int auditverify_finish(struct auditverify *v, char *err, size_t errlen);

/* The first bad index, or -1. */
int64_t auditverify_bad_index(const struct auditverify *v);
/* The records fed so far. */
uint64_t auditverify_count(const struct auditverify *v);
const struct merkle *auditverify_tree(const struct auditverify *v);

/*
 * A checkpoint saved by an earlier run (old) against the new one (cur,
 * whose records were all fed and finished): same origin, not smaller, the
 * server's consistency proof (np hashes) verifies, and the records fed
 * here give old's root at old's size.  0, or -EBADMSG with the reason.
 */
int auditverify_against_saved(const struct auditverify *v, const struct checkpoint *old, const uint8_t *proof,
			      size_t np, char *err, size_t errlen);

#endif
