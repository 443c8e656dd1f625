/*
 * unwind.c - unwind copied user stacks with libunwind's remote API
 * (unwind.h).  Runs in the collector, without privileges.
 *
 * libunwind asks for everything through accessors: registers (the copied
 * ones), memory (the copied stack, and the CFI bytes of the module last
 * looked up), and unwind info for an address (found here from the
 * process's maps and the file's .eh_frame_hdr, then searched by
 * libunwind's dwarf_search_unwind_table, as perf does).
 *
 * Most stacks do not go through libunwind's stepping at all: each frame's
 * rule, learnt once per file and address from libunwind (learn(), below;
 * steprules.h), is applied here, a few additions and one or two reads of
 * the copy.  A stack with a frame whose rule is of another shape goes to
 * libunwind whole, from the start.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libunwind.h>

#include "cfi.h"
#include "steprules.h"
#include "symbolizer.h"
#include "unwind.h"
#include "unwmemo.h"

/* Exported by libunwind, not declared by its headers (perf declares it too). */
extern int UNW_OBJ(dwarf_search_unwind_table)(unw_addr_space_t as, unw_word_t ip,
					       unw_dyn_info_t *di, unw_proc_info_t *pi,
					       int need_unwind_info, void *arg);

#define HDR_HEAD 12 /* cfi.h: the table starts 12 bytes into .eh_frame_hdr */

/* Set while unwind_stack() runs (unwind.h, unwind_active). */
static _Thread_local bool in_unwind;

bool unwind_active(void)
{
	return in_unwind;
}

struct space {
	unw_addr_space_t as;
	uint32_t pid;
	uint64_t start_ns;
	uint64_t last_used;
};

/* What the accessors see while one stack is unwound. */
struct sample {
	struct unwind *u;
	uint32_t pid;
	uint64_t start_ns;
	const struct vigil_ustack *us;
	const uint8_t *stack;
	uint64_t sp, len;
	/* the module of the last find_proc_info: its CFI's runtime ranges */
	const struct cfi *cfi;
	uint64_t hdr_lo, ehf_lo, bias;
	/*
	 * The executable mapping last found, [code_lo, code_hi): a stack's
	 * frames mostly lie in one or two modules, and the maps do not change
	 * while one stack is unwound, so is_code() asks the symbolizer again
	 * only for an address outside it.
	 */
	uint64_t code_lo, code_hi;
	/* Likewise for rule_for(): the module last found with CFI (none: an empty range). */
	struct sym_unwind_map mod;
	/*
	 * learn(): registers and memory are made up (probe_regs, and the
	 * window PROBE_LO.. read as enc()), the CFI is the module's own;
	 * fde_found says whether libunwind's step had an FDE to go by,
	 * window_reads counts the words it read in the window, and with
	 * probe_next set find_proc_info() only notes the address libunwind
	 * looks up (looked_up) and finds nothing.
	 */
	bool probe, fde_found, probe_next;
	const uint64_t *probe_regs;
	unsigned window_reads;
	uint64_t looked_up;
	/* unwind_fast(): the copy's words it reads, for the memo (NULL: not recorded) */
	struct unwmemo_rec *rec;
	bool unmapped; /* is_code() met an address in none of the maps: not kept in the memo */
};

struct unwind {
	struct symbolizer *sym;
	struct space spaces[UNWIND_MAX_SPACES];
	size_t nspaces;
	uint64_t clock;
	struct steprules *rules;
	struct unwmemo *memo; /* stacks unwound by the rules, kept (unwmemo.h) */
	unw_addr_space_t probe_as; /* learn()'s: its cache emptied for each address learnt */
	bool use_rules;
	struct unwind_stats st;
};

/*
 * learn()'s made-up registers and stack: a window of addresses no process
 * can map (non-canonical on x86-64), where each word reads as enc(its
 * address), a value that dec() maps back and that an addition or a mask
 * does not leave decodable.  Two register sets: the second moves rsp,
 * rbp and every other register by a different amount, none of them a
 * multiple of 16 (so that a mask shows), the others 2^40 away.
 */
