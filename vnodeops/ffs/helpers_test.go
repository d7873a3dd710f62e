package ffs

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rump9p/rump9p/blkdev"
	"github.com/rump9p/rump9p/tests/hosttools"
	"github.com/rump9p/rump9p/vnodeops"
)

// variant is one way of making an image with makefs.
type variant struct {
	name    string
	version int    // UFS version: 1 or 2
	order   string // "le" or "be"
	bsize   int
	fsize   int
}

// variants are the images every read test covers: both UFS versions,
// both byte orders, 16 KiB/2 KiB and 32 KiB/4 KiB blocks.
var variants = func() []variant {
	var vs []variant
	for _, ver := range []int{1, 2} {
		for _, order := range []string{"le", "be"} {
			for _, bs := range [][2]int{{16384, 2048}, {32768, 4096}} {
				vs = append(vs, variant{fmt.Sprintf("ufs%d-%s-%dk", ver, order, bs[0]>>10), ver, order, bs[0], bs[1]})
			}
		}
	}
	return vs
}()

// makefs makes an FFS image of size bytes (a makefs -s argument) at img
// from the directory src.
func makefs(t testing.TB, img, src string, v variant, size string, extra ...string) {
	t.Helper()
	bin := hosttools.Need(t, "makefs")
	args := []string{"-t", "ffs", "-B", v.order, "-s", size,
		"-o", fmt.Sprintf("version=%d,bsize=%d,fsize=%d", v.version, v.bsize, v.fsize)}
	args = append(args, extra...)
	args = append(args, img, src)
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("makefs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// logBuf collects log lines.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// mountImage mounts img directly (without a kernel) and unmounts it at
// cleanup unless the test does.
func mountImage(t testing.TB, img string, ro bool, opts map[string]string, log *logBuf) vnodeops.FS {
	t.Helper()
	fs, err := mountErrOf(img, ro, opts, log)
	if err != nil {
		t.Fatalf("mount %s: %v", img, err)
	}
	t.Cleanup(func() { fs.Unmount(true) })
	return fs
}

func mountErrOf(img string, ro bool, opts map[string]string, log *logBuf) (vnodeops.FS, error) {
	dev, err := blkdev.Open(img, ro)
	if err != nil {
		return nil, err
	}
	var w interface{ Write([]byte) (int, error) } = &logBuf{}
	if log != nil {
		w = log
	}
	fs, err := Mount(vnodeops.MountArgs{Name: "test", Dev: dev, ReadOnly: ro, Options: opts,
		Now: time.Now, Log: slog.New(slog.NewTextHandler(w, nil)).With("mount", "test")})
	if err != nil {
		dev.Close()
	}
	return fs, err
}

// ---- A small kernel over one FS: path lookups with vnode reuse ----

type client struct {
	t     testing.TB
	fs    vnodeops.FS
	nodes map[uint64]vnodeops.Vnode
}

func newClient(t testing.TB, fs vnodeops.FS) *client {
	c := &client{t: t, fs: fs, nodes: map[uint64]vnodeops.Vnode{}}
	t.Cleanup(c.release)
	return c
}

func (c *client) get(ino uint64) (vnodeops.Vnode, error) {
	if v, ok := c.nodes[ino]; ok {
		return v, nil
	}
	v, err := c.fs.VGet(ino)
	if err != nil {
		return nil, err
	}
	c.nodes[ino] = v
	return v, nil
}

// drop releases one vnode as the kernel would on its last reference.
func (c *client) drop(ino uint64) {
	if v, ok := c.nodes[ino]; ok {
		delete(c.nodes, ino)
		v.Inactive()
		v.Reclaim()
	}
}

func (c *client) release() {
	for ino := range c.nodes {
		c.drop(ino)
	}
}

// walk resolves a slash-separated path from the root.
func (c *client) walk(path string) (vnodeops.Vnode, uint64, error) {
	ino := c.fs.Root()
	v, err := c.get(ino)
	if err != nil {
		return nil, 0, err
	}
	for _, name := range strings.Split(path, "/") {
		if name == "" || name == "." {
			continue
		}
		if ino, err = v.Lookup(name); err != nil {
			return nil, 0, err
		}
		if v, err = c.get(ino); err != nil {
			return nil, 0, err
		}
	}
	return v, ino, nil
}

func (c *client) must(path string) vnodeops.Vnode {
	c.t.Helper()
	v, _, err := c.walk(path)
	if err != nil {
		c.t.Fatalf("walk %s: %v", path, err)
	}
	return v
}

// readAll reads a whole file.
func readAll(v vnodeops.Vnode) ([]byte, error) {
	a, err := v.Getattr()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, a.Size)
	for off := 0; off < len(buf); {
		n, err := v.Read(buf[off:min(len(buf), off+300000)], int64(off))
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("short read at %d of %d", off, len(buf))
		}
		off += n
	}
	return buf, nil
}

