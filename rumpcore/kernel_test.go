package rumpcore_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
	"github.com/rump9p/rump9p/vnodeops/tmpfs"
)

// countingFS wraps a driver FS and counts the vnodes the kernel holds, so
// that the tests can see the cache's reference counting from below.
type countingFS struct {
	vnodeops.FS
	mu       sync.Mutex
	live     map[uint64]int // VGet calls minus Reclaims per inode
	inactive atomic.Int64
	dup      atomic.Int64 // VGet of an inode already live
	// lie, if set, may replace the inode a directory lookup answers, to
	// play a corrupt image.
	lie func(dir uint64, name string, ino uint64) uint64
	// zeroLinks, if not 0, is an inode whose Getattr says Nlink 0.
	zeroLinks uint64
	// sloppy plays a driver that keeps answering for a removed directory:
	// its Readdir always starts with an extra entry.
	sloppy bool
	// liveAtUnmount is liveCount when Unmount was called, or -1.
	liveAtUnmount int
}

func (c *countingFS) Unmount(force bool) error {
	c.liveAtUnmount = c.liveCount()
	return c.FS.Unmount(force)
}

func (v *countingVnode) Readdir(cookie uint64, fn func(vnodeops.Dirent) bool) error {
	if v.fs.sloppy && cookie == 0 && !fn(vnodeops.Dirent{Name: "stale", Ino: v.ino, Next: 0}) {
		return nil
	}
	return v.ReadWriteVnode.Readdir(cookie, fn)
}

func (v *countingVnode) Getattr() (vnodeops.Attr, error) {
	a, err := v.ReadWriteVnode.Getattr()
	if v.ino == v.fs.zeroLinks {
		a.Nlink = 0
	}
	return a, err
}

func (v *countingVnode) Lookup(name string) (uint64, error) {
	ino, err := v.ReadWriteVnode.Lookup(name)
	if err == nil && v.fs.lie != nil {
		ino = v.fs.lie(v.ino, name, ino)
	}
	return ino, err
}

type countingVnode struct {
	vnodeops.ReadWriteVnode
	fs  *countingFS
	ino uint64
}

func (c *countingFS) VGet(ino uint64) (vnodeops.Vnode, error) {
	v, err := c.FS.VGet(ino)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.live[ino] > 0 {
		c.dup.Add(1)
	}
	c.live[ino]++
	c.mu.Unlock()
	return &countingVnode{ReadWriteVnode: v.(vnodeops.ReadWriteVnode), fs: c, ino: ino}, nil
}

func (v *countingVnode) Inactive() error {
	v.fs.inactive.Add(1)
	return v.ReadWriteVnode.Inactive()
}

func (v *countingVnode) Reclaim() error {
	v.fs.mu.Lock()
	v.fs.live[v.ino]--
	v.fs.mu.Unlock()
	return v.ReadWriteVnode.Reclaim()
}

// The kernel hands vnodes of the wrapper to the driver's directory
// operations; unwrap them for tmpfs.
func unwrap(v vnodeops.Vnode) vnodeops.Vnode {
	if c, ok := v.(*countingVnode); ok {
		return c.ReadWriteVnode
	}
	return v
}

func (v *countingVnode) Link(vp vnodeops.Vnode, name string) error {
	return v.ReadWriteVnode.Link(unwrap(vp), name)
}
func (v *countingVnode) Remove(name string, vp vnodeops.Vnode) error {
	return v.ReadWriteVnode.Remove(name, unwrap(vp))
}
func (v *countingVnode) Rmdir(name string, vp vnodeops.Vnode) error {
	return v.ReadWriteVnode.Rmdir(name, unwrap(vp))
}
func (v *countingVnode) Rename(from string, fvp, toDir vnodeops.Vnode, to string, tvp vnodeops.Vnode) error {
	if tvp != nil {
		tvp = unwrap(tvp)
	}
	return v.ReadWriteVnode.Rename(from, unwrap(fvp), unwrap(toDir), to, tvp)
}

func (c *countingFS) liveCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.live {
		n += l
	}
	return n
}