#define PROBE_LO   0x1000000000000000ull
#define PROBE_LEN  0x100000ull
#define PROBE_SP   (PROBE_LO + 0x10008)
#define PROBE_BP   (PROBE_LO + 0x90008)
#define PROBE_DSP  0x1018
#define PROBE_DBP  0x2028
#define PROBE_DREG 0x3038
#define PROBE_REG  0x2000000000000000ull /* register i: PROBE_REG + i * 2^40 */
#define PROBE_ENC  0x5a5a000000000000ull
#define PROBE_MUL  0x9e3779b97f4a7c15ull /* odd: invertible modulo 2^64 */
#define PROBE_INV  0xf1de83e19937733dull /* PROBE_MUL * PROBE_INV == 1 */

static uint64_t enc(uint64_t addr)
{
	return (addr * PROBE_MUL) ^ PROBE_ENC;
}

/* The address whose word was read as v, if v is such a word. */
static bool dec(uint64_t v, uint64_t *addr)
{
	*addr = (v ^ PROBE_ENC) * PROBE_INV;
	return *addr - PROBE_LO < PROBE_LEN;
}

/*
 * Copy the 8 bytes at addr from [lo, lo + len) of buf: bytes of the word
 * outside the region read as 0 (libunwind reads whole aligned words, and
 * a table's last entry may end mid-word).  false if no byte is inside.
 */
static bool read_word(const uint8_t *buf, uint64_t lo, uint64_t len, uint64_t addr,
		      unw_word_t *ret)
{
	uint8_t w[8] = { 0 };

	if (!buf || addr < lo - 7 || addr >= lo + len || addr > UINT64_MAX - 8 || lo < 8)
		return false;
	if (addr >= lo && len - (addr - lo) >= 8) {
		memcpy(ret, buf + (addr - lo), 8);
		return true;
	}
	for (unsigned i = 0; i < 8; i++)
		if (addr + i >= lo && addr + i < lo + len)
			w[i] = buf[addr + i - lo];
	memcpy(ret, w, sizeof(w));
	return true;
}

static void use_map(struct sample *s, const struct sym_unwind_map *m)
{
	s->cfi = m->cfi;
	s->bias = m->bias;
	s->hdr_lo = m->bias + m->cfi->hdr_vaddr;
	s->ehf_lo = m->bias + m->cfi->ehf_vaddr;
}

static bool read_cfi(const struct sample *s, uint64_t addr, unw_word_t *valp)
{
	return s->cfi && (read_word(s->cfi->hdr, s->hdr_lo, s->cfi->hdr_len, addr, valp) ||
			  read_word(s->cfi->ehf, s->ehf_lo, s->cfi->ehf_len, addr, valp));
}

/* The word at addr, if the copy holds all of it: a partial one would be made up. */
static bool stack_word(const struct sample *s, uint64_t addr, uint64_t *ret)
{
	if (addr < s->sp || addr - s->sp > s->len || s->len - (addr - s->sp) < 8)
		return false;
	memcpy(ret, s->stack + (addr - s->sp), 8);
	return true;
}

/* stack_word() for unwind_fast(): what it read is noted for the memo. */
static bool fast_word(const struct sample *s, uint64_t addr, uint64_t *ret)
{
	if (!stack_word(s, addr, ret))
		return false;
	if (s->rec)
		unwmemo_note(s->rec, addr - s->sp, *ret);
	return true;
}

static int access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *valp, int write, void *arg)
{
	struct sample *s = arg;
	struct sym_unwind_map m;

	if (write)
		return -UNW_EINVAL;
	if (s->probe && addr - PROBE_LO < PROBE_LEN) {
		*valp = enc(addr);
		s->window_reads++;
		return 0;
	}
	if (stack_word(s, addr, valp) || read_cfi(s, addr, valp))
		return 0;
	/*
	 * Rules cached by address (libunwind's cache) skip find_proc_info,
	 * but a CFA expression is still read where it lies in .eh_frame (the
	 * PLT's, a signal frame's): find the module whose CFI holds addr.
	 */
	if (symbolizer_unwind_data(s->u->sym, s->pid, s->start_ns, addr, &m) == 0) {
		use_map(s, &m);
		if (read_cfi(s, addr, valp))
			return 0;
	}
	/*
	 * The module's other bytes read as 0.  What libunwind reads there is
	 * the personality routine's GOT entry, which the CIE of C++ code
	 * names indirectly (DW_EH_PE_indirect): it parses it along with the
	 * FDE, and never uses it to find a frame.  Failing the read would
	 * fail the whole FDE.
	 */
	for (size_t i = 0; s->cfi && i < s->cfi->nsegs; i++) {
		const struct cfi_seg *sg = &s->cfi->segs[i];

		if (addr - (s->bias + sg->vaddr) < sg->filesz) {
			*valp = 0;
			return 0;
		}
	}
	return -UNW_EINVAL;
}

