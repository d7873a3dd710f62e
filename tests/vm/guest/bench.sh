#!/bin/sh
# Guest side of tests/vm BenchmarkGuest: times what a VM user does on a
# mounted image, REPS times, and prints one "BENCH <op> <seconds>" line per
# run (the host takes the median). /test/env sets TRANSPORT, HOST, PORT,
# ANAME and MSIZE as for workload.sh, and REPS.
#   write_64MiB  dd 64 MiB from /dev/zero, conv=fsync
#   read_64MiB   dd the same file back after dropping the guest's caches
#   copyin_2000  cp -a of 2,000 files of 1-16 KiB in 20 directories
#   readall_2000 cat of every file of that tree after dropping caches
. /test/env
. /test/lib.sh
M=/mnt/9p
mkdir -p $M
mount9p $M "msize=$MSIZE" || {
	echo "INFO mount failed"
	exit 1
}

src=/tmp/tree
awk -v src=$src 'BEGIN {
	line = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"
	for (d = 0; d < 20; d++) system("mkdir -p " src "/d" d)
	for (i = 0; i < 2000; i++) {
		f = sprintf("%s/d%d/f%04d", src, i % 20, i)
		n = 16 + (i * 7919) % 241   # 16..256 lines of 64 bytes: 1-16 KiB
		for (j = 0; j < n; j++) printf "%s", line > f
		close(f)
	}
}' || exit 1
echo "INFO tree: $(find $src -type f | wc -l) files, $(du -sk $src | cut -f1) KiB"

# timed NAME CMD...: run CMD and print its wall time in seconds.
timed() {
	_name=$1
	shift
	_t0=$(now)
	"$@" || {
		echo "INFO $_name failed"
		exit 1
	}
	echo "BENCH $_name $(echo "$(now) $_t0" | awk '{ printf "%.2f", $1 - $2 }')"
}
dropcaches() { sync && echo 3 >/proc/sys/vm/drop_caches; }
readall() { find "$1" -type f -exec cat {} + >/dev/null; }

r=1
while [ $r -le "${REPS:-3}" ]; do
	timed write_64MiB dd if=/dev/zero of=$M/big$r bs=1M count=64 conv=fsync 2>/dev/null
	dropcaches
	timed read_64MiB dd if=$M/big$r of=/dev/null bs=1M 2>/dev/null
	timed copyin_2000 cp -a $src $M/tree$r
	dropcaches
	timed readall_2000 readall $M/tree$r
	rm -rf $M/big$r $M/tree$r
	r=$((r + 1))
done
umount $M
