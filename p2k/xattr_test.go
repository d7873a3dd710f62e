package p2k_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rump9p/rump9p/p2k"
	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/tests/hosttools"
	_ "github.com/rump9p/rump9p/vnodeops/ext2fs"
)

// attrTool runs setfattr or getfattr (package attr) with args, as the
// user given (nil: root), and returns its output.
func attrTool(t *testing.T, cred *syscall.Credential, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(hosttools.Need(t, name), args...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// getfattr returns the value of attribute name of path as getfattr
// prints it in hex ("0x..."), or an error.
func getfattr(t *testing.T, path, name string) (string, error) {
	t.Helper()
	out, err := attrTool(t, nil, "getfattr", "--absolute-names", "-e", "hex", "-n", name, path)
	if err != nil {
		return out, err
	}
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, name+"="); ok {
			return v, nil
		}
	}
	return "", errors.New("no value in: " + out)
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	s := []byte("0x")
	for _, c := range b {
		s = append(s, digits[c>>4], digits[c&15])
	}
	return string(s)
}

// TestXattrs: setxattr(2), getxattr(2), listxattr(2) and removexattr(2)
// on tmpfs through FUSE, with the flags and the errors of the kernel's
// rules, and with setfattr/getfattr as users run them.
func TestXattrs(t *testing.T) {
	f := mountTmpfs(t, false, p2k.Options{AllowOther: true})
	must(t, os.Chmod(f.dir, 0o777))
	must(t, os.WriteFile(f.path("a"), nil, 0o644))
	buf := make([]byte, 64)
	wantErrno(t, func() error { _, err := unix.Getxattr(f.path("a"), "user.x", buf); return err }(), syscall.ENODATA, "getxattr of a missing attribute")
	n, err := unix.Listxattr(f.path("a"), buf)
	if err != nil || n != 0 {
		t.Fatalf("listxattr with no attributes: %d, %v", n, err)
	}
	must(t, unix.Setxattr(f.path("a"), "user.x", []byte("v"), 0))
	wantErrno(t, unix.Setxattr(f.path("a"), "user.x", []byte("w"), unix.XATTR_CREATE), syscall.EEXIST, "XATTR_CREATE")
	wantErrno(t, unix.Setxattr(f.path("a"), "user.y", []byte("w"), unix.XATTR_REPLACE), syscall.ENODATA, "XATTR_REPLACE")
	must(t, unix.Setxattr(f.path("a"), "user.x", []byte("value"), unix.XATTR_REPLACE))
	if n, err := unix.Getxattr(f.path("a"), "user.x", buf); err != nil || string(buf[:n]) != "value" {
		t.Fatalf("getxattr = %q, %v", buf[:n], err)
	}
	wantErrno(t, func() error { _, err := unix.Getxattr(f.path("a"), "user.x", buf[:2]); return err }(), syscall.ERANGE, "getxattr into a short buffer")
	must(t, unix.Setxattr(f.path("a"), "trusted.t", []byte("root only"), 0))
	if n, err := unix.Listxattr(f.path("a"), buf); err != nil || string(buf[:n]) != "trusted.t\x00user.x\x00" {
		t.Fatalf("listxattr = %q, %v", buf[:n], err)
	}
	must(t, unix.Removexattr(f.path("a"), "user.x"))
	wantErrno(t, unix.Removexattr(f.path("a"), "user.x"), syscall.ENODATA, "removexattr of a missing attribute")

	// The attr tools, as root and as a user.
	if out, err := attrTool(t, nil, "setfattr", "-n", "user.tool", "-v", "0x00ff10", f.path("a")); err != nil {
		t.Fatalf("setfattr: %v\n%s", err, out)
	}
	if v, err := getfattr(t, f.path("a"), "user.tool"); err != nil || v != "0x00ff10" {
		t.Fatalf("getfattr user.tool = %q, %v", v, err)
	}
	user := &syscall.Credential{Uid: 1000, Gid: 1000}
	if out, err := attrTool(t, user, "setfattr", "-n", "user.other", "-v", "x", f.path("a")); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("setfattr by a user without write access: %v\n%s", err, out)
	}
	must(t, os.WriteFile(f.path("mine"), nil, 0o666))
	must(t, os.Chmod(f.path("mine"), 0o666)) // past the umask
	if out, err := attrTool(t, user, "setfattr", "-n", "trusted.x", "-v", "x", f.path("mine")); err == nil || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("setfattr trusted.* by a user: %v\n%s", err, out)
	}
	if out, err := attrTool(t, user, "setfattr", "-n", "user.ok", "-v", "yes", f.path("mine")); err != nil {
		t.Errorf("setfattr by a user with write access: %v\n%s", err, out)
	}
	if out, err := attrTool(t, nil, "setfattr", "-x", "user.tool", f.path("a")); err != nil {
		t.Fatalf("setfattr -x: %v\n%s", err, out)
	}
	if _, err := getfattr(t, f.path("a"), "user.tool"); err == nil {
		t.Error("user.tool still there after setfattr -x")
	}
}

