package msdosfs

import (
	"encoding/binary"
	"github.com/rump9p/rump9p/tests/hosttools"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/blkdev"
	"github.com/rump9p/rump9p/vnodeops"
)

func TestFits83(t *testing.T) {
	for _, c := range []struct {
		name string
		sn   string
		nt   byte
		ok   bool
	}{
		{"README", "README     ", 0, true},
		{"readme.txt", "README  TXT", ntLowerBase | ntLowerExt, true},
		{"README.txt", "README  TXT", ntLowerExt, true},
		{"a.B", "A       B  ", ntLowerBase, true},
		{"Readme.txt", "", 0, false},
		{"toolongname.txt", "", 0, false},
		{"a.text", "", 0, false},
		{"a b", "", 0, false},
		{"a+b", "", 0, false},
		{".x", "", 0, false},
		{"x.", "", 0, false},
		{"a.b.c", "", 0, false},
		{"é", "", 0, false},
	} {
		sn, nt, ok := fits83(c.name)
		if ok != c.ok || (ok && (string(sn[:]) != c.sn || nt != c.nt)) {
			t.Errorf("fits83(%q) = %q, %#x, %v; want %q, %#x, %v", c.name, sn[:], nt, ok, c.sn, c.nt, c.ok)
		}
	}
}

func TestAliasGeneration(t *testing.T) {
	for _, c := range []struct{ name, basis, tail1, tail12345 string }{
		{"Long File Name.txt", "LONGFILETXT", "LONGFI~1TXT", "LO~12345TXT"},
		{".bashrc", "BASHRC     ", "BASHRC~1   ", "BA~12345   "},
		{"a+b,c.tar.gz", "A_B_CTARGZ ", "A_B_CT~1GZ ", "A_~12345GZ "},
		{"名前.txt", "__      TXT", "__~1    TXT", "__~12345TXT"},
		{"...", "_          ", "_~1        ", "_~12345    "},
	} {
		b := basisName(c.name)
		if string(b[:]) != c.basis {
			t.Errorf("basisName(%q) = %q, want %q", c.name, b[:], c.basis)
		}
		if s := withTail(b, 1); string(s[:]) != c.tail1 {
			t.Errorf("withTail(%q, 1) = %q, want %q", b[:], s[:], c.tail1)
		}
		if s := withTail(b, 12345); string(s[:]) != c.tail12345 {
			t.Errorf("withTail(%q, 12345) = %q, want %q", b[:], s[:], c.tail12345)
		}
	}
}

func TestShortDisplay(t *testing.T) {
	for _, c := range []struct {
		sn   string
		nt   byte
		want string
	}{
		{"README  TXT", 0, "README.TXT"},
		{"README  TXT", ntLowerBase, "readme.TXT"},
		{"README     ", ntLowerExt | ntLowerBase, "readme"},
		{"\x05BC     DAT", 0, "σBC.DAT"},
		{"\x82T\xe9        ", 0, "éTΘ"},
	} {
		if got := shortDisplay([]byte(c.sn), c.nt); got != c.want {
			t.Errorf("shortDisplay(%q, %#x) = %q, want %q", c.sn, c.nt, got, c.want)
		}
	}
}

func TestLongEntriesRoundTrip(t *testing.T) {
	name := "a name with 😀 and more than twenty-six characters"
	sn := basisName(name)
	ents := longEntries(name, sn[:])
	if len(ents) != (len(encodeLong(name))+12)/13 {
		t.Fatalf("%d entries", len(ents))
	}
	if ents[0][0]&lfnLast == 0 || int(ents[0][0]&^lfnLast) != len(ents) || ents[len(ents)-1][0] != 1 {
		t.Errorf("ordinals %#x ... %#x", ents[0][0], ents[len(ents)-1][0])
	}
	for _, e := range ents {
		if e[11] != attrLongName || e[13] != lfnChecksum(sn[:]) || e[26] != 0 || e[27] != 0 {
			t.Errorf("bad long entry % x", e[:])
		}
	}
}

// mkImage makes a FAT image with mkfs.fat and returns it in a memory
// device.
func mkImage(t *testing.T, sizeKiB string, args ...string) *blkdev.MemDevice {
	return blkdev.NewMemDeviceFrom(mkImageBytes(t, sizeKiB, args...), false)
}

