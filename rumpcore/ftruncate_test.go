package rumpcore_test

import (
	"errors"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/vnodeops"
)

// TestFtruncateHonoursOpenForWriting: POSIX ftruncate checks the
// descriptor, not the file's mode: a user who created a file with mode 0
// and holds it open for writing may change its size; a path truncate is
// refused, and so is ftruncate on a descriptor open for reading only.
func TestFtruncateHonoursOpenForWriting(t *testing.T) {
	k, _ := boot(t)
	root := k.NewProc(vnodeops.Root)
	if err := root.Chmod("/mnt", 0o777); err != nil {
		t.Fatal(err)
	}
	p := k.NewProc(vnodeops.Cred{UID: 1000, GID: 1000})
	fd, err := p.Open("/mnt/zero", syscall.O_CREAT|syscall.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Ftruncate(fd, 100); err != nil {
		t.Errorf("ftruncate of a mode-0 file open for writing: %v", err)
	}
	if st, err := p.Fstat(fd); err != nil || st.Size != 100 {
		t.Errorf("size after ftruncate: %+v %v", st, err)
	}
	if err := p.Truncate("/mnt/zero", 0); !errors.Is(err, syscall.EACCES) {
		t.Errorf("truncate by path of a mode-0 file: %v, want EACCES", err)
	}
	rfd, err := root.Open("/mnt/zero", syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Ftruncate(rfd, 0); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("ftruncate on a read-only descriptor: %v, want EINVAL", err)
	}
}
