package tmpfs

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rump9p/rump9p/vnodeops"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) tick() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t.UnixNano()
}

func newFS(t testing.TB, opts Options) (*FS, vnodeops.ReadWriteVnode) {
	t.Helper()
	fs := New(opts)
	root, err := fs.VGet(fs.Root())
	if err != nil {
		t.Fatalf("VGet(root): %v", err)
	}
	return fs, root.(vnodeops.ReadWriteVnode)
}

func wantErr(t testing.TB, what string, err error, want syscall.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err %v, want %v", what, err, want)
	}
}

func ok(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func vget(t testing.TB, fs *FS, ino uint64) vnodeops.ReadWriteVnode {
	t.Helper()
	v, err := fs.VGet(ino)
	ok(t, fmt.Sprintf("VGet(%d)", ino), err)
	return v.(vnodeops.ReadWriteVnode)
}

func attr(t testing.TB, v vnodeops.ReadWriteVnode) vnodeops.Attr {
	t.Helper()
	a, err := v.Getattr()
	ok(t, "Getattr", err)
	return a
}

// release does what the kernel does when it drops its last reference.
func release(t testing.TB, v vnodeops.ReadWriteVnode) {
	t.Helper()
	ok(t, "Inactive", v.Inactive())
	ok(t, "Reclaim", v.Reclaim())
}

func create(t testing.TB, fs *FS, dir vnodeops.ReadWriteVnode, name string) vnodeops.ReadWriteVnode {
	t.Helper()
	ino, err := dir.Create(name, 0o644, 0, 0)
	ok(t, "Create "+name, err)
	return vget(t, fs, ino)
}

func mkdir(t testing.TB, fs *FS, dir vnodeops.ReadWriteVnode, name string) vnodeops.ReadWriteVnode {
	t.Helper()
	ino, err := dir.Mkdir(name, 0o755, 0, 0)
	ok(t, "Mkdir "+name, err)
	return vget(t, fs, ino)
}

func readAll(t testing.TB, v vnodeops.ReadWriteVnode) []byte {
	t.Helper()
	a := attr(t, v)
	p := make([]byte, a.Size+10)
	n, err := v.Read(p, 0)
	ok(t, "Read", err)
	if uint64(n) != a.Size {
		t.Fatalf("Read returned %d bytes, size is %d", n, a.Size)
	}
	return p[:n]
}

func names(t testing.TB, dir vnodeops.ReadWriteVnode) []string {
	t.Helper()
	var out []string
	ok(t, "Readdir", dir.Readdir(0, func(d vnodeops.Dirent) bool {
		out = append(out, d.Name)
		return true
	}))
	return out
}

func statvfs(t testing.TB, fs *FS) vnodeops.Statvfs {
	t.Helper()
	st, err := fs.Statvfs()
	ok(t, "Statvfs", err)
	return st
}

func TestRootAndLookup(t *testing.T) {
	fs, root := newFS(t, Options{UID: 7, GID: 8})
	if fs.Root() != 2 {
		t.Fatalf("Root() = %d, want 2", fs.Root())
	}
	a := attr(t, root)
	if a.Mode != vnodeops.S_IFDIR|0o1777 || a.Nlink != 2 || a.Ino != 2 || a.UID != 7 || a.GID != 8 || a.Gen == 0 {
		t.Fatalf("root attr %+v", a)
	}
	for _, name := range []string{"..", "."} {
		ino, err := root.Lookup(name)
		ok(t, "Lookup "+name, err)
		if ino != 2 {
			t.Fatalf("Lookup(%q) of root = %d, want 2", name, ino)
		}
	}
	_, err := root.Lookup("nope")
	wantErr(t, "Lookup absent", err, syscall.ENOENT)
	for _, ino := range []uint64{0, 1, 3, 1 << 40} {
		_, err := fs.VGet(ino)
		wantErr(t, fmt.Sprintf("VGet(%d)", ino), err, syscall.ENOENT)
	}

	d := mkdir(t, fs, root, "d")
	f := create(t, fs, d, "f")
	fa := attr(t, f)
	if ino, err := d.Lookup("f"); err != nil || ino != fa.Ino {
		t.Fatalf("Lookup f = %d, %v; want %d", ino, err, fa.Ino)
	}
	if ino, err := d.Lookup(".."); err != nil || ino != 2 {
		t.Fatalf("Lookup .. of d = %d, %v", ino, err)
	}
	_, err = f.Lookup("x")
	wantErr(t, "Lookup in a file", err, syscall.ENOTDIR)
	_, err = root.Create("d", 0o644, 0, 0)
	wantErr(t, "Create existing", err, syscall.EEXIST)
	_, err = f.Create("x", 0o644, 0, 0)
	wantErr(t, "Create in a file", err, syscall.ENOTDIR)
}

func TestNames(t *testing.T) {
	fs, root := newFS(t, Options{})
	long := strings.Repeat("x", NameMax)
	create(t, fs, root, long)
	for _, tc := range []struct {
		name string
		want syscall.Errno
	}{
		{"", syscall.EINVAL},
		{"a/b", syscall.EINVAL},
		{"a\x00b", syscall.EINVAL},
		{long + "y", syscall.ENAMETOOLONG},
		{".", syscall.EEXIST},
		{"..", syscall.EEXIST},
	} {
		_, err := root.Create(tc.name, 0o644, 0, 0)
		wantErr(t, fmt.Sprintf("Create(%q)", tc.name), err, tc.want)
		_, err = root.Mkdir(tc.name, 0o755, 0, 0)
		wantErr(t, fmt.Sprintf("Mkdir(%q)", tc.name), err, tc.want)
	}
	_, err := root.Lookup(long + "y")
	wantErr(t, "Lookup long", err, syscall.ENAMETOOLONG)
	_, err = root.Lookup("")
	wantErr(t, "Lookup empty", err, syscall.EINVAL)
	wantErr(t, "Remove ..", root.Remove("..", nil), syscall.EINVAL)
	wantErr(t, "Rmdir .", root.Rmdir(".", nil), syscall.EINVAL)
}

func TestInoNeverReused(t *testing.T) {
	fs, root := newFS(t, Options{})
	a, err := root.Create("a", 0o644, 0, 0)
	ok(t, "Create", err)
	b, err := root.Mkdir("b", 0o755, 0, 0)
	ok(t, "Mkdir", err)
	if a != 3 || b != 4 {
		t.Fatalf("inos %d, %d; want 3, 4", a, b)
	}
	ok(t, "Remove", root.Remove("a", nil)) // no vnode held: freed at once
	ok(t, "Rmdir", root.Rmdir("b", nil))
	if _, err := fs.VGet(a); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("VGet of removed unreferenced inode: %v", err)
	}
	c, err := root.Create("c", 0o644, 0, 0)
	ok(t, "Create", err)
	if c != 5 {
		t.Fatalf("new ino %d, want 5", c)
	}
}

