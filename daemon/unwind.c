/*
 * unwind.c - unwind copied user stacks with libunwind's remote API
 * (unwind.h).  Runs in the collector, without privileges.
 *
 * libunwind asks for everything through accessors: registers (the copied
 * ones), memory (the copied stack, and the CFI bytes of the module last
 * looked up), and unwind info for an address (found here from the
 * process's maps and the file's .eh_frame_hdr, then searched by
 * libunwind's dwarf_search_unwind_table, as perf does).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libunwind.h>

#include "cfi.h"
#include "symbolizer.h"
#include "unwind.h"

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
};

struct unwind {
	struct symbolizer *sym;
	struct space spaces[UNWIND_MAX_SPACES];
	size_t nspaces;
	uint64_t clock;
	struct unwind_stats st;
};

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

static int access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *valp, int write, void *arg)
{
	struct sample *s = arg;
	struct sym_unwind_map m;

	if (write)
		return -UNW_EINVAL;
	/* The stack: whole words only, a partial one would be made up. */
	if (addr >= s->sp && addr - s->sp <= s->len && s->len - (addr - s->sp) >= 8) {
		memcpy(valp, s->stack + (addr - s->sp), 8);
		return 0;
	}
	if (read_cfi(s, addr, valp))
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
	*valp = s->us->regs[reg];
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

	s->cfi = NULL;
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
	return UNW_OBJ(dwarf_search_unwind_table)(as, ip, &di, pi, need_unwind_info, arg);
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
	if (!u->spaces[0].as) {
		free(u);
		return -ENOMEM;
	}
	unw_set_caching_policy(u->spaces[0].as, UNW_CACHE_GLOBAL);
	u->nspaces = 1;
	*ret = u;
	return 0;
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
		 * address (non-PIE binaries all load at 0x400000).
		 */
		unw_set_caching_policy(sp->as, UNW_CACHE_GLOBAL);
		unw_set_cache_size(sp->as, UNWIND_CACHE_RULES, 0);
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
	}
	return r == 0 || r == -ENODATA;
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
	ips[n++] = us->regs[VIGIL_UREG_RIP];
	last_sp = s.sp;
	as = space_get(u, pid, start_ns);
	in_unwind = true;
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
	*ret = u->st;
	ret->spaces = u->nspaces;
}

void unwind_free(struct unwind *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->nspaces; i++)
		unw_destroy_addr_space(u->spaces[i].as);
	free(u);
}
