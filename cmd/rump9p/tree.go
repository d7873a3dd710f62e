package main

import (
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rump9p/rump9p/ukfs"
	"github.com/rump9p/rump9p/vnodeops"
	"golang.org/x/sys/unix"
)

// tree is one side of a copy, an archive or a walk: the host's files or
// an image's. Paths are the tree's own (host paths, or absolute paths of
// the image); every error names the path as the user wrote it
// (IMAGE:PATH for an image). Nothing follows a symbolic link but stat.
type tree interface {
	lstat(p string) (vnodeops.Attr, error)
	stat(p string) (vnodeops.Attr, error)
	// names lists a directory, sorted, without "." and "..".
	names(p string) ([]string, error)
	open(p string) (readFile, error)
	// create creates or truncates the regular file p, mode perm if new.
	create(p string, perm uint32) (writeFile, error)
	mkdir(p string, perm uint32) error
	symlink(target, p string) error
	readlink(p string) (string, error)
	link(oldp, newp string) error
	mknod(p string, mode uint32, dev uint64) error
	lchown(p string, uid, gid int) error
	chmod(p string, perm uint32) error
	lchtimes(p string, atime, mtime int64) error
	remove(p string) error
	// listxattr, getxattr and setxattr work on a symbolic link itself;
	// listxattr lists none where the file system keeps none.
	listxattr(p string) ([]string, error)
	getxattr(p, name string) ([]byte, error)
	setxattr(p, name string, value []byte) error
	join(dir, name string) string
	// show returns p as the user writes it.
	show(p string) string
	// same reports whether o is this very tree.
	same(o tree) bool
}

type readFile interface {
	io.Reader
	io.ReaderAt
	io.Closer
}

type writeFile interface {
	io.Writer
	io.WriterAt
	io.Closer
	Truncate(size int64) error
}

// imageTree is a tree over an open image.
type imageTree struct {
	fs  *ukfs.FS
	loc location // for the prefix in messages
}

func (t *imageTree) wrap(err error) error { return imgErr(t.loc, err) }

func (t *imageTree) lstat(p string) (vnodeops.Attr, error) {
	a, err := t.fs.Attr(p, false)
	return a, t.wrap(err)
}

func (t *imageTree) stat(p string) (vnodeops.Attr, error) {
	a, err := t.fs.Attr(p, true)
	return a, t.wrap(err)
}

func (t *imageTree) names(p string) ([]string, error) {
	n, err := t.fs.Names(p)
	return n, t.wrap(err)
}

func (t *imageTree) open(p string) (readFile, error) {
	f, err := t.fs.OpenFile(p, syscall.O_RDONLY, 0)
	if err != nil {
		return nil, t.wrap(err)
	}
	return &imageFile{f, t}, nil
}

func (t *imageTree) create(p string, perm uint32) (writeFile, error) {
	f, err := t.fs.OpenFile(p, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC, ukfs.FileMode(perm))
	if err != nil {
		return nil, t.wrap(err)
	}
	return &imageFile{f, t}, nil
}

// imageFile relabels the errors of an open file of the image.
type imageFile struct {
	f *ukfs.File
	t *imageTree
}

func (f *imageFile) Read(b []byte) (int, error) {
	n, err := f.f.Read(b)
	if err == io.EOF {
		return n, err
	}
	return n, f.t.wrap(err)
}

func (f *imageFile) ReadAt(b []byte, off int64) (int, error) {
	n, err := f.f.ReadAt(b, off)
	if err == io.EOF {
		return n, err
	}
	return n, f.t.wrap(err)
}

func (f *imageFile) Write(b []byte) (int, error) {
	n, err := f.f.Write(b)
	return n, f.t.wrap(err)
}

func (f *imageFile) WriteAt(b []byte, off int64) (int, error) {
	n, err := f.f.WriteAt(b, off)
	return n, f.t.wrap(err)
}

func (f *imageFile) Truncate(size int64) error { return f.t.wrap(f.f.Truncate(size)) }
func (f *imageFile) Close() error              { return f.t.wrap(f.f.Close()) }

