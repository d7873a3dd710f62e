#!/bin/sh
# prepare.sh: build (once) the QEMU guest that tests/vm boots: Debian's own
# kernel, the modules for 9p/virtio/local file systems, and a busybox
# initramfs whose /init loads them, configures QEMU user networking, runs
# /test/run.sh (supplied by an appended cpio) and prints
# "RUMP9P-VM-EXIT <status>" before powering off.
#
# Everything is cached under $RUMP9P_VM_CACHE (default /var/cache/rump9p-vm);
# a second run with the same recipe returns at once. Needs root (apt-get).
# Prints the cache directory on its last line of stdout.
set -eu

CACHE=${RUMP9P_VM_CACHE:-/var/cache/rump9p-vm}
RECIPE=4 # bump when the layout or /init below changes

# Modules wanted in the guest; their dependencies are added automatically.
WANT="9p 9pnet 9pnet_fd 9pnet_virtio netfs fscache
virtio_pci virtio_net virtio_console virtio_blk
loop ext4 crc32c_generic vfat isofs ufs
nls_cp437 nls_ascii nls_utf8 nls_iso8859-1"

log() { echo "prepare.sh: $*" >&2; }

if [ -f "$CACHE/ready" ] && [ "$(cat "$CACHE/ready")" = "recipe $RECIPE" ] &&
	command -v qemu-system-x86_64 >/dev/null 2>&1; then
	echo "$CACHE"
	exit 0
fi

need=""
for p in qemu-system-x86 busybox-static cpio xz-utils kmod diod fuse3; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
	log "installing$need"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2 || log "apt-get update failed; trying install anyway"
	# shellcheck disable=SC2086
	apt-get install -y -qq $need >&2
fi

KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null |
	sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n 1)
[ -n "$KPKG" ] || { log "cannot resolve the package linux-image-amd64 depends on"; exit 1; }
KVER=${KPKG#linux-image-}
log "kernel package $KPKG"

mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK" # apt-get download drops privileges to _apt

if [ ! -f "$CACHE/$KPKG.deb" ]; then
	(cd "$WORK" && apt-get download "$KPKG" >&2)
	mv "$WORK"/"$KPKG"_*.deb "$CACHE/$KPKG.deb"
fi
dpkg -x "$CACHE/$KPKG.deb" "$WORK/pkg"
MODDIR="$WORK/pkg/lib/modules/$KVER"
[ -d "$MODDIR" ] || { log "no $MODDIR in the package"; exit 1; }

cp "$WORK/pkg/boot/vmlinuz-$KVER" "$WORK/vmlinuz"

# Uncompressed vmlinux: the PVH entry point (CONFIG_PVH) lets QEMU boot the
# ELF directly and skips the in-guest xz decompression, which is slow under TCG.
# The payload is the xz stream inside the bzImage.
off=$(LC_ALL=C grep -obUaP '\xfd\x37\x7a\x58\x5a\x00' "$WORK/vmlinuz" | head -n 1 | cut -d: -f1 || true)
if [ -n "$off" ]; then
	tail -c +"$((off + 1))" "$WORK/vmlinuz" | xz -dc --single-stream >"$WORK/vmlinux" 2>/dev/null || rm -f "$WORK/vmlinux"
fi
if [ -f "$WORK/vmlinux" ] && ! head -c 4 "$WORK/vmlinux" | grep -q ELF; then
	rm -f "$WORK/vmlinux"
fi

# Resolve the dependency closure and an insmod order (dependencies first).
find "$MODDIR" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' >"$WORK/allmods"
modpath() { grep -E "/$1\.ko(\.xz|\.zst)?\$" "$WORK/allmods" | head -n 1; }
: >"$WORK/order"
visit() {
	# $1: module name with '-' or '_' as shipped.
	grep -qx "$1" "$WORK/order" && return 0
	grep -qx "$1" "$WORK/visiting" 2>/dev/null && { log "dependency cycle at $1"; exit 1; }
	echo "$1" >>"$WORK/visiting"
	f=$(modpath "$1")
	if [ -z "$f" ]; then
		alt=$(echo "$1" | tr '_-' '-_')
		f=$(modpath "$alt")
		[ -n "$f" ] || { log "module $1 not found (built in?)"; return 0; }
	fi
	deps=$(modinfo -F depends "$f" | tr ',' ' ')
	for d in $deps; do visit "$d"; done
	echo "$1" >>"$WORK/order"
}
for m in $WANT; do visit "$m"; done

ROOT="$WORK/root"
mkdir -p "$ROOT/bin" "$ROOT/sbin" "$ROOT/lib/modules" "$ROOT/etc" "$ROOT/proc" \
	"$ROOT/sys" "$ROOT/dev" "$ROOT/tmp" "$ROOT/mnt" "$ROOT/root" "$ROOT/home/user" "$ROOT/test"
cp /bin/busybox "$ROOT/bin/busybox"
for a in $(/bin/busybox --list); do
	[ "$a" = busybox ] || ln -s busybox "$ROOT/bin/$a"
done
: >"$ROOT/lib/modules/order"
while read -r m; do
	f=$(modpath "$m")
	[ -n "$f" ] || f=$(modpath "$(echo "$m" | tr '_-' '-_')")
	[ -n "$f" ] || continue
	n=$(basename "$f")
	case "$n" in
	*.ko.xz) xz -dc "$f" >"$ROOT/lib/modules/${n%.xz}"; n=${n%.xz} ;;
	*.ko.zst) zstd -dc "$f" >"$ROOT/lib/modules/${n%.zst}"; n=${n%.zst} ;;
	*) cp "$f" "$ROOT/lib/modules/$n" ;;
	esac
	echo "${n%.ko}" >>"$ROOT/lib/modules/order"
