package cd9660

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rump9p/rump9p/blkdev"
	"github.com/rump9p/rump9p/tests/hosttools"
	"github.com/rump9p/rump9p/vnodeops"
)

// mkiso makes an image of the tree src with xorriso's mkisofs emulation
// and args (e.g. "-R", "-J") and returns its path.
func mkiso(t testing.TB, src string, args ...string) string {
	t.Helper()
	return mkisoAfter(t, nil, src, args...)
}

// mkisoAfter is mkiso with xorriso commands pre before the mkisofs
// emulation (e.g. "-compliance", "new_rr").
func mkisoAfter(t testing.TB, pre []string, src string, args ...string) string {
	t.Helper()
	xorriso := hosttools.Need(t, "xorriso")
	img := filepath.Join(t.TempDir(), "img.iso")
	a := append(append(slices.Clip(pre), "-as", "mkisofs", "-quiet"), args...)
	a = append(a, "-o", img, src)
	cmd := exec.Command(xorriso, a...)
	// Fixed times and ids, so that images are reproducible.
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1600000000")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xorriso %s: %v\n%s", strings.Join(a, " "), err, out)
	}
	return img
}

// logBuf collects log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the log lines.
func (l *logBuf) lines() []string {
	s := strings.TrimSpace(l.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// mountBytes mounts an image held in memory; the log goes to the
// returned buffer.
func mountBytes(t testing.TB, img []byte, opts map[string]string) (*fsys, *logBuf, error) {
	t.Helper()
	lb := &logBuf{}
	dev := blkdev.NewMemDeviceFrom(img, true)
	fs, err := Mount(vnodeops.MountArgs{Name: "test", Dev: dev, ReadOnly: true, Options: opts,
		Log: slog.New(slog.NewTextHandler(lb, nil))})
	if err != nil {
		return nil, lb, err
	}
	return fs.(*fsys), lb, nil
}

// mountFile mounts the image at path, failing the test on error.
func mountFile(t testing.TB, path string, opts map[string]string) (*fsys, *logBuf) {
	t.Helper()
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fs, lb, err := mountBytes(t, img, opts)
	if err != nil {
		t.Fatalf("mount %s: %v\nlog: %s", path, err, lb)
	}
	t.Cleanup(func() { fs.Unmount(false) })
	return fs, lb
}

// file is what a walk finds at a path.
type file struct {
	ino  uint64
	attr vnodeops.Attr
	data []byte // regular files
	link string // symbolic links
}

// walk reads the whole tree of fs by path ("" is the root), checking as
// the kernel does that each directory's ".." is the directory it was
// found in and that Readdir and Lookup agree.
func walk(t testing.TB, fs vnodeops.FS) map[string]file {
	t.Helper()
	out := map[string]file{}
	var visit func(path string, ino, parent uint64)
	visit = func(path string, ino, parent uint64) {
		v, err := fs.VGet(ino)
		if err != nil {
			t.Fatalf("VGet(%s, %d): %v", path, ino, err)
		}
		a, err := v.Getattr()
		if err != nil {
			t.Fatalf("Getattr(%s): %v", path, err)
		}
		f := file{ino: ino, attr: a}
		switch a.Mode & vnodeops.S_IFMT {
		case vnodeops.S_IFREG:
			f.data = readAll(t, v, int64(a.Size))
		case vnodeops.S_IFLNK:
			if f.link, err = v.Readlink(); err != nil {
				t.Fatalf("Readlink(%s): %v", path, err)
			}
		case vnodeops.S_IFDIR:
			dd, err := v.Lookup("..")
			if err != nil || dd != parent {
				t.Fatalf("Lookup(%s/..) = %d, %v; want %d", path, dd, err, parent)
			}
			var ents []vnodeops.Dirent
			if err := v.Readdir(0, func(d vnodeops.Dirent) bool { ents = append(ents, d); return true }); err != nil {
				t.Fatalf("Readdir(%s): %v", path, err)
			}
			if len(ents) < 2 || ents[0].Name != "." || ents[0].Ino != ino || ents[1].Name != ".." || ents[1].Ino != parent {
				t.Fatalf("Readdir(%s) starts %v", path, ents[:min(2, len(ents))])
			}
			for _, d := range ents[2:] {
				got, err := v.Lookup(d.Name)
				if err != nil || got != d.Ino {
					t.Fatalf("Lookup(%s/%s) = %d, %v; Readdir said %d", path, d.Name, got, err, d.Ino)
				}
				visit(path+"/"+d.Name, d.Ino, ino)
			}
		}
		out[path] = f
		v.Inactive()
		v.Reclaim()
	}
	visit("", fs.Root(), fs.Root())
	return out
}

// readAll reads a file whole in odd-sized pieces.
func readAll(t testing.TB, v vnodeops.Vnode, size int64) []byte {
	t.Helper()
	var data []byte
	buf := make([]byte, 7777)
	for {
		n, err := v.Read(buf, int64(len(data)))
		if err != nil {
			t.Fatalf("Read at %d: %v", len(data), err)
		}
		if n == 0 {
			break
		}
		data = append(data, buf[:n]...)
		if int64(len(data)) > size+1<<20 {
			t.Fatalf("read %d bytes of a %d-byte file", len(data), size)
		}
	}
	return data
}

// vnodeAt returns the vnode of an absolute path ("/a/b") of fs.
func vnodeAt(t testing.TB, fs vnodeops.FS, path string) vnodeops.Vnode {
	t.Helper()
	ino, err := lookupPath(fs, path)
	if err != nil {
		t.Fatalf("lookup %s: %v", path, err)
	}
	v, err := fs.VGet(ino)
	if err != nil {
		t.Fatalf("VGet(%s): %v", path, err)
	}
	return v
}
