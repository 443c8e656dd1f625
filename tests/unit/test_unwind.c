/*
 * test_unwind.c - unwinding copied stacks with CFI (daemon/unwind.c, cfi.c).
 *
 * The stack unwound is this process's own, taken the way the BPF program
 * takes a sample's: the registers at one instruction and the stack bytes
 * above the stack pointer, copied.  It runs through functions built
 * without frame pointers, so a frame-pointer walk could not follow it;
 * the frames found are named with the symbolizer and compared with the
 * calls really made.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "skip.h"

#include "cfi.h"
#include "elfsym.h"
#include "mapfile.h"
#include "mapguard.h"
#include "procmaps.h"
#include "sandbox.h"
#include "symbolizer.h"
#include "unwind.h"
#include "unwmemo.h"

/*
 * vt_capture(struct vigil_ustack *us): the caller's registers as they are
 * once vt_capture returns (rip: the return address; rsp: above it; the
 * callee-saved registers untouched), in DWARF numbering.
 */
void vt_capture(struct vigil_ustack *us);
__asm__(".text\n"
	".globl vt_capture\n"
	".type vt_capture, @function\n"
	"vt_capture:\n"
	".cfi_startproc\n"
	"	movq (%rsp), %rax\n"
	"	movq %rax, 128(%rdi)\n" /* regs[16] rip */
	"	leaq 8(%rsp), %rax\n"
	"	movq %rax, 56(%rdi)\n"  /* regs[7] rsp */
	"	movq %rbp, 48(%rdi)\n"  /* regs[6] rbp */
	"	movq %rbx, 24(%rdi)\n"  /* regs[3] rbx */
	"	movq %r12, 96(%rdi)\n"
	"	movq %r13, 104(%rdi)\n"
	"	movq %r14, 112(%rdi)\n"
	"	movq %r15, 120(%rdi)\n"
	"	ret\n"
	".cfi_endproc\n"
	".size vt_capture, .-vt_capture\n");

#define COPY VIGIL_STACK_COPY
#define BIG_COPY (1u << 20) /* for test_big_frame: more than the BPF program copies */

struct shot {
	struct vigil_ustack us;
	uint8_t stack[BIG_COPY];
};

static uint64_t stack_end;
static uint64_t copy_limit = COPY;

/* Byte by byte and not instrumented: the copy crosses other frames' redzones. */
__attribute__((no_sanitize_address)) static void copy_stack(struct shot *s)
{
	uint64_t sp = s->us.regs[VIGIL_UREG_RSP], n = stack_end - sp;
	const volatile uint8_t *from = (const volatile uint8_t *)(uintptr_t)sp;

	if (n > copy_limit)
		n = copy_limit;
	for (uint64_t i = 0; i < n; i++)
		s->stack[i] = from[i];
	s->us.len = (uint32_t)n;
}

/* Three calls deep, without frame pointers, each with a frame of its own. */
#define NOFP __attribute__((noinline, optimize("omit-frame-pointer")))

NOFP static void vt_leaf(struct shot *s)
{
	volatile char pad[48];

	pad[0] = 1;
	vt_capture(&s->us);
	copy_stack(s);
	pad[1] = pad[0];
}

NOFP static void vt_mid(struct shot *s)
{
	volatile char pad[200];

	pad[0] = 2;
	vt_leaf(s);
	pad[1] = pad[0];
}

NOFP static void vt_outer(struct shot *s)
{
	volatile char pad[1000];

	pad[0] = 3;
	vt_mid(s);
	pad[1] = pad[0];
}

/* depth + 1 frames of itself under the capture: a stack longer than the memo keeps. */
NOFP static void vt_deep(struct shot *s, int depth)
{
	volatile char pad[32];

	pad[0] = (char)depth;
	if (depth > 0)
		vt_deep(s, depth - 1);
	else
		vt_leaf(s);
	pad[1] = pad[0];
}