static int access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *valp, int write, void *arg)
{
	struct sample *s = arg;

	if (write)
		return -UNW_EINVAL;
	if (reg < 0 || reg >= VIGIL_UREGS)
		return -UNW_EBADREG;
	*valp = s->probe ? s->probe_regs[reg] : s->us->regs[reg];
	return 0;
}

static int access_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val, int write, void *arg)
{
	return -UNW_EBADREG;
}

static int find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi,
			  int need_unwind_info, void *arg)
{
	struct sample *s = arg;
	struct sym_unwind_map m;
	unw_dyn_info_t di;
	int r;

	s->cfi = NULL;
	if (s->probe_next) {
		s->looked_up = ip;
		return -UNW_ENOINFO;
	}
	s->u->st.rule_misses++;
	if (symbolizer_unwind_map(s->u->sym, s->pid, s->start_ns, ip, &m) < 0)
		return -UNW_ENOINFO;
	use_map(s, &m);
	s->code_lo = m.start;
	s->code_hi = m.end;
	memset(&di, 0, sizeof(di));
	di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
	di.start_ip = m.start;
	di.end_ip = m.end;
	di.u.rti.segbase = s->hdr_lo;
	di.u.rti.table_data = s->hdr_lo + HDR_HEAD;
	di.u.rti.table_len = (unw_word_t)m.cfi->fde_count * 8 / sizeof(unw_word_t);
	r = UNW_OBJ(dwarf_search_unwind_table)(as, ip, &di, pi, need_unwind_info, arg);
	s->fde_found = r == 0;
	return r;
}

static void put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg)
{
}

static int get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *dilap, void *arg)
{
	return -UNW_ENOINFO;
}

static int resume(unw_addr_space_t as, unw_cursor_t *c, void *arg)
{
	return -UNW_EINVAL;
}

static int get_proc_name(unw_addr_space_t as, unw_word_t addr, char *buf, size_t len,
			 unw_word_t *offp, void *arg)
{
	return -UNW_ENOINFO;
}

static unw_accessors_t accessors = {
	.find_proc_info = find_proc_info,
	.put_unwind_info = put_unwind_info,
	.get_dyn_info_list_addr = get_dyn_info_list_addr,
	.access_mem = access_mem,
	.access_reg = access_reg,
	.access_fpreg = access_fpreg,
	.resume = resume,
	.get_proc_name = get_proc_name,
};

int unwind_new(struct symbolizer *sym, struct unwind **ret)
{
	struct unwind *u;

	if (!sym || !ret)
		return -EINVAL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->sym = sym;
	/*
	 * libunwind initializes itself on first use, and opens a pipe then
	 * (for its local unwinding's memory checks): make that happen now,
	 * before the collector's sandbox, which forbids pipe2.
	 */
	u->spaces[0].as = unw_create_addr_space(&accessors, 0);
	u->probe_as = unw_create_addr_space(&accessors, 0);
	u->rules = steprules_new();
	u->memo = unwmemo_new();
	if (!u->spaces[0].as || !u->probe_as || !u->rules || !u->memo) {
		unwind_free(u);
		return -ENOMEM;
	}
	unw_set_caching_policy(u->spaces[0].as, UNW_CACHE_GLOBAL);
	unw_set_caching_policy(u->probe_as, UNW_CACHE_GLOBAL);
	u->nspaces = 1;
	u->use_rules = true;
	*ret = u;
	return 0;
}

