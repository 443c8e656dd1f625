#!/bin/bash
# tests/integration/debug_files.sh - symbols from separate debug files
# (issue 12): when a file's debug file is installed where Debian's -dbgsym
# packages put it, /usr/lib/debug/.build-id/xx/rest.debug, vigild names
# the functions only that file knows (static ones, or all of a stripped
# binary's).  The collector asks the monitor for it by build-id and takes
# it only if its own note says the same build-id.
#
#  - Debian's libc6-dbg (make deps): start_thread, static in libc and in
#    neither of libc's own symbol tables, names the root of cpusplit's
#    threads.
#  - tests/workloads/dbgsplit (cpusplit, stripped, under a build-id of
#    its own) and dbgsplit.debug: without the debug file its functions
#    have no names; installed under the build-id for the second run, they
#    have; a file of another build-id at that path is not taken.  Its
#    .gnu_debuglink names dbgsplit.debug: found beside it or in .debug/
#    beside it (GDB's places), but not with another CRC-32 or owner.
#    (The runs use a copy in the scratch directory, so that the debug file
#    is beside it only when a case puts it there.)
#  - tests/workloads/minisplit (cpusplit, stripped, its .symtab xz'ed into
#    .gnu_debugdata: MiniDebugInfo): named from that section.  A copy whose
#    .gnu_debugdata is an xz bomb (256 MiB of zeros in a few KiB) stays
#    unnamed, and the collector's memory stays far below the bomb.
#
# It judges only its own vigild and workload and times nothing a loaded
# host could miss: tests/run.sh runs it in its lane, beside the others.
# run.sh: lane

. "$(dirname "$0")/lib.sh"