static int t_open_maps(void *ctx, uint32_t pid)
{
	char path[48];
	int fd;

	snprintf(path, sizeof(path), "/proc/%" PRIu32 "/maps", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int t_open_file(void *ctx, uint32_t pid, const struct procmap *mp, struct stat *ret_st)
{
	return mapfile_open(pid, mp, ret_st);
}

struct fixture {
	struct symbolizer *sym;
	struct unwind *u;
	struct shot *shot;
};

static int setup(void **state)
{
	static const struct symbolizer_ops ops = { .open_maps = t_open_maps, .open_file = t_open_file };
	struct fixture *f = calloc(1, sizeof(*f));
	struct procmaps *m;
	const struct procmap *mp;
	uint64_t here = (uint64_t)(uintptr_t)&m;

	assert_non_null(f);
	assert_int_equal(procmaps_read(getpid(), &m), 0);
	mp = procmaps_find(m, here);
	assert_non_null(mp);
	stack_end = mp->end;
	procmaps_free(m);
	assert_int_equal(symbolizer_new_ops(&ops, -1, &f->sym), 0);
	assert_int_equal(unwind_new(f->sym, &f->u), 0);
	f->shot = calloc(1, sizeof(*f->shot));
	assert_non_null(f->shot);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unwind_free(f->u);
	symbolizer_free(f->sym);
	free(f->shot);
	free(f);
	return 0;
}

/*
 * The function names of ips[0..n) (NULL where none), for the checks
 * below; and whether each lies in a mapping of the process (in_code).
 */
static bool in_code[UNWIND_MAX_FRAMES];

static void names(struct fixture *f, const uint64_t *ips, size_t n, const char **out)
{
	for (size_t i = 0; i < n; i++) {
		struct sym_frame fr;

		out[i] = NULL;
		in_code[i] = false;
		if (ips[i] == VIGIL_USER_TRUNCATED)
			continue;
		assert_int_equal(symbolizer_user_ip(f->sym, (uint32_t)getpid(), 0, ips[i], i > 0, &fr), 0);
		out[i] = fr.function;
		in_code[i] = fr.mapping != NULL;
	}
}

static size_t find(const char **v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] && strcmp(v[i], name) == 0)
			return i;
	return SIZE_MAX;
}

static size_t take(struct fixture *f, uint64_t *ips)
{
	assert_int_equal(symbolizer_note_process(f->sym, (uint32_t)getpid(), 0), 0);
	vt_outer(f->shot);
	return unwind_stack(f->u, (uint32_t)getpid(), 0, &f->shot->us, f->shot->stack, ips,
			    UNWIND_MAX_FRAMES);
}

/* Through frames without frame pointers to the start of the process, in order. */
static void test_whole_stack(void **state)
{
	struct fixture *f = *state;
	uint64_t ips[UNWIND_MAX_FRAMES];
	const char *nm[UNWIND_MAX_FRAMES];
	struct unwind_stats st;
	size_t n = take(f, ips), leaf, mid, outer, top;

	assert_true(n >= 5);
	names(f, ips, n, nm);
	for (size_t i = 0; i < n; i++)
		print_message("  #%zu %#" PRIx64 " %s\n", i, ips[i], nm[i] ? nm[i] : "?");
	assert_int_not_equal(ips[n - 1], VIGIL_USER_TRUNCATED);
	leaf = find(nm, n, "vt_leaf");
	mid = find(nm, n, "vt_mid");
	outer = find(nm, n, "vt_outer");
	top = find(nm, n, "test_whole_stack");
	assert_int_equal(leaf, 0); /* rip: just after the call to vt_capture */
	assert_int_equal(mid, 1);
	assert_int_equal(outer, 2);
	assert_int_equal(top, 3);
	/* ... and on to main and the C library's start of the process */
	assert_int_not_equal(find(nm, n, "main"), SIZE_MAX);
	assert_int_not_equal(find(nm, n, "__libc_start_main"), SIZE_MAX);
	assert_int_equal(find(nm, n, "_start"), n - 1);
	unwind_get_stats(f->u, &st);
	assert_int_equal(st.stacks, 1);
	assert_int_equal(st.truncated, 0);
	assert_int_equal(st.frames, n);
}

/*
 * vt_drap(struct shot *s) calls vt_drap_body(s) from a frame that
 * realigns its stack the way gcc does without a frame pointer (a DRAP
 * register): its CFI reads the CFA from memory (DW_CFA_def_cfa_expression
 * DW_OP_breg6 -8, DW_OP_deref), a rule of no shape steprules.h holds.
 */
void vt_drap(struct shot *s);
void vt_drap_body(struct shot *s);
__asm__(".text\n"
	".globl vt_drap\n"
	".type vt_drap, @function\n"
	"vt_drap:\n"
	".cfi_startproc\n"
	"	leaq 8(%rsp), %r10\n"
	"	.cfi_def_cfa %r10, 0\n"
	"	andq $-64, %rsp\n"
	"	pushq -8(%r10)\n"
	"	pushq %rbp\n"
	"	movq %rsp, %rbp\n"
	"	.cfi_escape 0x10, 0x06, 0x02, 0x76, 0x00\n" /* rbp: at DW_OP_breg6 0 */
	"	pushq %r10\n"
	"	.cfi_escape 0x0f, 0x03, 0x76, 0x78, 0x06\n" /* CFA: DW_OP_breg6 -8; DW_OP_deref */
	"	subq $8, %rsp\n"
	"	call vt_drap_body\n"
	"	addq $8, %rsp\n"
	"	popq %r10\n"
	"	.cfi_def_cfa %r10, 0\n"
	"	popq %rbp\n"
	"	.cfi_same_value %rbp\n"
	"	leaq -8(%r10), %rsp\n"
	"	.cfi_def_cfa %rsp, 8\n"
	"	ret\n"
	".cfi_endproc\n"
	".size vt_drap, .-vt_drap\n");

NOFP void vt_drap_body(struct shot *s)
{
	vt_outer(s);
}

