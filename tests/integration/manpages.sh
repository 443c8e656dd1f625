#!/bin/bash
# tests/integration/manpages.sh - the man pages in docs/ render cleanly and
# document exactly what the programs accept.
#
# For each page: groff -ww and man --warnings print nothing, and its
# options agree with the program's --help both ways, each side read
# mechanically so that neither can drift from the other:
#   --help        every --long-option anywhere in the text, and for
#                 vigilctl and vigil-sign the commands: the words that
#                 begin an indented usage line ("  policy upload FILE...",
#                 "  rollout list | status ID | ...")
#   the page      every \-\-long\-option in the tags (.TP/.TQ items) of
#                 its OPTIONS section, and the tags' names in COMMANDS
# vigil-policy(5) has no --help: its keys are the strings of the key
# tables the parser checks a mapping against (the "...keys[] = { ... }"
# arrays of policy/policy.c: check_keys refuses any other key), and the
# page's are the dotted names of the tags of its KEYS section
# ("defaults.hz", "tenants[].name", "export.url"), split at the dots.
# Needs groff and man-db (make deps), no root.
#
# It starts no vigild and times nothing a loaded host could miss:
# tests/run.sh runs it in its lane, beside the others.
# run.sh: lane

. "$(dirname "$0")/lib.sh"

DOCS=$VIGIL_ROOT/docs
PAGES=(vigild.8 vigil-policy.5 vigil-cp.8 vigilctl.1 vigil-sign.1)
TESTS=()
for p in "${PAGES[@]}"; do
	TESTS+=("$p: groff -ww -z -man prints no warning"
		"$p: man --warnings -l renders it without a warning")
	if [ "$p" = vigil-policy.5 ]; then
		TESTS+=("$p: every key of policy/policy.c's key tables is documented in KEYS"
			"$p: every key documented in KEYS is one policy/policy.c accepts")
	else
		TESTS+=("$p: every option (and command) of ${p%.*} --help is documented"
			"$p: every option (and command) the page documents is in ${p%.*} --help")
	fi
