package ukfs

import (
	"errors"
	"io/fs"
	"path"
	"syscall"
	"time"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

// The writing calls take any path (see FS) and fail with EROFS on a
// read-only FS and EACCES or EPERM where the credential may not write.

// Mkdir makes the directory name with mode perm. EEXIST if it exists.
func (f *FS) Mkdir(name string, perm fs.FileMode) error {
	return pathErr("mkdir", name, f.p.Mkdir(kpath(name), unixMode(perm)))
}

// MkdirAll makes name and every missing parent, each with mode perm; nil
// if name is already a directory.
func (f *FS) MkdirAll(name string, perm fs.FileMode) error {
	name = Clean(name)
	if a, err := f.Attr(name, true); err == nil {
		if a.IsDir() {
			return nil
		}
		return pathErr("mkdir", name, syscall.ENOTDIR)
	}
	if dir := path.Dir(name); dir != name {
		if err := f.MkdirAll(dir, perm); err != nil {
			return err
		}
	}
	err := f.Mkdir(name, perm)
	if errors.Is(err, fs.ErrExist) {
		if a, aerr := f.Attr(name, true); aerr == nil && a.IsDir() {
			return nil
		}
	}
	return err
}

// Remove removes the file or empty directory name (not following a
// symbolic link).
func (f *FS) Remove(name string) error {
	a, err := f.Attr(name, false)
	if err != nil {
		return err
	}
	if a.IsDir() {
		return pathErr("rmdir", name, f.p.Rmdir(kpath(name)))
	}
	return pathErr("unlink", name, f.p.Unlink(kpath(name)))
}

// Rmdir removes the empty directory name. ENOTEMPTY, ENOTDIR.
func (f *FS) Rmdir(name string) error { return pathErr("rmdir", name, f.p.Rmdir(kpath(name))) }

// RemoveAll removes name and everything below it, stopping at the first
// error; nil if name does not exist. The root itself is emptied but kept.
func (f *FS) RemoveAll(name string) error {
	a, err := f.Attr(name, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if a.IsDir() {
		names, err := f.Names(name)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := f.RemoveAll(path.Join(Clean(name), n)); err != nil {
				return err
			}
		}
		if Clean(name) == "/" {
			return nil
		}
	}
	return f.Remove(name)
}

// Rename renames oldname to newname, replacing newname as rename(2) does.
func (f *FS) Rename(oldname, newname string) error {
	if err := f.p.Rename(kpath(oldname), kpath(newname)); err != nil {
		return &LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	return nil
}

// Link makes newname a hard link of oldname (a symbolic link in oldname's
// last component is not followed). EEXIST, EPERM for a directory.
func (f *FS) Link(oldname, newname string) error {
	if err := f.p.Link(kpath(oldname), kpath(newname)); err != nil {
		return &LinkError{Op: "link", Old: oldname, New: newname, Err: err}
	}
	return nil
}

// Symlink makes newname a symbolic link to target, which is stored as
// given.
func (f *FS) Symlink(target, newname string) error {
	if err := f.p.Symlink(target, kpath(newname)); err != nil {
		return &LinkError{Op: "symlink", Old: target, New: newname, Err: err}
	}
	return nil
}

// Readlink is ReadLink for any path.
func (f *FS) Readlink(name string) (string, error) {
	t, err := f.p.Readlink(kpath(name))
	return t, pathErr("readlink", name, err)
}

// Mknod makes a device node, FIFO or socket name: mode holds the S_IFMT
// type and the permission bits, dev the device number (Linux encoding) of
// a device. EPERM for devices unless root; EOPNOTSUPP where the format
// has no such files.
func (f *FS) Mknod(name string, mode uint32, dev uint64) error {
	clean := Clean(name)
	if clean == "/" {
		return pathErr("mknod", name, syscall.EEXIST)
	}
	dir, err := f.vnode(path.Dir(clean))
	if err != nil {
		return pathErr("mknod", name, err)
	}
	defer dir.Release()
	v, err := dir.Mknod(f.cred, path.Base(clean), mode, dev)
	if err != nil {
		return pathErr("mknod", name, err)
	}
	v.Release()
	return nil
}

// Chmod sets the permission bits of name (following symbolic links).
func (f *FS) Chmod(name string, mode fs.FileMode) error {
	return pathErr("chmod", name, f.p.Chmod(kpath(name), unixMode(mode)))
}

// Chown sets the owner and group of name (following symbolic links); -1
// leaves one unchanged.
func (f *FS) Chown(name string, uid, gid int) error {
	return pathErr("chown", name, f.p.Chown(kpath(name), uid, gid))
}

// Lchown is Chown on a symbolic link itself. Lchown, Lchtimes, Getxattr
// and Listxattr follow no symbolic link anywhere in name: a link in the
// middle of the path is ENOTDIR.
func (f *FS) Lchown(name string, uid, gid int) error {
	var sa vnodeops.SetAttr
	for _, id := range []struct {
		v   int
		bit vnodeops.SetAttrMask
		to  *uint32
	}{{uid, vnodeops.SetUID, &sa.UID}, {gid, vnodeops.SetGID, &sa.GID}} {
		switch {
		case id.v == -1:
		case id.v < 0 || id.v > 1<<32-1:
			return pathErr("lchown", name, syscall.EINVAL)
		default:
			sa.Mask |= id.bit
			*id.to = uint32(id.v)
		}
	}
	return pathErr("lchown", name, f.setattr(name, sa))
}

func (f *FS) setattr(name string, sa vnodeops.SetAttr) error {
	v, err := f.vnode(name)
	if err != nil {
		return err
	}
	defer v.Release()
	return v.Setattr(f.cred, sa)
}

// Chtimes sets the access and modification times of name (following
// symbolic links); a zero time.Time leaves that time unchanged.
func (f *FS) Chtimes(name string, atime, mtime time.Time) error {
	return pathErr("chtimes", name, f.p.Utimes(kpath(name), utime(atime), utime(mtime)))
}

// Touch sets both times of name to now, which, unlike Chtimes, needs
// only write permission, as touch(1) does.
func (f *FS) Touch(name string) error {
	return pathErr("chtimes", name, f.p.Utimes(kpath(name), rumpcore.UtimeNow, rumpcore.UtimeNow))
}

// Lchtimes is Chtimes on a symbolic link itself.
func (f *FS) Lchtimes(name string, atime, mtime time.Time) error {
	sa := vnodeops.SetAttr{}
	if !atime.IsZero() {
		sa.Mask |= vnodeops.SetAtime
		sa.Atime = atime.UnixNano()
	}
	if !mtime.IsZero() {
		sa.Mask |= vnodeops.SetMtime
		sa.Mtime = mtime.UnixNano()
	}
	return pathErr("lchtimes", name, f.setattr(name, sa))
}

func utime(t time.Time) int64 {
	if t.IsZero() {
		return rumpcore.UtimeOmit
	}
	return t.UnixNano()
}

// Truncate sets the size of the regular file name.
func (f *FS) Truncate(name string, size int64) error {
	return pathErr("truncate", name, f.p.Truncate(kpath(name), size))
}

// Getxattr returns the extended attribute attr of name (not following a
// symbolic link). ENODATA if there is none, EOPNOTSUPP where the driver
// keeps none.
func (f *FS) Getxattr(name, attr string) ([]byte, error) {
	v, err := f.vnode(name)
	if err != nil {
		return nil, pathErr("getxattr", name, err)
	}
	defer v.Release()
	b, err := v.Getxattr(f.cred, attr)
	return b, pathErr("getxattr", name, err)
}

// Setxattr sets the extended attribute attr of name (not following a
// symbolic link) to value, creating or replacing it. EOPNOTSUPP where
// the driver keeps no attributes; the kernel's rules for the namespaces
// (user.* needs write access, trusted.* root, ...) apply.
func (f *FS) Setxattr(name, attr string, value []byte) error {
	v, err := f.vnode(name)
	if err != nil {
		return pathErr("setxattr", name, err)
	}
	defer v.Release()
	return pathErr("setxattr", name, v.Setxattr(f.cred, attr, value, 0))
}

// Listxattr returns the names of name's extended attributes (not
// following a symbolic link); none, and a nil error, where the driver
// keeps none.
func (f *FS) Listxattr(name string) ([]string, error) {
	v, err := f.vnode(name)
	if err != nil {
		return nil, pathErr("listxattr", name, err)
	}
	defer v.Release()
	names, err := v.Listxattr(f.cred)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOTSUP) {
		return nil, nil
	}
	return names, pathErr("listxattr", name, err)
}