void unwind_use_rules(struct unwind *u, bool on)
{
	if (u)
		u->use_rules = on;
}

/* The address space of (pid, start_ns), made (or recycled, LRU) if needed. */
static unw_addr_space_t space_get(struct unwind *u, uint32_t pid, uint64_t start_ns)
{
	struct space *sp = NULL;

	for (size_t i = 0; i < u->nspaces; i++) {
		if (u->spaces[i].pid == pid && u->spaces[i].start_ns == start_ns) {
			u->spaces[i].last_used = ++u->clock;
			return u->spaces[i].as;
		}
	}
	if (u->nspaces < UNWIND_MAX_SPACES) {
		sp = &u->spaces[u->nspaces];
		sp->as = unw_create_addr_space(&accessors, 0);
		if (!sp->as)
			return NULL;
		/*
		 * A cache per process: libunwind keys its rules by address
		 * only, and two processes may run different code at one
		 * address (non-PIE binaries all load at 0x400000).  It holds
		 * 128 rules: Debian's libunwind 1.6.2 keeps that size when
		 * unw_set_cache_size() is called on a new address space
		 * (its first flush falls back to the built-in arrays), and the
		 * rules of steprules.h stand in front of it anyway.
		 */
		unw_set_caching_policy(sp->as, UNW_CACHE_GLOBAL);
		u->nspaces++;
	} else {
		sp = &u->spaces[0];
		for (size_t i = 1; i < u->nspaces; i++)
			if (u->spaces[i].last_used < sp->last_used)
				sp = &u->spaces[i];
		unw_flush_cache(sp->as, 0, 0);
		u->st.spaces_evicted++;
	}
	sp->pid = pid;
	sp->start_ns = start_ns;
	sp->last_used = ++u->clock;
	return sp->as;
}

/* Whether ip (a return address: ip - 1 is the call) lies in executable memory of the process. */
static bool is_code(struct sample *s, uint64_t ip)
{
	struct sym_unwind_map m;
	int r;

	if (ip - 1 - s->code_lo < s->code_hi - s->code_lo)
		return true;
	r = symbolizer_unwind_map(s->u->sym, s->pid, s->start_ns, ip - 1, &m);
	if (r == 0) {
		s->code_lo = m.start;
		s->code_hi = m.end;
		s->mod = m; /* rule_for() looks ip - 1 up next: one lookup for both */
	}
	if (r == -ENOENT)
		s->unmapped = true; /* whether it re-read the maps depended on the sample's time */
	return r == 0 || r == -ENODATA;
}

/* What libunwind's step from one made-up register set gave back (learn()). */
struct probed {
	bool ok, end;
	uint64_t sp, bp;       /* the registers given */
	uint64_t cfa, ip, rbp; /* and what came back */
	unsigned reads;        /* words read in the window during the step */
	bool exact_next;       /* the caller is looked up at its own address (a signal frame's) */
};

static void probe(struct unwind *u, const struct sample *s, uint64_t addr, unsigned variant,
		  struct probed *ret)
{
	uint64_t regs[VIGIL_UREGS];
	struct sample p = { .u = u, .pid = s->pid, .start_ns = s->start_ns, .probe = true,
			    .probe_regs = regs };
	unw_cursor_t cur;
	unw_word_t cfa, ip, bp;
	int r;

