package fuzzfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rump9p/rump9p/vnodeops"
)

// Limits bound the work done on one image, so that an image claiming
// huge files or directories costs no more than a good one.
type Limits struct {
	Inodes    int   // inodes visited by a walk
	Entries   int   // entries read from one directory
	FileBytes int64 // bytes read from one file
}

// DefaultLimits suit images of up to a few hundred files.
var DefaultLimits = Limits{Inodes: 1000, Entries: 300, FileBytes: 256 << 10}

// Timeout is how long one input may take before Watchdog crashes the
// process, which makes go test record the input as a failure.
const Timeout = 20 * time.Second

// Watchdog panics unless the returned stop is called within Timeout: a
// hang is a failure, and a crash is the one way to record the input of
// one that never returns.
func Watchdog(name string) (stop func()) {
	t := time.AfterFunc(Timeout, func() { panic(name + ": input takes over " + Timeout.String()) })
	return func() { t.Stop() }
}

// IsErrno reports whether err is nil or a (possibly wrapped)
// syscall.Errno, the only errors the vnode boundary may return.
func IsErrno(err error) bool {
	var en syscall.Errno
	return err == nil || errors.As(err, &en)
}

// Entry is a file found by a walk: its name in its parent directory.
type Entry struct {
	Parent uint64
	Name   string
	Ino    uint64
	Mode   uint32
}

// Kernel plays the kernel for one mounted file system: it holds at most
// one vnode per inode (FS.VGet is called once until the vnode is
// reclaimed), and fails the test on an error that is not an errno.
type Kernel struct {
	t      testing.TB
	fs     vnodeops.FS
	lim    Limits
	live   map[uint64]vnodeops.Vnode
	failed []string
}

// NewKernel returns a Kernel over fs.
func NewKernel(t testing.TB, fs vnodeops.FS, lim Limits) *Kernel {
	return &Kernel{t: t, fs: fs, lim: lim, live: map[uint64]vnodeops.Vnode{}}
}

// ok fails the test if err is not an errno and reports whether it is
// nil, noting the first failed calls for Failed.
func (k *Kernel) ok(op string, err error) bool {
	if !k.errno(op, err) {
		return false
	}
	if err != nil && len(k.failed) < 50 {
		k.failed = append(k.failed, op+": "+err.Error())
	}
	return err == nil
}

// errno fails the test if err is not an errno and reports whether it is
// one: for calls that are meant to fail.
func (k *Kernel) errno(op string, err error) bool {
	if !IsErrno(err) {
		k.t.Fatalf("%s: %v (%T) is not a syscall.Errno", op, err, err)
	}
	return true
}

// Failed returns the first 50 calls that failed (with an errno), but for
// those meant to fail (an absent name, Readlink of a file that is not a
// link): on a base image, what the driver cannot do.
func (k *Kernel) Failed() []string { return k.failed }

// get returns the vnode of ino, taking it with VGet if not held.
func (k *Kernel) get(ino uint64) vnodeops.Vnode {
	if v, ok := k.live[ino]; ok {
		return v
	}
	v, err := k.fs.VGet(ino)
	if !k.ok(fmt.Sprintf("VGet(%d)", ino), err) {
		return nil
	}
	k.live[ino] = v
	return v
}

// put drops the kernel's reference: Inactive, then Reclaim.
func (k *Kernel) put(ino uint64) {
	v, ok := k.live[ino]
	if !ok {
		return
	}
	delete(k.live, ino)
	k.ok(fmt.Sprintf("Inactive(%d)", ino), v.Inactive())
	k.ok(fmt.Sprintf("Reclaim(%d)", ino), v.Reclaim())
}

// Release drops every vnode held.
func (k *Kernel) Release() {
	for ino := range k.live {
		k.put(ino)
	}
}

