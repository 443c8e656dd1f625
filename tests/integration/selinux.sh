#!/bin/bash
# tests/integration/selinux.sh - the SELinux policy module (selinux/), checked
# statically: SELinux is compiled into these kernels but not active, so
# nothing here runs a process under the policy (docs/selinux.md).
#
#   - selinux/Makefile (the reference policy's development Makefile, in a
#     scratch copy of selinux/) builds vigil.pp;
#   - its file contexts give the installed layout the right types;
#   - it links against Debian's base policy (selinux-policy-default, with
#     the postgresql module its optional block needs) and expands, which is
#     when the neverallow rules are checked;
#   - sesearch on the expanded policy shows each boundary: what the monitor
#     alone may do (BPF, perf events, its capabilities), what the workers and
#     the control plane may not, and the domain transitions;
#   - a copy of the module widened by one allow rule per boundary still
#     builds and links but fails to expand, on the neverallow that guards
#     that boundary (so no neverallow is vacuous).
# Needs selinux-policy-dev, selinux-policy-default, setools, semodule-utils
# and checkpolicy (make deps); a missing one fails every case.
#
# It starts no vigild and times nothing a loaded host could miss:
# tests/run.sh runs it in its lane, beside the others.
# run.sh: lane

. "$(dirname "$0")/lib.sh"

SRC=$VIGIL_ROOT/selinux
DEVEL_MK=/usr/share/selinux/devel/Makefile
POLDIR=/usr/share/selinux/default

