// Package fuse runs the conformance suite (tests/conformance) through a
// FUSE mount served by p2k: each case's kernel mounts a hostFS over the
// FUSE mount of a second, inner kernel, so that every system call of the
// suite reaches the driver by way of the host's VFS, /dev/fuse and p2k.
// The inner image is checked by its format's checker after each case, as
// the suite does for a direct mount.
package fuse

import (
	"fmt"
	"github.com/rump9p/rump9p/tests/hosttools"
	"log/slog"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rump9p/rump9p/p2k"
	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/tests/conformance"
	"github.com/rump9p/rump9p/vnodeops"
	_ "github.com/rump9p/rump9p/vnodeops/ext2fs"
	_ "github.com/rump9p/rump9p/vnodeops/msdosfs"
	"github.com/rump9p/rump9p/vnodeops/tmpfs"
)

// needFUSE fails the test where FUSE cannot be mounted or a tool is
// missing.
func needFUSE(t *testing.T, tools ...string) {
	t.Helper()
	hosttools.NeedFUSE(t)
	hosttools.NeedAll(t, tools...)
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// innerMount mounts a fresh file system at /fs of the inner kernel k and
// returns the checker of its image, or nil.
type innerMount func(t *testing.T, k *rumpcore.Kernel, ro bool) func(*testing.T)

// viaFUSE turns an inner mount into a Setup.Mount: the inner kernel's
// /fs is served by p2k at a temporary directory, and the suite's kernel
// mounts that directory at target through hostFS.
func viaFUSE(inner innerMount) func(t *testing.T, k *rumpcore.Kernel, target string, ro bool) func(*testing.T) {
	return func(t *testing.T, k *rumpcore.Kernel, target string, ro bool) func(*testing.T) {
		t.Helper()
		// The inner kernel keeps the suite's clock: file times agree, and
		// the suite moves time instead of sleeping.
		k2, err := rumpcore.Init(rumpcore.Options{Now: k.Now})
		if err != nil {
			t.Fatal(err)
		}
		check := inner(t, k2, ro)
		top := k2.Root()
		root, err := top.Lookup(vnodeops.Root, "fs")
		top.Release()
		if err != nil {
			k2.Shutdown()
			t.Fatal(err)
		}
		dir := t.TempDir()
		srv, err := p2k.Mount(root, dir, p2k.Options{})
		if err != nil {
			k2.Shutdown()
			t.Fatalf("p2k.Mount: %v", err)
		}
		end := func(t *testing.T) {
			// The outer kernel has closed every descriptor on the mount,
			// but the host may take a moment to let go of the last file
			// (seen once in three full runs as EBUSY): retry for a while
			// before calling it a leak.
			err := srv.Unmount()
			for i := 0; err != nil && i < 50; i++ {
				time.Sleep(100 * time.Millisecond)
				err = srv.Unmount()
			}
			if err != nil {
				t.Errorf("FUSE unmount: %v", err)
				srv.UnmountLazy()
				select {
				case <-srv.Done():
				case <-time.After(10 * time.Second):
					t.Errorf("FUSE mount %s still served", dir)
				}
			}
			if err := k2.Shutdown(); err != nil {
				t.Errorf("inner kernel shutdown: %v", err)
			}
			if check != nil {
				check(t)
			}
		}
		hfs, err := newHostFS(dir, ro)
		if err != nil {
			end(t)
			t.Fatal(err)
		}
		if err := k.MountFS(target, "fuse:"+target, hfs, ro); err != nil {
			hfs.Unmount(true)
			end(t)
			t.Fatal(err)
		}
		return end
	}
}

var tmpfsCaps = conformance.Caps{
	Writable: true, HardLinks: true, Symlinks: true, Ownership: true,
	Permissions: true, Sticky: true, Sparse: true, Mknod: true,
	DirLinkCount: true, StableInodes: true, Ctime: true, PosixNames: true,
	MaxFileSize: tmpfs.MaxFileSize, NameMax: tmpfs.NameMax,
}

const tmpfsSize = 8 << 20

func TestTmpfsThroughFUSE(t *testing.T) {
	needFUSE(t)
	t.Parallel() // the suites mostly wait out time stamps
	opts := map[string]string{"size": fmt.Sprint(tmpfsSize)}
	conformance.Run(t, conformance.Setup{
		Name: "tmpfs-fuse",
		Mount: viaFUSE(func(t *testing.T, k *rumpcore.Kernel, ro bool) func(*testing.T) {
			if !ro {
				if err := k.Mount("/fs", rumpcore.MountSpec{Type: "tmpfs", Options: opts}); err != nil {
					t.Fatal(err)
				}
				return nil
			}
			drv, _ := vnodeops.Lookup("tmpfs")
			fs, err := drv.Mount(vnodeops.MountArgs{Name: "seeded", Options: opts, Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			if err := conformance.SeedFS(fs, tmpfsCaps); err != nil {
				t.Fatal(err)
			}
			if err := k.MountFS("/fs", "seeded", fs, true); err != nil {
				t.Fatal(err)
			}
			return nil
		}),
		Caps:      tmpfsCaps,
		FillLimit: tmpfsSize + 1<<20,
	})
}

// ext2Caps is what ext2 with 1 KiB blocks (revision 1) expresses.
var ext2Caps = conformance.Caps{
	Writable: true, HardLinks: true, Symlinks: true, Ownership: true,
	Permissions: true, Sticky: true, Sparse: true, Mknod: true,
	DirLinkCount: true, StableInodes: true, Ctime: true,
	NameMax:    255,
	SymlinkMax: 1023,
	// The ext2fs driver's limit for 1 KiB blocks with large_file: the
	// blocks 12 direct, 256, 256^2 and 256^3 indirect pointers map.
	MaxFileSize: (12 + 256 + 256*256 + 256*256*256) * 1024,
}

const ext2Size = 16 << 20

// TestExt2ThroughFUSE runs the suite on fresh ext2 images (mke2fs at test
// time; -d with the seed tree for read-only cases), and e2fsck -fn after
// every case, once p2k has unmounted and the inner kernel shut down.
func TestExt2ThroughFUSE(t *testing.T) {
	needFUSE(t, "mke2fs", "e2fsck")
	t.Parallel() // the suites mostly wait out time stamps
	conformance.Run(t, conformance.Setup{
		Name: "ext2fs-fuse",
		Mount: viaFUSE(func(t *testing.T, k *rumpcore.Kernel, ro bool) func(*testing.T) {
			img := filepath.Join(t.TempDir(), "ext2.img")
			args := []string{"-q", "-F", "-t", "ext2", "-b", "1024"}
			if ro {
				src := t.TempDir()
				if err := conformance.WriteSeedDir(src, ext2Caps); err != nil {
					t.Fatal(err)
				}
				args = append(args, "-d", src)
			}
			run(t, "mke2fs", append(args, img, "16M")...)
			if err := k.Mount("/fs", rumpcore.MountSpec{Type: "ext2fs", Image: img, ReadOnly: ro}); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) { run(t, "e2fsck", "-fn", img) }
		}),
		Caps:      ext2Caps,
		FillLimit: ext2Size + 1<<20,
	})
}

var fatCaps = conformance.Caps{
	Writable:         true,
	DirLinkCount:     true,
	StableInodes:     true,
	MaxFileSize:      1<<32 - 1,
	NameMax:          255,
	TimeGranularity:  2 * time.Second,
	AtimeGranularity: 24 * time.Hour,
}

const fatSizeKiB = 16 << 10

// TestFATThroughFUSE runs the suite on fresh FAT16 images (mkfs.fat at
// test time), and fsck.fat -n after every case.
func TestFATThroughFUSE(t *testing.T) {
	needFUSE(t, "mkfs.fat", "fsck.fat", "mcopy")
	t.Parallel() // the suites mostly wait out time stamps
	conformance.Run(t, conformance.Setup{
		Name: "msdosfs-fuse",
		Mount: viaFUSE(func(t *testing.T, k *rumpcore.Kernel, ro bool) func(*testing.T) {
			img := filepath.Join(t.TempDir(), "fat.img")
			run(t, "mkfs.fat", "-F", "16", "-C", img, fmt.Sprint(fatSizeKiB))
			if ro {
				src := t.TempDir()
				if err := conformance.WriteSeedDir(src, fatCaps); err != nil {
					t.Fatal(err)
				}
				run(t, "mcopy", "-s", "-i", img, filepath.Join(src, conformance.SeedFile), filepath.Join(src, conformance.SeedDir), "::")
			}
			if err := k.Mount("/fs", rumpcore.MountSpec{Type: "msdosfs", Image: img, ReadOnly: ro}); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) { run(t, "fsck.fat", "-n", img) }
		}),
		Caps:      fatCaps,
		FillLimit: fatSizeKiB<<10 + 64<<10,
	})
}
