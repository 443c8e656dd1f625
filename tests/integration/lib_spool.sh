#!/bin/bash
# tests/integration/lib_spool.sh - what vigild's export spool wrote, and
# how it compares with what a receiver (lib_pyro.sh) got.
#
# With export on, vigild spools one file per interval (or a few parts):
# cpu-<stamp>_<k>_<n>.push, holding the interval's PushRequest with <n>
# series.  The tests reason about series, each named by its virtual name
# VNAME, cpu-<stamp>@<service>@<tenant>.pb.gz (spoolq_name()), from which
# its RawSample.ID is derived; tests/tools/pushdump reads them out.
#
# Sourced after lib.sh and lib_pyro.sh, never run.  It gives
#   spool_watch DIR    wait for DIR (vigild makes it) and record every file
#                      that appears in it (tests/tools/dirwatch): names in
#                      $SPOOL_SEEN, hard links in $SPOOL_SHADOW.  1 if DIR
#                      does not appear within 20 s.
#   spool_files DIR    the spool files in DIR now (names), oldest first
#   spool_written      the series (VNAMEs) of the spool files recorded so
#                      far, sorted, once each
#   spool_now DIR      the series (VNAMEs) of the spool files in DIR now, sorted
#   spool_dump         "FILE<TAB>VNAME<TAB>ID<TAB>SAMPLES<TAB>LABELS" of
#                      every spool file recorded so far (pushdump's lines)
#   spool_extract DIR  every series' profile (gzip pprof) of the spool files
#                      recorded so far, as DIR/VNAME (pushdump --extract);
#                      pushdump's exit status (0, or 65 when a file is bad:
#                      its complaint in $T/spool-extract.err)
#   spool_compare WRITTEN REMAINING   (files of VNAMEs) against $PYRO_LOG:
#                      prints "key value" lines (see below)
#   spool_require [TOOL...]  the receiver, dirwatch and pushdump (and TOOLs)
#                      must be built, or every test of $TESTS fails
#   spool_receiver     the receiver (pyro_start recv --no-go-check), or every
#                      test of $TESTS fails
#   spool_spin         something to sample in every interval, even on an idle
#                      host (an interval without samples writes no file)
# A spool file pushdump cannot read (exit 65) is remembered and reported by
# spool_compare as "unreadable".

[ "${BASH_SOURCE[0]}" = "$0" ] && exit 0

DIRWATCH=$B/tests/tools/dirwatch
PUSHDUMP=$B/tests/tools/pushdump
SPOOL_GLOB='cpu-*_*_*.push'

spool_watch() {
	local dir=$1
	SPOOL_SEEN=$T/spool-seen.txt
	SPOOL_SHADOW=$T/spool-shadow
	SPOOL_DUMPS=$T/spool-dumps
	mkdir -p "$SPOOL_SHADOW" "$SPOOL_DUMPS"
	wait_for 20 test -d "$dir" || return 1
	spawn "$DIRWATCH" "$dir" "$SPOOL_SHADOW" >"$SPOOL_SEEN" 2>"$T/dirwatch.err"
	wait_for 5 grep -q '^#watching' "$SPOOL_SEEN"
}

# In the order vigild sends them: by stamp, then part number.
spool_files() {
	find "$1" -maxdepth 1 -name "$SPOOL_GLOB" -printf '%f\n' 2>/dev/null | sort -t_ -k1,1 -k2,2n
}

