#!/bin/bash
# tests/integration/hostile_elf.sh - any user can run a binary of their own
# making, and the collector reads it.  Copies of a workload whose section
# headers are hostile (tables claiming a gigabyte of a sparse file, tables
# over each other or past the end, 2^32 sections, names out of range, entry
# size 0, a million symbols) still execute - the kernel only reads program
# headers - and run while vigild profiles the host beside a well-behaved
# workload.  The rest of the host must be profiled as usual, the hostile
# frames must stay address + mapping, and the collector's memory must stay
# within what the reader's limits allow (daemon/elfsym.h).
#
# It judges only its own vigild and workload and times nothing a loaded
# host could miss: tests/run.sh runs it in its lane, beside the others.
# run.sh: lane

. "$(dirname "$0")/lib.sh"

TESTS=(
	"hostile ELF: the reader refuses every hostile copy, and every copy runs"
	"hostile ELF: vigild exits 0"
	"hostile ELF: cpusplit is symbolized in every profile, as without them"
	"hostile ELF: the hostile binaries' own frames stay address + mapping"
	"hostile ELF: the collector's peak memory stays within the reader's limits"
	"hostile ELF: every profile passes validation"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$PQ" "${TESTS[@]}"
ELFPATCH=$B/tests/tools/elfpatch
require_file "$ELFPATCH" "${TESTS[@]}"

SHAPES=(symtab-1g strtab-1g overlap past-end shnum strings entsize million)
BASE=$WLD/hidden # hidden_spin() in the executable, vwl_lib_spin() in libvwl.so

# 1. Build the copies beside libvwl.so (found through $ORIGIN).  Each must
#    be refused by the reader and still run.
H=$T/hostile
mkdir -p "$H"
cp "$WLD/libvwl.so" "$H/"
bad=""
for s in "${SHAPES[@]}"; do
	if ! out=$("$ELFPATCH" "$s" "$BASE" "$H/h-$s" 2>&1); then
		bad+="elfpatch $s: $out; "
		continue
	fi
	read -r rc nsyms ms <<<"$("$ELFPATCH" check "$H/h-$s")"
	tap_diag "h-$s: $(du -h --apparent-size "$H/h-$s" | cut -f1) apparent, $(du -h "$H/h-$s" | cut -f1) on disk; reader: rc $rc, $nsyms symbols, $ms ms CPU"
	case $rc in -7 | -22) ;; *) bad+="h-$s: the reader returned $rc, not a refusal; " ;; esac
	"$H/h-$s" --seconds 0.05 >/dev/null 2>&1 || bad+="h-$s does not run; "
done
tap_result "${TESTS[0]}" $([ -z "$bad" ]; echo $?) "$bad"

# 2. Profile the host: cpusplit alone first, then the hostile copies beside it.
eval "$("$ELFPATCH" limits)"
OUT=$T/profiles # vigild creates it
VIGILD_TIMEOUT=90
vigild_start "$T/vigild.log" --hz 99 --interval 3 --duration 18 --output "$OUT"
vigild_wait_ready 20 || tap_diag "vigild not sampling after 20 s:" "$(tail -5 "$T/vigild.log")"
COLLECTOR=$(pgrep -P "$VIGILD_PID" -f 'internal-role collector' | head -1)

hwm() { awk '/^VmHWM:/ { print $2 }' /proc/"$COLLECTOR"/status 2>/dev/null; }

spawn "$WLD/cpusplit" --seconds 14 --threads 2 >"$T/cpusplit.out"
SPLIT=$SPAWNED_PID
sleep 4 # the collector has seen cpusplit, libvwl, libc and the host's processes
BASE_KB=$(hwm)
HOSTILE=()
for s in "${SHAPES[@]}"; do
	spawn "$H/h-$s" --seconds 8 >/dev/null
	HOSTILE+=("$SPAWNED_PID")
done
PEAK_KB=$BASE_KB
while kill -0 "$VIGILD_PID" 2>/dev/null; do
	kb=$(hwm)
	[ -n "$kb" ] && PEAK_KB=$kb
	[ "$(awk '{print $3}' /proc/"$VIGILD_PID"/stat 2>/dev/null)" = Z ] && break
	sleep 0.2
done
vigild_wait 30
wait "$SPLIT" "${HOSTILE[@]}" 2>/dev/null
tap_result "${TESTS[1]}" $([ "$VIGILD_RC" -eq 0 ]; echo $?) \
	"vigild exit $VIGILD_RC; its log:" "$(tail -10 "$T/vigild.log")"
tap_diag "$(grep -c 'samples and' "$T/vigild.log") intervals lost samples (ring buffer full)" \
	"$(grep 'samples and' "$T/vigild.log" | head -3)"
mapfile -t FILES < <(profile_files "$OUT")

