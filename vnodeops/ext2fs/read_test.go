package ext2fs

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// variants of mke2fs for the read tests: each image is populated with -d
// from the same source tree and compared through the kernel.
var readVariants = []struct {
	name string
	args []string
	full bool // the full tree; else the lite one
}{
	{"ext2-1k-rev1", []string{"-t", "ext2", "-b", "1024", "-I", "256"}, true},
	{"ext2-4k-rev1", []string{"-t", "ext2", "-b", "4096"}, false},
	{"ext2-2k-rev1-128", []string{"-t", "ext2", "-b", "2048", "-I", "128"}, false},
	{"ext2-1k-rev0", []string{"-t", "ext2", "-b", "1024", "-r", "0"}, false},
	{"ext2-4k-rev0", []string{"-t", "ext2", "-b", "4096", "-r", "0"}, false},
	{"ext3-4k", []string{"-t", "ext3", "-b", "4096"}, true},
	{"ext4-4k-csum-64bit", []string{"-t", "ext4", "-b", "4096", "-O", "metadata_csum,64bit"}, true},
	{"ext4-1k-csum", []string{"-t", "ext4", "-b", "1024", "-O", "metadata_csum,^64bit"}, false},
	{"ext4-4k-inline", []string{"-t", "ext4", "-b", "4096", "-I", "256", "-O", "inline_data,metadata_csum"}, false},
	{"ext4-2k-nocsum-meta_bg", []string{"-t", "ext4", "-b", "2048", "-O", "^metadata_csum,^resize_inode,meta_bg,^flex_bg"}, false},
}

var (
	// The issue asks for a 300 MiB file in the ext3/ext4 trees.
	fullTree = treeOpts{smallFiles: 3000, bigDir: 10000, bigFile: 300 << 20, owners: true}
	liteTree = treeOpts{smallFiles: 400, bigDir: 1500, bigFile: 12 << 20, owners: true}
)

// TestReadTree compares a tree of a few thousand files (sparse files,
// both kinds of symlink, hard links, devices, a 10,000-entry htree
// directory and a large file) made by mke2fs -d with what the driver
// serves, on every variant.
func TestReadTree(t *testing.T) {
	for _, v := range readVariants {
		t.Run(v.name, func(t *testing.T) {
			o, minFiles := liteTree, 1900
			if v.full {
				o, minFiles = fullTree, 13000
			}
			src := sourceTree(t, o)
			img := filepath.Join(t.TempDir(), "img")
			size := "160M"
			if v.full {
				size = "420M"
			}
			mkfs(t, img, size, src, append([]string{"-N", "16384"}, v.args...)...)
			if !strings.Contains(v.name, "rev0") {
				// mke2fs -d writes directories linearly; e2fsck -D indexes
				// them. The big directory must really be an htree for the
				// test to mean anything.
				indexDirs(t, img)
				out := debugfs(t, img, false, "htree_dump /bigdir")
				if !strings.Contains(out, "Root node dump") {
					t.Fatalf("bigdir is not indexed:\n%.300s", out)
				}
			}
			if strings.Contains(v.name, "ext4-1k") {
				// The many-extent file must need a tree of depth 2.
				if out := debugfs(t, img, false, "ex /sparse-many"); !strings.Contains(out, " 2/ 2 ") {
					t.Fatalf("sparse-many has no depth-2 extent tree:\n%.400s", out)
				}
			}
			if strings.Contains(v.name, "inline") {
				for _, f := range []string{"/tinydir", "/modes/setuid", "/hl-a"} {
					if out := debugfs(t, img, false, "stat "+f); !strings.Contains(out, "Size of inline data") {
						t.Fatalf("%s is not inline:\n%.400s", f, out)
					}
				}
			}
			_, p := boot(t, img, true, nil)
			start := time.Now()
			co := cmpOpts{checkData: true}
			if strings.Contains(v.name, "inline") {
				co.skipPrefix = "sparse-"
			}
			n := compareTree(t, p, "/mnt", src, co)
			t.Logf("%d files compared in %v", n, time.Since(start))
			if n < minFiles {
				t.Fatalf("only %d files compared", n)
			}
		})
	}
}

// TestStatvfsAndLookupErrors checks the simple answers of a mounted
// image.
func TestStatvfsAndLookupErrors(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, img, "8M", "", "-t", "ext2", "-b", "1024")
	_, p := boot(t, img, true, nil)
	st, err := p.Statvfs("/mnt")
	if err != nil {
		t.Fatal(err)
	}
	if st.Bsize != 1024 || st.Blocks == 0 || st.Bfree == 0 || st.Bfree > st.Blocks || st.Files == 0 || st.Flags&1 == 0 {
		t.Fatalf("statvfs %+v", st)
	}
	if _, err := p.Lstat("/mnt/nope"); !isErrno(err, syscall.ENOENT) {
		t.Fatalf("lstat of a missing file: %v", err)
	}
	if _, err := p.Lstat("/mnt/lost+found/x/y"); !isErrno(err, syscall.ENOENT) {
		t.Fatalf("lstat below a missing file: %v", err)
	}
	if err := p.Mkdir("/mnt/x", 0o755); !isErrno(err, syscall.EROFS) {
		t.Fatalf("mkdir on a read-only mount: %v", err)
	}
}

// indexDirs runs e2fsck -fyD, which turns large directories into htrees.
func indexDirs(t testing.TB, img string) {
	t.Helper()
	out, err := exec.Command("e2fsck", "-fyD", img).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() > 1) {
		t.Fatalf("e2fsck -fyD: %v\n%s", err, out)
	}
}
