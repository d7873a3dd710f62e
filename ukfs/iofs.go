package ukfs

import (
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rump9p/rump9p/vnodeops"
)

// The io/fs interfaces FS implements.
var (
	_ fs.FS         = (*FS)(nil)
	_ fs.StatFS     = (*FS)(nil)
	_ fs.ReadDirFS  = (*FS)(nil)
	_ fs.ReadFileFS = (*FS)(nil)
	_ fs.ReadLinkFS = (*FS)(nil)

	_ fs.ReadDirFile = (*File)(nil)
	_ io.ReaderAt    = (*File)(nil)
	_ io.WriterAt    = (*File)(nil)
	_ io.Seeker      = (*File)(nil)
)

func checkValid(op, name string) error {
	if !fs.ValidPath(name) {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return nil
}

// Open opens the named file for reading (io/fs.FS). Symbolic links are
// followed.
func (f *FS) Open(name string) (fs.File, error) {
	if err := checkValid("open", name); err != nil {
		return nil, err
	}
	return f.OpenFile(name, syscall.O_RDONLY, 0)
}

// Stat returns a FileInfo describing the named file, following symbolic
// links (io/fs.StatFS). Its Sys method returns the vnodeops.Attr.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	if err := checkValid("stat", name); err != nil {
		return nil, err
	}
	a, err := f.Attr(name, true)
	if err != nil {
		return nil, err
	}
	return newFileInfo(name, a), nil
}

// Lstat is Stat without following a symbolic link in the last component
// (io/fs.ReadLinkFS).
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	if err := checkValid("lstat", name); err != nil {
		return nil, err
	}
	a, err := f.Attr(name, false)
	if err != nil {
		return nil, err
	}
	return newFileInfo(name, a), nil
}

// Attr returns the attributes of name, following a symbolic link in the
// last component when follow is set. Unlike Stat it takes any path.
func (f *FS) Attr(name string, follow bool) (vnodeops.Attr, error) {
	var a vnodeops.Attr
	var err error
	if follow {
		a, err = f.p.Stat(kpath(name))
	} else {
		a, err = f.p.Lstat(kpath(name))
	}
	if err != nil {
		op := "lstat"
		if follow {
			op = "stat"
		}
		return a, pathErr(op, name, err)
	}
	return a, nil
}

// ReadLink returns the target of the symbolic link name
// (io/fs.ReadLinkFS).
func (f *FS) ReadLink(name string) (string, error) {
	if err := checkValid("readlink", name); err != nil {
		return "", err
	}
	t, err := f.p.Readlink(kpath(name))
	return t, pathErr("readlink", name, err)
}

// ReadFile reads the whole named file (io/fs.ReadFileFS).
func (f *FS) ReadFile(name string) ([]byte, error) {
	if err := checkValid("readfile", name); err != nil {
		return nil, err
	}
	file, err := f.OpenFile(name, syscall.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	return io.ReadAll(file)
}

// ReadDir reads the named directory and returns its entries sorted by
// name, without "." and ".." (io/fs.ReadDirFS).
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := checkValid("readdir", name); err != nil {
		return nil, err
	}
	return f.readDir(name)
}

