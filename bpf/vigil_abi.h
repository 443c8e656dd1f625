/*
 * vigil_abi.h - the only header shared by the BPF programs and userspace.
 *
 * Everything here is fixed-width with explicit padding so that the layout is
 * the same for clang -target bpf and for the host compiler.  Any change to a
 * structure or constant below must bump VIGIL_ABI_VERSION.
 */
#ifndef VIGIL_ABI_H
#define VIGIL_ABI_H

#ifdef __VIGIL_BPF__
/* vmlinux.h already provides the kernel's fixed-width types. */
typedef __u8 vigil_u8;
typedef __u32 vigil_u32;
typedef __s32 vigil_s32;
typedef __u64 vigil_u64;
#else
#include <stdint.h>
typedef uint8_t vigil_u8;
typedef uint32_t vigil_u32;
typedef int32_t vigil_s32;
typedef uint64_t vigil_u64;
#endif

#define VIGIL_ABI_VERSION 6 /* 2: struct vigil_obj_meta; 3: tenants; 4: stats.ticks; 5: stack copies;
                             6: period_ns in records, map "tenant_cfg" */

/* Kernel's default perf_event_max_stack; deeper stacks are truncated by it. */
#define VIGIL_MAX_STACK 127
#define VIGIL_BUILD_ID_SIZE 20
#define VIGIL_COMM_LEN 16

enum vigil_event_type {
	VIGIL_EV_SAMPLE = 1,
	VIGIL_EV_EXEC = 2,
};

/* How the user stack of a sample is encoded. */
enum vigil_user_fmt {
	VIGIL_USER_IPS = 0,      /* user.ips[]: raw instruction pointers */
	VIGIL_USER_BUILD_ID = 1, /* user.bid[]: struct vigil_frame_bid */
	VIGIL_USER_STACK = 2,    /* no frames: struct vigil_ustack + stack bytes, to unwind */
};

/*
 * How a tenant's user stacks are taken (struct vigil_tenant_cfg.unwind).
 *  - VIGIL_UNWIND_FP: the kernel walks frame pointers (bpf_get_stack).
 *  - VIGIL_UNWIND_DWARF: the registers and the top VIGIL_STACK_COPY bytes of
 *    the user stack are copied; the collector unwinds them with the
 *    binaries' CFI (.eh_frame) and then forgets them (docs/unwinding.md).
 */
enum vigil_unwind {
	VIGIL_UNWIND_FP = 0,
	VIGIL_UNWIND_DWARF = 1,
};

/*
 * Bytes of user stack copied per sample, from the stack pointer up (less
 * where the stack's mapping ends sooner).  perf record --call-graph dwarf
 * copies 8 KiB by default; 16 KiB reaches main through deeper C++ and
 * interpreter stacks.
 */
#define VIGIL_STACK_COPY 16384
/* x86-64 general registers in DWARF numbering (0 rax ... 15 r15, 16 rip). */
#define VIGIL_UREGS 17
#define VIGIL_UREG_RBP 6
#define VIGIL_UREG_RSP 7
#define VIGIL_UREG_RIP 16

/*
 * A user frame value no user address can have (they are below 2^47): the
 * unwinder could not go on past the frame before it.  Shown as
 * "[truncated]".
 */
#define VIGIL_USER_TRUNCATED 0xffffffffffffffffull

/* Header of a VIGIL_USER_STACK block; len bytes of stack follow it. */
struct vigil_ustack {
	vigil_u64 regs[VIGIL_UREGS]; /* the interrupted user context */
	vigil_u32 len;               /* bytes of stack that follow, from regs[RSP] up */
	vigil_s32 err;               /* -errno of a failed copy (len is then 0) */
};

/* Values of vigil_frame_bid.status; mirror enum bpf_stack_build_id_status. */
enum vigil_bid_status {
	VIGIL_BID_EMPTY = 0,
	VIGIL_BID_VALID = 1, /* build_id + file offset */
	VIGIL_BID_IP = 2,    /* no build-id could be read: raw ip */
};

/* Same layout as the kernel's struct bpf_stack_build_id. */
struct vigil_frame_bid {
	vigil_s32 status;
	vigil_u8 build_id[VIGIL_BUILD_ID_SIZE];
	vigil_u64 offset_or_ip;
};

/*
 * One on-CPU sample, as written to the ring buffer: this fixed header, then
 * kernel_len bytes of kernel frames (u64 addresses, innermost first), then
 * user_len bytes of user frames (innermost first; u64 addresses or
 * struct vigil_frame_bid, per user_fmt).  Only the frames actually walked
 * travel, which keeps a typical record under 1 KiB instead of 5 KiB.
 * kernel_err/user_err hold the -errno of a failed walk (0 on success).
 * With user_fmt VIGIL_USER_STACK, user_len is 0 and a struct vigil_ustack
 * with its stack bytes follows the kernel frames instead (ustack_len bytes
 * in all); the collector turns it into VIGIL_USER_IPS frames on arrival.
 */
