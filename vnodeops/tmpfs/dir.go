package tmpfs

import (
	"sort"
	"strings"
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

// Sequence numbers of directory entries; see the package comment.
const (
	dotSeq    = 1
	dotdotSeq = 2
	firstSeq  = 3
)

// dentry is one entry of a directory.
type dentry struct {
	name    string
	seq     uint64
	node    *node // nil once removed
	removed bool
}

// dirData is a directory's contents. list holds entries in ascending seq
// order, including removed ones until the next compaction; byName holds
// the live ones.
type dirData struct {
	parent  *node // the root's parent is itself
	byName  map[string]*dentry
	list    []*dentry
	dead    int // removed entries still in list
	nextSeq uint64
}

// enter adds a live entry; the name must be free.
func (d *dirData) enter(name string, n *node) {
	e := &dentry{name: name, seq: d.nextSeq, node: n}
	d.nextSeq++
	d.byName[name] = e
	d.list = append(d.list, e)
}

// unenter removes the entry name, which must exist.
func (d *dirData) unenter(name string) {
	e := d.byName[name]
	delete(d.byName, name)
	e.removed = true
	e.node = nil
	d.dead++
	if d.dead > 32 && d.dead > len(d.list)/2 {
		live := make([]*dentry, 0, len(d.list)-d.dead)
		for _, e := range d.list {
			if !e.removed {
				live = append(live, e)
			}
		}
		d.list = live
		d.dead = 0
	}
}

// checkName rejects names a directory cannot hold: EINVAL for an empty
// name or one holding '/' or NUL, ENAMETOOLONG past NameMax. "." and ".."
// pass; callers decide about them.
func checkName(name string) error {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return syscall.EINVAL
	}
	if len(name) > NameMax {
		return syscall.ENAMETOOLONG
	}
	return nil
}

// checkNewName is checkName for a name about to be made: "." and ".."
// always exist (EEXIST).
func checkNewName(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if name == "." || name == ".." {
		return syscall.EEXIST
	}
	return nil
}

// checkOldName is checkName for a name about to be removed or renamed:
// "." and ".." cannot be (EINVAL).
func checkOldName(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if name == "." || name == ".." {
		return syscall.EINVAL
	}
	return nil
}

// liveDirLocked returns n's directory data: ENOTDIR if n is not a
// directory, ENOENT if it has been removed.
func (n *node) liveDirLocked() (*dirData, error) {
	if n.mode&vnodeops.S_IFMT != vnodeops.S_IFDIR {
		return nil, syscall.ENOTDIR
	}
	if n.nlink == 0 || n.dir == nil {
		return nil, syscall.ENOENT
	}
	return n.dir, nil
}

// Lookup returns the inode number of name: ".." names the parent (the
// root's is the root), "." the directory itself. ENOENT if absent or the
// directory was removed, ENOTDIR if n is not a directory.
func (n *node) Lookup(name string) (uint64, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	fs := n.fs
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	d, err := n.liveDirLocked()
	if err != nil {
		return 0, err
	}
	switch name {
	case ".":
		return n.ino, nil
	case "..":
		return d.parent.ino, nil
	}
	e := d.byName[name]
	if e == nil {
		return 0, syscall.ENOENT
	}
	return e.node.ino, nil
}

