// Package vnodeops holds the contracts between the rump9p kernel (package
// rumpcore) and its file system drivers (vnodeops/<name>), in the spirit of
// NetBSD's vnode_if.src and vfsops(9).
//
// # The model
//
// A driver mounts a file system and returns an [FS]. The kernel asks the FS
// for vnodes by inode number ([FS.VGet]); every directory operation that
// names a file answers with an inode number, never with a vnode, so that the
// kernel's vnode cache is the only place where a (mount, inode) pair is
// turned into a live [Vnode]. While the kernel holds a reference to a Vnode
// it never asks VGet for the same inode again; when its last reference goes,
// it calls [Vnode.Inactive] and then [Vnode.Reclaim], after which the Vnode
// value is never used again. A forced unmount does the same for the vnodes
// still in use (as NetBSD's vflush with FORCECLOSE), so a driver never
// finds a live vnode at [FS.Unmount].
//
// # Locking
//
// The kernel serialises directory operations as NetBSD holds directory
// vnodes locked (see [Vnode] for what each operation holds), and renames
// per mount. Beyond that a driver must be safe for concurrent use of any
// of its operations on any of its vnodes (a file-system-wide sync.RWMutex
// is a fine start).
//
// # Capabilities
//
// [Vnode] is what every driver implements; a read-only format stops
// there. Writing ([Writer]), hard links ([Linker]), symbolic links
// ([Symlinker]), device nodes ([Mknoder]) and extended attributes
// ([Xattrs], [XattrWriter]) are capabilities the kernel discovers with a
// type assertion.
//
// # Errors
//
// Every operation returns nil or a [syscall.Errno]. A corrupt image gives
// EIO (and one log line naming the mount and the inode); a driver never
// panics on what it reads from an image. Write operations on a read-only
// mount return EROFS.
//
// # Permissions
//
// The kernel checks permissions before it calls an operation (search
// permission on each directory walked, write permission on a directory
// before Create/Remove/..., ownership before Setattr). Drivers need not
// repeat them; [Vnode.Access] exists so that a driver can add its own
// restrictions, and most implement it with [CheckAccess].
package vnodeops

import (
	"io"
	"log/slog"
	"syscall"
	"time"

	"github.com/rump9p/rump9p/blkdev"
)

// Cred is the credential of a caller: the effective uid and gid and the
// supplementary groups.
type Cred struct {
	UID    uint32
	GID    uint32
	Groups []uint32
	// AnyGroup says the caller's groups are unknown and taken to include
	// whatever group a check asks about: InGroup is always true, and
	// CheckAccess grants a non-owner what the group or the other class
	// allows. It is the identity of a 9P client whose own kernel has
	// already checked group membership (Linux v9fs with access=client or
	// access=user sends the uid and never the groups).
	AnyGroup bool
	// NewFileGID, when HasNewFileGID is set, is the group of the files
	// this credential creates, in place of GID: a front passing on the
	// group a client asked for (9P's Tlcreate gid) once it has decided
	// the caller may give it. It grants nothing: permission checks use
	// GID, Groups and AnyGroup only. A set-group-ID directory still gives
	// its own group.
	NewFileGID    uint32
	HasNewFileGID bool
}

// Root is the superuser's credential.
var Root = Cred{}

// IsRoot reports whether c is the superuser.
func (c Cred) IsRoot() bool { return c.UID == 0 }