struct vigil_sample_hdr {
	vigil_u32 type;     /* VIGIL_EV_SAMPLE */
	vigil_u32 pid;      /* thread-group id */
	vigil_u32 tid;
	vigil_u32 cpu;
	vigil_u64 cgroup_id;
	vigil_u64 start_ns; /* group leader's start_boottime: (pid, start_ns) names a process */
	char comm[VIGIL_COMM_LEN];        /* group leader's comm: the process name */
	char thread_name[VIGIL_COMM_LEN]; /* this thread's comm */
	vigil_u32 kernel_len; /* bytes */
	vigil_u32 user_len;   /* bytes */
	vigil_s32 kernel_err;
	vigil_s32 user_err;
	vigil_u32 user_fmt;   /* enum vigil_user_fmt */
	vigil_u32 ustack_len; /* bytes of the VIGIL_USER_STACK block (0: none) */
	vigil_u32 tenant;     /* index of the tenant sampled (0: default) */
	vigil_u32 tenant_gen; /* the policy generation the index belongs to (below) */
	/*
	 * When (CLOCK_BOOTTIME): a read of the process's maps begun later
	 * showed every mapping the sample's addresses were in, unless unmapped
	 * since (a re-read would not find those either).  Not part of a
	 * stack's identity.
	 */
	vigil_u64 time_ns;
	/*
	 * The nanoseconds of CPU time the sample stands for: the period of
	 * its tenant's events when it was taken (struct vigil_tenant_cfg).
	 * Not part of a stack's identity either.
	 */
	vigil_u64 period_ns;
};

#define VIGIL_KSTACK_BYTES (8 * VIGIL_MAX_STACK)
#define VIGIL_USTACK_BYTES (32 * VIGIL_MAX_STACK) /* room for build-id frames */
#define VIGIL_UCOPY_BYTES (sizeof(struct vigil_ustack) + VIGIL_STACK_COPY)
#define VIGIL_UTAIL_BYTES \
	(VIGIL_UCOPY_BYTES > VIGIL_USTACK_BYTES ? VIGIL_UCOPY_BYTES : VIGIL_USTACK_BYTES)

/* The largest record: the BPF program's per-CPU scratch space. */
struct vigil_sample {
	struct vigil_sample_hdr hdr;
	vigil_u8 frames[VIGIL_KSTACK_BYTES + VIGIL_UTAIL_BYTES];
};

/* A process replaced its image: cached maps of (pid) are stale. */
struct vigil_exec {
	vigil_u32 type; /* VIGIL_EV_EXEC */
	vigil_u32 pid;
	vigil_u64 start_ns;
	/*
	 * When (CLOCK_BOOTTIME), the new image in place: a read of the maps
	 * begun after it saw the new image, and need not be done again.
	 */
	vigil_u64 time_ns;
};

/*
 * Tenants.  Each perf event carries the index of the tenant it samples as
 * its BPF cookie's low 32 bits (0: the default tenant's system-wide
 * events), and in its high 32 bits the generation of the names the index
 * stands for: a policy that gives indices other names starts a new
 * generation, and samples taken before its events replaced the old ones
 * are still named by the old generation's names.  Map
 * "tenant_cg" names the cgroups (by id) at the top of each tenant; a
 * task belongs to the tenant of its nearest such ancestor.  The default
 * events do not record a task that belongs to a tenant (that tenant's own
 * events sample it) but count it as "foreign": its interrupt ran on that
 * tenant's CPU all the same, and its cost is the tenant's.
 */
#define VIGIL_MAX_TENANTS 257       /* "default" + POLICY_MAX_TENANTS */
#define VIGIL_MAX_TENANT_CGROUPS 1024
#define VIGIL_MAX_CGROUP_DEPTH 16   /* ancestors looked at per sample */

/*
 * Per-tenant settings (map "tenant_cfg", key: tenant index), written by the
 * monitor only:
 *  - unwind: enum vigil_unwind;
 *  - period_ns: 1e9 / the frequency the tenant's events run at, written
 *    with every change of it (the loader writes the default tenant's).
 *    The BPF program copies it into each sample, because the kernel does
 *    not: a cpu-clock event reports the period it was opened with even
 *    after PERF_EVENT_IOC_PERIOD has changed it.  0: not written; the
 *    program then uses the period the event reports.
 */
struct vigil_tenant_cfg {
	vigil_u32 unwind;
	vigil_u32 pad;
	vigil_u64 period_ns;
};

/* Per-CPU, per-tenant counters (map "tstats", key: tenant index). */
struct vigil_tenant_stats {
	vigil_u64 samples;    /* recorded samples of this tenant */
	vigil_u64 run_ns;     /* BPF run time spent on them */
	vigil_u64 foreign;    /* default-event samples that hit this tenant, not recorded */
	vigil_u64 foreign_ns; /* BPF run time spent on those */
};