// makeLocked makes a new inode of mode under name in directory n and
// returns it with its link count set (1, or 2 for a directory).
// extraPages are charged to the size limit with it. Errors: EROFS,
// EINVAL/ENAMETOOLONG/EEXIST for the name, ENOTDIR, ENOENT in a removed
// directory, EMLINK, ENOSPC.
func (n *node) makeLocked(name string, mode, uid, gid uint32, rdev uint64, extraPages int64) (*node, error) {
	fs := n.fs
	if fs.ro {
		return nil, syscall.EROFS
	}
	if err := checkNewName(name); err != nil {
		return nil, err
	}
	d, err := n.liveDirLocked()
	if err != nil {
		return nil, err
	}
	if d.byName[name] != nil {
		return nil, syscall.EEXIST
	}
	isDir := mode&vnodeops.S_IFMT == vnodeops.S_IFDIR
	if isDir && n.nlink >= LinkMax {
		return nil, syscall.EMLINK
	}
	if !fs.haveNodeLocked() {
		return nil, syscall.ENOSPC
	}
	if extraPages > 0 && !fs.allocPagesLocked(extraPages) {
		return nil, syscall.ENOSPC
	}
	now := fs.nowNs()
	c := fs.newNodeLocked(mode, uid, gid, rdev, now)
	c.targetPages = extraPages
	c.nlink = 1
	if isDir {
		c.nlink = 2
		c.dir.parent = n
		n.nlink++
	}
	d.enter(name, c)
	n.mtime, n.ctime = now, now
	return c, nil
}

// Create makes an empty regular file; see vnodeops.Vnode and makeLocked
// for errors.
func (n *node) Create(name string, perm, uid, gid uint32) (uint64, error) {
	return n.Mknod(name, vnodeops.S_IFREG|perm&vnodeops.PermMask, uid, gid, 0)
}

// Mknod makes a regular file (type bits 0 or S_IFREG), FIFO, socket, or
// character or block device; rdev is kept for devices only. EINVAL for a
// directory, symlink or unknown type.
func (n *node) Mknod(name string, mode, uid, gid uint32, rdev uint64) (uint64, error) {
	typ := mode & vnodeops.S_IFMT
	switch typ {
	case 0:
		typ = vnodeops.S_IFREG
	case vnodeops.S_IFREG, vnodeops.S_IFIFO, vnodeops.S_IFSOCK:
		rdev = 0
	case vnodeops.S_IFCHR, vnodeops.S_IFBLK:
	default:
		if n.fs.ro {
			return 0, syscall.EROFS
		}
		return 0, syscall.EINVAL
	}
	if typ == vnodeops.S_IFREG {
		rdev = 0
	}
	fs := n.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	c, err := n.makeLocked(name, typ|mode&vnodeops.PermMask, uid, gid, rdev, 0)
	if err != nil {
		return 0, err
	}
	return c.ino, nil
}

// Mkdir makes a directory and raises n's link count; EMLINK at LinkMax.
func (n *node) Mkdir(name string, perm, uid, gid uint32) (uint64, error) {
	fs := n.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	c, err := n.makeLocked(name, vnodeops.S_IFDIR|perm&vnodeops.PermMask, uid, gid, 0, 0)
	if err != nil {
		return 0, err
	}
	return c.ino, nil
}

// Symlink makes a symbolic link to target, charging the target to the
// size limit in whole pages. ENOENT for an empty target, ENAMETOOLONG for
// one longer than SymlinkMax.
func (n *node) Symlink(name, target string, uid, gid uint32) (uint64, error) {
	fs := n.fs
	if fs.ro {
		return 0, syscall.EROFS
	}
	if target == "" {
		return 0, syscall.ENOENT
	}
	if len(target) > SymlinkMax {
		return 0, syscall.ENAMETOOLONG
	}
	pages := (int64(len(target)) + PageSize - 1) / PageSize
	fs.mu.Lock()
	defer fs.mu.Unlock()
	c, err := n.makeLocked(name, vnodeops.S_IFLNK|0o777, uid, gid, 0, pages)
	if err != nil {
		return 0, err
	}
	c.target = target
	c.size = int64(len(target))
	return c.ino, nil
}