// InGroup reports whether gid is c's primary or a supplementary group.
func (c Cred) InGroup(gid uint32) bool {
	if c.GID == gid || c.AnyGroup {
		return true
	}
	for _, g := range c.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

// File types and permission bits of Attr.Mode, as in Linux's <sys/stat.h>.
const (
	S_IFMT   = 0o170000
	S_IFSOCK = 0o140000
	S_IFLNK  = 0o120000
	S_IFREG  = 0o100000
	S_IFBLK  = 0o060000
	S_IFDIR  = 0o040000
	S_IFCHR  = 0o020000
	S_IFIFO  = 0o010000
	S_ISUID  = 0o4000
	S_ISGID  = 0o2000
	S_ISVTX  = 0o1000
	// PermMask selects the permission bits, including set-id and sticky.
	PermMask = 0o7777
)

// Directory entry types (Dirent.Type), the values of Linux's d_type.
const (
	DT_UNKNOWN = 0
	DT_FIFO    = 1
	DT_CHR     = 2
	DT_DIR     = 4
	DT_BLK     = 6
	DT_REG     = 8
	DT_LNK     = 10
	DT_SOCK    = 12
	DT_WHT     = 14
)

// DTFromMode returns the DT_* type for a mode's S_IFMT bits.
func DTFromMode(mode uint32) uint8 {
	switch mode & S_IFMT {
	case S_IFIFO:
		return DT_FIFO
	case S_IFCHR:
		return DT_CHR
	case S_IFDIR:
		return DT_DIR
	case S_IFBLK:
		return DT_BLK
	case S_IFREG:
		return DT_REG
	case S_IFLNK:
		return DT_LNK
	case S_IFSOCK:
		return DT_SOCK
	}
	return DT_UNKNOWN
}

// Attr is what Getattr reports. Times are nanoseconds since the Unix epoch;
// a file system that does not keep a time reports 0 for it.
type Attr struct {
	Mode    uint32 // S_IFMT type bits | permission bits
	Nlink   uint32
	UID     uint32
	GID     uint32
	Size    uint64
	Blocks  uint64 // 512-byte units actually allocated
	BlkSize uint32 // preferred I/O size
	Atime   int64
	Mtime   int64
	Ctime   int64
	Btime   int64
	Ino     uint64
	Gen     uint64 // inode generation
	Rdev    uint64 // device number of a device node
	Flags   uint32 // file flags (chflags), driver-defined
}

// IsDir reports whether a is a directory.
func (a *Attr) IsDir() bool { return a.Mode&S_IFMT == S_IFDIR }

// SetAttrMask selects the fields of SetAttr that Setattr applies.
type SetAttrMask uint32

const (
	SetMode SetAttrMask = 1 << iota
	SetUID
	SetGID
	SetSize
	SetAtime
	SetMtime
	SetCtime
	SetFlags
)

// SetAttr is the argument of Setattr. The kernel has already resolved "now"
// times into values and checked the caller's permission, and it has
// cleared S_ISUID/S_ISGID in Mode where a kernel would.
type SetAttr struct {
	Mask  SetAttrMask
	Mode  uint32 // permission bits only (PermMask)
	UID   uint32
	GID   uint32
	Size  uint64
	Atime int64
	Mtime int64
	Ctime int64
	Flags uint32
}

// Dirent is one directory entry. Next is the cookie that resumes reading
// just after this entry; it is never 0.
type Dirent struct {
	Name string
	Ino  uint64
	Type uint8 // DT_*
	Next uint64
}

// Statvfs describes a mounted file system, as statvfs(2) does.
type Statvfs struct {
	Bsize   uint32 // preferred block size
	Frsize  uint32 // unit of Blocks, Bfree, Bavail
	Blocks  uint64
	Bfree   uint64
	Bavail  uint64 // free for an unprivileged user
	Files   uint64
	Ffree   uint64
	Favail  uint64
	Namemax uint32
	Flags   uint32 // StRdonly, ...
}

// Statvfs flags.
const (
	StRdonly = 1
	StNosuid = 2
)

// Access bits for Access and CheckAccess.
const (
	AccessExec  = 1
	AccessWrite = 2
	AccessRead  = 4
)

// Open flags a driver may see in Open and Close (the O_ACCMODE bits, O_TRUNC
// is handled by the kernel through Setattr before Open returns).
const (
	ORdonly = syscall.O_RDONLY
	OWronly = syscall.O_WRONLY
	ORdwr   = syscall.O_RDWR
)

// Vnode is one file of a mounted file system: what every driver, even a
// read-only one, implements. Writing and the optional kinds of file are
// the capability interfaces [Writer], [Linker], [Symlinker], [Mknoder] and
// [Xattrs]; the kernel answers EROFS (writing) or EPERM (a kind of file
// the format cannot hold) for a vnode without them. A driver asserts what
// it implements: var _ vnodeops.Writer = (*node)(nil).
//
// Preconditions common to every method, written as vnode_if.src does:
//
//   - The kernel holds a reference to the vnode (and to every other Vnode
//     argument) for the whole call. No method takes or returns a
//     reference: a method that finds or makes a file answers with its
//     inode number, and the kernel takes its reference through FS.VGet.
//   - The kernel holds the mount's gate shared: Unmount never runs during
//     a call, and after a forced unmount no method is called again.
//   - Names are single path components: never empty, never containing '/'
//     or NUL, at most 255 bytes, never "." (the kernel answers "." itself).
//     Lookup may be asked for "..".
//   - Directory locks: "dir shared" means the kernel holds this directory's
//     lock shared (concurrent lookups and reads of it may run); "dir
//     exclusive" means no other operation that names an entry of this
//     directory runs meanwhile. Rename holds both directories exclusively
//     and the mount's rename lock. Operations on non-directories hold no
//     lock of the kernel's: a driver guards its own state (a
//     file-system-wide sync.RWMutex is a fine start).
//   - A removed directory (after Rmdir or a Rename over it) is never
//     asked to Lookup, Create, Mkdir, Mknod, Symlink or Link again, and
//     Readdir on it is answered by the kernel: the driver need not keep
//     such a directory usable.
//
// Timestamps: a driver sets them from MountArgs.Now, as POSIX says: Write
// sets mtime and ctime; Create, Mkdir, Mknod, Symlink and Link set the new
// entry's times and the directory's mtime and ctime (Link: the file's
// ctime); Remove, Rmdir and Rename set the directories' mtime and ctime
// and the ctime of the file whose link count changed (Rename: of the
// moved file too); Setattr sets ctime (and mtime when the size changes);
// Read may set atime, as the format and mount options allow.
type Vnode interface {
	// Lookup finds name in this directory. Pre: dir shared. ENOENT if
	// absent, ENOTDIR if the vnode is not a directory, EIO on a corrupt
	// entry. ".." of a file system's root returns the root itself; the
	// kernel crosses mount points above it.
	Lookup(name string) (ino uint64, err error)

	// Open is called when the file is opened with flags (the O_ACCMODE
	// bits, O_APPEND...); the kernel has checked access and done O_TRUNC
	// through Setattr. Close is called once for each successful Open.
	// Errors: EIO; a driver may refuse a kind of file it cannot open.
	Open(flags int) error
	Close(flags int) error
	// Access returns EACCES (or EROFS, EPERM) when cred may not access the
	// file in the way want (AccessRead|AccessWrite|AccessExec) asks. The
	// kernel calls it before every operation that needs access; most
	// drivers implement it with CheckAccess plus their own restrictions
	// (EROFS for writing on a read-only mount).
	Access(want uint32, cred Cred) error
	// Getattr returns the file's attributes. EIO on a corrupt inode.
	Getattr() (Attr, error)

	// Read reads up to len(p) bytes at off into p, like io.ReaderAt but
	// returning (0, nil) at or past end of file and short counts only at
	// end of file. EISDIR on a directory, EIO on a corrupt block map.
	Read(p []byte, off int64) (int, error)
	// Readdir calls fn for each entry from cookie on ("." and ".." first
	// when cookie is 0) until fn returns false or the directory ends. The
	// entry for which fn returns false is not consumed: resuming at the
	// previous entry's Next returns it again. Cookies stay valid while
	// entries are added and removed: no surviving entry is skipped or
	// repeated. Pre: the kernel has opened the directory; dir shared.
	// ENOTDIR, EIO.
	Readdir(cookie uint64, fn func(Dirent) bool) error
	// Readlink returns a symbolic link's target. EINVAL if not a link.
	Readlink() (string, error)

	// Inactive is called when the kernel drops its last reference, or by
	// a forced unmount while references remain. A file whose link count
	// is 0 has its storage freed here. The kernel only logs its error.
	Inactive() error
	// Reclaim is called after Inactive when the kernel forgets the vnode.
	// The driver writes back what it still holds and drops its state. The
	// kernel only logs its error.
	Reclaim() error
}

// Writer is implemented by the vnodes of a file system that can be
// written. On a read-only mount every method returns EROFS (the kernel
// normally refuses first). Every method may return ENOSPC, EIO, and
// EFBIG where a size passes the format's limit.
type Writer interface {
	// Create makes a regular file name in this directory with the given
	// permission bits and owner. Pre: dir exclusive; the kernel has
	// checked write and search permission and that name is not ".." and
	// does not exist. EEXIST if it does after all.
	Create(name string, perm, uid, gid uint32) (ino uint64, err error)
	// Mkdir makes a directory name holding "." and "..", raising this
	// directory's link count. Pre: as Create. EMLINK when the link count
	// would overflow.
	Mkdir(name string, perm, uid, gid uint32) (ino uint64, err error)
	// Remove deletes the entry name of this directory, which names the
	// non-directory vp, and lowers vp's link count. Storage is not freed
	// here: Inactive frees it once the link count is 0 and the last
	// reference is gone. Pre: dir exclusive; the kernel has checked
	// permissions and the sticky rule.
	Remove(name string, vp Vnode) error
	// Rmdir deletes the directory vp named name. Pre: dir exclusive; the
	// kernel has checked that vp is a directory and not a mount point.
	// ENOTEMPTY when vp holds more than "." and "..".
	Rmdir(name string, vp Vnode) error
	// Rename moves the entry fromName (naming fvp) of this directory to
	// toName in toDir (a Vnode of the same FS). tvp is the vnode toName
	// names now, or nil. Pre: both directories exclusive and the mount's
	// rename lock; the kernel has checked the POSIX rules (type
	// compatibility, a directory not moved into its own subtree, tvp an
	// empty directory if fvp is one) and that fvp != tvp, except for a
	// rename that changes only the case of a name on a case-insensitive
	// format. The driver replaces tvp, lowering its link count, and
	// updates ".." of a moved directory and both parents' link counts.
	Rename(fromName string, fvp Vnode, toDir Vnode, toName string, tvp Vnode) error
	// Setattr applies the fields sa.Mask selects. Changing the size
	// truncates or extends (holes read as zeros); EISDIR when the size of
	// a directory is set. Pre: the kernel has applied the ownership and
	// permission rules and turned "now" into times.
	Setattr(sa SetAttr) error
	// Write writes p at off, extending the file as needed. It returns
	// len(p) or an error; a short count comes with an error and the bytes
	// counted are written.
	Write(p []byte, off int64) (int, error)
	// Fsync makes the file's data, and unless dataOnly its metadata and the
	// metadata that reaches it, durable on the device.
	Fsync(dataOnly bool) error
}

// Linker is implemented by a writable format that keeps hard links.
type Linker interface {
	// Link enters the existing non-directory vp under name in this
	// directory and raises vp's link count. Pre: dir exclusive; vp is on
	// the same FS (EXDEV is the kernel's). EMLINK when vp's link count
	// would overflow.
	Link(vp Vnode, name string) error
}

// Symlinker is implemented by a writable format that keeps symbolic links.
type Symlinker interface {
	// Symlink makes a symbolic link name pointing at target (mode 0777).
	// Pre: as Writer.Create. ENAMETOOLONG when target does not fit.
	Symlink(name, target string, uid, gid uint32) (ino uint64, err error)
}

// Mknoder is implemented by a writable format that keeps device nodes,
// fifos and sockets.
type Mknoder interface {
	// Mknod makes a file of any type (mode carries S_IFMT) in this
	// directory. Pre: as Writer.Create. EPERM for a type the format
	// cannot store.
	Mknod(name string, mode, uid, gid uint32, rdev uint64) (ino uint64, err error)
}

// ReadWriteVnode is every capability of a read-write format that keeps
// all kinds of file; drivers assert it for their vnode type.
type ReadWriteVnode interface {
	Vnode
	Writer
	Linker
	Symlinker
	Mknoder
}

// FS is a mounted file system.
type FS interface {
	// Root returns the inode number of the root directory.
	Root() uint64
	// VGet returns the vnode for ino. ENOENT (or EIO on a corrupt image) if
	// no such live inode exists. The kernel calls it at most once per inode
	// until the returned vnode is reclaimed.
	VGet(ino uint64) (Vnode, error)
	Statvfs() (Statvfs, error)
	// Sync writes every dirty buffer and metadata to the device.
	Sync() error
	// Unmount syncs, marks the file system clean and releases the device.
	// Every vnode has been reclaimed (Inactive, then Reclaim) before it
	// is called, also when force is set: force says only that files were
	// still in use and the kernel reclaimed them itself. After Unmount the
	// FS is not used again.
	Unmount(force bool) error
}

// MountArgs is what a driver's Mount receives.
type MountArgs struct {
	// Name names the mount in log lines.
	Name string
	// Dev is the device holding the image, or nil for a driver that needs
	// none (tmpfs). The FS owns it after a successful Mount and closes it
	// in Unmount.
	Dev blkdev.Device
	// ReadOnly asks for a read-only mount: every write operation returns
	// EROFS and the device is never written.
	ReadOnly bool
	// CacheBytes is the budget for the driver's buffer cache; 0 means the
	// driver's default.
	CacheBytes int64
	// Options holds driver-specific options; a driver rejects unknown keys
	// with an error that names them.
	Options map[string]string
	// Now is the clock of every time stamp the driver writes (file times,
	// mount and write times of the superblock); never nil.
	Now func() time.Time
	// Log receives the driver's log lines; never nil. The kernel's logger
	// already carries the mount's name (mount=NAME): lines need not
	// repeat it.
	Log *slog.Logger
}

// Driver describes a file system driver.
type Driver struct {
	// Name is the type name of the config: "ffs", "ext2fs", "msdosfs",
	// "cd9660", "tmpfs".
	Name string
	// NeedsDevice tells whether Mount needs MountArgs.Dev.
	NeedsDevice bool
	// Probe reports whether the device of the given size holds this file
	// system, from its magic numbers. nil for tmpfs. It must be cheap and
	// must not fail on garbage.
	Probe func(r io.ReaderAt, size int64) bool
	// Mount mounts the file system.
	Mount func(args MountArgs) (FS, error)
}