// mkImageBytes makes a FAT image with mkfs.fat and returns its bytes.
func mkImageBytes(t *testing.T, sizeKiB string, args ...string) []byte {
	t.Helper()
	img := filepath.Join(t.TempDir(), "img")
	path := hosttools.Need(t, "mkfs.fat")
	if out, err := exec.Command(path, append(args, "-C", img, sizeKiB)...).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.fat: %v\n%s", err, out)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInodeScheme drives the FS as the kernel does and checks that inode
// numbers stay fixed for a live vnode, survive its reclaim after a
// rename, and never name two files at once.
func TestInodeScheme(t *testing.T) {
	dev := mkImage(t, "40000", "-F", "32", "-s", "1")
	vfs, err := Mount(vnodeops.MountArgs{Name: "t", Dev: dev, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	fs := vfs.(*fsys)
	get := func(ino uint64) vnodeops.ReadWriteVnode {
		t.Helper()
		v, err := rwGet(fs, ino)
		if err != nil {
			t.Fatalf("VGet(%#x): %v", ino, err)
		}
		return v
	}
	put := func(v vnodeops.ReadWriteVnode) {
		v.Inactive()
		v.Reclaim()
	}
	root := get(fs.Root())
	dIno, err := root.Mkdir("D1", 0o755, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := get(dIno)
	// ".." of a first-level directory holds cluster 0 [fatgen103 §6].
	if err := fs.Sync(); err != nil {
		t.Fatal(err)
	}
	c := uint32(dIno - dirInoBase)
	off := fs.g.clusterOffset(c)
	raw := dev.Bytes()[off : off+64]
	if string(raw[32:43]) != "..         " || binary.LittleEndian.Uint16(raw[32+26:]) != 0 || binary.LittleEndian.Uint16(raw[32+20:]) != 0 {
		t.Errorf("\"..\" entry of D1: % x", raw[32:64])
	}
	if string(raw[:11]) != ".          " || uint32(binary.LittleEndian.Uint16(raw[26:]))|uint32(binary.LittleEndian.Uint16(raw[20:]))<<16 != c {
		t.Errorf("\".\" entry of D1: % x", raw[:32])
	}
	aIno, err := root.Create("a file", 0o644, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	a := get(aIno)
	if got, _ := root.Lookup("A FILE"); got != aIno {
		t.Errorf("lookup A FILE = %#x, want %#x", got, aIno)
	}
	// Rename a live file: same number; then reclaim it and VGet again.
	if err := root.Rename("a file", a, d, "moved", nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Lookup("moved"); got != aIno {
		t.Errorf("after rename: lookup = %#x, want %#x", got, aIno)
	}
	put(a)
	a = get(aIno)
	if at, _ := a.Getattr(); at.Ino != aIno {
		t.Errorf("Getattr Ino %#x", at.Ino)
	}
	// A new file in the old slot gets another number.
	bIno, err := root.Create("b file", 0o644, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if bIno == aIno {
		t.Errorf("b got a's number %#x", bIno)
	}
	b := get(bIno)
	if _, err := a.Write([]byte("aaa"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("b"), 0); err != nil {
		t.Fatal(err)
	}
	if at, _ := a.Getattr(); at.Size != 3 {
		t.Errorf("a size %d", at.Size)
	}
	// Unlink b while live; its slot's next file gets a fresh number.
	if err := root.Remove("b file", b); err != nil {
		t.Fatal(err)
	}
	cIno, err := root.Create("c file", 0o644, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if cIno == bIno {
		t.Errorf("c got the number of the unlinked, still live b")
	}
	if _, err := b.Read(make([]byte, 1), 0); err != nil {
		t.Errorf("read of unlinked b: %v", err)
	}
	put(b)
	if _, err := rwGet(fs, bIno); err == nil && bIno != cIno {
		// bIno is b's natural number; the slot now holds c under cIno.
		t.Errorf("VGet of the removed file's number succeeded")
	}
	// Directories keep their number across a rename into another parent.
	eIno, err := d.Mkdir("E", 0o755, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	e := get(eIno)
	if err := d.Rename("E", e, root, "E moved", nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := root.Lookup("e MOVED"); got != eIno {
		t.Errorf("moved dir lookup %#x, want %#x", got, eIno)
	}
	put(e)
	e = get(eIno)
	if up, _ := e.Lookup(".."); up != fs.Root() {
		t.Errorf(".. of moved dir = %#x", up)
	}
	// A case-only rename, if the kernel passes one down (tvp == fvp).
	if err := root.Rename("E moved", e, root, "e MOVED", e); err != nil {
		t.Fatalf("case-only rename: %v", err)
	}
	var names []string
	root.Readdir(0, func(d vnodeops.Dirent) bool {
		names = append(names, d.Name)
		return true
	})
	found := false
	for _, nm := range names {
		if nm == "E moved" {
			t.Errorf("old spelling still listed: %q", names)
		}
		found = found || nm == "e MOVED"
	}
	if !found {
		t.Errorf("new spelling not listed: %q", names)
	}
	if got, err := root.Lookup("E MOVED"); err != nil || got != eIno {
		t.Errorf("lookup after case rename: %#x, %v", got, err)
	}
	if err := root.Rmdir("e MOVED", e); err != nil {
		t.Errorf("rmdir: %v", err)
	}
	for _, v := range []vnodeops.ReadWriteVnode{e, a, d, root} {
		put(v)
	}
	if err := fs.Unmount(false); err != nil {
		t.Fatal(err)
	}
}

// TestUnsupportedTypes: FAT stores regular files and directories only.
func TestUnsupportedTypes(t *testing.T) {
	dev := mkImage(t, "1024", "-F", "12")
	vfs, err := Mount(vnodeops.MountArgs{Name: "t", Dev: dev, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	root, err := rwGet(vfs, vfs.Root())
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []uint32{vnodeops.S_IFIFO, vnodeops.S_IFCHR, vnodeops.S_IFBLK, vnodeops.S_IFSOCK} {
		if _, err := root.Mknod("node", mode|0o644, 0, 0, 0); err != syscall.EPERM {
			t.Errorf("mknod %o: %v, want EPERM", mode, err)
		}
	}
	ino, err := root.Mknod("regular", vnodeops.S_IFREG|0o644, 0, 0, 0)
	if err != nil {
		t.Fatalf("mknod regular: %v", err)
	}
	f, err := rwGet(vfs, ino)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Symlink("l", "regular", 0, 0); err != syscall.EPERM {
		t.Errorf("symlink: %v", err)
	}
	if err := root.Link(f, "l"); err != syscall.EPERM {
		t.Errorf("link: %v", err)
	}
	if _, err := f.Readlink(); err != syscall.EINVAL {
		t.Errorf("readlink: %v", err)
	}
	if _, err := f.Lookup("x"); err != syscall.ENOTDIR {
		t.Errorf("lookup in a file: %v", err)
	}
	if err := f.Readdir(0, func(vnodeops.Dirent) bool { return true }); err != syscall.ENOTDIR {
		t.Errorf("readdir of a file: %v", err)
	}
	for _, v := range []vnodeops.ReadWriteVnode{f, root} {
		v.Inactive()
		v.Reclaim()
	}
	if err := vfs.Unmount(false); err != nil {
		t.Fatal(err)
	}
}

// TestReadOnlyMount: every write gives EROFS and the device is untouched.
func TestReadOnlyMount(t *testing.T) {
	dev := mkImage(t, "1024", "-F", "12")
	before := append([]byte(nil), dev.Bytes()...)
	vfs, err := Mount(vnodeops.MountArgs{Name: "t", Dev: dev, ReadOnly: true, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	root, err := rwGet(vfs, vfs.Root())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Create("f", 0o644, 0, 0); err != syscall.EROFS {
		t.Errorf("create: %v", err)
	}
	if _, err := root.Mkdir("d", 0o755, 0, 0); err != syscall.EROFS {
		t.Errorf("mkdir: %v", err)
	}
	if err := root.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetMtime, Mtime: 1}); err != syscall.EROFS {
		t.Errorf("setattr: %v", err)
	}
	root.Inactive()
	root.Reclaim()
	if err := vfs.Unmount(false); err != nil {
		t.Fatal(err)
	}
	if string(before) != string(dev.Bytes()) {
		t.Errorf("read-only mount changed the image")
	}
}

// TestFAT32NoMirror: with BPB_ExtFlags bit 7 set only the active FAT is
// read and written [fatgen103 §3.3].
func TestFAT32NoMirror(t *testing.T) {
	b := mkImageBytes(t, "40000", "-F", "32", "-s", "1")
	binary.LittleEndian.PutUint16(b[40:], 0x80|1) // FAT 1 active, no mirroring
	dev := blkdev.NewMemDeviceFrom(b, false)
	rsvd := int(binary.LittleEndian.Uint16(b[14:]))
	fatSz := int(binary.LittleEndian.Uint32(b[36:]))
	fat0 := append([]byte(nil), b[rsvd*512:(rsvd+fatSz)*512]...)
	vfs, err := Mount(vnodeops.MountArgs{Name: "t", Dev: dev, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	root, err := rwGet(vfs, vfs.Root())
	if err != nil {
		t.Fatal(err)
	}
	ino, err := root.Create("f", 0o644, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := rwGet(vfs, ino)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 10000), 0); err != nil {
		t.Fatal(err)
	}
	for _, v := range []vnodeops.ReadWriteVnode{f, root} {
		v.Inactive()
		v.Reclaim()
	}
	if err := vfs.Unmount(false); err != nil {
		t.Fatal(err)
	}
	b = dev.Bytes()
	for i, c := range b[rsvd*512 : (rsvd+fatSz)*512] {
		if c != fat0[i] {
			t.Errorf("the inactive FAT 0 was written at byte %d: %#x -> %#x", i, fat0[i], c)
			break
		}
	}
	fat1 := b[(rsvd+fatSz)*512:]
	// The root is cluster 2; the file's chain starts after it.
	if c3 := binary.LittleEndian.Uint32(fat1[3*4:]) & 0x0FFFFFFF; c3 != 4 {
		t.Errorf("FAT 1 entry of cluster 3 = %#x, want 4", c3)
	}
}

// rwGet is fs.VGet with the vnode's whole read-write interface.
func rwGet(fs vnodeops.FS, ino uint64) (vnodeops.ReadWriteVnode, error) {
	v, err := fs.VGet(ino)
	if err != nil {
		return nil, err
	}
	return v.(vnodeops.ReadWriteVnode), nil
}
