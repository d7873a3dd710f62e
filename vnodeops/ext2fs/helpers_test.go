package ext2fs

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/rump9p/rump9p/tests/hosttools"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

// needTools fails the test unless mke2fs, e2fsck and debugfs exist.
func needTools(t testing.TB) {
	t.Helper()
	hosttools.NeedAll(t, "mke2fs", "e2fsck", "debugfs")
}

// mkfs makes an image of size (e.g. "64M") at img with mke2fs and args,
// populated from src when src is not empty.
func mkfs(t testing.TB, img, size, src string, args ...string) {
	t.Helper()
	needTools(t)
	a := []string{"-q", "-F"}
	a = append(a, args...)
	if src != "" {
		a = append(a, "-d", src)
	}
	a = append(a, img, size)
	cmd := exec.Command("mke2fs", a...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mke2fs %s: %v\n%s", strings.Join(a, " "), err, out)
	}
}

// fsck runs e2fsck -fn on img and fails unless it reports a clean file
// system.
func fsck(t testing.TB, img string) {
	t.Helper()
	needTools(t)
	out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck -fn %s: %v\n%s", img, err, out)
	}
}

// debugfs runs a debugfs request on img.
func debugfs(t testing.TB, img string, write bool, req string) string {
	t.Helper()
	a := []string{"-R", req, img}
	if write {
		a = append([]string{"-w"}, a...)
	}
	out, err := exec.Command("debugfs", a...).CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs %s: %v\n%s", req, err, out)
	}
	return string(out)
}

