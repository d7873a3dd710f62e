package msdosfs_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rump9p/rump9p/rumpcore"
)

// TestEightBitShortNames: a short name with bytes of 0x80 and above
// (mtools stores "ünïcødé.txt" as a short name in its code page) decodes
// to more than 12 bytes of UTF-8; every name Readdir lists must still be
// found by Lookup.
func TestEightBitShortNames(t *testing.T) {
	img := mkfs(t, 16)
	src := t.TempDir()
	for _, n := range []string{"ünïcødé.txt", "ÄÖÜ.TXT", "plain.txt"} {
		if err := os.WriteFile(filepath.Join(src, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	populate(t, img, src)
	k, p := boot(t, img, rumpcore.MountSpec{ReadOnly: true})
	defer shutdown(t, k)
	n := 0
	for _, e := range listDir(t, p, "/mnt") {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		n++
		if _, err := p.Lstat("/mnt/" + e.Name); err != nil {
			t.Errorf("listed %q (%x), but lookup: %v", e.Name, e.Name, err)
		}
	}
	if n != 3 {
		t.Errorf("%d entries listed, want 3", n)
	}
}
