package cd9660

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/tests/conformance"
)

// seedImages caches one image per variant: every case of the suite
// mounts the same seed tree, so there is no need to run xorriso for each.
var seedImages sync.Map // variant name -> path

// seedImage returns the image of the conformance seed tree made by mk,
// made once per test binary.
func seedImage(t *testing.T, name string, caps conformance.Caps, mk maker) string {
	if p, ok := seedImages.Load(name); ok {
		return p.(string)
	}
	dir, err := os.MkdirTemp("", "cd9660-seed-")
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := conformance.WriteSeedDir(src, caps); err != nil {
		t.Fatal(err)
	}
	img, _ := mk(t, src)
	// The image lives in the calling test's TempDir; keep a copy.
	keep := filepath.Join(dir, "seed.iso")
	data, err := os.ReadFile(img)
	if err == nil {
		err = os.WriteFile(keep, data, 0o444)
	}
	if err != nil {
		t.Fatal(err)
	}
	p, _ := seedImages.LoadOrStore(name, keep)
	return p.(string)
}

// TestMain removes the cached seed images.
func TestMain(m *testing.M) {
	code := m.Run()
	seedImages.Range(func(_, p any) bool {
		os.RemoveAll(filepath.Dir(p.(string)))
		return true
	})
	os.Exit(code)
}

// TestConformance runs the shared suite's read-only mode on images of
// its seed tree: xorriso's Rock Ridge (with Joliet beside it and PX
// serial numbers), Joliet only, and plain ISO 9660 names; genisoimage's
// Rock Ridge with Joliet, makefs's Rock Ridge, and a tree compressed
// by mkzftree; each mounted through the kernel as type cd9660 (and once
// as type auto).
func TestConformance(t *testing.T) {
	rr := conformance.Caps{
		Symlinks:    true,
		Ownership:   true,
		Permissions: true,
		Sticky:      true,
		Mknod:       true,
		// DirLinkCount: xorriso records a directory's link count as 1
		// in PX (as Linux's isofs reports it without Rock Ridge), and
		// the driver reports what the image says.
		StableInodes:    true,
		Ctime:           true,
		PosixNames:      true,
		NameMax:         255,
		MaxFileSize:     1<<32 - 1,
		TimeGranularity: time.Second,
	}
	// Joliet and plain ISO keep no owners, permissions or links; names
	// are case-preserved (Joliet) or mapped to lower case (plain).
	plain := conformance.Caps{
		StableInodes:    true,
		NameMax:         64,
		MaxFileSize:     1<<32 - 1,
		TimeGranularity: time.Second,
	}
	variants := []struct {
		name string
		caps conformance.Caps
		mk   maker
		typ  string
	}{
		{"rockridge", rr, xorrisoMaker("-R", "-J", "--hardlinks"), "cd9660"},
		{"rockridge-auto", rr, xorrisoMaker("-R"), "auto"},
		{"joliet", plain, xorrisoMaker("--norock", "-J"), "cd9660"},
		{"plain", plain, xorrisoMaker("--norock"), "cd9660"},
		{"genisoimage", rr, genisoimageMaker("-R", "-J"), "cd9660"},
		{"makefs", rr, makefsMaker("rockridge,label=SEED"), "cd9660"},
		{"mkzftree", rr, zisofsMaker, "cd9660"},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			conformance.Run(t, conformance.Setup{
				Name: "cd9660-" + v.name,
				Mount: func(t *testing.T, k *rumpcore.Kernel, target string, ro bool) func(*testing.T) {
					img := seedImage(t, v.name, v.caps, v.mk)
					if err := k.Mount(target, rumpcore.MountSpec{Type: v.typ, Image: img, ReadOnly: true}); err != nil {
						t.Fatalf("mount %s: %v", img, err)
					}
					return nil
				},
				Caps: v.caps,
			})
		})
	}
}