# _spool_dump_file FILE OUT: pushdump FILE's lines, each prefixed with the
# file's name, into OUT; a file pushdump refuses is noted in
# $T/spool-unreadable.txt (a file that vanished before it was read is not).
_spool_dump_file() {
	local f=$1 out=$2 name=${1##*/} err rc
	err=$("$PUSHDUMP" "$f" 2>&1 >"$out.tmp")
	rc=$?
	if [ "$rc" = 65 ]; then
		printf '%s %s\n' "$name" "$err" >>"$T/spool-unreadable.txt"
	elif [ "$rc" != 0 ] && [ "$rc" != 66 ]; then
		printf '%s pushdump exit %s: %s\n' "$name" "$rc" "$err" >>"$T/spool-unreadable.txt"
	fi
	sed "s|^|$name\t|" "$out.tmp" >"$out"
	rm -f "$out.tmp"
}

# The shadow copies never change (hard links to files renamed into place):
# each is read once.
spool_dump() {
	local f
	for f in "$SPOOL_SHADOW"/$SPOOL_GLOB; do
		[ -e "$f" ] || continue
		[ -e "$SPOOL_DUMPS/${f##*/}" ] || _spool_dump_file "$f" "$SPOOL_DUMPS/${f##*/}"
	done
	find "$SPOOL_DUMPS" -maxdepth 1 -name "$SPOOL_GLOB" -exec cat {} + 2>/dev/null | sort -k2,2
}

spool_extract() {
	local files
	mkdir -p "$1" || return 1
	files=("$SPOOL_SHADOW"/$SPOOL_GLOB)
	[ -e "${files[0]}" ] || return 0
	"$PUSHDUMP" --extract "$1" "${files[@]}" >/dev/null 2>>"$T/spool-extract.err"
}

spool_written() {
	spool_dump | cut -f2 | sort -u
}

# One pushdump for all the files: a file pushed and unlinked meanwhile is
# "cannot read" (no longer in the spool, rightly absent); any other refusal
# is remembered for spool_compare.
spool_now() {
	local files
	mapfile -t files < <(spool_files "$1")
	[ ${#files[@]} -gt 0 ] || return 0
	"$PUSHDUMP" "${files[@]/#/$1/}" 2>"$T/spool-now.err" | cut -f1 | sort -u
	grep -v '^pushdump: cannot read ' "$T/spool-now.err" >>"$T/spool-unreadable.txt"
	return 0
}

# spool_compare WRITTEN REMAINING: the series vigild wrote and those still
# in the spool at the end, against the samples the receiver answered 200.
# Prints:
#   written N / remaining N / received N (distinct series-intervals) /
#   resent N (samples received more than once) / gone N (spool files
#   unlinked before dirwatch could keep them: their series are unknown,
#   but as many as their names say must have arrived)
#   lost VNAME       written, gone from the spool, never received
#   lost FILE...     a series of gone files of which fewer arrived than
#                    they held (one line per series missing)
#   unsent VNAME     still in the spool but received (acked, not unlinked)
#   extra KEY        received, never written
#   badid VNAME ID   a spool file or the receiver has an ID that is not the
#                    one derived from the host and the VNAME (so not
#                    recognisable on a resend)
#   dupid KEY ID ID  one series received twice with different IDs
#   dupseries VNAME  one series in two spool files
#   mislabelled VNAME the labels do not say the series' profile type
#   rejected N       samples answered other than 200 once up
#   unreadable FILE why   a spool file pushdump refuses
spool_compare() {
	spool_dump >"$T/spool-dump.txt"
	python3 - "$1" "$2" "$PYRO_LOG" "$(hostname)" "$T/spool-dump.txt" "$SPOOL_SEEN" \
		"$T/spool-unreadable.txt" <<'PY'
import hashlib, json, os, re, sys, urllib.parse
from datetime import datetime, timezone

written = [l.strip() for l in open(sys.argv[1]) if l.strip()]
remaining = set(l.strip() for l in open(sys.argv[2]) if l.strip())
host = sys.argv[4]

def uuid(name):
    h = bytearray(hashlib.sha256(host.encode() + b"\0" + name.encode()).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x80
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[0:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:32]}"

def ms_of(stamp):
    t = datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=timezone.utc)
    return int(t.timestamp()) * 1000 + t.microsecond // 1000

def key_of(name):
    stamp, svc, ten = name[len("cpu-"):-len(".pb.gz")].split("@")
    return (ms_of(stamp), urllib.parse.unquote(svc), urllib.parse.unquote(ten))

by_key = {}
for n in written:
    by_key[key_of(n)] = n

# The spool files' own view: which file holds which series, with which ID.
file_of = {}
problems = []
for line in open(sys.argv[5]):
    f = line.rstrip("\n").split("\t")
    if len(f) < 4:
        continue
    fname, vname, sid = f[0], f[1], f[2]
    if vname in file_of and file_of[vname] != fname:
        problems.append(f"dupseries {vname} {file_of[vname]} {fname}")
    file_of[vname] = fname
    if sid != uuid(vname):
        problems.append(f"badid {vname} {sid} (in {fname})")

# Files unlinked before dirwatch linked them: their stamp and series count.
spool_re = re.compile(r"^cpu-(\d{8}T\d{6}\.\d{3}Z)_(\d+)_(\d+)\.push$")
gone = {}
for line in open(sys.argv[6]):
    if not line.rstrip().endswith(" #gone"):
        continue
    m = spool_re.match(line.split(" ")[0])
    if m:
        gone.setdefault(ms_of(m.group(1)), []).append((m.group(0), int(m.group(3))))

received = {}
resent = rejected = 0
for line in open(sys.argv[3]):
    r = json.loads(line)
    if r.get("seq") is None:
        continue
    for s in r.get("samples") or []:
        if r.get("status") != 200:
            rejected += 1
            continue
        lab = s["labels"]
        k = (s["time_nanos"] // 1000000, lab.get("service_name"), lab.get("tenant", ""))
        if k in received:
            resent += 1
            if received[k]["id"] != s["id"]:
                print("dupid", k, received[k]["id"], s["id"])
        else:
            received[k] = s

print("written", len(written))
print("remaining", len(remaining))
print("received", len(received))
print("resent", resent)
print("rejected", rejected)
print("gone", sum(len(v) for v in gone.values()))
for p in problems:
    print(p)
if os.path.exists(sys.argv[7]):
    for line in sorted(set(open(sys.argv[7]))):
        print("unreadable", line.strip())
gone_got = {}
for k, s in sorted(received.items()):
    n = by_key.get(k)
    if n is None:
        if k[0] in gone:
            gone_got[k[0]] = gone_got.get(k[0], 0) + 1
            continue
        print("extra", k)
        continue
    if s["id"] != uuid(n):
        print("badid", n, s["id"])
    if s["labels"].get("__name__") != "process_cpu":
        print("mislabelled", n)
for ms, files in sorted(gone.items()):
    want = sum(n for _, n in files)
    got = gone_got.get(ms, 0)
    # one line per series missing, as for the series of kept files
    for i in range(want - got):
        print("lost", " ".join(f for f, _ in files), f"(gone unread: {got} of {want} series arrived, #{i + 1})")
for n in written:
    k = key_of(n)
    if n in remaining:
        if k in received:
            print("unsent", n)
    elif k not in received:
        print("lost", n)
PY
}

spool_require() {
	local tool
	for tool in "$PYRO_RECEIVER" "$DIRWATCH" "$PUSHDUMP" "$@"; do
		require_file "$tool" "${TESTS[@]}"
	done
}

# --no-go-check: the receiver runs go tool pprof on every profile otherwise,
# which on a loaded 2-CPU host is slower than the spool fills, and a
# backlog would never drain (export_series.sh and export_restart.sh keep the check).
spool_receiver() {
	local t
	pyro_start recv --no-go-check && return 0
	for t in "${TESTS[@]}"; do tap_not_ok "$t" "no receiver"; done
	tap_done
}

# A shell on a CPU a few percent of the time; lib.sh's cleanup kills it.
spool_spin() {
	(while :; do for ((i = 0; i < 5000; i++)); do :; done; sleep 0.1; done) &
	SPAWNED+=($!)
}