func TestMknodTypes(t *testing.T) {
	fs, root := newFS(t, Options{})
	for _, tc := range []struct {
		name     string
		mode     uint32
		rdev     uint64
		wantRdev uint64
		dt       uint8
	}{
		{"reg", vnodeops.S_IFREG | 0o600, 5, 0, vnodeops.DT_REG},
		{"plain", 0o600, 0, 0, vnodeops.DT_REG},
		{"fifo", vnodeops.S_IFIFO | 0o600, 5, 0, vnodeops.DT_FIFO},
		{"sock", vnodeops.S_IFSOCK | 0o600, 0, 0, vnodeops.DT_SOCK},
		{"chr", vnodeops.S_IFCHR | 0o620, 0x0501, 0x0501, vnodeops.DT_CHR},
		{"blk", vnodeops.S_IFBLK | 0o660, 0x0801, 0x0801, vnodeops.DT_BLK},
	} {
		ino, err := root.Mknod(tc.name, tc.mode, 3, 4, tc.rdev)
		ok(t, "Mknod "+tc.name, err)
		a := attr(t, vget(t, fs, ino))
		wantMode := tc.mode
		if wantMode&vnodeops.S_IFMT == 0 {
			wantMode |= vnodeops.S_IFREG
		}
		if a.Mode != wantMode || a.Rdev != tc.wantRdev || a.UID != 3 || a.GID != 4 || a.Nlink != 1 {
			t.Errorf("%s: attr %+v", tc.name, a)
		}
		var got uint8 = 255
		ok(t, "Readdir", root.Readdir(0, func(d vnodeops.Dirent) bool {
			if d.Name == tc.name {
				got = d.Type
			}
			return true
		}))
		if got != tc.dt {
			t.Errorf("%s: dirent type %d, want %d", tc.name, got, tc.dt)
		}
	}
	for _, mode := range []uint32{vnodeops.S_IFDIR | 0o755, vnodeops.S_IFLNK | 0o777, 0o030000} {
		_, err := root.Mknod("bad", mode, 0, 0, 0)
		wantErr(t, fmt.Sprintf("Mknod mode %o", mode), err, syscall.EINVAL)
	}
}

func TestSymlink(t *testing.T) {
	fs, root := newFS(t, Options{})
	ino, err := root.Symlink("l", "../some/where", 1, 2)
	ok(t, "Symlink", err)
	l := vget(t, fs, ino)
	s, err := l.Readlink()
	ok(t, "Readlink", err)
	if s != "../some/where" {
		t.Fatalf("Readlink = %q", s)
	}
	a := attr(t, l)
	if a.Mode != vnodeops.S_IFLNK|0o777 || a.Size != uint64(len(s)) || a.UID != 1 {
		t.Fatalf("symlink attr %+v", a)
	}
	_, err = root.Readlink()
	wantErr(t, "Readlink of dir", err, syscall.EINVAL)
	f := create(t, fs, root, "f")
	_, err = f.Readlink()
	wantErr(t, "Readlink of file", err, syscall.EINVAL)
	_, err = root.Symlink("e", "", 0, 0)
	wantErr(t, "Symlink empty target", err, syscall.ENOENT)
	_, err = root.Symlink("e", strings.Repeat("a", SymlinkMax+1), 0, 0)
	wantErr(t, "Symlink long target", err, syscall.ENAMETOOLONG)
	_, err = root.Symlink("l", "x", 0, 0)
	wantErr(t, "Symlink existing", err, syscall.EEXIST)
	_, err = l.Read(make([]byte, 4), 0)
	wantErr(t, "Read symlink", err, syscall.EINVAL)
}

func TestReadWritePagesAndHoles(t *testing.T) {
	fs, root := newFS(t, Options{})
	f := create(t, fs, root, "f")
	msg := []byte("across the page boundary")
	off := int64(PageSize - 6)
	n, err := f.Write(msg, off)
	if err != nil || n != len(msg) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	a := attr(t, f)
	if a.Size != uint64(off)+uint64(len(msg)) || a.Blocks != 2*8 {
		t.Fatalf("after first write: size %d blocks %d", a.Size, a.Blocks)
	}
	// A write far away leaves a hole of whole pages that costs nothing.
	far := int64(10*PageSize + 100)
	if n, err := f.Write([]byte("far"), far); err != nil || n != 3 {
		t.Fatalf("far Write = %d, %v", n, err)
	}
	a = attr(t, f)
	if a.Size != uint64(far+3) || a.Blocks != 3*8 {
		t.Fatalf("after far write: size %d blocks %d, want %d, 24", a.Size, a.Blocks, far+3)
	}
	data := readAll(t, f)
	want := make([]byte, far+3)
	copy(want[off:], msg)
	copy(want[far:], "far")
	if !bytes.Equal(data, want) {
		t.Fatal("file contents differ from what was written (holes must read as zeros)")
	}
	// Reads at odd offsets spanning pages and holes.
	for _, o := range []int64{0, 1, PageSize - 7, PageSize, 3*PageSize - 1, far - 5} {
		p := make([]byte, 2*PageSize+3)
		n, err := f.Read(p, o)
		ok(t, "Read", err)
		wantN := min(int64(len(p)), far+3-o)
		if int64(n) != wantN || !bytes.Equal(p[:n], want[o:o+wantN]) {
			t.Fatalf("Read at %d: n=%d want %d, or data differs", o, n, wantN)
		}
	}
	// At and past EOF: (0, nil).
	for _, o := range []int64{far + 3, far + 1000, 1 << 55} {
		if n, err := f.Read(make([]byte, 8), o); n != 0 || err != nil {
			t.Fatalf("Read at %d = %d, %v; want 0, nil", o, n, err)
		}
	}
	_, err = f.Read(make([]byte, 1), -1)
	wantErr(t, "Read negative offset", err, syscall.EINVAL)
	_, err = f.Write([]byte("x"), -1)
	wantErr(t, "Write negative offset", err, syscall.EINVAL)
	_, err = root.Read(make([]byte, 1), 0)
	wantErr(t, "Read dir", err, syscall.EISDIR)
	_, err = root.Write([]byte("x"), 0)
	wantErr(t, "Write dir", err, syscall.EISDIR)

	// Truncating into the middle of a page drops later pages and zeroes
	// the tail, so extending again reads zeros.
	cut := off + 3
	ok(t, "truncate", f.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetSize, Size: uint64(cut)}))
	a = attr(t, f)
	if a.Size != uint64(cut) || a.Blocks != 8 {
		t.Fatalf("after truncate: size %d blocks %d", a.Size, a.Blocks)
	}
	ok(t, "extend", f.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetSize, Size: uint64(3 * PageSize)}))
	a = attr(t, f)
	if a.Size != 3*PageSize || a.Blocks != 8 {
		t.Fatalf("after extend: size %d blocks %d (extension must not allocate)", a.Size, a.Blocks)
	}
	data = readAll(t, f)
	want = make([]byte, 3*PageSize)
	copy(want[off:], msg[:3])
	if !bytes.Equal(data, want) {
		t.Fatal("data after truncate+extend is not zero past the cut")
	}
	ok(t, "truncate 0", f.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetSize}))
	if a = attr(t, f); a.Size != 0 || a.Blocks != 0 {
		t.Fatalf("after truncate 0: size %d blocks %d", a.Size, a.Blocks)
	}
	if st := statvfs(t, fs); st.Blocks != st.Bfree {
		t.Fatalf("pages still charged after truncate 0: %+v", st)
	}
}

