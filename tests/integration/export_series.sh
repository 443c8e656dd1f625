#!/bin/bash
# tests/integration/export_series.sh - with export on, each interval is
# split into one profile per service: a process in a systemd unit's cgroup
# is that unit's series, one in a container's scope is the container's,
# anything else is its process name; each series' profile holds only its
# own processes' samples and is a valid profile.
#
# Two burners (tests/workloads/cpusplit) run in cgroups named as systemd
# lays them out: .../vigil-it-PID.slice/demo-PID.service and
# .../docker-<64 hex>.scope.  vigild pushes to the receiver (lib_pyro.sh,
# which checks every profile with go tool pprof -raw); the spool's files (one
# per interval, holding its series) are kept aside as they appear
# (lib_spool.sh), their series' profiles pulled out with pushdump --extract
# and read with pprof_query.
#
# It judges only its own vigild and workload and times nothing a loaded
# host could miss: tests/run.sh runs it in its lane, beside the others.
# run.sh: lane

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pyro.sh"
. "$(dirname "$0")/lib_spool.sh"

TESTS=(
	"a process in demo.service's cgroup is the series demo.service, pushed with service_name"
	"a process in docker-<id>.scope is the series docker-<12 hex digits of the id>"
	"each series' profile holds only that series' process, labelled pid/tid/comm/tenant, without thread_name/cgroup"
	"every series' profile in the spool files is a valid profile (go tool pprof -raw) with comm labels"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
spool_require "$PQ"

CGROOT=$(cgroup2_root)
ID=4f1c2a9b8e7d6c5b4a3928171615141312111009080706050403020100ff$(printf '%04x' $(($$ % 65536)))
SLICE=$CGROOT/vigil-it-$$.slice
UNIT=demo-$$.service
CTR=docker-$ID.scope
series_cleanup() {
	lib_cleanup
	rmdir "$SLICE/$UNIT" "$SLICE/$CTR" "$SLICE" 2>/dev/null
}
trap series_cleanup EXIT
if [ -z "$CGROOT" ] || ! mkdir -p "$SLICE/$UNIT" "$SLICE/$CTR"; then
	for n in "${TESTS[@]}"; do tap_not_ok "$n" "cannot make cgroups under ${CGROOT:-(no cgroup2)}"; done
	tap_done
fi

OUT=$T/profiles
pyro_start recv || { for t in "${TESTS[@]}"; do tap_not_ok "$t" "no receiver"; done; tap_done; }
vigild_start "$T/vigild.log" --hz 99 --interval 2 --duration 14 --output "$OUT" --no-top \
	--export-url "$PYRO_URL" --export-max-rate 100 --metrics-listen none
spool_watch "$OUT" || tap_diag "the output directory did not appear: $(tail -5 "$T/vigild.log")"
vigild_wait_ready 20 || tap_diag "vigild did not start sampling; its log:" "$(tail -20 "$T/vigild.log")"
# The burners' comm is cpusplit in both: only the cgroup tells them apart.
spawn sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2" --threads 1 --seconds 8' sh "$SLICE/$UNIT" "$WLD/cpusplit" >/dev/null
A=$SPAWNED_PID
spawn sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2" --threads 1 --seconds 8' sh "$SLICE/$CTR" "$WLD/cpusplit" >/dev/null
C=$SPAWNED_PID
wait "$A" "$C"
vigild_wait 40

short=docker-${ID:0:12}
got() { pyro_samples ".status == 200 and .labels.service_name == \"$1\"" | wc -l; }
n_unit=$(got "$UNIT")
n_ctr=$(got "$short")
tap_result "${TESTS[0]}" "$([ "$n_unit" -ge 2 ]; echo $?)" \
	"$n_unit samples of $UNIT; series seen: $(pyro_samples '.status == 200' | jq -r .labels.service_name | sort -u | head -20 | tr '\n' ' ')"
tap_result "${TESTS[1]}" "$([ "$n_ctr" -ge 2 ]; echo $?)" "$n_ctr samples of $short"

# Every series' profile of every spool file, as a file of its own.
SERIES=$T/series
spool_extract "$SERIES"
extract_rc=$?

# Only the burner of its cgroup in each series' profile (both are comm cpusplit: its pid
# tells them apart); exported profiles carry pid, tid, comm and tenant but not
# the high-cardinality thread_name and cgroup (each distinct set of string
# labels would be a Pyroscope series of its own).
bad=
for f in "$SERIES"/*@"$UNIT"@*.pb.gz "$SERIES"/*@"$short"@*.pb.gz; do
	[ -e "$f" ] || { bad="$bad no-files"; continue; }
	want=$A
	case $f in *"@$short@"*) want=$C ;; esac
	pids=$(pq labels pid "$f" | awk '{ print $2 }' | sort -u)
	comms=$(pq labels comm "$f" | awk '{ print $2 }' | sort -u)
	for l in pid tid comm tenant; do
		[ -n "$(pq labels "$l" "$f")" ] || bad="$bad $(basename "$f"):no-$l"
	done
	for l in thread_name cgroup; do
		[ -z "$(pq labels "$l" "$f")" ] || bad="$bad $(basename "$f"):has-$l"
	done
	# The shell that moves itself into the cgroup and execs cpusplit is
	# the same process (the pid check below): a sample may catch it as sh.
	[ "$comms" = cpusplit ] || [ "$(echo $comms)" = "cpusplit sh" ] ||
		bad="$bad $(basename "$f"):comm=$(echo $comms)"
	[ "$pids" = "$want" ] || bad="$bad $(basename "$f"):pid=$(echo $pids)/want-$want"
done
tap_result "${TESTS[2]}" "$([ -z "$bad" ]; echo $?)" "${bad:0:600}"
out=
[ "$extract_rc" = 0 ] || out="pushdump --extract exit $extract_rc: $(head -3 "$T/spool-extract.err")"
for f in "$SERIES"/*.pb.gz; do
	[ -e "$f" ] || { out="no profile files"; break; }
	o=$(go tool pprof -symbolize=none -raw "$f" 2>&1 >/dev/null) ||
		out="$out go tool pprof -raw $(basename "$f"): $(echo "$o" | head -2 | tr '\n' ' ')"
	[ -n "$(pq labels comm "$f")" ] || out="$out $(basename "$f"): no comm label"
done
tap_result "${TESTS[3]}" "$([ -z "$out" ] && [ "$(pyro_samples '.status != 200' | wc -l)" = 0 ]; echo $?)" \
	"$(echo "$out" | head -5) $(pyro_samples '.status != 200' | head -2)"
tap_done
