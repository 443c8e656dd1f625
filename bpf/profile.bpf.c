// SPDX-License-Identifier: GPL-2.0
/*
 * profile.bpf.c - Vigil's on-CPU sampler.
 *
 * Attached to one software cpu-clock perf event per online CPU.  Each time
 * the event fires on a CPU that runs a task, it records who was running
 * (pid, tid, process and thread names, cgroup) and both stacks, and hands
 * the record to userspace through a ring buffer.
 *
 * Why a ring buffer and not in-kernel aggregation (stack-trace maps, as
 * bcc's profile does):
 *  - stack-trace maps are hash tables with no collision chaining; under many
 *    distinct stacks they silently drop or overwrite, and a profiler that
 *    must be trusted should not lose data without saying so.  A full ring
 *    buffer is counted exactly (stats.lost).
 *  - userspace must see a new process on its first sample, while it still
 *    lives, to capture its memory maps and binaries; aggregated maps are only
 *    read at the end of an interval, too late for short-lived processes.
 *  - records are variable-length (only the frames walked travel), so the
 *    cost per sample is one copy of < 1 KiB in the common case.
 * Userspace aggregates identical stacks itself, which costs well under a
 * microsecond per sample.
 *
 * User stacks are taken with BPF_F_USER_BUILD_ID when use_build_id is set:
 * each frame arrives as (build-id, file offset), resolved while the mapping
 * still exists, so a process that exits before userspace looks at it can
 * still be symbolized from any copy of the same file.
 *
 * A tenant set to VIGIL_UNWIND_DWARF (map "tenant_cfg") gets no frame-pointer
 * walk: its user registers and the top of its user stack are copied
 * instead, and the collector unwinds them with the binaries' CFI, which
 * works for code built without frame pointers (docs/unwinding.md).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "vigil_abi.h"

char LICENSE[] SEC("license") = "GPL";

/* What this object is, covered by its signature: checked before loading. */
VIGIL_OBJ_META("profile", VIGIL_PROFILE_OBJ_VERSION);

/* Set by the loader before the object is loaded. */
const volatile bool use_build_id = false;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* resized by the loader */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_stats);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_MAX_TENANTS);
	__type(key, __u32);
	__type(value, struct vigil_tenant_stats);
} tstats SEC(".maps");

/* cgroup id -> tenant index, for the cgroups at the top of each tenant. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_MAX_TENANT_CGROUPS);
	__type(key, __u64);
	__type(value, __u32);
} tenant_cg SEC(".maps");

/* tenant index -> its unwinding and period; written by the monitor only. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIGIL_MAX_TENANTS);
	__type(key, __u32);
	__type(value, struct vigil_tenant_cfg);
} tenant_cfg SEC(".maps");

/* Per-CPU scratch: stacks are walked here, then the used part is copied. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_sample);
} scratch SEC(".maps");

/*
 * Waking the collector.  Records go into the ring without a wakeup (an
 * irq_work per sample would cost more than the sample), except:
 *  - a process's first sample, so that the collector captures its maps
 *    while it lives (a process that lives 150 ms is still symbolized);
 *    "first" is: not in map "seen" under its start time, which the exec
 *    program forgets, so a new image counts as new;
 *  - a ring filled past half, so that it drains before it is full: a
 *    wakeup costs the collector ~50 us, so the ring is sized by --hz
 *    (daemon/sampler_load.c): at 999 Hz with benchspin's DWARF stack
 *    copies on 2 CPUs, about one wakeup a second.
 * Otherwise the collector drains on its own, at most 5 s apart
 * (DRAIN_MAX_NS in daemon/collector.c).
 * Per CPU, the last process that was checked is remembered with the exec
 * count of the time, so a run of samples of one process looks up nothing.
 * Kernel threads have no maps to capture and wake no one.  (An LRU hash
 * is safe here because the events are cpu-clock, run from an hrtimer;
 * hardware events, run in NMI, could deadlock on its locks.)
 */
#define VIGIL_SEEN_PROCS 8192
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, VIGIL_SEEN_PROCS);
	__type(key, __u32);   /* tgid */
	__type(value, __u64); /* its leader's start_boottime */
} seen SEC(".maps");

struct vigil_last_seen {
	__u64 start_ns;
	__u64 execs;
	__u32 tgid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_last_seen);
} last_seen SEC(".maps");

