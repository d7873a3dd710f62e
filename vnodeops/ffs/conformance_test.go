package ffs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/tests/conformance"
)

// ffsCaps are the capabilities of FFS as this driver implements it.
func ffsCaps(writable bool, maxSize int64) conformance.Caps {
	return conformance.Caps{
		Writable:     writable,
		HardLinks:    true,
		Symlinks:     true,
		Ownership:    true,
		Permissions:  true,
		Sticky:       true,
		Sparse:       true,
		Mknod:        true,
		DirLinkCount: true,
		StableInodes: true,
		Ctime:        true,
		PosixNames:   true,
		NameMax:      maxNameLen,
		SymlinkMax:   symlinkMax,
		MaxFileSize:  maxSize,
	}
}

// TestConformance runs the shared suite on fresh makefs images: read-only
// (the seed tree) on every variant, read-write on four (both versions,
// both byte orders, both block sizes), with checkImage after every
// writing case and grub-fstest reading the seed file back.
func TestConformance(t *testing.T) {
	const size = 16 << 20
	for i, v := range variants {
		for _, rw := range []bool{false, true} {
			// Read-write on ufs1-le-16k, ufs1-be-32k, ufs2-le-32k and
			// ufs2-be-16k: both versions, byte orders and block sizes.
			if rw && i != 0 && i != 3 && i != 5 && i != 6 {
				continue
			}
			name := v.name + map[bool]string{false: "-ro", true: "-rw"}[rw]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				sb := (&superblock{bsize: int64(v.bsize), bshift: uint(log2(v.bsize))})
				sb.nindir = int64(v.bsize / map[int]int{1: 4, 2: 8}[v.version])
				caps := ffsCaps(rw, sb.maxFileSize())
				conformance.Run(t, conformance.Setup{
					Name: "ffs-" + name,
					Mount: func(t *testing.T, k *rumpcore.Kernel, target string, ro bool) func(*testing.T) {
						src := t.TempDir()
						if ro {
							if err := conformance.WriteSeedDir(src, caps); err != nil {
								t.Fatal(err)
							}
						}
						img := filepath.Join(t.TempDir(), "img")
						makefs(t, img, src, v, "16m", "-f", "3000")
						typ := "ffs"
						if i == 0 {
							typ = "auto"
						}
						if err := k.Mount(target, rumpcore.MountSpec{Type: typ, Image: img, ReadOnly: ro}); err != nil {
							t.Fatalf("mount %s: %v", img, err)
						}
						return func(t *testing.T) {
							mustCheck(t, img)
							if ro && grubReads(v, int64(len(conformance.SeedData()))) {
								want, _ := os.ReadFile(filepath.Join(src, conformance.SeedFile))
								if got := grubCat(t, img, "/"+conformance.SeedFile, 0, 0); string(got) != string(want) {
									t.Errorf("grub-fstest reads %d bytes of the seed file, want %d", len(got), len(want))
								}
							}
						}
					},
					Caps:      caps,
					FillLimit: size + 1<<20,
				})
			})
		}
	}
}

func log2(n int) int {
	k := 0
	for n > 1 {
		n >>= 1
		k++
	}
	return k
}
