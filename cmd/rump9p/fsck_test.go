package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rump9p/rump9p/tests/hosttools"
)

// TestFsck: rump9p fsck finds a makefs image clean, still clean after
// rump9p's image commands wrote to it, and reports (exit 1) a summary
// made wrong by hand; -y and formats without a checker are usage errors.
func TestFsck(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "d"), 0o755)
	os.WriteFile(filepath.Join(src, "d", "f"), []byte("hello"), 0o644)
	img := filepath.Join(dir, "ufs2.img")
	hosttools.Run(t, "makefs", "-t", "ffs", "-B", "le", "-s", "8m", "-o", "version=2", img, src)
	if out := ok(t, "fsck", img); !strings.Contains(out, "clean (ffs)") {
		t.Errorf("fsck of a fresh image: %q", out)
	}
	host := filepath.Join(dir, "new")
	os.WriteFile(host, make([]byte, 100000), 0o644)
	ok(t, "cp", host, img+":/d/new")
	ok(t, "mkdir", img+":/e")
	ok(t, "rm", img+":/d/f")
	if out := ok(t, "fsck", "-n", "--type", "ffs", img); !strings.Contains(out, "clean") {
		t.Errorf("fsck after writes: %q", out)
	}

	// One more free block in fs_cstotal than the cylinder groups hold
	// (makefs puts the UFS2 superblock at 8 KiB; cs_nbfree is the second
	// int64 of fs_cstotal at 1008, NetBSD sys/ufs/ffs/fs.h).
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b [8]byte
	const nbfree = 8192 + 1008 + 8
	f.ReadAt(b[:], nbfree)
	binary.LittleEndian.PutUint64(b[:], binary.LittleEndian.Uint64(b[:])+1)
	f.WriteAt(b[:], nbfree)
	f.Close()
	out, errs, code := rump9p(t, "", "fsck", img)
	if code != 1 || out == "" {
		t.Errorf("fsck of a wrong summary: status %d, findings %q, %s", code, out, errs)
	}

	if _, _, code := rump9p(t, "", "fsck", "-y", img); code != 2 {
		t.Errorf("fsck -y: status %d, want 2", code)
	}
	ext2 := filepath.Join(dir, "ext2.img")
	hosttools.Run(t, "mke2fs", "-q", "-F", ext2, "4M")
	if _, errs, code := rump9p(t, "", "fsck", ext2); code != 2 || !strings.Contains(errs, "e2fsck") {
		t.Errorf("fsck of ext2: status %d, %s", code, errs)
	}
}