/*
 * vt_sframe(struct shot *s) calls vt_drap_body(s) from a frame whose FDE
 * says it is a signal frame ('S'): libunwind then looks its caller up at
 * the return address itself, not the byte before, which a learnt rule
 * cannot say, though the rule is of the usual shape (CFA = rsp + 16).
 */
void vt_sframe(struct shot *s);
__asm__(".text\n"
	".globl vt_sframe\n"
	".type vt_sframe, @function\n"
	"vt_sframe:\n"
	".cfi_startproc\n"
	".cfi_signal_frame\n"
	"	subq $8, %rsp\n"
	"	.cfi_adjust_cfa_offset 8\n"
	"	call vt_drap_body\n"
	"	addq $8, %rsp\n"
	"	.cfi_adjust_cfa_offset -8\n"
	"	ret\n"
	".cfi_endproc\n"
	".size vt_sframe, .-vt_sframe\n");

/* A frame of 300 KiB (a CFA 300 KiB above rsp). */
NOFP static void vt_big(struct shot *s)
{
	volatile char pad[300 * 1024];

	pad[0] = 5;
	vt_outer(s);
	pad[1] = pad[0];
}

static size_t unwind_shot(struct fixture *f, uint64_t *ips)
{
	return unwind_stack(f->u, (uint32_t)getpid(), 0, &f->shot->us, f->shot->stack, ips,
			    UNWIND_MAX_FRAMES);
}

/* The shot unwound by libunwind's stepping alone gives ips[0..n) too. */
static void same_as_libunwind(struct fixture *f, const uint64_t *ips, size_t n)
{
	uint64_t slow[UNWIND_MAX_FRAMES];
	size_t m;

	unwind_use_rules(f->u, false);
	m = unwind_shot(f, slow);
	unwind_use_rules(f->u, true);
	assert_int_equal(m, n);
	assert_memory_equal(ips, slow, n * sizeof(*ips));
}

/* ips[0..n) is whole, through fn, down to main. */
static void whole_through(struct fixture *f, const uint64_t *ips, size_t n, const char *fn)
{
	const char *nm[UNWIND_MAX_FRAMES];

	names(f, ips, n, nm);
	assert_int_not_equal(find(nm, n, fn), SIZE_MAX);
	assert_int_not_equal(find(nm, n, "main"), SIZE_MAX);
	assert_int_not_equal(ips[n - 1], VIGIL_USER_TRUNCATED);
}

/*
 * The learnt rules find the very frames libunwind's own stepping finds,
 * learn each rule once, and leave a stack with a frame of another shape
 * to libunwind.
 */
static void test_rules(void **state)
{
	struct fixture *f = *state;
	uint64_t fast[UNWIND_MAX_FRAMES], again[UNWIND_MAX_FRAMES];
	struct unwind_stats st0, st1, st2;
	size_t n;

	assert_int_equal(symbolizer_note_process(f->sym, (uint32_t)getpid(), 0), 0);
	vt_outer(f->shot);
	n = unwind_shot(f, fast);
	unwind_get_stats(f->u, &st0);
	assert_int_equal(st0.fast_stacks, 1);
	assert_int_equal(st0.rules_learnt, n); /* one a frame, the outermost's (END) included */
	assert_int_equal(st0.rules_refused, 0);
	/* Again: every rule is known now. */
	assert_int_equal(unwind_shot(f, again), n);
	assert_memory_equal(fast, again, n * sizeof(*fast));
	unwind_get_stats(f->u, &st1);
	assert_int_equal(st1.fast_stacks, 2);
	assert_int_equal(st1.rules_learnt, st0.rules_learnt);
	/* libunwind stepping every frame finds the same. */
	same_as_libunwind(f, fast, n);
	assert_int_not_equal(fast[n - 1], VIGIL_USER_TRUNCATED);

	/* Through the realigned frame: libunwind takes the stack, whole. */
	vt_drap(f->shot);
	n = unwind_shot(f, fast);
	unwind_get_stats(f->u, &st2);
	assert_int_equal(st2.fast_stacks, st1.fast_stacks);
	assert_true(st2.rules_refused >= 1);
	whole_through(f, fast, n, "vt_drap");
	same_as_libunwind(f, fast, n);
}

/* Where in the shot's copy the word w lies (8-aligned): the test fails if nowhere. */
static size_t word_in_copy(const struct fixture *f, uint64_t w)
{
	for (size_t off = 0; off + 8 <= f->shot->us.len; off += 8)
		if (memcmp(f->shot->stack + off, &w, 8) == 0)
			return off;
	fail_msg("0x%" PRIx64 " is not in the copy", w);
	return 0;
}

/*
 * The memo of unwound stacks (unwmemo.h): the same sample again is
 * answered from it, the same.  A word it read changed, a new generation,
 * the maps read again: each is unwound again, and what the unwinding
 * finds is what comes back.
 */