func boot(t *testing.T) (*rumpcore.Kernel, *countingFS) {
	t.Helper()
	k, err := rumpcore.Init(rumpcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fs := &countingFS{FS: tmpfs.New(tmpfs.Options{Mode: 0o755}), live: map[uint64]int{}, liveAtUnmount: -1}
	if err := k.MountFS("/mnt", "counting", fs, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Shutdown() })
	return k, fs
}

func TestVnodeCacheOneVnodePerInode(t *testing.T) {
	k, fs := boot(t)
	p := k.NewProc(vnodeops.Root)
	if err := p.Mkdir("/mnt/d", 0o755); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			pp := k.NewProc(vnodeops.Root)
			defer pp.Exit()
			for i := 0; i < 200; i++ {
				name := fmt.Sprintf("/mnt/d/f%d", i%10)
				fd, err := pp.Open(name, syscall.O_CREAT|syscall.O_RDWR, 0o644)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := pp.Pwrite(fd, []byte("x"), int64(g)); err != nil {
					t.Error(err)
				}
				if _, err := pp.Stat("/mnt/d"); err != nil {
					t.Error(err)
				}
				pp.Close(fd)
			}
		}(g)
	}
	wg.Wait()
	if d := fs.dup.Load(); d != 0 {
		t.Errorf("driver was asked for a live inode %d times", d)
	}
	p.Exit()
	// Only the mount's root stays referenced.
	if n := fs.liveCount(); n != 1 {
		t.Errorf("live vnodes after every release = %d, want 1 (the root)", n)
	}
}