// Walk visits every inode reachable from the root once, breadth first,
// within the limits: attributes, directories read whole and resumed from
// their cookies (and from a cookie no driver gave out), every name looked
// up, files read, links read, extended attributes listed and read. It
// returns what it found, the root first.
func (k *Kernel) Walk() []Entry {
	root := k.fs.Root()
	found := []Entry{{Parent: root, Name: ".", Ino: root, Mode: vnodeops.S_IFDIR}}
	seen := map[uint64]bool{}
	for i := 0; i < len(found) && len(seen) < k.lim.Inodes; i++ {
		ino := found[i].Ino
		if seen[ino] {
			continue
		}
		seen[ino] = true
		_, held := k.live[ino]
		v := k.get(ino)
		if v == nil {
			continue
		}
		a, err := v.Getattr()
		if !k.ok("Getattr", err) {
			a.Mode = 0
		}
		found[i].Mode = a.Mode
		switch a.Mode & vnodeops.S_IFMT {
		case vnodeops.S_IFDIR:
			found = append(found, k.readDir(ino, v)...)
		case vnodeops.S_IFREG:
			k.readFile(v)
		}
		if _, err := v.Readlink(); a.Mode&vnodeops.S_IFMT == vnodeops.S_IFLNK {
			k.ok("Readlink", err)
		} else {
			k.errno("Readlink", err)
		}
		if x, ok := v.(vnodeops.Xattrs); ok {
			names, err := x.Listxattr()
			k.ok("Listxattr", err)
			for _, n := range names {
				_, err := x.Getxattr(n)
				k.ok("Getxattr("+n+")", err)
			}
			_, err = x.Getxattr("user.fuzz-absent")
			k.errno("Getxattr absent", err)
		}
		if !held && ino != root {
			k.put(ino)
		}
	}
	_, err := k.fs.Statvfs()
	k.ok("Statvfs", err)
	return found
}

// readDir reads directory v and returns its entries, as looked up.
func (k *Kernel) readDir(ino uint64, v vnodeops.Vnode) []Entry {
	if !k.ok("Open dir", v.Open(vnodeops.ORdonly)) {
		return nil
	}
	defer func() { k.ok("Close dir", v.Close(vnodeops.ORdonly)) }()
	var ents []vnodeops.Dirent
	err := v.Readdir(0, func(d vnodeops.Dirent) bool {
		if d.Next == 0 {
			k.t.Fatalf("Readdir(%d): entry %q has cookie 0", ino, d.Name)
		}
		ents = append(ents, d)
		return len(ents) < k.lim.Entries
	})
	k.ok("Readdir", err)
	// Resume after each of the first entries, and at cookies a client
	// may send that no driver gave out.
	cookies := []uint64{1 << 40, 0xFFFFFFFF, ^uint64(0), 7}
	for i := 0; i < min(len(ents), 3); i++ {
		cookies = append(cookies, ents[i].Next)
	}
	for _, c := range cookies {
		n := 0
		err := v.Readdir(c, func(vnodeops.Dirent) bool { n++; return n < 4 })
		k.ok(fmt.Sprintf("Readdir(%d, cookie %#x)", ino, c), err)
	}
	var out []Entry
	_, err = v.Lookup("..")
	k.ok("Lookup(..)", err)
	_, err = v.Lookup("fuzz-absent")
	k.errno("Lookup absent", err)
	for _, d := range ents {
		if d.Name == "." || d.Name == ".." || d.Name == "" || strings.ContainsAny(d.Name, "/\x00") {
			continue
		}
		got, err := v.Lookup(d.Name)
		if k.ok("Lookup("+d.Name+")", err) {
			out = append(out, Entry{Parent: ino, Name: d.Name, Ino: got})
		}
	}
	return out
}

// readFile reads v from the start to the limit, and past any plausible
// end.
func (k *Kernel) readFile(v vnodeops.Vnode) {
	if !k.ok("Open", v.Open(vnodeops.ORdonly)) {
		return
	}
	buf := make([]byte, 16<<10)
	for off := int64(0); off < k.lim.FileBytes; off += int64(len(buf)) {
		n, err := v.Read(buf, off)
		if !k.ok("Read", err) || n == 0 {
			break
		}
	}
	_, err := v.Read(buf[:100], 1<<40)
	k.ok("Read far", err)
	k.ok("Close", v.Close(vnodeops.ORdonly))
}

