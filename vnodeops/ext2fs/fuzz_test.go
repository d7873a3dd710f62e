package ext2fs

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rump9p/rump9p/tests/fuzz/fuzzfs"
	"github.com/rump9p/rump9p/vnodeops"
)

// The fuzz input is either a whole image (when it carries the ext2 magic
// at its place) or in fuzzfs's patch form: a byte choosing a base image
// (fuzzBases), then 5-byte patches XORed into it. The bases are small
// images made with mke2fs at test time, so the seed corpus in
// testdata/fuzz stays a few bytes an input.

// fuzzBases are the base images: ext2 with 1 KiB blocks (read-write), and
// ext4 without journal or checksums (read-only: extents, flex_bg, 64bit,
// inline data, an htree directory, extended attributes in the inode and
// in a block, a sparse file), both made from the same tree.
var fuzzBases = []struct {
	size string
	args []string
}{
	{"128K", []string{"-t", "ext2", "-N", "96"}},
	{"256K", []string{"-t", "ext4", "-N", "128", "-O", "^has_journal,^metadata_csum,^resize_inode,inline_data"}},
}

var (
	fuzzBaseOnce sync.Once
	fuzzBase     [][]byte
	fuzzSpans    []int64 // fuzzfs.Span of each base
	fuzzBaseErr  error
)

// fuzzBaseImages makes (once) the base images, deterministically (fixed
// UUID, hash seed and time).
func fuzzBaseImages(t testing.TB) [][]byte {
	needTools(t)
	fuzzBaseOnce.Do(func() {
		fuzzBase, fuzzBaseErr = makeFuzzBases()
		for _, img := range fuzzBase {
			fuzzSpans = append(fuzzSpans, fuzzfs.Span(img))
		}
	})
	if fuzzBaseErr != nil {
		t.Fatal(fuzzBaseErr)
	}
	return fuzzBase
}

func makeFuzzBases() ([][]byte, error) {
	dir, err := os.MkdirTemp("", "ext2fs-fuzz-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "src")
	fill := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + 1)
		}
		return b
	}
	os.MkdirAll(filepath.Join(src, "d", "e"), 0o755)
	os.MkdirAll(filepath.Join(src, "big"), 0o755)
	os.WriteFile(filepath.Join(src, "small"), []byte("hello"), 0o644)
	os.WriteFile(filepath.Join(src, "d", "multi"), fill(15000), 0o644)
	os.WriteFile(filepath.Join(src, "d", "e", "x"), []byte("x"), 0o600)
	for i := range 40 {
		os.WriteFile(filepath.Join(src, "big", fmt.Sprintf("entry number %02d with a long name", i)), nil, 0o644)
	}
	if f, err := os.Create(filepath.Join(src, "sparse")); err == nil {
		f.WriteAt([]byte("end"), 40000)
		f.Close()
	}
	os.Symlink("small", filepath.Join(src, "fast"))
	os.Symlink("a/very/long/target/that/does/not/fit/into/the/inode/at/all/really", filepath.Join(src, "slow"))
	os.Link(filepath.Join(src, "small"), filepath.Join(src, "d", "hard"))
	var imgs [][]byte
	for i, b := range fuzzBases {
		img := filepath.Join(dir, fmt.Sprintf("base%d.img", i))
		args := append([]string{"-q", "-F", "-b", "1024", "-m", "0",
			"-U", "6d9e0f8a-7a1c-4c65-9c43-1f5b9f7e0001", "-E", "hash_seed=6d9e0f8a-7a1c-4c65-9c43-1f5b9f7e0002"}, b.args...)
		cmds := [][]string{
			append([]string{"mke2fs"}, append(args, "-d", src, img, b.size)...),
			// -D indexes the directory big (an htree).
			{"e2fsck", "-fyD", img},
			{"debugfs", "-w", "-R", "ea_set /small user.in-inode hello", img},
			{"debugfs", "-w", "-R", "ea_set /d/multi user.in-block " + strings.Repeat("v", 300), img},
		}
		for _, c := range cmds {
			cmd := exec.Command(c[0], c[1:]...)
			cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1600000000")
			// e2fsck exits 1 when it has changed the image (the index).
			if out, err := cmd.CombinedOutput(); err != nil && !(c[0] == "e2fsck" && cmd.ProcessState.ExitCode() == 1) {
				return nil, fmt.Errorf("%v: %v\n%s", c, err, out)
			}
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
	if len(data) >= sbOffset+sbSize && le.Uint16(data[sbOffset+sbMagicOff:]) == sbMagic {
		return fuzzfs.NewOverlay("fuzz", data, readOnly)
	}
	imgs := fuzzBaseImages(t)
	base, patches := fuzzfs.Decode(data, len(imgs))
	dev := fuzzfs.NewOverlay("fuzz", imgs[base], readOnly)
	dev.Apply(patches, fuzzSpans[base])
	return dev
}

// FuzzMount mounts a patched image read-only and walks all of it: every
// directory read and resumed, every name looked up, every file read,
// every link and extended attribute read. It must not panic or hang, and
// every error must be an errno.
func FuzzMount(f *testing.F) {
	for i := range fuzzBaseImages(f) {
		f.Add(fuzzfs.Input(byte(i)))
	}
	f.Fuzz(func(t *testing.T, data []byte) { runFuzz(t, data, false) })
}

// FuzzMountRW mounts a patched image read-write (the ext4 base mounts
// read-only), walks it, changes it (creates, writes, truncates, links,
// renames, removes) and walks it again.
func FuzzMountRW(f *testing.F) {
	for i := range fuzzBaseImages(f) {
		f.Add(fuzzfs.Input(byte(i)))
	}
	f.Fuzz(func(t *testing.T, data []byte) { runFuzz(t, data, true) })
}

func runFuzz(t *testing.T, data []byte, rw bool) {
	dev := fuzzDevice(t, data, !rw)
	fuzzfs.Run(t, rw, func() (vnodeops.FS, error) {
		return Mount(vnodeops.MountArgs{Name: "fuzz", Dev: dev, ReadOnly: !rw, Log: slog.New(slog.DiscardHandler)})
	})
}

// TestFuzzBases checks that each base image mounts and walks, and that
// the ext2 base takes the fuzz target's changes leaving an image e2fsck
// finds clean: the fuzzer starts from something meaningful, and its
// changes are sound.
func TestFuzzBases(t *testing.T) {
	for i, img := range fuzzBaseImages(t) {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			dev := fuzzfs.NewOverlay("base", img, false)
			fs, err := Mount(vnodeops.MountArgs{Name: "base", Dev: dev, ReadOnly: i == 1, Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			fuzzfs.CheckBase(t, fs, dev, i == 0, 50, fsck)
		})
	}
}
