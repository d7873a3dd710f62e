package cd9660

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rump9p/rump9p/tests/hosttools"
)

// maker makes an image of the tree src and returns its path, and the
// tree it recorded: src, or a copy that the maker made (mkzftree's).
type maker func(t testing.TB, src string) (img, from string)

// run runs a host program (found with hosttools.Need) with fixed times,
// failing t with its output on error.
func run(t testing.TB, prog string, args ...string) {
	t.Helper()
	cmd := exec.Command(hosttools.Need(t, prog), args...)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1600000000")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
}

// xorrisoMaker is mkiso with args.
func xorrisoMaker(args ...string) maker {
	return func(t testing.TB, src string) (string, string) { return mkiso(t, src, args...), src }
}

// genisoimageMaker makes the image with genisoimage (cdrkit) and args.
func genisoimageMaker(args ...string) maker {
	return func(t testing.TB, src string) (string, string) {
		img := filepath.Join(t.TempDir(), "img.iso")
		run(t, "genisoimage", append(append([]string{"-quiet"}, args...), "-o", img, src)...)
		return img, src
	}
}

// makefsMaker makes the image with NetBSD's makefs -t cd9660 and the
// cd9660 options opts (-o).
func makefsMaker(opts string) maker {
	return func(t testing.TB, src string) (string, string) {
		img := filepath.Join(t.TempDir(), "img.iso")
		run(t, "makefs", "-t", "cd9660", "-o", opts, img, src)
		return img, src
	}
}

// zisofsMaker compresses the tree with mkzftree (zisofs-tools, shipped
// in Debian's genisoimage) and makes the image with genisoimage -R -z,
// which records a ZF entry for each compressed file. mkzftree does not
// keep the times of symbolic links, so the image is compared with its
// copy.
func zisofsMaker(t testing.TB, src string) (string, string) {
	ztree := filepath.Join(t.TempDir(), "z")
	run(t, "mkzftree", src, ztree)
	img := filepath.Join(t.TempDir(), "img.iso")
	run(t, "genisoimage", "-quiet", "-R", "-z", "-o", img, ztree)
	return img, ztree
}

// TestOtherMakers reads images of the source tree made by the other
// makers Debian packages: content and metadata equal the source tree.
func TestOtherMakers(t *testing.T) {
	src := t.TempDir()
	tree := makeTree(t, src, true)
	for _, v := range []struct {
		name string
		mk   maker
	}{
		{"genisoimage-R-J", genisoimageMaker("-R", "-J", "-joliet-long")},
		{"makefs-rockridge", makefsMaker("rockridge,label=RUMP9P")},
		{"mkzftree-genisoimage", zisofsMaker},
	} {
		t.Run(v.name, func(t *testing.T) {
			img, from := v.mk(t, src)
			want := tree
			if from != src {
				// The maker's copy for metadata, the source for
				// content (the copy's files are compressed).
				want = scanTree(t, from)
				for p, e := range want {
					e.data = tree[p].data
					want[p] = e
				}
			}
			fs, lb := mountFile(t, img, nil)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("log: %s", lb)
				}
			})
			if !fs.rr {
				t.Fatal("Rock Ridge not detected")
			}
			got := walk(t, fs)
			compareTree(t, want, got, true)
			if v.name == "mkzftree-genisoimage" {
				v, err := fs.VGet(got["/big.bin"].ino)
				if err != nil {
					t.Fatal(err)
				}
				if v.(*node).zf == nil {
					t.Error("big.bin not compressed: the variant tests nothing")
				}
			}
			if l := lb.lines(); len(l) > 0 {
				t.Errorf("log lines on a good image: %q", l)
			}
		})
	}
}
