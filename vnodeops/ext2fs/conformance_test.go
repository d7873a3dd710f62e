package ext2fs

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/tests/conformance"
)

// TestConformance runs the shared suite on fresh ext2 images made by
// mke2fs (1 KiB and 4 KiB blocks, revision 0 and 1), with e2fsck -fn
// after every case; read-only cases get an image populated with -d.
func TestConformance(t *testing.T) {
	variants := []struct {
		name      string
		args      []string
		rev0      bool
		blockSize int
	}{
		{"1k-rev1", []string{"-t", "ext2", "-b", "1024"}, false, 1024},
		{"4k-rev1", []string{"-t", "ext2", "-b", "4096"}, false, 4096},
		{"1k-rev0", []string{"-t", "ext2", "-b", "1024", "-r", "0"}, true, 1024},
		{"4k-rev0", []string{"-t", "ext2", "-b", "4096", "-r", "0"}, true, 4096},
	}
	const size = 16 << 20
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			// The revision 0 runs spend most of their time waiting out the
			// one-second time granularity; run the variants side by side.
			t.Parallel()
			caps := conformance.Caps{
				Writable:     true,
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
				NameMax:      255,
				// A target lives in one block (Linux: ENAMETOOLONG past it).
				SymlinkMax: v.blockSize - 1,
			}
			if v.rev0 {
				// 128-byte inodes: whole seconds; no large_file.
				caps.TimeGranularity = time.Second
				caps.MaxFileSize = 1<<31 - 1
			} else {
				caps.MaxFileSize = probeMaxSize(t, v.args)
			}
			conformance.Run(t, conformance.Setup{
				Name: "ext2fs-" + v.name,
				Mount: func(t *testing.T, k *rumpcore.Kernel, target string, ro bool) func(t *testing.T) {
					img := filepath.Join(t.TempDir(), "img")
					src := ""
					if ro {
						src = t.TempDir()
						if err := conformance.WriteSeedDir(src, caps); err != nil {
							t.Fatal(err)
						}
					}
					mkfs(t, img, "16M", src, v.args...)
					if err := k.Mount(target, rumpcore.MountSpec{Type: "ext2fs", Image: img, ReadOnly: ro}); err != nil {
						t.Fatalf("mount %s: %v", img, err)
					}
					return func(t *testing.T) { fsck(t, img) }
				},
				Caps:      caps,
				FillLimit: size + 1<<20,
			})
		})
	}
}

// probeMaxSize returns the driver's file size limit for images made with
// args.
func probeMaxSize(t *testing.T, args []string) int64 {
	img := filepath.Join(t.TempDir(), "probe")
	mkfs(t, img, "1M", "", args...)
	fs, err := mountDirect(t, img, true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Unmount(false)
	return fs.(*fsys).maxFileSize
}

// TestConformanceReadOnly runs the suite's read-only mode on ext3 and ext4
// images as mke2fs makes them by default (ext4: extents, 64bit, flex_bg,
// metadata_csum, huge_file, dir_nlink, extra_isize), which
// this driver reads but does not write, populated with -d.
func TestConformanceReadOnly(t *testing.T) {
	for _, typ := range []string{"ext3", "ext4"} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			caps := conformance.Caps{
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
				NameMax:      255,
				SymlinkMax:   4095,
			}
			conformance.Run(t, conformance.Setup{
				Name: "ext2fs-" + typ + "-ro",
				Mount: func(t *testing.T, k *rumpcore.Kernel, target string, ro bool) func(t *testing.T) {
					img := filepath.Join(t.TempDir(), "img")
					src := t.TempDir()
					if err := conformance.WriteSeedDir(src, caps); err != nil {
						t.Fatal(err)
					}
					mkfs(t, img, "16M", src, "-t", typ)
					if err := k.Mount(target, rumpcore.MountSpec{Type: "ext2fs", Image: img, ReadOnly: true}); err != nil {
						t.Fatalf("mount %s: %v", img, err)
					}
					return func(t *testing.T) { fsck(t, img) }
				},
				Caps: caps,
			})
		})
	}
}