/* Execs so far, all CPUs: a change makes every CPU's last_seen stale. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} execs SEC(".maps");

#define VIGIL_WAKE_MIN_AVAIL (64u << 10)

/* user: the task has a user address space (kernel threads have no maps). */
static __always_inline __u64 wake_flag(__u32 tgid, __u64 start_ns, bool user)
{
	__u32 zero = 0;
	struct vigil_last_seen *l = bpf_map_lookup_elem(&last_seen, &zero);
	__u64 *n = bpf_map_lookup_elem(&execs, &zero);
	__u64 now_execs = n ? *n : 0, avail;

	if (user && l && (l->tgid != tgid || l->start_ns != start_ns || l->execs != now_execs)) {
		__u64 *v = bpf_map_lookup_elem(&seen, &tgid);

		l->tgid = tgid;
		l->start_ns = start_ns;
		l->execs = now_execs;
		if (!v || *v != start_ns) {
			bpf_map_update_elem(&seen, &tgid, &start_ns, BPF_ANY);
			return BPF_RB_FORCE_WAKEUP;
		}
	}
	avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	if (avail > VIGIL_WAKE_MIN_AVAIL && avail > bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) / 2)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* A sample the ring had no room for: the process's next one is a first one again. */
static __always_inline void forget_seen(__u32 tgid)
{
	__u32 zero = 0;
	struct vigil_last_seen *l = bpf_map_lookup_elem(&last_seen, &zero);

	bpf_map_delete_elem(&seen, &tgid);
	if (l)
		l->tgid = 0;
}

/* The tenant of the running task: that of its nearest listed ancestor. */
static __always_inline __u32 current_tenant(void)
{
	for (int level = 1; level <= VIGIL_MAX_CGROUP_DEPTH; level++) {
		__u64 cg = bpf_get_current_ancestor_cgroup_id(level);
		__u32 *t;

		if (!cg)
			break;
		t = bpf_map_lookup_elem(&tenant_cg, &cg);
		if (t)
			return *t;
	}
	return 0;
}

/*
 * The program's own run time, per tenant, is what budgets charge for BPF.
 * Reading the clock twice on every sample would itself cost a few percent
 * of the sample, so one sample in VIGIL_TIME_EVERY per CPU is timed and
 * counted VIGIL_TIME_EVERY times: an unbiased estimate at a fraction of
 * the cost.
 */
#define VIGIL_TIME_EVERY 16

/*
 * How far above sp a task's stack surely goes, where that is known without
 * looking the stack's mapping up: the main thread's stack ends above
 * mm->start_stack (the stack pointer at exec, with argv and the
 * environment above it), and a glibc or musl thread's stack ends below its
 * thread control block, which fsbase points at, at the top of the same
 * mapping.  Either bound is taken only when sp is below it by at most
 * VIGIL_STACK_TOP_RANGE: the mmap area starts at least 128 MiB below the
 * main stack, so a thread's sp is never taken for the main stack's.  A
 * bound that is wrong makes the copy fail (or read bytes no frame uses),
 * never reach past the task's own memory: the copy is an ordinary
 * fault-guarded read of the task's address space.  0: not known.
 *
 * bpf_find_vma, which gives the exact end, is the fallback only: from a
 * perf event (interrupts off) it cannot release the mmap lock itself and
 * queues an irq_work to do it, a self-interrupt per sample that cost
 * ~4 us a sample on this VM, four fifths of the program's time.
 */
#define VIGIL_STACK_TOP_RANGE (32ull << 20)

static __always_inline __u64 known_stack_top(struct task_struct *task, __u64 sp)
{
	__u64 top = task->mm->start_stack;

	if (sp < top && top - sp <= VIGIL_STACK_TOP_RANGE)
		return top;
#ifdef __TARGET_ARCH_x86
	top = task->thread.fsbase;
	if (sp < top && top - sp <= VIGIL_STACK_TOP_RANGE)
		return top;
#endif
	return 0;
}

static long vma_end(struct task_struct *task, struct vm_area_struct *vma, void *ctx)
{
	*(__u64 *)ctx = vma->vm_end;
	return 0;
}

/*
 * Copy the task's user registers and the top of its user stack to u: as
 * many bytes as its stack holds above the stack pointer (up to the bound
 * above, else to the end of its mapping), at most VIGIL_STACK_COPY.
 * Returns the bytes of the block (header + stack).
 */
static __always_inline long copy_user_stack(struct task_struct *task, struct vigil_ustack *u,
					    struct vigil_stats *st)
{
	struct pt_regs *r = (struct pt_regs *)bpf_task_pt_regs(task);
	__u64 sp, end, n;
	long err;