func TestSparseHugeTruncate(t *testing.T) {
	fs, root := newFS(t, Options{})
	f := create(t, fs, root, "f")
	if _, err := f.Write([]byte("x"), 1<<40); err != nil {
		t.Fatal(err)
	}
	// Shrinking a huge sparse file must not walk every page index.
	done := make(chan struct{})
	go func() {
		defer close(done)
		ok(t, "truncate", f.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetSize, Size: 5}))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("truncate of a sparse file walks the holes")
	}
	if a := attr(t, f); a.Size != 5 || a.Blocks != 0 {
		t.Fatalf("attr %+v", a)
	}
}

func TestEFBIG(t *testing.T) {
	fs, root := newFS(t, Options{})
	f := create(t, fs, root, "f")
	n, err := f.Write([]byte("hello"), MaxFileSize-2)
	if n != 2 || !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("Write at the limit = %d, %v; want 2, EFBIG", n, err)
	}
	if a := attr(t, f); a.Size != MaxFileSize {
		t.Fatalf("size %d", a.Size)
	}
	n, err = f.Write([]byte("x"), MaxFileSize)
	if n != 0 || !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("Write past the limit = %d, %v", n, err)
	}
	wantErr(t, "Setattr size past limit",
		f.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetSize, Size: MaxFileSize + 1}), syscall.EFBIG)
	wantErr(t, "Setattr size of dir",
		root.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetSize, Size: 0}), syscall.EISDIR)
}

func TestENOSPCBySize(t *testing.T) {
	fs, root := newFS(t, Options{Size: 3 * PageSize})
	st := statvfs(t, fs)
	if st.Blocks != 3 || st.Bfree != 3 || st.Bavail != 3 || st.Bsize != PageSize || st.Frsize != PageSize {
		t.Fatalf("statvfs of empty fs %+v", st)
	}
	f := create(t, fs, root, "f")
	p := bytes.Repeat([]byte{0xab}, 4*PageSize)
	n, err := f.Write(p, 0)
	if n != 3*PageSize || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write over the limit = %d, %v; want %d, ENOSPC", n, err, 3*PageSize)
	}
	if a := attr(t, f); a.Size != 3*PageSize {
		t.Fatalf("size after partial write %d", a.Size)
	}
	if st := statvfs(t, fs); st.Bfree != 0 {
		t.Fatalf("Bfree %d after filling", st.Bfree)
	}
	// Rewriting allocated pages still works.
	if n, err := f.Write([]byte("again"), 100); n != 5 || err != nil {
		t.Fatalf("overwrite = %d, %v", n, err)
	}
	if n, err := f.Write([]byte("x"), 3*PageSize); n != 0 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write of a new page = %d, %v", n, err)
	}
	_, err = root.Symlink("l", "target", 0, 0)
	wantErr(t, "Symlink when full", err, syscall.ENOSPC)
	// Extending truncate makes a hole and is not charged.
	ok(t, "extend", f.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetSize, Size: 1 << 30}))

	// Unlink while the vnode is held: storage stays until Inactive.
	ok(t, "Remove", root.Remove("f", f))
	if a := attr(t, f); a.Nlink != 0 {
		t.Fatalf("nlink %d after Remove", a.Nlink)
	}
	if st := statvfs(t, fs); st.Bfree != 0 {
		t.Fatalf("storage freed before Inactive: Bfree %d", st.Bfree)
	}
	buf := make([]byte, 5)
	if n, err := f.Read(buf, 100); n != 5 || err != nil || string(buf) != "again" {
		t.Fatalf("Read of unlinked open file = %d, %v, %q", n, err, buf)
	}
	release(t, f)
	if st := statvfs(t, fs); st.Bfree != 3 {
		t.Fatalf("Bfree %d after Inactive, want 3", st.Bfree)
	}
	_, err = root.Symlink("l", "target", 0, 0)
	ok(t, "Symlink after freeing", err)
	if st := statvfs(t, fs); st.Bfree != 2 {
		t.Fatalf("Bfree %d after symlink, want 2", st.Bfree)
	}
}

