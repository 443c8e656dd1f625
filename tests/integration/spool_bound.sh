#!/bin/bash
# tests/integration/spool_bound.sh - an outage longer than the spool holds:
# the spool stays within --spool-max-bytes by dropping the oldest profiles,
# and every profile that does not arrive is one it said it dropped.
#
# vigild at --interval 2 with --spool-max-bytes 4KiB pushes to the
# receiver (lib_pyro.sh), which is stopped for 30 s (about 15 intervals of
# several series each: far more than the 4 KiB bound).  Every spool file (one
# per interval, cpu-<stamp>_<k>_<n>.push, holding its series' PushRequest) is
# recorded as it appears and kept aside (lib_spool.sh), so that its series
# can be matched with what arrived after vigild unlinks it.  A dropped file
# counts as its series: "profiles" below are series.
#
# It mostly waits; it is not in tests/run.sh's pool, so as not to add to
# the load that slows the drain.
#
# It judges only its own vigild and workload and times nothing a loaded
# host could miss: tests/run.sh runs it in its lane, beside the others.
# run.sh: lane

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pyro.sh"
. "$(dirname "$0")/lib_spool.sh"

TESTS=(
	"during the outage the spool stays within --spool-max-bytes"
	"dropping is logged once for the whole outage"
	"after the outage the spool drains"
	"every profile that did not arrive is counted as dropped: the collector's count"
	"... and the comments 'vigil: spool full: dropped N profiles' of the profiles that arrived"
	"nothing arrived that was not written, with the ID of its file"
	"... and the metric vigil_export_profiles_total{result=\"dropped\"}"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
spool_require

OUTAGE=30
# The smallest bound vigild takes: a quiet host writes a few hundred bytes
# per series and interval, and the outage must overfill it whatever the host.
MAX=4096
OUT=$T/profiles
spool_receiver
spool_spin

VIGILD_TIMEOUT=$((OUTAGE + 240))
MPORT=$(free_port)
# A local policy without an export: section, so that the bound can be
# raised after the outage (below) with SIGHUP.
printf 'version: 1\n' >"$T/policy.yaml"
vigild_start "$T/vigild.log" --hz 49 --interval 2 --output "$OUT" --no-top \
	--export-url "$PYRO_URL" --export-max-rate 50 --spool-max-bytes 4KiB \
	--metrics-listen "127.0.0.1:$MPORT" --policy "$T/policy.yaml"
spool_watch "$OUT" || tap_diag "the output directory did not appear: $(tail -5 "$T/vigild.log")"
vigild_wait_ready 20 || tap_diag "vigild did not start sampling; its log:" "$(tail -20 "$T/vigild.log")"
pyro_wait_samples 20 4

# spool_bytes: the bytes of the spool files in the spool now, and its
# oldest and newest file's (which the bound may not drop: the one in
# flight, the one just written).
spool_bytes() {
	find "$OUT" -maxdepth 1 -name 'cpu-*_*_*.push' -printf '%f %s\n' 2>/dev/null | sort -t_ -k1,1 -k2,2n |
		awk '{ t += $2; if (NR == 1) first = $2; last = $2 } END { print t + 0, first + 0, last + 0 }'
}

drop_lines() { grep -c 'dropping the oldest profiles' "$T/vigild.log"; }
# With so small a bound a busy interval may drop even while pushes go
# through; that is an episode of its own, ended by the next push: count the
# outage's lines only.
lines_before=$(drop_lines)
pyro_stop
over=0 peak=0 samples=0
end=$(($(now_ms) + OUTAGE * 1000))
while [ "$(now_ms)" -lt "$end" ]; do
	read -r total first last < <(spool_bytes)
	[ "$total" -gt "$peak" ] && peak=$total
	[ "$total" -gt $((MAX + first + last)) ] && over=$((over + 1))
	samples=$((samples + 1))
	sleep 0.3
done
written_during=$(spool_written | wc -l)
tap_result "${TESTS[0]}" "$([ "$over" = 0 ] && [ "$peak" -gt $((MAX / 2)) ]; echo $?)" \
	"$over of $samples looks over $MAX bytes (+ the oldest and newest file); peak $peak bytes"
episodes=$(($(drop_lines) - lines_before))
tap_result "${TESTS[1]}" "$([ "$episodes" = 1 ]; echo $?)" \
	"$episodes 'dropping' lines; $(grep 'spool' "$T/vigild.log" | head -3 | tr '\n' ' ')"

backlog=$(spool_now "$OUT")
pyro_restart || tap_diag "the receiver did not restart"
drained() { [ -z "$(comm -12 <(echo "$backlog") <(spool_now "$OUT"))" ]; }
wait_for 150 drained
tap_result "${TESTS[2]}" "$(drained; echo $?)" "backlog of $(echo "$backlog" | grep -c .) series"
# With a 4 KiB bound a busy host drops even while pushes go through, and
# the drops of the last interval before SIGTERM would be in no profile's
# comment and perhaps not yet in the metrics.  So the policy raises the
# bound to 256 MiB: from then on nothing is dropped.  Two more intervals
# put the last drops' count into a profile's comment (and the metrics,
# which the collector sends every second).
printf 'version: 1\nexport:\n  spool_max_bytes: 268435456\n' >"$T/policy.yaml"
kill -HUP "$VIGILD_PID"
wait_for 10 grep -q "export: the spool's bound is now 268435456 bytes" "$T/vigild.log" ||
	tap_diag "the policy did not raise the spool's bound: $(tail -3 "$T/vigild.log")"
# The last drops are reported by the next interval that has samples (one
# without writes nothing) and so starts after the bound went up: wait for
# one to arrive.
raised_ns=$(($(now_ms) * 1000000))
pyro_wait_samples 60 1 ".time_nanos > $raised_ns" ||
	tap_diag "no profile of an interval begun after the bound went up arrived"
sleep 1 # the metrics: the collector sends them every second
metric=$(curl -s "http://127.0.0.1:$MPORT/metrics" |
	sed -n 's/^vigil_export_profiles_total{result="dropped"} \([0-9]*\)$/\1/p')
kill -TERM "$VIGILD_PID"
vigild_wait 30
sleep 0.5
spool_written >"$T/written"
spool_now "$OUT" >"$T/remaining"
spool_compare "$T/written" "$T/remaining" >"$T/compare"
tap_diag "$(grep -v '^lost\|^unsent' "$T/compare" | head -5 | tr '\n' ' ')lost $(grep -c '^lost' "$T/compare")"
lost=$(grep -c '^lost ' "$T/compare")
said=$(sed -n 's/.*this run dropped \([0-9]*\) profile(s).*/\1/p' "$T/vigild.log" | tail -1)
tap_result "${TESTS[3]}" "$([ "$lost" -gt 0 ] && [ "$lost" = "${said:-x}" ]; echo $?)" \
	"$lost written, gone and never received; the collector says ${said:-nothing}; $(grep -v '^lost' "$T/compare" | head -6 | tr '\n' ' ')"
# Every series of an interval carries the same comment: one per interval,
# keyed by its start (time_nanos), read from what the receiver got (its log
# has each profile's comments).  A comment in a file that was dropped in
# turn is not counted: its count is reported again by a later profile.
pyro_samples '.status == 200' |
	jq -r '"\(.time_nanos) \((.comments // []) | join("|"))"' >"$T/comments"
commented=$(python3 - "$T/comments" <<'PY'
import re, sys
per = {}
for line in open(sys.argv[1]):
    key, rest = (line.rstrip("\n").split(" ", 1) + [""])[:2]
    ms = int(key) // 1000000
    m = re.search(r"vigil: spool full: dropped (\d+) profiles", rest)
    n = int(m.group(1)) if m else 0
    if per.get(ms, n) != n:  # one interval, two comments: say so, never add up
        print(f"interval {ms} says {per[ms]} in one series and {n} in another")
        sys.exit()
    per[ms] = n
# the sum, then each interval's count
print(sum(per.values()), " ".join(f"{ms % 100000}:{per[ms]}" for ms in sorted(per)))
PY
)
read -r commented intervals <<<"$commented"
tap_result "${TESTS[4]}" "$([ "$commented" = "$lost" ]; echo $?)" \
	"the comments add up to $commented, $lost were dropped; by interval (ms mod 1e5:count): $intervals; spool_compare: $(grep -v '^lost' "$T/compare" | tr '\n' ' ' | head -c 600)"
bad=$(grep '^extra \|^badid \|^dupid \|^mislabelled \|^dupseries \|^unreadable ' "$T/compare")
tap_result "${TESTS[5]}" "$([ -z "$bad" ]; echo $?)" "$(echo "$bad" | head -5)"
tap_result "${TESTS[6]}" "$([ "${metric:-x}" = "$lost" ]; echo $?)" \
	"the metric says ${metric:-nothing}, $lost were dropped"
tap_done
