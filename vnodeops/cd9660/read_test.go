package cd9660

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rump9p/rump9p/vnodeops"
)

// srcEntry is a file of the source tree as the host's lstat sees it.
type srcEntry struct {
	mode     uint32
	uid, gid uint32
	mtime    time.Time
	rdev     uint64
	data     []byte
	link     string
}

// pattern returns n bytes that differ from block to block.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31+i/2048) ^ seed
	}
	return b
}

// makeTree writes a tree with something of everything Rock Ridge
// records: sizes across block boundaries, a directory more than 8 levels
// deep (relocated, RRIP 4.1.5), long and odd names, symbolic links
// (relative, absolute, long, with "." and ".." components), a hard link,
// device nodes and a fifo, owners, set-id bits and times. It returns the
// tree as lstat sees it, by path relative to src.
func makeTree(t testing.TB, src string, special bool) map[string]srcEntry {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string, data []byte, mode os.FileMode) {
		must(os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755))
		must(os.WriteFile(filepath.Join(src, p), data, mode))
		must(os.Chmod(filepath.Join(src, p), mode))
	}
	write("empty", nil, 0o644)
	write("small.txt", []byte("hello, world\n"), 0o644)
	write("block", pattern(2048, 1), 0o600)
	write("blockplus", pattern(2049, 2), 0o640)
	write("big.bin", pattern(300_000, 3), 0o755)
	write("README.", []byte("dot"), 0o444)
	write("UPPER.TXT", []byte("upper"), 0o644)
	write("name with spaces & ümlauts.txt", []byte("x"), 0o644)
	write(strings.Repeat("long", 50)+".txt", []byte("long name"), 0o644)
	write("dir/inner", []byte("inner\n"), 0o644)
	write("dir/sub/leaf", []byte("leaf"), 0o644)
	deep := "d1/d2/d3/d4/d5/d6/d7/d8/d9/d10"
	write(deep+"/bottom", []byte("deep"), 0o644)
	write(deep+"/d11/x", []byte("deeper"), 0o644)
	for i := range 60 {
		write(fmt.Sprintf("many/entry number %03d with a name long enough to fill sectors", i), []byte{byte(i)}, 0o644)
	}
	must(os.Symlink("small.txt", filepath.Join(src, "rel-link")))
	must(os.Symlink("/etc/passwd", filepath.Join(src, "abs-link")))
	must(os.Symlink("../dir/./sub/../inner", filepath.Join(src, "dir/sub/dotdot-link")))
	must(os.Symlink(strings.Repeat("very-long-component/", 40)+"end", filepath.Join(src, "long-link")))
	must(os.Symlink("/", filepath.Join(src, "root-link")))
	must(os.Chmod(filepath.Join(src, "dir"), 0o750))
	write("setid", []byte("s"), 0o644)
	must(os.Chmod(filepath.Join(src, "setid"), 0o6755|os.ModeSetuid|os.ModeSetgid))
	must(os.Lchown(filepath.Join(src, "small.txt"), 1234, 5678))
	must(os.Lchown(filepath.Join(src, "rel-link"), 42, 43))
	must(os.Link(filepath.Join(src, "small.txt"), filepath.Join(src, "dir/hardlink")))
	if special {
		must(syscall.Mknod(filepath.Join(src, "null"), syscall.S_IFCHR|0o666, int(mkdev(1, 3))))
		must(syscall.Mknod(filepath.Join(src, "disk"), syscall.S_IFBLK|0o640, int(mkdev(259, 70000))))
		must(syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644))
	}
	// Times: one in the past, set last so that nothing changes them.
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	must(os.Chtimes(filepath.Join(src, "small.txt"), old, old))
	must(os.Chtimes(filepath.Join(src, "dir/sub"), old.Add(time.Hour), old.Add(time.Hour)))

	return scanTree(t, src)
}