// boot mounts img at /mnt in a new kernel and returns the kernel and a
// root process. The kernel is shut down at cleanup unless the test does it.
func boot(t testing.TB, img string, ro bool, opts map[string]string) (*rumpcore.Kernel, *rumpcore.Proc) {
	t.Helper()
	k, err := rumpcore.Init(rumpcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Mount("/mnt", rumpcore.MountSpec{Type: "ext2fs", Image: img, ReadOnly: ro, Options: opts}); err != nil {
		k.Shutdown()
		t.Fatalf("mount %s: %v", img, err)
	}
	t.Cleanup(func() { k.Shutdown() })
	p := k.NewProc(vnodeops.Root)
	p.Umask(0)
	return k, p
}

// ---- Source trees ----

type treeOpts struct {
	smallFiles int   // small files spread over subdirectories
	bigDir     int   // entries of the one large directory (htree)
	bigFile    int64 // size of one large file
	owners     bool  // vary uid/gid, with 32-bit ids
}

var (
	treeMu    sync.Mutex
	treeCache = map[treeOpts]string{}
	treeRoot  string
)

// sourceTree returns a directory tree built once per test binary for o.
func sourceTree(t testing.TB, o treeOpts) string {
	t.Helper()
	treeMu.Lock()
	defer treeMu.Unlock()
	if d, ok := treeCache[o]; ok {
		return d
	}
	if treeRoot == "" {
		d, err := os.MkdirTemp("", "ext2fs-src-")
		if err != nil {
			t.Fatal(err)
		}
		treeRoot = d
	}
	dir := filepath.Join(treeRoot, fmt.Sprintf("t%d", len(treeCache)))
	if err := buildTree(dir, o); err != nil {
		t.Fatal(err)
	}
	treeCache[o] = dir
	return dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if treeRoot != "" {
		os.RemoveAll(treeRoot)
	}
	os.Exit(code)
}

func buildTree(dir string, o treeOpts) error {
	r := rand.New(rand.NewPCG(1, 2))
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("building tree: %v", p)
			}
		}()
		must(os.MkdirAll(dir, 0o755))
		stamp := func(p string) {
			ts := time.Unix(1500000000+r.Int64N(300000000), r.Int64N(1e9))
			must(os.Chtimes(p, ts, ts))
		}
		// Small files of assorted sizes over a few levels.
		for i := 0; i < o.smallFiles; i++ {
			sub := filepath.Join(dir, fmt.Sprintf("d%02d", i%37), fmt.Sprintf("e%d", i%5))
			must(os.MkdirAll(sub, 0o750))
			p := filepath.Join(sub, fmt.Sprintf("f%05d", i))
			n := r.IntN(6000)
			if i%50 == 0 {
				n = 0
			}
			data := make([]byte, n)
			for j := range data {
				data[j] = byte(r.Uint32())
			}
			must(os.WriteFile(p, data, 0o644))
			must(os.Chmod(p, os.FileMode(0o400|r.IntN(0o400))))
			if o.owners {
				must(os.Lchown(p, 1000+i%3, 100+i%2))
				if i%97 == 0 {
					must(os.Lchown(p, 70000+i, 80000+i)) // needs the high halves
				}
			}
			stamp(p)
		}
		// Symlinks: fast (< 60 bytes) and slow.
		must(os.Symlink("short/target", filepath.Join(dir, "lnk-short")))
		must(os.Symlink(strings.Repeat("long-component/", 20)+"end", filepath.Join(dir, "lnk-long")))
		must(os.Symlink(strings.Repeat("x", 59), filepath.Join(dir, "lnk-59")))
		must(os.Symlink(strings.Repeat("y", 60), filepath.Join(dir, "lnk-60")))
		// Hard links.
		must(os.WriteFile(filepath.Join(dir, "hl-a"), []byte("hard linked\n"), 0o600))
		must(os.Link(filepath.Join(dir, "hl-a"), filepath.Join(dir, "hl-b")))
		must(os.MkdirAll(filepath.Join(dir, "hl-dir"), 0o755))
		must(os.Link(filepath.Join(dir, "hl-a"), filepath.Join(dir, "hl-dir", "hl-c")))
		// Sparse files: holes at the start, middle and end.
		sp := func(name string, size int64, at ...int64) {
			f, err := os.Create(filepath.Join(dir, name))
			must(err)
			for _, a := range at {
				_, err := f.WriteAt([]byte(fmt.Sprintf("data at %d", a)), a)
				must(err)
			}
			must(f.Truncate(size))
			must(f.Close())
		}
		sp("sparse-mid", 20<<20, 0, 10<<20)
		sp("sparse-start", 5<<20, 5<<20-100)
		sp("sparse-end", 9<<20, 4096)
		sp("sparse-all", 3<<20)
		// Many small extents: an extent tree of depth 2 with 1 KiB blocks.
		many := make([]int64, 1000)
		for i := range many {
			many[i] = int64(i) * 8192
		}
		sp("sparse-many", 1000*8192, many...)
		// A tiny directory (inline with inline_data).
		must(os.MkdirAll(filepath.Join(dir, "tinydir"), 0o755))
		must(os.WriteFile(filepath.Join(dir, "tinydir", "t"), []byte("tiny"), 0o644))
		// Directories with odd modes.
		must(os.MkdirAll(filepath.Join(dir, "modes", "sticky"), 0o755))
		must(os.Chmod(filepath.Join(dir, "modes", "sticky"), 0o1777))
		must(os.WriteFile(filepath.Join(dir, "modes", "setuid"), []byte("#!/bin/sh\n"), 0o755))
		must(os.Chmod(filepath.Join(dir, "modes", "setuid"), 0o4755))
		must(syscall.Mkfifo(filepath.Join(dir, "modes", "fifo"), 0o640))
		must(syscall.Mknod(filepath.Join(dir, "modes", "chr"), syscall.S_IFCHR|0o600, int(mkdev(1, 3))))
		must(syscall.Mknod(filepath.Join(dir, "modes", "blk-big"), syscall.S_IFBLK|0o600, int(mkdev(300, 70000))))
		if o.bigDir > 0 {
			bd := filepath.Join(dir, "bigdir")
			must(os.MkdirAll(bd, 0o755))
			for i := 0; i < o.bigDir; i++ {
				must(os.WriteFile(filepath.Join(bd, fmt.Sprintf("entry-with-a-longish-name-%06d", i)), nil, 0o644))
			}
		}
		if o.bigFile > 0 {
			f, err := os.Create(filepath.Join(dir, "bigfile"))
			must(err)
			buf := make([]byte, 1<<20)
			for off := int64(0); off < o.bigFile; off += int64(len(buf)) {
				for j := 0; j < len(buf); j += 8 {
					le.PutUint64(buf[j:], uint64(off+int64(j))*0x9E3779B97F4A7C15)
				}
				n := min(int64(len(buf)), o.bigFile-off)
				_, err := f.Write(buf[:n])
				must(err)
			}
			must(f.Close())
		}
		// Directory times last, after their contents.
		must(filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			must(err)
			if fi.IsDir() {
				stamp(p)
			}
			return nil
		}))
	}()
	return err
}

// ---- Comparing a tree through the kernel with the host's ----

type cmpOpts struct {
	nsec      bool // the image keeps nanoseconds
	checkData bool
	// skipPrefix skips files whose base name starts with it (a tool bug:
	// mke2fs 1.47 -d with inline_data drops a trailing hole's size).
	skipPrefix string
}

