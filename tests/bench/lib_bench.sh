# tests/bench/lib_bench.sh - what the benchmarks measure of a profiler's
# process tree, and how they stop it; sourced by bench.sh, bench_unwind.sh
# and bench_idle.sh.

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