static void test_memo(void **state)
{
	struct fixture *f = *state;
	uint64_t first[UNWIND_MAX_FRAMES], again[UNWIND_MAX_FRAMES], ra;
	struct unwind_stats st0, st1;
	size_t n, n2, off;

	assert_int_equal(symbolizer_note_process(f->sym, (uint32_t)getpid(), 0), 0);
	vt_outer(f->shot);
	n = unwind_shot(f, first);
	assert_true(n > 3);
	unwind_get_stats(f->u, &st0);
	assert_int_equal(st0.memo_hits, 0);
	assert_int_equal(unwind_shot(f, again), n);
	assert_memory_equal(first, again, n * sizeof(*first));
	unwind_get_stats(f->u, &st1);
	assert_int_equal(st1.memo_hits, 1);
	assert_int_equal(st1.fast_stacks, 2);

	/* The leaf's return address, zeroed in the copy: the stack ends there (ra 0). */
	off = word_in_copy(f, first[1]);
	memset(f->shot->stack + off, 0, 8);
	assert_int_equal(unwind_shot(f, again), 1);
	unwind_get_stats(f->u, &st0);
	assert_int_equal(st0.memo_hits, st1.memo_hits);
	/*
	 * An address in none of the maps there: not kept (whether a miss
	 * re-reads the maps depends on the sample's time, not in the key).
	 */
	ra = 0x1000;
	memcpy(f->shot->stack + off, &ra, 8);
	n2 = unwind_shot(f, again); /* the first miss may re-read the maps: the next one does not */
	assert_int_equal(unwind_shot(f, again), n2);
	assert_int_equal(unwind_shot(f, again), n2);
	unwind_get_stats(f->u, &st0);
	assert_int_equal(st0.memo_hits, st1.memo_hits);
	/* Back as it was: unwound again (the slot holds the other now), the same as first. */
	memcpy(f->shot->stack + off, &first[1], 8);
	assert_int_equal(unwind_shot(f, again), n);
	assert_memory_equal(first, again, n * sizeof(*first));
	assert_int_equal(unwind_shot(f, again), n);
	unwind_get_stats(f->u, &st1);
	assert_int_equal(st1.memo_hits, st0.memo_hits + 1);

	/* A return address further up (vt_outer's, the third word read), zeroed: ends there. */
	off = word_in_copy(f, first[3]);
	memset(f->shot->stack + off, 0, 8);
	assert_int_equal(unwind_shot(f, again), 3);
	assert_memory_equal(first, again, 3 * sizeof(*first));
	unwind_get_stats(f->u, &st0);
	assert_int_equal(st0.memo_hits, st1.memo_hits);
	memcpy(f->shot->stack + off, &first[3], 8);
	assert_int_equal(unwind_shot(f, again), n);
	assert_memory_equal(first, again, n * sizeof(*first));
	unwind_get_stats(f->u, &st1);

	/* Fewer entries asked for: not the kept stack, which has more. */
	assert_int_equal(unwind_stack(f->u, (uint32_t)getpid(), 0, &f->shot->us, f->shot->stack, again, 4), 4);
	assert_int_equal(again[3], VIGIL_USER_TRUNCATED);
	assert_memory_equal(first, again, 3 * sizeof(*first));
	unwind_get_stats(f->u, &st0);
	assert_int_equal(st0.memo_hits, st1.memo_hits);

	/* A new generation: unwound again, then kept again. */
	symbolizer_tick(f->sym);
	assert_int_equal(unwind_shot(f, again), n);
	assert_memory_equal(first, again, n * sizeof(*first));
	unwind_get_stats(f->u, &st0);
	assert_int_equal(st0.memo_hits, st1.memo_hits);

	/* The maps read again (as after an exec): unwound again. */
	symbolizer_forget_process(f->sym, (uint32_t)getpid(), 0);
	unwind_shot(f, again); /* not noted since: not from the memo, whatever libunwind finds */
	unwind_get_stats(f->u, &st1);
	assert_int_equal(st1.memo_hits, st0.memo_hits);
	assert_int_equal(symbolizer_note_process(f->sym, (uint32_t)getpid(), 0), 0);
	assert_int_equal(unwind_shot(f, again), n);
	assert_memory_equal(first, again, n * sizeof(*first));
	unwind_get_stats(f->u, &st1);
	assert_int_equal(st1.memo_hits, st0.memo_hits);
	assert_int_equal(unwind_shot(f, again), n);
	unwind_get_stats(f->u, &st1);
	assert_int_equal(st1.memo_hits, st0.memo_hits + 1);

	/* A stack longer than UNWMEMO_FRAMES: unwound each time, the same. */
	vt_deep(f->shot, UNWMEMO_FRAMES + 8);
	n = unwind_shot(f, first);
	assert_true(n > UNWMEMO_FRAMES);
	assert_int_equal(unwind_shot(f, again), n);
	assert_memory_equal(first, again, n * sizeof(*first));
	unwind_get_stats(f->u, &st0);
	assert_int_equal(st0.memo_hits, st1.memo_hits);
	assert_int_equal(st0.fast_stacks, st1.fast_stacks + 2);
}

