/*
 * unwind.h - whole user stacks for code built without frame pointers:
 * the registers and the top of the user stack that the BPF program copied
 * (struct vigil_ustack) are unwound here, in the collector, with the
 * binaries' CFI (.eh_frame), through libunwind's remote API.  This is what
 * perf record --call-graph dwarf does; docs/unwinding.md says why this
 * design and what it costs.
 *
 * Runs in the collector, without privileges.  The stack bytes are another
 * process's memory and may hold its secrets: they are read here, during
 * the call, and nothing of them outlives it but the return addresses
 * found and, in the memo of unwound stacks, keyed hashes of the words
 * read (unwmemo.h).  They are never stored, logged or sent.
 *
 * libunwind reads memory through unwind.c's accessor only, which answers
 * from the copied stack and from the CFI the symbolizer copied out of the
 * files (cfi.h), bounds-checked; everything else reads as unavailable.
 * Where a module has no CFI (JIT code), libunwind's own fallback follows
 * the frame pointer, over the copied stack only.
 *
 * Most stacks are unwound without libunwind's stepping: the rule of each
 * frame (where the caller's stack pointer, return address and rbp are)
 * is learnt from libunwind once per file and address and kept in a
 * bounded cache shared by the processes that map the file (steprules.h).
 * A stack with a frame of another kind (a signal frame, a realigned
 * stack, code without CFI) is stepped by libunwind from the start.
 *
 * A stack unwound by the rules is kept (unwmemo.h): the same registers,
 * copy length and maps with the same words where it read give the same
 * answer, taken from there.
 *
 * For the stacks libunwind steps, each process gets its own libunwind address space, whose
 * cache of register rules (keyed by instruction address) makes repeated
 * stacks cheaper; at most UNWIND_MAX_SPACES of them exist, the least
 * recently used replaced first.  Not thread-safe.
 */
#ifndef VIGIL_UNWIND_H
#define VIGIL_UNWIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil_abi.h"

/*
 * Processes with a libunwind address space at once: ~27 KiB each (with
 * its 128-rule cache), at most ~0.9 MiB in all.
 */
#define UNWIND_MAX_SPACES 32
#define UNWIND_MAX_FRAMES VIGIL_MAX_STACK /* frames per stack, the marker included */

struct symbolizer;
struct unwind;

struct unwind_stats {
	uint64_t stacks;       /* stacks unwound */
	uint64_t truncated;    /* ... that ended in VIGIL_USER_TRUNCATED */
	uint64_t frames;       /* frames found, markers excluded */
	uint64_t rule_misses;  /* unwind info looked up: a rule learnt, or libunwind's cache missed */
	uint64_t fast_stacks;  /* stacks unwound with the learnt rules alone (memo hits included) */
	uint64_t memo_hits;    /* ... answered from the memo of such stacks (unwmemo.h) */
	uint64_t memo_replaced; /* memo entries written over another */
	uint64_t rules_learnt; /* rules learnt from libunwind (steprules.h) */
	uint64_t rules_refused; /* ... found to be of another shape (STEPRULE_NONE) */
	uint64_t rules_replaced; /* rules the bounded cache let go for others */
	uint64_t no_copy;      /* blocks without stack bytes (the copy failed) */
	uint64_t spaces_evicted; /* address spaces replaced (the LRU above) */
	size_t spaces;         /* address spaces held */
};

/*
 * A new unwinder reading maps and CFI from sym (not owned).  0, -ENOMEM.
 * Call it before the process's seccomp filter: libunwind's one-time
 * initialization opens a pipe.
 */
int unwind_new(struct symbolizer *sym, struct unwind **ret);

/*
 * Unwind one copied stack of process (pid, start_ns), which must have been
 * noted with symbolizer_note_process().  us is followed by us->len bytes
 * of stack (stack).  Writes into ips (at most max, max >= 2) the
 * interrupted instruction pointer, then each caller's return address,
 * innermost first; when the unwinder stopped before the outermost frame
 * (CFI missing or inconsistent, the copy too short, max reached), the
 * last entry is VIGIL_USER_TRUNCATED.  Returns the number of entries
 * written (at least 1), or 0 if the block holds no usable registers.
 */
size_t unwind_stack(struct unwind *u, uint32_t pid, uint64_t start_ns, const struct vigil_ustack *us,
		    const uint8_t *stack, uint64_t *ips, size_t max);

/*
 * Whether to use the learnt rules (the default) or let libunwind step
 * every frame: for tests and benchmarks that compare the two.
 */
void unwind_use_rules(struct unwind *u, bool on);

/* The process exec'ed or exited: drop its address space. */
void unwind_forget(struct unwind *u, uint32_t pid);

void unwind_get_stats(const struct unwind *u, struct unwind_stats *ret);

void unwind_free(struct unwind *u);

/*
 * Whether this thread is inside unwind_stack().  libunwind guards its
 * rule cache with a lock, and around the lock blocks every signal and
 * restores the mask again: two rt_sigprocmask calls per frame, which on a
 * VM cost more than the unwinding itself (75% of the collector's time,
 * measured with perf).  The collector's one signal handler is
 * mapguard.c's, for SIGBUS, which calls nothing of libunwind (it takes
 * SIGTERM and the rest through a signalfd, with them blocked), so no
 * handler can enter libunwind and the calls protect nothing; and a
 * SIGBUS blocked there would kill whatever the handler: the
 * collector's program (vigild-collector.c) defines sigprocmask so that a
 * call made while this is true changes nothing.  It is defined there, in
 * the one program that unwinds, and not in a module of the library,
 * which would hand every program calling sigprocmask that definition and
 * libunwind with it.
 */
bool unwind_active(void);

#endif
