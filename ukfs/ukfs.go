package ukfs

import (
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

// mountPoint is where the image is mounted in the FS's private kernel.
const mountPoint = "/image"

// Options says how Open mounts an image. The zero value mounts the whole
// image read-write, probing its type, and acts as root.
type Options struct {
	// Type is the driver ("ext2fs", "msdosfs", "cd9660", ...), or "" or
	// "auto" to probe the image.
	Type string
	// Partition picks a partition of an MBR or GPT disk image: "" (the
	// whole image), "auto" (the first holding a known file system) or a
	// number from 1.
	Partition string
	// ReadOnly opens the image read-only, with a shared lock, and makes
	// every writing call fail with EROFS.
	ReadOnly bool
	// DriverOptions are the driver's mount options (key=value).
	DriverOptions map[string]string
	// Cred is the credential of every call: the owner of what is created
	// and the subject of every permission check. The zero value is root.
	Cred vnodeops.Cred
	// CacheBytes is the buffer cache budget; 0 is the kernel's default.
	CacheBytes int64
	// Logger receives the kernel's and driver's log lines (a corrupt
	// inode, a forced unmount); nil discards them.
	Logger *slog.Logger
}

// FS is an image mounted in a private kernel. Its methods take
// slash-separated paths relative to the image's root: a leading "/" is
// allowed, and ".." never climbs above the root. The io/fs methods (Open,
// Stat, ReadDir, ReadFile, ReadLink, Lstat) take only paths that
// fs.ValidPath accepts, as io/fs demands. Errors are *fs.PathError (or
// *os.LinkError-like *LinkError) wrapping a syscall.Errno, so
// errors.Is(err, fs.ErrNotExist) and errors.Is(err, syscall.EACCES) work.
//
// An FS is safe for concurrent use. Close it: Close writes everything back,
// marks the file system clean and releases the image's lock.
type FS struct {
	k     *rumpcore.Kernel
	p     *rumpcore.Proc
	cred  vnodeops.Cred
	mount rumpcore.MountInfo
	part  string

	closeOnce sync.Once
	closeErr  error
}

// Open mounts the file system of image in a private kernel. The image is
// locked as rump9p serve locks it: read-write opens take an exclusive
// lock and read-only ones a shared lock, so a second writer, or a reader
// while a writer has it, is refused with an error that wraps
// syscall.EBUSY and names the image. An image without a file system the
// drivers know, or of the wrong Type, is an error that names the image.
func Open(image string, opts Options) (*FS, error) {
	typ := opts.Type
	if typ == "" {
		typ = "auto"
	}
	if image != "" {
		abs, err := filepath.Abs(image)
		if err != nil {
			return nil, err
		}
		image = abs
	}
	k, err := rumpcore.Init(rumpcore.Options{Logger: opts.Logger, CacheBytes: opts.CacheBytes})
	if err != nil {
		return nil, err
	}
	name := filepath.Base(image)
	if image == "" {
		name = typ
	}
	err = k.Mount(mountPoint, rumpcore.MountSpec{
		Name:      name,
		Type:      typ,
		Image:     image,
		Partition: opts.Partition,
		ReadOnly:  opts.ReadOnly,
		Options:   opts.DriverOptions,
	})
	if err != nil {
		k.Shutdown()
		return nil, err
	}
	f := &FS{k: k, cred: opts.Cred, part: opts.Partition}
	for _, m := range k.Mounts() {
		if m.Path == mountPoint {
			f.mount = m
		}
	}
	f.p = k.NewProc(opts.Cred)
	f.p.Umask(0) // modes are exactly what callers ask for
	return f, nil
}

// Close syncs the file system, unmounts it (marking it clean) and
// releases the image. Files still open are closed. Later calls do
// nothing and return what the first returned.
func (f *FS) Close() error {
	f.closeOnce.Do(func() {
		f.p.Exit()
		if err := f.k.Shutdown(); err != nil {
			f.closeErr = fmt.Errorf("unmount %s: %w", f.mount.Name, err)
		}
	})
	return f.closeErr
}

// Sync writes every change made so far to the image.
func (f *FS) Sync() error {
	if err := f.p.Sync(); err != nil {
		return &fs.PathError{Op: "sync", Path: "/", Err: err}
	}
	return nil
}

// Cred returns the credential the FS acts as.
func (f *FS) Cred() vnodeops.Cred { return f.cred }

// ReadOnly reports whether the image is mounted read-only (asked for, or
// decided by the driver, as for ext4 and ISO 9660).
func (f *FS) ReadOnly() bool {
	st, err := f.p.Statvfs(mountPoint)
	return f.mount.ReadOnly || (err == nil && st.Flags&vnodeops.StRdonly != 0)
}

// kpath maps a path of the image to the kernel's namespace.
func kpath(name string) string {
	c := path.Clean("/" + name)
	if c == "/" {
		return mountPoint
	}
	return mountPoint + c
}

// Clean returns name as the FS reads it: absolute, cleaned, with ".."
// stopped at the root ("a/../../b" is "/b").
func Clean(name string) string { return path.Clean("/" + name) }

func pathErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// LinkError records an error of a call naming two paths (Rename, Link,
// Symlink).
type LinkError struct {
	Op  string
	Old string
	New string
	Err error
}

func (e *LinkError) Error() string { return e.Op + " " + e.Old + " " + e.New + ": " + e.Err.Error() }

// Unwrap returns the syscall.Errno.
func (e *LinkError) Unwrap() error { return e.Err }

// vnode walks to name without following any symbolic link (a link in the
// middle of the path is ENOTDIR, as RESOLVE_NO_SYMLINKS would have it)
// and returns a reference the caller releases.
func (f *FS) vnode(name string) (*rumpcore.Vnode, error) {
	v := f.k.Root()
	for _, c := range strings.Split(strings.TrimPrefix(kpath(name), "/"), "/") {
		next, err := v.Lookup(f.cred, c)
		v.Release()
		if err != nil {
			return nil, err
		}
		v = next
	}
	return v, nil
}