/* Per-CPU counters kept by the sampling program (map "stats", key 0). */
struct vigil_stats {
	vigil_u64 samples;      /* samples written to the ring buffer */
	vigil_u64 lost;         /* ring buffer full: sample dropped */
	vigil_u64 idle;         /* fired on an idle CPU: nothing to record */
	vigil_u64 user_err;     /* user stack walk failed */
	vigil_u64 kernel_err;   /* kernel stack walk failed */
	vigil_u64 exec_lost;    /* exec event dropped */
	vigil_u64 ticks;        /* times the program ran (every tick, idle too) */
	vigil_u64 stack_lookups; /* stack copies whose end needed the mapping looked up */
};

/*
 * Identity of a BPF object: an ELF note (owner "Vigil", type
 * VIGIL_NOTE_OBJ_META) in section ".note.vigil" whose descriptor is a
 * struct vigil_obj_meta.  The object's signature covers it like every other
 * byte, so a signed object cannot be loaded into another slot (name) or
 * replace a newer one (obj_version): vigild checks both before loading.
 * Bump an object's version when a fix to it must not be rolled back.
 *
 * A note, as build-ids and package metadata (.note.package) are, rather
 * than a data section: libbpf skips note sections without ever treating
 * them as global data, and `readelf -n` shows it.  Declare it in a .bpf.c
 * with VIGIL_OBJ_META(name, version).
 */
#define VIGIL_NOTE_SECTION ".note.vigil"
#define VIGIL_NOTE_NAME "Vigil"  /* note owner; 6 bytes with the NUL */
#define VIGIL_NOTE_OBJ_META 1    /* note type */
#define VIGIL_OBJ_MAGIC "VIGILOBJ" /* 8 bytes, no NUL */
#define VIGIL_OBJ_NAME_LEN 32
#define VIGIL_PROFILE_OBJ_VERSION 4 /* profile.bpf.o; 2: stats.stack_lookups; 3: time_ns in records;
                                      4: period_ns in records */
#define VIGIL_EMPTY_OBJ_VERSION 1   /* empty.bpf.o */

struct vigil_obj_meta {
	char magic[8];                  /* VIGIL_OBJ_MAGIC */
	vigil_u32 abi_version;          /* VIGIL_ABI_VERSION the object was built with */
	vigil_u32 obj_version;          /* VIGIL_<NAME>_OBJ_VERSION */
	char name[VIGIL_OBJ_NAME_LEN];  /* "profile": the file is <name>.bpf.o; NUL-padded */
};

/* The whole note as it sits in the section (ELF note layout, 4-byte aligned). */
struct vigil_obj_note {
	vigil_u32 namesz;             /* sizeof(VIGIL_NOTE_NAME) */
	vigil_u32 descsz;             /* sizeof(struct vigil_obj_meta) */
	vigil_u32 type;               /* VIGIL_NOTE_OBJ_META */
	char name[8];                 /* VIGIL_NOTE_NAME, NUL-padded to 4 bytes */
	struct vigil_obj_meta meta;
};

#ifdef __VIGIL_BPF__
/* In a .bpf.c: VIGIL_OBJ_META("profile", VIGIL_PROFILE_OBJ_VERSION); */
#define VIGIL_OBJ_META(obj_name, version)                                                \
	const struct vigil_obj_note vigil_meta                                            \
		__attribute__((section(VIGIL_NOTE_SECTION), used, aligned(4))) = {        \
		.namesz = sizeof(VIGIL_NOTE_NAME),                                        \
		.descsz = sizeof(struct vigil_obj_meta),                                  \
		.type = VIGIL_NOTE_OBJ_META,                                              \
		.name = VIGIL_NOTE_NAME,                                                  \
		.meta = { .magic = VIGIL_OBJ_MAGIC, .abi_version = VIGIL_ABI_VERSION,     \
			  .obj_version = (version), .name = obj_name },                   \
	}
#endif

_Static_assert(sizeof(struct vigil_frame_bid) == 32, "bpf_stack_build_id layout");
_Static_assert(sizeof(struct vigil_sample_hdr) == 112, "vigil_sample_hdr layout");
_Static_assert(sizeof(struct vigil_ustack) == 144, "vigil_ustack layout");
_Static_assert(sizeof(struct vigil_sample) ==
		       112 + VIGIL_KSTACK_BYTES + VIGIL_UCOPY_BYTES,
	       "vigil_sample layout");
_Static_assert(sizeof(struct vigil_exec) == 24, "vigil_exec layout");
_Static_assert(sizeof(struct vigil_stats) == 64, "vigil_stats layout");
_Static_assert(sizeof(struct vigil_tenant_stats) == 32, "vigil_tenant_stats layout");
_Static_assert(sizeof(struct vigil_tenant_cfg) == 16, "vigil_tenant_cfg layout");
_Static_assert(sizeof(struct vigil_obj_meta) == 48, "vigil_obj_meta layout");
_Static_assert(sizeof(struct vigil_obj_note) == 68, "vigil_obj_note layout");

#endif
