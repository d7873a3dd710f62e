package rumpcore

import (
	"log/slog"
	"syscall"
	"time"

	"github.com/rump9p/rump9p/vnodeops"
)

// Options configures Init.
type Options struct {
	// Logger receives the kernel's and drivers' log lines; nil discards.
	Logger *slog.Logger
	// Now is the clock used for file times; nil means time.Now.
	Now func() time.Time
	// CacheBytes is the default buffer cache budget of an image mount.
	CacheBytes int64
}

// MountSpec says what to mount.
type MountSpec struct {
	Type       string // driver name, or "auto" to probe the image
	Image      string // image file path; empty for tmpfs
	Partition  string // "" (whole device), "auto", or a partition number "1", "2", ...
	ReadOnly   bool
	CacheBytes int64 // 0: the kernel's default
	Options    map[string]string
}

// MountInfo describes a mount in the mount table.
type MountInfo struct {
	ID       uint32
	Path     string
	Type     string
	Image    string
	ReadOnly bool
}

// Special values for the times of Utimes and SetAttr of Vnode.Setattr.
const (
	UtimeNow  int64 = -1 << 62
	UtimeOmit int64 = -1<<62 + 1
)

var errTODO = syscall.ENOSYS

type Kernel struct{}

func Init(opts Options) (*Kernel, error)                                     { return &Kernel{}, nil }
func (k *Kernel) Shutdown() error                                            { return errTODO }
func (k *Kernel) Mount(target string, spec MountSpec) error                  { return errTODO }
func (k *Kernel) MountFS(target, name string, fs vnodeops.FS, ro bool) error { return errTODO }
func (k *Kernel) Unmount(target string, force bool) error                    { return errTODO }
func (k *Kernel) Mounts() []MountInfo                                        { return nil }
func (k *Kernel) Sync() error                                                { return errTODO }
func (k *Kernel) Root() *Vnode                                               { return nil }
func (k *Kernel) NewProc(cred vnodeops.Cred) *Proc                           { return nil }

type Vnode struct{}

func (v *Vnode) Ref() *Vnode                                            { return v }
func (v *Vnode) Release()                                               {}
func (v *Vnode) MountID() uint32                                        { return 0 }
func (v *Vnode) Ino() uint64                                            { return 0 }
func (v *Vnode) Getattr() (vnodeops.Attr, error)                        { return vnodeops.Attr{}, errTODO }
func (v *Vnode) Lookup(cred vnodeops.Cred, name string) (*Vnode, error) { return nil, errTODO }
func (v *Vnode) Access(cred vnodeops.Cred, want uint32) error           { return errTODO }
func (v *Vnode) Setattr(cred vnodeops.Cred, sa vnodeops.SetAttr) error  { return errTODO }
func (v *Vnode) Open(cred vnodeops.Cred, flags int) error               { return errTODO }
func (v *Vnode) Close(flags int) error                                  { return errTODO }
func (v *Vnode) Read(p []byte, off int64) (int, error)                  { return 0, errTODO }
func (v *Vnode) Write(p []byte, off int64) (int, error)                 { return 0, errTODO }
func (v *Vnode) Create(cred vnodeops.Cred, name string, perm uint32) (*Vnode, error) {
	return nil, errTODO
}
func (v *Vnode) Mkdir(cred vnodeops.Cred, name string, perm uint32) (*Vnode, error) {
	return nil, errTODO
}
func (v *Vnode) Symlink(cred vnodeops.Cred, name, target string) (*Vnode, error) { return nil, errTODO }
func (v *Vnode) Mknod(cred vnodeops.Cred, name string, mode uint32, rdev uint64) (*Vnode, error) {
	return nil, errTODO
}
func (v *Vnode) Link(cred vnodeops.Cred, target *Vnode, name string) error { return errTODO }
func (v *Vnode) Unlink(cred vnodeops.Cred, name string, dir bool) error    { return errTODO }
func (v *Vnode) Rename(cred vnodeops.Cred, oldName string, newDir *Vnode, newName string) error {
	return errTODO
}
func (v *Vnode) Readdir(cookie uint64, fn func(vnodeops.Dirent) bool) error { return errTODO }
func (v *Vnode) Readlink() (string, error)                                  { return "", errTODO }
func (v *Vnode) Fsync(dataOnly bool) error                                  { return errTODO }
func (v *Vnode) Statvfs() (vnodeops.Statvfs, error)                         { return vnodeops.Statvfs{}, errTODO }
func (v *Vnode) ReadOnly() bool                                             { return false }

type Proc struct{}

func (p *Proc) Cred() vnodeops.Cred                                   { return vnodeops.Cred{} }
func (p *Proc) Umask(mask uint32) uint32                              { return 0 }
func (p *Proc) Chdir(path string) error                               { return errTODO }
func (p *Proc) Open(path string, flags int, perm uint32) (int, error) { return -1, errTODO }
func (p *Proc) Close(fd int) error                                    { return errTODO }
func (p *Proc) Read(fd int, b []byte) (int, error)                    { return 0, errTODO }
func (p *Proc) Write(fd int, b []byte) (int, error)                   { return 0, errTODO }
func (p *Proc) Pread(fd int, b []byte, off int64) (int, error)        { return 0, errTODO }
func (p *Proc) Pwrite(fd int, b []byte, off int64) (int, error)       { return 0, errTODO }
func (p *Proc) Lseek(fd int, off int64, whence int) (int64, error)    { return 0, errTODO }
func (p *Proc) Stat(path string) (vnodeops.Attr, error)               { return vnodeops.Attr{}, errTODO }
func (p *Proc) Lstat(path string) (vnodeops.Attr, error)              { return vnodeops.Attr{}, errTODO }
func (p *Proc) Fstat(fd int) (vnodeops.Attr, error)                   { return vnodeops.Attr{}, errTODO }
func (p *Proc) Mkdir(path string, perm uint32) error                  { return errTODO }
func (p *Proc) Rmdir(path string) error                               { return errTODO }
func (p *Proc) Unlink(path string) error                              { return errTODO }
func (p *Proc) Rename(oldpath, newpath string) error                  { return errTODO }
func (p *Proc) Link(oldpath, newpath string) error                    { return errTODO }
func (p *Proc) Symlink(target, linkpath string) error                 { return errTODO }
func (p *Proc) Readlink(path string) (string, error)                  { return "", errTODO }
func (p *Proc) Chmod(path string, mode uint32) error                  { return errTODO }
func (p *Proc) Chown(path string, uid, gid int) error                 { return errTODO }
func (p *Proc) Utimes(path string, atime, mtime int64) error          { return errTODO }
func (p *Proc) Truncate(path string, size int64) error                { return errTODO }
func (p *Proc) Ftruncate(fd int, size int64) error                    { return errTODO }
func (p *Proc) Fsync(fd int) error                                    { return errTODO }
func (p *Proc) Getdents(fd int, max int) ([]vnodeops.Dirent, error)   { return nil, errTODO }
func (p *Proc) Statvfs(path string) (vnodeops.Statvfs, error)         { return vnodeops.Statvfs{}, errTODO }
func (p *Proc) Mount(target string, spec MountSpec) error             { return errTODO }
func (p *Proc) Unmount(target string, force bool) error               { return errTODO }
func (p *Proc) Sync() error                                           { return errTODO }