func (t *imageTree) mkdir(p string, perm uint32) error {
	return t.wrap(t.fs.Mkdir(p, ukfs.FileMode(perm)))
}
func (t *imageTree) symlink(target, p string) error { return t.wrap(t.fs.Symlink(target, p)) }
func (t *imageTree) readlink(p string) (string, error) {
	s, err := t.fs.Readlink(p)
	return s, t.wrap(err)
}
func (t *imageTree) link(oldp, newp string) error { return t.wrap(t.fs.Link(oldp, newp)) }
func (t *imageTree) mknod(p string, mode uint32, dev uint64) error {
	return t.wrap(t.fs.Mknod(p, mode, dev))
}
func (t *imageTree) lchown(p string, uid, gid int) error { return t.wrap(t.fs.Lchown(p, uid, gid)) }
func (t *imageTree) chmod(p string, perm uint32) error {
	return t.wrap(t.fs.Chmod(p, ukfs.FileMode(perm)))
}
func (t *imageTree) lchtimes(p string, atime, mtime int64) error {
	return t.wrap(t.fs.Lchtimes(p, time.Unix(0, atime), time.Unix(0, mtime)))
}
func (t *imageTree) remove(p string) error { return t.wrap(t.fs.Remove(p)) }
func (t *imageTree) listxattr(p string) ([]string, error) {
	n, err := t.fs.Listxattr(p)
	return n, t.wrap(err)
}
func (t *imageTree) getxattr(p, name string) ([]byte, error) {
	b, err := t.fs.Getxattr(p, name)
	return b, t.wrap(err)
}
func (t *imageTree) setxattr(p, name string, value []byte) error {
	return t.wrap(t.fs.Setxattr(p, name, value))
}
func (t *imageTree) join(dir, name string) string { return path.Join(dir, name) }
func (t *imageTree) show(p string) string         { return t.loc.at(p).String() }
func (t *imageTree) same(o tree) bool {
	it, ok := o.(*imageTree)
	return ok && it.fs == t.fs
}

// hostTree is the host's file system, through package os and x/sys/unix.
type hostTree struct{}

func hostErr(op, p string, err error) error {
	if err == nil {
		return nil
	}
	return &fs.PathError{Op: op, Path: p, Err: err}
}

func attrOf(st *unix.Stat_t) vnodeops.Attr {
	return vnodeops.Attr{
		Mode: st.Mode, Nlink: uint32(st.Nlink), UID: st.Uid, GID: st.Gid,
		Size: uint64(st.Size), Blocks: uint64(st.Blocks), BlkSize: uint32(st.Blksize),
		Atime: st.Atim.Nano(), Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
		Ino: st.Ino, Rdev: st.Rdev,
	}
}

func (hostTree) lstat(p string) (vnodeops.Attr, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return vnodeops.Attr{}, hostErr("lstat", p, err)
	}
	return attrOf(&st), nil
}

func (hostTree) stat(p string) (vnodeops.Attr, error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return vnodeops.Attr{}, hostErr("stat", p, err)
	}
	return attrOf(&st), nil
}

func (hostTree) names(p string) ([]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	slices.Sort(names)
	return names, err
}

func (hostTree) open(p string) (readFile, error) { return os.Open(p) }

func (hostTree) create(p string, perm uint32) (writeFile, error) {
	return os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, ukfs.FileMode(perm))
}

func (hostTree) mkdir(p string, perm uint32) error {
	return hostErr("mkdir", p, unix.Mkdir(p, perm))
}
func (hostTree) symlink(target, p string) error    { return os.Symlink(target, p) }
func (hostTree) readlink(p string) (string, error) { return os.Readlink(p) }
func (hostTree) link(oldp, newp string) error      { return os.Link(oldp, newp) }
func (hostTree) mknod(p string, mode uint32, dev uint64) error {
	return hostErr("mknod", p, unix.Mknod(p, mode, int(dev)))
}
func (hostTree) lchown(p string, uid, gid int) error { return os.Lchown(p, uid, gid) }
func (hostTree) chmod(p string, perm uint32) error {
	return hostErr("chmod", p, unix.Chmod(p, perm))
}
func (hostTree) lchtimes(p string, atime, mtime int64) error {
	ts := []unix.Timespec{unix.NsecToTimespec(atime), unix.NsecToTimespec(mtime)}
	return hostErr("utimensat", p, unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW))
}
func (hostTree) remove(p string) error { return os.Remove(p) }
func (hostTree) listxattr(p string) ([]string, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err == unix.ENOTSUP {
		return nil, nil
	}
	if err != nil {
		return nil, hostErr("listxattr", p, err)
	}
	var names []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name != "" {
			names = append(names, name)
		}
	}
	return names, nil
}
func (hostTree) getxattr(p, name string) ([]byte, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Lgetxattr(p, name, buf)
	return buf[:max(n, 0)], hostErr("getxattr", p, err)
}
func (hostTree) setxattr(p, name string, value []byte) error {
	return hostErr("setxattr", p, unix.Lsetxattr(p, name, value, 0))
}
func (hostTree) join(dir, name string) string { return filepath.Join(dir, name) }
func (hostTree) show(p string) string         { return p }
func (hostTree) same(o tree) bool {
	_, ok := o.(hostTree)
	return ok
}
