package rumpcore

import (
	"io"
	"strings"
	"sync"
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

// Proc is a process of the kernel: a credential, a working directory, a
// umask and a descriptor table. Its system calls take paths relative to
// the working directory and return nil or a syscall.Errno. A Proc is safe
// for concurrent use.
type Proc struct {
	k    *Kernel
	cred vnodeops.Cred

	mu     sync.Mutex
	cwd    *Vnode
	umask  uint32
	files  map[int]*file
	exited bool
}

type file struct {
	v     *Vnode
	flags int

	mu     sync.Mutex
	off    int64 // byte offset, or the readdir cookie of a directory
	isDir  bool
	closed bool
}

// openFlags are the open(2) flags the kernel knows; others are EINVAL.
const openFlags = syscall.O_ACCMODE | syscall.O_CREAT | syscall.O_EXCL | syscall.O_TRUNC |
	syscall.O_APPEND | syscall.O_DIRECTORY | syscall.O_NOFOLLOW | syscall.O_CLOEXEC |
	syscall.O_NONBLOCK | syscall.O_SYNC | syscall.O_DSYNC | syscall.O_NOCTTY |
	syscall.O_LARGEFILE | syscall.O_NOATIME

// Cred returns p's credential.
func (p *Proc) Cred() vnodeops.Cred { return p.cred }

// Umask sets p's file mode creation mask and returns the old one.
func (p *Proc) Umask(mask uint32) uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.umask
	p.umask = mask & 0o777
	return old
}

func (p *Proc) getUmask() uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.umask
}

// Exit closes every descriptor and releases the working directory. The
// Proc is not usable afterwards.
func (p *Proc) Exit() { p.exit() }

func (p *Proc) exit() {
	p.mu.Lock()
	if p.exited {
		p.mu.Unlock()
		return
	}
	p.exited = true
	files := p.files
	p.files = nil
	cwd := p.cwd
	p.mu.Unlock()
	for _, f := range files {
		f.close()
	}
	cwd.Release()
}

// Chdir makes path p's working directory. ENOTDIR, EACCES without search
// permission.
func (p *Proc) Chdir(path string) error {
	v, err := p.namei(path, true)
	if err != nil {
		return err
	}
	a, err := v.Getattr()
	if err == nil && !a.IsDir() {
		err = syscall.ENOTDIR
	}
	if err == nil {
		err = v.Access(p.cred, vnodeops.AccessExec)
	}
	if err != nil {
		v.Release()
		return err
	}
	p.mu.Lock()
	old := p.cwd
	p.cwd = v
	p.mu.Unlock()
	old.Release()
	return nil
}