// compareTree walks src on the host and the same tree at mnt through p,
// and compares the names, types, modes, owners, sizes, mtimes, link
// counts, symlink targets, device numbers and contents.
func compareTree(t *testing.T, p *rumpcore.Proc, mnt, src string, o cmpOpts) int {
	t.Helper()
	count := 0
	err := filepath.Walk(src, func(hp string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, hp)
		if o.skipPrefix != "" && !fi.IsDir() && strings.HasPrefix(fi.Name(), o.skipPrefix) {
			return nil
		}
		gp := mnt
		if rel != "." {
			gp = mnt + "/" + filepath.ToSlash(rel)
		}
		st := fi.Sys().(*syscall.Stat_t)
		a, err := p.Lstat(gp)
		if err != nil {
			return fmt.Errorf("lstat %s: %v", gp, err)
		}
		count++
		if a.Mode != st.Mode {
			return fmt.Errorf("%s: mode %#o, want %#o", rel, a.Mode, st.Mode)
		}
		if a.UID != st.Uid || a.GID != st.Gid {
			return fmt.Errorf("%s: owner %d:%d, want %d:%d", rel, a.UID, a.GID, st.Uid, st.Gid)
		}
		if !fi.IsDir() && a.Size != uint64(st.Size) {
			return fmt.Errorf("%s: size %d, want %d", rel, a.Size, st.Size)
		}
		if (!fi.IsDir() || rel != ".") && a.Nlink != uint32(st.Nlink) {
			return fmt.Errorf("%s: nlink %d, want %d", rel, a.Nlink, st.Nlink)
		}
		if fi.Mode()&os.ModeSymlink == 0 && rel != "." {
			want := st.Mtim.Sec*1e9 + st.Mtim.Nsec
			// mke2fs -d (1.47) copies whole seconds only.
			if !o.nsec {
				a.Mtime -= a.Mtime % 1e9
				want = st.Mtim.Sec * 1e9
			}
			if a.Mtime != want {
				return fmt.Errorf("%s: mtime %d, want %d", rel, a.Mtime, want)
			}
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			want, _ := os.Readlink(hp)
			got, err := p.Readlink(gp)
			if err != nil || got != want {
				return fmt.Errorf("%s: readlink %q, %v; want %q", rel, got, err, want)
			}
		case fi.Mode()&os.ModeDevice != 0:
			if a.Rdev != st.Rdev {
				return fmt.Errorf("%s: rdev %#x, want %#x", rel, a.Rdev, st.Rdev)
			}
		case fi.Mode().IsRegular() && o.checkData:
			if err := compareFile(p, gp, hp); err != nil {
				return fmt.Errorf("%s: %v", rel, err)
			}
			if fi.Size() > 1<<20 && strings.HasPrefix(filepath.Base(hp), "sparse") && a.Blocks*512 >= uint64(fi.Size()) {
				return fmt.Errorf("%s: sparse file takes %d blocks", rel, a.Blocks)
			}
		case fi.IsDir():
			if err := compareDir(p, gp, hp); err != nil {
				return fmt.Errorf("%s: %v", rel, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return count
}

func compareFile(p *rumpcore.Proc, gp, hp string) error {
	want, err := os.ReadFile(hp)
	if err != nil {
		return err
	}
	fd, err := p.Open(gp, syscall.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("open: %v", err)
	}
	defer p.Close(fd)
	got := make([]byte, 0, len(want))
	buf := make([]byte, 256<<10)
	for {
		n, err := p.Read(fd, buf)
		if err != nil {
			return fmt.Errorf("read: %v", err)
		}
		if n == 0 {
			break
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("content differs (len %d, want %d)", len(got), len(want))
	}
	return nil
}

// listDir reads a whole directory through p with Getdents batches of n.
func listDir(p *rumpcore.Proc, gp string, n int) ([]vnodeops.Dirent, error) {
	fd, err := p.Open(gp, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer p.Close(fd)
	var out []vnodeops.Dirent
	for {
		ds, err := p.Getdents(fd, n)
		if err != nil {
			return out, err
		}
		if len(ds) == 0 {
			return out, nil
		}
		out = append(out, ds...)
	}
}

func compareDir(p *rumpcore.Proc, gp, hp string) error {
	ents, err := os.ReadDir(hp)
	if err != nil {
		return err
	}
	want := []string{".", ".."}
	for _, e := range ents {
		want = append(want, e.Name())
	}
	ds, err := listDir(p, gp, 100)
	if err != nil {
		return fmt.Errorf("getdents: %v", err)
	}
	var got []string
	for _, d := range ds {
		if d.Name == "lost+found" && filepath.Base(gp) == "mnt" {
			continue
		}
		got = append(got, d.Name)
		if d.Next == 0 {
			return fmt.Errorf("entry %q has Next 0", d.Name)
		}
		if d.Type == vnodeops.DT_UNKNOWN {
			return fmt.Errorf("entry %q has no type", d.Name)
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
		return fmt.Errorf("entries differ: got %d, want %d", len(got), len(want))
	}
	return nil
}

// writeAll creates (or truncates) path with data through p.
func writeAll(t testing.TB, p *rumpcore.Proc, path string, data []byte, perm uint32) {
	t.Helper()
	fd, err := p.Open(path, syscall.O_CREAT|syscall.O_WRONLY|syscall.O_TRUNC, perm)
	if err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
	if n, err := p.Write(fd, data); err != nil || n != len(data) {
		t.Fatalf("write %s: %d, %v", path, n, err)
	}
	if err := p.Close(fd); err != nil {
		t.Fatalf("close %s: %v", path, err)
	}
}

func isErrno(err error, e syscall.Errno) bool { return errors.Is(err, e) }

func mkdirAllWrite(p string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, nil, 0o644)
}
