package rumpcore

import (
	"strings"
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

// Special values for the times of Utimes and of SetAttr in Vnode.Setattr.
const (
	UtimeNow  int64 = -1 << 62
	UtimeOmit int64 = -1<<62 + 1
)

// maxSymlinks is how many symbolic links one path resolution follows
// before it fails with ELOOP, as Linux's MAXSYMLINKS.
const maxSymlinks = 40

// validName checks one path component given to a vnode operation.
func validName(name string) error {
	switch {
	case name == "":
		return syscall.ENOENT
	case len(name) > 255:
		return syscall.ENAMETOOLONG
	case strings.ContainsAny(name, "/\x00"):
		return syscall.EINVAL
	}
	return nil
}

// Getattr returns v's attributes.
func (v *Vnode) Getattr() (vnodeops.Attr, error) {
	exit, err := v.m.enter()
	if err != nil {
		return vnodeops.Attr{}, err
	}
	defer exit()
	a, err := v.vn.Getattr()
	return a, errno(err)
}

// Access checks that cred may access v as want (vnodeops.Access* bits)
// asks: EACCES, or EROFS for writing on a read-only mount.
func (v *Vnode) Access(cred vnodeops.Cred, want uint32) error {
	if want&vnodeops.AccessWrite != 0 && v.m.ro {
		return syscall.EROFS
	}
	exit, err := v.m.enter()
	if err != nil {
		return err
	}
	defer exit()
	return errno(v.vn.Access(want, cred))
}

// Lookup returns a reference to the file name names in directory v,
// crossing mount points both ways: ".." of a mount's root is the parent of
// the directory it covers, and a covered directory yields the mounted root.
// It needs search permission on v. ENOTDIR, ENOENT, ENAMETOOLONG, EINVAL
// for names with '/' or NUL.
func (v *Vnode) Lookup(cred vnodeops.Cred, name string) (*Vnode, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	if err := v.Access(cred, vnodeops.AccessExec); err != nil {
		return nil, err
	}
	return v.lookup(name)
}

// lookup is Lookup without the permission check.
func (v *Vnode) lookup(name string) (*Vnode, error) {
	k := v.k
	if name == "." {
		return v.Ref(), nil
	}
	if name == ".." {
		// Climb out of mount roots to the directory each one covers.
		cur := v
		for {
			k.mu.Lock()
			m := cur.m
			atRoot := cur == m.root
			cov := m.covered
			k.mu.Unlock()
			if !atRoot {
				break
			}
			if cov == nil {
				return cur.Ref(), nil // the namespace root
			}
			cur = cov
		}
		exit, err := cur.m.enter()
		if err != nil {
			return nil, err
		}
		ino, err := cur.vn.Lookup("..")
		exit()
		if err != nil {
			return nil, errno(err)
		}
		return k.vget(cur.m, ino)
	}
	v.dirLock.RLock()
	child, _, err := v.lookupNoCross(name)
	v.dirLock.RUnlock()
	if err != nil {
		return nil, err
	}
	return child.crossDown(), nil
}

// crossDown turns a reference to a covered directory into a reference to
// the root mounted on it (repeatedly, for stacked mounts).
func (v *Vnode) crossDown() *Vnode {
	for {
		v.k.mu.Lock()
		m := v.coveredBy
		if m == nil {
			v.k.mu.Unlock()
			return v
		}
		r := m.root
		r.refs++
		v.k.mu.Unlock()
		v.Release()
		v = r
	}
}

// Open prepares v for I/O with flags (O_ACCMODE, O_TRUNC, O_APPEND, ...),
// checking cred's access. EISDIR for writing a directory, ELOOP for a
// symbolic link, EROFS for writing on a read-only mount. O_TRUNC truncates
// a regular file. Every successful Open is paired with one Close(flags).
func (v *Vnode) Open(cred vnodeops.Cred, flags int) error {
	return v.open(cred, flags, true)
}

func (v *Vnode) open(cred vnodeops.Cred, flags int, check bool) error {
	acc := flags & syscall.O_ACCMODE
	if acc == syscall.O_ACCMODE {
		return syscall.EINVAL
	}
	a, err := v.Getattr()
	if err != nil {
		return err
	}
	writing := acc != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0
	switch a.Mode & vnodeops.S_IFMT {
	case vnodeops.S_IFDIR:
		if writing {
			return syscall.EISDIR
		}
	case vnodeops.S_IFLNK:
		return syscall.ELOOP
	case vnodeops.S_IFREG:
		if writing && v.m.ro {
			return syscall.EROFS
		}
	}
	if check {
		var want uint32
		if acc != syscall.O_WRONLY {
			want |= vnodeops.AccessRead
		}
		if writing {
			want |= vnodeops.AccessWrite
		}
		if err := v.Access(cred, want); err != nil {
			return err
		}
	}
	exit, err := v.m.enter()
	if err != nil {
		return err
	}
	defer exit()
	if flags&syscall.O_TRUNC != 0 && a.Mode&vnodeops.S_IFMT == vnodeops.S_IFREG && a.Size != 0 {
		w, err := v.writer()
		if err != nil {
			return err
		}
		if err := w.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetSize}); err != nil {
			return errno(err)
		}
	}
	return errno(v.vn.Open(flags))
}

// Close ends one Open made with the same flags.
func (v *Vnode) Close(flags int) error {
	exit, err := v.m.enter()
	if err != nil {
		return nil
	}
	defer exit()
	return errno(v.vn.Close(flags))
}

