package ext2fs

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

// xattrClock is the kernel clock of the xattr tests: ctime after a
// change must be this.
var xattrClock = time.Unix(2_000_000_000, 0)

// bootXattr mounts img read-write at /mnt in a kernel with xattrClock and
// a logger into logbuf (nil: discarded).
func bootXattr(t *testing.T, img string, logbuf *bytes.Buffer) (*rumpcore.Kernel, *rumpcore.Proc) {
	t.Helper()
	opts := rumpcore.Options{Now: func() time.Time { return xattrClock }}
	if logbuf != nil {
		opts.Logger = slog.New(slog.NewTextHandler(logbuf, nil))
	}
	k, err := rumpcore.Init(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Mount("/mnt", rumpcore.MountSpec{Type: "ext2fs", Image: img}); err != nil {
		k.Shutdown()
		t.Fatalf("mount %s: %v", img, err)
	}
	t.Cleanup(func() { k.Shutdown() })
	return k, k.NewProc(vnodeops.Root)
}

// lookupNoFollow returns a reference to /mnt/name itself, a symbolic
// link not followed.
func lookupNoFollow(t *testing.T, k *rumpcore.Kernel, name string) *rumpcore.Vnode {
	t.Helper()
	root := k.Root()
	defer root.Release()
	mnt, err := root.Lookup(vnodeops.Root, "mnt")
	if err != nil {
		t.Fatal(err)
	}
	defer mnt.Release()
	v, err := mnt.Lookup(vnodeops.Root, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// eaGet returns the value of attribute name of path in img as debugfs
// reads it, or ok false when debugfs finds none.
func eaGet(t *testing.T, img, path, name string) (val []byte, ok bool) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "val")
	msg := debugfs(t, img, false, "ea_get -f "+out+" "+path+" "+name)
	val, err := os.ReadFile(out)
	if err != nil {
		if strings.Contains(msg, "not found") || strings.Contains(msg, "No such") {
			return nil, false
		}
		t.Fatalf("ea_get %s %s: %v: %s", path, name, err, msg)
	}
	return val, true
}

// eaNames lists the attribute names of path in img as debugfs sees them.
func eaNames(t *testing.T, img, path string) []string {
	t.Helper()
	out := debugfs(t, img, false, "ea_list "+path)
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\s*(\S+) \(\d+\)`).FindAllStringSubmatch(out, -1) {
		names = append(names, m[1])
	}
	slices.Sort(names)
	return names
}

// fileACLOf returns i_file_acl of path in img (0: no attribute block).
func fileACLOf(t *testing.T, img, path string) int64 {
	t.Helper()
	out := debugfs(t, img, false, "stat "+path)
	m := regexp.MustCompile(`File ACL: (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("stat %s: no File ACL in\n%s", path, out)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// testACL is a POSIX ACL in xattr form: user::rw-, user:1000:r--,
// group::r--, mask::r--, other::---.
func testACL() []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range []struct {
		tag, perm uint16
		id        uint32
	}{{1, 6, aclUndefinedID}, {2, 4, 1000}, {4, 4, aclUndefinedID}, {0x10, 4, aclUndefinedID}, {0x20, 0, aclUndefinedID}} {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

// aclUnnamedIDs sets the e_id of the entries of an xattr-form ACL that
// name no user or group to ACL_UNDEFINED_ID.
func aclUnnamedIDs(b []byte) []byte {
	b = slices.Clone(b)
	for off := 4; off+8 <= len(b); off += 8 {
		if !aclNamed(binary.LittleEndian.Uint16(b[off:])) {
			binary.LittleEndian.PutUint32(b[off+4:], aclUndefinedID)
		}
	}
	return b
}

func wantXattrErr(t *testing.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if !isErrno(err, want) {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
}

// TestXattrWrite sets, replaces and removes attributes of every kind on
// ext2 and ext3 images with 128- and 256-byte inodes and 1 and 4 KiB
// blocks, then checks the image with e2fsck -fn and reads the values
// back with debugfs and through a new mount.
func TestXattrWrite(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		bs   int
	}{
		{"ext2-128-1k", []string{"-t", "ext2", "-I", "128", "-b", "1024"}, 1024},
		{"ext2-256-1k", []string{"-t", "ext2", "-I", "256", "-b", "1024"}, 1024},
		{"ext2-256-4k", []string{"-t", "ext2", "-I", "256", "-b", "4096"}, 4096},
		{"ext3-256-4k", []string{"-t", "ext3", "-I", "256", "-b", "4096"}, 4096},
	} {
		t.Run(c.name, func(t *testing.T) { testXattrWrite(t, c.args, c.bs, c.args[3] == "256") })
	}
}

func testXattrWrite(t *testing.T, args []string, bs int, large bool) {
	src := t.TempDir()
	for _, n := range []string{"f", "g", "h", "gone"} {
		if err := os.WriteFile(filepath.Join(src, n), []byte("data of "+n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(src, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(src, "l")); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, img, "16M", src, args...)
	debugfs(t, img, true, "ea_set /h user.pre old")
	debugfs(t, img, true, "ea_set /h trusted.pre t")
	debugfs(t, img, true, "ea_set /gone user.big "+strings.Repeat("g", 300))

	k, p := bootXattr(t, img, nil)
	big := bytes.Repeat([]byte("0123456789abcdef"), 40) // 640 bytes: a block's
	hiName := "user.caf\xe9"                            // a byte above 0x7f in the hash
	sets := []struct {
		path, name string
		val        []byte
		flags      int
	}{
		{"/mnt/f", "user.a", []byte("hello"), 0},
		{"/mnt/f", "user.a", []byte("world"), vnodeops.XattrReplace},
		{"/mnt/f", "user.big", big, vnodeops.XattrCreate},
		{"/mnt/f", "trusted.t", []byte("tv"), 0},
		{"/mnt/f", "security.selinux", []byte("system_u:object_r:etc_t:s0\x00"), 0},
		{"/mnt/f", "system.posix_acl_access", testACL(), 0},
		{"/mnt/f", "user.empty", []byte{}, 0},
		{"/mnt/f", hiName, []byte("\xff\x00\x01"), 0},
		{"/mnt/d", "user.dirattr", []byte("1"), 0},
		{"/mnt/d", "system.posix_acl_default", testACL(), 0},
		{"/mnt/h", "user.new", []byte("new"), 0},
	}
	for _, s := range sets {
		if err := p.Setxattr(s.path, s.name, s.val, s.flags); err != nil {
			t.Fatalf("setxattr %s %s: %v", s.path, s.name, err)
		}
	}
	wantXattrErr(t, "XATTR_CREATE of an existing attribute", p.Setxattr("/mnt/f", "user.a", []byte("x"), vnodeops.XattrCreate), syscall.EEXIST)
	wantXattrErr(t, "XATTR_REPLACE of a missing attribute", p.Setxattr("/mnt/f", "user.none", []byte("x"), vnodeops.XattrReplace), syscall.ENODATA)
	wantXattrErr(t, "removing a missing attribute", p.Removexattr("/mnt/f", "user.none"), syscall.ENODATA)
	wantXattrErr(t, "a value larger than a block", p.Setxattr("/mnt/g", "user.huge", make([]byte, bs), 0), syscall.E2BIG)
	wantXattrErr(t, "system.data", p.Setxattr("/mnt/g", "system.data", nil, 0), syscall.EOPNOTSUPP)
	if err := p.Removexattr("/mnt/h", "user.pre"); err != nil {
		t.Fatal(err)
	}
	// A fast symlink gains an attribute block and stays a fast symlink.
	lnk := lookupNoFollow(t, k, "l")
	if err := lnk.Setxattr(vnodeops.Root, "trusted.big", big, 0); err != nil {
		t.Fatalf("setxattr on a symlink: %v", err)
	}
	wantXattrErr(t, "user.* on a symlink", lnk.Setxattr(vnodeops.Root, "user.x", nil, 0), syscall.EPERM)
	lnk.Release()
	if target, err := p.Readlink("/mnt/l"); err != nil || target != "f" {
		t.Fatalf("readlink after an xattr block: %q, %v", target, err)
	}
	// Fill g's attribute space: ENOSPC, and what was set stays.
	var filled []string
	for i := 0; ; i++ {
		name := "user.k" + strconv.Itoa(i)
		err := p.Setxattr("/mnt/g", name, bytes.Repeat([]byte{byte(i)}, 40), 0)
		if isErrno(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatalf("setxattr %s: %v", name, err)
		}
		filled = append(filled, name)
		if i > 1000 {
			t.Fatal("no ENOSPC after 1000 attributes")
		}
	}
	if names, err := p.Listxattr("/mnt/g"); err != nil || len(names) != len(filled) {
		t.Fatalf("listxattr of the full file: %d names (%v), want %d", len(names), err, len(filled))
	}
	gWant := map[string][]byte{}
	for i, n := range filled {
		if i%2 == 0 {
			if err := p.Removexattr("/mnt/g", n); err != nil {
				t.Fatalf("removexattr %s: %v", n, err)
			}
			continue
		}
		gWant[n] = bytes.Repeat([]byte{byte(i)}, 40)
	}
	if err := p.Unlink("/mnt/gone"); err != nil {
		t.Fatal(err)
	}
	a, err := p.Stat("/mnt/f")
	if err != nil {
		t.Fatal(err)
	}
	if a.Ctime != xattrClock.UnixNano() {
		t.Errorf("ctime after setxattr: %d, want %d", a.Ctime, xattrClock.UnixNano())
	}
	if err := k.Shutdown(); err != nil {
		t.Fatal(err)
	}
	fsck(t, img)

	want := map[string]map[string][]byte{
		"/f": {"user.a": []byte("world"), "user.big": big, "trusted.t": []byte("tv"),
			"security.selinux": []byte("system_u:object_r:etc_t:s0\x00"), "user.empty": {},
			"system.posix_acl_access": testACL(), hiName: []byte("\xff\x00\x01")},
		"/d": {"user.dirattr": []byte("1"), "system.posix_acl_default": testACL()},
		"/h": {"user.new": []byte("new"), "trusted.pre": []byte("t")},
		"/l": {"trusted.big": big},
	}
	for path, attrs := range want {
		var names []string
		for n, v := range attrs {
			if n == hiName {
				continue // debugfs prints and parses such names its own way
			}
			names = append(names, n)
			got, ok := eaGet(t, img, path, n)
			if strings.HasPrefix(n, "system.posix_acl_") {
				got = aclUnnamedIDs(got) // debugfs gives them id 0, Linux -1
			}
			if !ok || !bytes.Equal(got, v) {
				t.Errorf("debugfs ea_get %s %s = %q (%v), want %q", path, n, got, ok, v)
			}
		}
		slices.Sort(names)
		got := slices.DeleteFunc(eaNames(t, img, path), func(n string) bool { return strings.HasPrefix(n, "user.caf") })
		if !slices.Equal(got, names) {
			t.Errorf("debugfs ea_list %s = %q, want %q", path, got, names)
		}
	}
	if got := eaNames(t, img, "/g"); len(got) != len(gWant) {
		t.Errorf("debugfs lists %d attributes of /g, want %d", len(got), len(gWant))
	}
	want["/g"] = gWant
	if large {
		if blk := fileACLOf(t, img, "/d"); blk != 0 {
			t.Errorf("/d's small attributes are in block %d, not in the inode", blk)
		}
	}

	// A new mount reads back what was written (/l itself, not its target).
	k, p = bootXattr(t, img, nil)
	lgetxattr := func(path, name string) ([]byte, error) {
		if path != "/l" {
			return p.Getxattr("/mnt"+path, name)
		}
		lnk := lookupNoFollow(t, k, "l")
		defer lnk.Release()
		return lnk.Getxattr(vnodeops.Root, name)
	}
	for path, attrs := range want {
		for n, v := range attrs {
			got, err := lgetxattr(path, n)
			if err != nil || !bytes.Equal(got, v) {
				t.Errorf("getxattr %s %s = %q, %v; want %q", path, n, got, err, v)
			}
		}
	}
}

// TestXattrSharedBlock: a block shared by three inodes (h_refcount 3) is
// copied for the inode that changes, loses a reference for each inode
// that leaves it, and is freed with its last reference.
func TestXattrSharedBlock(t *testing.T) {
	const bs = 1024
	src := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		if err := os.WriteFile(filepath.Join(src, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, img, "8M", src, "-t", "ext2", "-b", "1024", "-I", "128")
	shared := strings.Repeat("s", 200)
	for _, n := range []string{"a", "b", "c"} {
		debugfs(t, img, true, "ea_set /"+n+" user.s "+shared)
	}
	blk := fileACLOf(t, img, "/a")
	for _, n := range []string{"/b", "/c"} {
		own := fileACLOf(t, img, n)
		debugfs(t, img, true, "sif "+n+" file_acl "+strconv.FormatInt(blk, 10))
		debugfs(t, img, true, "freeb "+strconv.FormatInt(own, 10))
	}
	patch(t, img, blk*bs+xattrBlkRefOff, binary.LittleEndian.AppendUint32(nil, 3))
	// freeb leaves the free block counts behind; e2fsck mends them and
	// must then find the shared block valid.
	exec.Command("e2fsck", "-fy", img).Run()
	fsck(t, img)

	k, p := bootXattr(t, img, nil)
	if err := p.Setxattr("/mnt/b", "user.t", []byte("mine"), 0); err != nil {
		t.Fatal(err)
	}
	if err := k.Shutdown(); err != nil {
		t.Fatal(err)
	}
	fsck(t, img)
	if b := fileACLOf(t, img, "/b"); b == blk || b == 0 {
		t.Fatalf("/b's block %d after its change, shared block %d", b, blk)
	}
	for _, n := range []string{"/a", "/c"} {
		if b := fileACLOf(t, img, n); b != blk {
			t.Fatalf("%s left the shared block (%d, want %d)", n, b, blk)
		}
	}
	if got := binary.LittleEndian.Uint32(readAt(t, img, blk*bs+xattrBlkRefOff, 4)); got != 2 {
		t.Fatalf("h_refcount %d after one inode left, want 2", got)
	}
	if v, _ := eaGet(t, img, "/b", "user.s"); string(v) != shared {
		t.Errorf("/b lost user.s in its copy: %q", v)
	}
	if v, _ := eaGet(t, img, "/b", "user.t"); string(v) != "mine" {
		t.Errorf("/b user.t = %q", v)
	}
	if names := eaNames(t, img, "/a"); !slices.Equal(names, []string{"user.s"}) {
		t.Errorf("/a's attributes changed: %q", names)
	}

	k, p = bootXattr(t, img, nil)
	if err := p.Removexattr("/mnt/c", "user.s"); err != nil {
		t.Fatal(err)
	}
	if err := p.Unlink("/mnt/a"); err != nil {
		t.Fatal(err)
	}
	if err := k.Shutdown(); err != nil {
		t.Fatal(err)
	}
	fsck(t, img)
	if b := fileACLOf(t, img, "/c"); b != 0 {
		t.Errorf("/c without attributes still points at block %d", b)
	}
	if out := debugfs(t, img, false, "testb "+strconv.FormatInt(blk, 10)); !strings.Contains(out, "not in use") {
		t.Errorf("the shared block is still in use after its last reference: %s", out)
	}
}

// TestXattrCorrupt: a damaged attribute block or in-inode attribute area
// gives EIO and a log line naming the inode for reads and writes, changes
// nothing, and the file's data stays readable.
func TestXattrCorrupt(t *testing.T) {
	const bs = 1024
	// ibody is where the in-inode entries of a 256-byte inode start:
	// after the 128-byte base, the 32-byte i_extra_isize area and the magic.
	const ibody = goodOldInodeSize + 32 + 4
	for _, c := range []struct {
		name  string
		inode bool // damage the in-inode area, not the block
		off   int64
		b     []byte
	}{
		{"magic", false, 0, []byte{1, 2, 3, 4}},
		{"h_blocks", false, xattrHBlocksOff, []byte{7, 0, 0, 0}},
		{"h_refcount", false, xattrBlkRefOff, []byte{0, 0, 0, 0}},
		{"value-offset", false, xattrBlockHeader + 2, []byte{0xf0, 0xff}},
		{"value-size", false, xattrBlockHeader + 8, []byte{0, 0, 1, 0}},
		{"ea_inode", false, xattrBlockHeader + 4, []byte{12, 0, 0, 0}},
		{"inode-value-offset", true, ibody + 2, []byte{0xf0, 0}},
		{"inode-name-length", true, ibody, []byte{200}},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := t.TempDir()
			if err := os.WriteFile(filepath.Join(src, "x"), []byte("payload"), 0o644); err != nil {
				t.Fatal(err)
			}
			img := filepath.Join(t.TempDir(), "img")
			isize, val := "128", strings.Repeat("a", 100)
			if c.inode {
				isize, val = "256", "aa"
			}
			mkfs(t, img, "4M", src, "-t", "ext2", "-b", "1024", "-I", isize)
			debugfs(t, img, true, "ea_set /x user.a "+val)
			var at int64
			if c.inode {
				if blk := fileACLOf(t, img, "/x"); blk != 0 {
					t.Fatalf("user.a went to block %d, not into the inode", blk)
				}
				at = inodeOffset(t, img, "/x", bs)
			} else {
				at = fileACLOf(t, img, "/x") * bs
			}
			patch(t, img, at+c.off, c.b)
			before := readAt(t, img, at, bs)
			var log bytes.Buffer
			k, p := bootXattr(t, img, &log)
			a, err := p.Stat("/mnt/x")
			if err != nil {
				t.Fatal(err)
			}
			ino := "ino=" + strconv.FormatUint(a.Ino, 10)
			_, gerr := p.Getxattr("/mnt/x", "user.a")
			serr := p.Setxattr("/mnt/x", "user.b", []byte("b"), 0)
			rerr := p.Removexattr("/mnt/x", "user.a")
			for what, err := range map[string]error{"getxattr": gerr, "setxattr": serr, "removexattr": rerr} {
				wantXattrErr(t, what, err, syscall.EIO)
			}
			if !strings.Contains(log.String(), ino) {
				t.Errorf("no log line naming %s:\n%s", ino, log.String())
			}
			fd, err := p.Open("/mnt/x", syscall.O_RDONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 16)
			n, _ := p.Pread(fd, buf, 0)
			p.Close(fd)
			if string(buf[:n]) != "payload" {
				t.Errorf("data after the failed xattr calls: %q", buf[:n])
			}
			k.Shutdown()
			if !bytes.Equal(readAt(t, img, at, bs), before) {
				t.Error("the damaged area was written")
			}
		})
	}
}

// TestXattrExt4Format reads the attributes e2fsprogs wrote on an ext4
// image with metadata_csum (in the inode and in a block) and checks that
// the hashes and the block checksum this driver computes are the ones
// e2fsprogs stored, and that a block built from the parsed entries is
// the block e2fsprogs wrote.
func TestXattrExt4Format(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, img, "16M", src, "-t", "ext4", "-b", "1024")
	big := strings.Repeat("b", 400)
	debugfs(t, img, true, "ea_set /x user.small s")
	debugfs(t, img, true, "ea_set /x user.big "+big)
	debugfs(t, img, true, "ea_set /x trusted.other "+strings.Repeat("o", 300))
	fsck(t, img)
	_, p := boot(t, img, true, nil)
	for n, v := range map[string]string{"user.small": "s", "user.big": big, "trusted.other": strings.Repeat("o", 300)} {
		got, err := p.Getxattr("/mnt/x", n)
		if err != nil || string(got) != v {
			t.Errorf("getxattr %s: %q, %v", n, got, err)
		}
	}

	mfs, err := mountDirect(t, img, true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mfs.Unmount(true)
	fs := mfs.(*fsys)
	if !fs.csum {
		t.Fatal("mke2fs -t ext4 made no metadata_csum image")
	}
	a, err := p.Stat("/mnt/x")
	if err != nil {
		t.Fatal(err)
	}
	vn, err := fs.VGet(a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	v := vn.(*vnode)
	blk := v.fileACL()
	if blk == 0 {
		t.Fatal("no attribute block")
	}
	d := readAt(t, img, int64(blk)*1024, 1024)
	if got, want := fs.xattrBlockCsum(blk, d), binary.LittleEndian.Uint32(d[xattrHCsumOff:]); got != want {
		t.Errorf("block checksum %#x, e2fsprogs stored %#x", got, want)
	}
	recs, err := v.parseXattrs(d[xattrBlockHeader:], d)
	if err != nil {
		t.Fatal(err)
	}
	var hashes []uint32
	off := xattrBlockHeader
	for _, r := range recs {
		stored := binary.LittleEndian.Uint32(d[off+xattrEHashOff:])
		if h := xattrEntryHash(r.name, r.value); h != stored {
			t.Errorf("entry %q hash %#x, e2fsprogs stored %#x", r.name, h, stored)
		}
		hashes = append(hashes, stored)
		off += align4(xattrEntryFixed + len(r.name))
	}
	// e2fsprogs leaves h_hash 0 (no sharing by hash); the kernel computes
	// it as xattrBlockHash does.
	storedHash := binary.LittleEndian.Uint32(d[xattrHHashOff:])
	if h := xattrBlockHash(hashes); storedHash != 0 && h != storedHash {
		t.Errorf("block hash %#x, e2fsprogs stored %#x", h, storedHash)
	}
	if !slices.IsSortedFunc(recs, xattrBlockCmp) {
		t.Errorf("e2fsprogs' block order is not ours: %v", recs)
	}
	got := fs.buildXattrBlock(blk, recs, binary.LittleEndian.Uint32(d[xattrBlkRefOff:]))
	binary.LittleEndian.PutUint32(got[xattrHHashOff:], storedHash)
	fs.sealXattrBlock(blk, got)
	if !bytes.Equal(got, d) {
		t.Errorf("the block built from e2fsprogs' entries differs from e2fsprogs' block:\n%x\n%x", got, d)
	}
}

// TestXattrACLForm: POSIX ACLs go to disk in the ext4 form and come back
// in the xattr form; malformed ones are refused.
func TestXattrACLForm(t *testing.T) {
	x := testACL()
	d, ok := aclToDisk(x)
	if !ok {
		t.Fatal("aclToDisk refused a valid ACL")
	}
	// version 1, four short entries (4 bytes) and one named (8 bytes)
	if len(d) != 4+4*4+8 || binary.LittleEndian.Uint32(d) != 1 {
		t.Fatalf("disk form %x", d)
	}
	back, ok := aclFromDisk(d)
	if !ok || !bytes.Equal(back, x) {
		t.Fatalf("round trip: %x, %v", back, ok)
	}
	for _, bad := range [][]byte{nil, {2, 0, 0}, {3, 0, 0, 0}, append(slices.Clone(x), 1), {2, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0}} {
		if _, ok := aclToDisk(bad); ok {
			t.Errorf("aclToDisk accepted %x", bad)
		}
	}
	for _, bad := range [][]byte{{1, 0, 0}, {1, 0, 0, 0, 2, 0, 4, 0}, {1, 0, 0, 0, 0x40, 0, 0, 0}, {9, 0, 0, 0}} {
		if _, ok := aclFromDisk(bad); ok {
			t.Errorf("aclFromDisk accepted %x", bad)
		}
	}
}

// TestXattrGarbage damages the attribute block and the in-inode area of
// a file at random and runs every attribute call on it: errors are fine,
// a panic is not, and a write that succeeds leaves attributes the next
// read can parse.
func TestXattrGarbage(t *testing.T) {
	const bs = 1024
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "x"), []byte("payload"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(t.TempDir(), "base")
	mkfs(t, base, "2M", src, "-t", "ext2", "-b", "1024", "-I", "256")
	debugfs(t, base, true, "ea_set /x user.small s")
	debugfs(t, base, true, "ea_set /x user.big "+strings.Repeat("b", 300))
	debugfs(t, base, true, "ea_set /x trusted.t "+strings.Repeat("t", 200))
	areas := []int64{fileACLOf(t, base, "/x") * bs, inodeOffset(t, base, "/x", bs) + goodOldInodeSize}
	clean, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 9))
	img := filepath.Join(t.TempDir(), "img")
	for i := 0; i < 150; i++ {
		if err := os.WriteFile(img, clean, 0o644); err != nil {
			t.Fatal(err)
		}
		at := areas[r.IntN(len(areas))]
		for n := 1 + r.IntN(6); n > 0; n-- {
			patch(t, img, at+int64(r.IntN(128)), []byte{byte(r.Uint32())})
		}
		k, p := bootXattr(t, img, nil)
		p.Listxattr("/mnt/x")
		p.Getxattr("/mnt/x", "user.big")
		serr := p.Setxattr("/mnt/x", "user.new", bytes.Repeat([]byte{'n'}, r.IntN(400)), 0)
		rerr := p.Removexattr("/mnt/x", "user.small")
		if serr == nil || rerr == nil {
			if _, err := p.Listxattr("/mnt/x"); err != nil {
				t.Errorf("round %d: a write succeeded (%v, %v) but the attributes no longer read: %v", i, serr, rerr, err)
			}
		}
		k.Shutdown()
	}
}
