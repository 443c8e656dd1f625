// SPDX-License-Identifier: GPL-2.0
/*
 * verifier_reject.bpf.c - TEST DATA: a correctly signed "profile" object
 * that the kernel's verifier must reject (it dereferences a number as a
 * pointer).  tests/integration/verifier.sh checks that vigild refuses it
 * with the tail of the verifier log.  Never installed.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "vigil_abi.h"

char LICENSE[] SEC("license") = "GPL";
VIGIL_OBJ_META("profile", VIGIL_PROFILE_OBJ_VERSION);

const volatile bool use_build_id = false;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
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

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_MAX_TENANT_CGROUPS);
	__type(key, __u64);
	__type(value, __u32);
} tenant_cg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIGIL_MAX_TENANTS);
	__type(key, __u32);
	__type(value, struct vigil_tenant_cfg);
} tenant_cfg SEC(".maps");

SEC("perf_event")
int vigil_sample(void *ctx)
{
	long *p = (long *)(unsigned long)bpf_get_prandom_u32();

	return *p + use_build_id;
}

SEC("tp_btf/sched_process_exec")
int vigil_exec(void *ctx)
{
	return 0;
}
