#!/bin/bash
# tests/integration/lib_pyro.sh - a Pyroscope stand-in for the tests that
# export profiles (tests/tools/pyro_receiver.c says what it checks and how
# it answers; pyro_push.c is a client for it).
#
# Sourced after lib.sh, never run.  It gives
#   pyro_start NAME [ARGS...]  start a receiver on a free 127.0.0.1 port with
#                      its log in $T/NAME.jsonl; sets PYRO_PID, PYRO_PORT,
#                      PYRO_URL (http:// or https:// when ARGS have --cert)
#                      and PYRO_LOG.  Returns 1 when it does not listen
#                      within 10 s (its stderr is $T/NAME.err).
#   pyro_stop          SIGTERM the receiver pyro_start started last, wait;
#                      its exit status (0 when it shut down cleanly).
#   pyro_restart       start it again as it was, on the same port, appending
#                      to the same log (an outage ends)
#   pyro_script LIST   replace its script (SIGUSR1 + $T/NAME.script);
#                      pyro_start must have had --script-file "$PYRO_SCRIPT".
#   pyro_requests [JQ-FILTER]   the logged requests (not script events), as
#                      compact JSON lines, optionally filtered by jq select().
#   pyro_samples [JQ-FILTER]    every logged sample, one JSON line each, with
#                      the request's status, seq and time_unix_ms added.
#   pyro_wait_samples SECONDS N [JQ-FILTER]   wait until N samples (that
#                      match) were answered 200; 1 on timeout.
# PYRO_RECEIVER and PYRO_PUSH are the tools (the environment may name
# others, e.g. a build with sanitizers).

[ "${BASH_SOURCE[0]}" = "$0" ] && exit 0

PYRO_RECEIVER=${PYRO_RECEIVER:-$B/tests/tools/pyro_receiver}
PYRO_PUSH=${PYRO_PUSH:-$B/tests/tools/pyro_push}

# The port is one free_port gives unless ARGS name one: pyro_restart
# binds it again after an outage, and a port of the kernel's ephemeral
# range could by then be an outgoing connection's of a script run beside.
pyro_start() {
	local name=$1 a tls= given= port=()
	shift
	PYRO_NAME=$name
	PYRO_ARGS=("$@")
	for a in "$@"; do
		case $a in
		--cert) tls=1 ;;
		--port | --port=*) given=1 ;;
		esac
	done
	[ -n "$given" ] || port=(--port "$(free_port)")
	PYRO_LOG=$T/$name.jsonl
	PYRO_SCRIPT=$T/$name.script
	rm -f "$T/$name.port"
	spawn "$PYRO_RECEIVER" --port-file "$T/$name.port" --log "$PYRO_LOG" "${port[@]}" "$@" 2>"$T/$name.err"
	PYRO_PID=$SPAWNED_PID
	if ! wait_for 10 test -s "$T/$name.port"; then
		echo "# pyro_receiver $name did not listen: $(head -3 "$T/$name.err" | tr '\n' ' ')"
		return 1
	fi
	PYRO_PORT=$(cat "$T/$name.port")
	PYRO_URL=http${tls:+s}://127.0.0.1:$PYRO_PORT
}

pyro_stop() {
	kill -TERM "$PYRO_PID" 2>/dev/null
	wait "$PYRO_PID" 2>/dev/null
}

pyro_restart() {
	local args=("${PYRO_ARGS[@]}") port=$PYRO_PORT
	# --port last: getopt keeps the last one, whatever ARGS said.
	pyro_start "$PYRO_NAME" "${args[@]}" --port "$port" || return 1
	PYRO_ARGS=("${args[@]}")
}

pyro_script() {
	local before
	before=$(grep -c '"event":"script"' "$PYRO_LOG")
	printf '%s\n' "$1" >"$PYRO_SCRIPT.tmp" && mv "$PYRO_SCRIPT.tmp" "$PYRO_SCRIPT"
	kill -USR1 "$PYRO_PID"
	# The receiver logs each script it loads; wait until it has this one.
	wait_for 5 eval '[ "$(grep -c "\"event\":\"script\"" "$PYRO_LOG")" -gt "$before" ]'
}

pyro_requests() {
	jq -c "select(.seq != null)${1:+ | select($1)}" "$PYRO_LOG"
}

pyro_samples() {
	jq -c "select(.seq != null) | . as \$r | (.samples // [])[] | . + {status: \$r.status, seq: \$r.seq, time_unix_ms: \$r.time_unix_ms}${1:+ | select($1)}" "$PYRO_LOG"
}

pyro_wait_samples() {
	local secs=$1 n=$2 filter=${3:-true}
	wait_for "$secs" eval '[ "$(pyro_samples "(.status == 200) and ($filter)" | wc -l)" -ge "$n" ]'
}