# 3. In every profile where cpusplit has samples, nearly all of them are in
#    a named burn_* function (the workload's own code), as in profile.sh.
bad=""
checked=0
for f in "${FILES[@]}"; do
	pq stacks --label pid=$SPLIT "$f" >"$T/split.folded" 2>/dev/null
	all=$(stacks_sum <"$T/split.folded")
	[ "$all" -ge 10 ] || continue
	named=$(awk -F'\t' '$2 ~ /(^|;)burn_(alpha|beta|gamma)(;|$)/ { n += $1 } END { print n + 0 }' "$T/split.folded")
	checked=$((checked + 1))
	tap_diag "$(basename "$f"): cpusplit $named of $all samples in burn_*"
	[ $((named * 100)) -ge $((all * 90)) ] || bad+="$(basename "$f"): only $named of $all cpusplit samples symbolized; "
done
[ "$checked" -ge 3 ] || bad+="only $checked profiles with 10 or more cpusplit samples; "
tap_result "${TESTS[2]}" $([ -z "$bad" ]; echo $?) "$bad" \
	"$(pq stacks --label pid=$SPLIT "${FILES[@]}" 2>&1 | sort -rn | head -5 | cut -c1-200)"

# 4. The names a hostile copy could produce: the workload's own functions
#    (from nm of the intact file) and the million fake ones.  None may
#    appear in a hostile process's stacks, and its code must show up as
#    0xADDRESS@h-SHAPE (address + mapping).
#    Names that another file of the process defines too (_init, the crt
#    helpers...) may rightly come from there, and are left out.
nm --defined-only "$BASE" | awk '$2 ~ /^[tTwW]$/ { print $3 }' | sort -u >"$T/all.names"
for f in $(ldd "$BASE" | awk '$2 == "=>" { print $3 } $1 ~ /^\// { print $1 }'); do
	nm --defined-only "$f" 2>/dev/null
	nm -D --defined-only "$f" 2>/dev/null
done | awk '{ print $3 }' | sort -u >"$T/other.names"
comm -23 "$T/all.names" "$T/other.names" >"$T/own.names"
tap_diag "names only $(basename "$BASE") defines: $(wc -l <"$T/own.names") ($(head -5 "$T/own.names" | tr '\n' ' ')...)"
bad=""
for i in "${!SHAPES[@]}"; do
	s=${SHAPES[$i]}
	pid=${HOSTILE[$i]}
	pq stacks --label pid=$pid "${FILES[@]}" >"$T/h.folded" 2>/dev/null
	own=$(awk -F'\t' -v m="@h-$s" '{ k = split($2, fr, ";"); for (j = 1; j <= k; j++) if (fr[j] ~ /^0x/ && substr(fr[j], length(fr[j]) - length(m) + 1) == m) { n += $1; break } } END { print n + 0 }' "$T/h.folded")
	frames=$(cut -f2 "$T/h.folded" | tr ';' '\n' | sort -u)
	names=$({
		grep -Fx -f "$T/own.names" <<<"$frames"
		grep -E '^m[0-9]{7}$' <<<"$frames"
	} | head -5)
	tap_diag "h-$s (pid $pid): $(stacks_sum <"$T/h.folded") samples, $own of them with frames 0x...@h-$s"
	[ "$own" -gt 0 ] || bad+="h-$s: no frame as address + mapping; "
	[ -z "$names" ] || bad+="h-$s: named frames $(tr '\n' ' ' <<<"$names"); "
done
tap_result "${TESTS[3]}" $([ -z "$bad" ]; echo $?) "$bad"

# 5. Memory: refused files keep nothing, and one parse holds at most
#    ELFSYM_MAX_PEAK_MEM while it runs (one at a time: the collector has one
#    thread), so the collector's high-water mark may rise by no more than
#    that over what it was with cpusplit alone.
GROWTH_KB=$((PEAK_KB - BASE_KB))
LIMIT_KB=$((ELFSYM_MAX_PEAK_MEM / 1024))
tap_diag "collector VmHWM: ${BASE_KB} kB before the hostile copies, ${PEAK_KB} kB at the end: +${GROWTH_KB} kB (limit +${LIMIT_KB} kB, ELFSYM_MAX_PEAK_MEM)"
tap_result "${TESTS[4]}" $([ -n "$BASE_KB" ] && [ "$GROWTH_KB" -le "$LIMIT_KB" ]; echo $?) \
	"collector pid ${COLLECTOR:-none}: VmHWM ${BASE_KB:-?} kB -> ${PEAK_KB:-?} kB, more than ELFSYM_MAX_PEAK_MEM ($LIMIT_KB kB)"

# 6. Validation.
out=$(validate_profiles "${FILES[@]}")
tap_result "${TESTS[5]}" $? "$out"

tap_done