func TestENOSPCByNodes(t *testing.T) {
	fs, root := newFS(t, Options{Nodes: 4})
	st := statvfs(t, fs)
	if st.Files != 4 || st.Ffree != 3 || st.Favail != 3 {
		t.Fatalf("statvfs %+v", st)
	}
	create(t, fs, root, "a")
	mkdir(t, fs, root, "d")
	_, err := root.Symlink("l", "x", 0, 0)
	ok(t, "Symlink", err)
	if st := statvfs(t, fs); st.Ffree != 0 {
		t.Fatalf("Ffree %d, want 0", st.Ffree)
	}
	_, err = root.Create("b", 0o644, 0, 0)
	wantErr(t, "Create", err, syscall.ENOSPC)
	_, err = root.Mkdir("e", 0o755, 0, 0)
	wantErr(t, "Mkdir", err, syscall.ENOSPC)
	_, err = root.Mknod("p", vnodeops.S_IFIFO|0o644, 0, 0, 0)
	wantErr(t, "Mknod", err, syscall.ENOSPC)
	_, err = root.Symlink("m", "x", 0, 0)
	wantErr(t, "Symlink", err, syscall.ENOSPC)
	ok(t, "Remove l", root.Remove("l", nil))
	if st := statvfs(t, fs); st.Ffree != 1 {
		t.Fatalf("Ffree %d after removing an unreferenced file, want 1", st.Ffree)
	}
	_, err = root.Create("b", 0o644, 0, 0)
	ok(t, "Create after Remove", err)
}

func TestInactiveFreesStorage(t *testing.T) {
	fs, root := newFS(t, Options{})
	before := statvfs(t, fs)
	f := create(t, fs, root, "f")
	if _, err := f.Write(make([]byte, 10*PageSize), 0); err != nil {
		t.Fatal(err)
	}
	d := mkdir(t, fs, root, "d")
	mid := statvfs(t, fs)
	if before.Bfree-mid.Bfree != 10 || before.Ffree-mid.Ffree != 2 {
		t.Fatalf("usage not counted: before %+v after %+v", before, mid)
	}
	fa := attr(t, f)
	ok(t, "Remove", root.Remove("f", f))
	ok(t, "Rmdir", root.Rmdir("d", d))
	if st := statvfs(t, fs); st.Bfree != mid.Bfree || st.Ffree != mid.Ffree {
		t.Fatalf("freed while referenced: %+v", st)
	}
	// Reclaim without Inactive of a linked file frees nothing.
	release(t, f)
	release(t, d)
	if st := statvfs(t, fs); st.Bfree != before.Bfree || st.Ffree != before.Ffree {
		t.Fatalf("not freed by Inactive: before %+v now %+v", before, st)
	}
	if _, err := fs.VGet(fa.Ino); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("VGet of freed inode: %v", err)
	}

	// A linked file survives Inactive and Reclaim with its data.
	g := create(t, fs, root, "g")
	if _, err := g.Write([]byte("keep"), 0); err != nil {
		t.Fatal(err)
	}
	ga := attr(t, g)
	release(t, g)
	g = vget(t, fs, ga.Ino)
	if got := readAll(t, g); string(got) != "keep" {
		t.Fatalf("data after reclaim %q", got)
	}
}

func TestLinkCounts(t *testing.T) {
	c := newClock()
	fs, root := newFS(t, Options{Now: c.Now})
	a := mkdir(t, fs, root, "a")
	if n := attr(t, root).Nlink; n != 3 {
		t.Fatalf("root nlink %d after mkdir, want 3", n)
	}
	b := mkdir(t, fs, a, "b")
	if n := attr(t, a).Nlink; n != 3 {
		t.Fatalf("a nlink %d, want 3", n)
	}
	if n := attr(t, b).Nlink; n != 2 {
		t.Fatalf("b nlink %d, want 2", n)
	}
	f := create(t, fs, a, "f")
	c.tick()
	ok(t, "Link", root.Link(f, "f2"))
	fa := attr(t, f)
	if fa.Nlink != 2 || fa.Ctime != c.Now().UnixNano() {
		t.Fatalf("after Link: nlink %d ctime %d", fa.Nlink, fa.Ctime)
	}
	if n := attr(t, a).Nlink; n != 3 {
		t.Fatalf("a nlink %d after a file link, want 3", n)
	}
	wantErr(t, "Link dir", root.Link(b, "b2"), syscall.EPERM)
	wantErr(t, "Link existing name", root.Link(f, "a"), syscall.EEXIST)
	wantErr(t, "Link into file", f.Link(f, "x"), syscall.ENOTDIR)
	wantErr(t, "Rmdir non-empty", root.Rmdir("a", a), syscall.ENOTEMPTY)
	wantErr(t, "Rmdir file", a.Rmdir("f", f), syscall.ENOTDIR)
	wantErr(t, "Remove dir", a.Remove("b", b), syscall.EISDIR)
	wantErr(t, "Remove wrong vnode", a.Remove("f", b), syscall.ENOENT)
	wantErr(t, "Remove absent", a.Remove("zz", nil), syscall.ENOENT)

	ok(t, "Remove f", a.Remove("f", f))
	if n := attr(t, f).Nlink; n != 1 {
		t.Fatalf("nlink %d after one Remove, want 1", n)
	}
	if got := readAll(t, vget2(t, fs, root, "f2")); len(got) != 0 {
		t.Fatalf("f2 content %q", got)
	}
	ok(t, "Rmdir b", a.Rmdir("b", b))
	if n := attr(t, a).Nlink; n != 2 {
		t.Fatalf("a nlink %d after rmdir, want 2", n)
	}
	if n := attr(t, b).Nlink; n != 0 {
		t.Fatalf("removed dir nlink %d", n)
	}
	ok(t, "Rmdir a", root.Rmdir("a", a))
	if n := attr(t, root).Nlink; n != 2 {
		t.Fatalf("root nlink %d, want 2", n)
	}

	// EMLINK at the limit.
	g := create(t, fs, root, "g")
	fs.mu.Lock()
	g.(*node).nlink = LinkMax
	root.(*node).nlink = LinkMax
	fs.mu.Unlock()
	wantErr(t, "Link at LinkMax", root.Link(g, "g2"), syscall.EMLINK)
	_, err := root.Mkdir("m", 0o755, 0, 0)
	wantErr(t, "Mkdir at LinkMax", err, syscall.EMLINK)
	fs.mu.Lock()
	g.(*node).nlink = 1
	root.(*node).nlink = 3
	fs.mu.Unlock()
}

// vget2 looks up name in dir and gets its vnode.
func vget2(t testing.TB, fs *FS, dir vnodeops.ReadWriteVnode, name string) vnodeops.ReadWriteVnode {
	t.Helper()
	ino, err := dir.Lookup(name)
	ok(t, "Lookup "+name, err)
	return vget(t, fs, ino)
}