	u->len = 0;
	u->err = 0;
	if (!r || !task->mm) {
		u->err = -22; /* EINVAL: a kernel thread has no user stack */
		return sizeof(*u);
	}
	/* DWARF numbering: rax rdx rcx rbx rsi rdi rbp rsp r8..r15 rip */
	u->regs[0] = r->ax;
	u->regs[1] = r->dx;
	u->regs[2] = r->cx;
	u->regs[3] = r->bx;
	u->regs[4] = r->si;
	u->regs[5] = r->di;
	u->regs[6] = r->bp;
	u->regs[7] = r->sp;
	u->regs[8] = r->r8;
	u->regs[9] = r->r9;
	u->regs[10] = r->r10;
	u->regs[11] = r->r11;
	u->regs[12] = r->r12;
	u->regs[13] = r->r13;
	u->regs[14] = r->r14;
	u->regs[15] = r->r15;
	u->regs[16] = r->ip;
	sp = r->sp;
	end = known_stack_top(task, sp);
	if (end) {
		n = end - sp;
		if (n > VIGIL_STACK_COPY)
			n = VIGIL_STACK_COPY;
		if (!bpf_probe_read_user((__u8 *)(u + 1), n, (const void *)sp)) {
			u->len = n;
			return sizeof(*u) + n;
		}
	}
	/*
	 * find_vma only try-locks the mmap lock: it fails while the task
	 * itself maps or unmaps memory (an allocator returning an arena).
	 * Then the pages above sp's are probed one byte each instead, since
	 * a read that crosses the end of the stack's mapping fails as a
	 * whole.
	 */
	st->stack_lookups++;
	end = 0;
	err = bpf_find_vma(task, sp, vma_end, &end, 0);
	if (!err && end > sp) {
		n = end - sp;
		if (n > VIGIL_STACK_COPY)
			n = VIGIL_STACK_COPY;
		err = bpf_probe_read_user((__u8 *)(u + 1), n, (const void *)sp);
		if (!err) {
			u->len = n;
			return sizeof(*u) + n;
		}
	}
	/* The first page above sp's that cannot be read ends the copy. */
	end = (sp & ~4095ull) + 4096;
	for (int i = 0; i < VIGIL_STACK_COPY / 4096; i++) {
		char c;

		if (bpf_probe_read_user(&c, 1, (const void *)end))
			break;
		end += 4096;
	}
	n = end - sp;
	if (n > VIGIL_STACK_COPY)
		n = VIGIL_STACK_COPY;
	err = bpf_probe_read_user((__u8 *)(u + 1), n, (const void *)sp);
	if (err) {
		u->err = err;
		return sizeof(*u);
	}
	u->len = n;
	return sizeof(*u) + n;
}

static __always_inline __u64 elapsed(__u64 t0)
{
	return t0 ? (bpf_ktime_get_ns() - t0) * VIGIL_TIME_EVERY : 0;
}

SEC("perf_event")
int vigil_sample(struct bpf_perf_event_data *ctx)
{
	__u64 t0 = 0;
	__u32 zero = 0, tenant;
	struct vigil_stats *st;
	struct vigil_tenant_stats *ts;
	struct vigil_sample *s;
	struct task_struct *task, *leader;
	__u64 id = bpf_get_current_pid_tgid();
	long klen, ulen;
	__u64 size, ustack = 0, cookie;
	struct vigil_tenant_cfg *cfg;

	st = bpf_map_lookup_elem(&stats, &zero);
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!st || !s)
		return 0;
	st->ticks++;
	/*
	 * Chosen at random, not by counting: a tenant's event and the default
	 * event fire on a CPU in a fixed alternation, and every 16th tick
	 * would always time the same one of the two.
	 */
	if (bpf_get_prandom_u32() % VIGIL_TIME_EVERY == 0)
		t0 = bpf_ktime_get_ns();
	if ((__u32)id == 0) {
		/* The idle task: the CPU was doing nothing worth a sample. */
		st->idle++;
		return 0;
	}
	/* The event's tenant; the default events must leave tenants alone. */
	cookie = bpf_get_attach_cookie(ctx);
	tenant = (__u32)cookie;
	if (tenant == 0) {
		tenant = current_tenant();
		if (tenant != 0) {
			ts = bpf_map_lookup_elem(&tstats, &tenant);
			if (ts) {
				ts->foreign++;
				ts->foreign_ns += elapsed(t0);
			}
			return 0;
		}
	}

	/*
	 * A BTF-typed task pointer: the reads below are plain (fault-guarded)
	 * loads, not bpf_probe_read_kernel() calls, which matters at this rate.
	 */
	task = bpf_get_current_task_btf();
	leader = task->group_leader;

	s->hdr.type = VIGIL_EV_SAMPLE;
	s->hdr.pid = id >> 32;
	s->hdr.tid = (__u32)id;
	s->hdr.cpu = bpf_get_smp_processor_id();
	s->hdr.cgroup_id = bpf_get_current_cgroup_id();
	s->hdr.start_ns = leader->start_boottime;
	__builtin_memcpy(s->hdr.comm, leader->comm, VIGIL_COMM_LEN);
	__builtin_memcpy(s->hdr.thread_name, task->comm, VIGIL_COMM_LEN);
	s->hdr.ustack_len = 0;
	s->hdr.tenant = tenant;
	s->hdr.tenant_gen = (__u32)(cookie >> 32);
	s->hdr.time_ns = bpf_ktime_get_boot_ns();

