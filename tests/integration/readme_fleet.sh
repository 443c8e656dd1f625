#!/bin/bash
# tests/integration/readme_fleet.sh - the README's "Fleet" quick start,
# run as written: the shell block after the "fleet-quickstart" marker is
# taken from README.md and run from the project's directory with only these
# substitutions, so that it cannot collide with the invoker's files or
# servers: var/ becomes this test's own directory, port 4320 a free port,
# and /sys/fs/cgroup/system.slice a cgroup made here with a busy process in
# it (a host without systemd has no system.slice).  Then what the README
# promises must hold: the agent is APPLIED with serial 1, and its profiles
# label that cgroup's samples tenant=system.  pg_readme_fleet.sh runs the
# same block with its --db sqlite:... replaced by a database on a real
# PostgreSQL (lib_backend.sh), as docs/control-plane.md says to.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_backend.sh"

NAMES=(
	"the README's fleet block runs to its end without an error"
	"vigilctl agents (the block's last command) shows this host APPLIED with serial 1"
	"vigild's profiles label the selected cgroup's samples tenant=system"
)
tap_plan ${#NAMES[@]}
require_file "$B/vigil-cp" "${NAMES[@]}" && require_file "$B/vigilctl" "${NAMES[@]}" &&
	require_file "$B/tests/tools/json_get" "${NAMES[@]}"
require_bpf "${NAMES[@]}"

CGROOT=$(cgroup2_root)
CG=$CGROOT/vigil-it-$$-fleet
PORT=$(free_port)
mkdir "$CG" || { tap_not_ok "${NAMES[0]}" "cannot make $CG"; exit 1; }
fleet_cleanup() {
	[ -f "$T/pids" ] && kill $(cat "$T/pids") 2>/dev/null
	pkill -f -- "$T/var/" 2>/dev/null
	sleep 0.5
	lib_cleanup
	rmdir "$CG" 2>/dev/null
}
trap fleet_cleanup EXIT

# A process in the cgroup the policy selects, busy a fifth of the time, for
# the whole test.
spawn sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2" --threads 1 --duty 20 --seconds 60' sh "$CG" "$WLD/cpusplit" \
	>/dev/null

# The block, from the marker's fence to the closing fence.
awk '/<!-- fleet-quickstart/ { on = 1; next } on && /^```sh/ { inb = 1; next }
	inb && /^```/ { exit } inb { print }' "$VIGIL_ROOT/README.md" >"$T/block.sh"
grep -q 'build/vigil-cp' "$T/block.sh" || { tap_not_ok "${NAMES[0]}" "no fleet block in README.md"; exit 1; }
DBSUB=()
if [ "$BACKEND" != sqlite ]; then
	grep -q -- '--db sqlite:[^ ]*' "$T/block.sh" || { tap_not_ok "${NAMES[0]}" "no --db sqlite:... in the block"; exit 1; }
	DBSUB=(-e "s|--db sqlite:[^ ]*|--db '$(cp_db "$T/var/vigil-cp.db")'|")
fi
sed -e "s|var/|$T/var/|g" -e "s|:4320|:$PORT|g" -e "s|/sys/fs/cgroup/system.slice|$CG|g" "${DBSUB[@]}" \
	"$T/block.sh" >"$T/run.sh"
# The block leaves vigil-cp and vigild running (the README stops them with
# kill %1 %2): their pids are kept at the block's exit, even a failed one,
# and the cleanup also kills whatever still runs with this test's paths.
sed -i '1i trap '"'"'jobs -p >"$T_PIDS"'"'"' EXIT' "$T/run.sh"

cd "$VIGIL_ROOT" || exit 1
T_PIDS=$T/pids bash -e "$T/run.sh" >"$T/out" 2>"$T/err"
rc=$?
tap_result "${NAMES[0]}" $rc "exit $rc" "$(tail -5 "$T/err")"

JG=$B/tests/tools/json_get
# vigilctl prints JSON off a terminal, one document per command: the last one.
doc=$(awk '/^[{]/ { buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }' "$T/out")
st=$(printf "%s" "$doc" | "$JG" ".agents[0].remote_config_status" 2>/dev/null)
serial=$(printf "%s" "$doc" | "$JG" ".agents[0].applied_serial" 2>/dev/null)
[ "$st" = APPLIED ] && [ "$serial" = 1 ]
tap_result "${NAMES[1]}" $? "status '$st', serial '$serial'" "$(tail -c 600 "$T/out")"

# Profiles written after the policy was applied (one interval is 10 s).
found=0
for _ in $(seq 40); do
	for f in $(profile_files "$T/var/profiles"); do
		[ "$(pq total --label tenant=system "$f" 2>/dev/null || echo 0)" -gt 0 ] && found=1
	done
	[ $found = 1 ] && break
	sleep 0.5
done
[ $found = 1 ]
tap_result "${NAMES[2]}" $? "$(ls "$T/var/profiles" 2>&1 | tail -3)" "$(tail -5 "$T/err")"
tap_done
