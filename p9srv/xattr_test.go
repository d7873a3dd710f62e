package p9srv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/tests/p9raw"
	"github.com/rump9p/rump9p/vnodeops"
	"github.com/rump9p/rump9p/vnodeops/tmpfs"
)

// xattrFS wraps tmpfs: every vnode has the attribute user.a = "v", and
// reclaims are counted per inode.
type xattrFS struct {
	vnodeops.FS
	mu       sync.Mutex
	reclaims map[uint64]int
}

type xattrVnode struct {
	vnodeops.ReadWriteVnode
	fs  *xattrFS
	ino uint64
}

func (x *xattrFS) VGet(ino uint64) (vnodeops.Vnode, error) {
	v, err := x.FS.VGet(ino)
	if err != nil {
		return nil, err
	}
	return &xattrVnode{ReadWriteVnode: v.(vnodeops.ReadWriteVnode), fs: x, ino: ino}, nil
}

func (x *xattrFS) reclaimed(ino uint64) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.reclaims[ino]
}

func (v *xattrVnode) Reclaim() error {
	v.fs.mu.Lock()
	v.fs.reclaims[v.ino]++
	v.fs.mu.Unlock()
	return v.ReadWriteVnode.Reclaim()
}

func (v *xattrVnode) Getxattr(name string) ([]byte, error) {
	if name == "user.a" {
		return []byte("v"), nil
	}
	return nil, syscall.ENODATA
}

func (v *xattrVnode) Listxattr() ([]string, error) { return []string{"user.a"}, nil }

