#!/bin/bash
# tests/integration/pushdump.sh - the tests' reader of export spool files
# (tests/tools/pushdump.c), on its own: the export tests count series,
# compare IDs and read comments through it, so it must say exactly what a
# file holds and refuse what is not a spool file.
#
# Spool files are built here without vigild: pyro_push --write makes a
# one-series PushRequest, and concatenating serialized PushRequests makes
# one request holding all their series (protobuf merges repeated fields).
# Every expected line is written out independently of pushdump (the
# escaping and the shortening of long services by spoolq_name's rules in
# Python), so a pushdump that prints the wrong series, order, count or
# name fails.
#
# It judges only its own vigild and workload and times nothing a loaded
# host could miss: tests/run.sh runs it in its lane, beside the others.
# run.sh: lane

. "$(dirname "$0")/lib.sh"

PUSHDUMP=$B/tests/tools/pushdump
PYRO_PUSH=$B/tests/tools/pyro_push

TESTS=(
	"two series in one file: one line each, in file order, VNAME from the stamp and service_name/tenant (escaped, empty tenant), ID, samples, sorted labels"
	"--extract DIR writes each series' raw_profile under its VNAME, byte for byte; go tool pprof reads it; samples agree with pprof_query"
	"a service too long for a file name: VNAME shortened as spoolq_name does (cut, ~ and FNV-1a), at most 200 bytes"
	"several files: their lines in argument order; a bad file among them is reported and the good ones still dumped (exit 65)"
	"an empty file, garbage, and every truncation of a good file: exit 65, one line naming the file, nothing on stdout"
	"not what the name says or the contract wants: exit 65 with the reason (name form, stamp, count, no service_name, label twice, 0 or 2 RawSamples, not gzip, not pprof, two series with one VNAME)"
	"usage 64, a missing file 66, an unwritable --extract directory 73"
)
tap_plan ${#TESTS[@]}

for tool in "$PUSHDUMP" "$PYRO_PUSH" "$PQ"; do
	if [ ! -x "$tool" ]; then
		for t in "${TESTS[@]}"; do tap_not_ok "$t" "$tool is not built (make)"; done
		tap_done
	fi
done

cd "$T" || exit 1
STAMP=20261130T201501.123Z
TAB=$'\t'

# one NAME ARGS...: a one-series PushRequest in NAME (pyro_push --write).
one() {
	local name=$1
	shift
	"$PYRO_PUSH" --write "$name" "$@" 2>>"$T/pyro_push.err"
}

# run OUT ERR ARGS...: pushdump ARGS, stdout in OUT, stderr in ERR; prints the exit code.
run() {
	local out=$1 err=$2
	shift 2
	"$PUSHDUMP" "$@" >"$out" 2>"$err"
	echo $?
}

# 1. Two series.
problems=
one a.req --label service_name=web --label __name__=process_cpu --label tenant=t1 --label host=h1 \
	--synth 5 --id 11111111-2222-8333-8444-555555555555
one b.req --label __name__=process_cpu --label service_name='we b/x,y=z' --label zz=$'tab\there' \
	--synth 3 --id ID-B
F2=cpu-${STAMP}_0_2.push
cat a.req b.req >"$F2"
rc=$(run d1.out d1.err "$F2")
cat >d1.want <<EOF
cpu-$STAMP@web@t1.pb.gz${TAB}11111111-2222-8333-8444-555555555555${TAB}5${TAB}__name__=process_cpu,host=h1,service_name=web,tenant=t1
cpu-$STAMP@we%20b%2Fx%2Cy%3Dz@.pb.gz${TAB}ID-B${TAB}3${TAB}__name__=process_cpu,service_name=we b/x\\x2cy\\x3dz,zz=tab\\x09here
EOF
[ "$rc" = 0 ] || problems+="exit $rc; "
[ -s d1.err ] && problems+="stderr: $(cat d1.err); "
cmp -s d1.out d1.want || problems+="lines differ from the expected ones; "
tap_result "${TESTS[0]}" "$([ -z "$problems" ]; echo $?)" "$problems" "got:" "$(cat d1.out)" "want:" "$(cat d1.want)"

# 2. --extract: the bytes, and a second round trip through --profile.
problems=
mkdir -p x1 x2
rc=$(run d2.out d2.err --extract x1 "$F2")
[ "$rc" = 0 ] || problems+="exit $rc: $(cat d2.err); "
cmp -s d2.out d1.want || problems+="--extract changed the lines; "
[ "$(ls x1 | sort)" = "$(printf '%s\n' "cpu-$STAMP@we%20b%2Fx%2Cy%3Dz@.pb.gz" "cpu-$STAMP@web@t1.pb.gz" | sort)" ] ||
	problems+="extracted: $(ls x1 | tr '\n' ' '); "
for f in x1/*; do
	go tool pprof -raw "$f" >/dev/null 2>>go.err || problems+="go tool pprof -raw refuses $f; "
done
[ "$("$PQ" total "x1/cpu-$STAMP@web@t1.pb.gz" 2>&1)" = 5 ] ||
	problems+="pprof_query total of web: $("$PQ" total "x1/cpu-$STAMP@web@t1.pb.gz" 2>&1); "
# the extracted profile sent again as a raw_profile comes out identical
one c.req --label service_name=again --label __name__=process_cpu --profile "x1/cpu-$STAMP@web@t1.pb.gz" --id ID-C
F1=cpu-${STAMP}_1_1.push
cp c.req "$F1"
rc=$(run d2b.out d2b.err --extract x2 "$F1")
[ "$rc" = 0 ] || problems+="round trip: exit $rc: $(cat d2b.err); "
cmp -s "x1/cpu-$STAMP@web@t1.pb.gz" "x2/cpu-$STAMP@again@.pb.gz" || problems+="round trip: the bytes differ; "
[ "$(cut -f3 d2b.out)" = 5 ] || problems+="round trip: samples $(cut -f3 d2b.out); "
tap_result "${TESTS[1]}" "$([ -z "$problems" ]; echo $?)" "$problems" "$(head -3 go.err 2>/dev/null)"

# 3. A long service: spoolq_name's shortening, computed here in Python.
problems=
long=$(printf 'svc/%.0s' $(seq 1 80))long
want=$(python3 - "$STAMP" "$long" "t-9" <<'PY'
import sys
stamp, svc, ten = sys.argv[1:]
plain = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")
esc = lambda s: "".join(chr(c) if c in plain else "%%%02X" % c for c in s.encode())
es, et = esc(svc), esc(ten)
fixed = len("cpu-" + stamp) + 2 + len(et) + len(".pb.gz")
if fixed + len(es) > 200:
    room = 200 - fixed - 9
    while room > 0 and (es[room - 1] == "%" or (room > 1 and es[room - 2] == "%")):
        room -= 1
    h = 2166136261
    for c in svc.encode():
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    es = es[:room] + "~%08x" % h
print("cpu-%s@%s@%s.pb.gz" % (stamp, es, et))
PY
)
one l.req --label service_name="$long" --label tenant=t-9 --label __name__=process_cpu --synth 1 --id ID-L
F3=cpu-${STAMP}_2_1.push
cp l.req "$F3"
rc=$(run d3.out d3.err "$F3")
got=$(cut -f1 d3.out)
[ "$rc" = 0 ] || problems+="exit $rc: $(cat d3.err); "
[ "$got" = "$want" ] || problems+="VNAME $got, want $want; "
[ "${#got}" -le 200 ] || problems+="VNAME of ${#got} bytes; "
case $want in *~????????@t-9.pb.gz) ;; *) problems+="the expected name is not shortened: the test is wrong; " ;; esac
tap_result "${TESTS[2]}" "$([ -z "$problems" ]; echo $?)" "$problems"

# 4. Several files, one bad.
problems=
: >"cpu-${STAMP}_3_1.push"
rc=$(run d4.out d4.err "$F2" "cpu-${STAMP}_3_1.push" "$F1")
[ "$rc" = 65 ] || problems+="exit $rc, want 65; "
[ "$(cut -f1 d4.out | tr '\n' ' ')" = "cpu-$STAMP@web@t1.pb.gz cpu-$STAMP@we%20b%2Fx%2Cy%3Dz@.pb.gz cpu-$STAMP@again@.pb.gz " ] ||
	problems+="lines: $(cut -f1 d4.out | tr '\n' ' '); "
[ "$(wc -l <d4.err)" = 1 ] && grep -q "cpu-${STAMP}_3_1.push" d4.err || problems+="stderr: $(cat d4.err); "
rc=$(run d4b.out d4b.err "$F2" "$F1")
[ "$rc" = 0 ] && [ "$(wc -l <d4b.out)" = 3 ] || problems+="two good files: exit $rc, $(wc -l <d4b.out) lines; "
tap_result "${TESTS[3]}" "$([ -z "$problems" ]; echo $?)" "$problems"

# bad FILE WHAT: pushdump FILE must exit 65 with one stderr line naming it
# and matching WHAT (an ERE), and print nothing.
bad() {
	local f=$1 what=$2 rc
	rc=$(run bad.out bad.err "$f")
	if [ "$rc" != 65 ] || [ -s bad.out ] || [ "$(wc -l <bad.err)" != 1 ] || ! grep -qF -- "$f" bad.err ||
		! grep -qE -- "$what" bad.err; then
		echo "$f: exit $rc, stdout $(wc -c <bad.out) bytes, stderr '$(head -c 300 bad.err)' (want /$what/); "
	fi
}

# 5. Empty, garbage, truncated.
problems=
G=cpu-${STAMP}_4_1.push
: >"$G"
problems+=$(bad "$G" "empty")
head -c 4096 /dev/urandom >"$G"
problems+=$(bad "$G" "not a push.v1.PushRequest|series")
printf 'this is not protobuf\n' >"$G"
problems+=$(bad "$G" "not a push.v1.PushRequest")
size=$(stat -c %s "$F2")
ntrunc=0
for ((i = 1; i < size; i++)); do
	head -c "$i" "$F2" >"cpu-${STAMP}_5_2.push"
	r=$(bad "cpu-${STAMP}_5_2.push" "not a push.v1.PushRequest|the name says 2 series, the PushRequest holds 1")
	if [ -n "$r" ]; then problems+="truncated to $i of $size bytes: $r"; break; fi
	ntrunc=$((ntrunc + 1))
done
[ "$ntrunc" -gt 100 ] || problems+="only $ntrunc truncations tried: the file is too small for the test; "
tap_result "${TESTS[4]}" "$([ -z "$problems" ]; echo $?)" "$problems"

# 6. Contract violations, each with its reason.
problems=
cp a.req "cpu-${STAMP}_0_1.pb.gz"
problems+=$(bad "cpu-${STAMP}_0_1.pb.gz" "is not cpu-<stamp>_<k>_<n>.push")
cp a.req "cpu-$STAMP@web@t1.pb.gz"
problems+=$(bad "cpu-$STAMP@web@t1.pb.gz" "is not cpu-<stamp>_<k>_<n>.push")
cp a.req "cpu-${STAMP}_0_01.push"
problems+=$(bad "cpu-${STAMP}_0_01.push" "is not cpu-<stamp>_<k>_<n>.push")
cp a.req "cpu-20261399T201501.123Z_0_1.push"
problems+=$(bad "cpu-20261399T201501.123Z_0_1.push" "stamp")
cp a.req "cpu-20261130T201501.123X_0_1.push"
problems+=$(bad "cpu-20261130T201501.123X_0_1.push" "stamp")
cp "$F2" "cpu-${STAMP}_0_3.push"
problems+=$(bad "cpu-${STAMP}_0_3.push" "the name says 3 series, the PushRequest holds 2")
one ns.req --label __name__=process_cpu --label tenant=t1 --synth 1
cp ns.req "cpu-${STAMP}_6_1.push"
problems+=$(bad "cpu-${STAMP}_6_1.push" "no service_name")
one es.req --label service_name= --label __name__=process_cpu --synth 1
cp es.req "cpu-${STAMP}_7_1.push"
problems+=$(bad "cpu-${STAMP}_7_1.push" "no service_name")
one dl.req --label service_name=a --label service_name=b --label __name__=process_cpu --synth 1
cp dl.req "cpu-${STAMP}_8_1.push"
problems+=$(bad "cpu-${STAMP}_8_1.push" "label service_name twice")
one s0.req --label service_name=a --label __name__=process_cpu
cp s0.req "cpu-${STAMP}_9_1.push"
problems+=$(bad "cpu-${STAMP}_9_1.push" "has 0 RawSamples, not 1")
one s2.req --label service_name=a --label __name__=process_cpu --profile "x1/cpu-$STAMP@web@t1.pb.gz" --synth 2
cp s2.req "cpu-${STAMP}_10_1.push"
problems+=$(bad "cpu-${STAMP}_10_1.push" "has 2 RawSamples, not 1")
printf 'plain text, no gzip\n' >notgz
one ng.req --label service_name=a --label __name__=process_cpu --profile notgz
cp ng.req "cpu-${STAMP}_11_1.push"
problems+=$(bad "cpu-${STAMP}_11_1.push" "raw_profile is not gzip")
head -c 1000 /dev/urandom | gzip >notpprof.gz
one np.req --label service_name=a --label __name__=process_cpu --profile notpprof.gz
cp np.req "cpu-${STAMP}_12_1.push"
problems+=$(bad "cpu-${STAMP}_12_1.push" "raw_profile is not a pprof Profile")
cat a.req a.req >"cpu-${STAMP}_13_2.push"
problems+=$(bad "cpu-${STAMP}_13_2.push" "series 0 and 1 are both cpu-$STAMP@web@t1.pb.gz")
tap_result "${TESTS[5]}" "$([ -z "$problems" ]; echo $?)" "$problems" "$(head -3 "$T/pyro_push.err" 2>/dev/null)"

# 7. Other exits.
problems=
rc=$(run u.out u.err)
[ "$rc" = 64 ] || problems+="no argument: exit $rc; "
rc=$(run u.out u.err --bogus "$F2")
[ "$rc" = 64 ] || problems+="--bogus: exit $rc; "
rc=$(run u.out u.err --extract)
[ "$rc" = 64 ] || problems+="--extract without DIR: exit $rc; "
rc=$(run u.out u.err "cpu-${STAMP}_99_1.push")
[ "$rc" = 66 ] && grep -q "cannot read cpu-${STAMP}_99_1.push" u.err || problems+="missing file: exit $rc, $(cat u.err); "
rc=$(run u.out u.err --extract "$T/no/such/dir" "$F2")
[ "$rc" = 73 ] && grep -q "cannot write $T/no/such/dir/" u.err || problems+="unwritable --extract: exit $rc, $(cat u.err); "
tap_result "${TESTS[6]}" "$([ -z "$problems" ]; echo $?)" "$problems"

tap_done
