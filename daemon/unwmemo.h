/*
 * unwmemo.h - a bounded memo of unwound stacks (unwind.c), so that a
 * stack seen again is not unwound again.
 *
 * A process that spins in a loop is sampled a thousand times a second at
 * the same few hundred places, with the same callers above it: the same
 * registers, the same return addresses at the same places in its stack.
 * unwind.c's fast unwinding (the learnt rules, steprules.h) is a pure
 * function of what it is given and what it reads: the interrupted rip,
 * rsp and rbp, the copy's length, the words it reads from the copy (a
 * return address, a saved rbp: at most two a frame), and the answers
 * about the process's mappings, which stay the same while the
 * symbolizer's version of them does (symbolizer_maps_version: a process
 * that exec'ed has none until its maps are read again, and then a new
 * one; a pid used again has another start time).  So its
 * answer for one sample is its answer for any other with the same
 * registers, length and version whose copy holds the same words at the
 * places read.  An entry records those places, and a check of them (a
 * dozen or two words compared) replaces the unwinding: a rule looked up,
 * a module found and a code check per frame.
 *
 * What is kept of another process's stack: the return addresses found
 * (which the profile shows anyway), the offsets of the words read, and
 * keyed hashes (a random key, drawn per collector) of the registers and
 * of the words.  Never a word of the stack itself, nor a register's
 * value (rbp may hold data in code built without frame pointers).  Two
 * different inputs match only if their 64-bit hashes collide, which,
 * with the key unknown outside the collector, cannot be arranged (see
 * below); the cost of a collision is one sample shown on the wrong stack.
 *
 * The hashes are keyed with 64 random bits and mix every input bit into
 * every output bit (splitmix64's finalizer), so a process cannot make two
 * of its stacks collide without the key; they are not one-way: whoever
 * can read the collector's memory (which is not dumpable) could work
 * back from them to a word.
 *
 * A hit does not touch the symbolizer: the CFI of a file whose stacks
 * all hit is not used in the eyes of its LRU (SYMBOLIZER_CFI_BUDGET),
 * which may drop it first; a later miss reads it again.
 *
 * Direct-mapped, UNWMEMO_SLOTS entries of 432 bytes (216 KiB), mapped
 * when first used, pages touched only as entries are stored.  Not
 * thread-safe.
 */
#ifndef VIGIL_UNWMEMO_H
#define VIGIL_UNWMEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UNWMEMO_SLOTS  512
#define UNWMEMO_FRAMES 32                 /* longer stacks are not kept */
#define UNWMEMO_READS  (2 * UNWMEMO_FRAMES) /* a return address and an rbp a frame */

struct unwmemo_stats {
	uint64_t hits;     /* stacks answered from the memo */
	uint64_t stored;   /* entries written */
	uint64_t replaced; /* ... over another entry */
};

/* The words one unwinding read, as it reads them (unwmemo_note). */
struct unwmemo_rec {
	const uint64_t *pos; /* the memo's keys of the places, in order */
	uint64_t words;   /* keyed hash of the words, each with its place in the order */
	uint16_t off[UNWMEMO_READS]; /* where each was read: bytes past rsp */
	unsigned n;
	bool overflow;    /* more than UNWMEMO_READS, or an offset past 65535 */
};

/* What an entry is valid for, besides its key: the process and the symbolizer's state. */
struct unwmemo_where {
	uint32_t pid;
	uint64_t gen, maps, cfi; /* struct sym_maps_version */
};

struct unwmemo;

/* A new memo with a random key; NULL on ENOMEM.  Call it before the sandbox (getrandom). */
struct unwmemo *unwmemo_new(void);
void unwmemo_free(struct unwmemo *m);

/* The key of a sample: keyed hash of everything fast unwinding is given. */
uint64_t unwmemo_key(const struct unwmemo *m, const struct unwmemo_where *w, uint64_t start_ns,
		     uint64_t rip, uint64_t rsp, uint64_t rbp, uint64_t len, size_t max);

/* Start recording one unwinding's reads. */
void unwmemo_rec_start(const struct unwmemo *m, struct unwmemo_rec *r);

/* The word w was read at off bytes past rsp. */
void unwmemo_note(struct unwmemo_rec *r, uint64_t off, uint64_t w);

/*
 * The entries of the stack whose key is key, if one holds for where and
 * for the copy stack[0..len) (the words it read are there again): copied
 * into ips (at most max), *whole set, their number returned; else 0.
 */
size_t unwmemo_find(struct unwmemo *m, uint64_t key, const struct unwmemo_where *w,
		    const uint8_t *stack, uint64_t len, uint64_t *ips, size_t max, bool *whole);

/* Keep what an unwinding found (n entries, 1..UNWMEMO_FRAMES), read as r recorded. */
void unwmemo_put(struct unwmemo *m, uint64_t key, const struct unwmemo_where *w,
		 const struct unwmemo_rec *r, const uint64_t *ips, size_t n, bool whole);

void unwmemo_get_stats(const struct unwmemo *m, struct unwmemo_stats *ret);

#endif