func TestUnlinkedFileFreedOnLastClose(t *testing.T) {
	k, fs := boot(t)
	p := k.NewProc(vnodeops.Root)
	defer p.Exit()
	fd, err := p.Open("/mnt/f", syscall.O_CREAT|syscall.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	if _, err := p.Write(fd, buf); err != nil {
		t.Fatal(err)
	}
	before, _ := p.Statvfs("/mnt")
	if err := p.Unlink("/mnt/f"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Stat("/mnt/f"); err != syscall.ENOENT {
		t.Fatalf("stat after unlink: %v, want ENOENT", err)
	}
	a, err := p.Fstat(fd)
	if err != nil || a.Nlink != 0 || a.Size != 1<<20 {
		t.Fatalf("fstat of unlinked open file: %+v %v", a, err)
	}
	mid, _ := p.Statvfs("/mnt")
	if mid.Bfree != before.Bfree {
		t.Errorf("storage freed while the file was still open: %d -> %d", before.Bfree, mid.Bfree)
	}
	if n, err := p.Pread(fd, buf[:10], 100); n != 10 || err != nil {
		t.Fatalf("read of unlinked open file: %d %v", n, err)
	}
	p.Close(fd)
	after, _ := p.Statvfs("/mnt")
	if after.Bfree <= mid.Bfree {
		t.Errorf("storage not freed on last close: %d -> %d", mid.Bfree, after.Bfree)
	}
	if fs.inactive.Load() == 0 {
		t.Error("Inactive never called")
	}
}

// TestForcedUnmountReclaims: a forced unmount runs Inactive and Reclaim on
// the vnodes still in use before the driver's Unmount (which then finds
// none live), and the holders' later releases call the driver no more.
func TestForcedUnmountReclaims(t *testing.T) {
	k, fs := boot(t)
	p := k.NewProc(vnodeops.Root)
	defer p.Exit()
	var fds []int
	for _, name := range []string{"/mnt/kept", "/mnt/gone"} {
		fd, err := p.Open(name, syscall.O_CREAT|syscall.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, fd)
	}
	if err := p.Unlink("/mnt/gone"); err != nil {
		t.Fatal(err)
	}
	if err := p.Unmount("/mnt", false); err != syscall.EBUSY {
		t.Fatalf("unmount with open files: %v, want EBUSY", err)
	}
	if err := p.Unmount("/mnt", true); err != nil {
		t.Fatalf("forced unmount: %v", err)
	}
	if fs.liveAtUnmount != 0 {
		t.Errorf("driver's Unmount found %d vnodes not reclaimed", fs.liveAtUnmount)
	}
	if n := fs.inactive.Load(); n < 3 { // root, kept, gone
		t.Errorf("Inactive ran %d times, want at least 3", n)
	}
	inactive := fs.inactive.Load()
	for _, fd := range fds {
		if _, err := p.Write(fd, []byte("x")); err != syscall.EIO {
			t.Errorf("write after forced unmount: %v, want EIO", err)
		}
		p.Close(fd)
	}
	if fs.inactive.Load() != inactive || fs.liveCount() != 0 {
		t.Errorf("driver called after the forced unmount: inactive %d -> %d, live %d", inactive, fs.inactive.Load(), fs.liveCount())
	}
}

func TestMountCrossingAndBusy(t *testing.T) {
	k, _ := boot(t)
	p := k.NewProc(vnodeops.Root)
	defer p.Exit()
	if err := p.Mkdir("/mnt/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := p.Mount("/mnt/sub/inner", rumpcore.MountSpec{Type: "tmpfs"}); err != nil {
		t.Fatal(err)
	}
	outer, err := p.Stat("/mnt/sub")
	if err != nil {
		t.Fatal(err)
	}
	up, err := p.Stat("/mnt/sub/inner/..")
	if err != nil {
		t.Fatal(err)
	}
	if up.Ino != outer.Ino {
		t.Errorf(".. of the inner mount's root: ino %d, want %d", up.Ino, outer.Ino)
	}
	if err := p.Chdir("/mnt/sub/inner"); err != nil {
		t.Fatal(err)
	}
	if err := p.Unmount("/mnt/sub/inner", false); err != syscall.EBUSY {
		t.Fatalf("unmount of the cwd's mount: %v, want EBUSY", err)
	}
	if err := p.Chdir("/"); err != nil {
		t.Fatal(err)
	}
	fd, err := p.Open("/mnt/sub/inner/f", syscall.O_CREAT|syscall.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Rename("/mnt/sub/inner/f", "/mnt/f"); err != syscall.EXDEV {
		t.Errorf("rename across mounts: %v, want EXDEV", err)
	}
	if err := p.Unmount("/mnt/sub/inner", false); err != syscall.EBUSY {
		t.Fatalf("unmount with an open file: %v, want EBUSY", err)
	}
	if err := p.Rmdir("/mnt/sub/inner"); err != syscall.EBUSY {
		t.Errorf("rmdir of a mount point: %v, want EBUSY", err)
	}
	if err := p.Unmount("/mnt/sub/inner", true); err != nil {
		t.Fatalf("forced unmount: %v", err)
	}
	if _, err := p.Write(fd, []byte("x")); err != syscall.EIO {
		t.Errorf("write after forced unmount: %v, want EIO", err)
	}
	p.Close(fd)
	if _, err := p.Stat("/mnt/sub/inner/f"); err != syscall.ENOENT {
		t.Errorf("file visible after unmount: %v", err)
	}
	if err := p.Unmount("/mnt/sub", false); err != syscall.EINVAL {
		t.Errorf("unmount of a plain directory: %v, want EINVAL", err)
	}
}

func TestSymlinkLoopAndLongNames(t *testing.T) {
	k, _ := boot(t)
	p := k.NewProc(vnodeops.Root)
	defer p.Exit()
	if err := p.Symlink("b", "/mnt/a"); err != nil {
		t.Fatal(err)
	}
	if err := p.Symlink("a", "/mnt/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Stat("/mnt/a"); err != syscall.ELOOP {
		t.Errorf("stat of a link loop: %v, want ELOOP", err)
	}
	long := make([]byte, 256)
	for i := range long {
		long[i] = 'x'
	}
	if err := p.Mkdir("/mnt/"+string(long), 0o755); err != syscall.ENAMETOOLONG {
		t.Errorf("mkdir of a 256-byte name: %v, want ENAMETOOLONG", err)
	}
	if err := p.Mkdir("/mnt/"+string(long[:255]), 0o755); err != nil {
		t.Errorf("mkdir of a 255-byte name: %v", err)
	}
	// A chain of 40 links resolves; 41 do not.
	p.Mkdir("/mnt/c", 0o755)
	p.Symlink("/mnt/c", "/mnt/l0")
	for i := 1; i <= 40; i++ {
		p.Symlink(fmt.Sprintf("/mnt/l%d", i-1), fmt.Sprintf("/mnt/l%d", i))
	}
	if _, err := p.Stat("/mnt/l39"); err != nil {
		t.Errorf("40 links: %v", err)
	}
	if _, err := p.Stat("/mnt/l40"); err != syscall.ELOOP {
		t.Errorf("41 links: %v, want ELOOP", err)
	}
}

func TestShutdownUnmountsInReverse(t *testing.T) {
	k, err := rumpcore.Init(rumpcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"/a", "/a/b", "/c"} {
		if err := k.Mount(m, rumpcore.MountSpec{Type: "tmpfs"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(k.Mounts()); n != 4 {
		t.Fatalf("mounts = %d, want 4", n)
	}
	p := k.NewProc(vnodeops.Root)
	fd, err := p.Open("/a/b/f", syscall.O_CREAT|syscall.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Shutdown(); err != nil {
		t.Fatalf("shutdown with an open file: %v", err)
	}
	if n := len(k.Mounts()); n != 0 {
		t.Errorf("mounts after shutdown = %d", n)
	}
	if _, err := p.Write(fd, []byte("x")); err != syscall.EIO {
		t.Errorf("write after shutdown: %v, want EIO", err)
	}
	p.Exit()
}

func TestBadArguments(t *testing.T) {
	k, _ := boot(t)
	p := k.NewProc(vnodeops.Root)
	defer p.Exit()
	cases := []struct {
		name string
		err  error
		want syscall.Errno
	}{
		{"empty path", p.Mkdir("", 0o755), syscall.ENOENT},
		{"NUL in path", p.Mkdir("/mnt/a\x00b", 0o755), syscall.EINVAL},
		{"unknown open flag", func() error { _, err := p.Open("/mnt/x", 1<<30, 0); return err }(), syscall.EINVAL},
		{"bad fd", p.Close(99), syscall.EBADF},
		{"negative pread", func() error {
			fd, _ := p.Open("/mnt/n", syscall.O_CREAT|syscall.O_RDWR, 0o644)
			_, err := p.Pread(fd, make([]byte, 1), -1)
			return err
		}(), syscall.EINVAL},
		{"negative truncate", p.Truncate("/mnt/n", -1), syscall.EINVAL},
		{"trailing slash on a file", func() error { _, err := p.Stat("/mnt/n/"); return err }(), syscall.ENOTDIR},
		{"rmdir of .", p.Rmdir("/mnt/."), syscall.EINVAL},
		{"non-root mount", k.NewProc(vnodeops.Cred{UID: 5}).Mount("/x", rumpcore.MountSpec{Type: "tmpfs"}), syscall.EPERM},
		{"unknown type", func() error {
			err := k.Mount("/y", rumpcore.MountSpec{Type: "nosuchfs"})
			if err == nil {
				return nil
			}
			var e syscall.Errno
			if ok := asErrno(err, &e); ok {
				return e
			}
			return err
		}(), syscall.ENODEV},
	}
	for _, c := range cases {
		if c.err != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
}

func asErrno(err error, e *syscall.Errno) bool { return errors.As(err, e) }

// TestDescribe: a driver without a layout summary gives none, and an
// unknown mount is ENOENT.
func TestDescribe(t *testing.T) {
	k, _ := boot(t)
	var id uint32
	for _, m := range k.Mounts() {
		if m.Path == "/mnt" {
			id = m.ID
		}
	}
	if fields, err := k.Describe(id); fields != nil || err != nil {
		t.Errorf("tmpfs: %v, %v; want nothing", fields, err)
	}
	if _, err := k.Describe(id + 100); err != syscall.ENOENT {
		t.Errorf("no such mount: %v, want ENOENT", err)
	}
}
