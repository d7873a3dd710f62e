package ext2fs

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

// TestLargeFile writes past 4 GiB (large_file, the triple indirect range
// with 4 KiB blocks), reads back, truncates, and checks with e2fsck.
func TestLargeFile(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, img, "32M", "", "-t", "ext2", "-b", "4096")
	k, p := boot(t, img, false, nil)
	fd, err := p.Open("/mnt/huge", syscall.O_CREAT|syscall.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	offs := []int64{0, 3<<30 + 5, 5 << 30, 1<<40 + 12345}
	for _, off := range offs {
		if n, err := p.Pwrite(fd, []byte("mark"), off); err != nil || n != 4 {
			t.Fatalf("pwrite at %d: %d %v", off, n, err)
		}
	}
	for _, off := range offs {
		got := make([]byte, 6)
		n, err := p.Pread(fd, got, off-1+boolInt(off == 0))
		if err != nil || n == 0 {
			t.Fatalf("pread at %d: %d %v", off, n, err)
		}
		if !bytes.Contains(got, []byte("mark")) {
			t.Fatalf("at %d: %q", off, got)
		}
	}
	a, _ := p.Fstat(fd)
	if a.Size != uint64(offs[3]+4) || a.Blocks > 200 {
		t.Fatalf("size %d blocks %d", a.Size, a.Blocks)
	}
	if err := p.Ftruncate(fd, 5<<30+2); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	p.Pread(fd, got, 5<<30)
	if string(got[:2]) != "ma" {
		t.Fatalf("after truncate: %q", got)
	}
	p.Close(fd)
	k.Shutdown()
	fsck(t, img)
	out := debugfs(t, img, false, "stats")
	if !strings.Contains(out, "large_file") {
		t.Fatalf("large_file feature missing")
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// TestXattrRelease removes files whose xattr block is shared and
// unshared: the block's reference count drops and it is freed last.
func TestXattrRelease(t *testing.T) {
	src := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		os.WriteFile(filepath.Join(src, n), []byte(n), 0o644)
	}
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, img, "8M", src, "-t", "ext2", "-b", "1024", "-I", "128")
	for _, n := range []string{"a", "b", "c"} {
		debugfs(t, img, true, "ea_set /"+n+" user.big "+strings.Repeat("v", 300))
	}
	if out := debugfs(t, img, false, "stat /a"); !strings.Contains(out, "File ACL: ") || strings.Contains(out, "File ACL: 0 ") {
		t.Fatalf("no xattr block:\n%.400s", out)
	}
	k, p := boot(t, img, false, nil)
	for _, n := range []string{"a", "b", "c"} {
		if err := p.Unlink("/mnt/" + n); err != nil {
			t.Fatal(err)
		}
	}
	k.Shutdown()
	fsck(t, img)
}

// TestOrphanAtShutdown: a file unlinked while open and still open at
// shutdown is freed by the forced unmount, leaving e2fsck clean.
func TestOrphanAtShutdown(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, img, "8M", "", "-t", "ext2", "-b", "1024")
	k, p := boot(t, img, false, nil)
	fd, err := p.Open("/mnt/o", syscall.O_CREAT|syscall.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p.Write(fd, pattern(40000, 3))
	if err := p.Unlink("/mnt/o"); err != nil {
		t.Fatal(err)
	}
	if err := p.Mkdir("/mnt/d", 0o755); err != nil {
		t.Fatal(err)
	}
	k.Shutdown() // fd still open
	fsck(t, img)
}

// TestProbe: auto mounts an ext2 image; garbage is not ext2.
func TestProbe(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, img, "8M", "", "-t", "ext2")
	k, err := rumpcore.Init(rumpcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Shutdown()
	if err := k.Mount("/mnt", rumpcore.MountSpec{Type: "auto", Image: img, ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	if ms := k.Mounts(); ms[len(ms)-1].Type != "ext2fs" {
		t.Fatalf("auto mounted as %q", ms[len(ms)-1].Type)
	}
	junk := bytes.Repeat([]byte{0x53, 0xef}, 4096)
	if Probe(bytes.NewReader(junk), int64(len(junk))) {
		t.Fatalf("probe accepted junk")
	}
	if Probe(bytes.NewReader(junk[:100]), 100) {
		t.Fatalf("probe accepted a short device")
	}
	p := k.NewProc(vnodeops.Root)
	if _, err := p.Lstat("/mnt/lost+found"); err != nil {
		t.Fatal(err)
	}
}
