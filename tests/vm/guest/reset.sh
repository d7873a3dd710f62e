#!/bin/sh
# Session reset over one virtio-serial connection (tests/vm
# TestLinuxClientSessionReset): the guest mounts, writes and unmounts three
# times over the same port, then reboots with a fourth mount still in place
# and a lock held; after the reboot it mounts once more. QEMU keeps the
# port's chardev (the server's unix socket) connected throughout, so every
# mount after the first starts with a Tversion on a live connection, which
# must reset the session (version(5)).
#
# The scratch disk /dev/vda carries the boot count across the reboot.

. /test/env
. /test/lib.sh
M=/mnt/9p
mkdir -p $M

# mount_port: guest-mount over the port, bounded so that a server that does
# not reset the session gives a clear failure instead of a hang.
mount_port() {
	rump9p guest-mount --timeout "${MOUNT_TIMEOUT:-30}s" --virtio-port rump9p -o "aname=$ANAME" $M
}

# relay_gone: no guest-mount relay is left once the mount is gone.
# (The pattern's brackets keep grep from finding its own command line.)
relay_gone() {
	_n=0
	while grep -l 'relay[-]child' /proc/[0-9]*/cmdline 2>/dev/null; do
		usleep 100000
		_n=$((_n + 1))
		[ $_n -lt 100 ] || fail "the relay still runs 10 s after umount"
	done
}

# round N: mount, find the files of the rounds before, write one, unmount.
round() {
	mount_port
	d=$M/reset
	mkdir -p $d
	i=1
	while [ $i -lt "$1" ]; do
		expect "file of round $i" "$(cat $d/f$i)" "round $i"
		i=$((i + 1))
	done
	echo "round $1" >$d/f$1
	dd if=/dev/zero of=$d/big$1 bs=256k count=8 2>/dev/null # messages larger than a pipe
	expect "size" "$(stat -c %s $d/big$1)" 2097152
	cd /
	umount $M
	relay_gone
}

# before_reboot: mount a fourth time, write, hold a lock in a background
# process and leave everything in place; the reboot ends it all at once.
before_reboot() {
	mount_port
	d=$M/reset
	for i in 1 2 3; do expect "file of round $i" "$(cat $d/f$i)" "round $i"; done
	echo "written before the reboot" >$d/before
	sync
	rm -f /tmp/held
	vmtool flock $d/lock sh -c 'touch /tmp/held; sleep 600' >/dev/null 2>&1 &
	wait_for /tmp/held
	rc=0
	vmtool flock -n $d/lock true || rc=$?
	expect "lock held before the reboot" "$rc" 75
}

after_reboot() {
	mount_port
	d=$M/reset
	for i in 1 2 3; do expect "file of round $i" "$(cat $d/f$i)" "round $i"; done
	expect "file written before the reboot" "$(cat $d/before)" "written before the reboot"
	# The old session's fids were clunked, so its lock is gone.
	vmtool flock -n $d/lock true || fail "the lock of the guest before the reboot is still held"
	echo "after" >$d/after
	expect "write after the reboot" "$(cat $d/after)" after
	cd /
	umount $M
	relay_gone
}

boot=$(head -c 1 /dev/vda | tr -dc 0-9)
boot=$((${boot:-0} + 1))
printf %s $boot | dd of=/dev/vda conv=notrunc,fsync 2>/dev/null
echo "INFO boot $boot"
case $boot in
1)
	check round_1 round 1
	check round_2 round 2
	check round_3 round 3
	check before_reboot before_reboot
	if [ $failures -ne 0 ]; then
		echo "INFO failures=$failures; no reboot"
		exit 1
	fi
	echo "INFO rebooting"
	reboot -f
	sleep 60
	;;
2)
	check after_reboot after_reboot
	;;
*)
	echo "INFO unexpected boot $boot (a crash loop?)"
	exit 1
	;;
esac
echo "INFO failures=$failures"
[ $failures -eq 0 ]
