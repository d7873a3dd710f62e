package ffs

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rump9p/rump9p/tests/fuzz/fuzzfs"
	"github.com/rump9p/rump9p/tests/hosttools"
	"github.com/rump9p/rump9p/vnodeops"
)

// The fuzz input is either a whole image (when it carries an FFS
// superblock) or in fuzzfs's patch form: a byte choosing a base image
// (fuzzBases), then 5-byte patches XORed into it. The bases are small
// images made with makefs at test time, so the seed corpus in
// testdata/fuzz stays a few bytes an input.

// fuzzBases are the base images: UFS1 little-endian and UFS2
// big-endian, both made from the same small tree, both writable.
var fuzzBases = []variant{
	{"fuzz-ufs1-le", 1, "le", 4096, 512},
	{"fuzz-ufs2-be", 2, "be", 8192, 1024},
}

var (
	fuzzBaseOnce sync.Once
	fuzzBase     [][]byte
	fuzzSpans    []int64
	fuzzBaseErr  error
)

func fuzzBaseImages(t testing.TB) [][]byte {
	fuzzBaseOnce.Do(func() {
		fuzzBase, fuzzBaseErr = makeFuzzBases(t)
		for _, img := range fuzzBase {
			fuzzSpans = append(fuzzSpans, fuzzfs.Span(img))
		}
	})
	if fuzzBaseErr != nil {
		t.Fatal(fuzzBaseErr)
	}
	return fuzzBase
}

func makeFuzzBases(t testing.TB) ([][]byte, error) {
	dir, err := os.MkdirTemp("", "ffs-fuzz-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "d", "e"), 0o755)
	os.MkdirAll(filepath.Join(src, "big"), 0o755)
	os.WriteFile(filepath.Join(src, "small"), []byte("hello"), 0o644)
	os.WriteFile(filepath.Join(src, "d", "multi"), pattern(15*4096+100, 7), 0o644)
	os.WriteFile(filepath.Join(src, "d", "e", "x"), []byte("x"), 0o600)
	for i := range 40 {
		os.WriteFile(filepath.Join(src, "big", fmt.Sprintf("entry number %02d with a long name", i)), nil, 0o644)
	}
	os.Symlink("small", filepath.Join(src, "fast"))
	os.Symlink("a/very/long/target/that/does/not/fit/into/the/inode/at/all/really/not/even/in/ufs2/no/it/does/not", filepath.Join(src, "slow"))
	os.Link(filepath.Join(src, "small"), filepath.Join(src, "d", "hard"))
	var imgs [][]byte
	for _, v := range fuzzBases {
		img := filepath.Join(dir, v.name)
		args := []string{"-t", "ffs", "-B", v.order, "-s", "384k", "-T", "1600000000",
			"-o", fmt.Sprintf("version=%d,bsize=%d,fsize=%d", v.version, v.bsize, v.fsize), img, src}
		if out, err := exec.Command(hosttools.Need(t, "makefs"), args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("makefs %v: %v\n%s", args, err, out)
		}
		data, err := os.ReadFile(img)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, data)
	}
	return imgs, nil
}

// fuzzDevice turns an input into the device to mount.
func fuzzDevice(t testing.TB, data []byte, readOnly bool) *fuzzfs.Overlay {
	if Probe(bytesReader(data), int64(len(data))) {
		return fuzzfs.NewOverlay("fuzz", data, readOnly)
	}
	imgs := fuzzBaseImages(t)
	base, patches := fuzzfs.Decode(data, len(imgs))
	dev := fuzzfs.NewOverlay("fuzz", imgs[base], readOnly)
	dev.Apply(patches, fuzzSpans[base])
	return dev
}

type bytesReader []byte

func (b bytesReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(b)) {
		return 0, os.ErrNotExist
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, os.ErrNotExist
	}
	return n, nil
}

// FuzzMount mounts a patched image read-only and walks all of it: every
// directory read and resumed, every name looked up, every file and link
// read. It must not panic or hang, and every error must be an errno.
func FuzzMount(f *testing.F) {
	hostTools(f)
	for i := range fuzzBaseImages(f) {
		f.Add(fuzzfs.Input(byte(i)))
	}
	f.Fuzz(func(t *testing.T, data []byte) { runFuzz(t, data, false) })
}

// FuzzMountRW mounts a patched image read-write, walks it, changes it
// (creates, writes, truncates, links, renames, removes) and walks it
// again.
func FuzzMountRW(f *testing.F) {
	hostTools(f)
	for i := range fuzzBaseImages(f) {
		f.Add(fuzzfs.Input(byte(i)))
	}
	f.Fuzz(func(t *testing.T, data []byte) { runFuzz(t, data, true) })
}

func hostTools(t testing.TB) {
	t.Helper()
	hosttools.Need(t, "makefs")
}

func runFuzz(t *testing.T, data []byte, rw bool) {
	dev := fuzzDevice(t, data, !rw)
	fuzzfs.Run(t, rw, func() (vnodeops.FS, error) {
		return Mount(vnodeops.MountArgs{Name: "fuzz", Dev: dev, ReadOnly: !rw, Log: slog.New(slog.DiscardHandler)})
	})
}

// TestFuzzBases checks that each base image mounts and walks, and that
// the fuzz target's changes leave an image checkImage finds consistent.
func TestFuzzBases(t *testing.T) {
	for i, img := range fuzzBaseImages(t) {
		t.Run(fuzzBases[i].name, func(t *testing.T) {
			dev := fuzzfs.NewOverlay("base", img, false)
			fs, err := Mount(vnodeops.MountArgs{Name: "base", Dev: dev, Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			fuzzfs.CheckBase(t, fs, dev, true, 45, mustCheck)
		})
	}
}
