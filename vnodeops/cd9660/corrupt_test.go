package cd9660

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/blkdev"
	"github.com/rump9p/rump9p/vnodeops"
)

// findRecord returns the directory record that names name in the
// directory of inode dir.
func findRecord(t *testing.T, fs *fsys, dir uint64, name string) dirRec {
	t.Helper()
	v, err := fs.VGet(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := v.(*node)
	var found *dirRec
	err = n.records(0, func(_ int64, rec *dirRec) (bool, error) {
		if rec.isDot() || rec.isDotDot() {
			return true, nil
		}
		e, err := n.recordEntry(rec)
		if err == nil && e != nil && e.name == name {
			r := *rec
			found = &r
			return false, nil
		}
		return true, err
	})
	if err != nil || found == nil {
		t.Fatalf("no record for %q in %d: %v", name, dir, err)
	}
	return *found
}

// lookupPath returns the inode of an absolute path ("/a/b").
func lookupPath(fs vnodeops.FS, path string) (uint64, error) {
	ino := fs.Root()
	for _, c := range strings.Split(strings.Trim(path, "/"), "/") {
		if c == "" {
			continue
		}
		v, err := fs.VGet(ino)
		if err != nil {
			return 0, err
		}
		if ino, err = v.Lookup(c); err != nil {
			return 0, err
		}
	}
	return ino, nil
}

// openPath looks path up, gets its vnode and reads it whole (a
// directory: lists it; a link: reads it).
func openPath(fs vnodeops.FS, path string) error {
	ino, err := lookupPath(fs, path)
	if err != nil {
		return err
	}
	v, err := fs.VGet(ino)
	if err != nil {
		return err
	}
	a, err := v.Getattr()
	if err != nil {
		return err
	}
	switch a.Mode & vnodeops.S_IFMT {
	case vnodeops.S_IFDIR:
		return v.Readdir(0, func(vnodeops.Dirent) bool { return true })
	case vnodeops.S_IFLNK:
		_, err = v.Readlink()
		return err
	}
	buf := make([]byte, 1<<16)
	for off := int64(0); ; off += int64(len(buf)) {
		n, err := v.Read(buf, off)
		if err != nil || n == 0 {
			return err
		}
	}
}

func put32(img []byte, off int64, v uint32) {
	binary.LittleEndian.PutUint32(img[off:], v)
	binary.BigEndian.PutUint32(img[off+4:], v)
}

// suEntry returns the image offset of the first SUSP entry sig in rec's
// System Use area.
func suEntry(t *testing.T, rec dirRec, sig string) int64 {
	t.Helper()
	sys := rec.sys
	for i := 0; i+4 <= len(sys) && sys[i+2] >= 4; i += int(sys[i+2]) {
		if string(sys[i:i+2]) == sig {
			return rec.addr + int64(rec.length-len(sys)+i)
		}
	}
	t.Fatalf("no %s entry in the record of %q", sig, rec.name)
	return 0
}

// goodImage makes an image of src with args and mounts it.
func goodImage(t *testing.T, src string, args ...string) ([]byte, *fsys) {
	t.Helper()
	base, err := os.ReadFile(mkiso(t, src, args...))
	if err != nil {
		t.Fatal(err)
	}
	good, _, err := mountBytes(t, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	return base, good
}

// TestCorrupt patches single values of good images and checks that the
// file concerned answers EIO with exactly one log line naming the inode,
// and that the rest of the image still reads.
func TestCorrupt(t *testing.T) {
	src := t.TempDir()
	for p, data := range map[string][]byte{
		"a/file": pattern(5000, 1), "a/other": []byte("other"), "b/keep": []byte("keep"),
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755)
		if err := os.WriteFile(filepath.Join(src, p), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(strings.Repeat("long-component/", 30), filepath.Join(src, "a/link")); err != nil {
		t.Fatal(err)
	}
	base, good := goodImage(t, src, "-R")
	aIno, _ := lookupPath(good, "/a")
	fileRec := findRecord(t, good, aIno, "file")
	linkRec := findRecord(t, good, aIno, "link")
	dirA := findRecord(t, good, good.Root(), "a")
	ce := suEntry(t, linkRec, "CE")
	// The SL entries are in the record's area and its continuation area.
	var sls []int64
	ceArea := int64(binary.LittleEndian.Uint32(base[ce+4:]))*int64(good.bs) + int64(binary.LittleEndian.Uint32(base[ce+12:]))
	for _, area := range []struct{ at, n int64 }{
		{linkRec.addr + int64(linkRec.length-len(linkRec.sys)), int64(len(linkRec.sys))},
		{ceArea, int64(binary.LittleEndian.Uint32(base[ce+20:]))},
	} {
		for i := area.at; i+4 <= area.at+area.n && base[i+2] >= 4; i += int64(base[i+2]) {
			if string(base[i:i+2]) == "SL" {
				sls = append(sls, i)
			}
		}
	}
	if len(sls) == 0 {
		t.Fatal("no SL entry")
	}
	sl := sls[0]

	for _, c := range []struct {
		name  string
		path  string // what fails
		patch func(img []byte)
	}{
		{"record shorter than 34 bytes", "/a", func(img []byte) { img[fileRec.addr] = 20 }},
		{"identifier past the record", "/a", func(img []byte) { img[fileRec.addr+drNameLen] = 200 }},
		{"record crossing its sector", "/a", func(img []byte) {
			img[fileRec.addr] = byte(min(255, sectorSize-fileRec.addr%sectorSize+2))
		}},
		{"extent halves disagree", "/a", func(img []byte) { img[fileRec.addr+drExtent+6] ^= 1 }},
		{"size halves disagree", "/a", func(img []byte) { img[fileRec.addr+drSize+7] ^= 1 }},
		{"extent past the end", "/a/file", func(img []byte) { put32(img, fileRec.addr+drExtent, 1<<24) }},
		{"huge size", "/a/file", func(img []byte) { put32(img, fileRec.addr+drSize, 0xFFFFFFFF) }},
		{"directory extent past the end", "/a", func(img []byte) {
			put32(img, dirA.addr+drSize, 0xFFFFF800)
			put32(img, int64(aIno)+drSize, 0xFFFFF800)
		}},
		{"CE loop", "/a", func(img []byte) {
			// The continuation area is the record's own System Use area.
			sys := linkRec.addr + int64(linkRec.length-len(linkRec.sys))
			put32(img, ce+4, uint32(sys/2048))
			put32(img, ce+12, uint32(sys%2048))
			put32(img, ce+20, uint32(len(linkRec.sys)))
		}},
		{"CE past its block", "/a", func(img []byte) { put32(img, ce+20, 5000) }},
		{"CE halves disagree", "/a", func(img []byte) { img[ce+4+7] ^= 0x40 }},
		{"SL never ends", "/a", func(img []byte) {
			// The SL entry's component records: flags, length, content;
			// mark every component as continued.
			for _, sl := range sls {
				for i := sl + 5; i < sl+int64(img[sl+2]); i += 2 + int64(img[i+1]) {
					img[i] |= slContinue
				}
			}
		}},
		{"SUSP entry past the area", "/a", func(img []byte) { img[sl+2] = 255 }},
		{"PVD block size halves disagree", "mount", func(img []byte) { img[16*2048+vdBlockSizeOff+3] ^= 1 }},
		{"no terminator", "mount", func(img []byte) {
			for s := 17; s < 20; s++ {
				if img[s*2048] == vdTerminator {
					img[s*2048] = 3
				}
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := bytes.Clone(base)
			c.patch(img)
			fs, lb, err := mountBytes(t, img, nil)
			if c.path == "mount" {
				if !errors.Is(err, syscall.EIO) {
					t.Fatalf("mount: %v, want EIO", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("mount: %v", err)
			}
			defer fs.Unmount(false)
			err = openPath(fs, c.path)
			if !errors.Is(err, syscall.EIO) {
				t.Fatalf("%s: %v, want EIO", c.path, err)
			}
			lines := lb.lines()
			if len(lines) != 1 || !strings.Contains(lines[0], "ino=") {
				t.Errorf("log: %q, want one line naming the inode", lines)
			}
			if err := openPath(fs, "/b/keep"); err != nil {
				t.Errorf("an intact file: %v", err)
			}
		})
	}
}

// TestDirectoryLoop points a subdirectory's record at the root: the
// kernel refuses it (a directory entry naming its own directory), and a
// walk with limits ends.
func TestDirectoryLoop(t *testing.T) {
	src := namesTree(t)
	base, good := goodImage(t, src, "--norock")
	rec := findRecord(t, good, good.Root(), "dir")
	root, _ := good.readRecord(int64(good.Root()))
	img := bytes.Clone(base)
	put32(img, rec.addr+drExtent, root.extent)
	fs, _, err := mountBytes(t, img, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ino, err := lookupPath(fs, "/dir"); err != nil || ino != fs.Root() {
		t.Fatalf("Lookup(dir) = %d, %v; want the root %d", ino, err, fs.Root())
	}
	path := filepath.Join(t.TempDir(), "loop.iso")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := kernelMount(t, path, "cd9660").Stat("/mnt/dir/dir/dir"); !errors.Is(err, syscall.EIO) {
		t.Errorf("stat through the loop: %v, want EIO", err)
	}
}

// TestMultiExtent turns two adjacent files of a plain image into one
// multi-extent file (ECMA-119 6.5.1: the first record gets flag bit 7,
// the second the first's identifier), and checks that it reads as the
// two contents one after the other, is listed once, and that a
// continuation naming another file is EIO.
func TestMultiExtent(t *testing.T) {
	src := t.TempDir()
	first, second := pattern(4096, 5), pattern(1000, 6)
	os.WriteFile(filepath.Join(src, "aaa"), first, 0o644)
	os.WriteFile(filepath.Join(src, "aab"), second, 0o644)
	os.WriteFile(filepath.Join(src, "zzz"), []byte("z"), 0o644)
	base, good := goodImage(t, src, "--norock")
	a := findRecord(t, good, good.Root(), "aaa")
	b := findRecord(t, good, good.Root(), "aab")
	if b.addr != a.addr+int64(a.length) {
		t.Fatalf("records not adjacent: %d+%d, %d", a.addr, a.length, b.addr)
	}
	img := bytes.Clone(base)
	img[a.addr+drFlags] |= flagMultiExt
	copy(img[b.addr+drName:], a.name)
	fs, lb, err := mountBytes(t, img, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := walk(t, fs)
	if p := paths(got); strings.Join(p, " ") != "/aaa /zzz" {
		t.Errorf("paths %q", p)
	}
	if want := append(bytes.Clone(first), second...); !bytes.Equal(got["/aaa"].data, want) || got["/aaa"].attr.Size != uint64(len(want)) {
		t.Errorf("content: %d bytes, size %d, want %d; log %s", len(got["/aaa"].data), got["/aaa"].attr.Size, len(want), lb)
	}
	// A continuation record with another name.
	img[b.addr+drName] = 'X'
	fs, lb, _ = mountBytes(t, img, nil)
	if err := openPath(fs, "/aaa"); !errors.Is(err, syscall.EIO) || len(lb.lines()) != 1 {
		t.Errorf("bad continuation: %v, log %q", err, lb.lines())
	}
}

// TestInterleaved marks a file as interleaved (file unit 1 block, gap 1
// block, ECMA-119 6.4.3) and checks that reads follow the interleave:
// the file's blocks are every other block of the extent.
func TestInterleaved(t *testing.T) {
	src := t.TempDir()
	data := pattern(8*2048, 7)
	os.WriteFile(filepath.Join(src, "f"), data, 0o644)
	base, good := goodImage(t, src, "--norock")
	r := findRecord(t, good, good.Root(), "f")
	img := bytes.Clone(base)
	img[r.addr+drUnitSize], img[r.addr+drGapSize] = 1, 1
	put32(img, r.addr+drSize, 3*2048+100)
	var want []byte
	for _, blk := range []int{0, 2, 4, 6} {
		want = append(want, data[blk*2048:(blk+1)*2048]...)
	}
	want = want[:3*2048+100]
	fs, lb, err := mountBytes(t, img, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := walk(t, fs)["/f"].data; !bytes.Equal(got, want) {
		t.Errorf("interleaved read differs (%d bytes, want %d); log %s", len(got), len(want), lb)
	}
	// A gap that takes the last unit past the device is EIO.
	img[r.addr+drGapSize] = 255
	put32(img, r.addr+drSize, 8*2048)
	fs, lb, _ = mountBytes(t, img, nil)
	if err := openPath(fs, "/f"); !errors.Is(err, syscall.EIO) || len(lb.lines()) != 1 {
		t.Errorf("interleave past the end: %v, log %q", err, lb.lines())
	}
}

// TestMultiExtentOver4GiB makes a level 3 image of a sparse file past
// 4 GiB, which xorriso records in two sections (ECMA-119 6.5.1: a data
// length is 32 bits), and reads the markers on both sides of the
// section boundary and at the end. Writing the 4 GiB image takes a
// minute or two, so the test runs only with CD9660_BIG=1;
// TestMultiExtentPast4GiBSparse covers the same offsets in every run.
func TestMultiExtentOver4GiB(t *testing.T) {
	if os.Getenv("CD9660_BIG") != "1" {
		t.Skip("set CD9660_BIG=1 to write a 4 GiB image")
	}
	dir := t.TempDir()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || st.Bavail*uint64(st.Bsize) < 10<<30 {
		t.Skipf("less than 10 GiB free in %s", dir)
	}
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	const size = 1<<32 + 1<<20
	marks := map[int64]string{0: "START", 0xFFFFF800 - 3: "EDGE!!", size - 3: "END"}
	f, err := os.Create(filepath.Join(src, "huge"))
	if err != nil {
		t.Fatal(err)
	}
	for off, m := range marks {
		f.WriteAt([]byte(m), off)
	}
	f.Close()
	img := mkiso(t, src, "-iso-level", "3", "-R")
	dev, err := blkdev.Open(img, true)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Mount(vnodeops.MountArgs{Name: "big", Dev: dev, ReadOnly: true, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Unmount(false)
	v := vnodeAt(t, fs, "/huge")
	if n := len(v.(*node).sections); n < 2 {
		t.Errorf("%d sections, want 2 or more", n)
	}
	if a, _ := v.Getattr(); a.Size != size {
		t.Errorf("size %d, want %d", a.Size, size)
	}
	for off, m := range marks {
		buf := make([]byte, len(m)+10)
		n, err := v.Read(buf, off-5)
		want := append(append(make([]byte, 5), m...), make([]byte, 5)...)
		if off == 0 {
			n, err = v.Read(buf[5:], 0)
			n += 5
		}
		if off == size-3 {
			want = want[:len(want)-5]
		}
		if err != nil || !bytes.Equal(buf[:n], want) {
			t.Errorf("at %d: %q, %v; want %q", off, buf[:n], err, want)
		}
	}
}