func TestRemovedDirectory(t *testing.T) {
	fs, root := newFS(t, Options{})
	d := mkdir(t, fs, root, "d")
	ok(t, "Rmdir", root.Rmdir("d", d))
	_, err := d.Lookup("..")
	wantErr(t, "Lookup in removed dir", err, syscall.ENOENT)
	_, err = d.Create("x", 0o644, 0, 0)
	wantErr(t, "Create in removed dir", err, syscall.ENOENT)
	_, err = d.Mkdir("x", 0o755, 0, 0)
	wantErr(t, "Mkdir in removed dir", err, syscall.ENOENT)
	if got := names(t, d); len(got) != 0 {
		t.Fatalf("Readdir of removed dir: %v", got)
	}
	if n := attr(t, root).Nlink; n != 2 {
		t.Fatalf("root nlink %d", n)
	}
}

func TestRename(t *testing.T) {
	c := newClock()
	fs, root := newFS(t, Options{Now: c.Now})
	a := mkdir(t, fs, root, "a")
	b := mkdir(t, fs, root, "b")
	f := create(t, fs, a, "f")
	fa := attr(t, f)

	// A file within a directory.
	now := c.tick()
	ok(t, "rename f g", a.Rename("f", f, a, "g", nil))
	if _, err := a.Lookup("f"); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("old name still there: %v", err)
	}
	if ino, err := a.Lookup("g"); err != nil || ino != fa.Ino {
		t.Fatalf("Lookup g = %d, %v", ino, err)
	}
	if aa := attr(t, a); aa.Mtime != now || aa.Ctime != now {
		t.Fatalf("dir times not updated: %+v", aa)
	}
	if attr(t, f).Ctime != now {
		t.Fatal("renamed file's ctime not updated")
	}

	// A file onto an existing unreferenced file in another directory:
	// the target is freed at once.
	victim, err := b.Create("v", 0o644, 0, 0)
	ok(t, "Create v", err)
	vv := vget(t, fs, victim)
	if _, err := vv.Write(make([]byte, PageSize), 0); err != nil {
		t.Fatal(err)
	}
	ok(t, "Reclaim v", vv.Reclaim())
	free := statvfs(t, fs).Bfree
	ok(t, "rename g onto v", a.Rename("g", f, b, "v", nil))
	if ino, err := b.Lookup("v"); err != nil || ino != fa.Ino {
		t.Fatalf("Lookup v = %d, %v", ino, err)
	}
	if _, err := fs.VGet(victim); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("replaced file still there: %v", err)
	}
	if st := statvfs(t, fs); st.Bfree != free+1 {
		t.Fatalf("replaced file's page not freed: Bfree %d, was %d", st.Bfree, free)
	}
	if n := attr(t, f).Nlink; n != 1 {
		t.Fatalf("moved file nlink %d", n)
	}

	// A referenced target keeps its storage until Inactive.
	w := create(t, fs, a, "w")
	ok(t, "rename v onto w", b.Rename("v", f, a, "w", w))
	if n := attr(t, w).Nlink; n != 0 {
		t.Fatalf("replaced referenced file nlink %d", n)
	}
	release(t, w)

	// A directory across directories: its ".." and both link counts.
	sub := mkdir(t, fs, a, "sub")
	mkdir(t, fs, sub, "inner")
	ok(t, "rename dir", a.Rename("sub", sub, b, "sub2", nil))
	if ino, err := sub.Lookup(".."); err != nil || ino != attr(t, b).Ino {
		t.Fatalf("moved dir's .. = %d, %v; want b", ino, err)
	}
	if n := attr(t, a).Nlink; n != 2 {
		t.Fatalf("old parent nlink %d, want 2", n)
	}
	if n := attr(t, b).Nlink; n != 3 {
		t.Fatalf("new parent nlink %d, want 3", n)
	}
	dots := map[string]uint64{}
	ok(t, "Readdir", sub.Readdir(0, func(d vnodeops.Dirent) bool { dots[d.Name] = d.Ino; return true }))
	if dots[".."] != attr(t, b).Ino {
		t.Fatalf("Readdir .. of moved dir = %d", dots[".."])
	}

	// A directory onto an empty directory in another parent.
	empty := mkdir(t, fs, a, "empty")
	ok(t, "rename dir onto empty dir", b.Rename("sub2", sub, a, "empty", empty))
	if n := attr(t, a).Nlink; n != 3 {
		t.Fatalf("a nlink %d after replacing its subdir, want 3", n)
	}
	if n := attr(t, b).Nlink; n != 2 {
		t.Fatalf("b nlink %d, want 2", n)
	}
	if n := attr(t, empty).Nlink; n != 0 {
		t.Fatalf("replaced dir nlink %d", n)
	}
	release(t, empty)
	// Within one directory onto an empty sibling: one subdir fewer.
	e2 := mkdir(t, fs, a, "e2")
	ok(t, "rename within dir onto empty dir", a.Rename("empty", sub, a, "e2", e2))
	if n := attr(t, a).Nlink; n != 3 {
		t.Fatalf("a nlink %d, want 3", n)
	}
	release(t, e2)

	// Defensive checks.
	nonEmpty := mkdir(t, fs, a, "full")
	create(t, fs, nonEmpty, "x")
	wantErr(t, "dir onto non-empty dir", a.Rename("e2", sub, a, "full", nonEmpty), syscall.ENOTEMPTY)
	ff := create(t, fs, a, "file")
	wantErr(t, "dir onto file", a.Rename("e2", sub, a, "file", ff), syscall.ENOTDIR)
	wantErr(t, "file onto dir", a.Rename("file", ff, a, "full", nonEmpty), syscall.EISDIR)
	inner := vget2(t, fs, sub, "inner")
	wantErr(t, "dir into itself", a.Rename("e2", sub, sub, "x", nil), syscall.EINVAL)
	wantErr(t, "dir into its subtree", a.Rename("e2", sub, inner, "x", nil), syscall.EINVAL)
	wantErr(t, "wrong fvp", a.Rename("file", sub, b, "x", nil), syscall.ENOENT)
	wantErr(t, "absent source", a.Rename("nope", ff, b, "x", nil), syscall.ENOENT)
	wantErr(t, "to ..", a.Rename("file", ff, b, "..", nil), syscall.EINVAL)

	// Two links of one inode: rename does nothing.
	ok(t, "Link", a.Link(ff, "file2"))
	ok(t, "rename onto own link", a.Rename("file", ff, a, "file2", ff))
	if got := names(t, a); !contains(got, "file") || !contains(got, "file2") {
		t.Fatalf("rename between links changed the directory: %v", got)
	}
	if n := attr(t, ff).Nlink; n != 2 {
		t.Fatalf("nlink %d after no-op rename", n)
	}

	// EMLINK when the new parent is full.
	fs.mu.Lock()
	b.(*node).nlink = LinkMax
	fs.mu.Unlock()
	wantErr(t, "dir into full parent", a.Rename("e2", sub, b, "x", nil), syscall.EMLINK)
	fs.mu.Lock()
	b.(*node).nlink = 2
	fs.mu.Unlock()
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func TestReaddirBasics(t *testing.T) {
	fs, root := newFS(t, Options{})
	d := mkdir(t, fs, root, "d")
	var got []vnodeops.Dirent
	ok(t, "Readdir", d.Readdir(0, func(e vnodeops.Dirent) bool { got = append(got, e); return true }))
	da := attr(t, d)
	if len(got) != 2 || got[0].Name != "." || got[0].Ino != da.Ino || got[0].Next != 2 ||
		got[1].Name != ".." || got[1].Ino != 2 || got[1].Next != 3 || got[0].Type != vnodeops.DT_DIR {
		t.Fatalf("empty dir entries %+v", got)
	}
	_, err := d.Create("x", 0o644, 0, 0)
	ok(t, "Create", err)
	if a := attr(t, d); a.Size != 3*direntSize {
		t.Fatalf("dir size %d", a.Size)
	}
	f := create(t, fs, d, "y")
	wantErr(t, "Readdir of file", f.Readdir(0, func(vnodeops.Dirent) bool { return true }), syscall.ENOTDIR)

	// The entry for which fn returns false is not consumed.
	var last uint64
	var stopped string
	ok(t, "Readdir", d.Readdir(0, func(e vnodeops.Dirent) bool {
		if e.Name == "x" {
			stopped = e.Name
			return false
		}
		last = e.Next
		return true
	}))
	var again string
	ok(t, "Readdir resume", d.Readdir(last, func(e vnodeops.Dirent) bool { again = e.Name; return false }))
	if stopped != "x" || again != "x" {
		t.Fatalf("refused entry not returned again: %q %q", stopped, again)
	}
	// A cookie past the end reads nothing.
	n := 0
	ok(t, "Readdir end", d.Readdir(1<<62, func(vnodeops.Dirent) bool { n++; return true }))
	if n != 0 {
		t.Fatalf("%d entries past the end", n)
	}
}