// Open opens path with flags (syscall.O_*), creating a regular file with
// perm &^ umask under O_CREAT, and returns the lowest free descriptor.
// EINVAL for unknown flags, EEXIST under O_CREAT|O_EXCL, ENOTDIR under
// O_DIRECTORY for a non-directory, ELOOP under O_NOFOLLOW for a link, and
// the errors of Vnode.Open.
func (p *Proc) Open(path string, flags int, perm uint32) (int, error) {
	if flags&^openFlags != 0 || flags&syscall.O_ACCMODE == syscall.O_ACCMODE {
		return -1, syscall.EINVAL
	}
	var v *Vnode
	created := false
	if flags&syscall.O_CREAT != 0 {
		dir, last, err := p.nameiParent(path)
		if err != nil {
			return -1, err
		}
		if last == "" || last == "." || last == ".." || strings.HasSuffix(path, "/") {
			dir.Release()
			return -1, syscall.EISDIR
		}
		for v == nil {
			c, err := dir.Lookup(p.cred, last)
			if err == nil {
				if flags&syscall.O_EXCL != 0 {
					c.Release()
					dir.Release()
					return -1, syscall.EEXIST
				}
				a, err := c.Getattr()
				if err == nil && a.Mode&vnodeops.S_IFMT == vnodeops.S_IFLNK && flags&syscall.O_NOFOLLOW == 0 {
					c.Release()
					links := 0
					c, err = p.walkLast(dir.Ref(), last, true, false, &links)
				}
				if err != nil {
					dir.Release()
					return -1, err
				}
				v = c
				break
			}
			if err != syscall.ENOENT {
				dir.Release()
				return -1, err
			}
			c, err = dir.Create(p.cred, last, perm&^p.getUmask())
			if err == syscall.EEXIST && flags&syscall.O_EXCL == 0 {
				continue // lost a race with another creator: open theirs
			}
			if err != nil {
				dir.Release()
				return -1, err
			}
			v, created = c, true
		}
		dir.Release()
	} else {
		var err error
		v, err = p.namei(path, flags&syscall.O_NOFOLLOW == 0)
		if err != nil {
			return -1, err
		}
	}
	a, err := v.Getattr()
	if err != nil {
		v.Release()
		return -1, err
	}
	if flags&syscall.O_CREAT != 0 && a.IsDir() {
		v.Release()
		return -1, syscall.EISDIR
	}
	if flags&syscall.O_DIRECTORY != 0 && !a.IsDir() {
		v.Release()
		return -1, syscall.ENOTDIR
	}
	if err := v.open(p.cred, flags, !created); err != nil {
		v.Release()
		return -1, err
	}
	return p.install(&file{v: v, flags: flags, isDir: a.IsDir()})
}

func (p *Proc) install(f *file) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		f.close()
		return -1, syscall.EBADF
	}
	for fd := 0; ; fd++ {
		if _, used := p.files[fd]; !used {
			p.files[fd] = f
			return fd, nil
		}
	}
}

func (p *Proc) getFile(fd int) (*file, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, ok := p.files[fd]
	if !ok {
		return nil, syscall.EBADF
	}
	return f, nil
}

func (f *file) close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.mu.Unlock()
	err := f.v.Close(f.flags)
	f.v.Release()
	return err
}

// Close closes fd. EBADF if it is not open.
func (p *Proc) Close(fd int) error {
	p.mu.Lock()
	f, ok := p.files[fd]
	delete(p.files, fd)
	p.mu.Unlock()
	if !ok {
		return syscall.EBADF
	}
	return f.close()
}

func (f *file) readable() bool { return f.flags&syscall.O_ACCMODE != syscall.O_WRONLY }
func (f *file) writable() bool { return f.flags&syscall.O_ACCMODE != syscall.O_RDONLY }

