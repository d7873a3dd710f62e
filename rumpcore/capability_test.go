package rumpcore_test

import (
	"errors"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
	"github.com/rump9p/rump9p/vnodeops/tmpfs"
)

// readOnlyFS shows a tmpfs through the bare vnodeops.Vnode interface, as
// a read-only format implements it: no Writer, Linker, Symlinker, Mknoder.
type readOnlyFS struct{ vnodeops.FS }

type readOnlyVnode struct{ vnodeops.Vnode }

func (f readOnlyFS) VGet(ino uint64) (vnodeops.Vnode, error) {
	v, err := f.FS.VGet(ino)
	if err != nil {
		return nil, err
	}
	return readOnlyVnode{v}, nil
}

// TestCapabilities: for a driver without the writing capabilities the
// kernel answers EROFS to every write, even on a mount not flagged
// read-only, and reading works.
func TestCapabilities(t *testing.T) {
	inner := tmpfs.New(tmpfs.Options{Mode: 0o777})
	k, err := rumpcore.Init(rumpcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Shutdown()
	root, err := inner.VGet(inner.Root())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.(vnodeops.Writer).Mkdir("d", 0o755, 0, 0); err != nil {
		t.Fatal(err)
	}
	root.Inactive()
	root.Reclaim()
	if err := k.MountFS("/ro", "ro", readOnlyFS{inner}, false); err != nil {
		t.Fatal(err)
	}
	p := k.NewProc(vnodeops.Root)
	if _, err := p.Stat("/ro/d"); err != nil {
		t.Fatalf("stat on a read-only format: %v", err)
	}
	for what, err := range map[string]error{
		"mkdir":   p.Mkdir("/ro/x", 0o755),
		"symlink": p.Symlink("t", "/ro/l"),
		"rmdir":   p.Rmdir("/ro/d"),
		"chmod":   p.Chmod("/ro/d", 0o700),
	} {
		if !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s on a read-only format: %v, want EROFS", what, err)
		}
	}
	if _, err := p.Open("/ro/f", syscall.O_CREAT|syscall.O_WRONLY, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("create on a read-only format: %v, want EROFS", err)
	}
}