	*ret = (struct probed){ 0 };
	for (int i = 0; i < VIGIL_UREGS; i++)
		regs[i] = PROBE_REG + ((uint64_t)i << 40) + variant * PROBE_DREG;
	regs[VIGIL_UREG_RIP] = addr;
	regs[VIGIL_UREG_RSP] = ret->sp = PROBE_SP + variant * PROBE_DSP;
	regs[VIGIL_UREG_RBP] = ret->bp = PROBE_BP + variant * PROBE_DBP;
	if (unw_init_remote(&cur, u->probe_as, &p) < 0)
		return;
	r = unw_step(&cur);
	ret->reads = p.window_reads;
	/*
	 * Without an FDE libunwind guesses (frame pointer, PLT): no rule in
	 * that.  The second step at addr takes the rule the first one left
	 * in the cache, from the same FDE.
	 */
	if (r < 0 || (!p.fde_found && variant == 0) || unw_get_reg(&cur, UNW_REG_SP, &cfa) < 0)
		return;
	ret->cfa = cfa;
	if (r == 0) {
		ret->ok = ret->end = true;
		return;
	}
	if (unw_get_reg(&cur, UNW_REG_IP, &ip) < 0 || unw_get_reg(&cur, UNW_X86_64_RBP, &bp) < 0)
		return;
	ret->ip = ip;
	ret->rbp = bp;
	/*
	 * After a signal frame (an FDE with 'S') libunwind looks the caller
	 * up at its own address, not the one before: one more step shows
	 * which (find_proc_info() notes it and finds nothing).
	 */
	p.probe_next = true;
	p.looked_up = 0;
	(void)unw_step(&cur);
	if (p.looked_up != ip && p.looked_up != ip - 1)
		return;
	ret->exact_next = p.looked_up == ip;
	ret->ok = true;
}

/*
 * The rule libunwind applies at addr (a lookup address: the sampled pc
 * itself, or a return address minus one, which is what libunwind looks
 * up for a caller).  libunwind steps from addr twice, over the made-up
 * registers and stacks above, so that every value it gives back says
 * where it came from: the CFA moved as rsp moved or as rbp moved (and
 * lies that far above it), the return address and rbp were read at the
 * same distance from the CFA both times, or rbp came back untouched, and
 * the step read no other word.  Anything else (a CFA read from memory,
 * as signal frames and realigned stacks have it; a mask; another
 * register; a value computed from a word read; a signal frame's FDE; no
 * FDE, where libunwind guesses) is STEPRULE_NONE.  The outermost frame
 * (STEPRULE_END) is taken only where its CFA is rsp plus a constant and
 * the step read nothing, as at _start: libunwind would read nothing there
 * either, so it cannot fail where the rule says the stack is whole.
 */
static void learn(struct unwind *u, const struct sample *s, uint64_t addr, struct steprule *ret)
{
	struct probed a, b;
	uint64_t ra_a, ra_b, bp_a, bp_b;
	int64_t off, ra_off, bp_off = 0;
	bool bp_saved;
	int reg;

	*ret = (struct steprule){ .kind = STEPRULE_NONE };
	u->st.rules_learnt++;
	/*
	 * libunwind's cache keys rules by address alone, and another process
	 * may have other code at addr: it starts empty for each address
	 * learnt, and serves only the second step.
	 */
	unw_flush_cache(u->probe_as, 0, 0);
	probe(u, s, addr, 0, &a);
	probe(u, s, addr, 1, &b);
	if (!a.ok || !b.ok || a.end != b.end || a.reads != b.reads)
		goto refused;
	if (a.end) {
		if (a.reads != 0 || b.cfa - a.cfa != PROBE_DSP)
			goto refused;
		ret->kind = STEPRULE_END;
		return;
	}
	if (a.exact_next || b.exact_next)
		goto refused;
	if (b.cfa - a.cfa == PROBE_DSP) {
		reg = STEPRULE_SP;
		off = (int64_t)(a.cfa - a.sp);
	} else if (b.cfa - a.cfa == PROBE_DBP) {
		reg = STEPRULE_BP;
		off = (int64_t)(a.cfa - a.bp);
	} else {
		goto refused;
	}
	/* The return address: the one word the step read, at one distance from the CFA. */
	if (a.reads != 1 || !dec(a.ip, &ra_a) || !dec(b.ip, &ra_b) || ra_a - a.cfa != ra_b - b.cfa)
		goto refused;
	ra_off = (int64_t)(ra_a - a.cfa);
	if (a.rbp == a.bp && b.rbp == b.bp) {
		bp_saved = false;
	} else if (dec(a.rbp, &bp_a) && dec(b.rbp, &bp_b) && bp_a - a.cfa == bp_b - b.cfa) {
		bp_saved = true;
		bp_off = (int64_t)(bp_a - a.cfa);
	} else {
		goto refused;
	}
	if (off < INT32_MIN || off > INT32_MAX || ra_off < INT16_MIN || ra_off > INT16_MAX ||
	    bp_off < INT16_MIN || bp_off > INT16_MAX)
		goto refused;
	*ret = (struct steprule){ .kind = STEPRULE_STEP, .cfa_reg = (uint8_t)reg, .bp_saved = bp_saved,
				  .cfa_off = (int32_t)off, .ra_off = (int16_t)ra_off,
				  .bp_off = (int16_t)bp_off };
	return;
refused:
	u->st.rules_refused++;
}