// TestReaddirResume reads a large directory a few entries at a time while
// entries are removed and added between the calls: every entry that
// survives the whole listing is seen exactly once.
func TestReaddirResume(t *testing.T) {
	fs, root := newFS(t, Options{})
	d := mkdir(t, fs, root, "d")
	const N = 1000
	for i := range N {
		_, err := d.Create(fmt.Sprintf("f%04d", i), 0o644, 0, 0)
		ok(t, "Create", err)
	}
	seen := map[string]int{}
	removed := map[string]bool{}
	var cookie uint64
	step, added := 0, 0
	for {
		k := 0
		var next uint64
		ok(t, "Readdir", d.Readdir(cookie, func(e vnodeops.Dirent) bool {
			if k == 7 {
				return false
			}
			k++
			seen[e.Name]++
			next = e.Next
			if e.Next == 0 {
				t.Fatalf("entry %q has Next 0", e.Name)
			}
			return true
		}))
		if k == 0 {
			break
		}
		cookie = next
		// Between calls: remove one entry already read, one not yet read,
		// and add a new one.
		step++
		for _, name := range []string{fmt.Sprintf("f%04d", (step*3)%N), fmt.Sprintf("f%04d", (step*37)%N)} {
			if !removed[name] {
				ok(t, "Remove "+name, d.Remove(name, nil))
				removed[name] = true
			}
		}
		if step <= 100 { // bounded, or the reader never reaches the end
			_, err := d.Create(fmt.Sprintf("new%04d", step), 0o644, 0, 0)
			ok(t, "Create new", err)
			added++
		}
	}
	for i := range N {
		name := fmt.Sprintf("f%04d", i)
		if removed[name] {
			if seen[name] > 1 {
				t.Errorf("%s seen %d times", name, seen[name])
			}
			continue
		}
		if seen[name] != 1 {
			t.Errorf("surviving %s seen %d times, want 1", name, seen[name])
		}
	}
	for name, n := range seen {
		if n != 1 {
			t.Errorf("%s seen %d times", name, n)
		}
	}
	if seen["."] != 1 || seen[".."] != 1 {
		t.Errorf(". and .. seen %d, %d times", seen["."], seen[".."])
	}
	// After the churn, a fresh listing holds exactly the live entries,
	// and compaction has not lost any.
	live := names(t, d)
	want := 2 + N - len(removed) + added
	if len(live) != want {
		t.Fatalf("fresh listing has %d entries, want %d", len(live), want)
	}
}

// TestReaddirConcurrent lists a directory over and over while other
// goroutines add and remove entries; the stable entries appear exactly once
// per pass. Run with -race.
func TestReaddirConcurrent(t *testing.T) {
	fs, root := newFS(t, Options{})
	d := mkdir(t, fs, root, "d")
	const stable = 300
	for i := range stable {
		_, err := d.Create(fmt.Sprintf("s%03d", i), 0o644, 0, 0)
		ok(t, "Create", err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("t%d-%d", w, i%50)
				if _, err := d.Create(name, 0o644, 0, 0); err != nil && !errors.Is(err, syscall.EEXIST) {
					t.Errorf("Create: %v", err)
					return
				}
				if i%3 == 0 {
					if err := d.Remove(name, nil); err != nil {
						t.Errorf("Remove: %v", err)
						return
					}
				}
			}
		}()
	}
	for pass := range 30 {
		count := map[string]int{}
		var cookie uint64
		for {
			k := 0
			ok(t, "Readdir", d.Readdir(cookie, func(e vnodeops.Dirent) bool {
				if k == 50 {
					return false
				}
				k++
				count[e.Name]++
				cookie = e.Next
				return true
			}))
			if k == 0 {
				break
			}
		}
		for i := range stable {
			if n := count[fmt.Sprintf("s%03d", i)]; n != 1 {
				t.Fatalf("pass %d: s%03d seen %d times", pass, i, n)
			}
		}
	}
	close(stop)
	wg.Wait()
}

