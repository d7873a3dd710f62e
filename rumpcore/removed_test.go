package rumpcore_test

import (
	"errors"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/vnodeops"
)

// TestRemovedDirectory: a directory removed while a process still has it
// as its working directory (or open) answers the same on every driver,
// because the kernel answers: no new entries (ENOENT), no lookups
// (ENOENT), and no entries at all in a listing, not even "." and "..".
func TestRemovedDirectory(t *testing.T) {
	for _, how := range []string{"rmdir", "rename over"} {
		t.Run(how, func(t *testing.T) {
			k, fs := boot(t)
			p := k.NewProc(vnodeops.Root)
			for _, d := range []string{"/mnt/d", "/mnt/other"} {
				if err := p.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			fd, err := p.Open("/mnt/d", syscall.O_RDONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Chdir("/mnt/d"); err != nil {
				t.Fatal(err)
			}
			if how == "rmdir" {
				err = p.Rmdir("/mnt/d")
			} else {
				err = p.Rename("/mnt/other", "/mnt/d")
			}
			if err != nil {
				t.Fatal(err)
			}
			fs.sloppy = true // the kernel, not the driver, must answer now
			if _, err := p.Open("new", syscall.O_CREAT|syscall.O_WRONLY, 0o644); !errors.Is(err, syscall.ENOENT) {
				t.Errorf("create in a removed directory: %v, want ENOENT", err)
			}
			if err := p.Mkdir("sub", 0o755); !errors.Is(err, syscall.ENOENT) {
				t.Errorf("mkdir in a removed directory: %v, want ENOENT", err)
			}
			if err := p.Symlink("x", "link"); !errors.Is(err, syscall.ENOENT) {
				t.Errorf("symlink in a removed directory: %v, want ENOENT", err)
			}
			if _, err := p.Lstat("anything"); !errors.Is(err, syscall.ENOENT) {
				t.Errorf("lookup in a removed directory: %v, want ENOENT", err)
			}
			ents, err := p.Getdents(fd, 100)
			if err != nil || len(ents) != 0 {
				t.Errorf("listing of a removed directory: %v, %v; want nothing", ents, err)
			}
			p.Close(fd)
		})
	}
}
