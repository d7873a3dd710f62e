package conformance

import (
	"log/slog"
	"strconv"
	"testing"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
	"github.com/rump9p/rump9p/vnodeops/tmpfs"
)

// tmpfsSize is the size limit of each tmpfs the suite mounts: big enough
// for the 1 MiB and 1,000-entry cases, small enough to fill fast.
const tmpfsSize = 8 << 20

var tmpfsCaps = Caps{
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
	PosixNames:   true,
	MaxFileSize:  tmpfs.MaxFileSize,
	NameMax:      tmpfs.NameMax,
}

func mountTmpfs(t *testing.T, k *rumpcore.Kernel, target string, ro bool) func(*testing.T) {
	t.Helper()
	opts := map[string]string{"size": strconv.Itoa(tmpfsSize)}
	if !ro {
		if err := k.Mount(target, rumpcore.MountSpec{Type: "tmpfs", Options: opts}); err != nil {
			t.Fatalf("mount tmpfs at %s: %v", target, err)
		}
		return nil
	}
	// A read-only tmpfs must hold the seed tree: make it through the
	// driver, then hand it to the kernel read-only.
	drv, ok := vnodeops.Lookup("tmpfs")
	if !ok {
		t.Fatalf("tmpfs driver not registered")
	}
	fs, err := drv.Mount(vnodeops.MountArgs{Name: target, Options: opts, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("tmpfs driver mount: %v", err)
	}
	if err := SeedFS(fs, tmpfsCaps); err != nil {
		t.Fatalf("seeding tmpfs: %v", err)
	}
	if err := k.MountFS(target, "tmpfs-ro", fs, true); err != nil {
		t.Fatalf("mount seeded tmpfs read-only at %s: %v", target, err)
	}
	return nil
}

func TestTmpfs(t *testing.T) {
	Run(t, Setup{
		Name:      "tmpfs",
		Mount:     mountTmpfs,
		Caps:      tmpfsCaps,
		FillLimit: tmpfsSize + 1<<20,
	})
}

// TestTmpfsAsReadOnlyFormat runs the suite as for a read-only format (ISO
// 9660): only the cases that need no writing run, each on a seeded
// read-only tmpfs. It checks the suite's read-only paths.
func TestTmpfsAsReadOnlyFormat(t *testing.T) {
	caps := tmpfsCaps
	caps.Writable = false
	Run(t, Setup{
		Name: "tmpfs-readonly",
		Mount: func(t *testing.T, k *rumpcore.Kernel, target string, ro bool) func(*testing.T) {
			if !ro {
				t.Fatalf("suite asked a read-only format for a read-write mount of %s", target)
			}
			return mountTmpfs(t, k, target, true)
		},
		Caps: caps,
	})
}
