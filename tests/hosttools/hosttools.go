// Package hosttools finds the external programs tests use: image makers
// and checkers (mke2fs, e2fsck, mkfs.fat, fsck.fat, mtools, xorriso,
// sfdisk, sgdisk), a second 9P peer (diod) and QEMU. The test command
// (bash tests/run.sh) installs them with apt-get; a test never installs
// anything and never skips for a missing tool: it fails, naming the
// Debian package to install.
package hosttools

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// packages maps a program to the Debian package that holds it.
var packages = map[string]string{
	"mke2fs": "e2fsprogs", "e2fsck": "e2fsprogs", "debugfs": "e2fsprogs", "dumpe2fs": "e2fsprogs",
	"mkfs.fat": "dosfstools", "fsck.fat": "dosfstools",
	"mcopy": "mtools", "mdir": "mtools", "mmd": "mtools", "mtype": "mtools",
	"xorriso": "xorriso", "genisoimage": "genisoimage", "mkzftree": "genisoimage",
	"makefs": "makefs",
	"sfdisk": "fdisk", "sgdisk": "gdisk",
	"diod": "diod", "diodcat": "diod", "diodls": "diod",
	"qemu-system-x86_64": "qemu-system-x86",
	"fusermount3":        "fuse3",
	"fuse2fs":            "fuse2fs",
	"setfattr":           "attr",
	"getfattr":           "attr",
	"setfacl":            "acl",
	"getfacl":            "acl",
	"grub-fstest":        "grub-common",
}

// Find returns the path of program name: on $PATH, or in /usr/sbin and
// /sbin (not on a non-root user's PATH), or "" when it is missing.
func Find(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Need returns the path of program name, failing t when it is missing.
func Need(t testing.TB, name string) string {
	t.Helper()
	p := Find(name)
	if p == "" {
		pkg := packages[name]
		if pkg == "" {
			pkg = "the package holding it"
		}
		t.Fatalf("%s is not installed: the test command (bash tests/run.sh) installs it (apt-get install %s)", name, pkg)
	}
	return p
}

// NeedAll is Need for several programs.
func NeedAll(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		Need(t, n)
	}
}

// NeedFUSE fails t unless FUSE mounts can be made here: running as root
// (the test command runs as root), /dev/fuse, and fusermount3.
func NeedFUSE(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("FUSE tests need root: run the test command (bash tests/run.sh) as root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatalf("no /dev/fuse (load the fuse module): %v", err)
	}
	Need(t, "fusermount3")
}

// Run runs program name (found with Need) and returns its standard
// output, failing t with both outputs when it fails. Standard error is
// kept apart: some tools (debugfs) print a banner there.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(Need(t, name), args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, &stderr)
	}
	return string(out)
}

// IsMountPoint reports whether dir is a mount point of this process's
// mount namespace (/proc/self/mountinfo, field 5).
func IsMountPoint(dir string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}
