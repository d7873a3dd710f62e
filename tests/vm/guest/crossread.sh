#!/bin/sh
# Guest side of tests/vm TestLinuxReadsImages: mounts each image the host
# attached as a read-only virtio disk (vda, vdb, ... in order) with Linux's
# own driver and prints its manifest, which the host compares with what
# rump9p's driver reads from the same image. /test/env sets IMAGES, one
# "NAME:FSTYPE:OPTIONS" word per disk. Output per image: "MSTAT NAME:<stat
# line>" and "MSUM NAME:<md5sum line>", then "CHECK read_NAME ok|FAIL".
. /test/env
. /test/lib.sh
disks=abcdefgh
i=1
for spec in $IMAGES; do
	name=${spec%%:*}
	rest=${spec#*:}
	fstype=${rest%%:*}
	opts=${rest#*:}
	dev=/dev/vd$(echo $disks | cut -c$i)
	i=$((i + 1))
	mkdir -p /mnt/$name
	t_mount() { mount -t "$fstype" -o "$opts" "$dev" "/mnt/$name"; }
	check "mount_$name" t_mount
	grep -q " /mnt/$name " /proc/mounts || continue
	# The manifest goes to the console, outside the check's capture.
	(cd /mnt/$name && find . | sort | xargs stat -c "MSTAT $name:%n|%F|%a|%s|%u|%g|%Y")
	(cd /mnt/$name && find . -type f | sort | xargs md5sum | sed "s|^|MSUM $name:|")
	t_umount() { umount "/mnt/$name"; }
	check "umount_$name" t_umount
done
exit $failures
