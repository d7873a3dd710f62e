package msdosfs_test

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rump9p/rump9p/tests/fuzz/fuzzfs"
	"github.com/rump9p/rump9p/vnodeops"
	"github.com/rump9p/rump9p/vnodeops/msdosfs"
)

// The fuzz input is in fuzzfs's patch form: a byte choosing FAT12, FAT16
// or FAT32 (fuzzBases), then 5-byte patches XORed into that base image,
// which mkfs.fat and mtools make at test time at the smallest size of
// each type. An input of 512 bytes or more that ends its first sector
// with the boot signature is instead the start of an image (zeros up to
// the size its BPB gives, at most 4 MiB), to replay an image from a
// report.

// fuzzBases says how to make each base: mkfs.fat arguments and the size
// in KiB, the smallest that gives the type its cluster count (4,085
// clusters make FAT16, 65,525 FAT32, with one 512-byte sector a cluster).
var fuzzBases = []struct {
	args []string
	kib  int
}{
	{[]string{"-F", "12", "-s", "1", "-r", "64"}, 128},
	{[]string{"-F", "16", "-s", "1", "-r", "64"}, 2100},
	{[]string{"-F", "32", "-s", "1"}, 34000},
}

var (
	fuzzOnce  sync.Once
	fuzzImgs  [][]byte
	fuzzSpans []int64
	fuzzErr   error
)

// fuzzBaseImages makes (once) the base images, deterministically: fixed
// volume id and times, the same tree in each. The tree has short, long
// and non-ASCII names, a directory of several clusters, nested
// directories, an empty file, a file of many clusters, a fragmented file
// and a deleted entry.
func fuzzBaseImages(t testing.TB) ([][]byte, []int64) {
	for _, name := range []string{"mkfs.fat", "mcopy", "mdel"} {
		tool(t, name)
	}
	fuzzOnce.Do(func() { fuzzImgs, fuzzSpans, fuzzErr = makeFuzzBases(t) })
	if fuzzErr != nil {
		t.Fatal(fuzzErr)
	}
	return fuzzImgs, fuzzSpans
}

func makeFuzzBases(t testing.TB) ([][]byte, []int64, error) {
	dir, err := os.MkdirTemp("", "msdosfs-fuzz-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "src")
	files := map[string]int{
		"README":          17,
		"Hello World.txt": 13,
		"a very long file name that spans several long entries.text": 5,
		"ünïcødé.txt":                  8,
		"empty":                        0,
		"big.bin":                      6000,
		"Sub Dir/Nested/deep file.dat": 5,
		"Sub Dir/x.y":                  2,
		"frag1":                        1024,
		"gap":                          512,
	}
	for i := range 20 {
		files[fmt.Sprintf("many/file number %02d with a long name", i)] = i
	}
	for name, size := range files {
		p := filepath.Join(src, name)
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*7 + len(name))
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, nil, err
		}
	}
	frag := filepath.Join(dir, "frag2")
	if err := os.WriteFile(frag, make([]byte, 3000), 0o644); err != nil {
		return nil, nil, err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return nil, nil, err
	}
	var imgs [][]byte
	var spans []int64
	for i, b := range fuzzBases {
		img := filepath.Join(dir, fmt.Sprintf("base%d.img", i))
		mkfs := append([]string{"mkfs.fat", "--invariant", "-n", "FUZZ"}, b.args...)
		cp := []string{"mcopy", "-s", "-i", img}
		for _, e := range ents {
			cp = append(cp, filepath.Join(src, e.Name()))
		}
		for _, c := range [][]string{
			append(mkfs, "-C", img, fmt.Sprint(b.kib)),
			append(cp, "::"),
			// frag2 fills the hole frag1 leaves and goes on after gap.
			{"mdel", "-i", img, "::frag1"},
			{"mcopy", "-i", img, frag, "::"},
		} {
			cmd := exec.Command(tool(t, c[0]), c[1:]...)
			cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "MTOOLS_SKIP_CHECK=1", "SOURCE_DATE_EPOCH=1600000000")
			if out, err := cmd.CombinedOutput(); err != nil {
				return nil, nil, fmt.Errorf("%v: %v\n%s", c, err, out)
			}
		}
		data, err := os.ReadFile(img)
		if err != nil {
			return nil, nil, err
		}
		imgs = append(imgs, data)
		spans = append(spans, fuzzfs.Span(data))
	}
	return imgs, spans, nil
}

// fuzzDevice turns an input into the device to mount.
func fuzzDevice(t testing.TB, data []byte) *fuzzfs.Overlay {
	if len(data) >= 512 && data[510] == 0x55 && data[511] == 0xAA {
		bps := int64(binary.LittleEndian.Uint16(data[11:]))
		size := int64(binary.LittleEndian.Uint16(data[19:])) * bps
		if size == 0 {
			size = int64(binary.LittleEndian.Uint32(data[32:])) * bps
		}
		img := make([]byte, max(int64(len(data)), min(size, 4<<20)))
		copy(img, data)
		return fuzzfs.NewOverlay("fuzz", img, false)
	}
	imgs, spans := fuzzBaseImages(t)
	base, patches := fuzzfs.Decode(data, len(imgs))
	dev := fuzzfs.NewOverlay("fuzz", imgs[base], false)
	dev.Apply(patches, spans[base])
	return dev
}

// FuzzMount mounts a patched image read-write, walks all of it (every
// directory read and resumed, every name looked up, every file read),
// changes it (creates, writes, truncates, renames, removes) and walks it
// again. It must not panic or hang, and every error must be an errno.
func FuzzMount(f *testing.F) {
	imgs, _ := fuzzBaseImages(f)
	for i := range imgs {
		f.Add(fuzzfs.Input(byte(i)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dev := fuzzDevice(t, data)
		fuzzfs.Run(t, true, func() (vnodeops.FS, error) {
			return msdosfs.Mount(vnodeops.MountArgs{Name: "fuzz", Dev: dev, CacheBytes: 1 << 20, Log: slog.New(slog.DiscardHandler)})
		})
	})
}

// TestFuzzBases checks that each base image mounts, walks and takes the
// fuzz target's changes, leaving an image fsck.fat finds clean: the
// fuzzer starts from something meaningful, and its changes are sound.
// A walk finds 33 files: all but ünïcødé.txt, which mtools stores as a
// short name in code page 850 that Readdir lists (decoded as code page
// 437) and Lookup does not find.
func TestFuzzBases(t *testing.T) {
	imgs, _ := fuzzBaseImages(t)
	for i, img := range imgs {
		t.Run(fmt.Sprint("FAT", []int{12, 16, 32}[i]), func(t *testing.T) {
			dev := fuzzfs.NewOverlay("base", img, false)
			fs, err := msdosfs.Mount(vnodeops.MountArgs{Name: "base", Dev: dev, Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			fuzzfs.CheckBase(t, fs, dev, true, 33, fsck)
		})
	}
}