TESTS=(
	"libc6-dbg: start_thread (in neither of libc's own symbol tables) roots cpusplit's thread stacks"
	"a stripped binary without its debug file: burn_alpha, burn_beta and split_run have no names"
	"its debug file under /usr/lib/debug/.build-id: they are named, in whole stacks"
	"a file of another build-id at that path is not taken: no names from it"
	".gnu_debuglink: the debug file it names, beside the binary or in .debug/ beside it, names its functions"
	".gnu_debuglink: a file of another CRC-32, of another owner than the binary's, or not readable by every user, is not taken"
	"MiniDebugInfo: a stripped binary's .gnu_debugdata names its functions"
	"an xz bomb in .gnu_debugdata: refused, no names, the collector's peak RSS stays under 64 MiB"
	"vigild exits 0 in every run, and its profiles are valid"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$PQ" "${TESTS[@]}"
require_file "$WLD/dbgsplit" "${TESTS[@]}"
require_file "$WLD/dbgsplit.debug" "${TESTS[@]}"
require_file "$WLD/minisplit" "${TESTS[@]}"

BID=$(readelf -n "$WLD/dbgsplit" | awk '/Build ID/ { print $3 }')
DBG=/usr/lib/debug/.build-id/${BID:0:2}/${BID:2}.debug
# This test's own build-id: nobody else's debug file is touched.
cleanup_debug() { rm -f "$DBG"; rmdir "$(dirname "$DBG")" 2>/dev/null; lib_cleanup; }
trap cleanup_debug EXIT
rm -f "$DBG"

# The stripped binary, alone in a directory of its own (with the library it links).
SPLIT=$T/bin/dbgsplit
mkdir -p "$T/bin"
cp "$WLD/dbgsplit" "$WLD"/lib*.so "$T/bin/"
chmod -R a+rX "$T/bin"
# The monitor hands out a .gnu_debuglink file only if every user could read
# it, directories above included: the scratch directory (0700) must let
# others through.
chmod o+x "$T"

RCS=() BAD=()
declare -A CPU
# run NAME WORKLOAD...: vigild while WORKLOAD runs 3 s, then SIGTERM (the
# last profile written at exit); profiles in $T/NAME, the CPU seconds the
# workload says it got (cpusplit's last line) in CPU[NAME]
run() {
	local name=$1 f wl
	shift
	vigild_start "$T/$name.log" --hz 99 --interval 2 --duration 0 --output "$T/$name"
	vigild_wait_ready 20 || tap_diag "$name: vigild not sampling after 20 s:" "$(tail -5 "$T/$name.log")"
	spawn "$@" --seconds 3 --threads 2 >"$T/$name.out"
	wl=$SPAWNED_PID
	wait "$wl"
	CPU[$name]=$(cpusplit_cpu "$T/$name.out")
	# the collector's peak RSS (kB), before it exits
	co=$(pgrep -P "$VIGILD_PID" -f 'internal-role collector' | head -1)
	HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$co/status" 2>/dev/null)
	kill -TERM "$VIGILD_PID"
	vigild_wait 30
	RCS+=("$name:$VIGILD_RC")
	mapfile -t F < <(profile_files "$T/$name")
	f=$(validate_profiles "${F[@]}")
	[ ${#F[@]} -gt 0 ] && [ -z "$f" ] || BAD+=("$name: ${#F[@]} files $f")
	# by its pid too: the serial scripts run cpusplit for minutes
	"$PQ" stacks --label "comm=$(basename "$1")" --label "pid=$wl" "${F[@]}" >"$T/$name.stacks"
}
# share PATTERN FILE: the % of the samples of FILE (pprof_query stacks) whose stack matches
share() {
	awk -F'\t' -v re="$1" '{ n += $1; if ($2 ~ re) m += $1 } END { printf "%d", n ? 100 * m / n : 0 }' "$2"
}
samples() { awk -F'\t' '{ n += $1 } END { print n + 0 }' "$1"; }
# enough NAME: run NAME's profiles hold enough of the workload to judge
# (lib.sh's enough_samples, for the CPU it got at 99 Hz): in 3 s a loaded
# host gives the two threads far less than 6 s of CPU (CI once gave them
# about 1 s, 100 samples).
enough() { enough_samples "$(samples "$T/$1.stacks")" "${CPU[$1]}" 99; }
# got NAME: "N samples of S s CPU", for the diagnostics
got() { echo "$(samples "$T/$1.stacks") samples of ${CPU[$1]:-?} s CPU"; }

# 1. libc6-dbg
LIBC=$(ldd "$WLD/cpusplit" | awk '$1 ~ /^libc\.so/ { print $3 }')
LIBC_BID=$(readelf -n "$LIBC" | awk '/Build ID/ { print $3 }')
in_libc=$(readelf -sW "$LIBC" | awk '$8 == "start_thread"' | wc -l)
run libc "$WLD/cpusplit"
# with DWARF unwinding the stack goes on to clone3, whose CFI ends it
pct=$(share '^(clone3;)?start_thread;split_run;' "$T/libc.stacks")
if [ ! -f "/usr/lib/debug/.build-id/${LIBC_BID:0:2}/${LIBC_BID:2}.debug" ]; then
	tap_not_ok "${TESTS[0]}" "libc6-dbg is not installed for $LIBC ($LIBC_BID): make deps installs it"
else
	tap_result "${TESTS[0]}" "$([ "$in_libc" = 0 ] && enough libc &&
		[ "$pct" -ge 90 ]; echo $?)" \
		"$pct% of $(got libc); start_thread in libc's tables: $in_libc;" \
		"$(head -3 "$T/libc.stacks" | tr '\n' ' ')"
fi

# 2. stripped, no debug file
run nodebug "$SPLIT"
named=$(grep -cE 'burn_alpha|burn_beta|split_run' "$T/nodebug.stacks")
tap_result "${TESTS[1]}" "$(enough nodebug && [ "$named" = 0 ]; echo $?)" \
	"$named stacks name them; $(got nodebug); $(head -3 "$T/nodebug.stacks" | tr '\n' ' ')"

# 3. its debug file installed
mkdir -p "$(dirname "$DBG")"
cp "$WLD/dbgsplit.debug" "$DBG"
run debug "$SPLIT"
pct=$(share ';split_run;burn_(alpha|beta|gamma)' "$T/debug.stacks")
tap_result "${TESTS[2]}" "$(enough debug && [ "$pct" -ge 90 ] &&
	grep -q ';split_run;burn_alpha' "$T/debug.stacks" && grep -q ';split_run;burn_beta' "$T/debug.stacks"; echo $?)" \
	"$pct% of $(got debug) in split_run;burn_*; $(head -3 "$T/debug.stacks" | tr '\n' ' ')"

# 4. another file's debug file at that path (cpusplit's own, unstripped: burn_* by name)
objcopy --only-keep-debug "$WLD/cpusplit" "$DBG"
run wrong "$SPLIT"
named=$(grep -cE 'burn_alpha|burn_beta|split_run' "$T/wrong.stacks")
tap_result "${TESTS[3]}" "$(enough wrong && [ "$named" = 0 ]; echo $?)" \
	"$named stacks name them; $(got wrong); $(head -3 "$T/wrong.stacks" | tr '\n' ' ')"
rm -f "$DBG"

# .gnu_debuglink: beside, then in .debug/
cp "$WLD/dbgsplit.debug" "$T/bin/dbgsplit.debug"
run link "$SPLIT"
mkdir -p "$T/bin/.debug"
mv "$T/bin/dbgsplit.debug" "$T/bin/.debug/dbgsplit.debug"
run linkdir "$SPLIT"
p1=$(share ';split_run;burn_(alpha|beta|gamma)' "$T/link.stacks")
p2=$(share ';split_run;burn_(alpha|beta|gamma)' "$T/linkdir.stacks")
tap_result "${TESTS[4]}" "$([ "$(readelf -p .gnu_debuglink "$SPLIT" | grep -c dbgsplit.debug)" = 1 ] &&
	enough link && [ "$p1" -ge 90 ] &&
	enough linkdir && [ "$p2" -ge 90 ]; echo $?)" \
	"beside: $p1% of $(got link) named; in .debug/: $p2% of $(got linkdir)"
