#!/bin/bash
# tests/integration/landlock.sh - Landlock is required in both workers.
#
# The collector's openat/renameat2/unlinkat and (later) the uplink's file
# and network access are only limited by Landlock, so neither runs without
# it.  On a kernel that lacks it (made to seem so here: build/tests/tools/
# without_syscall makes the landlock_* system calls fail with ENOSYS, as on
# a kernel built without them, for vigild and all it starts) vigild must
# refuse to start: exit 71, a line from each worker naming Landlock and what
# would provide it, no profile written and nothing left loaded.

. "$(dirname "$0")/lib.sh"

TESTS=(
	"no Landlock: the collector refuses to run, saying why and what provides it"
	"no Landlock: the uplink refuses to run, saying why and what provides it"
	"no Landlock: vigild exits 71, writes no profile, leaves nothing loaded"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
WITHOUT=$B/tests/tools/without_syscall
require_file "$WITHOUT" "${TESTS[@]}"

before=$(vigil_sample_ids)
timeout 60 "$WITHOUT" landlock_create_ruleset,landlock_add_rule,landlock_restrict_self \
	"$VIGILD" --duration 5 --interval 1 --no-top --output "$T/out" >"$T/log" 2>&1
rc=$?
sleep 1
left=$(leaked "$before" | tr '\n' ' ')
fix="(a kernel with CONFIG_SECURITY_LANDLOCK=y and landlock in its lsm= list has it)"
tap_result "${TESTS[0]}" $(grep -qF "vigild[collector]: cannot confine file access (Landlock is not available): Operation not supported; the collector does not run without it $fix" "$T/log"; echo $?) \
	"log:" "$(cat "$T/log")"
tap_result "${TESTS[1]}" $(grep -qF "vigild[uplink]: cannot confine file and network access (Landlock is not available): Operation not supported; the uplink does not run without it $fix" "$T/log"; echo $?) \
	"log:" "$(cat "$T/log")"
n=$(profile_files "$T/out" | wc -l)
tap_result "${TESTS[2]}" $([ $rc -eq 71 ] && [ "$n" -eq 0 ] && [ -z "$left" ]; echo $?) \
	"exit $rc (want 71), $n profile(s), programs left loaded: ${left:-none}"

tap_done