// readDir lists a directory, "." and ".." included.
func readDir(v vnodeops.Vnode) ([]vnodeops.Dirent, error) {
	var out []vnodeops.Dirent
	err := v.Readdir(0, func(d vnodeops.Dirent) bool {
		out = append(out, d)
		return true
	})
	return out, err
}

// ---- Source trees ----

// pattern returns n bytes of a pattern that differs per seed.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// treeEntries is the number of files in the big directory.
const treeEntries = 10000

var (
	treeOnce sync.Once
	treeDir  string
	treeErr  error
)

// sourceTree returns the tree every read test images: files of sizes
// around every boundary of the block map (fragment tails, the last
// direct block, the single indirect range), a sparse file, hard links,
// short and long symbolic links, a fifo and a device node, owners and
// modes, and a directory of treeEntries entries. Made once per binary.
func sourceTree(t testing.TB) string {
	t.Helper()
	treeOnce.Do(func() {
		d, err := os.MkdirTemp("", "ffs-src-")
		if err != nil {
			treeErr = err
			return
		}
		treeDir = filepath.Join(d, "src")
		treeErr = buildTree(treeDir)
	})
	if treeErr != nil {
		t.Fatal(treeErr)
	}
	return treeDir
}

func buildTree(dir string) error {
	var errs []error
	chk := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	p := func(s string) string { return filepath.Join(dir, s) }
	chk(os.MkdirAll(p("d1/d2/d3"), 0o755))
	chk(os.MkdirAll(p("big"), 0o755))
	sizes := map[string]int{
		"empty": 0, "small": 5, "frag": 3000, "block": 16384, "multi": 3*32768 + 100,
		"direct": 12*16384 - 1, "indirect": 14*32768 + 7, "d1/d2/d3/deep": 777,
	}
	seed := byte(1)
	for name, n := range sizes {
		chk(os.WriteFile(p(name), pattern(n, seed), 0o644))
		seed++
	}
	f, err := os.Create(p("sparse"))
	chk(err)
	if err == nil {
		_, err = f.WriteAt([]byte("start"), 0)
		chk(err)
		_, err = f.WriteAt([]byte("the end"), 5<<20)
		chk(err)
		chk(f.Close())
	}
	chk(os.Link(p("small"), p("d1/hard")))
	chk(os.Link(p("small"), p("d1/d2/hard2")))
	chk(os.Symlink("small", p("fast")))
	chk(os.Symlink(strings.Repeat("long/", 40)+"target", p("slow")))
	chk(syscall.Mkfifo(p("fifo"), 0o640))
	chk(syscall.Mknod(p("null"), syscall.S_IFCHR|0o666, 1<<8|3))
	chk(os.Chmod(p("frag"), 0o4751))
	chk(os.Chown(p("frag"), 1234, 5678))
	chk(os.Chmod(p("d1"), 0o1777))
	for i := range treeEntries {
		chk(os.WriteFile(p(fmt.Sprintf("big/entry-%05d-%s", i, strings.Repeat("x", i%40))), nil, 0o600))
	}
	when := time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)
	chk(filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode()&os.ModeSymlink == 0 {
			err = os.Chtimes(path, when, when)
		}
		return err
	}))
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// compareTree checks that the file system seen through c holds exactly
// the host tree src: names, types, modes, owners, sizes, link counts,
// modification times, contents, link targets, device numbers, and one
// inode number per hard-linked file.
func compareTree(t *testing.T, c *client, src string) {
	t.Helper()
	inos := map[uint64]string{}    // image inode -> first path
	hostIno := map[uint64]uint64{} // host inode -> image inode
	err := filepath.Walk(src, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		v, ino, err := c.walk(rel)
		if err != nil {
			return fmt.Errorf("%s: %v", rel, err)
		}
		a, err := v.Getattr()
		if err != nil {
			return fmt.Errorf("%s: getattr: %v", rel, err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if a.Mode != st.Mode || a.UID != st.Uid || a.GID != st.Gid || uint64(a.Nlink) != uint64(st.Nlink) {
			return fmt.Errorf("%s: mode %#o uid %d gid %d nlink %d, want %#o %d %d %d", rel, a.Mode, a.UID, a.GID, a.Nlink, st.Mode, st.Uid, st.Gid, st.Nlink)
		}
		if fi.Mode().IsRegular() && int64(a.Size) != st.Size {
			return fmt.Errorf("%s: size %d, want %d", rel, a.Size, st.Size)
		}
		if fi.Mode()&os.ModeSymlink == 0 && a.Mtime/1e9 != st.Mtim.Sec {
			return fmt.Errorf("%s: mtime %d, want %d", rel, a.Mtime/1e9, st.Mtim.Sec)
		}
		if a.Ino != ino {
			return fmt.Errorf("%s: getattr ino %d, lookup %d", rel, a.Ino, ino)
		}
		if prev, ok := hostIno[st.Ino]; ok && prev != ino {
			return fmt.Errorf("%s: hard link has inode %d, its other name %s has %d", rel, ino, inos[prev], prev)
		}
		hostIno[st.Ino] = ino
		if _, ok := inos[ino]; !ok {
			inos[ino] = rel
		}
		switch {
		case fi.Mode().IsRegular():
			got, err := readAll(v)
			if err != nil {
				return fmt.Errorf("%s: read: %v", rel, err)
			}
			want, _ := os.ReadFile(path)
			if !bytes.Equal(got, want) {
				return fmt.Errorf("%s: contents differ", rel)
			}
		case fi.Mode()&os.ModeSymlink != 0:
			got, err := v.Readlink()
			want, _ := os.Readlink(path)
			if err != nil || got != want {
				return fmt.Errorf("%s: link %q (%v), want %q", rel, got, err, want)
			}
		case fi.Mode()&os.ModeDevice != 0:
			if a.Rdev != st.Rdev {
				return fmt.Errorf("%s: rdev %#x, want %#x", rel, a.Rdev, st.Rdev)
			}
		case fi.IsDir():
			ents, err := readDir(v)
			if err != nil {
				return fmt.Errorf("%s: readdir: %v", rel, err)
			}
			host, _ := os.ReadDir(path)
			if len(ents) != len(host)+2 || ents[0].Name != "." || ents[1].Name != ".." {
				return fmt.Errorf("%s: %d entries, want %d plus . and ..", rel, len(ents), len(host))
			}
			for _, e := range ents[2:] {
				hi, err := os.Lstat(filepath.Join(path, e.Name))
				if err != nil {
					return fmt.Errorf("%s: entry %q not on the host", rel, e.Name)
				}
				if want := vnodeops.DTFromMode(hi.Sys().(*syscall.Stat_t).Mode); e.Type != want {
					return fmt.Errorf("%s/%s: type %d, want %d", rel, e.Name, e.Type, want)
				}
			}
		}
		if !fi.IsDir() {
			c.drop(ino) // the big directory's files are not all kept
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// grubReads reports whether grub-fstest reads a file of size bytes on
// images of v: GRUB has readers for UFS1 in both byte orders and for
// little-endian UFS2 only (grub-core/fs/ufs.c built as ufs1, ufs1_be and
// ufs2), and its big-endian UFS1 reader fails on indirect blocks (it
// reports a read outside the disk on makefs's own images), so there it
// reads files of direct blocks only.
func grubReads(v variant, size int64) bool {
	if v.order == "be" {
		return v.version == 1 && size <= nDAddr*int64(v.bsize)
	}
	return true
}

// grubCat reads path of img with grub-fstest, an independent FFS reader;
// skip and n select a range (n 0: all).
func grubCat(t testing.TB, img, path string, skip, n int64) []byte {
	t.Helper()
	bin := hosttools.Need(t, "grub-fstest")
	args := []string{}
	if skip > 0 {
		args = append(args, "-s", fmt.Sprint(skip))
	}
	if n > 0 {
		args = append(args, "-n", fmt.Sprint(n))
	}
	args = append(args, img, "cat", path)
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("grub-fstest %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// grubLs lists a directory of img with grub-fstest.
func grubLs(t testing.TB, img, path string) []string {
	t.Helper()
	bin := hosttools.Need(t, "grub-fstest")
	out, err := exec.Command(bin, img, "ls", path).CombinedOutput()
	if err != nil {
		t.Fatalf("grub-fstest %s ls %s: %v\n%s", img, path, err, out)
	}
	return strings.Fields(string(out))
}
