package vnodeops

// Xattrs is implemented by the vnodes of drivers that keep extended
// attributes. It is optional: the kernel answers EOPNOTSUPP for a vnode
// without it. Names are full names with their namespace prefix ("user.",
// "trusted.", "security.", "system.").
//
// The caller holds a reference to the vnode; the kernel has checked the
// caller's permission (read access for user.*, root for trusted.*).
type Xattrs interface {
	// Getxattr returns the value of the attribute name: ENODATA if the
	// file has none of that name, EIO on a corrupt image.
	Getxattr(name string) ([]byte, error)
	// Listxattr returns the names of the file's attributes (possibly
	// none).
	Listxattr() ([]string, error)
}

// Flags of XattrWriter.Setxattr, as Linux's XATTR_CREATE and
// XATTR_REPLACE (<linux/xattr.h>); 0 creates or replaces.
const (
	XattrCreate  = 1 // fail with EEXIST if the attribute exists
	XattrReplace = 2 // fail with ENODATA if the attribute does not exist
)

// Limits the kernel applies before it calls XattrWriter, as Linux's VFS
// does (XATTR_NAME_MAX, XATTR_SIZE_MAX).
const (
	XattrNameMax = 255      // bytes of a full name, prefix included
	XattrSizeMax = 64 << 10 // bytes of a value
)

// XattrWriter is implemented by the vnodes of drivers that can set and
// remove extended attributes; such a vnode implements [Xattrs] too. The
// kernel answers EOPNOTSUPP (EROFS on a read-only mount) for a vnode
// without it.
//
// Pre, besides those of [Vnode]: the kernel has checked the name (one of
// the namespaces "user.", "trusted.", "security.", or exactly
// "system.posix_acl_access" or "system.posix_acl_default"; at most
// XattrNameMax bytes; a non-empty part after the "user.", "trusted." or
// "security." prefix), the value's size (at most XattrSizeMax), the
// flags (only XattrCreate and XattrReplace bits), and the caller's
// permission for the namespace (write access and a regular file or
// directory for user.*, root for trusted.* and security.*, the owner or
// root for system.posix_acl_*); the mount is not read-only. No lock of
// the kernel's is held: the driver guards its own state. Drivers do not
// check credentials.
//
// A driver stores values as given, except that it may keep
// system.posix_acl_* values in its format's own encoding: Getxattr
// returns them in the form they were given (Linux's xattr form of POSIX
// ACLs, version 2), and Setxattr returns EINVAL for a value that is not
// in that form.
//
// Both methods set the file's ctime from MountArgs.Now on success and
// leave the file's attributes as they were on any error. Errors:
//   - EPERM: the file's flags forbid changing it (immutable or
//     append-only, as the format defines them); drivers check these
//     since file flags are theirs;
//   - ERANGE: the name is longer than the format can store;
//   - E2BIG: the value could not be stored even on a file with no other
//     attributes;
//   - ENOSPC: the file's attribute space is full, or no free block is
//     left for it;
//   - EOPNOTSUPP: a namespace or kind of file the format does not store
//     attributes for;
//   - EROFS: a read-only mount, or a file the driver cannot write;
//   - EIO: a corrupt image (logged with the inode, as everywhere).
type XattrWriter interface {
	// Setxattr sets attribute name to value. With XattrCreate it fails
	// with EEXIST if the attribute exists; with XattrReplace, with
	// ENODATA if it does not.
	Setxattr(name string, value []byte, flags int) error
	// Removexattr removes attribute name: ENODATA if the file has none
	// of that name.
	Removexattr(name string) error
}
