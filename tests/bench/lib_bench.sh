# tests/bench/lib_bench.sh - what the benchmarks measure of a profiler's
# process tree, and how they stop it; sourced by bench.sh, bench_unwind.sh,
# bench_idle.sh and bench_scale.sh.

# proc_tree PID: PID and all its descendants, one per line.
proc_tree() {
	local todo=("$1") p c
	while [ ${#todo[@]} -gt 0 ]; do
		p=${todo[0]}; todo=("${todo[@]:1}")
		[ -d /proc/$p ] || continue
		echo "$p"
		for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do todo+=("$c"); done
	done
}

# tree_cpu_ns PID: CPU time (ns) of every thread of every process in the tree.
tree_cpu_ns() {
	local p t sum=0 v
	for p in $(proc_tree "$1"); do
		for t in /proc/$p/task/*/schedstat; do
			read -r v _ <"$t" 2>/dev/null || continue
			sum=$((sum + v))
		done
	done
	echo "$sum"
}

# tree_switches PID: voluntary context switches of every thread in the tree.
tree_switches() {
	local p t sum=0 v
	for p in $(proc_tree "$1"); do
		for t in /proc/$p/task/*/status; do
			v=$(awk '/^voluntary_ctxt_switches:/ {print $2}' "$t" 2>/dev/null)
			sum=$((sum + ${v:-0}))
		done
	done
	echo "$sum"
}

# tree_hwm_kb PID: peak RSS (kB), VmHWM summed over the tree.
tree_hwm_kb() {
	local p sum=0 v
	for p in $(proc_tree "$1"); do
		v=$(awk '/^VmHWM:/ {print $2}' /proc/$p/status 2>/dev/null)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

# tree_prog_ids PID: IDs of the BPF programs the tree holds, through program or link fds.
tree_prog_ids() {
	local p f
	for p in $(proc_tree "$1"); do
		for f in /proc/$p/fdinfo/*; do
			awk '/^prog_id:/ {print $2}' "$f" 2>/dev/null
		done
	done | sort -un
}

# tree_bpf_stats PID: "run_time_ns run_cnt" summed over the tree's perf_event programs.
tree_bpf_stats() {
	local id
	for id in $(tree_prog_ids "$1"); do
		bpftool prog show id "$id" 2>/dev/null | head -1
	done | awk '$2 == "perf_event" {
		for (i = 3; i < NF; i++) {
			if ($i == "run_time_ns") t += $(i + 1)
			if ($i == "run_cnt") c += $(i + 1)
		}
	} END { printf "%.0f %.0f\n", t, c }'
}

# Reading a profiler's figures at a window's edges without starting a
# process.  vigild notes every process it samples for the first time (it
# reads its maps through the monitor: on the order of a millisecond of its
# CPU each), the benchmark's own ps, awk and bpftool included, which
# bpftrace and perf do not: reading the figures with those tools at the
# edges of a window charged vigild, in the window, for the harness.
#
# tree_snap PID, before the window (it may start processes): remembers the
# tree's processes (SNAP_PIDS) and the fdinfo files of its perf_event
# programs (BPF_PROG_TYPE_PERF_EVENT, 7), each program once (SNAP_PROGS).
tree_snap() {
	local p f k v type id seen=" "
	mapfile -t SNAP_PIDS < <(proc_tree "$1")
	SNAP_PROGS=()
	for p in "${SNAP_PIDS[@]}"; do
		for f in /proc/$p/fdinfo/*; do
			type= id=
			{ while read -r k v; do
				case $k in
				prog_type:) type=$v ;;
				prog_id:) id=$v ;;
				esac
			done <"$f"; } 2>/dev/null
			[ "$type" = 7 ] && [ -n "$id" ] || continue
			case $seen in *" $id "*) continue ;; esac
			seen+="$id "
			SNAP_PROGS+=("$f")
		done
	done
}

# snap_read: with shell builtins only, sets SNAP_CPU_NS (every thread of
# SNAP_PIDS, /proc/PID/task/*/schedstat), SNAP_SWITCHES (their voluntary
# context switches), SNAP_BPF_NS and SNAP_BPF_CNT (run_time_ns and run_cnt
# summed over SNAP_PROGS).
snap_read() {
	local p t f k v
	SNAP_CPU_NS=0 SNAP_SWITCHES=0 SNAP_BPF_NS=0 SNAP_BPF_CNT=0
	for p in "${SNAP_PIDS[@]}"; do
		for t in /proc/$p/task/*; do
			{ read -r v _ <"$t/schedstat" && SNAP_CPU_NS=$((SNAP_CPU_NS + v)); } 2>/dev/null
			{ while read -r k v; do
				[ "$k" = voluntary_ctxt_switches: ] && SNAP_SWITCHES=$((SNAP_SWITCHES + v))
			done <"$t/status"; } 2>/dev/null
		done
	done
	for f in "${SNAP_PROGS[@]}"; do
		{ while read -r k v; do
			case $k in
			run_time_ns:) SNAP_BPF_NS=$((SNAP_BPF_NS + v)) ;;
			run_cnt:) SNAP_BPF_CNT=$((SNAP_BPF_CNT + v)) ;;
			esac
		done <"$f"; } 2>/dev/null
	done
}

# div A B FORMAT: A / B printed with FORMAT, "n/a" when B is 0.
div() { awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN { if (b > 0) printf f, a / b; else printf "n/a" }'; }

# stop_profiler: SIGINT to $PROF_PID (when set), up to a minute to exit,
# then SIGKILL; PROF_PID cleared.
stop_profiler() {
	local i
	[ -n "$PROF_PID" ] || return 0
	kill -INT "$PROF_PID" 2>/dev/null
	for ((i = 0; i < 600; i++)); do
		kill -0 "$PROF_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$PROF_PID" 2>/dev/null
	wait "$PROF_PID" 2>/dev/null
	PROF_PID=
}

# profiles_in DIR: sets PROFILES_N to the profiles written in DIR so far
# (shell builtins only: a $(...) would start a subshell, a process vigild
# notes).
profiles_in() {
	local f
	PROFILES_N=0
	for f in "$1"/*.pb.gz; do [ -e "$f" ] && PROFILES_N=$((PROFILES_N + 1)); done
}

# nap SECONDS: waits without starting a process (sleep(1) would be one,
# which vigild would note and symbolize, its stacks more distinct stacks
# in the profile): a read with a timeout on a FIFO nobody writes, opened
# for the read alone, so that no child inherits it.  nap_init DIR makes
# the FIFO first (mkfifo is a process: call it before any window).
nap_init() { NAP_FIFO=$1/nap.fifo && mkfifo -m 600 "$NAP_FIFO"; }
nap() { read -r -t "$1" _ <>"$NAP_FIFO" || true; }