// Read reads from fd at its offset and advances it; (0, nil) at end of
// file. EBADF if fd is not open for reading, EISDIR for a directory.
func (p *Proc) Read(fd int, b []byte) (int, error) {
	f, err := p.getFile(fd)
	if err != nil {
		return 0, err
	}
	if !f.readable() {
		return 0, syscall.EBADF
	}
	if f.isDir {
		return 0, syscall.EISDIR
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.v.Read(b, f.off)
	f.off += int64(n)
	return n, err
}

// Write writes to fd at its offset (at end of file under O_APPEND) and
// advances it. EBADF if fd is not open for writing.
func (p *Proc) Write(fd int, b []byte) (int, error) {
	f, err := p.getFile(fd)
	if err != nil {
		return 0, err
	}
	if !f.writable() {
		return 0, syscall.EBADF
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.flags&syscall.O_APPEND != 0 {
		n, end, err := f.v.Append(b)
		f.off = end
		return n, err
	}
	n, err := f.v.Write(b, f.off)
	f.off += int64(n)
	return n, err
}

// Pread reads from fd at off without moving its offset. EINVAL for a
// negative offset.
func (p *Proc) Pread(fd int, b []byte, off int64) (int, error) {
	f, err := p.getFile(fd)
	if err != nil {
		return 0, err
	}
	if !f.readable() {
		return 0, syscall.EBADF
	}
	if f.isDir {
		return 0, syscall.EISDIR
	}
	return f.v.Read(b, off)
}

// Pwrite writes to fd at off without moving its offset (even under
// O_APPEND, unlike Linux, which appends).
func (p *Proc) Pwrite(fd int, b []byte, off int64) (int, error) {
	f, err := p.getFile(fd)
	if err != nil {
		return 0, err
	}
	if !f.writable() {
		return 0, syscall.EBADF
	}
	return f.v.Write(b, off)
}

// Lseek moves fd's offset (whence io.SeekStart, io.SeekCurrent,
// io.SeekEnd) and returns the new offset. On a directory only SeekStart to
// 0 or to a cookie returned before is meaningful. EINVAL for a negative
// result or a bad whence.
func (p *Proc) Lseek(fd int, off int64, whence int) (int64, error) {
	f, err := p.getFile(fd)
	if err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = f.off
	case io.SeekEnd:
		if f.isDir {
			return 0, syscall.EINVAL
		}
		a, err := f.v.Getattr()
		if err != nil {
			return 0, err
		}
		base = int64(a.Size)
	default:
		return 0, syscall.EINVAL
	}
	n := base + off
	if n < 0 || (off > 0 && n < base) {
		return 0, syscall.EINVAL
	}
	f.off = n
	return n, nil
}

// Stat returns the attributes of the file path names, following links.
func (p *Proc) Stat(path string) (vnodeops.Attr, error) { return p.stat(path, true) }

// Lstat is Stat without following a link in the last component.
func (p *Proc) Lstat(path string) (vnodeops.Attr, error) { return p.stat(path, false) }

func (p *Proc) stat(path string, follow bool) (vnodeops.Attr, error) {
	v, err := p.namei(path, follow)
	if err != nil {
		return vnodeops.Attr{}, err
	}
	defer v.Release()
	return v.Getattr()
}

// Fstat returns the attributes of the file open on fd; an unlinked file
// reports a link count of 0.
func (p *Proc) Fstat(fd int) (vnodeops.Attr, error) {
	f, err := p.getFile(fd)
	if err != nil {
		return vnodeops.Attr{}, err
	}
	return f.v.Getattr()
}

// withParent resolves the directory holding path's last component and
// passes it to fn. Callers check a trailing slash (which only a directory
// may carry) with trailingSlash.
func (p *Proc) withParent(path string, fn func(dir *Vnode, last string) error) error {
	dir, last, err := p.nameiParent(path)
	if err != nil {
		return err
	}
	defer dir.Release()
	return fn(dir, last)
}

// trailingSlash reports whether path names its last component with a
// slash after it ("a/b/").
func trailingSlash(path string) bool {
	return strings.HasSuffix(path, "/") && strings.Trim(path, "/") != ""
}

// isDirEntry reports whether name in dir is a directory (ENOENT if
// absent).
func (p *Proc) isDirEntry(dir *Vnode, name string) (bool, error) {
	c, err := dir.Lookup(p.cred, name)
	if err != nil {
		return false, err
	}
	defer c.Release()
	a, err := c.Getattr()
	return a.IsDir(), err
}

// Mkdir makes the directory path with perm &^ umask. EEXIST if it exists.
func (p *Proc) Mkdir(path string, perm uint32) error {
	return p.withParent(path, func(dir *Vnode, last string) error {
		if last == "" {
			return syscall.EEXIST
		}
		v, err := dir.Mkdir(p.cred, last, perm&^p.getUmask())
		if err != nil {
			return err
		}
		v.Release()
		return nil
	})
}

// Rmdir removes the empty directory path. ENOTEMPTY, ENOTDIR, EBUSY for a
// mount point or the root, EINVAL for a path ending in ".".
func (p *Proc) Rmdir(path string) error {
	return p.withParent(path, func(dir *Vnode, last string) error {
		if last == "" {
			return syscall.EBUSY
		}
		return dir.Unlink(p.cred, last, true)
	})
}

// Unlink removes the non-directory path. EISDIR for a directory.
func (p *Proc) Unlink(path string) error {
	return p.withParent(path, func(dir *Vnode, last string) error {
		if last == "" {
			return syscall.EISDIR
		}
		if trailingSlash(path) {
			isDir, err := p.isDirEntry(dir, last)
			switch {
			case err != nil:
				return err
			case isDir:
				return syscall.EISDIR
			}
			return syscall.ENOTDIR
		}
		return dir.Unlink(p.cred, last, false)
	})
}

// Rename renames oldpath to newpath with the semantics of Vnode.Rename.
func (p *Proc) Rename(oldpath, newpath string) error {
	return p.withParent(oldpath, func(odir *Vnode, olast string) error {
		return p.withParent(newpath, func(ndir *Vnode, nlast string) error {
			if olast == "" || nlast == "" {
				return syscall.EBUSY
			}
			if trailingSlash(oldpath) || trailingSlash(newpath) {
				// Slashes are allowed only when a directory moves.
				isDir, err := p.isDirEntry(odir, olast)
				if err != nil {
					return err
				}
				if !isDir {
					return syscall.ENOTDIR
				}
			}
			return odir.Rename(p.cred, olast, ndir, nlast)
		})
	})
}

// Link makes newpath another name of the file oldpath names (a link in
// oldpath's last component is not followed). EXDEV across mounts, EPERM
// for a directory, EEXIST.
func (p *Proc) Link(oldpath, newpath string) error {
	v, err := p.namei(oldpath, false)
	if err != nil {
		return err
	}
	defer v.Release()
	return p.withParent(newpath, func(dir *Vnode, last string) error {
		if last == "" {
			return syscall.EEXIST
		}
		if trailingSlash(newpath) {
			return p.existsOr(dir, last, syscall.ENOENT)
		}
		return dir.Link(p.cred, v, last)
	})
}

// Symlink makes linkpath a symbolic link to target.
func (p *Proc) Symlink(target, linkpath string) error {
	return p.withParent(linkpath, func(dir *Vnode, last string) error {
		if last == "" {
			return syscall.EEXIST
		}
		if trailingSlash(linkpath) {
			return p.existsOr(dir, last, syscall.ENOENT)
		}
		v, err := dir.Symlink(p.cred, last, target)
		if err != nil {
			return err
		}
		v.Release()
		return nil
	})
}

// existsOr returns EEXIST if name exists in dir, else err.
func (p *Proc) existsOr(dir *Vnode, name string, err error) error {
	c, lerr := dir.Lookup(p.cred, name)
	if lerr != nil {
		return err
	}
	c.Release()
	return syscall.EEXIST
}

// Readlink returns the target of the symbolic link path. EINVAL if path
// is not a link.
func (p *Proc) Readlink(path string) (string, error) {
	v, err := p.namei(path, false)
	if err != nil {
		return "", err
	}
	defer v.Release()
	return v.Readlink()
}

func (p *Proc) setattr(path string, follow bool, sa vnodeops.SetAttr) error {
	v, err := p.namei(path, follow)
	if err != nil {
		return err
	}
	defer v.Release()
	return v.Setattr(p.cred, sa)
}

// Chmod sets the permission bits of path (following links). EPERM unless
// the caller owns the file or is root.
func (p *Proc) Chmod(path string, mode uint32) error {
	return p.setattr(path, true, vnodeops.SetAttr{Mask: vnodeops.SetMode, Mode: mode & vnodeops.PermMask})
}

// Chown sets the owner and group of path (following links); -1 leaves one
// unchanged. EPERM as Vnode.Setattr says.
func (p *Proc) Chown(path string, uid, gid int) error {
	var sa vnodeops.SetAttr
	if uid < -1 || gid < -1 || uid > 1<<32-1 || gid > 1<<32-1 {
		return syscall.EINVAL
	}
	if uid != -1 {
		sa.Mask |= vnodeops.SetUID
		sa.UID = uint32(uid)
	}
	if gid != -1 {
		sa.Mask |= vnodeops.SetGID
		sa.GID = uint32(gid)
	}
	return p.setattr(path, true, sa)
}

// Utimes sets the access and modification times of path (nanoseconds;
// UtimeNow and UtimeOmit as utimensat(2)'s UTIME_NOW and UTIME_OMIT).
func (p *Proc) Utimes(path string, atime, mtime int64) error {
	return p.setattr(path, true, vnodeops.SetAttr{
		Mask:  vnodeops.SetAtime | vnodeops.SetMtime,
		Atime: atime, Mtime: mtime,
	})
}

// Truncate sets the size of the regular file path. EINVAL for a negative
// size, EISDIR, EACCES without write permission, EFBIG.
func (p *Proc) Truncate(path string, size int64) error {
	if size < 0 {
		return syscall.EINVAL
	}
	return p.setattr(path, true, vnodeops.SetAttr{Mask: vnodeops.SetSize, Size: uint64(size)})
}

// Ftruncate sets the size of the file open for writing on fd. EINVAL for a
// negative size or a descriptor not open for writing.
func (p *Proc) Ftruncate(fd int, size int64) error {
	f, err := p.getFile(fd)
	if err != nil {
		return err
	}
	if size < 0 || !f.writable() {
		return syscall.EINVAL
	}
	// The descriptor's write access was checked at open, as on Unix.
	return f.v.SetattrOpen(p.cred, vnodeops.SetAttr{Mask: vnodeops.SetSize, Size: uint64(size)})
}

// Fsync makes the file open on fd durable.
func (p *Proc) Fsync(fd int) error {
	f, err := p.getFile(fd)
	if err != nil {
		return err
	}
	return f.v.Fsync(false)
}

// Getdents returns up to max entries of the directory open on fd from its
// offset, and advances the offset past them; an empty slice at the end.
// ENOTDIR for a non-directory, EINVAL for max < 1.
func (p *Proc) Getdents(fd int, max int) ([]vnodeops.Dirent, error) {
	f, err := p.getFile(fd)
	if err != nil {
		return nil, err
	}
	if !f.isDir {
		return nil, syscall.ENOTDIR
	}
	if max < 1 {
		return nil, syscall.EINVAL
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []vnodeops.Dirent
	err = f.v.Readdir(uint64(f.off), func(d vnodeops.Dirent) bool {
		if len(out) == max {
			return false
		}
		out = append(out, d)
		return true
	})
	if len(out) > 0 {
		f.off = int64(out[len(out)-1].Next)
	}
	if out == nil {
		out = []vnodeops.Dirent{}
	}
	return out, err
}

// Statvfs describes the file system holding path.
func (p *Proc) Statvfs(path string) (vnodeops.Statvfs, error) {
	v, err := p.namei(path, true)
	if err != nil {
		return vnodeops.Statvfs{}, err
	}
	defer v.Release()
	return v.Statvfs()
}

// Mount mounts spec at target; EPERM unless p is root.
func (p *Proc) Mount(target string, spec MountSpec) error {
	if !p.cred.IsRoot() {
		return syscall.EPERM
	}
	return p.k.Mount(p.abs(target), spec)
}

// Unmount unmounts the file system at target; EPERM unless p is root.
func (p *Proc) Unmount(target string, force bool) error {
	if !p.cred.IsRoot() {
		return syscall.EPERM
	}
	return p.k.Unmount(p.abs(target), force)
}

// abs makes a mount target absolute; relative targets are taken from the
// root, as the kernel keeps no path of the working directory.
func (p *Proc) abs(target string) string {
	if len(target) > 0 && target[0] == '/' {
		return target
	}
	return "/" + target
}

// Sync writes every mount's dirty data to its device.
func (p *Proc) Sync() error { return p.k.Sync() }
