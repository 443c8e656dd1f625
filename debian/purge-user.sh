# debian/purge-user.sh - purge_user, the last step of a purge for a system
# user of these packages.  debian/rules puts this text in place of the
# line "#PURGE_USER#" of debian/vigild.postrm and debian/vigil-cp.postrm.
#
# purge_user NAME COMMENT UNIT DIR...: removes the user NAME and its group
# when this package made them: a user whose comment is the one the
# package's sysusers.d gives it.  Another user of that name
# (an administrator's, or the one vigild makes with useradd when it is run
# by hand) stays, and the purge says so.
# The user also stays while a file under DIR..., or under the
# ReadWritePaths= of UNIT's drop-ins in /etc/systemd/system, is its own:
# that file would pass to whoever gets the uid next.  Those are the places
# the unit lets it write (ProtectSystem=strict); no other filesystem is
# searched (a search of / took a minute on a 20 GB disk).  The purge names
# the file and what to run once it is dealt with.  A user that userdel
# cannot remove (its processes still run) stays, with userdel's reason.
purge_user() {
	pu_name=$1 pu_comment=$2 pu_unit=$3
	shift 3
	pu_entry=$(getent passwd "$pu_name") || return 0
	IFS=: read -r _ _ pu_uid pu_gid pu_gecos _ <<EOF
$pu_entry
EOF
	if [ "$pu_gecos" != "$pu_comment" ]; then
		echo "user $pu_name kept: this package did not make it (its comment is not \"$pu_comment\")" >&2
		return 0
	fi
	pu_dirs="$*"
	for pu_conf in /etc/systemd/system/"$pu_unit".d/*.conf; do
		if [ -f "$pu_conf" ]; then
			pu_dirs="$pu_dirs $(sed -n 's/^[[:space:]]*ReadWritePaths[[:space:]]*=//p' "$pu_conf")"
		fi
	done
	for pu_dir in $pu_dirs; do
		# a path's prefixes: "-" (may be missing), "+" (outside RootDirectory=)
		pu_dir=${pu_dir#-}
		pu_dir=${pu_dir#+}
		[ -e "$pu_dir" ] || continue
		pu_file=$(find "$pu_dir" -xdev \( -uid "$pu_uid" -o -gid "$pu_gid" \) -print -quit 2>/dev/null)
		if [ -n "$pu_file" ]; then
			echo "user $pu_name kept: $pu_file is still its own; once what it owns is removed or given to another user: userdel $pu_name" >&2
			return 0
		fi
	done
	if ! pu_why=$(userdel "$pu_name" 2>&1); then
		echo "user $pu_name kept: userdel says: $pu_why" >&2
		return 0
	fi
	# userdel removes the group of the same name where login.defs says
	# USERGROUPS_ENAB yes (Debian's default); elsewhere groupdel does, and
	# it refuses while another user has the group as primary group.
	if getent group "$pu_name" >/dev/null && ! pu_why=$(groupdel "$pu_name" 2>&1); then
		echo "group $pu_name kept: groupdel says: $pu_why" >&2
	fi
}