// TestXattrsReadOnly: a read-only mount refuses attribute writes.
func TestXattrsReadOnly(t *testing.T) {
	f := mountTmpfs(t, true, p2k.Options{})
	wantErrno(t, unix.Setxattr(f.dir, "user.x", []byte("v"), 0), syscall.EROFS, "setxattr")
	wantErrno(t, unix.Removexattr(f.dir, "user.x"), syscall.EROFS, "removexattr")
}

// TestXattrsExt2: setfattr on a FUSE mount of an ext2 image with 256-byte
// inodes (small attributes in the inode, a large one in a block), the
// attributes QEMU's mapped-xattr security model writes, and removals;
// after unmounting, e2fsck -fn finds the image clean and debugfs reads
// the values.
func TestXattrsExt2(t *testing.T) {
	hosttools.NeedAll(t, "mke2fs", "e2fsck", "debugfs")
	img := filepath.Join(t.TempDir(), "x.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-I", "256", "-b", "1024", img, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	f := mountSpec(t, rumpcore.MountSpec{Type: "ext2fs", Image: img}, p2k.Options{})
	must(t, os.WriteFile(f.path("file"), []byte("data"), 0o644))
	must(t, os.Mkdir(f.path("dir"), 0o755))
	big := bytes.Repeat([]byte("B"), 700)
	virtfs := map[string][]byte{ // little-endian uid, gid, mode as QEMU stores them
		"user.virtfs.uid":  {0xe8, 0x03, 0, 0},
		"user.virtfs.gid":  {0xe8, 0x03, 0, 0},
		"user.virtfs.mode": {0xa4, 0x81, 0, 0},
	}
	for _, p := range []string{"file", "dir"} {
		for n, v := range virtfs {
			if out, err := attrTool(t, nil, "setfattr", "-n", n, "-v", hexOf(v), f.path(p)); err != nil {
				t.Fatalf("setfattr %s %s: %v\n%s", n, p, err, out)
			}
		}
	}
	must(t, unix.Setxattr(f.path("file"), "user.big", big, 0))
	must(t, unix.Setxattr(f.path("file"), "user.gone", []byte("x"), 0))
	must(t, unix.Removexattr(f.path("file"), "user.gone"))
	for n, v := range virtfs {
		if got, err := getfattr(t, f.path("dir"), n); err != nil || got != hexOf(v) {
			t.Errorf("getfattr %s = %q, %v", n, got, err)
		}
	}
	f.close()
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn after the FUSE writes: %v\n%s", err, out)
	}
	want := map[string][]byte{"user.big": big}
	for n, v := range virtfs {
		want[n] = v
	}
	for n, v := range want {
		out := filepath.Join(t.TempDir(), "v")
		if msg, err := exec.Command("debugfs", "-R", "ea_get -f "+out+" /file "+n, img).CombinedOutput(); err != nil {
			t.Fatalf("debugfs ea_get %s: %v\n%s", n, err, msg)
		}
		if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, v) {
			t.Errorf("debugfs reads %s = %q, %v; want %q", n, got, err, v)
		}
	}
	if msg, _ := exec.Command("debugfs", "-R", "ea_list /file", img).CombinedOutput(); strings.Contains(string(msg), "user.gone") {
		t.Errorf("a removed attribute is still on disk:\n%s", msg)
	}
}