# ... another CRC (one byte more: still an ELF file), then another owner
cat "$WLD/dbgsplit.debug" - <<<"x" >"$T/bin/.debug/dbgsplit.debug"
run linkcrc "$SPLIT"
cp "$WLD/dbgsplit.debug" "$T/bin/.debug/dbgsplit.debug"
chown 65534:65534 "$T/bin/.debug/dbgsplit.debug"
run linkowner "$SPLIT"
chown 0:0 "$T/bin/.debug/dbgsplit.debug"
chmod 0640 "$T/bin/.debug/dbgsplit.debug"
run linkmode "$SPLIT"
rm -rf "$T/bin/.debug"
n1=$(grep -cE 'burn_alpha|burn_beta|split_run' "$T/linkcrc.stacks")
n2=$(grep -cE 'burn_alpha|burn_beta|split_run' "$T/linkowner.stacks")
n3=$(grep -cE 'burn_alpha|burn_beta|split_run' "$T/linkmode.stacks")
tap_result "${TESTS[5]}" "$(enough linkcrc && [ "$n1" = 0 ] &&
	enough linkowner && [ "$n2" = 0 ] &&
	enough linkmode && [ "$n3" = 0 ]; echo $?)" \
	"stacks naming them: $n1 with another CRC ($(got linkcrc)), $n2 with another owner ($(got linkowner)), $n3 when mode 0640 ($(got linkmode))"

# 5. MiniDebugInfo
run mini "$WLD/minisplit"
pct=$(share ';split_run;burn_(alpha|beta|gamma)' "$T/mini.stacks")
tap_result "${TESTS[6]}" "$(enough mini && [ "$pct" -ge 90 ] &&
	[ "$(readelf -sW "$WLD/minisplit" | grep -c split_run)" = 0 ]; echo $?)" \
	"$pct% of $(got mini) in split_run;burn_*; $(head -3 "$T/mini.stacks" | tr '\n' ' ')"

# 6. an xz bomb: 256 MiB of zeros, compressed, as minisplit's .gnu_debugdata
head -c 256M /dev/zero | xz -1 -c >"$T/bomb.xz"
BOMB=$T/bombsplit
objcopy --remove-section .gnu_debugdata --add-section .gnu_debugdata="$T/bomb.xz" "$WLD/minisplit" "$BOMB"
cp "$WLD"/lib*.so "$T/" # its rpath is $ORIGIN
chmod 755 "$BOMB"
run bomb "$BOMB"
named=$(grep -cE 'burn_alpha|burn_beta|split_run' "$T/bomb.stacks")
tap_result "${TESTS[7]}" "$(enough bomb && [ "$named" = 0 ] &&
	[ "${HWM:-999999}" -lt 65536 ]; echo $?)" \
	"$named stacks name them; $(got bomb); collector peak RSS ${HWM:-?} kB; bomb $(stat -c %s "$T/bomb.xz") bytes of xz;" \
	"$(head -2 "$T/bomb.stacks" | tr '\n' ' ')"

tap_result "${TESTS[8]}" "$([ "${RCS[*]}" = "libc:0 nodebug:0 debug:0 wrong:0 link:0 linkdir:0 linkcrc:0 linkowner:0 linkmode:0 mini:0 bomb:0" ] && [ ${#BAD[@]} = 0 ]; echo $?)" \
	"exit codes: ${RCS[*]}; ${BAD[*]}"
tap_done