// TestXattrFidSharesFile: once a Txattrwalk succeeds the library shares
// the File between the file's fid and the xattr fid and closes it for
// each; the vnode must survive the xattr fid's clunk and go with the last.
func TestXattrFidSharesFile(t *testing.T) {
	k := newKernel(t)
	xfs := &xattrFS{FS: tmpfs.New(tmpfs.Options{Mode: 0o777}), reclaims: map[uint64]int{}}
	if err := k.MountFS("/xa", "xa", xfs, false); err != nil {
		t.Fatal(err)
	}
	p := k.NewProc(vnodeops.Root)
	fd, err := p.Open("/xa/f", syscall.O_CREAT|syscall.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p.Close(fd)
	a, err := p.Stat("/xa/f")
	if err != nil {
		t.Fatal(err)
	}
	p.Exit()
	before := xfs.reclaimed(a.Ino)

	_, addr := startServer(t, k, Options{}, false)
	s := newRawSession(t, addr, "xa")
	s.Call(msgTwalk, le32(1), le32(2), []byte{1, 0}, str9("f"))
	const msgTxattrwalk, msgTread = 30, 116
	for _, name := range []string{"user.a", ""} { // get, then list
		size := s.Call(msgTxattrwalk, le32(2), le32(3), str9(name))
		data := s.Call(msgTread, le32(3), le64(0), le32(uint32(size[0])))
		if name == "user.a" && string(data[4:]) != "v" {
			t.Errorf("user.a = %q", data[4:])
		}
		if name == "" && string(data[4:]) != "user.a\x00" {
			t.Errorf("list = %q", data[4:])
		}
		s.Call(msgTclunk, le32(3))
		if n := xfs.reclaimed(a.Ino); n != before {
			t.Fatalf("clunking the xattr fid of %q reclaimed the file its fid still holds", name)
		}
	}
	rt, body := s.Try(24, le32(2), le64(0x3FFF)) // Tgetattr
	if rt == msgRerror {
		t.Fatalf("Tgetattr after the xattr clunks: Rlerror %d", body[0])
	}
	s.Call(msgTclunk, le32(2))
	// The missing attribute is an error, and it shares nothing.
	if rt, _ := s.Try(msgTxattrwalk, le32(1), le32(4), str9("user.none")); rt != msgRerror {
		t.Errorf("Txattrwalk of a missing attribute succeeded")
	}
}

// setxattr sets an attribute of fid's file as Linux v9fs does: a clone
// (tmp) becomes an xattr-write fid by Txattrcreate announcing size, the
// chunks arrive by Twrite, and Tclunk commits; a size of 0 with
// XATTR_REPLACE removes. It returns the errno of Tclunk (0: success).
func (s *rawSession) setxattr(fid, tmp uint32, name string, size uint64, flags uint32, chunks ...[]byte) syscall.Errno {
	s.T.Helper()
	s.Call(msgTwalk, le32(fid), le32(tmp), []byte{0, 0})
	s.Call(p9raw.Txattrcreat, le32(tmp), str9(name), le64(size), le32(flags))
	off := uint64(0)
	for _, c := range chunks {
		s.Call(p9raw.Twrite, le32(tmp), le64(off), le32(uint32(len(c))), c)
		off += uint64(len(c))
	}
	if rt, body := s.Try(msgTclunk, le32(tmp)); rt == msgRerror {
		return p9raw.Errno(body)
	}
	return 0
}

// getxattr reads an attribute through Txattrwalk and Tread; ok is false
// when the walk fails.
func (s *rawSession) getxattr(fid, tmp uint32, name string) (val []byte, ok bool) {
	s.T.Helper()
	rt, body := s.Try(p9raw.Txattrwalk, le32(fid), le32(tmp), str9(name))
	if rt == msgRerror {
		return nil, false
	}
	size := binary.LittleEndian.Uint64(body)
	data := s.Call(p9raw.Tread, le32(tmp), le64(0), le32(uint32(size)))
	s.Call(msgTclunk, le32(tmp))
	return data[4:], true
}

// TestXattrWrite: setxattr and removexattr over raw 9P as v9fs sends
// them, with their flags, limits and permission errors.
func TestXattrWrite(t *testing.T) {
	k := newKernel(t)
	p := k.NewProc(vnodeops.Cred{UID: 1000, GID: 1000})
	defer p.Exit()
	fd, err := p.Open("/tmp1/f", syscall.O_CREAT|syscall.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p.Close(fd)
	kget := func(name string) ([]byte, error) { return p.Getxattr("/tmp1/f", name) }

	_, addr := startServer(t, k, Options{}, false)
	s := newRawSession(t, addr, "tmp1") // root
	s.Call(msgTwalk, le32(1), le32(2), []byte{1, 0}, str9("f"))
	const create, replace = 1, 2
	if e := s.setxattr(2, 3, "user.a", 5, 0, []byte("hello")); e != 0 {
		t.Fatalf("setxattr: %v", e)
	}
	if v, err := kget("user.a"); err != nil || string(v) != "hello" {
		t.Fatalf("kernel sees %q, %v", v, err)
	}
	if v, ok := s.getxattr(2, 4, "user.a"); !ok || string(v) != "hello" {
		t.Fatalf("Txattrwalk reads %q, %v", v, ok)
	}
	for _, c := range []struct {
		what  string
		name  string
		flags uint32
		want  syscall.Errno
	}{
		{"XATTR_CREATE over an existing one", "user.a", create, syscall.EEXIST},
		{"XATTR_REPLACE of a missing one", "user.b", replace, syscall.ENODATA},
		{"unknown flags", "user.b", 8, syscall.EINVAL},
		{"an unknown namespace", "os2.b", 0, syscall.EOPNOTSUPP},
	} {
		if e := s.setxattr(2, 3, c.name, 1, c.flags, []byte("x")); e != c.want {
			t.Errorf("%s: %v, want %v", c.what, e, c.want)
		}
	}
	// 64 KiB in four writes.
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	if e := s.setxattr(2, 3, "user.big", uint64(len(big)), 0, big[:16384], big[16384:32768], big[32768:49152], big[49152:]); e != 0 {
		t.Fatalf("64 KiB value: %v", e)
	}
	if v, err := kget("user.big"); err != nil || !bytes.Equal(v, big) {
		t.Fatalf("64 KiB value reads back %d bytes, %v", len(v), err)
	}
	// An announced size over 64 KiB: the value is refused whole at Tclunk
	// (E2BIG), and writes past 64 KiB + 1 fail.
	s.Call(msgTwalk, le32(2), le32(3), []byte{0, 0})
	s.Call(p9raw.Txattrcreat, le32(3), str9("user.huge"), le64(1<<20), le32(0))
	for off := 0; off < 64<<10; off += 16384 {
		s.Call(p9raw.Twrite, le32(3), le64(uint64(off)), le32(16384), make([]byte, 16384))
	}
	s.Call(p9raw.Twrite, le32(3), le64(64<<10), le32(1), []byte{1})
	if rt, body := s.Try(p9raw.Twrite, le32(3), le64(64<<10+1), le32(1), []byte{1}); rt != msgRerror || p9raw.Errno(body) != syscall.EINVAL {
		t.Errorf("a write past 64 KiB + 1: reply %d %v, want EINVAL", rt, p9raw.Errno(body))
	}
	if rt, body := s.Try(msgTclunk, le32(3)); rt != msgRerror || p9raw.Errno(body) != syscall.E2BIG {
		t.Errorf("Tclunk of a value over 64 KiB: reply %d %v, want E2BIG", rt, p9raw.Errno(body))
	}
	// A value shorter than announced is not committed.
	if e := s.setxattr(2, 3, "user.short", 10, 0, []byte("12345")); e != syscall.EINVAL {
		t.Errorf("short value: %v, want EINVAL", e)
	}
	for _, n := range []string{"user.huge", "user.short"} {
		if _, err := kget(n); !errors.Is(err, syscall.ENODATA) {
			t.Errorf("%s was stored: %v", n, err)
		}
	}
	// removexattr: size 0 with XATTR_REPLACE.
	if e := s.setxattr(2, 3, "user.a", 0, replace); e != 0 {
		t.Fatalf("removexattr: %v", e)
	}
	if _, err := kget("user.a"); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("after removexattr: %v", err)
	}
	if e := s.setxattr(2, 3, "user.a", 0, replace); e != syscall.ENODATA {
		t.Errorf("removing a missing one: %v, want ENODATA", e)
	}
	// An empty value without XATTR_REPLACE is set, not removed.
	if e := s.setxattr(2, 3, "user.empty", 0, 0); e != 0 {
		t.Fatalf("empty value: %v", e)
	}
	if v, err := kget("user.empty"); err != nil || len(v) != 0 {
		t.Errorf("empty value reads %q, %v", v, err)
	}

	// Another user: no write access to a 0644 file, no trusted.*.
	ps, _ := p9raw.Dial(t, addr.Network(), addr.String(), testMsize)
	o := &rawSession{ps}
	o.Attach(1, "tmp1", 2000)
	o.Call(msgTwalk, le32(1), le32(2), []byte{1, 0}, str9("f"))
	if e := o.setxattr(2, 3, "user.x", 1, 0, []byte("x")); e != syscall.EACCES {
		t.Errorf("user.* without write access: %v, want EACCES", e)
	}
	if e := o.setxattr(2, 3, "trusted.x", 1, 0, []byte("x")); e != syscall.EPERM {
		t.Errorf("trusted.* as a user: %v, want EPERM", e)
	}
	if e := o.setxattr(2, 3, "user.big", 0, replace); e != syscall.EACCES {
		t.Errorf("removexattr without write access: %v, want EACCES", e)
	}
	// A read-only mount.
	r := newRawSession(t, addr, "ro")
	if e := r.setxattr(1, 2, "user.x", 1, 0, []byte("x")); e != syscall.EROFS {
		t.Errorf("setxattr on a read-only mount: %v, want EROFS", e)
	}
}

// TestXattrReadOnlyServer: a read-only server refuses attribute writes.
func TestXattrReadOnlyServer(t *testing.T) {
	k := newKernel(t)
	_, addr := startServer(t, k, Options{ReadOnly: true}, false)
	s := newRawSession(t, addr, "tmp1")
	if e := s.setxattr(1, 2, "user.x", 1, 0, []byte("x")); e != syscall.EROFS {
		t.Errorf("setxattr: %v, want EROFS", e)
	}
	if e := s.setxattr(1, 2, "user.x", 0, 2); e != syscall.EROFS {
		t.Errorf("removexattr: %v, want EROFS", e)
	}
}

// TestXattrWithLibraryClient: the hugelgupf client cannot send xattr
// requests (its File answers ENOSYS), so a raw session sets attributes
// while a library client works on the same file: its data is untouched,
// its ctime moves with the kernel clock, and the fids of both stay
// usable.
func TestXattrWithLibraryClient(t *testing.T) {
	var tick atomic.Int64
	tick.Store(1_000_000_000)
	k, err := rumpcore.Init(rumpcore.Options{Now: func() time.Time { return time.Unix(tick.Load(), 0) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Shutdown() })
	if err := k.Mount("/tmp1", rumpcore.MountSpec{Type: "tmpfs", Options: map[string]string{"mode": "1777"}}); err != nil {
		t.Fatal(err)
	}
	_, addr := startServer(t, k, Options{}, false)
	cl, _ := dial(t, addr, 1000, testMsize)
	d := attach(t, cl, "tmp1")
	f := createFile(t, d, "f", []byte("library data"))
	if err := f.SetXattr("user.a", []byte("v"), 0); !errors.Is(err, linux.ENOSYS) {
		t.Logf("the library client now sends setxattr (%v): test it directly", err)
	}
	tick.Store(2_000_000_000)

	s := newRawSession(t, addr, "tmp1")
	s.Call(msgTwalk, le32(1), le32(2), []byte{1, 0}, str9("f"))
	if e := s.setxattr(2, 3, "user.a", 3, 0, []byte("abc")); e != 0 {
		t.Fatalf("setxattr: %v", e)
	}
	_, _, a, err := walk(t, d, "f").GetAttr(p9.AttrMaskAll)
	if err != nil {
		t.Fatal(err)
	}
	if a.CTimeSeconds != 2_000_000_000 {
		t.Errorf("ctime seen by the library client: %d, want the kernel clock's", a.CTimeSeconds)
	}
	if got := readAll(t, d, "f"); string(got) != "library data" {
		t.Errorf("data after setxattr: %q", got)
	}
	if n, err := f.WriteAt([]byte("LIB"), 0); err != nil || n != 3 {
		t.Fatalf("write through the library's open fid: %d, %v", n, err)
	}
	if v, ok := s.getxattr(2, 4, "user.a"); !ok || string(v) != "abc" {
		t.Errorf("attribute after the library's write: %q, %v", v, ok)
	}
}