done
tap_plan ${#TESTS[@]}

# section FILE NAME: the lines of the .SH NAME section of FILE.
section() {
	awk -v want="$2" '
		/^\.SH/ { name = $0; sub(/^\.SH[ \t]+/, "", name); gsub(/"/, "", name); on = (name == want); next }
		on' "$1"
}

# tags: the tag lines of the .TP and .TQ items of a section on stdin.
tags() {
	awk '/^\.(TP|TQ)([ \t]|$)/ { tag = 1; next } tag && !/^\.\\"/ { print; tag = 0 }'
}

# unescape: roff text on stdin as plain text (\- to -, no font changes).
unescape() {
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\f(..//g' -e 's/\\[%&]//g'
}

# tag_name: the name a tag line gives: its first argument, or all of it
# for .B and .I (.B policy list, .BI "policy show" " SERIAL", .BR version " (required)").
tag_name() {
	local line
	while IFS= read -r line; do
		line=$(printf '%s\n' "$line" | unescape)
		case $line in
		.B\ * | .I\ *) line=${line#.? } ;;
		.*\ \"*) line=${line#* }
			case $line in
			\"*) line=${line#\"}; line=${line%%\"*} ;;
			*) line=${line%% *} ;;
			esac ;;
		.*\ *) line=${line#* }; line=${line%% *} ;;
		esac
		line=${line//\"/}
		printf '%s\n' "$line" | sed -e 's/[ \t]*$//' -e 's/[ \t][ \t]*/ /g'
	done
}

long_opts() { # the --long-options in the text on stdin, one a line, sorted
	grep -oE -- '(^|[^[:alnum:]-])--[[:alnum:]][[:alnum:]-]*' | sed 's/^[^-]*--/--/' | sort -u
}

# help_commands: the commands of a --help text on stdin: the lowercase words
# that begin a line indented by two spaces, before its second column (two
# spaces or more), with " | word" alternatives as the first word's
# ("rollout list | status ID" is rollout list and rollout status).
help_commands() {
	local line first alt words w
	grep -E '^  [a-z]' | sed -E 's/^  //; s/  +.*//' | while IFS= read -r line; do
		first=
		while IFS= read -r alt; do
			words=
			for w in $alt; do
				[[ $w =~ ^[a-z][a-z-]*$ ]] || break
				words+=${words:+ }$w
			done
			[ -n "$words" ] || continue
			if [ -z "$first" ]; then
				first=${words%% *}
				printf '%s\n' "$words"
			else
				printf '%s %s\n' "$first" "${words%% *}"
			fi
		done < <(printf '%s\n' "$line" | sed 's/ | /\n/g')
	done | sort -u
}

# compare NAME WANTED_LABEL WANTED HAVE_LABEL HAVE: ok when every line of
# WANTED is in HAVE; the diagnostic lists those missing.
compare() {
	local name=$1 wl=$2 wanted=$3 hl=$4 have=$5 missing
	missing=$(comm -23 <(printf '%s\n' "$wanted" | sed '/^$/d' | sort -u) \
		<(printf '%s\n' "$have" | sed '/^$/d' | sort -u))
	if [ -z "$(printf '%s' "$wanted" | tr -d '[:space:]')" ]; then
		tap_not_ok "$name" "nothing found in $wl: the extraction is broken"
	elif [ -z "$(printf '%s' "$have" | tr -d '[:space:]')" ]; then
		tap_not_ok "$name" "nothing found in $hl: the extraction is broken"
	else
		tap_result "$name" $([ -z "$missing" ]; echo $?) \
			"in $wl but not in $hl:" "$(printf '%s\n' "$missing" | sed 's/^/  /')"
	fi
}

i=0
for p in "${PAGES[@]}"; do
	f=$DOCS/$p prog=${p%.*}
	if [ ! -f "$f" ]; then
		for k in 0 1 2 3; do tap_not_ok "${TESTS[i + k]}" "$f is missing"; done
		i=$((i + 4))
		continue
	fi

	# (a) groff's own warnings, all of them (-ww).
	if ! command -v groff >/dev/null; then
		tap_not_ok "${TESTS[i]}" "groff is not installed (make deps installs it)"
	else
		out=$(groff -ww -z -man -Tutf8 "$f" 2>&1)
		tap_result "${TESTS[i]}" $([ -z "$out" ]; echo $?) "$out"
	fi
	i=$((i + 1))

	# (b) as a reader gets it: man-db's preprocessors and its width.
	if ! command -v man >/dev/null; then
		tap_not_ok "${TESTS[i]}" "man is not installed (make deps installs man-db)"
	else
		LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$f" >"$T/rendered" 2>"$T/err"
		rc=$?
		tap_result "${TESTS[i]}" $([ "$rc" -eq 0 ] && [ ! -s "$T/err" ] &&
			grep -q '^NAME' "$T/rendered"; echo $?) \
			"man -l $p: exit $rc, $(wc -l <"$T/rendered") lines rendered" "$(head -20 "$T/err")"
	fi
	i=$((i + 1))

	if [ "$p" = vigil-policy.5 ]; then
		# The parser's key tables: check_keys refuses any key not in them.
		src=$(tr '\n' ' ' <"$VIGIL_ROOT/policy/policy.c" |
			grep -oE 'keys\[\] = \{[^}]*\}' | grep -oE '"[a-z_]+"' | tr -d '"' | sort -u)
		page=$(section "$f" KEYS | tags | tag_name | sed 's/ .*//' | tr '.' '\n' |
			sed 's/\[\]$//' | sort -u)
		compare "${TESTS[i]}" "policy/policy.c's key tables" "$src" "the KEYS section's tags" "$page"
		compare "${TESTS[i + 1]}" "the KEYS section's tags" "$page" "policy/policy.c's key tables" "$src"
		i=$((i + 2))
		continue
	fi

	if [ ! -x "$B/$prog" ]; then
		for k in 0 1; do tap_not_ok "${TESTS[i + k]}" "$B/$prog is missing: run make"; done
		i=$((i + 2))
		continue
	fi
	timeout 10 "$B/$prog" --help >"$T/help" 2>"$T/help.err"
	rc=$?
	if [ "$rc" -ne 0 ] || [ ! -s "$T/help" ]; then
		for k in 0 1; do
			tap_not_ok "${TESTS[i + k]}" "$prog --help: exit $rc" "$(head -5 "$T/help.err")"
		done
		i=$((i + 2))
		continue
	fi
	help=$(long_opts <"$T/help")
	page=$(section "$f" OPTIONS | tags | unescape | long_opts)
	if [ "$prog" = vigilctl ] || [ "$prog" = vigil-sign ]; then
		# An extraction that finds no command fails both ways.
		cmds=$(help_commands <"$T/help")
		help+=$'\n'${cmds:-"(no command found in --help)"}
		cmds=$(section "$f" COMMANDS | tags | tag_name)
		page+=$'\n'${cmds:-"(no command found in COMMANDS)"}
	fi
	compare "${TESTS[i]}" "$prog --help" "$help" "$p (OPTIONS, COMMANDS)" "$page"
	compare "${TESTS[i + 1]}" "$p (OPTIONS, COMMANDS)" "$page" "$prog --help" "$help"
	i=$((i + 2))
done

tap_done
