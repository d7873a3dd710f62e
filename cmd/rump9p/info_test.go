package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rump9p/rump9p/tests/hosttools"
)

// TestInfoLayout: rump9p info prints the driver's layout summary: for
// ext2 the fields dumpe2fs -h prints agree with it, for FFS the format
// and byte order, for FAT (no summary) the generic counts alone.
func TestInfoLayout(t *testing.T) {
	dir := t.TempDir()
	ext2 := filepath.Join(dir, "ext2.img")
	hosttools.Run(t, "mke2fs", "-q", "-F", "-t", "ext2", "-L", "mylabel", ext2, "8M")
	out := ok(t, "info", ext2)
	dump := hosttools.Run(t, "dumpe2fs", "-h", ext2)
	for _, key := range []string{"Filesystem volume name", "Filesystem UUID", "Block count", "Inode count", "Free blocks", "Inodes per group", "Inode size"} {
		want := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + `:\s+(.*)$`).FindStringSubmatch(dump)
		got := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(key) + `:\s+(.*)$`).FindStringSubmatch(out)
		if want == nil || got == nil || strings.TrimSpace(got[1]) != strings.TrimSpace(want[1]) {
			t.Errorf("%s: rump9p %q, dumpe2fs %q", key, got, want)
		}
	}

	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	ufs := filepath.Join(dir, "ufs.img")
	hosttools.Run(t, "makefs", "-t", "ffs", "-B", "be", "-s", "8m", "-o", "version=1", ufs, src)
	if out := ok(t, "info", ufs); !regexp.MustCompile(`(?m)^ffs layout:\n  Format:\s+UFS1, big endian$`).MatchString(out) {
		t.Errorf("ffs info:\n%s", out)
	}
}
