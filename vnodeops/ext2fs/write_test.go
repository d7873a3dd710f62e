package ext2fs

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

// mirror applies each operation to the image through the kernel and to a
// host directory, so that the two trees can be compared afterwards.
type mirror struct {
	t    *testing.T
	k    *rumpcore.Kernel
	p    *rumpcore.Proc
	host string
}

func (m *mirror) g(rel string) string { return "/mnt/" + rel }
func (m *mirror) h(rel string) string { return filepath.Join(m.host, rel) }

func (m *mirror) ok(err error, what string, args ...any) {
	m.t.Helper()
	if err != nil {
		m.t.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}

func (m *mirror) mkdir(rel string, perm uint32) {
	m.t.Helper()
	m.ok(m.p.Mkdir(m.g(rel), perm), "mkdir %s", rel)
	m.ok(os.Mkdir(m.h(rel), os.FileMode(perm)), "host mkdir %s", rel)
	m.ok(os.Chmod(m.h(rel), modeBits(perm)), "host chmod")
}

func modeBits(perm uint32) os.FileMode {
	m := os.FileMode(perm & 0o777)
	if perm&vnodeops.S_ISUID != 0 {
		m |= os.ModeSetuid
	}
	if perm&vnodeops.S_ISGID != 0 {
		m |= os.ModeSetgid
	}
	if perm&vnodeops.S_ISVTX != 0 {
		m |= os.ModeSticky
	}
	return m
}

// pwrite writes data at off, creating the file if needed.
func (m *mirror) pwrite(rel string, off int64, data []byte) {
	m.t.Helper()
	fd, err := m.p.Open(m.g(rel), syscall.O_CREAT|syscall.O_WRONLY, 0o644)
	m.ok(err, "open %s", rel)
	n, err := m.p.Pwrite(fd, data, off)
	if err != nil || n != len(data) {
		m.t.Fatalf("pwrite %s at %d: %d, %v", rel, off, n, err)
	}
	m.ok(m.p.Close(fd), "close")
	f, err := os.OpenFile(m.h(rel), os.O_CREATE|os.O_WRONLY, 0o644)
	m.ok(err, "host open")
	_, err = f.WriteAt(data, off)
	m.ok(err, "host write")
	m.ok(f.Close(), "host close")
}

func (m *mirror) truncate(rel string, size int64) {
	m.t.Helper()
	m.ok(m.p.Truncate(m.g(rel), size), "truncate %s %d", rel, size)
	m.ok(os.Truncate(m.h(rel), size), "host truncate")
}

func (m *mirror) symlink(target, rel string) {
	m.t.Helper()
	m.ok(m.p.Symlink(target, m.g(rel)), "symlink %s", rel)
	m.ok(os.Symlink(target, m.h(rel)), "host symlink")
}

func (m *mirror) link(from, to string) {
	m.t.Helper()
	m.ok(m.p.Link(m.g(from), m.g(to)), "link %s %s", from, to)
	m.ok(os.Link(m.h(from), m.h(to)), "host link")
}

func (m *mirror) rename(from, to string) {
	m.t.Helper()
	m.ok(m.p.Rename(m.g(from), m.g(to)), "rename %s %s", from, to)
	m.ok(syscall.Rename(m.h(from), m.h(to)), "host rename")
}

func (m *mirror) unlink(rel string) {
	m.t.Helper()
	m.ok(m.p.Unlink(m.g(rel)), "unlink %s", rel)
	m.ok(os.Remove(m.h(rel)), "host unlink")
}

func (m *mirror) rmdir(rel string) {
	m.t.Helper()
	m.ok(m.p.Rmdir(m.g(rel)), "rmdir %s", rel)
	m.ok(os.Remove(m.h(rel)), "host rmdir")
}

func (m *mirror) chmod(rel string, perm uint32) {
	m.t.Helper()
	m.ok(m.p.Chmod(m.g(rel), perm), "chmod %s", rel)
	m.ok(os.Chmod(m.h(rel), modeBits(perm)), "host chmod")
}

func (m *mirror) chown(rel string, uid, gid int) {
	m.t.Helper()
	m.ok(m.p.Chown(m.g(rel), uid, gid), "chown %s", rel)
	m.ok(os.Lchown(m.h(rel), uid, gid), "host chown")
}

// utimes sets both times (nanoseconds) on both sides.
func (m *mirror) utimes(rel string, ns int64) {
	m.t.Helper()
	m.ok(m.p.Utimes(m.g(rel), ns, ns), "utimes %s", rel)
	ts := []syscall.Timespec{syscall.NsecToTimespec(ns), syscall.NsecToTimespec(ns)}
	m.ok(syscall.UtimesNano(m.h(rel), ts), "host utimes")
}

// mknod makes a device or fifo on both sides.
func (m *mirror) mknod(rel string, mode uint32, rdev uint64) {
	m.t.Helper()
	dir, name := filepath.Split(rel)
	dv := walkTo(m.t, m.k, m.g(strings.TrimSuffix(dir, "/")))
	defer dv.Release()
	c, err := dv.Mknod(vnodeops.Root, name, mode, rdev)
	m.ok(err, "mknod %s", rel)
	c.Release()
	m.ok(syscall.Mknod(m.h(rel), mode, int(rdev)), "host mknod")
	m.ok(os.Chmod(m.h(rel), modeBits(mode)), "host chmod")
}

// walkTo returns a referenced kernel vnode for an absolute path.
func walkTo(t testing.TB, k *rumpcore.Kernel, path string) *rumpcore.Vnode {
	t.Helper()
	v := k.Root()
	for _, c := range strings.Split(strings.Trim(path, "/"), "/") {
		if c == "" {
			continue
		}
		n, err := v.Lookup(vnodeops.Root, c)
		v.Release()
		if err != nil {
			t.Fatalf("lookup %s in %s: %v", c, path, err)
		}
		v = n
	}
	return v
}

// syncTimes gives every file but symlinks the same distinct times on
// both sides (Setattr with nanoseconds), so that the trees compare.
func (m *mirror) syncTimes() {
	m.t.Helper()
	i := int64(0)
	err := filepath.Walk(m.host, func(hp string, fi os.FileInfo, err error) error {
		if err != nil || fi.Mode()&os.ModeSymlink != 0 {
			return err
		}
		rel, _ := filepath.Rel(m.host, hp)
		if rel == "." {
			return nil
		}
		i++
		m.utimes(rel, 1600000000_000000000+i*1_000_000_007+i)
		return nil
	})
	m.ok(err, "walk")
}

func pattern(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		le.PutUint64(b[i:], r.Uint64())
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

var writeVariants = []struct {
	name string
	args []string
}{
	{"ext2-1k-rev1", []string{"-t", "ext2", "-b", "1024"}},
	{"ext2-4k-rev1", []string{"-t", "ext2", "-b", "4096"}},
	{"ext2-1k-rev0", []string{"-t", "ext2", "-b", "1024", "-r", "0"}},
	{"ext2-2k-rev0", []string{"-t", "ext2", "-b", "2048", "-r", "0"}},
	{"ext3-4k", []string{"-t", "ext3", "-b", "4096"}},
}

// TestWriteOps runs a sequence of every kind of change on fresh images,
// mirrored on a host directory; after unmount e2fsck -fn must find the
// image clean, and after a remount the tree must equal the mirror.
func TestWriteOps(t *testing.T) {
	for _, v := range writeVariants {
		t.Run(v.name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "img")
			host := filepath.Join(dir, "host")
			if err := os.Mkdir(host, 0o755); err != nil {
				t.Fatal(err)
			}
			mkfs(t, img, "96M", "", v.args...)
			rev0 := strings.Contains(v.name, "rev0")
			k, p := boot(t, img, false, nil)
			m := &mirror{t: t, k: k, p: p, host: host}
			writeSequence(t, m, rev0)
			// Open files unlinked while open, closed before unmount.
			fd, err := p.Open("/mnt/open-unlinked", syscall.O_CREAT|syscall.O_RDWR, 0o600)
			m.ok(err, "create open-unlinked")
			data := pattern(50000, 9)
			if n, err := p.Write(fd, data); err != nil || n != len(data) {
				t.Fatalf("write: %d %v", n, err)
			}
			m.ok(p.Unlink("/mnt/open-unlinked"), "unlink open file")
			got := make([]byte, len(data))
			if n, err := p.Pread(fd, got, 0); err != nil || n != len(data) || !bytes.Equal(got, data) {
				t.Fatalf("read of unlinked open file: %d %v", n, err)
			}
			st0, _ := p.Statvfs("/mnt")
			m.ok(p.Close(fd), "close")
			st1, _ := p.Statvfs("/mnt")
			if st1.Bfree <= st0.Bfree || st1.Ffree != st0.Ffree+1 {
				t.Fatalf("closing an unlinked file freed nothing: %+v -> %+v", st0, st1)
			}
			m.syncTimes()
			compareTree(t, p, "/mnt", host, cmpOpts{nsec: !rev0, checkData: true})
			if err := k.Shutdown(); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			fsck(t, img)
			// Clean state restored, mount count raised.
			out := debugfs(t, img, false, "stats")
			if !strings.Contains(out, "Filesystem state:         clean") {
				t.Fatalf("not clean after unmount:\n%.600s", out)
			}
			if !strings.Contains(out, "Mount count:              1\n") {
				t.Fatalf("mount count not 1:\n%.1200s", out)
			}
			_, p2 := boot(t, img, true, nil)
			compareTree(t, p2, "/mnt", host, cmpOpts{nsec: !rev0, checkData: true})
		})
	}
}

