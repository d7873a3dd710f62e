#!/usr/bin/env bash
# The test command: installs what the tests need on a Debian machine (run as
# root, or with sudo available) and runs every test with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: independent checkers and image makers
# (e2fsprogs, dosfstools, mtools, xorriso), partition tools (fdisk, gdisk),
# a second 9P client and peer (diod), the QEMU guest for real v9fs, and
# setfattr/getfattr (attr) for extended attributes through FUSE.
pkgs=(e2fsprogs dosfstools mtools xorriso fdisk gdisk diod qemu-system-x86 busybox-static cpio xz-utils kmod fuse3 genisoimage makefs grub-common attr fuse2fs acl)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

go mod download
go vet ./...
# staticcheck's default checks (honnef.co/go/tools), pinned.
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
test -z "$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
go test -race -timeout 45m ./...