/* The rule at addr (a lookup address), learnt now if need be; false if its module has no CFI. */
static bool rule_for(struct sample *s, uint64_t addr, struct steprule *ret)
{
	struct unwind *u = s->u;
	uint64_t key;

	if (addr - s->mod.start >= s->mod.end - s->mod.start) {
		if (symbolizer_unwind_map(u->sym, s->pid, s->start_ns, addr, &s->mod) < 0)
			return false;
		/* and is_code()'s next question is likely in it too */
		s->code_lo = s->mod.start;
		s->code_hi = s->mod.end;
	}
	key = addr - s->mod.bias;
	if (steprules_get(u->rules, s->mod.cfi->id, key, ret) == 0)
		return true;
	learn(u, s, addr, ret);
	steprules_put(u->rules, s->mod.cfi->id, key, ret);
	return true;
}


/*
 * The stack unwound with the rules alone: the entries written into ips,
 * as unwind_stack() returns them (*whole when it reached the outermost
 * frame), or 0 when some frame's rule is STEPRULE_NONE or its module has
 * no CFI: libunwind unwinds that stack instead.  Where libunwind would
 * stop (a word outside the copy, a caller's frame below its callee's, a
 * return address outside the process's code), this stops too.
 */
static size_t unwind_fast(struct sample *s, uint64_t *ips, size_t max, bool *whole)
{
	uint64_t ip = s->us->regs[VIGIL_UREG_RIP], sp = s->sp, bp = s->us->regs[VIGIL_UREG_RBP];
	bool bp_known = true;
	size_t n = 0;

	*whole = false;
	ips[n++] = ip;
	while (n < max - 1) {
		struct steprule r;
		uint64_t cfa, ra;

		/* Below the leaf a pc is a return address: libunwind looks up the call. */
		if (!rule_for(s, n == 1 ? ip : ip - 1, &r) || r.kind == STEPRULE_NONE)
			return 0;
		if (r.kind == STEPRULE_END) {
			*whole = true;
			break;
		}
		if (r.cfa_reg == STEPRULE_BP && !bp_known)
			break;
		cfa = (r.cfa_reg == STEPRULE_SP ? sp : bp) + (uint64_t)(int64_t)r.cfa_off;
		if (!fast_word(s, cfa + (uint64_t)(int64_t)r.ra_off, &ra))
			break;
		if (r.bp_saved)
			bp_known = fast_word(s, cfa + (uint64_t)(int64_t)r.bp_off, &bp);
		if (ra == 0) {
			*whole = true;
			break;
		}
		if (cfa < sp || (cfa == sp && ra == ip) || !is_code(s, ra))
			break;
		ips[n++] = ra;
		ip = ra;
		sp = cfa;
	}
	return n;
}

/*
 * unwind_fast(), or its answer for an earlier sample that it would give
 * again (unwmemo.h): the same registers, copy length and maps, the same
 * words where it read.  What it answers now is kept for the next, unless
 * the maps changed under it (a miss re-read them).
 */
static size_t unwind_rules(struct sample *s, uint64_t *ips, size_t max, bool *whole)
{
	struct unwind *u = s->u;
	struct sym_maps_version v, after;
	struct unwmemo_where w = { .pid = s->pid };
	bool same;
	struct unwmemo_rec rec;
	uint64_t key;
	size_t n;

	if (symbolizer_maps_version(u->sym, s->pid, s->start_ns, &v) < 0)
		return unwind_fast(s, ips, max, whole);
	w.gen = v.gen;
	w.maps = v.maps;
	w.cfi = v.cfi;
	key = unwmemo_key(u->memo, &w, s->start_ns, s->us->regs[VIGIL_UREG_RIP], s->sp,
			  s->us->regs[VIGIL_UREG_RBP], s->len, max);
	n = unwmemo_find(u->memo, key, &w, s->stack, s->len, ips, max, whole);
	if (n)
		return n;
	unwmemo_rec_start(u->memo, &rec);
	s->rec = &rec;
	s->unmapped = false;
	n = unwind_fast(s, ips, max, whole);
	s->rec = NULL;
	same = symbolizer_maps_version(u->sym, s->pid, s->start_ns, &after) == 0 &&
	       after.gen == v.gen && after.maps == v.maps && after.cfi == v.cfi;
	if (n && same && !s->unmapped)
		unwmemo_put(u->memo, key, &w, &rec, ips, n, *whole);
	return n;
}

