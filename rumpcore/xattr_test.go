package rumpcore_test

import (
	"bytes"
	"errors"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

func wantErrno(t *testing.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

// TestXattrSyscalls sets, lists and removes attributes on tmpfs through
// Proc as root and as users, with the kernel clock's ctime.
func TestXattrSyscalls(t *testing.T) {
	var tick atomic.Int64
	tick.Store(1_000_000_000)
	k, err := rumpcore.Init(rumpcore.Options{Now: func() time.Time { return time.Unix(tick.Load(), 0) }})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Shutdown()
	for _, m := range []struct {
		path string
		ro   bool
	}{{"/t", false}, {"/ro", true}} {
		if err := k.Mount(m.path, rumpcore.MountSpec{Type: "tmpfs", ReadOnly: m.ro, Options: map[string]string{"mode": "1777"}}); err != nil {
			t.Fatal(err)
		}
	}
	user := k.NewProc(vnodeops.Cred{UID: 1000, GID: 1000})
	other := k.NewProc(vnodeops.Cred{UID: 2000, GID: 2000})
	root := k.NewProc(vnodeops.Root)
	for _, p := range []*rumpcore.Proc{user, other, root} {
		defer p.Exit()
	}
	fd, err := user.Open("/t/f", syscall.O_CREAT|syscall.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	user.Close(fd)
	tick.Store(2_000_000_000)

	if err := user.Setxattr("/t/f", "user.a", []byte("v1"), 0); err != nil {
		t.Fatal(err)
	}
	if a, _ := user.Stat("/t/f"); a.Ctime != 2_000_000_000*1e9 {
		t.Errorf("ctime after setxattr %d, want the kernel clock's", a.Ctime)
	}
	wantErrno(t, "create over an existing one", user.Setxattr("/t/f", "user.a", []byte("x"), vnodeops.XattrCreate), syscall.EEXIST)
	wantErrno(t, "replace of a missing one", user.Setxattr("/t/f", "user.b", []byte("x"), vnodeops.XattrReplace), syscall.ENODATA)
	wantErrno(t, "unknown flags", user.Setxattr("/t/f", "user.b", nil, 4), syscall.EINVAL)
	wantErrno(t, "a value over 64 KiB", user.Setxattr("/t/f", "user.b", make([]byte, 64<<10+1), 0), syscall.E2BIG)
	if err := user.Setxattr("/t/f", "user.max", make([]byte, 64<<10), 0); err != nil {
		t.Errorf("a 64 KiB value: %v", err)
	}
	wantErrno(t, "another user without write access", other.Setxattr("/t/f", "user.a", []byte("x"), 0), syscall.EACCES)
	wantErrno(t, "trusted as a user", user.Setxattr("/t/f", "trusted.a", []byte("x"), 0), syscall.EPERM)
	wantErrno(t, "security as a user", user.Setxattr("/t/f", "security.a", []byte("x"), 0), syscall.EPERM)
	wantErrno(t, "an unknown namespace", root.Setxattr("/t/f", "foo.a", []byte("x"), 0), syscall.EOPNOTSUPP)
	wantErrno(t, "a read-only mount", root.Setxattr("/ro", "user.a", []byte("x"), 0), syscall.EROFS)
	wantErrno(t, "a sticky directory not one's own", user.Setxattr("/t", "user.a", []byte("x"), 0), syscall.EPERM)
	for _, n := range []string{"trusted.t", "security.s"} {
		if err := root.Setxattr("/t/f", n, []byte("r"), 0); err != nil {
			t.Errorf("root sets %s: %v", n, err)
		}
	}
	names, err := user.Listxattr("/t/f")
	if err != nil || !slices.Equal(names, []string{"security.s", "user.a", "user.max"}) {
		t.Errorf("listxattr as a user: %q, %v", names, err)
	}
	if names, _ := root.Listxattr("/t/f"); len(names) != 4 {
		t.Errorf("listxattr as root: %q", names)
	}
	if err := user.Setxattr("/t/f", "user.a", []byte("v2"), vnodeops.XattrReplace); err != nil {
		t.Fatal(err)
	}
	if v, err := other.Getxattr("/t/f", "user.a"); err != nil || !bytes.Equal(v, []byte("v2")) {
		t.Errorf("getxattr = %q, %v", v, err)
	}
	tick.Store(3_000_000_000)
	if err := user.Removexattr("/t/f", "user.a"); err != nil {
		t.Fatal(err)
	}
	if a, _ := user.Stat("/t/f"); a.Ctime != 3_000_000_000*1e9 {
		t.Errorf("ctime after removexattr %d, want the kernel clock's", a.Ctime)
	}
	wantErrno(t, "removing it again", user.Removexattr("/t/f", "user.a"), syscall.ENODATA)
	if _, err := user.Getxattr("/t/f", "user.a"); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("getxattr after removal: %v", err)
	}
}

// TestXattrTmpfsSpace: tmpfs keeps at most tmpfs.XattrSpace bytes per
// inode and charges them to the size limit; freeing the file returns them.
func TestXattrTmpfsSpace(t *testing.T) {
	k, err := rumpcore.Init(rumpcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Shutdown()
	if err := k.Mount("/t", rumpcore.MountSpec{Type: "tmpfs", Options: map[string]string{"size": "64k"}}); err != nil {
		t.Fatal(err)
	}
	p := k.NewProc(vnodeops.Root)
	defer p.Exit()
	fd, err := p.Open("/t/f", syscall.O_CREAT|syscall.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p.Close(fd)
	before, _ := p.Statvfs("/t")
	if err := p.Setxattr("/t/f", "user.a", make([]byte, 10000), 0); err != nil {
		t.Fatal(err)
	}
	after, _ := p.Statvfs("/t")
	if before.Bfree-after.Bfree != 3 {
		t.Errorf("10000 bytes of attributes took %d pages, want 3", before.Bfree-after.Bfree)
	}
	wantErrno(t, "past the size limit", p.Setxattr("/t/f", "user.b", make([]byte, 60000), 0), syscall.ENOSPC)
	if err := p.Unlink("/t/f"); err != nil {
		t.Fatal(err)
	}
	if st, _ := p.Statvfs("/t"); st.Bfree != before.Bfree {
		t.Errorf("free pages %d after the file went, want %d", st.Bfree, before.Bfree)
	}
}
