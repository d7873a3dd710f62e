package p9srv

import (
	"sync"
	"syscall"
	"testing"

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
