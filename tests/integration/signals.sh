#!/bin/bash
# tests/integration/signals.sh - vigild --duration 0 runs until SIGTERM or
# SIGINT, and on either writes the interval it was in the middle of (a
# partial profile) before exiting 0.
#
# Each signal gets its own session with a 60 s interval, so the only file
# there can be is the one the signal flushed; cpusplit runs meanwhile so the
# partial profile must contain it.

. "$(dirname "$0")/lib.sh"

TESTS=(
	"SIGTERM with --duration 0: partial profile written, exit 0"
	"SIGINT with --duration 0: partial profile written, exit 0"
)
tap_plan ${#TESTS[@]}
require_bpf "${TESTS[@]}"
require_file "$PQ" "${TESTS[@]}"

# session SIGNAL NAME
session() {
	local sig=$1 name=$2 out=$T/$1 wl files problems= # vigild creates $out
	VIGILD_TIMEOUT=90
	vigild_start "$T/$sig.log" --hz 99 --interval 60 --duration 0 --output "$out"
	vigild_wait_ready 20 || problems+="not sampling after 20 s; "
	"$WLD/cpusplit" --seconds 2 >/dev/null &
	wl=$!
	wait "$wl"
	kill -"$sig" "$VIGILD_PID"
	vigild_wait 20 || problems+="still running 20 s after $sig; "
	[ "$VIGILD_RC" -eq 0 ] || problems+="exit $VIGILD_RC after $sig; "
	mapfile -t files < <(profile_files "$out")
	if [ ${#files[@]} -ne 1 ]; then
		problems+="${#files[@]} profile files, expected the one partial interval; "
	else
		problems+=$(validate_profiles "${files[@]}" | tr '\n' ' ')
		pq stacks --label pid=$wl "${files[0]}" | has_frame burn_alpha ||
			problems+="the partial profile lacks cpusplit's burn_alpha (pid $wl); "
	fi
	[ -z "$(find "$out" -mindepth 1 -name '.*')" ] || problems+="temporary files left behind; "
	if [ -z "$problems" ]; then
		tap_ok "$name"
	else
		tap_not_ok "$name" "$problems" "vigild log:" "$(tail -10 "$T/$sig.log")"
	fi
}

session TERM "${TESTS[0]}"
session INT "${TESTS[1]}"
tap_done
