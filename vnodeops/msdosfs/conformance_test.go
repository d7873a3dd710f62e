package msdosfs_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/tests/conformance"
)

// TestConformance runs the shared suite on fresh FAT12, FAT16 and FAT32
// images, checking each with fsck.fat -n after the case.
func TestConformance(t *testing.T) {
	for _, bits := range fatTypes {
		t.Run(fmt.Sprintf("FAT%d", bits), func(t *testing.T) {
			t.Parallel() // the cases mostly sleep to see times advance
			conformance.Run(t, conformance.Setup{
				Name: fmt.Sprintf("msdosfs-FAT%d", bits),
				Mount: func(t *testing.T, k *rumpcore.Kernel, target string, ro bool) func(t *testing.T) {
					img := mkfs(t, bits)
					if ro {
						src := t.TempDir()
						if err := conformance.WriteSeedDir(src, fatCaps); err != nil {
							t.Fatal(err)
						}
						populate(t, img, src)
					}
					if err := k.Mount(target, rumpcore.MountSpec{Type: "msdosfs", Image: img, ReadOnly: ro}); err != nil {
						t.Fatalf("mount %s: %v", img, err)
					}
					return func(t *testing.T) {
						fsck(t, img)
						crossCheck(t, img)
					}
				},
				Caps:      fatCaps,
				FillLimit: int64(fatSizeKiB[bits]+64) << 10,
			})
		})
	}
}

// fatCaps is what FAT can express: no links, no owners, only the write
// bits of the permissions, case-insensitive names, 2 s mtime resolution
// (atime: a date), no change time, sizes below 4 GiB.
// Inode numbers are stable for the life of a mount (not across remounts):
// see the package comment.
var fatCaps = conformance.Caps{
	Writable:         true,
	DirLinkCount:     true,
	StableInodes:     true,
	MaxFileSize:      1<<32 - 1,
	NameMax:          255,
	TimeGranularity:  2 * time.Second,
	AtimeGranularity: 24 * time.Hour,
}