#ifdef __TARGET_ARCH_x86
	/*
	 * Interrupted in user mode (CPL 3): there is no kernel stack to walk.
	 * The context may only be read a whole u64 at a time.
	 */
	if ((*(volatile __u64 *)&ctx->regs.cs & 3) == 3)
		klen = 0;
	else
#endif
		klen = bpf_get_stack(ctx, s->frames, VIGIL_KSTACK_BYTES, 0);
	s->hdr.kernel_err = klen < 0 ? klen : 0;
	if (klen < 0) {
		st->kernel_err++;
		klen = 0;
	}
	if (klen > VIGIL_KSTACK_BYTES)
		klen = VIGIL_KSTACK_BYTES;

	cfg = bpf_map_lookup_elem(&tenant_cfg, &tenant);
	s->hdr.period_ns = cfg && cfg->period_ns ? cfg->period_ns : ctx->sample_period;
	if (cfg && cfg->unwind == VIGIL_UNWIND_DWARF) {
		struct vigil_ustack *u = (struct vigil_ustack *)(s->frames + klen);

		s->hdr.user_fmt = VIGIL_USER_STACK;
		ustack = copy_user_stack(task, u, st);
		ulen = u->err; /* counted below like a failed walk; no frames */
	} else if (use_build_id) {
		s->hdr.user_fmt = VIGIL_USER_BUILD_ID;
		ulen = bpf_get_stack(ctx, s->frames + klen, VIGIL_USTACK_BYTES,
				     BPF_F_USER_STACK | BPF_F_USER_BUILD_ID);
	} else {
		s->hdr.user_fmt = VIGIL_USER_IPS;
		ulen = bpf_get_stack(ctx, s->frames + klen, VIGIL_USTACK_BYTES,
				     BPF_F_USER_STACK);
	}
	s->hdr.user_err = ulen < 0 ? ulen : 0;
	if (ulen < 0) {
		st->user_err++;
		ulen = 0;
	}
	if (ulen > VIGIL_USTACK_BYTES)
		ulen = VIGIL_USTACK_BYTES;
	s->hdr.kernel_len = klen;
	s->hdr.user_len = ulen;
	s->hdr.ustack_len = ustack;

	size = sizeof(s->hdr) + klen + ulen + ustack;
	if (size > sizeof(*s))
		size = sizeof(*s);
	if (bpf_ringbuf_output(&events, s, size, wake_flag(s->hdr.pid, s->hdr.start_ns, task->mm))) {
		st->lost++;
		forget_seen(s->hdr.pid);
	} else
		st->samples++;
	/* A lost sample cost its tenant all the same. */
	ts = bpf_map_lookup_elem(&tstats, &tenant);
	if (ts) {
		ts->samples++;
		ts->run_ns += elapsed(t0);
	}
	return 0;
}

/*
 * A process replaced its image: its cached memory maps are stale.  Telling
 * userspace at exec time also lets it capture the new image early.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(vigil_exec, struct task_struct *p, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	__u32 zero = 0, tgid = BPF_CORE_READ(p, tgid);
	struct vigil_stats *st = bpf_map_lookup_elem(&stats, &zero);
	__u64 *n = bpf_map_lookup_elem(&execs, &zero);
	struct vigil_exec *e;

	/* Its next sample is a first one again (wake_flag). */
	bpf_map_delete_elem(&seen, &tgid);
	if (n)
		__sync_fetch_and_add(n, 1);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		if (st)
			st->exec_lost++;
		return 0;
	}
	e->type = VIGIL_EV_EXEC;
	e->pid = tgid;
	e->start_ns = BPF_CORE_READ(p, group_leader, start_boottime);
	/* The tracepoint fires after exec_mmap(): the new mm is the task's now. */
	e->time_ns = bpf_ktime_get_boot_ns();
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}