// Read reads at off into p: (0, nil) at end of file. EINVAL for a negative
// offset, EISDIR on a directory. The caller has opened v for reading.
func (v *Vnode) Read(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, syscall.EINVAL
	}
	exit, err := v.m.enter()
	if err != nil {
		return 0, err
	}
	defer exit()
	n, err := v.vn.Read(p, off)
	return n, errno(err)
}

// Write writes p at off. EINVAL for a negative offset, EROFS on a
// read-only mount, ENOSPC, EFBIG. The caller has opened v for writing.
func (v *Vnode) Write(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, syscall.EINVAL
	}
	if v.m.ro {
		return 0, syscall.EROFS
	}
	exit, err := v.m.enter()
	if err != nil {
		return 0, err
	}
	defer exit()
	w, err := v.writer()
	if err != nil {
		return 0, err
	}
	n, err := w.Write(p, off)
	return n, errno(err)
}

// Append writes p at the end of the file, atomically with respect to other
// appends through this kernel, and returns the offset after the write.
func (v *Vnode) Append(p []byte) (int, int64, error) {
	v.appendMu.Lock()
	defer v.appendMu.Unlock()
	a, err := v.Getattr()
	if err != nil {
		return 0, 0, err
	}
	n, err := v.Write(p, int64(a.Size))
	return n, int64(a.Size) + int64(n), err
}

// Setattr changes what sa.Mask selects, with a kernel's permission rules:
// mode and explicit times need the owner or root (EPERM); setting times to
// now (rumpcore.UtimeNow) also suits a caller with write access (EACCES);
// uid changes need root; gid changes need the owner belonging to the new
// group, or root; size needs write access and a non-directory (EISDIR).
// S_ISGID is dropped from a chmod by a non-member of the file's group, and
// S_ISUID/S_ISGID from a non-directory whose owner changes. EROFS on a
// read-only mount. Times equal to UtimeOmit are left alone. The rules are
// setattrPolicy's (policy.go).
func (v *Vnode) Setattr(cred vnodeops.Cred, sa vnodeops.SetAttr) error {
	return v.setattr(cred, sa, false)
}

// SetattrOpen is Setattr through a file the caller opened for writing
// (ftruncate, futimens with "now"): write access was checked at open, so
// a size change and setting times to now need no further check, whatever
// the mode is now (POSIX ftruncate on a file created with mode 0). The
// other rules are Setattr's.
func (v *Vnode) SetattrOpen(cred vnodeops.Cred, sa vnodeops.SetAttr) error {
	return v.setattr(cred, sa, true)
}

func (v *Vnode) setattr(cred vnodeops.Cred, sa vnodeops.SetAttr, openForWrite bool) error {
	if sa.Mask&vnodeops.SetAtime != 0 && sa.Atime == UtimeOmit {
		sa.Mask &^= vnodeops.SetAtime
	}
	if sa.Mask&vnodeops.SetMtime != 0 && sa.Mtime == UtimeOmit {
		sa.Mask &^= vnodeops.SetMtime
	}
	if sa.Mask == 0 {
		return nil
	}
	if v.m.ro {
		return syscall.EROFS
	}
	a, err := v.Getattr()
	if err != nil {
		return err
	}
	access := func() error { return v.Access(cred, vnodeops.AccessWrite) }
	if openForWrite {
		access = nil // checked at open
	}
	sa, err = setattrPolicy(cred, a, sa, v.k.now().UnixNano(), access)
	if err != nil {
		return err
	}
	exit, err := v.m.enter()
	if err != nil {
		return err
	}
	defer exit()
	w, err := v.writer()
	if err != nil {
		return err
	}
	return errno(w.Setattr(sa))
}

// Readdir calls fn for v's entries from cookie on (0 starts at the
// beginning); see vnodeops.Vnode.Readdir for the cookie contract. The
// caller has opened v for reading.
func (v *Vnode) Readdir(cookie uint64, fn func(vnodeops.Dirent) bool) error {
	if v.removed.Load() {
		return nil // a removed directory has no entries, not even "." and ".."
	}
	exit, err := v.m.enter()
	if err != nil {
		return err
	}
	defer exit()
	return errno(v.vn.Readdir(cookie, fn))
}

// Readlink returns the target of the symbolic link v. EINVAL if v is not
// one.
func (v *Vnode) Readlink() (string, error) {
	exit, err := v.m.enter()
	if err != nil {
		return "", err
	}
	defer exit()
	s, err := v.vn.Readlink()
	return s, errno(err)
}

// Fsync makes v's data, and unless dataOnly its metadata, durable.
func (v *Vnode) Fsync(dataOnly bool) error {
	if v.m.ro {
		return nil
	}
	exit, err := v.m.enter()
	if err != nil {
		return err
	}
	defer exit()
	w, ok := v.vn.(vnodeops.Writer)
	if !ok {
		return nil // nothing of a read-only format is dirty
	}
	return errno(w.Fsync(dataOnly))
}

// Statvfs describes the file system holding v.
func (v *Vnode) Statvfs() (vnodeops.Statvfs, error) {
	exit, err := v.m.enter()
	if err != nil {
		return vnodeops.Statvfs{}, err
	}
	defer exit()
	st, err := v.m.fs.Statvfs()
	if v.m.ro {
		st.Flags |= vnodeops.StRdonly
	}
	return st, errno(err)
}