TESTS=(
	"make -C selinux builds vigil.pp with the refpolicy development Makefile, and nothing else lands beside the sources"
	"vigil.fc labels the installed layout: programs, BPF objects, configuration, keys, state, profiles, control plane"
	"vigil.pp links against Debian's base policy and expands, neverallow rules checked"
	"the monitor, alone, loads BPF and opens perf events: bpf, perf_event and capability2 { bpf perfmon }"
	"the monitor's capabilities are exactly setuid setgid setpcap chown dac_read_search sys_ptrace (+ bpf perfmon syslog)"
	"the collector: BPF only map_read/map_write on the monitor's maps (no prog_load, map_create, prog_run)"
	"the collector: no TCP/UDP socket, no name_connect or name_bind"
	"the uplink: name_connect to vigil_cp_port_t and http_port_t, and to nothing else; no name_bind"
	"the uplink: opens no file but its program, the libraries and what the base policy lets every domain open; never the keys"
	"vigil_cp_t: name_bind on vigil_cp_port_t, and no capability rule at all"
	"the workers hold no capability and no perf_event or bpf-loading rule"
	"domain transitions: init to vigild_t and vigil_cp_t; vigild_t to the workers by their programs' labels, through no_new_privs"
	"neverallow fires: the collector allowed bpf prog_load/map_create"
	"neverallow fires: the collector allowed name_connect to http_port_t"
	"neverallow fires: the uplink allowed capability2 bpf perfmon"
	"neverallow fires: the uplink allowed name_connect to ssh_port_t"
	"neverallow fires: the uplink allowed to read the agent's keys"
	"neverallow fires: vigil_cp_t allowed a capability"
)
tap_plan ${#TESTS[@]}

missing=
for tool in make m4 checkmodule semodule_package semodule_link semodule_expand sesearch bzcat; do
	command -v "$tool" >/dev/null || missing+=" $tool"
done
[ -f "$DEVEL_MK" ] || missing+=" $DEVEL_MK"
[ -f "$POLDIR/base.pp.bz2" ] || [ -f "$POLDIR/base.pp" ] || missing+=" $POLDIR/base.pp(.bz2)"
[ -f "$POLDIR/postgresql.pp.bz2" ] || [ -f "$POLDIR/postgresql.pp" ] || missing+=" $POLDIR/postgresql.pp(.bz2)"
if [ -n "$missing" ]; then
	for name in "${TESTS[@]}"; do
		tap_not_ok "$name" "missing:$missing (Debian: selinux-policy-dev selinux-policy-default setools semodule-utils checkpolicy; make deps)"
	done
	tap_done
fi

# A module from the reference policy: decompressed into $T.
policy_pp() {
	if [ -f "$POLDIR/$1.pp.bz2" ]; then
		bzcat "$POLDIR/$1.pp.bz2" >"$T/$1.pp"
	else
		cp "$POLDIR/$1.pp" "$T/$1.pp"
	fi
}
policy_pp base && policy_pp postgresql || { echo "# cannot read $POLDIR" >&2; }

# build DIR: selinux/Makefile in DIR (a copy of selinux/), output in DIR/log.
build() {
	make -C "$1" >"$1/log" 2>&1
}

# link_expand PP OUT LOG: link PP with the base policy and expand into OUT.
link_expand() {
	semodule_link -o "$2.lnk" "$T/base.pp" "$T/postgresql.pp" "$1" >"$3" 2>&1 &&
		semodule_expand "$2.lnk" "$2" >>"$3" 2>&1
}

# --- 1: the build ---------------------------------------------------------
mkdir -p "$T/src" && cp "$SRC"/vigil.te "$SRC"/vigil.fc "$SRC"/vigil.if "$SRC"/Makefile "$T/src/"
build "$T/src"
rc=$?
extra=$(cd "$T/src" && ls -A | grep -vxE 'vigil\.(te|fc|if|pp)|Makefile|log')
tap_result "${TESTS[0]}" $([ "$rc" -eq 0 ] && [ -s "$T/src/vigil.pp" ] && [ -z "$extra" ]; echo $?) \
	"make -C selinux: exit $rc; left beside the sources: ${extra:-nothing}" "$(tail -20 "$T/src/log")"
PP=$T/src/vigil.pp

# --- 2: file contexts -----------------------------------------------------
# The type the last matching line of FC gives PATH of kind KIND (-- for a
# regular file, -d a directory; a line without a kind matches any), as
# setfiles would with these entries (the most specific come last here).
fc_type() {
	awk -v p="$2" -v kind="$3" '
		/^[[:space:]]*(#|$)/ { next }
		{
			re = $1; k = (NF == 3 ? $2 : ""); ctx = $NF
			if (k != "" && k != kind) next
			if (p ~ ("^" re "$")) { t = ctx }
		}
		END {
			sub(/^gen_context\(/, "", t); split(t, f, ":"); print f[3]
		}' "$1"
}
fc_bad=()
if semodule_unpackage "$PP" "$T/unpacked.mod" "$T/unpacked.fc" >/dev/null 2>&1; then
	while read -r path kind want; do
		got=$(fc_type "$T/unpacked.fc" "$path" "$kind")
		[ "$got" = "$want" ] || fc_bad+=("$path: ${got:-no context}, want $want")
	done <<-'EOF'
		/usr/libexec/vigil/vigild -- vigild_exec_t
		/usr/libexec/vigil/vigild-collector -- vigild_collector_exec_t
		/usr/libexec/vigil/vigild-collector-local -- vigild_collector_exec_t
		/usr/libexec/vigil/vigild-uplink -- vigild_uplink_exec_t
		/usr/libexec/vigil/vigild-uplink-local -- vigild_uplink_exec_t
		/usr/lib/vigil/bpf/profile.bpf.o -- vigil_bpf_t
		/usr/lib/vigil/bpf/profile.bpf.o.sig -- vigil_bpf_t
		/etc/vigil -d vigil_conf_t
		/etc/vigil/trust.pem -- vigil_conf_t
		/etc/vigil/policy.yaml -- vigil_conf_t
		/etc/vigil/keys -d vigil_key_t
		/etc/vigil/keys/agent.key -- vigil_key_t
		/var/lib/vigil -d vigil_var_lib_t
		/var/lib/vigil/profiles -d vigil_profiles_t
		/var/lib/vigil/profiles/cpu-1.pb.gz -- vigil_profiles_t
		/var/lib/vigil/state -d vigil_state_t
		/var/lib/vigil/state/policy -- vigil_state_t
		/usr/sbin/vigil-cp -- vigil_cp_exec_t
		/etc/vigil-cp/server.key -- vigil_cp_conf_t
		/var/lib/vigil-cp/vigil-cp.db -- vigil_cp_var_lib_t
	EOF
else
	fc_bad+=("semodule_unpackage $PP failed")
fi
tap_result "${TESTS[1]}" $([ ${#fc_bad[@]} -eq 0 ]; echo $?) "${fc_bad[@]}"

# --- 3: link and expand ---------------------------------------------------
POL=$T/policy.bin
link_expand "$PP" "$POL" "$T/expand.log"
rc=$?
tap_result "${TESTS[2]}" $([ "$rc" -eq 0 ] && [ -s "$POL" ]; echo $?) \
	"semodule_link + semodule_expand: exit $rc" "$(tail -20 "$T/expand.log")"

# --- 4-12: sesearch -------------------------------------------------------
# q ARGS...: sesearch on the expanded policy, rules sorted (empty when the
# policy is missing: every "has" check then fails, and so does case 3).
q() {
	[ -s "$POL" ] || { echo "(no expanded policy)"; return; }
	sesearch "$@" "$POL" 2>&1 | sort
}
# has WANT ARGS...: the sesearch of ARGS prints the line WANT.
has() {
	local want=$1
	shift
	q "$@" | grep -qxF "$want"
}
# none ARGS...: the sesearch of ARGS prints nothing; else prints what it found.
none() {
	local out
	out=$(q "$@")
	[ -z "$out" ] && return 0
	echo "$out"
	return 1
}

diag=$(q -A -s vigild_t -c bpf; q -A -s vigild_t -c perf_event; q -A -s vigild_t -c capability2)
has "allow vigild_t vigild_t:bpf { map_create map_read map_write prog_load prog_run };" -A -s vigild_t -t vigild_t -c bpf &&
	has "allow vigild_t vigild_t:perf_event { cpu kernel open read write };" -A -s vigild_t -t vigild_t -c perf_event &&
	q -A -s vigild_t -c capability2 | grep -qE '^allow vigild_t vigild_t:capability2 \{ bpf perfmon( syslog)? \};$' &&
	none -A -c capability2 -p bpf -t vigild_collector_t >/dev/null &&
	none -A -c capability2 -p perfmon -t vigild_uplink_t >/dev/null &&
	none -A -c capability2 -p bpf -t vigil_cp_t >/dev/null
tap_result "${TESTS[3]}" $? "$diag"

caps=$(q -A -s vigild_t -c capability)
caps2=$(q -A -s vigild_t -c capability2)
tap_result "${TESTS[4]}" \
	$([ "$caps" = "allow vigild_t vigild_t:capability { chown dac_read_search setgid setpcap setuid sys_ptrace };" ] &&
		[ "$caps2" = "allow vigild_t vigild_t:capability2 { bpf perfmon syslog };" ] &&
		none -A -s vigild_t -c cap_userns >/dev/null; echo $?) \
	"capability rules of vigild_t:" "$caps" "$caps2"

out=$(q -A -s vigild_collector_t -c bpf)
tap_result "${TESTS[5]}" \
	$([ "$out" = "allow vigild_collector_t vigild_t:bpf { map_read map_write };" ]; echo $?) \
	"bpf rules of vigild_collector_t:" "$out"

out=$(none -A -s vigild_collector_t -c tcp_socket -p name_connect,name_bind,create
	none -A -s vigild_collector_t -c udp_socket -p create,name_bind,sendto
	none -A -s vigild_collector_t -c rawip_socket -p create)
tap_result "${TESTS[6]}" $([ -z "$out" ]; echo $?) "network rules of vigild_collector_t:" "$out"

out=$(q -A -s vigild_uplink_t -c tcp_socket -p name_connect)
bind=$(q -A -s vigild_uplink_t -p name_bind)
tap_result "${TESTS[7]}" \
	$([ "$out" = "allow vigild_uplink_t http_port_t:tcp_socket name_connect;
allow vigild_uplink_t vigil_cp_port_t:tcp_socket name_connect;" ] && [ -z "$bind" ]; echo $?) \
	"name_connect rules of vigild_uplink_t:" "$out" "name_bind: ${bind:-none}"

# Which file types the uplink may open (attributes expanded: -s matches
# rules through every attribute of the domain).  Besides its program and
# the libraries, the base policy lets every domain open /proc/self
# (vigild_uplink_t), /sys/devices/system/cpu/online (cpu_online_t) and
# /proc/sys/crypto (sysctl_crypto_t).
opens=$(q -A -s vigild_uplink_t -c file -p open | sed -E 's/^allow [^ ]+ ([^:]+):file.*/\1/' | sort -u | tr '\n' ' ')
keys=$(q -A -s vigild_uplink_t -t vigil_key_t -c file)
tap_result "${TESTS[8]}" \
	$([ "$opens" = "cpu_online_t ld_so_cache_t ld_so_t lib_t sysctl_crypto_t textrel_shlib_t vigild_uplink_exec_t vigild_uplink_t " ] && [ -z "$keys" ]; echo $?) \
	"vigild_uplink_t may open files of: $opens" "key rules: ${keys:-none}"

bind=$(q -A -s vigil_cp_t -c tcp_socket -p name_bind)
capr=$(q -A -s vigil_cp_t -c capability; q -A -s vigil_cp_t -c capability2; q -A -s vigil_cp_t -c cap_userns)
echo "$bind" | grep -qxF "allow vigil_cp_t vigil_cp_port_t:tcp_socket name_bind;" && [ -z "$capr" ]
tap_result "${TESTS[9]}" $? "name_bind: $bind" "capability rules: ${capr:-none}"

out=$(for d in vigild_collector_t vigild_uplink_t; do
	q -A -s $d -c capability
	q -A -s $d -c capability2
	q -A -s $d -c cap_userns
	q -A -s $d -c perf_event
	q -A -s $d -c bpf -p prog_load,map_create
done)
tap_result "${TESTS[10]}" $([ -z "$out" ]; echo $?) "rules that should not be there:" "$out"

bad=()
for want in "type_transition init_t vigild_exec_t:process vigild_t;" \
	"type_transition init_t vigil_cp_exec_t:process vigil_cp_t;" \
	"type_transition vigild_t vigild_collector_exec_t:process vigild_collector_t;" \
	"type_transition vigild_t vigild_uplink_exec_t:process vigild_uplink_t;"; do
	set -- $want
	has "$want" -T -s "$2" -t "${3%%:*}" -c process || bad+=("missing: $want")
done
for w in vigild_collector_t vigild_uplink_t; do
	has "allow vigild_t $w:process2 nnp_transition;" -A -s vigild_t -t $w -c process2 ||
		bad+=("missing: vigild_t $w:process2 nnp_transition (the workers exec with no_new_privs)")
	q -A -s vigild_t -t $w -c process -p transition | grep -q . ||
		bad+=("missing: vigild_t $w:process transition")
	q -A -s vigild_t -t $w -c process -p noatsecure | grep -q . ||
		bad+=("missing: vigild_t $w:process noatsecure (a secure exec clears the parent-death signal)")
	q -A -s $w -t ${w%_t}_exec_t -c file -p entrypoint | grep -q . ||
		bad+=("missing: $w ${w%_t}_exec_t:file entrypoint")
	# Nobody else enters a worker's domain.
	others=$(q -A -t $w -c process -p transition | grep -v '^allow vigild_t ')
	[ -z "$others" ] || bad+=("other domains may enter $w: $others")
done
tap_result "${TESTS[11]}" $([ ${#bad[@]} -eq 0 ]; echo $?) "${bad[@]}"

# --- 13-18: each boundary's neverallow fires ------------------------------
# widened NAME VIOLATION RULES: a copy of selinux/ with RULES appended to
# vigil.te must build and link, and then fail to expand, the expander
# naming the violating rule VIOLATION (a regex on its "neverallow violated
# by allow ..." line).
widened() {
	local name=$1 violation=$2 rules=$3 d rc
	d=$T/widen.$TAP_N
	mkdir -p "$d" && cp "$T/src/vigil.te" "$T/src/vigil.fc" "$T/src/vigil.if" "$T/src/Makefile" "$d/"
	printf '\n# widened by tests/integration/selinux.sh\n%s\n' "$rules" >>"$d/vigil.te"
	if ! build "$d" || [ ! -s "$d/vigil.pp" ]; then
		tap_not_ok "$name" "the widened module did not even build (the test's fault, not a neverallow):" \
			"$(tail -15 "$d/log")"
		return
	fi
	if ! semodule_link -o "$d/linked.pp" "$T/base.pp" "$T/postgresql.pp" "$d/vigil.pp" >"$d/link.log" 2>&1; then
		tap_not_ok "$name" "the widened module did not link:" "$(tail -15 "$d/link.log")"
		return
	fi
	semodule_expand "$d/linked.pp" "$d/policy.bin" >"$d/expand.log" 2>&1
	rc=$?
	tap_result "$name" \
		$([ "$rc" -ne 0 ] && grep -qE "neverallow violated by allow $violation" "$d/expand.log"; echo $?) \
		"semodule_expand of the widened module: exit $rc (want a failure naming: allow $violation)" \
		"$(tail -10 "$d/expand.log")"
}

widened "${TESTS[12]}" 'vigild_collector_t vigild_collector_t:bpf \{ (map_create prog_load|prog_load map_create|prog_load|map_create) \}' \
	'allow vigild_collector_t self:bpf { prog_load map_create };'
widened "${TESTS[13]}" 'vigild_collector_t http_port_t:tcp_socket \{ name_connect \}' \
	'allow vigild_collector_t self:tcp_socket create_stream_socket_perms;
corenet_tcp_connect_http_port(vigild_collector_t)'
widened "${TESTS[14]}" 'vigild_uplink_t vigild_uplink_t:capability2 \{ [a-z ]*(bpf|perfmon)[a-z ]* \}' \
	'allow vigild_uplink_t self:capability2 { bpf perfmon };'
widened "${TESTS[15]}" 'vigild_uplink_t ssh_port_t:tcp_socket \{ name_connect \}' \
	'gen_require(`
	type ssh_port_t;
'"')"'
allow vigild_uplink_t ssh_port_t:tcp_socket name_connect;'
widened "${TESTS[16]}" 'vigild_uplink_t vigil_key_t:file \{ [a-z ]*(open|read)[a-z ]* \}' \
	'read_files_pattern(vigild_uplink_t, vigil_key_t, vigil_key_t)'
widened "${TESTS[17]}" 'vigil_cp_t vigil_cp_t:capability \{ net_bind_service \}' \
	'allow vigil_cp_t self:capability net_bind_service;'

tap_done