/* A signal frame's FDE, though its rule has the usual shape: libunwind takes the stack. */
static void test_rules_signal_fde(void **state)
{
	struct fixture *f = *state;
	uint64_t fast[UNWIND_MAX_FRAMES];
	struct unwind_stats st;
	size_t n;

	assert_int_equal(symbolizer_note_process(f->sym, (uint32_t)getpid(), 0), 0);
	vt_sframe(f->shot);
	n = unwind_shot(f, fast);
	unwind_get_stats(f->u, &st);
	assert_int_equal(st.fast_stacks, 0);
	assert_int_equal(st.rules_refused, 1);
	whole_through(f, fast, n, "vt_sframe");
	same_as_libunwind(f, fast, n);
}

/*
 * A 300 KiB frame (and a copy that holds it): its rule is rsp plus
 * 300 KiB, and the stack is whole, as libunwind's stepping has it.
 */
static void test_rules_big_frame(void **state)
{
	struct fixture *f = *state;
	uint64_t fast[UNWIND_MAX_FRAMES];
	struct unwind_stats st;
	size_t n;

	assert_int_equal(symbolizer_note_process(f->sym, (uint32_t)getpid(), 0), 0);
	copy_limit = BIG_COPY;
	vt_big(f->shot);
	copy_limit = COPY;
	assert_true(f->shot->us.len > 300 * 1024);
	n = unwind_shot(f, fast);
	unwind_get_stats(f->u, &st);
	assert_int_equal(st.fast_stacks, 1);
	assert_int_equal(st.rules_refused, 0);
	whole_through(f, fast, n, "vt_big");
	same_as_libunwind(f, fast, n);
}

/* Where the copy ends, the rules stop where libunwind stops, with the marker. */
static void test_rules_short_copy(void **state)
{
	struct fixture *f = *state;
	uint64_t fast[UNWIND_MAX_FRAMES];
	struct unwind_stats st;
	uint32_t lens[] = { 16, 64, 200, 1100, 1400, 2000 };

	assert_int_equal(symbolizer_note_process(f->sym, (uint32_t)getpid(), 0), 0);
	vt_outer(f->shot);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t n;

		f->shot->us.len = lens[i];
		n = unwind_shot(f, fast);
		same_as_libunwind(f, fast, n);
		assert_int_equal(fast[n - 1], VIGIL_USER_TRUNCATED);
	}
	unwind_get_stats(f->u, &st);
	assert_int_equal(st.fast_stacks, 6);
}

/* A copy too short for the frames: what was found, then one marker, nothing made up. */
static void test_short_copy(void **state)
{
	struct fixture *f = *state;
	uint64_t ips[UNWIND_MAX_FRAMES];
	const char *nm[UNWIND_MAX_FRAMES];
	struct unwind_stats st;
	size_t n;

	assert_int_equal(symbolizer_note_process(f->sym, (uint32_t)getpid(), 0), 0);
	vt_outer(f->shot);
	f->shot->us.len = 64; /* vt_leaf's own frame, not its caller's */
	n = unwind_stack(f->u, (uint32_t)getpid(), 0, &f->shot->us, f->shot->stack, ips,
			 UNWIND_MAX_FRAMES);
	names(f, ips, n, nm);
	assert_true(n >= 2 && n <= 3);
	assert_int_equal(ips[n - 1], VIGIL_USER_TRUNCATED);
	assert_string_equal(nm[0], "vt_leaf");
	for (size_t i = 0; i + 1 < n; i++)
		assert_true(in_code[i]); /* every frame shown is real code */
	unwind_get_stats(f->u, &st);
	assert_int_equal(st.truncated, 1);
}

/* No stack at all: the sampled pc, and the marker. */
static void test_no_copy(void **state)
{
	struct fixture *f = *state;
	uint64_t ips[UNWIND_MAX_FRAMES];
	struct unwind_stats st;
	size_t n;

	assert_int_equal(symbolizer_note_process(f->sym, (uint32_t)getpid(), 0), 0);
	vt_outer(f->shot);
	f->shot->us.len = 0;
	n = unwind_stack(f->u, (uint32_t)getpid(), 0, &f->shot->us, NULL, ips, UNWIND_MAX_FRAMES);
	assert_int_equal(n, 2);
	assert_int_equal(ips[0], f->shot->us.regs[VIGIL_UREG_RIP]);
	assert_int_equal(ips[1], VIGIL_USER_TRUNCATED);
	unwind_get_stats(f->u, &st);
	assert_int_equal(st.no_copy, 1);
}

/*
 * Hostile registers and stack: a pc outside any code, a stack pointer
 * nowhere near the copy, a stack of return addresses that point at data.
 * Whatever comes back holds no frame outside the process's code but the
 * sampled pc, and ends with the marker; nothing crashes (ASan watches).
 */