// The writing capabilities, found with a type assertion as the kernel
// does; a vnode without them belongs to a read-only format.
type (
	writer interface {
		Create(name string, perm, uid, gid uint32) (uint64, error)
		Mkdir(name string, perm, uid, gid uint32) (uint64, error)
		Remove(name string, vp vnodeops.Vnode) error
		Rmdir(name string, vp vnodeops.Vnode) error
		Rename(fromName string, fvp, toDir vnodeops.Vnode, toName string, tvp vnodeops.Vnode) error
		Setattr(sa vnodeops.SetAttr) error
		Write(p []byte, off int64) (int, error)
		Fsync(dataOnly bool) error
	}
	linker interface {
		Link(vp vnodeops.Vnode, name string) error
	}
	symlinker interface {
		Symlink(name, target string, uid, gid uint32) (uint64, error)
	}
)

// wget returns the vnode of ino if it can be written.
func (k *Kernel) wget(ino uint64) writer {
	w, _ := k.get(ino).(writer)
	return w
}

// Mutate makes a few changes of each kind, on new files and on the first
// file and directory found: create, write, truncate, times, link,
// symlink, mkdir, rename within and across directories, remove, rmdir,
// fsync. found is what Walk returned. It keeps to what the kernel
// guarantees a driver: a name is created only where it is absent, and a
// directory is only moved to where it cannot be its own ancestor.
func (k *Kernel) Mutate(found []Entry) {
	rootIno := k.fs.Root()
	root := k.wget(rootIno)
	if root == nil {
		return
	}
	// A new file: written, extended sparsely, truncated, linked, renamed.
	if ino := k.make(rootIno, "fuzz new.txt", root.Create); ino != 0 {
		if f := k.wget(ino); f != nil {
			_, err := f.Write(make([]byte, 20000), 100)
			k.ok("Write", err)
			_, err = f.Write([]byte("far"), 300<<10)
			k.ok("Write far", err)
			k.ok("Setattr size", f.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetSize, Size: 3000}))
			k.ok("Setattr times", f.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetMtime | vnodeops.SetAtime, Mtime: 1.6e18, Atime: 1e9}))
			k.ok("Setattr mode", f.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetMode, Mode: 0o600}))
			k.ok("Fsync", f.Fsync(false))
			if l, ok := root.(linker); ok && k.absent(rootIno, "fuzz link") {
				k.ok("Link", l.Link(k.get(ino), "fuzz link"))
			}
			if k.rename(rootIno, "fuzz new.txt", ino, rootIno, "fuzz renamed") {
				k.ok("Remove", root.Remove("fuzz renamed", k.get(ino)))
			}
			k.remove(rootIno, "fuzz link")
		}
		k.put(ino)
	}
	if sl, ok := root.(symlinker); ok && k.absent(rootIno, "fuzz sl") {
		_, err := sl.Symlink("fuzz sl", strings.Repeat("target/", 30), 0, 0)
		k.ok("Symlink", err)
	}
	// A new directory, with a file moved into it from elsewhere.
	dino := k.make(rootIno, "fuzz dir", root.Mkdir)
	if d := k.wget(dino); dino != 0 && d != nil {
		k.make(dino, "inner", d.Create)
	}
	var file, dir *Entry
	for i := range found[1:] {
		e := &found[1+i]
		switch {
		case file == nil && e.Mode&vnodeops.S_IFMT == vnodeops.S_IFREG:
			file = e
		case dir == nil && e.Mode&vnodeops.S_IFMT == vnodeops.S_IFDIR && e.Ino != dino && e.Ino != rootIno:
			dir = e
		}
	}
	if file != nil {
		if f := k.wget(file.Ino); f != nil {
			_, err := f.Write([]byte("fuzz was here"), 10)
			k.ok("Write existing", err)
			k.ok("Setattr existing", f.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetSize, Size: 1}))
			if dino != 0 && k.rename(file.Parent, file.Name, file.Ino, dino, "moved") {
				k.remove(dino, "moved")
			}
		}
	}
	if dir != nil {
		if dv := k.wget(dir.Ino); dv != nil {
			k.make(dir.Ino, "fuzz in existing", dv.Create)
			k.rename(dir.Parent, dir.Name, dir.Ino, dir.Parent, "fuzz renamed dir")
			// An empty new directory moved into it, then removed.
			if eino := k.make(rootIno, "fuzz empty", root.Mkdir); eino != 0 {
				if k.rename(rootIno, "fuzz empty", eino, dir.Ino, "fuzz empty") {
					k.ok("Rmdir moved", dv.Rmdir("fuzz empty", k.get(eino)))
				}
				k.put(eino)
			}
		}
	}
	if dino != 0 {
		k.remove(dino, "inner")
		if v := k.get(dino); v != nil {
			k.ok("Rmdir", root.Rmdir("fuzz dir", v))
		}
		k.put(dino)
	}
	k.ok("Sync", k.fs.Sync())
}

