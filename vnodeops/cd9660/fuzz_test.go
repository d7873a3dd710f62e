package cd9660

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rump9p/rump9p/tests/fuzz/fuzzfs"
	"github.com/rump9p/rump9p/tests/hosttools"
	"github.com/rump9p/rump9p/vnodeops"
)

// The fuzz input is either a whole image (when it carries "CD001" at
// sector 16) or in fuzzfs's patch form: a byte choosing a base image
// (fuzzBases), then 5-byte patches XORed into it. The bases are small
// images made with xorriso at test time from one tree, so the seed
// corpus in testdata/fuzz stays a few bytes an input.

// fuzzBases are xorriso argument lists: Rock Ridge with Joliet (deep
// tree relocated, long symlink in a continuation area), plain ISO 9660,
// Rock Ridge with a zisofs-compressed file (xorriso's own commands), and
// Rock Ridge 1.12 with the tree's extended attributes and ACLs recorded
// (AAIP AL entries, one list spread over continuation areas).
var fuzzBases = [][]string{
	{"-as", "mkisofs", "-R", "-J", "-no-pad"},
	{"-as", "mkisofs", "--norock", "-no-pad"},
	{"-rockridge", "on", "-joliet", "off", "-padding", "0", "-set_filter_r", "--zisofs", "/", "--"},
	{"-compliance", "new_rr", "-as", "mkisofs", "-R", "--xattr-any", "--acl", "-no-pad"},
}

// fuzzXattrs sets the base tree's extended attributes: user.* values
// short and long, trusted.* (as root), and an access ACL with named
// entries in Linux's xattr form. File systems without them are left
// alone: the base then has fewer AL entries.
func fuzzXattrs(src string) {
	acl := []byte{2, 0, 0, 0}
	for _, e := range [][3]uint32{{1, 6, aclUndefinedID}, {2, 6, 1234}, {4, 4, aclUndefinedID}, {8, 4, 99}, {0x10, 6, aclUndefinedID}, {0x20, 4, aclUndefinedID}} {
		acl = binary.LittleEndian.AppendUint16(acl, uint16(e[0]))
		acl = binary.LittleEndian.AppendUint16(acl, uint16(e[1]))
		acl = binary.LittleEndian.AppendUint32(acl, e[2])
	}
	for _, x := range []struct {
		path, name string
		value      []byte
	}{
		{"small", "user.a", []byte("hello")},
		{"small", "trusted.t", []byte("root only")},
		{"small", aclAccessName, acl},
		{"multi", "user.long", pattern(2500, 7)},
		{"big", "user.dir", []byte("d")},
	} {
		syscall.Setxattr(filepath.Join(src, x.path), x.name, x.value, 0)
	}
}

var (
	fuzzBaseOnce sync.Once
	fuzzBase     [][]byte
	fuzzSpans    []int64
	fuzzBaseErr  error
)

// fuzzBaseImages makes (once) the base images, deterministically.
func fuzzBaseImages(t testing.TB) [][]byte {
	xorriso := hosttools.Need(t, "xorriso")
	fuzzBaseOnce.Do(func() {
		fuzzBase, fuzzBaseErr = makeFuzzBases(xorriso)
		for _, img := range fuzzBase {
			fuzzSpans = append(fuzzSpans, fuzzfs.Span(img))
		}
	})
	if fuzzBaseErr != nil {
		t.Fatal(fuzzBaseErr)
	}
	return fuzzBase
}

func makeFuzzBases(xorriso string) ([][]byte, error) {
	dir, err := os.MkdirTemp("", "cd9660-fuzz-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "src")
	deep := filepath.Join(src, "d1/d2/d3/d4/d5/d6/d7/d8/d9")
	os.MkdirAll(deep, 0o755)
	os.WriteFile(filepath.Join(deep, "bottom"), []byte("deep"), 0o644)
	os.WriteFile(filepath.Join(src, "small"), []byte("hello"), 0o644)
	os.WriteFile(filepath.Join(src, "multi"), pattern(70_000, 1), 0o644)
	os.MkdirAll(filepath.Join(src, "big"), 0o755)
	for i := range 30 {
		os.WriteFile(filepath.Join(src, "big", fmt.Sprintf("Entry number %02d with a long name", i)), nil, 0o644)
	}
	os.Symlink("small", filepath.Join(src, "short-link"))
	os.Symlink(strings.Repeat("a/long/target/", 20), filepath.Join(src, "long-link"))
	fuzzXattrs(src)
	stamp := time.Unix(1_600_000_000, 0)
	filepath.Walk(src, func(p string, _ os.FileInfo, _ error) error {
		os.Chtimes(p, stamp, stamp)
		return nil
	})
	var imgs [][]byte
	for i, args := range fuzzBases {
		img := filepath.Join(dir, fmt.Sprintf("base%d.iso", i))
		var a []string
		if slices.Contains(args, "-as") {
			a = append(append(a, args...), "-o", img, src)
		} else {
			a = append(append([]string{"-outdev", img, "-map", src, "/"}, args...), "-commit")
		}
		cmd := exec.Command(xorriso, a...)
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1600000000")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("xorriso %v: %v\n%s", a, err, out)
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
func fuzzDevice(t testing.TB, data []byte) *fuzzfs.Overlay {
	if Probe(strings.NewReader(string(data)), int64(len(data))) {
		return fuzzfs.NewOverlay("fuzz", data, true)
	}
	imgs := fuzzBaseImages(t)
	base, patches := fuzzfs.Decode(data, len(imgs))
	dev := fuzzfs.NewOverlay("fuzz", imgs[base], true)
	dev.Apply(patches, fuzzSpans[base])
	return dev
}

// FuzzMount mounts a patched image and walks all of it within limits:
// every directory read and resumed, every name looked up, every file and
// link read. It must not panic or hang, and every error must be an
// errno.
func FuzzMount(f *testing.F) {
	for i := range fuzzBaseImages(f) {
		f.Add(fuzzfs.Input(byte(i)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dev := fuzzDevice(t, data)
		fuzzfs.Run(t, false, func() (vnodeops.FS, error) {
			return Mount(vnodeops.MountArgs{Name: "fuzz", Dev: dev, ReadOnly: true, Log: slog.New(slog.DiscardHandler)})
		})
	})
}

// TestFuzzBases checks that each base image mounts and walks with no
// failed call: the fuzzer starts from something meaningful.
func TestFuzzBases(t *testing.T) {
	for i, img := range fuzzBaseImages(t) {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			dev := fuzzfs.NewOverlay("base", img, true)
			fs, err := Mount(vnodeops.MountArgs{Name: "base", Dev: dev, ReadOnly: true, Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			k := fuzzfs.NewKernel(t, fs, fuzzfs.DefaultLimits)
			found := k.Walk()
			k.Release()
			if len(found) < 40 {
				t.Errorf("walk found %d files, want 40 or more", len(found))
			}
			if f := k.Failed(); len(f) > 0 {
				t.Errorf("failed calls on a good image: %q", f)
			}
			if err := fs.Unmount(false); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d bytes (span %d)", len(img), fuzzSpans[i])
		})
	}
}
