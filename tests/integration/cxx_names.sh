#!/bin/bash
# tests/integration/cxx_names.sh - C++ functions in profiles (issue 12):
# pprof's Function.name carries the demangled name, system_name the
# mangled symbol.  vigild profiles tests/workloads/cxxspin (C++, -O2,
# no frame pointers, exceptions) and the profiles must name its hot
# functions both ways, and go tool pprof must read them.
#
# Names only: that cxxspin's stacks are whole is unwind.sh's to show.
#
# It judges only its own vigild and workload and times nothing a loaded
# host could miss: tests/run.sh runs it in its lane, beside the others.
# run.sh: lane

. "$(dirname "$0")/lib.sh"

TESTS=(
	"vigild exits 0"
	"cxxspin's hot functions are named readably: vigil_wl::Spinner<unsigned long>::spin(unsigned long), vigil_wl::checksum(...)"
	"... with their mangled symbols as system_name"
	"most of cxxspin's samples have a readable vigil_wl:: function as their leaf"
	"the profiles are valid (go tool pprof -raw, pprof_query check)"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$PQ" "${TESTS[@]}"
require_file "$WLD/cxxspin" "${TESTS[@]}"

OUT=$T/profiles
VIGILD_TIMEOUT=60
vigild_start "$T/vigild.log" --hz 99 --interval 3 --duration 12 --output "$OUT"
vigild_wait_ready 20 || tap_diag "vigild not sampling after 20 s:" "$(tail -5 "$T/vigild.log")"
spawn "$WLD/cxxspin" --seconds 8 >"$T/cxxspin.out"
CXX=$SPAWNED_PID # its samples only: unwind.sh, run beside this, has a cxxspin too
wait "$CXX"
vigild_wait 40
mapfile -t FILES < <(profile_files "$OUT")

tap_result "${TESTS[0]}" $([ "$VIGILD_RC" -eq 0 ]; echo $?) \
	"vigild exit $VIGILD_RC; its log:" "$(tail -10 "$T/vigild.log")"

"$PQ" functions --label "pid=$CXX" "${FILES[@]}" 2>&1 | sort -u >"$T/functions"
SPIN='vigil_wl::Spinner<unsigned long>::spin(unsigned long)'
SUM='vigil_wl::checksum(std::vector<unsigned char, std::allocator<unsigned char> > const&)'
has() { grep -qxF "$1" "$T/functions"; }
tap_result "${TESTS[1]}" "$(cut -f1 "$T/functions" | grep -qxF "$SPIN" &&
	cut -f1 "$T/functions" | grep -qxF "$SUM"; echo $?)" \
	"functions seen (vigil_wl): $(grep vigil_wl "$T/functions" | head -5 | tr '\n' ' ')"
tap_result "${TESTS[2]}" "$(has "$SPIN	_ZN8vigil_wl7SpinnerImE4spinEm" &&
	has "$SUM	_ZN8vigil_wl8checksumERKSt6vectorIhSaIhEE"; echo $?)" \
	"$(grep vigil_wl "$T/functions" | head -5 | tr '\n' ' ')"

"$PQ" self --label comm=cxxspin --label "pid=$CXX" "${FILES[@]}" >"$T/self"
total=$(awk -F'\t' '{ n += $1 } END { print n + 0 }' "$T/self")
ours=$(awk -F'\t' '$3 ~ /^vigil_wl::/ { n += $1 } END { print n + 0 }' "$T/self")
# enough of it to judge, from the CPU it says it got (8 s of wall time)
cpu=$(cxxspin_cpu "$T/cxxspin.out" main)
tap_result "${TESTS[3]}" "$(enough_samples "$total" "$cpu" 99 && [ $((ours * 2)) -gt "$total" ]; echo $?)" \
	"$ours of $total samples (of ${cpu:-?} s CPU); leaves: $(head -5 "$T/self" | tr '\n' ' ')"

bad=$(validate_profiles "${FILES[@]}")
tap_result "${TESTS[4]}" "$([ ${#FILES[@]} -gt 0 ] && [ -z "$bad" ]; echo $?)" \
	"${#FILES[@]} files; $bad"
tap_done