static void test_garbage(void **state)
{
	struct fixture *f = *state;
	uint64_t ips[UNWIND_MAX_FRAMES];
	const char *nm[UNWIND_MAX_FRAMES];
	static const char data[64] = "not code";
	size_t n;

	assert_int_equal(symbolizer_note_process(f->sym, (uint32_t)getpid(), 0), 0);
	vt_outer(f->shot);
	/*
	 * 1: pc in no mapping.  libunwind's fallback may still find the
	 * real return address at the stack pointer; whatever it finds is
	 * code, and the stack ends with the marker.
	 */
	f->shot->us.regs[VIGIL_UREG_RIP] = 0x1234;
	n = unwind_stack(f->u, (uint32_t)getpid(), 0, &f->shot->us, f->shot->stack, ips,
			 UNWIND_MAX_FRAMES);
	names(f, ips, n, nm);
	assert_true(n >= 2 && ips[n - 1] == VIGIL_USER_TRUNCATED);
	assert_int_equal(ips[0], 0x1234);
	for (size_t i = 1; i + 1 < n; i++)
		assert_true(in_code[i]);

	/* 2: a real pc, a stack of pointers to data, rsp and rbp into it */
	vt_outer(f->shot);
	for (size_t i = 0; i < f->shot->us.len / 8; i++) {
		uint64_t v = (uint64_t)(uintptr_t)data;

		memcpy(f->shot->stack + 8 * i, &v, 8);
	}
	f->shot->us.regs[VIGIL_UREG_RBP] = f->shot->us.regs[VIGIL_UREG_RSP] + 64;
	n = unwind_stack(f->u, (uint32_t)getpid(), 0, &f->shot->us, f->shot->stack, ips,
			 UNWIND_MAX_FRAMES);
	names(f, ips, n, nm);
	assert_true(n >= 2);
	assert_int_equal(ips[n - 1], VIGIL_USER_TRUNCATED);
	for (size_t i = 0; i + 1 < n; i++)
		assert_true(in_code[i]);

	/* 3: a process never noted: nothing to unwind with */
	vt_outer(f->shot);
	n = unwind_stack(f->u, 0x7ffffff0, 0, &f->shot->us, f->shot->stack, ips, UNWIND_MAX_FRAMES);
	assert_int_equal(n, 2);
	assert_int_equal(ips[1], VIGIL_USER_TRUNCATED);
}

/* At most max entries, the marker counted, however deep the stack. */
static void test_max_frames(void **state)
{
	struct fixture *f = *state;
	uint64_t ips[4];
	size_t n;

	assert_int_equal(symbolizer_note_process(f->sym, (uint32_t)getpid(), 0), 0);
	vt_outer(f->shot);
	n = unwind_stack(f->u, (uint32_t)getpid(), 0, &f->shot->us, f->shot->stack, ips, 4);
	assert_int_equal(n, 4);
	assert_int_equal(ips[3], VIGIL_USER_TRUNCATED);
	assert_int_equal(unwind_stack(f->u, (uint32_t)getpid(), 0, &f->shot->us, f->shot->stack, ips, 1), 0);
}