// Link enters vp under name. EPERM for a directory, ENOENT if vp has no
// links left, EMLINK at LinkMax, EXDEV if vp is not of this file system.
func (n *node) Link(vp vnodeops.Vnode, name string) error {
	fs := n.fs
	if fs.ro {
		return syscall.EROFS
	}
	if err := checkNewName(name); err != nil {
		return err
	}
	t, err := fs.nodeOf(vp)
	if err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	d, err := n.liveDirLocked()
	if err != nil {
		return err
	}
	if t.isDir() {
		return syscall.EPERM
	}
	if d.byName[name] != nil {
		return syscall.EEXIST
	}
	if t.nlink == 0 || t.freed {
		return syscall.ENOENT
	}
	if t.nlink >= LinkMax {
		return syscall.EMLINK
	}
	d.enter(name, t)
	t.nlink++
	now := fs.nowNs()
	t.ctime = now
	n.mtime, n.ctime = now, now
	return nil
}

// lookupVictimLocked finds the entry name of live directory n for Remove
// and Rmdir, checking that it names vp (ENOENT if not; a nil vp accepts
// whatever it names).
func (n *node) lookupVictimLocked(name string, vp vnodeops.Vnode) (*dirData, *node, error) {
	d, err := n.liveDirLocked()
	if err != nil {
		return nil, nil, err
	}
	e := d.byName[name]
	if e == nil {
		return nil, nil, syscall.ENOENT
	}
	if vp != nil {
		t, err := n.fs.nodeOf(vp)
		if err != nil {
			return nil, nil, err
		}
		if t != e.node {
			return nil, nil, syscall.ENOENT
		}
	}
	return d, e.node, nil
}

// Remove deletes the entry name naming the non-directory vp and lowers
// vp's link count. EISDIR if it names a directory, ENOENT if it does not
// name vp.
func (n *node) Remove(name string, vp vnodeops.Vnode) error {
	fs := n.fs
	if fs.ro {
		return syscall.EROFS
	}
	if err := checkOldName(name); err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	d, t, err := n.lookupVictimLocked(name, vp)
	if err != nil {
		return err
	}
	if t.isDir() {
		return syscall.EISDIR
	}
	d.unenter(name)
	now := fs.nowNs()
	n.mtime, n.ctime = now, now
	t.ctime = now
	t.nlink--
	if t.nlink == 0 {
		fs.unlinkedLocked(t)
	}
	return nil
}

// Rmdir deletes the empty directory vp named name. ENOTDIR if it is not a
// directory, ENOTEMPTY if it holds entries.
func (n *node) Rmdir(name string, vp vnodeops.Vnode) error {
	fs := n.fs
	if fs.ro {
		return syscall.EROFS
	}
	if err := checkOldName(name); err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	d, t, err := n.lookupVictimLocked(name, vp)
	if err != nil {
		return err
	}
	if !t.isDir() {
		return syscall.ENOTDIR
	}
	if len(t.dir.byName) != 0 {
		return syscall.ENOTEMPTY
	}
	d.unenter(name)
	n.killDirLocked(t)
	return nil
}

// killDirLocked finishes the removal of the empty directory t, whose entry
// in its parent n is already gone.
func (n *node) killDirLocked(t *node) {
	now := n.fs.nowNs()
	n.nlink-- // t's ".."
	n.mtime, n.ctime = now, now
	t.nlink = 0
	t.ctime = now
	n.fs.unlinkedLocked(t)
}

