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
