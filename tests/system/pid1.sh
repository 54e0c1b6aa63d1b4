#!/usr/bin/env bash
# Boots a private systemd as PID 1 of a new PID and mount namespace on this machine's root
# filesystem, for the system tests: units are installed, started, reloaded and read back with
# the real systemctl and journalctl even where the machine's own PID 1 is not systemd. Root only.
#
# Inside, /run and /tmp are fresh tmpfs (systemd-tmpfiles empties /tmp at boot: it must not be
# the machine's own), and journald keeps its journal in that /run (Storage=volatile), never in
# the machine's /var/log/journal. /etc, /usr and /var are the machine's own: what a test
# installs, it removes.
#
# Every mount inside is made shared (mount --make-rshared /, within the namespace only: the
# machine's mounts stay out of it), as systemd itself does on a real boot. systemd skips that
# step when it finds itself in a container (here: Docker's /.dockerenv), and then no unit sees
# its $CREDENTIALS_DIRECTORY: systemd 252 builds it in a throwaway mount namespace
# ((sd-mkdcreds): a ramfs on /dev/shm, moved onto /run/credentials/UNIT) and only mount
# propagation brings it back. Without it a unit sees the empty 0700 root:root placeholder:
# "Permission denied" as another user, "No such file or directory" as root.
#
#   pid1.sh start          boot to basic.target; returns once systemd reports running/degraded
#   pid1.sh exec CMD…      run CMD inside the namespace
#   pid1.sh stop           power off (kill if it does not go)
# State (the PID file, the boot log) lives in $AV_PID1_STATE (default /var/tmp/av-pid1), outside
# /tmp so a booted systemd cannot wipe it.
set -u
state=${AV_PID1_STATE:-/var/tmp/av-pid1}
mkdir -p "$state"
pidfile=$state/pid
log=$state/boot.log

pid_of() {
	[[ -s $pidfile ]] || return 1
	local p
	p=$(<"$pidfile")
	[[ -d /proc/$p && $(cat "/proc/$p/comm" 2>/dev/null) == systemd ]] || return 1
	echo "$p"
}

inside() {
	local p
	p=$(pid_of) || {
		echo "pid1.sh: not running" >&2
		return 2
	}
	nsenter -t "$p" -m -p -- "$@"
}

case ${1:-} in
start)
	if pid_of >/dev/null; then
		echo "pid1.sh: already running (pid $(pid_of))"
		exit 0
	fi
	[[ $(id -u) == 0 ]] || {
		echo "pid1.sh: needs root" >&2
		exit 2
	}
	# shellcheck disable=SC2016
	boot='mount -t tmpfs -o mode=755 tmpfs /run &&
		mount -t tmpfs -o mode=1777 tmpfs /tmp &&
		mount --make-rshared / &&
		mkdir -p /run/systemd/journald.conf.d &&
		printf "[Journal]\nStorage=volatile\n" >/run/systemd/journald.conf.d/volatile.conf &&
		exec /lib/systemd/systemd --system --unit=basic.target --log-target=journal-or-kmsg'
	setsid unshare --pid --fork --mount --propagation private --mount-proc bash -c "$boot" \
		</dev/null >"$log" 2>&1 &
	unshare_pid=$!
	for _ in $(seq 1 100); do
		p=$(pgrep -x systemd -P "$(pgrep -P "$unshare_pid" -x unshare || echo "$unshare_pid")" 2>/dev/null | head -1)
		[[ -z $p ]] && p=$(pgrep -x systemd -P "$unshare_pid" 2>/dev/null | head -1)
		if [[ -n $p ]]; then
			echo "$p" >"$pidfile"
			break
		fi
		sleep 0.1
	done
	pid_of >/dev/null || {
		echo "pid1.sh: systemd did not start; boot log:" >&2
		cat "$log" >&2
		exit 1
	}
	s=
	for _ in $(seq 1 150); do
		s=$(inside systemctl is-system-running 2>/dev/null || true)
		case $s in
		running | degraded)
			echo "pid1.sh: $s (pid $(pid_of))"
			exit 0
			;;
		esac
		sleep 0.2
	done
	echo "pid1.sh: booted but not settled: ${s:-no answer}" >&2
	exit 1
	;;
exec)
	shift
	inside "$@"
	;;
stop)
	p=$(pid_of) || {
		echo "pid1.sh: not running"
		exit 0
	}
	inside systemctl poweroff --no-block >/dev/null 2>&1 || true
	for _ in $(seq 1 50); do
		pid_of >/dev/null || break
		sleep 0.2
	done
	if pid_of >/dev/null; then kill -KILL "$p" 2>/dev/null || true; fi
	rm -f "$pidfile"
	echo "pid1.sh: stopped"
	;;
*)
	sed -n '2,23p' "$0"
	exit 2
	;;
esac
