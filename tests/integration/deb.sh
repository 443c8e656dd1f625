#!/bin/bash
# tests/integration/deb.sh - the Debian packages, built, checked, installed
# on this machine, run as their unit runs them, and purged.
#
# `make deb` builds the five packages three times: as a development build
# (no signing key: a CA made for the build signs the BPF object), as a
# release build with a CA, certificate and key this test makes, which
# stand for an enterprise's, and as a release build whose key is in a
# PKCS#11 token (SoftHSM standing for an HSM).  The development packages are then installed
# with dpkg -i; vigild is run from the installed paths as the unit's
# ExecStart would run it (its capability bounding set and NoNewPrivileges
# through setpriv: systemd is not PID 1 here); the installed object is
# re-signed as docs/signing.md tells an enterprise to; and dpkg --purge
# must leave nothing behind, the users the packages made included, but
# keep a user they did not make or one that still owns a file
# (debian/purge-user.sh).  Whatever happens, the packages are purged at exit.

. "$(dirname "$0")/lib.sh"

TESTS=(
	"make deb without keys: the five packages, marked Vigil-Signing: development"
	"lintian --pedantic: no errors on the packages"
	"make deb with one of SIGNING_CERT/SIGNING_KEY/SIGNING_CA only: exit 2 naming all three"
	"make deb with a certificate, key and CA: Vigil-Signing: release, the object's signature chains to that CA, trust.pem is that CA, the key is in no package and not in the build tree"
	"make deb with SIGNING_KEY a pkcs11: URI (a SoftHSM token, the key file deleted after import, the PIN from a file): release, signed by that certificate, chains to its CA"
	"dpkg -i the five packages"
	"installed: users vigil and vigil-cp, vigild's directories (sysusers.d, tmpfiles.d), files, modes, owners and conffiles as packaged"
	"vigild run as its unit runs it (User=, ambient and bounding capabilities, NoNewPrivileges, UMask, ExecStart) writes valid profiles and says it is a development build"
	"the example policy in /etc/vigil passes vigild --check"
	"re-signed with another CA as docs/signing.md says: vigild loads it; the old signature under the new trust store: exit 77"
	"dpkg --purge: nothing of the packages left (files, directories, state, unit links, the users and groups they made); user vigil, made by vigild's useradd before the install, stays and the purge says why"
	"dpkg --purge of vigil-cp while a key in /etc/vigil-cp is user vigil-cp's: the user and the key stay, and the purge names the file"
)
tap_plan ${#TESTS[@]}
require_file "$VIGILD" "${TESTS[@]}"
require_bpf "${TESTS[@]}"

PKGS=(vigild vigil-cp vigilctl vigil-sign vigil-selinux)
DEBDIR=$VIGIL_ROOT/build/deb
SIGN=$B/vigil-sign
UNIT=/usr/lib/systemd/system/vigild.service

# installed_pkgs: those of PKGS dpkg knows as installed (or half-installed).
installed_pkgs() {
	local p
	for p in "${PKGS[@]}"; do
		dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^[ir]' && echo "$p"
	done
}

# This host's own state is left as found: packages someone installed stop
# the test before it touches anything; /var/lib/vigil is put aside and back;
# no service is started by the packages' scripts (policy-rc.d, which
# deb-systemd-invoke obeys, where systemd runs).
before=$(installed_pkgs | tr '\n' ' ')
if [ -n "$before" ]; then
	for name in "${TESTS[@]}"; do
		tap_not_ok "$name" "packages of vigil are installed on this host ($before): not touching them"
	done
	tap_done
fi
SAVED_STATE= OUR_KEY=
if [ -e /var/lib/vigil ]; then
	SAVED_STATE=$T/var-lib-vigil.saved
	mv /var/lib/vigil "$SAVED_STATE"
fi
OUR_POLICY_RC=
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\n# tests/integration/deb.sh: no service starts while it runs\nexit 101\n' \
		>/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d && OUR_POLICY_RC=yes
fi

deb_cleanup() {
	local left
	left=$(installed_pkgs)
	[ -n "$left" ] && dpkg --purge $left >/dev/null 2>&1
	[ -n "$OUR_POLICY_RC" ] && rm -f /usr/sbin/policy-rc.d
	if [ -n "$OUR_KEY" ]; then
		rm -f "$OUR_KEY"
		rmdir /etc/vigil-cp 2>/dev/null
		package_made vigil-cp && userdel vigil-cp 2>/dev/null
	fi
	if [ -n "$SAVED_STATE" ]; then
		rm -rf /var/lib/vigil
		mv "$SAVED_STATE" /var/lib/vigil
	fi
	# the release build's packages are not left where a later run would pick them up
	rm -rf "$DEBDIR"
}
trap 'deb_cleanup; lib_cleanup' EXIT

# package_made USER: USER is there with the comment (GECOS) the packages'
# sysusers.d gives it, the mark by which a purge knows the packages made it
# (debian/purge-user.sh).
package_made() {
	local want
	want=$(awk -v u="$1" '$1 == "u" && $2 == u { split($0, q, "\""); print q[2] }' \
		"$VIGIL_ROOT"/packaging/systemd/*.sysusers)
	[ -n "$want" ] && [ "$(getent passwd "$1" | cut -d: -f5)" = "$want" ]
}

# deb_field DEB FIELD
deb_field() { dpkg-deb -f "$1" "$2" 2>/dev/null; }

# debs_of: the five .deb files in $DEBDIR, in PKGS order, into DEBS; missing ones named in $MISSING.
debs_of() {
	local p f
	DEBS=() MISSING=
	for p in "${PKGS[@]}"; do
		f=$(ls "$DEBDIR"/"${p}"_*.deb 2>/dev/null | head -1)
		if [ -n "$f" ]; then DEBS+=("$f"); else MISSING+=" $p"; fi
	done
}

# release_problems DIR CA SIGNER: what is wrong with the release build in
# DEBS (vigild's package extracted into DIR): its marking, its trust store
# (CA), and its object's signature (chains to CA, made by SIGNER's
# certificate); nothing when all is right.
release_problems() {
	local out why=
	rm -rf "$1" && mkdir -p "$1" && dpkg-deb -x "${DEBS[0]}" "$1"
	[ "$(deb_field "${DEBS[0]}" Vigil-Signing)" = release ] || why="Vigil-Signing: $(deb_field "${DEBS[0]}" Vigil-Signing);"
	cmp -s "$1/etc/vigil/trust.pem" "$2" || why+=" trust.pem is not the given CA;"
	out=$("$SIGN" verify --trust "$2" --bpf "$1/usr/lib/vigil/bpf/profile.bpf.o" 2>&1) ||
		why+=" the signature does not verify against the given CA: $out;"
	grep -qF "$3" <<<"$out" || why+=" not signed by the given certificate: $out;"
	echo "$why"
}

# The three builds compile the same sources (the development one with
# another BUILD_KIND): through ccache (make deps), the second and third do
# not compile again what the first did.  The packages are the same; only
# make check's time (three builds were ~200 CPU seconds) changes.
if command -v ccache >/dev/null; then
	export CCACHE_DIR=$T/ccache CC="ccache gcc" CLANG="ccache clang"
fi

# --- 1. a development build -------------------------------------------------

( cd "$VIGIL_ROOT" && make --no-print-directory deb ) >"$T/deb-dev.out" 2>&1
rc=$?
debs_of
signing=$([ -n "${DEBS[0]:-}" ] && deb_field "${DEBS[0]}" Vigil-Signing)
tap_result "${TESTS[0]}" $([ $rc -eq 0 ] && [ -z "$MISSING" ] && [ "$signing" = development ]; echo $?) \
	"make deb: exit $rc; missing:${MISSING:- none}; vigild's Vigil-Signing: '$signing'" \
	"$(tail -15 "$T/deb-dev.out")"
[ -z "$MISSING" ] && cp "${DEBS[@]}" "$T/" && DEV_DEBS=("${DEBS[@]/#$DEBDIR/$T}")

# --- 2. lintian --------------------------------------------------------------

if [ -n "$MISSING" ]; then
	tap_not_ok "${TESTS[1]}" "no packages to check"
else
	# its temporary files (mldbm-*) in the scratch directory, not left in /tmp
	mkdir -p "$T/lintian-tmp"
	TMPDIR=$T/lintian-tmp lintian --pedantic --tag-display-limit 0 "${DEV_DEBS[@]}" >"$T/lintian.out" 2>&1
	lrc=$?
	errors=$(grep -c '^E:' "$T/lintian.out")
	# lintian exits 0 when it ran and found no error (--fail-on error)
	tap_result "${TESTS[1]}" $([ $lrc -eq 0 ] && [ "$errors" -eq 0 ]; echo $?) \
		"lintian: exit $lrc, $errors error(s):" "$(grep -v 'root privileges' "$T/lintian.out" | head -20)"
	# what remains, for the record (each is explained in docs/packaging.md)
	tap_diag "lintian's other tags:" "$(grep -v "^E:\|root privileges" "$T/lintian.out" | sort | uniq -c | head -40)"
fi

# --- 3. half a key set --------------------------------------------------------

( cd "$VIGIL_ROOT" && make --no-print-directory deb SIGNING_CERT=/nonexistent.pem ) >"$T/deb-half.out" 2>&1
rc=$?
tap_result "${TESTS[2]}" \
	$([ $rc -eq 2 ] && grep -q SIGNING_CERT "$T/deb-half.out" && grep -q SIGNING_KEY "$T/deb-half.out" &&
		grep -q SIGNING_CA "$T/deb-half.out"; echo $?) \
	"exit $rc:" "$(cat "$T/deb-half.out")"

# --- 4. a release build --------------------------------------------------------

KEYS=$T/enterprise # outside the source tree, as docs/signing.md asks
"$SIGN" dev-ca --out "$KEYS" --name "Example Enterprise" >/dev/null 2>&1
( cd "$VIGIL_ROOT" && make --no-print-directory deb SIGNING_CERT="$KEYS/signer.pem" \
	SIGNING_KEY="$KEYS/signer.key" SIGNING_CA="$KEYS/ca.pem" ) >"$T/deb-rel.out" 2>&1
rc=$?
debs_of
why=
[ $rc -eq 0 ] && [ -z "$MISSING" ] || why="make deb: exit $rc, missing:${MISSING:- none}"
if [ -z "$why" ]; then
	why=$(release_problems "$T/rel" "$KEYS/ca.pem" 'Example Enterprise')
	# The key's base64 body, looked for in every package's files and the build tree.
	keyline=$(sed -n '2p' "$KEYS/signer.key")
	for d in "${DEBS[@]}"; do
		mkdir -p "$T/x" && dpkg-deb -x "$d" "$T/x"
	done
	grep -rqF -- "$keyline" "$T/x" && why+=" the signing key is inside a package;"
	grep -rqF -- "$keyline" "$VIGIL_ROOT/debian" "$VIGIL_ROOT/build/deb" 2>/dev/null &&
		why+=" the signing key was copied into the build tree;"
fi
tap_result "${TESTS[3]}" $([ -z "$why" ]; echo $?) "$why" "$([ $rc -ne 0 ] && tail -15 "$T/deb-rel.out")"

# --- 4b. a release build whose key is in a PKCS#11 token ----------------------

# SoftHSM stands for the HSM: the key is imported and its file deleted, so
# that only the token can have signed.  VIGIL_PKCS11_MODULE names its module
# (docs/signing.md); the PIN comes from a file named in the URI.
HSM=$T/hsm
why=
softhsm_token "$HSM" "Example HSM" vigil-release 4321 ||
	why="the token could not be made: $(tail -3 "$HSM/setup.out")"
URI="pkcs11:token=vigil-release;object=signer;type=private?pin-source=$HSM/pin"
if [ -z "$why" ]; then
	( cd "$VIGIL_ROOT" && make --no-print-directory deb \
		SIGNING_CERT="$HSM/keys/signer.pem" SIGNING_KEY="$URI" SIGNING_CA="$HSM/keys/ca.pem" ) \
		>"$T/deb-hsm.out" 2>&1
	rc=$?
	debs_of
	[ $rc -eq 0 ] && [ -z "$MISSING" ] || why="make deb: exit $rc, missing:${MISSING:- none}"
fi
[ -z "$why" ] && why=$(release_problems "$T/hsmrel" "$HSM/keys/ca.pem" 'Example HSM')
tap_result "${TESTS[4]}" $([ -z "$why" ]; echo $?) "$why" "$(tail -15 "$T/deb-hsm.out" 2>/dev/null)"

# --- 5. install the development build ------------------------------------------

# User vigil made beforehand as vigild makes it when run by hand (lib.sh):
# the purge meets a user its package did not make, and no test running
# vigild beside this one can hold a user the purge removes.  vigil-cp as
# found: absent, or the package's own left by an install before.
vigil_user_ids >/dev/null
GONE_AFTER_PURGE=
for u in vigil vigil-cp; do
	if ! getent passwd "$u" >/dev/null || package_made "$u"; then GONE_AFTER_PURGE+=" $u"; fi
done

if [ -z "${DEV_DEBS[0]:-}" ]; then
	tap_not_ok "${TESTS[5]}" "no development packages were built"
	INSTALLED=no
else
	dpkg -i "${DEV_DEBS[@]}" >"$T/dpkg-i.out" 2>&1
	rc=$?
	INSTALLED=$([ $rc -eq 0 ] && echo yes || echo no)
	tap_result "${TESTS[5]}" $rc "dpkg -i: exit $rc" "$(tail -15 "$T/dpkg-i.out")"
fi

# --- 6. what is installed ------------------------------------------------------

# expect PATH MODE OWNER:GROUP TYPE
expect() {
	local got
	got=$(stat -c '%a %U:%G %F' "$1" 2>/dev/null) || { why+=" $1 missing;"; return; }
	[ "$got" = "$2 $3 $4" ] || why+=" $1 is '$got', not '$2 $3 $4';"
}
why=
if [ "$INSTALLED" = yes ]; then
	# what the packages' sysusers.d and tmpfiles.d made at configure time
	for u in vigil vigil-cp; do
		getent passwd "$u" >/dev/null || why+=" no user $u;"
	done
	expect /usr/lib/sysusers.d/vigild.conf 644 root:root "regular file"
	expect /usr/lib/sysusers.d/vigil-cp.conf 644 root:root "regular file"
	expect /usr/lib/tmpfiles.d/vigild.conf 644 root:root "regular file"
	expect /var/lib/vigil 755 vigil:vigil directory
	expect /var/lib/vigil/profiles 750 vigil:vigil directory
	expect /var/lib/vigil/state 700 vigil:vigil directory
	IFS=: read -r _ _ uid _ _ home shell < <(getent passwd vigil)
	[ -n "${uid:-}" ] || why+=" no user vigil;"
	[ -n "${uid:-}" ] && [ "$uid" -lt 1000 ] || why+=" vigil is not a system user (uid ${uid:-none});"
	[ "${shell:-}" = /usr/sbin/nologin ] || why+=" vigil's shell is '${shell:-}';"
	for f in vigild vigild-collector vigild-collector-local vigild-uplink vigild-uplink-local; do
		expect /usr/libexec/vigil/$f 755 root:root "regular file"
	done
	expect /usr/libexec/vigil 755 root:root directory
	[ "$(readlink /usr/sbin/vigild)" = ../libexec/vigil/vigild ] || why+=" /usr/sbin/vigild -> '$(readlink /usr/sbin/vigild)';"
	expect /usr/sbin/vigil-cp 755 root:root "regular file"
	expect /usr/bin/vigilctl 755 root:root "regular file"
	expect /usr/bin/vigil-sign 755 root:root "regular file"
	expect /usr/lib/vigil/bpf/profile.bpf.o 644 root:root "regular file"
	expect /usr/lib/vigil/bpf/profile.bpf.o.sig 644 root:root "regular file"
	expect /etc/vigil/trust.pem 644 root:root "regular file"
	expect /etc/vigil/policy.yaml.example 644 root:root "regular file"
	expect $UNIT 644 root:root "regular file"
	expect /usr/lib/systemd/system/vigil-cp.service 644 root:root "regular file"
	expect /usr/share/selinux/packages/vigil.pp 644 root:root "regular file"
	for m in man8/vigild.8 man5/vigil-policy.5 man8/vigil-cp.8 man1/vigilctl.1 man1/vigil-sign.1; do
		expect /usr/share/man/$m.gz 644 root:root "regular file"
	done
	conff=$(dpkg-query -W -f='${Conffiles}' vigild)
	for c in /etc/vigil/trust.pem /etc/vigil/policy.yaml.example; do
		grep -q " $c " <<<"$conff " || why+=" $c is not a conffile;"
	done
	tap_result "${TESTS[6]}" $([ -z "$why" ]; echo $?) "$why"
else
	tap_not_ok "${TESTS[6]}" "not installed"
fi

# --- 7. vigild as its unit runs it ----------------------------------------------

# unit_value KEY: the unit's last KEY= line's value; unit_values KEY: all of
# them, space-separated (CapabilityBoundingSet= and the like add up).
unit_value() { sed -n "s/^$1=//p" "$UNIT" | tail -1; }
unit_values() { sed -n "s/^$1=//p" "$UNIT" | tr '\n' ' '; }

if [ "$INSTALLED" = yes ]; then
	exec_start=$(unit_value ExecStart)
	exec_start=${exec_start//\$\{VIGILD_OPTS\}/}
	exec_start=${exec_start//\$VIGILD_OPTS/}
	read -r -a cmd <<<"$exec_start"
	# systemd's part, with setpriv: the user, the capability bounding and
	# ambient sets, no_new_privs and the umask the unit gives
	run=(--bounding-set "$(setpriv_caps -all $(unit_values CapabilityBoundingSet))")
	amb=$(unit_values AmbientCapabilities)
	if [ -n "${amb// /}" ]; then
		run+=(--inh-caps "$(setpriv_caps "" $amb)" --ambient-caps "$(setpriv_caps "" $amb)")
	else
		run+=(--inh-caps -all)
	fi
	user=$(unit_value User) group=$(unit_value Group)
	[ -n "$user" ] && run+=(--reuid "$user" --regid "${group:-$user}" --clear-groups)
	[ "$(unit_value NoNewPrivileges)" = yes ] && run+=(--no-new-privs)
	um=$(unit_value UMask)
	(umask "${um:-0022}" && exec timeout 60 setpriv "${run[@]}" -- \
		"${cmd[@]}" --duration 3 --interval 1) >"$T/run.out" 2>"$T/run.err"
	rc=$?
	files=(/var/lib/vigil/profiles/*.pb.gz)
	why=
	[ "${cmd[0]}" = /usr/libexec/vigil/vigild ] || why+=" ExecStart runs '${cmd[0]}';"
	[ -e "${files[0]}" ] || why+=" no profile in /var/lib/vigil/profiles;"
	[ -e "${files[0]}" ] && { out=$(validate_profiles "${files[@]}") || why+=" $out;"; }
	grep -q 'development build' "$T/run.err" || why+=" no development-build warning;"
	owner=$(stat -c %U "${files[0]}" 2>/dev/null)
	[ "$owner" = vigil ] || why+=" the profile is owned by '$owner', not vigil;"
	tap_result "${TESTS[7]}" $([ $rc -eq 0 ] && [ -z "$why" ]; echo $?) \
		"setpriv ${run[*]} -- ${cmd[*]}: exit $rc;$why" "$(tail -8 "$T/run.err")"
else
	tap_not_ok "${TESTS[7]}" "not installed"
fi

# --- 8. the example policy -------------------------------------------------------

if [ "$INSTALLED" = yes ]; then
	out=$(/usr/libexec/vigil/vigild --policy /etc/vigil/policy.yaml.example --check 2>&1)
	rc=$?
	tap_result "${TESTS[8]}" $([ $rc -eq 0 ] && grep -q valid <<<"$out"; echo $?) "exit $rc: $out"
else
	tap_not_ok "${TESTS[8]}" "not installed"
fi

# --- 9. re-signing, as docs/signing.md says ------------------------------------------

if [ "$INSTALLED" = yes ]; then
	ENT=$T/ours
	"$SIGN" dev-ca --out "$ENT" --name "Our Enterprise" >/dev/null 2>&1
	cp /usr/lib/vigil/bpf/profile.bpf.o.sig "$T/shipped.sig"
	# the old signature under the new trust store first
	install -m 0644 "$ENT/ca.pem" /etc/vigil/trust.pem
	timeout 60 /usr/libexec/vigil/vigild --duration 2 --output "$T/p1" >/dev/null 2>"$T/old.err"
	rc_old=$?
	"$SIGN" sign --cert "$ENT/signer.pem" --key "$ENT/signer.key" --out "$T/new.sig" \
		/usr/lib/vigil/bpf/profile.bpf.o >/dev/null 2>&1
	out=$(cd "$T" && cp /usr/lib/vigil/bpf/profile.bpf.o . && cp new.sig profile.bpf.o.sig &&
		"$SIGN" verify --trust "$ENT/ca.pem" --bpf ./profile.bpf.o 2>&1)
	install -m 0644 "$T/new.sig" /usr/lib/vigil/bpf/profile.bpf.o.sig
	timeout 60 /usr/libexec/vigil/vigild --duration 2 --interval 1 --output "$T/p2" >/dev/null 2>"$T/new.err"
	rc_new=$?
	files=("$T"/p2/*.pb.gz)
	tap_result "${TESTS[9]}" \
		$([ $rc_old -eq 77 ] && grep -qi 'signature\|certificate\|trust' "$T/old.err" &&
			[ $rc_new -eq 0 ] && [ -e "${files[0]}" ] &&
			grep -q 'Our Enterprise' "$T/new.err"; echo $?) \
		"old signature, new trust: exit $rc_old (want 77): $(tail -1 "$T/old.err")" \
		"re-signed: verify says: $out" "re-signed: exit $rc_new, ${#files[@]} profile(s):" "$(tail -4 "$T/new.err")"
else
	tap_not_ok "${TESTS[9]}" "not installed"
fi

# --- 10. purge -------------------------------------------------------------------------

if [ "$INSTALLED" = yes ]; then
	for p in "${PKGS[@]}"; do dpkg -L "$p"; done 2>/dev/null | sort -u >"$T/files"
	dpkg --purge "${PKGS[@]}" >"$T/purge.out" 2>&1
	rc=$?
	why=
	[ $rc -eq 0 ] || why+=" dpkg --purge: exit $rc;"
	left=$(while read -r f; do
		case $f in /. | /etc | /usr | /usr/* | /var | /var/lib) [ -d "$f" ] && ! [[ $f =~ vigil ]] && continue ;; esac
		[ -e "$f" ] || [ -L "$f" ] && echo "$f"
	done <"$T/files")
	[ -z "$left" ] || why+=" left behind: $(echo $left);"
	for d in /etc/vigil /etc/vigil-cp /var/lib/vigil /usr/lib/vigil /usr/libexec/vigil /var/lib/vigil-cp; do
		[ -e "$d" ] && why+=" $d remains;"
	done
	links=$(find /etc/systemd/system -name 'vigil*' 2>/dev/null)
	[ -z "$links" ] || why+=" unit links remain: $links;"
	# the users the packages made go with their groups; one they did not
	# make stays, and the purge says so
	for u in vigil vigil-cp; do
		if [[ " $GONE_AFTER_PURGE " == *" $u "* ]]; then
			getent passwd "$u" >/dev/null && why+=" user $u remains;"
			getent group "$u" >/dev/null && why+=" group $u remains;"
		else
			getent passwd "$u" >/dev/null || why+=" user $u, not the package's, was removed;"
			grep -qF "user $u kept: this package did not make it" "$T/purge.out" ||
				why+=" the purge did not say why it kept user $u;"
		fi
	done
	tap_result "${TESTS[10]}" $([ -z "$why" ]; echo $?) "$why" \
		"$(tail -5 "$T/purge.out")"
else
	tap_not_ok "${TESTS[10]}" "not installed"
fi

# --- 11. a purge keeps a user that still owns a file -----------------------------

if [ "$INSTALLED" = yes ] && dpkg -i "${DEV_DEBS[1]}" >"$T/dpkg-i-cp.out" 2>&1; then
	why=
	cp_made=$(package_made vigil-cp && echo yes)
	[ -n "$cp_made" ] || why+=" vigil-cp is not the package's user: $(getent passwd vigil-cp);"
	# vigil-cp(8): the server's key, the administrator's, vigil-cp's own
	OUR_KEY=/etc/vigil-cp/cp.key
	mkdir -p /etc/vigil-cp && printf 'a key\n' >"$OUR_KEY" &&
		chown vigil-cp:vigil-cp "$OUR_KEY" && chmod 0600 "$OUR_KEY" || why+=" cannot write $OUR_KEY;"
	dpkg --purge vigil-cp >"$T/purge-cp.out" 2>&1 || why+=" dpkg --purge vigil-cp: exit $?;"
	dpkg-query -W -f='${db:Status-Abbrev}' vigil-cp 2>/dev/null | grep -q '^[ir]' && why+=" vigil-cp is still installed;"
	getent passwd vigil-cp >/dev/null || why+=" user vigil-cp was removed while it owned $OUR_KEY;"
	[ -f "$OUR_KEY" ] || why+=" $OUR_KEY was removed;"
	grep -qF "user vigil-cp kept: $OUR_KEY is still its own" "$T/purge-cp.out" ||
		why+=" the purge did not name $OUR_KEY;"
	# what the message says to do, done
	rm -f "$OUR_KEY" && rmdir /etc/vigil-cp && OUR_KEY=
	[ -n "$cp_made" ] && { userdel vigil-cp || why+=" userdel vigil-cp: exit $?;"; }
	tap_result "${TESTS[11]}" $([ -z "$why" ]; echo $?) "$why" "$(tail -5 "$T/purge-cp.out")"
else
	tap_not_ok "${TESTS[11]}" "not installed: $(tail -3 "$T/dpkg-i-cp.out" 2>/dev/null)"
fi

tap_done
