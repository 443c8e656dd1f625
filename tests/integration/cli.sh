#!/bin/bash
# tests/integration/cli.sh - vigild's command-line and privilege errors.
#
# A usage error exits 64 with exactly one line on stderr; a user without
# root or CAP_BPF + CAP_PERFMON gets exit 77 and a line naming what is
# missing.  None of this needs BPF to work, only a built vigild.

. "$(dirname "$0")/lib.sh"

TESTS=(
	"unknown option: exit 64, one line"
	"--hz 0: exit 64, one line"
	"--hz 1000000000: exit 64, one line"
	"--hz abc: exit 64, one line"
	"--interval 0: exit 64, one line"
	"unprivileged user: exit 77 naming root or CAP_BPF/CAP_PERFMON"
	"kernel without BTF: exit 69, one line naming BTF"
	"--help: usage on stdout, exit 0"
	"vigild-uplink-local missing beside vigild (no control plane, no export): exit 72, one line naming it, before anything is written"
	"vigild-uplink missing beside vigild, with --export-url: exit 72, one line naming it"
	"vigild-collector writable by others, with --export-url: exit 72, one line naming it and the fix"
	"the worker programs run by hand: exit 64, one line"
	"vigild-collector-local missing beside vigild (no control plane, no export): exit 72, one line naming it, before anything is written"
	"vigild-collector missing beside vigild, with --export-url: exit 72, one line naming it"
)
tap_plan ${#TESTS[@]}
require_file "$VIGILD" "${TESTS[@]}"

OUT=$T/out # never created: every case here must fail before vigild writes

# expect_usage NAME ARGS...: vigild ARGS must exit 64 with one stderr line.
expect_usage() {
	local name=$1 rc lines
	shift
	timeout 20 "$VIGILD" "$@" >"$T/stdout" 2>"$T/stderr"
	rc=$?
	lines=$(grep -c . "$T/stderr")
	tap_result "$name" $([ "$rc" -eq 64 ] && [ "$lines" -eq 1 ]; echo $?) \
		"vigild $* -> exit $rc, $lines stderr line(s):" "$(head -5 "$T/stderr")"
}

expect_usage "${TESTS[0]}" --no-such-option --duration 1 --output "$OUT"
expect_usage "${TESTS[1]}" --hz 0 --duration 1 --output "$OUT"
expect_usage "${TESTS[2]}" --hz 1000000000 --duration 1 --output "$OUT"
expect_usage "${TESTS[3]}" --hz abc --duration 1 --output "$OUT"
expect_usage "${TESTS[4]}" --interval 0 --duration 1 --output "$OUT"

if ! command -v setpriv >/dev/null; then
	tap_skip "${TESTS[5]}" "setpriv (util-linux) not installed"
elif [ "$(id -u)" -ne 0 ]; then
	tap_skip "${TESTS[5]}" "needs root to switch to an unprivileged user"
else
	timeout 20 setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$VIGILD" --hz 19 --duration 1 --output "$OUT" >"$T/stdout" 2>"$T/stderr"
	rc=$?
	lines=$(grep -c . "$T/stderr")
	tap_result "${TESTS[5]}" \
		$([ "$rc" -eq 77 ] && [ "$lines" -eq 1 ] && grep -qE 'CAP_BPF|CAP_PERFMON|root' "$T/stderr"; echo $?) \
		"as uid 65534: exit $rc, $lines stderr line(s):" "$(head -5 "$T/stderr")"
fi

# No BTF: hide /sys/kernel/btf behind an empty tmpfs in a private mount
# namespace, so vigild sees a kernel that has none.
if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null; then
	tap_skip "${TESTS[6]}" "needs root and unshare for a private mount namespace"
else
	timeout 20 unshare -m --propagation private sh -c \
		'mount -t tmpfs tmpfs /sys/kernel/btf && exec "$0" "$@"' \
		"$VIGILD" --hz 19 --duration 1 --output "$OUT" >"$T/stdout" 2>"$T/stderr"
	rc=$?
	lines=$(grep -c . "$T/stderr")
	tap_result "${TESTS[6]}" \
		$([ "$rc" -eq 69 ] && [ "$lines" -eq 1 ] && grep -q 'BTF' "$T/stderr"; echo $?) \
		"without /sys/kernel/btf/vmlinux: exit $rc, $lines stderr line(s):" "$(head -5 "$T/stderr")"
fi

timeout 20 "$VIGILD" --help >"$T/stdout" 2>"$T/stderr"
rc=$?
tap_result "${TESTS[7]}" $([ "$rc" -eq 0 ] && grep -q -- '--hz' "$T/stdout" && [ ! -s "$T/stderr" ]; echo $?) \
	"vigild --help -> exit $rc" "$(head -3 "$T/stderr")"

# The worker programs (daemon/workerexe.h): copies of the build's in a
# directory of the test's, one missing, then one writable by others.
BIN=$T/bin
mkdir -p "$BIN" && cp "$VIGILD" "$VIGILD-collector" "$VIGILD-collector-local" "$BIN/" && chmod 0755 "$BIN"/*
worker_refused() { # NAME PATTERN [ARGS...]
	local rc lines name=$1 pattern=$2
	shift 2
	timeout 30 "$BIN/vigild" --hz 19 --duration 1 --output "$OUT" --bpf-dir "$B/bpf" \
		--trust "$B/dev-ca/ca.pem" --metrics-listen none --no-top "$@" >"$T/stdout" 2>"$T/stderr"
	rc=$?
	lines=$(grep -c . "$T/stderr")
	tap_result "$name" $([ "$rc" -eq 72 ] && [ "$lines" -eq 1 ] && grep -qE "$pattern" "$T/stderr" &&
		[ ! -e "$OUT" ]; echo $?) \
		"exit $rc, $lines stderr line(s); $OUT $([ -e "$OUT" ] && echo made || echo not made):" \
		"$(head -5 "$T/stderr")"
}
# The uplink's program is vigild-uplink-local without a control plane or
# export (no libcurl), vigild-uplink with either: only that one is needed.
cp "$VIGILD-uplink" "$BIN/" && chmod 0755 "$BIN/vigild-uplink"
worker_refused "${TESTS[8]}" "$BIN/vigild-uplink-local: No such file"
rm -f "$BIN/vigild-uplink"
cp "$VIGILD-uplink-local" "$BIN/" && chmod 0755 "$BIN/vigild-uplink-local"
worker_refused "${TESTS[9]}" "$BIN/vigild-uplink: No such file" --export-url http://127.0.0.1:4040
cp "$VIGILD-uplink" "$BIN/" && chmod 0755 "$BIN/vigild-uplink" && chmod 0757 "$BIN/vigild-collector"
worker_refused "${TESTS[10]}" "$BIN/vigild-collector: writable by others .*chmod go-w" \
	--export-url http://127.0.0.1:4040

# The collector's program likewise: vigild-collector-local (no libcrypto)
# without a control plane or export, vigild-collector with either.
mv "$BIN/vigild-collector" "$BIN/collector.away"
worker_refused "${TESTS[13]}" "$BIN/vigild-collector: No such file" --export-url http://127.0.0.1:4040
mv "$BIN/collector.away" "$BIN/vigild-collector" && chmod 0755 "$BIN/vigild-collector"
rm -f "$BIN/vigild-collector-local"
worker_refused "${TESTS[12]}" "$BIN/vigild-collector-local: No such file"

bad=
for w in collector collector-local uplink uplink-local; do
	timeout 10 "$VIGILD-$w" --internal-role "${w%-local}" extra >"$T/stdout" 2>"$T/stderr"
	rc=$?
	[ "$rc" -eq 64 ] && [ "$(grep -c . "$T/stderr")" -eq 1 ] ||
		bad+="vigild-$w: exit $rc: $(head -3 "$T/stderr") "
done
tap_result "${TESTS[11]}" $([ -z "$bad" ]; echo $?) "$bad"

tap_done
