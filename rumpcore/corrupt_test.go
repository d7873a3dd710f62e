package rumpcore_test

import (
	"errors"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/vnodeops"
)

// inoOf returns the inode number of path.
func inoOf(t *testing.T, p interface {
	Stat(string) (vnodeops.Attr, error)
}, path string) uint64 {
	t.Helper()
	a, err := p.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return a.Ino
}

// TestCorruptDirectoryLinks: metadata that makes a directory reachable
// twice (an entry naming another directory, a cycle of "..") or an inode
// with no links gives EIO, never a second name or an endless walk.
func TestCorruptDirectoryLinks(t *testing.T) {
	k, fs := boot(t)
	p := k.NewProc(vnodeops.Root)
	for _, d := range []string{"/mnt/a", "/mnt/a/sub", "/mnt/b", "/mnt/c"} {
		if err := p.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := p.Open("/mnt/c/f", syscall.O_CREAT|syscall.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p.Close(fd)
	a, b, sub := inoOf(t, p, "/mnt/a"), inoOf(t, p, "/mnt/b"), inoOf(t, p, "/mnt/a/sub")

	// The lie changes only entries that exist: make them, then lie that
	// a/alias names b (a directory with two names), a/self names a, and
	// b's ".." names a/sub.
	for _, d := range []string{"/mnt/a/alias", "/mnt/a/self"} {
		if err := p.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fs.lie = func(dir uint64, name string, ino uint64) uint64 {
		switch {
		case dir == a && name == "alias":
			return b
		case dir == a && name == "self":
			return a
		case dir == b && name == "..":
			return sub
		}
		return ino
	}
	for _, path := range []string{"/mnt/a/self", "/mnt/a/self/self", "/mnt/a/alias/x"} {
		if _, err := p.Stat(path); !errors.Is(err, syscall.EIO) {
			t.Errorf("stat %s: %v, want EIO", path, err)
		}
	}
	// b is reached from the root, whose inode its ".." does not name.
	if _, err := p.Stat("/mnt/b"); !errors.Is(err, syscall.EIO) {
		t.Errorf("stat /mnt/b with a lying \"..\": %v, want EIO", err)
	}
	// A healthy part of the tree is unaffected.
	if _, err := p.Stat("/mnt/c/f"); err != nil {
		t.Errorf("stat /mnt/c/f: %v", err)
	}
}

func TestReachableInodeWithoutLinks(t *testing.T) {
	k, fs := boot(t)
	p := k.NewProc(vnodeops.Root)
	fd, err := p.Open("/mnt/f", syscall.O_CREAT|syscall.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	ino := inoOf(t, p, "/mnt/f")
	p.Close(fd)
	fs.zeroLinks = ino
	// The vnode left the cache when its last reference went; looking it
	// up again loads and checks it.
	if _, err := p.Stat("/mnt/f"); !errors.Is(err, syscall.EIO) {
		t.Errorf("stat of an inode with link count 0: %v, want EIO", err)
	}
}

// TestRenameAncestorCycle: rename's walk up ".." ends with EIO on a cycle
// instead of walking it a million times.
func TestRenameAncestorCycle(t *testing.T) {
	k, fs := boot(t)
	p := k.NewProc(vnodeops.Root)
	for _, d := range []string{"/mnt/x", "/mnt/x/y", "/mnt/z"} {
		if err := p.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	x, y := inoOf(t, p, "/mnt/x"), inoOf(t, p, "/mnt/x/y")
	// Once both are verified, x's ".." turns to name y: x -> y -> x.
	fs.lie = func(dir uint64, name string, ino uint64) uint64 {
		if dir == x && name == ".." {
			return y
		}
		return ino
	}
	if err := p.Rename("/mnt/z", "/mnt/x/y/z"); !errors.Is(err, syscall.EIO) {
		t.Errorf("rename into a \"..\" cycle: %v, want EIO", err)
	}
}
