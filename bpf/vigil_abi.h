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

#define VIGIL_ABI_VERSION 1

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
	vigil_u32 pad0;
};

#define VIGIL_KSTACK_BYTES (8 * VIGIL_MAX_STACK)
#define VIGIL_USTACK_BYTES (32 * VIGIL_MAX_STACK) /* room for build-id frames */

/* The largest record: the BPF program's per-CPU scratch space. */
struct vigil_sample {
	struct vigil_sample_hdr hdr;
	vigil_u8 frames[VIGIL_KSTACK_BYTES + VIGIL_USTACK_BYTES];
};

/* A process replaced its image: cached maps of (pid) are stale. */
struct vigil_exec {
	vigil_u32 type; /* VIGIL_EV_EXEC */
	vigil_u32 pid;
	vigil_u64 start_ns;
};

/* Per-CPU counters kept by the sampling program (map "stats", key 0). */
struct vigil_stats {
	vigil_u64 samples;      /* samples written to the ring buffer */
	vigil_u64 lost;         /* ring buffer full: sample dropped */
	vigil_u64 idle;         /* fired on an idle CPU: nothing to record */
	vigil_u64 user_err;     /* user stack walk failed */
	vigil_u64 kernel_err;   /* kernel stack walk failed */
	vigil_u64 exec_lost;    /* exec event dropped */
};

_Static_assert(sizeof(struct vigil_frame_bid) == 32, "bpf_stack_build_id layout");
_Static_assert(sizeof(struct vigil_sample_hdr) == 88, "vigil_sample_hdr layout");
_Static_assert(sizeof(struct vigil_sample) ==
		       88 + VIGIL_KSTACK_BYTES + VIGIL_USTACK_BYTES,
	       "vigil_sample layout");
_Static_assert(sizeof(struct vigil_exec) == 16, "vigil_exec layout");
_Static_assert(sizeof(struct vigil_stats) == 48, "vigil_stats layout");

#endif