/* The CFI copied out of a real file: the table where the header says, within the file. */
static void test_cfi_of_libc(void **state)
{
	struct elfsym *e = NULL;
	struct cfi *c = NULL;
	int fd = open("/lib/x86_64-linux-gnu/libc.so.6", O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(elfsym_open_fd(fd, &e), 0);
	assert_int_equal(cfi_read_fd(fd, e, &c), 0);
	assert_true(c->fde_count > 1000);
	assert_int_equal(c->hdr_len, 12 + 8 * (size_t)c->fde_count);
	assert_true(c->ehf_vaddr > c->hdr_vaddr);
	assert_true(cfi_mem_usage(c) > c->hdr_len + c->ehf_len);
	cfi_drop_bytes(c);
	assert_null(c->hdr);
	assert_int_equal(cfi_reload_fd(c, fd), 0);
	assert_non_null(c->hdr);
	cfi_free(c);
	elfsym_free(e);
	close(fd);
}

/*
 * Learnt rules are keyed by a CFI's id (steprules.h): a new one for every
 * read, clone and reload of the bytes, so that no rule outlives them.
 */
static void test_cfi_ids(void **state)
{
	struct elfsym *e = NULL;
	struct cfi *a = NULL, *b = NULL, *c;
	uint64_t id;
	int fd = open("/lib/x86_64-linux-gnu/libc.so.6", O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(elfsym_open_fd(fd, &e), 0);
	assert_int_equal(cfi_read_fd(fd, e, &a), 0);
	assert_int_equal(cfi_read_fd(fd, e, &b), 0);
	assert_int_not_equal(a->id, 0);
	assert_int_not_equal(b->id, a->id);
	c = cfi_clone_empty(a);
	assert_non_null(c);
	assert_int_not_equal(c->id, a->id);
	assert_int_not_equal(c->id, b->id);
	id = c->id;
	assert_int_equal(cfi_reload_fd(c, fd), 0);
	assert_int_not_equal(c->id, id);
	id = a->id;
	cfi_drop_bytes(a);
	assert_int_equal(cfi_reload_fd(a, fd), 0);
	assert_int_not_equal(a->id, id);
	cfi_free(a);
	cfi_free(b);
	cfi_free(c);
	elfsym_free(e);
	close(fd);
}

/* A header that is not version 1, or lies about its table, is refused. */
static void test_cfi_hostile(void **state)
{
	struct elfsym *e = NULL;
	struct cfi *c = NULL;
	uint64_t off, vaddr, size;
	size_t len;
	uint8_t *img;
	int fd = open("/lib/x86_64-linux-gnu/libc.so.6", O_RDONLY | O_CLOEXEC);
	off_t end;

	assert_true(fd >= 0);
	end = lseek(fd, 0, SEEK_END);
	assert_true(end > 0);
	len = (size_t)end;
	img = malloc(len);
	assert_non_null(img);
	assert_int_equal(pread(fd, img, len, 0), (ssize_t)len);
	close(fd);
	assert_int_equal(elfsym_open_mem(img, len, &e), 0);
	assert_int_equal(elfsym_eh_frame_hdr(e, &off, &vaddr, &size), 0);
	assert_int_equal(cfi_read_mem(img, len, e, &c), 0);
	cfi_free(c);

	img[off] = 2; /* version */
	assert_int_equal(cfi_read_mem(img, len, e, &c), -ENOTSUP);
	img[off] = 1;
	img[off + 3] = 0x03; /* a table encoding libunwind's search cannot read */
	assert_int_equal(cfi_read_mem(img, len, e, &c), -ENOTSUP);
	img[off + 3] = 0x3b;
	/* more entries than the segment holds */
	img[off + 8] = 0xff;
	img[off + 9] = 0xff;
	img[off + 10] = 0xff;
	img[off + 11] = 0x7f;
	assert_int_equal(cfi_read_mem(img, len, e, &c), -EINVAL);
	/* and no table at all */
	memset(img + off + 8, 0, 4);
	assert_int_equal(cfi_read_mem(img, len, e, &c), -ENOENT);
	elfsym_free(e);
	free(img);
}

/* A copy of libc in a new directory of /tmp, mode 0644, open read-write, its headers parsed. */
struct libc_file {
	char dir[64], path[96];
	int fd;
	struct elfsym *e;
};

static void libc_copy(struct libc_file *lf)
{
	int in = open("/lib/x86_64-linux-gnu/libc.so.6", O_RDONLY | O_CLOEXEC);
	char buf[65536];
	ssize_t n;

	assert_true(in >= 0);
	strcpy(lf->dir, "/tmp/vigil-cfi.XXXXXX");
	assert_non_null(mkdtemp(lf->dir));
	snprintf(lf->path, sizeof(lf->path), "%s/libc.so.6", lf->dir);
	lf->fd = open(lf->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(lf->fd >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(lf->fd, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	close(in);
	assert_int_equal(fchmod(lf->fd, 0644), 0);
	lf->e = NULL;
	assert_int_equal(elfsym_open_fd(lf->fd, &lf->e), 0);
}

static void libc_copy_remove(struct libc_file *lf)
{
	elfsym_free(lf->e);
	close(lf->fd);
	unlink(lf->path);
	rmdir(lf->dir);
}

/*
 * Why a file in /tmp could not be mapped here, asked apart from cfi.c:
 * NULL when it can (root runs the test, /tmp is ext4, XFS, btrfs or tmpfs
 * mounted without nosuid and nodev).
 */
static const char *no_mapping_here(void)
{
	struct statfs sf;

	if (geteuid() != 0)
		return "the test's copy of libc is root's only when the test runs as root";
	if (statfs("/tmp", &sf) < 0)
		return "statfs(/tmp) failed";
	if (sf.f_flags & (ST_NOSUID | ST_NODEV))
		return "/tmp is mounted nosuid or nodev: cfi.c copies what lies there";
	switch ((unsigned long)sf.f_type) {
	case EXT4_SUPER_MAGIC:
	case XFS_SUPER_MAGIC:
	case BTRFS_SUPER_MAGIC:
	case TMPFS_MAGIC:
		return NULL;
	default:
		return "/tmp is not on ext4, XFS, btrfs or tmpfs: cfi.c copies what lies there";
	}
}

/* A copy whose CFI cfi.c maps, with the guard on (cmocka set its own SIGBUS handler). */
static void mapped_copy(struct libc_file *lf)
{
	const char *why = no_mapping_here();

	if (why)
		skip_because("%s", why);
	assert_int_equal(mapguard_install(), 0);
	libc_copy(lf);
}

/* Lines of /proc/self/maps that name path. */
static int mappings_of(const char *path)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, path))
			n++;
	fclose(f);
	return n;
}

/* c's bytes are the file's, as pread reads them. */
static void same_as_file(int fd, const struct cfi *c)
{
	uint8_t *h = malloc(c->hdr_len), *f = malloc(c->ehf_len);

	assert_non_null(h);
	assert_non_null(f);
	assert_int_equal(pread(fd, h, c->hdr_len, (off_t)c->hdr_offset), (ssize_t)c->hdr_len);
	assert_int_equal(pread(fd, f, c->ehf_len, (off_t)c->ehf_offset), (ssize_t)c->ehf_len);
	assert_memory_equal(h, c->hdr, c->hdr_len);
	assert_memory_equal(f, c->ehf, c->ehf_len);
	free(h);
	free(f);
}

/*
 * A file only root can change is mapped, not copied (the same bytes);
 * one that group or others may write, or that is not root's, is copied.
 */
static void test_cfi_mapped(void **state)
{
	struct libc_file lf;
	struct cfi *c = NULL;
	int fd;

	mapped_copy(&lf);
	fd = lf.fd;

	assert_int_equal(cfi_read_fd(fd, lf.e, &c), 0);
	assert_true(c->mapped);
	assert_int_equal(cfi_mapped_bytes(c), c->hdr_len + c->ehf_len);
	assert_int_equal(mappings_of(lf.path), 2);
	same_as_file(fd, c);
	cfi_drop_bytes(c);
	assert_int_equal(mappings_of(lf.path), 0);
	assert_int_equal(cfi_reload_fd(c, fd), 0);
	assert_true(c->mapped);
	assert_int_equal(mappings_of(lf.path), 2);
	same_as_file(fd, c);
	cfi_free(c);
	assert_int_equal(mappings_of(lf.path), 0);

	assert_int_equal(fchmod(fd, 0664), 0);
	assert_int_equal(cfi_read_fd(fd, lf.e, &c), 0);
	assert_false(c->mapped);
	assert_int_equal(cfi_mapped_bytes(c), 0);
	same_as_file(fd, c);
	cfi_free(c);
	assert_int_equal(fchmod(fd, 0644), 0);

	assert_int_equal(fchown(fd, 65534, (gid_t)-1), 0);
	assert_int_equal(cfi_read_fd(fd, lf.e, &c), 0);
	assert_false(c->mapped);
	same_as_file(fd, c);
	cfi_free(c);

	libc_copy_remove(&lf);
}

/*
 * Root truncates a file whose CFI is mapped (cp over a library in use):
 * its pages read zeros, counted, and the process lives on.
 */
static void test_cfi_truncated(void **state)
{
	struct libc_file lf;
	struct cfi *c = NULL;
	uint64_t before = mapguard_faults();
	volatile uint8_t *p;

	mapped_copy(&lf);
	assert_int_equal(cfi_read_fd(lf.fd, lf.e, &c), 0);
	assert_true(c->mapped);
	assert_int_equal(ftruncate(lf.fd, 0), 0);
	p = c->ehf;
	assert_int_equal(p[c->ehf_len - 1], 0);
	p = c->hdr;
	assert_int_equal(p[c->hdr_len / 2], 0);
	assert_true(mapguard_faults() >= before + 2);
	cfi_free(c);
	libc_copy_remove(&lf);
}

/*
 * Under the collector's own seccomp filter: a fault in a guarded range is
 * survived (its page reads zeros), and a SIGBUS outside the guarded
 * ranges is not taken for one of ours: it kills, by SIGBUS and not by
 * SIGSYS (the handler restores SIGBUS's default, which the filter allows).
 */
static void test_sigbus_under_filter(void **state)
{
	struct libc_file lf;
	int fd, status;
	pid_t pid;

	mapped_copy(&lf);
	fd = lf.fd;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct cfi *c = NULL;
		volatile uint8_t *m;

		if (cfi_read_fd(fd, lf.e, &c) < 0 || !c->mapped)
			_exit(3);
		m = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
		/* Truncated first (the filter has no ftruncate); the pages fault when read. */
		if (m == MAP_FAILED || ftruncate(fd, 0) < 0 || sandbox_seccomp(SANDBOX_COLLECTOR) < 0)
			_exit(2);
		if (((volatile uint8_t *)c->ehf)[c->ehf_len - 1] != 0 || mapguard_faults() == 0)
			_exit(4);
		(void)m[4096]; /* not guarded: dies here */
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status))
		fail_msg("the child exited %d (2: set-up, 3: not mapped, 4: the guarded read)",
			 WEXITSTATUS(status));
	assert_int_equal(WTERMSIG(status), SIGBUS);
	libc_copy_remove(&lf);
}

int main(void)
{
	/*
	 * As the collector does: root's files' CFI is mapped (cfi.h).  cmocka
	 * sets its own SIGBUS handler around each test: the tests that fault
	 * install the guard's again.
	 */
	assert_int_equal(mapguard_install(), 0);

	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_whole_stack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rules_signal_fde, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rules_big_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rules_short_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_frames, setup, teardown),
		cmocka_unit_test(test_cfi_of_libc),
		cmocka_unit_test(test_cfi_ids),
		cmocka_unit_test(test_cfi_hostile),
		cmocka_unit_test(test_cfi_mapped),
		cmocka_unit_test(test_cfi_truncated),
		cmocka_unit_test(test_sigbus_under_filter),
	};
	return cmocka_run_group_tests_name("unwind", tests, NULL, NULL);
}