// Rename moves the entry fromName (naming fvp) of n to toName in toDir,
// replacing what toName names (tvp is advisory: the entry toName names at
// the time of the call is replaced). Renaming a name onto another link of
// the same inode does nothing. Defensive checks behind the kernel's:
// ENOENT if fromName does not name fvp or a directory was removed, EINVAL
// when moving a directory into its own subtree, ENOTDIR/EISDIR for
// mismatched types, ENOTEMPTY for a non-empty target directory, EMLINK
// when toDir has no link left for a moved directory's "..".
func (n *node) Rename(fromName string, fvp vnodeops.Vnode, toDir vnodeops.Vnode, toName string, tvp vnodeops.Vnode) error {
	fs := n.fs
	if fs.ro {
		return syscall.EROFS
	}
	if err := checkOldName(fromName); err != nil {
		return err
	}
	if err := checkOldName(toName); err != nil {
		return err
	}
	td, err := fs.nodeOf(toDir)
	if err != nil {
		return err
	}
	f, err := fs.nodeOf(fvp)
	if err != nil {
		return err
	}
	if tvp != nil {
		if _, err := fs.nodeOf(tvp); err != nil {
			return err
		}
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fd, err := n.liveDirLocked()
	if err != nil {
		return err
	}
	tdd, err := td.liveDirLocked()
	if err != nil {
		return err
	}
	fe := fd.byName[fromName]
	if fe == nil || fe.node != f {
		return syscall.ENOENT
	}
	var t *node
	if te := tdd.byName[toName]; te != nil {
		t = te.node
	}
	if t == f {
		return nil // same name, or two links of one inode: POSIX says no-op
	}
	fIsDir := f.isDir()
	if fIsDir {
		for p := td; ; p = p.dir.parent {
			if p == f {
				return syscall.EINVAL
			}
			if p == fs.root {
				break
			}
		}
	}
	if t != nil {
		switch {
		case fIsDir && !t.isDir():
			return syscall.ENOTDIR
		case !fIsDir && t.isDir():
			return syscall.EISDIR
		case t.isDir() && len(t.dir.byName) != 0:
			return syscall.ENOTEMPTY
		}
	}
	if fIsDir && td != n && t == nil && td.nlink >= LinkMax {
		return syscall.EMLINK
	}

	now := fs.nowNs()
	if t != nil {
		tdd.unenter(toName)
		if t.isDir() {
			td.killDirLocked(t)
		} else {
			t.nlink--
			t.ctime = now
			if t.nlink == 0 {
				fs.unlinkedLocked(t)
			}
		}
	}
	fd.unenter(fromName)
	tdd.enter(toName, f)
	if fIsDir && td != n {
		f.dir.parent = td
		n.nlink--
		td.nlink++
	}
	f.ctime = now
	n.mtime, n.ctime = now, now
	td.mtime, td.ctime = now, now
	return nil
}

// Readdir reports entries from cookie on; see the package comment for the
// cookies. A removed directory reads as empty. ENOTDIR if n is not a
// directory. fn runs without the file system's lock held.
func (n *node) Readdir(cookie uint64, fn func(vnodeops.Dirent) bool) error {
	fs := n.fs
	buf := make([]vnodeops.Dirent, 0, 16)
	for {
		buf = buf[:0]
		more := false
		fs.mu.RLock()
		if !n.isDir() {
			fs.mu.RUnlock()
			return syscall.ENOTDIR
		}
		d := n.dir
		if n.nlink == 0 || d == nil {
			fs.mu.RUnlock()
			return nil
		}
		pos := max(cookie, dotSeq)
		if pos == dotSeq {
			buf = append(buf, vnodeops.Dirent{Name: ".", Ino: n.ino, Type: vnodeops.DT_DIR, Next: dotSeq + 1})
			pos++
		}
		if pos == dotdotSeq {
			buf = append(buf, vnodeops.Dirent{Name: "..", Ino: d.parent.ino, Type: vnodeops.DT_DIR, Next: dotdotSeq + 1})
			pos++
		}
		i := sort.Search(len(d.list), func(i int) bool { return d.list[i].seq >= pos })
		for ; i < len(d.list); i++ {
			e := d.list[i]
			if e.removed {
				continue
			}
			if len(buf) == readdirBatch {
				more = true
				break
			}
			buf = append(buf, vnodeops.Dirent{
				Name: e.name,
				Ino:  e.node.ino,
				Type: vnodeops.DTFromMode(e.node.mode),
				Next: e.seq + 1,
			})
		}
		fs.mu.RUnlock()
		for _, de := range buf {
			if !fn(de) {
				return nil
			}
			cookie = de.Next
		}
		if !more {
			return nil
		}
	}
}
