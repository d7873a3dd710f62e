package ukfs_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rump9p/rump9p/tests/hosttools"
	"github.com/rump9p/rump9p/ukfs"
	"github.com/rump9p/rump9p/vnodeops"

	_ "github.com/rump9p/rump9p/vnodeops/cd9660"
	_ "github.com/rump9p/rump9p/vnodeops/ext2fs"
	_ "github.com/rump9p/rump9p/vnodeops/msdosfs"
)

// seed makes a host directory: hello, dir/a.txt, dir/sub/b.txt.
func seed(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for name, body := range map[string]string{
		"hello":         "hello\n",
		"dir/a.txt":     "alpha\n",
		"dir/sub/b.txt": strings.Repeat("b", 5000),
	} {
		p := filepath.Join(d, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func mkext2(t *testing.T, dir string) string {
	img := filepath.Join(t.TempDir(), "ext2.img")
	hosttools.Run(t, "mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", "-d", dir, img, "8M")
	return img
}

func mkfat(t *testing.T, dir string, bits string) string {
	img := filepath.Join(t.TempDir(), "fat.img")
	size := "16384"
	if bits == "32" {
		size = "40000"
	}
	hosttools.Run(t, "mkfs.fat", "-C", "-F", bits, img, size)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		hosttools.Run(t, "mcopy", "-s", "-i", img, filepath.Join(dir, e.Name()), "::/")
	}
	return img
}

func mkiso(t *testing.T, dir string) string {
	img := filepath.Join(t.TempDir(), "cd.iso")
	hosttools.Run(t, "xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-o", img, dir)
	return img
}

// TestFSTest runs testing/fstest on every driver's images.
func TestFSTest(t *testing.T) {
	dir := seed(t)
	for _, tc := range []struct {
		name, img string
	}{
		{"ext2", mkext2(t, dir)},
		{"fat16", mkfat(t, dir, "16")},
		{"fat32", mkfat(t, dir, "32")},
		{"iso", mkiso(t, dir)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ukfs.Open(tc.img, ukfs.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := fstest.TestFS(f, "hello", "dir/a.txt", "dir/sub/b.txt"); err != nil {
				t.Fatal(err)
			}
			b, err := fs.ReadFile(f, "dir/sub/b.txt")
			if err != nil || len(b) != 5000 {
				t.Fatalf("ReadFile: %d bytes, %v", len(b), err)
			}
		})
	}
}

func e2fsck(t *testing.T, img string) {
	t.Helper()
	hosttools.Run(t, "e2fsck", "-fn", img)
}

// TestWriteExt2 writes every kind of file through ukfs, then e2fsck and
// debugfs check the image.
func TestWriteExt2(t *testing.T) {
	img := mkext2(t, seed(t))
	f, err := ukfs.Open(img, ukfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Create("/new/file", 0o640); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Create in a missing directory: %v", err)
	}
	if err := f.MkdirAll("/new/deep", 0o750); err != nil {
		t.Fatal(err)
	}
	w, err := f.Create("/new/deep/file", 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("tail"), 100000); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("head"), 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.Symlink("deep/file", "/new/link"))
	must(f.Link("/new/deep/file", "/new/hard"))
	must(f.Mknod("/new/fifo", vnodeops.S_IFIFO|0o600, 0))
	must(f.Chown("/new/deep/file", 1000, 100))
	must(f.Lchown("/new/link", 7, 8))
	must(f.Chmod("/hello", 0o600|fs.ModeSetgid))
	when := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	must(f.Chtimes("/hello", when, when))
	must(f.Rename("/dir/a.txt", "/new/a.txt"))
	must(f.Setxattr("/new/a.txt", "user.k", []byte("v")))
	if v, err := f.Getxattr("/new/a.txt", "user.k"); err != nil || string(v) != "v" {
		t.Fatalf("Getxattr: %q %v", v, err)
	}
	if names, err := f.Listxattr("/new/a.txt"); err != nil || len(names) != 1 || names[0] != "user.k" {
		t.Fatalf("Listxattr: %q %v", names, err)
	}
	must(f.RemoveAll("/dir"))
	if got, err := f.ReadLink("new/link"); err != nil || got != "deep/file" {
		t.Fatalf("ReadLink: %q %v", got, err)
	}
	fi, err := f.Stat("hello")
	if err != nil || fi.Mode() != 0o600|fs.ModeSetgid || !fi.ModTime().Equal(when) {
		t.Fatalf("Stat hello: %v %v", fi, err)
	}
	if a := fi.Sys().(vnodeops.Attr); a.Nlink != 1 {
		t.Fatalf("Sys: %+v", a)
	}
	must(f.Close())
	e2fsck(t, img)
	if got := hosttools.Run(t, "debugfs", "-R", "cat /new/deep/file", img); !strings.HasPrefix(got, "head") || !strings.HasSuffix(got, "tail") || len(got) != 100004 {
		t.Errorf("debugfs cat: %d bytes", len(got))
	}
	st := hosttools.Run(t, "debugfs", "-R", "stat /new/deep/file", img)
	if !strings.Contains(st, "User:  1000") || !strings.Contains(st, "Links: 2") {
		t.Errorf("debugfs stat:\n%s", st)
	}
	if ls := hosttools.Run(t, "debugfs", "-R", "ls -l /", img); strings.Contains(ls, " dir") {
		t.Errorf("dir not removed:\n%s", ls)
	}
}

func TestLockAndCred(t *testing.T) {
	img := mkext2(t, seed(t))
	w, err := ukfs.Open(img, ukfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		_, err := ukfs.Open(img, ukfs.Options{ReadOnly: ro})
		if !errors.Is(err, syscall.EBUSY) || !strings.Contains(err.Error(), img) {
			t.Errorf("second open (read-only %v) of a locked image: %v", ro, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	u, err := ukfs.Open(img, ukfs.Options{Cred: vnodeops.Cred{UID: 1000, GID: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Mkdir("/mine", 0o755); !errors.Is(err, syscall.EACCES) {
		t.Errorf("mkdir in root's directory as uid 1000: %v", err)
	}
	if _, err := u.Open("../../etc/passwd"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Open with ..: %v", err)
	}
	if _, err := u.Attr("../../hello", false); err != nil {
		t.Errorf(".. stops at the root: %v", err)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}

	ro, err := ukfs.Open(img, ukfs.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.Mkdir("/x", 0o755); !errors.Is(err, syscall.EROFS) {
		t.Errorf("mkdir read-only: %v", err)
	}
	if !ro.ReadOnly() {
		t.Error("ReadOnly false")
	}
	info, err := ro.Info()
	if err != nil || info.Type != "ext2fs" || info.Statvfs.Bsize != 1024 || info.Image != img {
		t.Errorf("Info: %+v %v", info, err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ukfs.Open(filepath.Join(dir, "missing.img"), ukfs.Options{}); err == nil || !strings.Contains(err.Error(), "missing.img") {
		t.Errorf("missing image: %v", err)
	}
	junk := filepath.Join(dir, "junk.img")
	os.WriteFile(junk, bytes.Repeat([]byte{0x5a}, 1<<20), 0o644)
	if _, err := ukfs.Open(junk, ukfs.Options{}); err == nil || !strings.Contains(err.Error(), "junk.img") {
		t.Errorf("no file system: %v", err)
	}
	img := mkext2(t, seed(t))
	if _, err := ukfs.Open(img, ukfs.Options{Type: "msdosfs"}); err == nil {
		t.Error("ext2 mounted as msdosfs")
	}
}