done <"$WORK/order"
# modules.dep for anyone who wants busybox modprobe.
(cd "$ROOT/lib/modules" && while read -r m; do
	d=$(modinfo -F depends "$m.ko" | tr ',' '\n' | sed '/^$/d;s/$/.ko/' | tr '\n' ' ')
	echo "$m.ko: $d"
done <order) >"$ROOT/lib/modules/modules.dep"
mkdir -p "$ROOT/lib/modules/$KVER"
echo "$KVER" >"$ROOT/etc/kver"

cat >"$ROOT/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat >"$ROOT/etc/group" <<'G'
root:x:0:
user:x:1000:
nogroup:x:65534:
G
echo "root::0::::::" >"$ROOT/etc/shadow"
chmod 600 "$ROOT/etc/shadow"
chown 1000:1000 "$ROOT/home/user"

cat >"$ROOT/init" <<'I'
#!/bin/sh
# rump9p VM guest init (generated by tests/vm/prepare.sh).
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t tmpfs tmp /tmp
exec </dev/console >/dev/console 2>&1
while read -r m; do
	insmod "/lib/modules/$m.ko" 2>/tmp/insmod.err || echo "RUMP9P-VM-INSMOD-FAIL $m: $(cat /tmp/insmod.err)"
done </lib/modules/order
ip link set lo up
if ip link set eth0 up 2>/dev/null; then
	ip addr add 10.0.2.15/24 dev eth0
	ip route add default via 10.0.2.2
fi
echo "RUMP9P-VM-BOOTED $(cut -d' ' -f1 /proc/uptime)"
status=127
if [ -f /test/run.sh ]; then
	cd /tmp && sh /test/run.sh
	status=$?
else
	echo "RUMP9P-VM: no /test/run.sh"
fi
cd /
sync
echo "RUMP9P-VM-EXIT $status"
poweroff -f
I
chmod 755 "$ROOT/init"

(cd "$ROOT" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$WORK/initramfs.cpio"

for f in vmlinuz vmlinux initramfs.cpio; do
	[ -f "$WORK/$f" ] && mv "$WORK/$f" "$CACHE/$f"
done
cp "$ROOT/lib/modules/order" "$CACHE/modules.order"
echo "$KVER" >"$CACHE/kver"
echo "recipe $RECIPE" >"$CACHE/ready"
log "guest ready in $CACHE (kernel $KVER, $(wc -l <"$CACHE/modules.order") modules)"
echo "$CACHE"