size_t unwind_stack(struct unwind *u, uint32_t pid, uint64_t start_ns, const struct vigil_ustack *us,
		    const uint8_t *stack, uint64_t *ips, size_t max)
{
	struct sample s = { .u = u, .pid = pid, .start_ns = start_ns, .us = us, .stack = stack };
	unw_addr_space_t as;
	unw_cursor_t cur;
	size_t n = 0;
	bool whole = false;
	uint64_t last_sp;

	if (!u || !us || !ips || max < 2 || us->regs[VIGIL_UREG_RIP] == 0)
		return 0;
	s.sp = us->regs[VIGIL_UREG_RSP];
	s.len = stack ? us->len : 0;
	if (!s.len)
		u->st.no_copy++;
	u->st.stacks++;
	in_unwind = true;
	if (u->use_rules) {
		n = unwind_rules(&s, ips, max, &whole);
		if (n) {
			u->st.fast_stacks++;
			goto out;
		}
	}
	ips[n++] = us->regs[VIGIL_UREG_RIP];
	last_sp = s.sp;
	as = space_get(u, pid, start_ns);
	if (!as || unw_init_remote(&cur, as, &s) < 0)
		goto out;
	while (n < max - 1) {
		unw_word_t ip, sp;
		int r = unw_step(&cur);

		if (r == 0) {
			whole = true;
			break;
		}
		if (r < 0 || unw_get_reg(&cur, UNW_REG_IP, &ip) < 0 ||
		    unw_get_reg(&cur, UNW_REG_SP, &sp) < 0)
			break;
		if (ip == 0) {
			whole = true;
			break;
		}
		/* A stack grows down: a caller's frame never lies below its callee's. */
		if (sp < last_sp)
			break;
		/*
		 * Where CFI is missing, libunwind guesses from the frame
		 * pointer; a guess that lands outside the process's code is
		 * garbage, and is not shown as a frame.
		 */
		if (!is_code(&s, ip))
			break;
		last_sp = sp;
		ips[n++] = ip;
	}
out:
	in_unwind = false;
	u->st.frames += n;
	if (!whole) {
		ips[n++] = VIGIL_USER_TRUNCATED;
		u->st.truncated++;
	}
	return n;
}

void unwind_forget(struct unwind *u, uint32_t pid)
{
	for (size_t i = 0; u && i < u->nspaces; i++) {
		if (u->spaces[i].pid == pid) {
			unw_flush_cache(u->spaces[i].as, 0, 0);
			u->spaces[i].pid = 0;
			u->spaces[i].start_ns = 0;
			u->spaces[i].last_used = 0;
		}
	}
}

void unwind_get_stats(const struct unwind *u, struct unwind_stats *ret)
{
	if (!u || !ret)
		return;
	struct steprules_stats rs;

	struct unwmemo_stats ms;

	*ret = u->st;
	ret->spaces = u->nspaces;
	steprules_get_stats(u->rules, &rs);
	ret->rules_replaced = rs.replaced;
	unwmemo_get_stats(u->memo, &ms);
	ret->memo_hits = ms.hits;
	ret->memo_replaced = ms.replaced;
}

void unwind_free(struct unwind *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->nspaces; i++)
		if (u->spaces[i].as)
			unw_destroy_addr_space(u->spaces[i].as);
	if (u->probe_as)
		unw_destroy_addr_space(u->probe_as);
	steprules_free(u->rules);
	unwmemo_free(u->memo);
	free(u);
}