// absent reports whether name is absent from directory dir, as the
// kernel checks before it creates.
func (k *Kernel) absent(dir uint64, name string) bool {
	v := k.get(dir)
	if v == nil {
		return false
	}
	_, err := v.Lookup(name)
	if errors.Is(err, syscall.ENOENT) {
		return true
	}
	k.ok("Lookup("+name+")", err)
	return false
}

// make creates name in dir with mk (a Create or Mkdir) if it is absent,
// and returns its inode number, or 0.
func (k *Kernel) make(dir uint64, name string, mk func(string, uint32, uint32, uint32) (uint64, error)) uint64 {
	if !k.absent(dir, name) {
		return 0
	}
	ino, err := mk(name, 0o755, 0, 0)
	if !k.ok("make("+name+")", err) {
		return 0
	}
	return ino
}

// remove removes the non-directory name from dir, if it is there.
func (k *Kernel) remove(dir uint64, name string) {
	d := k.wget(dir)
	if d == nil {
		return
	}
	ino, err := k.get(dir).Lookup(name)
	if !k.errno("Lookup("+name+")", err) || err != nil {
		return
	}
	if v := k.get(ino); v != nil {
		k.ok("Remove("+name+")", d.Remove(name, v))
		k.put(ino)
	}
}

// rename renames from (inode ino) in fdir to to in tdir when to is absent
// (the kernel's checks for a replaced file are not played here).
func (k *Kernel) rename(fdir uint64, from string, ino, tdir uint64, to string) bool {
	fd, tv, v := k.wget(fdir), k.get(tdir), k.get(ino)
	if fd == nil || tv == nil || v == nil || !k.absent(tdir, to) {
		return false
	}
	return k.ok("Rename("+from+", "+to+")", fd.Rename(from, v, tv, to, nil))
}

// Exercise is a fuzz target's body after a successful mount: walk, and
// for a read-write mount change things and walk again; then release every
// vnode and unmount. The caller has started a Watchdog.
func Exercise(t testing.TB, fs vnodeops.FS, readWrite bool, lim Limits) {
	k := NewKernel(t, fs, lim)
	found := k.Walk()
	if readWrite {
		k.Mutate(found)
		k.Walk()
	}
	k.Release()
	k.ok("Unmount", fs.Unmount(false))
}

// Run is a driver fuzz target's body: under a Watchdog, mount (whose
// error must be an errno) and Exercise.
func Run(t testing.TB, readWrite bool, mount func() (vnodeops.FS, error)) {
	defer Watchdog(t.Name())()
	fs, err := mount()
	if !IsErrno(err) {
		t.Fatalf("Mount: %v (%T) is not a syscall.Errno", err, err)
	}
	if err == nil {
		Exercise(t, fs, readWrite, DefaultLimits)
	}
}

// CheckBase checks a base image, freshly mounted from dev: a walk finds
// at least want files, and on a read-write mount the changes of Mutate
// leave an image that check (the format's fsck, given the image's path)
// accepts. It logs the calls that failed: what the driver cannot do.
func CheckBase(t *testing.T, fs vnodeops.FS, dev *Overlay, readWrite bool, want int, check func(testing.TB, string)) {
	t.Helper()
	k := NewKernel(t, fs, DefaultLimits)
	found := k.Walk()
	if len(found) < want {
		t.Errorf("walk found %d files, want %d or more", len(found), want)
	}
	if readWrite {
		k.Mutate(found)
		k.Walk()
	}
	k.Release()
	if err := fs.Unmount(false); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(out, dev.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	check(t, out)
	t.Logf("%d bytes; failed calls: %q", dev.Size(), k.Failed())
}
