/*
 * steprules.h - a bounded cache of unwinding steps, keyed by file and
 * address, shared by every process that maps the file (unwind.c).
 *
 * On x86-64 almost every frame's CFI says: the caller's stack pointer
 * (the CFA) is rsp or rbp plus a constant, the return address is stored
 * at the CFA plus a constant, and rbp is either left alone or stored at
 * the CFA plus a constant.  Those four numbers are what libunwind works
 * out for an address, each time its own per-process cache of 128 rules
 * misses (an interpreter's leaf addresses alone are thousands).  They
 * are learnt here from libunwind itself (unwind.c runs its step on two
 * made-up register sets and reads the answer back), never from the CFI
 * directly: no DWARF is interpreted here.  A frame whose rule is of any
 * other shape (signal frames, realigned stacks, expressions) is recorded
 * as STEPRULE_NONE, and its stack goes to libunwind whole.
 *
 * The key is the CFI object's id (cfi.h; unique for the collector's
 * life, so a rule never outlives the bytes it was learnt from) and the
 * address in the file's own terms (run-time address minus load bias).
 * The table is two-way set-associative: a new rule replaces the less
 * recently used of its set (counted).  Not thread-safe.
 */
#ifndef VIGIL_STEPRULES_H
#define VIGIL_STEPRULES_H

#include <stddef.h>
#include <stdint.h>

/* Slots: 24 bytes each, 384 KiB when all are used. */
#define STEPRULES_SLOTS 16384

enum steprule_kind {
	STEPRULE_NONE = 1, /* not of the shape above: libunwind unwinds this stack */
	STEPRULE_STEP,     /* the four numbers below */
	STEPRULE_END,      /* the outermost frame (the CFI ends the chain) */
};

enum steprule_reg {
	STEPRULE_SP = 0,
	STEPRULE_BP = 1,
};

struct steprule {
	uint8_t kind;     /* enum steprule_kind; 0: unused */
	uint8_t cfa_reg;  /* enum steprule_reg */
	uint8_t bp_saved; /* rbp is restored from CFA + bp_off; else left as is */
	uint8_t pad;
	int16_t ra_off;   /* the return address is at CFA + ra_off */
	int16_t bp_off;
	int32_t cfa_off;  /* CFA = cfa_reg + cfa_off */
};

struct steprules_stats {
	uint64_t hits, misses;
	uint64_t replaced; /* a stored rule overwritten by another */
};

struct steprules;

struct steprules *steprules_new(void);
void steprules_free(struct steprules *r);

/* The rule for (cfi_id, addr): 0, or -ENOENT. */
int steprules_get(struct steprules *r, uint64_t cfi_id, uint64_t addr, struct steprule *ret);

/* Store the rule learnt for (cfi_id, addr). */
void steprules_put(struct steprules *r, uint64_t cfi_id, uint64_t addr, const struct steprule *rule);

void steprules_get_stats(const struct steprules *r, struct steprules_stats *ret);

#endif
