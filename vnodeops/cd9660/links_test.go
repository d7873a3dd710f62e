package cd9660

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/vnodeops"
)

// hardLinkTree writes a file with three names in three directories, a
// second file with two names, and a single-named file; it returns the
// names of the three-named file.
func hardLinkTree(t *testing.T) (src string, names []string) {
	t.Helper()
	src = t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"one", "two", "three"} {
		must(os.Mkdir(filepath.Join(src, d), 0o755))
	}
	names = []string{"/one/file", "/two/link", "/three/other name"}
	must(os.WriteFile(filepath.Join(src, names[0]), []byte("linked content\n"), 0o640))
	for _, n := range names[1:] {
		must(os.Link(filepath.Join(src, names[0]), filepath.Join(src, n)))
	}
	must(os.WriteFile(filepath.Join(src, "one/pair"), []byte("pair"), 0o644))
	must(os.Link(filepath.Join(src, "one/pair"), filepath.Join(src, "pair2")))
	must(os.WriteFile(filepath.Join(src, "single"), []byte("linked content\n"), 0o640))
	return src, names
}

// TestHardLinks: with xorriso's --hardlinks, PX carries serial numbers
// and every name of a hard-linked file has one inode number (through
// the driver, whichever name is met first, and through the kernel's
// vnode cache) and PX's link count. Without serial numbers each name
// keeps its own number.
func TestHardLinks(t *testing.T) {
	src, names := hardLinkTree(t)
	img := mkiso(t, src, "-R", "-J", "--hardlinks")

	// The driver, with Readdir first (walk) and with Lookup of the
	// last name first.
	fs, lb := mountFile(t, img, nil)
	got := walk(t, fs)
	want := got[names[0]]
	for _, n := range names {
		f := got[n]
		if f.ino != want.ino || f.attr.Ino != want.ino || f.attr.Nlink != 3 || string(f.data) != "linked content\n" {
			t.Errorf("%s: ino %d (attr %d), nlink %d, data %q; want ino %d, nlink 3", n, f.ino, f.attr.Ino, f.attr.Nlink, f.data, want.ino)
		}
	}
	if p, p2 := got["/one/pair"], got["/pair2"]; p.ino != p2.ino || p.ino == want.ino || p.attr.Nlink != 2 {
		t.Errorf("pair: inos %d, %d (file %d), nlink %d", p.ino, p2.ino, want.ino, p.attr.Nlink)
	}
	if s := got["/single"]; s.ino == want.ino || s.attr.Nlink != 1 {
		t.Errorf("single: ino %d (file %d), nlink %d", s.ino, want.ino, s.attr.Nlink)
	}
	if l := lb.lines(); len(l) > 0 {
		t.Errorf("log lines on a good image: %q", l)
	}

	fs2, _ := mountFile(t, img, nil)
	first, err := lookupPath(fs2, names[2])
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names[:2] {
		if ino, err := lookupPath(fs2, n); err != nil || ino != first {
			t.Errorf("Lookup(%s) = %d, %v; want %d as %s", n, ino, err, first, names[2])
		}
	}
	if first == want.ino {
		t.Fatalf("both mounts met %s first: the VGet check below proves nothing", names[0])
	}
	// VGet of every name's own record gives the file with the shared
	// number: the first mount's number is the record of names[0].
	for _, addr := range []uint64{want.ino, first} {
		v, err := fs2.VGet(addr)
		if err != nil {
			t.Fatalf("VGet(%d): %v", addr, err)
		}
		a, _ := v.Getattr()
		if a.Ino != first || a.Nlink != 3 {
			t.Errorf("VGet(%d): ino %d, nlink %d; want %d, 3", addr, a.Ino, a.Nlink, first)
		}
		if d := readAll(t, v, int64(a.Size)); string(d) != "linked content\n" {
			t.Errorf("VGet(%d) reads %q", addr, d)
		}
	}

	// Through the kernel: stat of every name, and reading each.
	p := kernelMount(t, img, "cd9660")
	var ino uint64
	for i, n := range names {
		a, err := p.Stat("/mnt" + n)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			ino = a.Ino
		}
		if a.Ino != ino || a.Nlink != 3 || a.Mode != vnodeops.S_IFREG|0o640 {
			t.Errorf("stat %s: ino %d, nlink %d, mode %#o; want ino %d, nlink 3", n, a.Ino, a.Nlink, a.Mode, ino)
		}
		fd, err := p.Open("/mnt"+n, syscall.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		m, err := p.Pread(fd, buf, 0)
		if err != nil || string(buf[:m]) != "linked content\n" {
			t.Errorf("read %s: %q, %v", n, buf[:m], err)
		}
		p.Close(fd)
	}

	// Without --hardlinks there are no serial numbers: one number per
	// name, PX's link count still 3.
	plain := walk(t, func() *fsys { fs, _ := mountFile(t, mkiso(t, src, "-R"), nil); return fs }())
	if a, b := plain[names[0]], plain[names[1]]; a.ino == b.ino || a.attr.Nlink != 3 {
		t.Errorf("without serial numbers: inos %d, %d, nlink %d", a.ino, b.ino, a.attr.Nlink)
	}
}

// TestHardLinkSerialMismatch: records that share a PX serial number but
// not their data are not taken for one file.
func TestHardLinkSerialMismatch(t *testing.T) {
	fs := &fsys{}
	info := &suInfo{hasPX: true, hasSerial: true, serial: 7, nlink: 2, mode: vnodeops.S_IFREG | 0o644}
	a := &dirRec{addr: 1000, extent: 30, size: 5}
	b := &dirRec{addr: 2000, extent: 30, size: 5}
	c := &dirRec{addr: 3000, extent: 31, size: 5}
	if got := fs.linkIno(a, info); got != 1000 {
		t.Errorf("first: %d", got)
	}
	if got := fs.linkIno(b, info); got != 1000 {
		t.Errorf("alias: %d", got)
	}
	if got := fs.linkIno(c, info); got != 3000 {
		t.Errorf("other data, same serial: %d", got)
	}
	dir := &suInfo{hasPX: true, hasSerial: true, serial: 8, nlink: 2, mode: vnodeops.S_IFDIR | 0o755}
	fs.linkIno(&dirRec{addr: 4000, flags: flagDir}, dir)
	if got := fs.linkIno(&dirRec{addr: 5000, flags: flagDir}, dir); got != 5000 {
		t.Errorf("directory aliased: %d", got)
	}
}