func TestReadOnlyMount(t *testing.T) {
	drv, found := vnodeops.Lookup("tmpfs")
	if !found {
		t.Fatal("tmpfs not registered")
	}
	if drv.NeedsDevice || drv.Probe != nil {
		t.Fatalf("driver %+v", drv)
	}
	vfs, err := drv.Mount(vnodeops.MountArgs{Name: "ro", ReadOnly: true, Log: slog.New(slog.DiscardHandler)})
	ok(t, "Mount", err)
	fs := vfs.(*FS)
	root := vget(t, fs, vfs.Root())
	if st := statvfs(t, fs); st.Flags&vnodeops.StRdonly == 0 {
		t.Fatalf("statvfs flags %#x", st.Flags)
	}
	_, err = root.Create("f", 0o644, 0, 0)
	wantErr(t, "Create", err, syscall.EROFS)
	_, err = root.Mknod("f", vnodeops.S_IFIFO, 0, 0, 0)
	wantErr(t, "Mknod", err, syscall.EROFS)
	_, err = root.Mkdir("f", 0o755, 0, 0)
	wantErr(t, "Mkdir", err, syscall.EROFS)
	_, err = root.Symlink("f", "x", 0, 0)
	wantErr(t, "Symlink", err, syscall.EROFS)
	wantErr(t, "Link", root.Link(root, "f"), syscall.EROFS)
	wantErr(t, "Remove", root.Remove("f", nil), syscall.EROFS)
	wantErr(t, "Rmdir", root.Rmdir("f", nil), syscall.EROFS)
	wantErr(t, "Rename", root.Rename("a", root, root, "b", nil), syscall.EROFS)
	wantErr(t, "Setattr", root.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetMode, Mode: 0o700}), syscall.EROFS)
	_, err = root.Write([]byte("x"), 0)
	wantErr(t, "Write", err, syscall.EROFS)
	wantErr(t, "Access write", root.Access(vnodeops.AccessWrite, vnodeops.Root), syscall.EROFS)
	ok(t, "Access read", root.Access(vnodeops.AccessRead|vnodeops.AccessExec, vnodeops.Root))
	ok(t, "Open rdonly", root.Open(vnodeops.ORdonly))
	if got := names(t, root); len(got) != 2 {
		t.Fatalf("entries %v", got)
	}
	// A file made before the FS went read-only cannot be opened for
	// writing.
	fs.mu.Lock()
	fs.ro = false
	fs.mu.Unlock()
	f := create(t, fs, root, "f")
	fs.mu.Lock()
	fs.ro = true
	fs.mu.Unlock()
	wantErr(t, "Open wronly", f.Open(vnodeops.OWronly), syscall.EROFS)
	ok(t, "Unmount", vfs.Unmount(false))
}

func TestMountOptions(t *testing.T) {
	drv, _ := vnodeops.Lookup("tmpfs")
	mnt := func(o map[string]string) (*FS, error) {
		vfs, err := drv.Mount(vnodeops.MountArgs{Name: "t", Options: o, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			return nil, err
		}
		return vfs.(*FS), nil
	}
	fs, err := mnt(map[string]string{"size": "64m", "nodes": "10", "mode": "0700", "uid": "1000", "gid": "100"})
	ok(t, "Mount", err)
	st := statvfs(t, fs)
	if st.Blocks != 64<<20/PageSize || st.Files != 10 || st.Ffree != 9 || st.Namemax != 255 {
		t.Fatalf("statvfs %+v", st)
	}
	a := attr(t, vget(t, fs, fs.Root()))
	if a.Mode != vnodeops.S_IFDIR|0o700 || a.UID != 1000 || a.GID != 100 {
		t.Fatalf("root attr %+v", a)
	}
	for in, want := range map[string]uint64{"1": 1, "4096": 1, "4097": 2, "1k": 1, "2G": 2 << 30 / PageSize, "1T": 1 << 40 / PageSize} {
		fs, err := mnt(map[string]string{"size": in})
		ok(t, "Mount size="+in, err)
		if got := statvfs(t, fs).Blocks; got != want {
			t.Errorf("size=%s: %d blocks, want %d", in, got, want)
		}
	}
	fs, err = mnt(map[string]string{"size": "50%", "nodes": "2k"})
	ok(t, "Mount size=50%", err)
	if st := statvfs(t, fs); st.Blocks == 0 || st.Files != 2048 {
		t.Fatalf("statvfs %+v", st)
	}
	fs, err = mnt(map[string]string{"mode": "0"})
	ok(t, "Mount mode=0", err)
	if a := attr(t, vget(t, fs, fs.Root())); a.Mode != vnodeops.S_IFDIR {
		t.Fatalf("mode=0 gave %o", a.Mode)
	}
	// Unlimited: a large capacity, and usage counted.
	fs, err = mnt(nil)
	ok(t, "Mount", err)
	if st := statvfs(t, fs); st.Blocks < 1000 || st.Bfree != st.Blocks || st.Files < 1000 || st.Ffree != st.Files-1 {
		t.Fatalf("unlimited statvfs %+v", st)
	}
	for _, tc := range []struct {
		opts map[string]string
		key  string
	}{
		{map[string]string{"bogus": "1"}, "bogus"},
		{map[string]string{"size": "12q"}, "size"},
		{map[string]string{"size": ""}, "size"},
		{map[string]string{"size": "-1"}, "size"},
		{map[string]string{"size": "99999999999999g"}, "size"},
		{map[string]string{"size": "101%"}, "size"},
		{map[string]string{"nodes": "x"}, "nodes"},
		{map[string]string{"nodes": "5%"}, "nodes"},
		{map[string]string{"mode": "999"}, "mode"},
		{map[string]string{"mode": "17777"}, "mode"},
		{map[string]string{"uid": "-3"}, "uid"},
		{map[string]string{"gid": "4294967296"}, "gid"},
	} {
		_, err := mnt(tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.key) || !errors.Is(err, syscall.EINVAL) {
			t.Errorf("options %v: err %v, want EINVAL naming %q", tc.opts, err, tc.key)
		}
	}
}

func TestTimes(t *testing.T) {
	c := newClock()
	fs, root := newFS(t, Options{Now: c.Now})
	t0 := c.Now().UnixNano()
	if a := attr(t, root); a.Mtime != t0 || a.Btime != t0 {
		t.Fatalf("root times %+v", a)
	}
	t1 := c.tick()
	f := create(t, fs, root, "f")
	fa := attr(t, f)
	if fa.Atime != t1 || fa.Mtime != t1 || fa.Ctime != t1 || fa.Btime != t1 {
		t.Fatalf("new file times %+v", fa)
	}
	if ra := attr(t, root); ra.Mtime != t1 || ra.Ctime != t1 {
		t.Fatalf("dir times after create %+v", ra)
	}
	t2 := c.tick()
	if _, err := f.Write([]byte("abc"), 0); err != nil {
		t.Fatal(err)
	}
	if a := attr(t, f); a.Mtime != t2 || a.Ctime != t2 || a.Atime != t1 {
		t.Fatalf("times after write %+v", a)
	}
	c.tick()
	f.Read(make([]byte, 3), 0)
	if a := attr(t, f); a.Atime != t1 {
		t.Fatalf("read changed atime: %+v", a)
	}
	t4 := c.tick()
	ok(t, "chmod", f.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetMode, Mode: vnodeops.S_IFDIR | 0o4750}))
	if a := attr(t, f); a.Mode != vnodeops.S_IFREG|0o4750 || a.Ctime != t4 || a.Mtime != t2 {
		t.Fatalf("after chmod %+v", a)
	}
	t5 := c.tick()
	ok(t, "truncate", f.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetSize, Size: 3}))
	if a := attr(t, f); a.Mtime != t5 || a.Ctime != t5 {
		t.Fatalf("same-size truncate must set mtime and ctime: %+v", a)
	}
	c.tick()
	ok(t, "utimes", f.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetAtime | vnodeops.SetMtime | vnodeops.SetCtime,
		Atime: 11, Mtime: 22, Ctime: 33}))
	if a := attr(t, f); a.Atime != 11 || a.Mtime != 22 || a.Ctime != 33 {
		t.Fatalf("explicit times %+v", a)
	}
	t7 := c.tick()
	ok(t, "chown+flags", f.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetUID | vnodeops.SetGID | vnodeops.SetFlags,
		UID: 5, GID: 6, Flags: 0x20}))
	if a := attr(t, f); a.UID != 5 || a.GID != 6 || a.Flags != 0x20 || a.Ctime != t7 || a.Mtime != 22 {
		t.Fatalf("after chown %+v", a)
	}
	t8 := c.tick()
	ok(t, "Remove", root.Remove("f", f))
	if a := attr(t, f); a.Ctime != t8 {
		t.Fatalf("unlink did not set ctime %+v", a)
	}
	if a := attr(t, root); a.Mtime != t8 || a.Ctime != t8 {
		t.Fatalf("dir times after remove %+v", a)
	}
}