// scanTree returns the tree at src as lstat sees it, by path relative to
// src ("" is src).
func scanTree(t testing.TB, src string) map[string]srcEntry {
	t.Helper()
	tree := map[string]srcEntry{}
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			rel = ""
		} else {
			rel = "/" + rel
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := srcEntry{mode: st.Mode, uid: st.Uid, gid: st.Gid, mtime: fi.ModTime(), rdev: st.Rdev}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			e.data, err = os.ReadFile(p)
		case syscall.S_IFLNK:
			e.link, err = os.Readlink(p)
		}
		tree[rel] = e
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// TestRockRidgeMatchesSource makes a Rock Ridge image (with Joliet too)
// and checks that every file of the source tree is there with its
// content, type, permissions, owner, mtime (to the second), link target
// and device number, and nothing else but rr_moved.
func TestRockRidgeMatchesSource(t *testing.T) {
	src := t.TempDir()
	tree := makeTree(t, src, true)
	for _, variant := range []struct {
		name string
		args []string
	}{
		{"R-J", []string{"-R", "-J", "-joliet-long"}},
		{"R-iso-level-1", []string{"-R", "-iso-level", "1"}},
		// -partition_offset 16: an MBR partition holding a second,
		// complete ISO 9660 superblock set 32 KiB in.
		{"R-partition-offset", []string{"-R", "-J", "-partition_offset", "16"}},
		// Deep directories relocated (RRIP 4.1.5: CL, PL, RE).
		{"R-relocated", []string{"-R", "-rr_reloc_dir", "rr_moved"}},
		// PX with serial numbers (RRIP 1.12): the hard link shares.
		{"R-hardlinks", []string{"-R", "-J", "--hardlinks"}},
	} {
		t.Run(variant.name, func(t *testing.T) {
			img := mkiso(t, src, variant.args...)
			fs, lb := mountFile(t, img, nil)
			if !fs.rr {
				t.Fatal("Rock Ridge not detected")
			}
			got := walk(t, fs)
			compareTree(t, tree, got, true)
			if slices.Contains(variant.args, "-rr_reloc_dir") {
				// The plain tree shows the moved directories; Rock
				// Ridge shows them where they belong (CL) and hides
				// their own records (RE).
				plainFS, _ := mountFile(t, img, map[string]string{"norrip": ""})
				moved := func(m map[string]file) (n int) {
					for p := range m {
						if strings.HasPrefix(p, "/rr_moved/") {
							n++
						}
					}
					return n
				}
				if n := moved(walk(t, plainFS)); n == 0 {
					t.Error("nothing relocated: the variant tests nothing")
				}
				if n := moved(got); n != 0 {
					t.Errorf("Rock Ridge shows %d relocated paths under rr_moved", n)
				}
			}
			if l := lb.lines(); len(l) > 0 {
				t.Errorf("log lines on a good image: %q", l)
			}
		})
	}
}

// compareTree checks got against the source tree. Without rr only names,
// types of directories and files, and contents are compared.
func compareTree(t *testing.T, tree map[string]srcEntry, got map[string]file, rr bool) {
	t.Helper()
	for p, want := range tree {
		g, ok := got[p]
		if !ok {
			if rr || want.mode&syscall.S_IFMT == syscall.S_IFREG || want.mode&syscall.S_IFMT == syscall.S_IFDIR {
				t.Errorf("%q missing", p)
			}
			continue
		}
		if !bytes.Equal(g.data, want.data) {
			t.Errorf("%q: content differs (%d bytes, want %d)", p, len(g.data), len(want.data))
		}
		if !rr {
			continue
		}
		if g.attr.Mode != want.mode {
			t.Errorf("%q: mode %#o, want %#o", p, g.attr.Mode, want.mode)
		}
		if g.attr.UID != want.uid || g.attr.GID != want.gid {
			t.Errorf("%q: owner %d:%d, want %d:%d", p, g.attr.UID, g.attr.GID, want.uid, want.gid)
		}
		if g.link != want.link {
			t.Errorf("%q: link %q, want %q", p, g.link, want.link)
		}
		if g.attr.Rdev != want.rdev && want.mode&syscall.S_IFMT != syscall.S_IFDIR && want.mode&syscall.S_IFMT != syscall.S_IFREG && want.mode&syscall.S_IFMT != syscall.S_IFLNK {
			t.Errorf("%q: rdev %#x, want %#x", p, g.attr.Rdev, want.rdev)
		}
		if p != "" && g.attr.Mtime/1e9 != want.mtime.Unix() {
			t.Errorf("%q: mtime %v, want %v", p, time.Unix(0, g.attr.Mtime), want.mtime)
		}
		if g.attr.Mode&vnodeops.S_IFMT == vnodeops.S_IFREG && g.attr.Size != uint64(len(want.data)) {
			t.Errorf("%q: size %d, want %d", p, g.attr.Size, len(want.data))
		}
	}
	for p := range got {
		if _, ok := tree[p]; !ok && !strings.Contains(p, "rr_moved") {
			t.Errorf("%q is in the image, not in the source", p)
		}
	}
}
