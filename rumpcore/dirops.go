package rumpcore

import (
	"strings"
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

// prepareEntry checks that cred may add or remove entries of directory v:
// write and search permission, a writable mount, and a valid new name.
func (v *Vnode) prepareEntry(cred vnodeops.Cred, name string) (vnodeops.Attr, error) {
	if err := validName(name); err != nil {
		return vnodeops.Attr{}, err
	}
	a, err := v.Getattr()
	if err != nil {
		return a, err
	}
	if !a.IsDir() {
		return a, syscall.ENOTDIR
	}
	if v.m.ro {
		return a, syscall.EROFS
	}
	if err := v.Access(cred, vnodeops.AccessWrite|vnodeops.AccessExec); err != nil {
		return a, err
	}
	return a, nil
}

// makeEntry runs a driver call that creates name in v and returns a
// reference to the new file.
func (v *Vnode) makeEntry(cred vnodeops.Cred, name string, mk func(dir vnodeops.Attr) (uint64, error)) (*Vnode, error) {
	a, err := v.prepareEntry(cred, name)
	if err != nil {
		return nil, err
	}
	if name == "." || name == ".." {
		return nil, syscall.EEXIST
	}
	v.dirLock.Lock()
	defer v.dirLock.Unlock()
	if v.removed.Load() {
		return nil, syscall.ENOENT
	}
	exit, err := v.m.enter()
	if err != nil {
		return nil, err
	}
	ino, err := mk(a)
	exit()
	if err != nil {
		return nil, errno(err)
	}
	return v.k.vget(v.m, ino)
}

// Create makes the regular file name in directory v with permission bits
// perm (the caller applies its umask) owned by cred, and returns a
// reference to it. EEXIST if name exists; EACCES without write and search
// permission on v; EROFS; ENOSPC.
func (v *Vnode) Create(cred vnodeops.Cred, name string, perm uint32) (*Vnode, error) {
	return v.makeEntry(cred, name, func(dir vnodeops.Attr) (uint64, error) {
		w, err := v.writer()
		if err != nil {
			return 0, err
		}
		uid, gid := newOwner(cred, dir)
		return w.Create(name, clearSGID(cred, gid, perm&vnodeops.PermMask), uid, gid)
	})
}

// Mkdir makes the directory name in v; a set-group-ID parent passes its
// group and the S_ISGID bit on.
func (v *Vnode) Mkdir(cred vnodeops.Cred, name string, perm uint32) (*Vnode, error) {
	return v.makeEntry(cred, name, func(dir vnodeops.Attr) (uint64, error) {
		uid, gid := newOwner(cred, dir)
		perm &= vnodeops.PermMask
		if dir.Mode&vnodeops.S_ISGID != 0 {
			perm |= vnodeops.S_ISGID
		}
		w, err := v.writer()
		if err != nil {
			return 0, err
		}
		return w.Mkdir(name, perm, uid, gid)
	})
}

// Symlink makes the symbolic link name in v pointing at target. ENOENT for
// an empty target (as Linux answers symlink("", ...)), ENAMETOOLONG past
// 4095 bytes, EROFS on a read-only format, EPERM where the format keeps no
// symbolic links.
func (v *Vnode) Symlink(cred vnodeops.Cred, name, target string) (*Vnode, error) {
	if target == "" {
		return nil, syscall.ENOENT
	}
	if len(target) > 4095 {
		return nil, syscall.ENAMETOOLONG
	}
	return v.makeEntry(cred, name, func(dir vnodeops.Attr) (uint64, error) {
		s, ok := v.vn.(vnodeops.Symlinker)
		if !ok {
			return 0, v.lacking()
		}
		uid, gid := newOwner(cred, dir)
		return s.Symlink(name, target, uid, gid)
	})
}

// Mknod makes a file of any type in v (mode carries S_IFMT). Device nodes
// need root (EPERM); EPERM too where the driver cannot store the type.
func (v *Vnode) Mknod(cred vnodeops.Cred, name string, mode uint32, rdev uint64) (*Vnode, error) {
	switch mode & vnodeops.S_IFMT {
	case vnodeops.S_IFCHR, vnodeops.S_IFBLK:
		if !cred.IsRoot() {
			return nil, syscall.EPERM
		}
	case vnodeops.S_IFREG, vnodeops.S_IFIFO, vnodeops.S_IFSOCK:
	case 0:
		mode |= vnodeops.S_IFREG
	default:
		return nil, syscall.EINVAL
	}
	return v.makeEntry(cred, name, func(dir vnodeops.Attr) (uint64, error) {
		uid, gid := newOwner(cred, dir)
		m := mode&vnodeops.S_IFMT | clearSGID(cred, gid, mode&vnodeops.PermMask)
		if mode&vnodeops.S_IFMT == vnodeops.S_IFREG {
			w, err := v.writer()
			if err != nil {
				return 0, err
			}
			return w.Create(name, m&vnodeops.PermMask, uid, gid)
		}
		mk, ok := v.vn.(vnodeops.Mknoder)
		if !ok {
			return 0, v.lacking()
		}
		return mk.Mknod(name, m, uid, gid, rdev)
	})
}

// Link enters target under name in directory v. EXDEV across mounts,
// EPERM for a directory, EEXIST if name exists.
func (v *Vnode) Link(cred vnodeops.Cred, target *Vnode, name string) error {
	if _, err := v.prepareEntry(cred, name); err != nil {
		return err
	}
	if name == "." || name == ".." {
		return syscall.EEXIST
	}
	if target.m != v.m {
		return syscall.EXDEV
	}
	ta, err := target.Getattr()
	if err != nil {
		return err
	}
	if ta.IsDir() {
		return syscall.EPERM
	}
	v.dirLock.Lock()
	defer v.dirLock.Unlock()
	if v.removed.Load() {
		return syscall.ENOENT
	}
	l, ok := v.vn.(vnodeops.Linker)
	if !ok {
		return v.lacking()
	}
	exit, err := v.m.enter()
	if err != nil {
		return err
	}
	defer exit()
	return errno(l.Link(target.vn, name))
}

// lookupNoCross returns the vnode name names in v without crossing into a
// mount; isMountPoint tells whether something is mounted on it. The caller
// holds v.dirLock.
func (v *Vnode) lookupNoCross(name string) (c *Vnode, isMountPoint bool, err error) {
	if v.removed.Load() {
		return nil, false, syscall.ENOENT
	}
	exit, err := v.m.enter()
	if err != nil {
		return nil, false, err
	}
	ino, err := v.vn.Lookup(name)
	exit()
	if err != nil {
		return nil, false, errno(err)
	}
	c, err = v.k.vget(v.m, ino)
	if err != nil {
		return nil, false, err
	}
	v.k.mu.Lock()
	isMountPoint = c.coveredBy != nil
	check := !c.verified || c.isDir && c.parent != v.ino
	v.k.mu.Unlock()
	if check {
		if err := v.checkReached(c, name); err != nil {
			c.Release()
			return nil, false, err
		}
	}
	return c, isMountPoint, nil
}

// checkReached refuses metadata no sane file system has, for c reached by
// name from directory v: a link count of zero on a reachable inode, a
// directory entry naming its own directory, and a directory whose ".."
// names another directory than the one it was reached from (a directory
// with two names, which makes cycles). Each is EIO with one log line. A
// vnode passes once for good; a directory again whenever it is reached
// from another parent (after a rename). The caller holds v.dirLock.
func (v *Vnode) checkReached(c *Vnode, name string) error {
	exit, err := v.m.enter()
	if err != nil {
		return err
	}
	defer exit()
	corrupt := func(what string, args ...any) error {
		v.k.log.Error("corrupt file system: "+what, append([]any{"mount", v.m.name, "dir", v.ino, "name", name, "ino", c.ino}, args...)...)
		return syscall.EIO
	}
	a, err := c.vn.Getattr()
	if err != nil {
		return errno(err)
	}
	if a.Nlink == 0 {
		return corrupt("reachable inode with link count 0")
	}
	parent := uint64(0)
	if a.IsDir() {
		if c == v {
			return corrupt("directory entry names its own directory")
		}
		dd, err := c.vn.Lookup("..")
		if err != nil {
			return errno(err)
		}
		if dd != v.ino {
			return corrupt("directory's \"..\" names another directory than the one it was reached from", "dotdot", dd)
		}
		parent = v.ino
	}
	v.k.mu.Lock()
	c.verified, c.isDir, c.parent = true, a.IsDir(), parent
	v.k.mu.Unlock()
	return nil
}

// Unlink removes the entry name from directory v: a non-directory unless
// dir is set (rmdir), then an empty directory. EISDIR/ENOTDIR for the wrong
// kind, ENOTEMPTY, EBUSY for a mount point, EPERM under the sticky rule,
// EINVAL for rmdir of ".", ENOTEMPTY for "..". An open file stays usable
// until its last reference goes.
func (v *Vnode) Unlink(cred vnodeops.Cred, name string, dir bool) error {
	da, err := v.prepareEntry(cred, name)
	if err != nil {
		return err
	}
	switch name {
	case ".":
		if dir {
			return syscall.EINVAL
		}
		return syscall.EISDIR
	case "..":
		if dir {
			return syscall.ENOTEMPTY
		}
		return syscall.EISDIR
	}
	if dir {
		// Rmdir locks the child too, to mark it removed; under the
		// mount's rename lock, like rename's two directories.
		v.m.renameMu.Lock()
		defer v.m.renameMu.Unlock()
	}
	v.dirLock.Lock()
	c, mp, err := v.lookupNoCross(name)
	if err != nil {
		v.dirLock.Unlock()
		return err
	}
	// Release the child after the directory lock: its Inactive may free
	// the file.
	defer c.Release()
	defer v.dirLock.Unlock()
	if mp {
		return syscall.EBUSY
	}
	ca, err := c.Getattr()
	if err != nil {
		return err
	}
	if stickyDenied(cred, da, ca) {
		return syscall.EPERM
	}
	w, err := v.writer()
	if err != nil {
		return err
	}
	exit, err := v.m.enter()
	if err != nil {
		return err
	}
	defer exit()
	if dir {
		if !ca.IsDir() {
			return syscall.ENOTDIR
		}
		c.dirLock.Lock()
		defer c.dirLock.Unlock()
		if err := w.Rmdir(name, c.vn); err != nil {
			return errno(err)
		}
		c.removed.Store(true)
		return nil
	}
	if ca.IsDir() {
		return syscall.EISDIR
	}
	return errno(w.Remove(name, c.vn))
}

// isEmptyDir reports whether directory d holds only "." and "..".
func (d *Vnode) isEmptyDir() (bool, error) {
	empty := true
	err := d.Readdir(0, func(e vnodeops.Dirent) bool {
		if e.Name == "." || e.Name == ".." {
			return true
		}
		empty = false
		return false
	})
	return empty, err
}

// Rename moves the entry oldName of directory v to newName in newDir with
// POSIX semantics: an existing target is replaced (a directory only by a
// directory, and only an empty one: ENOTEMPTY; EISDIR, ENOTDIR otherwise);
// renaming a file onto another link of itself does nothing; EINVAL for a
// directory moved into its own subtree or a "."/".." name; EXDEV across
// mounts; EBUSY for mount points; EPERM under the sticky rule.
func (v *Vnode) Rename(cred vnodeops.Cred, oldName string, newDir *Vnode, newName string) error {
	if newDir.m != v.m {
		return syscall.EXDEV
	}
	fda, err := v.prepareEntry(cred, oldName)
	if err != nil {
		return err
	}
	tda, err := newDir.prepareEntry(cred, newName)
	if err != nil {
		return err
	}
	if oldName == "." || oldName == ".." || newName == "." || newName == ".." {
		return syscall.EINVAL
	}
	m := v.m
	m.renameMu.Lock()
	defer m.renameMu.Unlock()
	first, second := dirOrder(v, newDir)
	first.dirLock.Lock()
	if second != nil {
		second.dirLock.Lock()
	}
	var released []*Vnode // released after the directory locks
	defer func() {
		if second != nil {
			second.dirLock.Unlock()
		}
		first.dirLock.Unlock()
		for _, r := range released {
			r.Release()
		}
	}()

	fvp, fmp, err := v.lookupNoCross(oldName)
	if err != nil {
		return err
	}
	released = append(released, fvp)
	if fmp {
		return syscall.EBUSY
	}
	tvp, tmp, err := newDir.lookupNoCross(newName)
	switch {
	case err == syscall.ENOENT:
		tvp = nil
	case err != nil:
		return err
	default:
		released = append(released, tvp)
		if tmp {
			return syscall.EBUSY
		}
	}
	if tvp == fvp {
		// Two links of one file: POSIX says do nothing. But a name that
		// differs only in case and finds the same entry (FAT's
		// case-insensitive lookup) is a case-changing rename the driver
		// must see.
		if v != newDir || oldName == newName || !strings.EqualFold(oldName, newName) {
			return nil
		}
	}
	fa, err := fvp.Getattr()
	if err != nil {
		return err
	}
	if stickyDenied(cred, fda, fa) {
		return syscall.EPERM
	}
	var tvn vnodeops.Vnode
	tvpDir := false
	if tvp != nil {
		ta, err := tvp.Getattr()
		if err != nil {
			return err
		}
		// A directory replaced is marked removed, as Rmdir does, under
		// its lock (unless that is held already: tvp is the source
		// directory itself, and the rename will fail as not empty).
		if tvpDir = ta.IsDir(); tvpDir && tvp != v {
			tvp.dirLock.Lock()
			defer tvp.dirLock.Unlock()
		}
		if stickyDenied(cred, tda, ta) {
			return syscall.EPERM
		}
		switch {
		case fa.IsDir() && !ta.IsDir():
			return syscall.ENOTDIR
		case !fa.IsDir() && ta.IsDir():
			return syscall.EISDIR
		case ta.IsDir():
			empty, err := tvp.isEmptyDir()
			if err != nil {
				return err
			}
			if !empty {
				return syscall.ENOTEMPTY
			}
		}
		tvn = tvp.vn
	}
	if fa.IsDir() && newDir != v {
		// Moving a directory to a new parent rewrites its "..": that needs
		// write permission on it, and the new parent must not lie below it.
		if err := fvp.Access(cred, vnodeops.AccessWrite); err != nil {
			return err
		}
		if err := newDir.checkNotBelow(fvp); err != nil {
			return err
		}
	}
	exit, err := m.enter()
	if err != nil {
		return err
	}
	defer exit()
	w, err := v.writer()
	if err != nil {
		return err
	}
	if err := w.Rename(oldName, fvp.vn, newDir.vn, newName, tvn); err != nil {
		return errno(err)
	}
	if tvpDir {
		tvp.removed.Store(true)
	}
	v.k.mu.Lock()
	fvp.parent = newDir.ino // its ".." now names newDir
	v.k.mu.Unlock()
	return nil
}

// dirOrder orders two directories of one mount for locking: by inode
// number, the same one once (second nil).
func dirOrder(a, b *Vnode) (first, second *Vnode) {
	switch {
	case a == b:
		return a, nil
	case a.ino < b.ino:
		return a, b
	}
	return b, a
}

// checkNotBelow returns EINVAL when d is dir or lies below it, walking
// ".." up to the root of d's file system, and EIO (with a log line) when
// the walk comes back to a directory it passed: a cycle of "..". The
// caller holds the mount's rename lock, so the tree does not change shape
// meanwhile.
func (d *Vnode) checkNotBelow(dir *Vnode) error {
	cur := d.Ref()
	defer func() { cur.Release() }()
	seen := map[uint64]bool{}
	for {
		if cur == dir {
			return syscall.EINVAL
		}
		if cur == cur.m.root {
			return nil
		}
		if seen[cur.ino] {
			d.k.log.Error("corrupt file system: a cycle of \"..\" entries", "mount", d.m.name, "ino", cur.ino, "from", d.ino)
			return syscall.EIO
		}
		seen[cur.ino] = true
		exit, err := cur.m.enter()
		if err != nil {
			return err
		}
		ino, err := cur.vn.Lookup("..")
		exit()
		if err != nil {
			return errno(err)
		}
		if ino == cur.ino {
			return nil
		}
		next, err := d.k.vget(cur.m, ino)
		if err != nil {
			return err
		}
		cur.Release()
		cur = next
	}
}