func TestAccessAndOpen(t *testing.T) {
	fs, root := newFS(t, Options{})
	ino, err := root.Create("f", 0o640, 1000, 100)
	ok(t, "Create", err)
	f := vget(t, fs, ino)
	owner := vnodeops.Cred{UID: 1000, GID: 1}
	group := vnodeops.Cred{UID: 2000, GID: 1, Groups: []uint32{100}}
	other := vnodeops.Cred{UID: 3000, GID: 3}
	ok(t, "owner rw", f.Access(vnodeops.AccessRead|vnodeops.AccessWrite, owner))
	wantErr(t, "owner x", f.Access(vnodeops.AccessExec, owner), syscall.EACCES)
	ok(t, "group r", f.Access(vnodeops.AccessRead, group))
	wantErr(t, "group w", f.Access(vnodeops.AccessWrite, group), syscall.EACCES)
	wantErr(t, "other r", f.Access(vnodeops.AccessRead, other), syscall.EACCES)
	ok(t, "root rw", f.Access(vnodeops.AccessRead|vnodeops.AccessWrite, vnodeops.Root))
	wantErr(t, "Open dir for writing", root.Open(vnodeops.ORdwr), syscall.EISDIR)
	ok(t, "Open file", f.Open(vnodeops.ORdwr))
	ok(t, "Close", f.Close(vnodeops.ORdwr))
	ok(t, "Fsync", f.Fsync(false))
	ok(t, "Sync", fs.Sync())
}

func TestForeignVnode(t *testing.T) {
	fs1, root1 := newFS(t, Options{})
	_, root2 := newFS(t, Options{})
	f := create(t, fs1, root1, "f")
	wantErr(t, "Link across", root2.Link(f, "f"), syscall.EXDEV)
	wantErr(t, "Rename across", root1.Rename("f", f, root2, "f", nil), syscall.EXDEV)
}

// TestConcurrentIO hammers one file and the directory from several
// goroutines; -race checks the locking.
func TestConcurrentIO(t *testing.T) {
	fs, root := newFS(t, Options{Size: 1 << 20})
	f := create(t, fs, root, "f")
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := bytes.Repeat([]byte{byte(w)}, 1000)
			q := make([]byte, 1000)
			for i := range 200 {
				off := int64((w*200 + i) * 1000)
				if _, err := f.Write(p, off%(512<<10)); err != nil {
					t.Errorf("Write: %v", err)
					return
				}
				if _, err := f.Read(q, off%(512<<10)); err != nil {
					t.Errorf("Read: %v", err)
					return
				}
				f.Getattr()
				fs.Statvfs()
				name := fmt.Sprintf("w%d", w)
				if _, err := root.Create(name, 0o644, 0, 0); err != nil {
					t.Errorf("Create: %v", err)
					return
				}
				if err := root.Remove(name, nil); err != nil {
					t.Errorf("Remove: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestUnmount(t *testing.T) {
	fs, root := newFS(t, Options{})
	f := create(t, fs, root, "f")
	f.Write([]byte("x"), 0)
	ok(t, "Unmount", fs.Unmount(true))
	// Stale vnodes after a forced unmount fail cleanly instead of
	// panicking.
	if _, err := f.Write([]byte("y"), 0); err == nil {
		t.Fatal("Write after Unmount succeeded")
	}
	if _, err := root.Create("g", 0o644, 0, 0); err == nil {
		t.Fatal("Create after Unmount succeeded")
	}
}

func setSize(n uint64) vnodeops.SetAttr {
	return vnodeops.SetAttr{Mask: vnodeops.SetSize, Size: n}
}