func writeSequence(t *testing.T, m *mirror, rev0 bool) {
	bs := 1024
	a, err := m.p.Statvfs("/mnt")
	m.ok(err, "statvfs")
	bs = int(a.Bsize)
	p := uint64(bs / 4)
	m.mkdir("a", 0o755)
	m.mkdir("a/b", 0o700)
	m.mkdir("c", 0o2775)
	// Files ending in the direct, single, double (and for 1 KiB blocks
	// triple) indirect ranges.
	m.pwrite("a/small", 0, []byte("hello, ext2\n"))
	m.pwrite("a/direct", 0, pattern(11*bs+100, 1))
	m.pwrite("a/single", 0, pattern((12+int(p)/2)*bs, 2))
	m.pwrite("a/double", 0, pattern((12+int(p)+3)*bs+17, 3))
	dbl := int64(12+p+p+5) * int64(bs)
	m.pwrite("a/sparse-double", dbl, []byte("in the double indirect range"))
	if bs == 1024 {
		tri := int64(12+p+p*p+10) * int64(bs)
		m.pwrite("a/sparse-triple", tri, []byte("in the triple indirect range"))
		m.pwrite("a/sparse-triple", 5, []byte("and at the start"))
	}
	// Overwrites inside and across block boundaries, appends.
	m.pwrite("a/direct", int64(bs)-3, []byte("across a boundary"))
	m.pwrite("a/single", int64(5*bs), pattern(3*bs, 4))
	m.pwrite("a/small", 12, []byte("appended\n"))
	// Truncates: shrink into each range, grow to leave holes, and check
	// that the tail of the last block reads as zeros after regrowth.
	m.truncate("a/double", int64(12+p/2)*int64(bs)+5)
	m.truncate("a/double", int64(12+p+p/2)*int64(bs))
	m.truncate("a/single", 100)
	m.truncate("a/single", int64(3*bs))
	m.pwrite("a/single", int64(4*bs), []byte("after a hole"))
	m.truncate("a/direct", 0)
	if bs == 1024 {
		m.truncate("a/sparse-triple", int64(12+p+p*p+1)*int64(bs))
		m.truncate("a/sparse-triple", 20)
	}
	// Symlinks of both kinds.
	m.symlink("a/small", "s-fast")
	m.symlink(strings.Repeat("z", 59), "s-59")
	m.symlink(strings.Repeat("w", 60), "s-60")
	m.symlink(strings.Repeat("long/", 50), "a/b/s-slow")
	// Hard links.
	m.link("a/small", "c/small-link")
	m.link("a/small", "hl")
	m.unlink("hl")
	// Devices and fifos.
	m.mknod("c/null", syscall.S_IFCHR|0o666, mkdev(1, 3))
	m.mknod("c/big", syscall.S_IFBLK|0o600, mkdev(259, 70000))
	m.mknod("c/fifo", syscall.S_IFIFO|0o644, 0)
	// Renames: in place, across directories, over a file, directories
	// across parents (".." and link counts) and over an empty directory.
	m.rename("a/small", "a/small2")
	m.rename("a/small2", "c/small3")
	m.pwrite("victim", 0, []byte("to be replaced"))
	m.rename("c/small3", "victim")
	m.mkdir("a/b/moving", 0o755)
	m.mkdir("a/b/moving/inner", 0o755)
	m.pwrite("a/b/moving/inner/f", 0, []byte("inside"))
	m.rename("a/b/moving", "c/moved")
	m.mkdir("empty-target", 0o755)
	m.mkdir("c/moved2", 0o755)
	m.rename("c/moved2", "empty-target")
	m.mkdir("a/samedir-src", 0o755)
	m.mkdir("a/samedir-dst", 0o755)
	m.rename("a/samedir-src", "a/samedir-dst")
	// Attributes.
	m.chmod("a/double", 0o4751)
	m.chown("a/double", 70000, 80001)
	m.chown("c", 1000, 1000)
	m.utimes("a/double", 1234567890123456789)
	m.utimes("c/moved", 987654321000000007)
	// Many entries: creation, removal of every other one, re-creation with
	// longer names that must go into the gaps or new blocks.
	m.mkdir("many", 0o755)
	for i := 0; i < 400; i++ {
		m.pwrite(fmt.Sprintf("many/f%d", i), 0, []byte{byte(i)})
	}
	for i := 0; i < 400; i += 2 {
		m.unlink(fmt.Sprintf("many/f%d", i))
	}
	for i := 0; i < 100; i++ {
		m.pwrite(fmt.Sprintf("many/a-much-longer-name-than-before-%d", i), 0, nil)
	}
	for i := 0; i < 30; i++ {
		m.mkdir(fmt.Sprintf("many/d%d", i), 0o755)
	}
	for i := 0; i < 30; i += 3 {
		m.rmdir(fmt.Sprintf("many/d%d", i))
	}
	m.rmdir("empty-target")
	// rev0 has no large_file: a file may not reach 2 GiB.
	if rev0 {
		fd, err := m.p.Open("/mnt/toolarge", syscall.O_CREAT|syscall.O_WRONLY, 0o644)
		m.ok(err, "create toolarge")
		if _, err := m.p.Pwrite(fd, []byte("x"), 1<<31); !isErrno(err, syscall.EFBIG) {
			t.Fatalf("write past 2 GiB without large_file: %v, want EFBIG", err)
		}
		m.p.Close(fd)
		m.p.Unlink("/mnt/toolarge")
	}
	// Errors.
	if err := m.p.Rmdir("/mnt/c"); !isErrno(err, syscall.ENOTEMPTY) {
		t.Fatalf("rmdir of a full directory: %v", err)
	}
	if err := m.p.Mkdir("/mnt/a", 0o755); !isErrno(err, syscall.EEXIST) {
		t.Fatalf("mkdir of an existing name: %v", err)
	}
	if err := m.p.Link("/mnt/a", "/mnt/a-link"); err == nil {
		t.Fatalf("hard link to a directory succeeded")
	}
}