func (f *FS) readDir(name string) ([]fs.DirEntry, error) {
	file, err := f.OpenFile(name, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	ents, err := file.ReadDir(-1)
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, err
}

// Names returns the names in directory name, sorted, without "." and
// "..". Unlike ReadDir it takes any path.
func (f *FS) Names(name string) ([]string, error) {
	ents, err := f.readDir(name)
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, err
}

// File is a file open in an FS. It is an fs.File, an fs.ReadDirFile for
// a directory, and an io.ReaderAt, io.WriterAt and io.Seeker.
type File struct {
	fs   *FS
	fd   int
	name string
	eof  bool // ReadDir reached the end
}

// OpenFile opens name with flags (syscall.O_*), creating a regular file
// with mode perm under O_CREAT, as open(2). Symbolic links are followed
// unless O_NOFOLLOW.
func (f *FS) OpenFile(name string, flags int, perm fs.FileMode) (*File, error) {
	fd, err := f.p.Open(kpath(name), flags, unixMode(perm))
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	return &File{fs: f, fd: fd, name: name}, nil
}

// Create creates or truncates name for writing, with mode perm when it
// is created.
func (f *FS) Create(name string, perm fs.FileMode) (*File, error) {
	return f.OpenFile(name, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC, perm)
}

// Name returns the path the file was opened with.
func (fl *File) Name() string { return fl.name }

// Stat describes the open file.
func (fl *File) Stat() (fs.FileInfo, error) {
	a, err := fl.fs.p.Fstat(fl.fd)
	if err != nil {
		return nil, pathErr("stat", fl.name, err)
	}
	return newFileInfo(fl.name, a), nil
}

// Read reads from the file's offset; io.EOF at the end.
func (fl *File) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, err := fl.fs.p.Read(fl.fd, b)
	if err != nil {
		return n, pathErr("read", fl.name, err)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// ReadAt reads len(b) bytes at off, or fewer and io.EOF at the end.
func (fl *File) ReadAt(b []byte, off int64) (int, error) {
	return fl.full("read", b, off, func(b []byte, off int64) (int, error) { return fl.fs.p.Pread(fl.fd, b, off) }, io.EOF)
}

// Write writes all of b at the file's offset.
func (fl *File) Write(b []byte) (int, error) {
	return fl.full("write", b, 0, func(b []byte, _ int64) (int, error) { return fl.fs.p.Write(fl.fd, b) },
		pathErr("write", fl.name, io.ErrShortWrite))
}

// WriteAt writes all of b at off.
func (fl *File) WriteAt(b []byte, off int64) (int, error) {
	return fl.full("write", b, off, func(b []byte, off int64) (int, error) { return fl.fs.p.Pwrite(fl.fd, b, off) },
		pathErr("write", fl.name, io.ErrShortWrite))
}

// full repeats op on what is left of b (at off onwards) until all of b is
// done, as io.ReaderAt and io.WriterAt demand; a call that does nothing
// ends it with end.
func (fl *File) full(what string, b []byte, off int64, op func([]byte, int64) (int, error), end error) (int, error) {
	done := 0
	for done < len(b) {
		n, err := op(b[done:], off+int64(done))
		done += n
		if err != nil {
			return done, pathErr(what, fl.name, err)
		}
		if n == 0 {
			return done, end
		}
	}
	return done, nil
}

// Seek sets the offset for the next Read or Write.
func (fl *File) Seek(off int64, whence int) (int64, error) {
	n, err := fl.fs.p.Lseek(fl.fd, off, whence)
	return n, pathErr("seek", fl.name, err)
}

// Truncate sets the size of the file, which must be open for writing.
func (fl *File) Truncate(size int64) error {
	return pathErr("truncate", fl.name, fl.fs.p.Ftruncate(fl.fd, size))
}

// Sync makes the file's data and metadata durable.
func (fl *File) Sync() error { return pathErr("fsync", fl.name, fl.fs.p.Fsync(fl.fd)) }

// Close closes the file.
func (fl *File) Close() error { return pathErr("close", fl.name, fl.fs.p.Close(fl.fd)) }

// ReadDir reads the directory's entries, without "." and "..", in the
// driver's order, as fs.ReadDirFile says: with n > 0 at most n entries
// and io.EOF at the end, with n <= 0 all the rest and a nil error.
func (fl *File) ReadDir(n int) ([]fs.DirEntry, error) {
	var out []fs.DirEntry
	for !fl.eof && (n <= 0 || len(out) < n) {
		want := 128
		if n > 0 {
			want = n - len(out)
		}
		ents, err := fl.fs.p.Getdents(fl.fd, want)
		if err != nil {
			return out, pathErr("readdir", fl.name, err)
		}
		if len(ents) == 0 {
			fl.eof = true
		}
		for _, e := range ents {
			if e.Name == "." || e.Name == ".." {
				continue
			}
			out = append(out, &dirEntry{fs: fl.fs, dir: fl.name, d: e})
		}
	}
	if n > 0 && len(out) == 0 {
		return nil, io.EOF
	}
	return out, nil
}

type dirEntry struct {
	fs  *FS
	dir string
	d   vnodeops.Dirent
}

func (e *dirEntry) Name() string      { return e.d.Name }
func (e *dirEntry) IsDir() bool       { return e.d.Type == vnodeops.DT_DIR }
func (e *dirEntry) Type() fs.FileMode { return FileMode(dtMode(e.d.Type)).Type() }
func (e *dirEntry) Info() (fs.FileInfo, error) {
	a, err := e.fs.Attr(path.Join(e.dir, e.d.Name), false)
	if err != nil {
		return nil, err
	}
	return newFileInfo(e.d.Name, a), nil
}
func (e *dirEntry) String() string { return fs.FormatDirEntry(e) }

// dtMode returns the S_IFMT bits of a DT_* type.
func dtMode(t uint8) uint32 {
	switch t {
	case vnodeops.DT_FIFO:
		return vnodeops.S_IFIFO
	case vnodeops.DT_CHR:
		return vnodeops.S_IFCHR
	case vnodeops.DT_DIR:
		return vnodeops.S_IFDIR
	case vnodeops.DT_BLK:
		return vnodeops.S_IFBLK
	case vnodeops.DT_LNK:
		return vnodeops.S_IFLNK
	case vnodeops.DT_SOCK:
		return vnodeops.S_IFSOCK
	}
	return vnodeops.S_IFREG
}

// fileInfo is an fs.FileInfo over a vnodeops.Attr.
type fileInfo struct {
	name string
	a    vnodeops.Attr
}

func newFileInfo(name string, a vnodeops.Attr) *fileInfo {
	base := path.Base(name)
	if base == "." || base == "/" {
		base = "."
	}
	return &fileInfo{name: base, a: a}
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return int64(fi.a.Size) }
func (fi *fileInfo) Mode() fs.FileMode  { return FileMode(fi.a.Mode) }
func (fi *fileInfo) ModTime() time.Time { return time.Unix(0, fi.a.Mtime) }
func (fi *fileInfo) IsDir() bool        { return fi.a.IsDir() }

// Sys returns the vnodeops.Attr.
func (fi *fileInfo) Sys() any { return fi.a }

func (fi *fileInfo) String() string { return fs.FormatFileInfo(fi) }

// FileMode turns a Unix mode (S_IFMT type bits, permission, set-id and
// sticky bits; any of them) into an fs.FileMode.
func FileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & vnodeops.S_IFMT {
	case vnodeops.S_IFDIR:
		mode |= fs.ModeDir
	case vnodeops.S_IFLNK:
		mode |= fs.ModeSymlink
	case vnodeops.S_IFBLK:
		mode |= fs.ModeDevice
	case vnodeops.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case vnodeops.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case vnodeops.S_IFSOCK:
		mode |= fs.ModeSocket
	}
	for _, b := range modeBits {
		if m&b.unix != 0 {
			mode |= b.fs
		}
	}
	return mode
}

// modeBits pairs the set-id and sticky bits of Unix and of io/fs.
var modeBits = [...]struct {
	unix uint32
	fs   fs.FileMode
}{{vnodeops.S_ISUID, fs.ModeSetuid}, {vnodeops.S_ISGID, fs.ModeSetgid}, {vnodeops.S_ISVTX, fs.ModeSticky}}

// unixMode returns the permission bits (with set-id and sticky bits) of
// an fs.FileMode.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	for _, b := range modeBits {
		if m&b.fs != 0 {
			u |= b.unix
		}
	}
	return u
}
