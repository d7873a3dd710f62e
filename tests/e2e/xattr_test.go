package e2e

import (
	"encoding/binary"
	"fmt"
	"github.com/rump9p/rump9p/tests/p9raw"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// raw9p speaks 9P2000.L by hand: the hugelgupf client has no xattr calls.
type raw9p struct{ *p9raw.Session }

var (
	u32 = p9raw.U32
	u64 = p9raw.U64
	s9  = p9raw.Str
)

// xattr reads an attribute (name "" lists them) of fid through a new fid,
// as Linux does: Txattrwalk, Tread, Tclunk.
func (r *raw9p) xattr(fid, newfid uint32, name string) ([]byte, syscall.Errno) {
	rt, body := r.Try(30, u32(fid), u32(newfid), s9(name)) // Txattrwalk
	if rt == 7 {
		return nil, syscall.Errno(binary.LittleEndian.Uint32(body))
	}
	size := binary.LittleEndian.Uint64(body)
	data := r.Call(116, u32(newfid), u64(0), u32(uint32(size))) // Tread
	r.Call(120, u32(newfid))                                    // Tclunk
	return data[4:], 0
}

// TestServeExt2Xattrs serves an ext2 image whose file has attributes set by
// debugfs, reads them over 9P the way Linux does, and checks that closing
// the xattr fid leaves the file's own fid working and the mount unbusy.
func TestServeExt2Xattrs(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "x.img")
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o644)
	// 256-byte inodes: small attributes live in the inode, a large one
	// goes to an attribute block.
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-I", "256", "-d", src, img, "4M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	big := strings.Repeat("v", 600)
	for _, set := range []string{"ea_set /f user.color red", "ea_set /f user.big " + big, "ea_set /f trusted.t secret"} {
		if out, err := exec.Command("debugfs", "-w", "-R", set, img).CombinedOutput(); err != nil {
			t.Fatalf("debugfs %s: %v\n%s", set, err, out)
		}
	}
	sock := filepath.Join(dir, "s")
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("listen: [\"unix:%s\"]\nmounts:\n  - {name: x, type: ext2fs, image: %q}\n", sock, img)), 0o644)
	s := start(t, "serve", "-c", cfg)

	attach := func(uid uint32) *raw9p {
		nc, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		r := &raw9p{&p9raw.Session{T: t, Nc: nc}}
		r.Version(65536)
		r.Call(104, u32(1), u32(^uint32(0)), s9(""), s9("x"), u32(uid))
		r.Call(110, u32(1), u32(2), []byte{1, 0}, s9("f"))
		r.Call(120, u32(1)) // only fid 2, the file, is held
		return r
	}
	r := attach(0)
	if v, e := r.xattr(2, 3, "user.color"); e != 0 || string(v) != "red" {
		t.Errorf("user.color = %q (%v), want red", v, e)
	}
	if v, e := r.xattr(2, 3, "user.big"); e != 0 || string(v) != big {
		t.Errorf("user.big: %d bytes (%v), want %d", len(v), e, len(big))
	}
	list, e := r.xattr(2, 3, "")
	if e != 0 || !strings.Contains(string(list), "user.color\x00") || !strings.Contains(string(list), "trusted.t\x00") {
		t.Errorf("list as root = %q (%v)", list, e)
	}
	if _, e := r.xattr(2, 3, "user.none"); e == 0 {
		t.Errorf("a missing attribute was found")
	}
	// The file's fid still works after the xattr fids (which share its
	// File) are clunked.
	r.Call(24, u32(2), u64(0x3FFF)) // Tgetattr
	r.Call(120, u32(2))

	other := attach(1000)
	if list, e := other.xattr(2, 3, ""); e != 0 || strings.Contains(string(list), "trusted.") {
		t.Errorf("list as uid 1000 = %q (%v): trusted.* must be hidden", list, e)
	}
	other.Call(120, u32(2))
	r.Nc.Close()
	other.Nc.Close()

	if code := s.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit after SIGTERM = %d:\n%s", code, s.log())
	}
	if strings.Contains(s.log(), "forced unmount") {
		t.Errorf("vnode references leaked through xattr fids (forced unmount):\n%s", s.log())
	}
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck: %v\n%s", err, out)
	}
}
