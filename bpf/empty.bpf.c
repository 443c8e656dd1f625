/*
 * empty.bpf.c - a perf_event program that does nothing.
 *
 * The benchmark's floor: attached to the same cpu-clock events as the
 * sampler (by tests/tools/bpf_floor), it costs a workload the timer
 * interrupt and the BPF dispatch and nothing else, so the slowdown a real
 * profiler adds on top of it is the cost of what that profiler does.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "vigil_abi.h"

SEC("perf_event")
int vigil_empty(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

/* What this object is, covered by its signature: checked before loading. */
VIGIL_OBJ_META("empty", VIGIL_EMPTY_OBJ_VERSION);
